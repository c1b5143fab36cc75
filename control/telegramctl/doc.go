// Package telegramctl answers Telegram commands (/status, /positions,
// /alerts, /mute, /unmute, /ack, /help) through the bots of the config's
// telegram notifiers, by long polling (getUpdates).
//
// One poller runs per distinct bot token whose notifiers take commands
// (commands: true, the default); it accepts commands only from those
// notifiers' chat_id values. Any member of an allowed group chat may use
// every command (/mute and /ack too): the chat is the unit of trust, so
// configure only chats whose members you trust with your alerts. A
// message from any other chat gets no reply and one log line (chat id,
// user, command; never the token). A command addressed to another bot
// ("/mute@otherbot"), or by name before getMe told the bot's own, is
// ignored; an unknown command in a group gets one line, not the list.
// Replies use Telegram's HTML subset (<b>, <i>, <code> only, every <, >
// and & escaped) and are split at line boundaries into messages of at
// most 4,096 characters.
//
// A command waiting when the poller stops (reload, SIGTERM) is not lost:
// updates are confirmed to Telegram only once handled, so the next poller
// answers it (one handled just before a stop may run again after a
// restart of the daemon, if younger than five minutes). A reload that
// changes only the chats does not restart the poller.
//
// Polling never stops on an error: a 409 Conflict (another program polls
// the token, or a webhook is set on it) or a 401 (token rejected) is
// logged once with its fix, and getUpdates is retried with a backoff that
// grows to a minute, until it succeeds or the context ends.
//
// The package only reads the daemon through Control; watcher does not
// import it (cmd/marginwatch wires the two).
package telegramctl
