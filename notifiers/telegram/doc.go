// Package telegram delivers alerts to a Telegram chat, group, channel or
// forum topic through the Bot API's sendMessage (github.com/go-telegram/bot),
// formatted as Telegram HTML.
//
// A message reads, per alert, most important first:
//
//	🔴 CRITICAL · escalated                (bold severity, then the kind)
//	liquidation-near · main · BTCUSDT long (rule bold, account, symbol, side)
//	liq_distance_pct 6.21 below 7          (a resolution: "no longer below 7")
//	summary
//	mark 91234.5 · liq 85570.1 · liq distance 6.21% · leverage 5x · …
//	Runbook: …
//	Labels: desk=alpha
//	Started 2026-11-28 03:14 UTC
//
// A resolution leads with "✅ RESOLVED · was warning", a notify-test alert
// with "🧪 TEST — not a real alert". A closing notice (notifiers.KindClosed)
// is no recovery: it leads with "💥 LIQUIDATED · was critical" (it always
// rings, even with silent_warnings) or "⏹ CLOSED · was warning", and states
// the metric's last value. An infinite figure reads "∞ (equity ≤ 0)". Every dynamic text is escaped for
// Telegram's HTML mode (&, < and >; no dynamic text goes into an attribute)
// and clipped with an ellipsis to a per-field cap, so one alert always fits
// one message. Alerts of one Notify are joined into one message until the
// next would pass Telegram's 4,096 characters, then a new message starts:
// the split falls between alerts only, never inside an entity. The
// Notifier is a notifiers.Splitter: the dispatcher sends each of those
// messages with a Notify of its own and resumes at the first undelivered
// one.
//
// A digest (notifiers.KindDigest) reads "📋 DIGEST · NAME" (bold DIGEST),
// then the digest's text, escaped, in <pre>. A long digest is split
// between lines into messages of their own, each with the head line and
// its own <pre>, marked "(k/n)". Digest messages are sent silently
// (disable_notification, whatever silent_warnings says: a digest is never
// urgent) and are never replies to an incident.
//
// Config (config.Notifier, type telegram): token or token_file (from
// @BotFather), chat_id (numeric, e.g. "-1001234567890", or "@channel"),
// message_thread_id (post into a forum topic), silent_warnings (deliver
// messages without a critical firing alert with disable_notification, so
// only critical alerts ring the phone), api_url (a self-hosted Bot API
// server or a proxy), timeout (one attempt, applied per message).
//
// The bot token is part of every request URL; errors and log lines have it
// replaced by "<token>".
package telegram
