// Package slack delivers alerts to Slack, as an incoming webhook or as a bot
// posting with chat.postMessage.
//
// One Notify call is one Slack message: a one-line text (what a phone's push
// notification shows) and one coloured attachment per alert, most severe
// first, built from Block Kit sections: severity, rule, account, position,
// the value against the threshold, the rule's summary, the trading context
// (mark, entry and liquidation price, distance, leverage, margin ratios,
// equity) and the runbook. Colours: critical red, warning amber, info blue,
// resolved green. Slack renders at most 50 blocks per message, so alerts that
// do not fit are listed in a final "… and N more" attachment.
//
// A digest (notifiers.KindDigest) is a message of its own, not an
// attachment: the notification text "marginwatch digest NAME" and the
// digest's text as preformatted (```) mrkdwn sections, split between lines
// so that each stays within Slack's 3,000 characters, without a colour bar.
// Past 50 sections the last block says how many lines were left out.
// Digests are never threaded.
//
// # Modes
//
// Webhook mode (webhook_url) posts to an incoming webhook. Slack answers a
// webhook with "ok" and no message timestamp, so webhook messages cannot be
// threaded: every message is posted to the channel on its own.
//
// Bot mode (token + channel, optional api_url) posts with chat.postMessage
// and threads an incident: the first message of an incident is posted to the
// channel and its ts is remembered through notifiers.Threads (keyed by the
// notifier name and Alert.ID; the daemon's store keeps it across restarts).
// Repeats, eased and escalated notices and the resolution reply in that
// thread. A message that carries alerts of several incidents is threaded
// only when all of them share one known thread; otherwise it goes to the
// channel, and its ts becomes the thread of every incident in it that had
// none. A reply that is an escalation or a critical repeat is also broadcast
// to the channel (reply_broadcast), because thread replies do not notify
// channel members and these must wake someone. If Slack no longer knows a
// thread the message is posted to the channel and starts a new one. Test
// notifications are never threaded.
//
// # Errors
//
// Network errors, timeouts, HTTP 408, 429 and 5xx and the API errors
// "ratelimited", "internal_error" or "fatal_error" are retryable; a
// Retry-After from Slack is reported as a *notifiers.RetryAfterError. A
// rejected token, an unknown or archived channel, a bot that is not in the
// channel, a revoked webhook and a payload Slack refuses are permanent. An
// API error code this package does not know is retried: that costs retries
// bounded by the outbox's max_age, where the opposite could lose a
// liquidation warning. Error strings and log lines never contain the token or
// the webhook URL.
package slack
