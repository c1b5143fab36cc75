// Package email delivers alerts as mail through an SMTP server (go-mail).
//
// One Notify call is one message: multipart/alternative with a plain-text
// part and an HTML part that say the same thing, the most severe alert
// first. The subject carries the severity and the account, e.g.
// "[CRITICAL] main: liquidation-near BTCUSDT long (+1 more)", so a phone's
// lock screen is enough to decide whether to get up.
//
// A digest (notifiers.KindDigest) is a mail of its own kind: subject
// "[DIGEST] marginwatch morning", the digest's text as the plain-text part,
// the same text escaped in <pre> as the HTML part, and no thread headers.
//
// Threading needs no storage: the Message-ID of an incident's first notice
// is derived from the incident's Alert.ID ("<incident-ID@marginwatch>"), and
// every later notice (repeat, escalation, resolution) refers to it with
// In-Reply-To and References. Every other Message-ID is derived from the
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
// say what to fix. The password never appears in an error or a log line.
package email
