// Package email delivers alerts as mail through an SMTP server (go-mail).
//
// One Notify call is one message: multipart/alternative with a plain-text
// part and an HTML part that say the same thing, the most severe alert
// first. The body's first line carries the status ("CRITICAL
// liquidation-near - escalated to critical", "LIQUIDATED …", "RESOLVED
// …"), which a phone's lock screen shows under the subject. The subject
// names the incident of the first alert and never changes over its life,
// e.g. "marginwatch: liquidation-near BTCUSDT long on main": Gmail threads
// only mails whose subjects match.
//
// A closing notice (notifiers.KindClosed) is no recovery: it reads
// LIQUIDATED (red, high importance) or CLOSED (grey) and states the
// metric's last value. An infinite figure reads "∞ (equity ≤ 0)".
//
// A digest (notifiers.KindDigest) is a mail of its own kind: subject
// "[DIGEST] marginwatch morning", the digest's text as the plain-text part,
// the same text escaped in <pre> as the HTML part, and no thread headers.
//
// Threading needs no storage: the Message-ID of an incident's first notice
// is derived from the incident's Alert.ID ("<incident-ID@marginwatch>"), and
// every later notice (repeat, escalation, resolution, closing) refers to
// it with In-Reply-To and References. A mail about several incidents names
// the root of each of them there, so that it shows in every incident's
// thread in clients that thread by references; in Gmail, which also needs
// the subject to match, it joins its first incident's thread. Every other Message-ID is derived from the
// notice's content too, so a retry after a lost reply sends the same
// Message-ID and the receiving side can drop the duplicate.
//
// Transport security follows the tls setting: "starttls" (the default)
// requires STARTTLS and never falls back to plain text, "implicit" speaks TLS
// from the first byte (SMTPS, port 465), "none" is for a relay on localhost.
// The password is sent (AUTH PLAIN, else LOGIN, else whatever go-mail
// discovers) only over TLS or to localhost.
//
// Errors: SMTP 4xx replies, network errors and timeouts are retryable; 5xx
// replies (a rejected recipient, failed authentication), a TLS certificate
// the system does not trust and settings that cannot work are permanent and
// say what to fix. The password never appears in an error or a log line,
// nor do the base64 forms AUTH sends it in; a password shorter than 8
// characters is removed only where it stands as a word, so that a short
// one does not garble (and so point at itself in) words that contain it.
package email
