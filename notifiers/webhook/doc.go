// Package webhook delivers alerts as a signed JSON POST to any HTTP
// endpoint, for receivers that route alerts on their own (a pager, a chat
// bridge, a trading kill switch).
//
// One Notify call is one request. The body is
//
//	{"version": "1", "alerts": [{"id", "status", "kind", "reason", "severity",
//	  "rule", "account", "symbol", "side", "metric", "value", "op",
//	  "threshold", "starts_at", "at", "summary", "runbook", "labels",
//	  "context"}]}
//
// with every key always present (see PayloadAlert), alerts most severe
// first. "context" holds the trader's figures as raw numbers (mark_price,
// entry_price, liq_price, equity, …), in addition to SPEC's keys. A position that closed while its alert fired ends the alert with
// "status": "resolved", "kind": "closed" and "reason": "liquidated" or
// "closed": a receiver must not read it as a recovery. A value or threshold
// that JSON cannot carry (±Inf when equity is zero or below, NaN) is null. Requests are signed per Standard Webhooks
// (https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp
// (unix seconds) and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>". The webhook-id is derived from the alerts, so the
// outbox retrying one notification sends the same id and a byte-identical
// body, re-signed with the current timestamp: a receiver deduplicates on the
// id and rejects stale timestamps without ever rejecting a genuine retry.
//
// Status codes: 2xx delivered; 408, 429 and 5xx retryable (Retry-After, in
// seconds or as an HTTP date, becomes a notifiers.RetryAfterError); a
// redirect is not followed and, like any other 4xx, is permanent. The
// webhook URL may carry a token, so errors and logs show only its
// scheme://host.
package webhook
