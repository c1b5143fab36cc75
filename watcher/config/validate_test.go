package config

import (
	"strings"
	"testing"
)

// TestValidation checks each validation with the exact message, on inline
// configs named c.yaml.
func TestValidation(t *testing.T) {
	const acct = "accounts: [{name: main, exchange: simulated, scenario: calm}]\n"
	const term = "notifiers: [{name: term, type: console}]\n"
	tests := []struct {
		name, src, want string
	}{
		{"ok simulated", acct, ``},
		{"account name missing", "accounts: [{exchange: simulated, scenario: calm}]\n", `c.yaml:1:12: accounts[0].name: is required: a short unique name for this account, e.g. "main"`},
		{"account name whitespace", "accounts: [{name: my acct, exchange: simulated, scenario: calm}]\n", `c.yaml:1:19: accounts[0].name: "my acct" contains whitespace; use e.g. "my-acct"`},
		{"account name duplicate", "accounts: [{name: main, exchange: simulated, scenario: calm}, {name: main, exchange: simulated, scenario: crash}]\n", `c.yaml:1:70: accounts[1].name: duplicate account name "main" (also accounts[0] at line 1); account names must be unique`},
		{"account name reserved", "accounts: [{name: marginwatch, exchange: simulated, scenario: calm}]\n", `c.yaml:1:19: accounts[0].name: "marginwatch" is reserved for marginwatch's alerts about itself; name the account after the exchange or desk, e.g. "main"`},
		{"exchange unknown", "accounts: [{name: a, exchange: binance-usd, api_key: k, api_secret: s}]\n", `c.yaml:1:32: accounts[0].exchange: unknown exchange "binance-usd" (did you mean "binance-usdm"?)`},
		{"exchange missing", "accounts: [{name: a}]\n", `c.yaml:1:12: accounts[0].exchange: is required: binance-usdm, binance-coinm, bybit, hyperliquid or simulated`},
		{"binance keys missing", "accounts: [{name: a, exchange: binance-coinm}]\n", `c.yaml:1:12: accounts[0].api_key: is required for a binance-coinm account: set api_key (e.g. ${BINANCE_API_KEY}) or api_key_file to a read-only API key
c.yaml:1:12: accounts[0].api_secret: is required for a binance-coinm account: set api_secret (e.g. ${BINANCE_API_SECRET}) or api_secret_file`},
		{"binance empty key", "accounts: [{name: a, exchange: binance-usdm, api_key: \"${EMPTY}\", api_secret: s}]\n", `c.yaml:1:55: accounts[0].api_key: is empty (an empty environment variable?); give the secret, or remove the key`},
		{"binance with scenario", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret: s, scenario: crash}]\n", `c.yaml:1:83: accounts[0].scenario: only a simulated account takes a scenario; remove it, or set exchange: simulated`},
		{"simulated scenario missing", "accounts: [{name: a, exchange: simulated}]\n", `c.yaml:1:12: accounts[0].scenario: is required for a simulated account: crash, funding-spike or calm`},
		{"simulated scenario unknown", "accounts: [{name: a, exchange: simulated, scenario: crahs}]\n", `c.yaml:1:53: accounts[0].scenario: unknown scenario "crahs" (did you mean "crash"?)`},
		{"simulated with keys", "accounts: [{name: a, exchange: simulated, scenario: calm, api_key: k, api_secret_file: /x}]\n", `c.yaml:1:68: accounts[0].api_key: a simulated account needs no keys; remove api_key
c.yaml:1:88: accounts[0].api_secret_file: a simulated account needs no keys; remove api_secret_file`},
		{"poll too fast", "accounts: [{name: a, exchange: simulated, scenario: calm, poll_interval: 500ms}]\n", `c.yaml:1:74: accounts[0].poll_interval: 500ms is too short: poll at most once a second (1s or more), exchanges rate-limit`},
		{"stale not after poll", "accounts: [{name: a, exchange: simulated, scenario: calm, poll_interval: 1m}]\n", `c.yaml:1:12: accounts[0].stale_after: 1m0s must be longer than poll_interval (1m0s), or data would count as stale between two polls; raise stale_after`},
		{"defaults stale not after poll", "defaults: {poll_interval: 10s, stale_after: 10s}\n", `c.yaml:1:45: defaults.stale_after: 10s must be longer than poll_interval (10s), or data would count as stale between two polls; raise stale_after`},
		{"reconcile zero", "accounts: [{name: a, exchange: simulated, scenario: calm, reconcile_interval: 0s}]\n", `c.yaml:1:79: accounts[0].reconcile_interval: must be more than 0 (e.g. 5m): how often a streaming account is re-read over REST`},
		{"endpoint scheme", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret: s, endpoint: ftp://x, stream_endpoint: http://127.0.0.1:1}]\n", `c.yaml:1:83: accounts[0].endpoint: "ftp://x" is not an absolute http or https URL (e.g. https://example.com/path)
c.yaml:1:109: accounts[0].stream_endpoint: "http://127.0.0.1:1" is not an absolute ws or wss URL (e.g. ws://127.0.0.1:8080)`},
		{"endpoint plain http to another machine", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret: s, endpoint: \"http://10.0.0.5:8080\", stream_endpoint: \"ws://localhost.example.com:8080\"}]\n", `c.yaml:1:83: accounts[0].endpoint: "http://10.0.0.5:8080" is plain http to another machine: the API key and the account's data would cross the network in clear text; use https://, or plain http only to this machine (127.0.0.1, ::1 or localhost, e.g. a local test server or a TLS-terminating proxy)
c.yaml:1:124: accounts[0].stream_endpoint: "ws://localhost.example.com:8080" is plain ws to another machine: the API key and the account's data would cross the network in clear text; use wss://, or plain ws only to this machine (127.0.0.1, ::1 or localhost, e.g. a local test server or a TLS-terminating proxy)`},
		{"endpoint plain http to this machine", "accounts:\n" +
			"  - {name: a, exchange: binance-usdm, api_key: k, api_secret: s, endpoint: \"http://127.0.0.1:8080\", stream_endpoint: \"ws://127.1.2.3:8080\"}\n" +
			"  - {name: b, exchange: binance-usdm, api_key: k, api_secret: s, endpoint: \"http://[::1]:8080/api\", stream_endpoint: \"ws://localhost:8080\"}\n" +
			"  - {name: c, exchange: binance-coinm, api_key: k, api_secret: s, endpoint: \"http://LocalHost.\", stream_endpoint: \"ws://[::ffff:127.0.0.1]:1\"}\n" +
			"  - {name: d, exchange: binance-coinm, api_key: k, api_secret: s, endpoint: \"https://dapi.example.com\", stream_endpoint: \"wss://dstream.example.com\"}\n", ``},
		{"permission check too often", "accounts: [{name: a, exchange: simulated, scenario: calm, permission_check_interval: 30s}, {name: b, exchange: simulated, scenario: calm, permission_check_interval: 0s}, {name: c, exchange: simulated, scenario: calm, permission_check_interval: 1m}]\n", `c.yaml:1:86: accounts[0].permission_check_interval: 30s is too short: check the API key's permissions at most once a minute (1m or more; the default 1h is plenty), every check spends request weight the exchange rate-limits
c.yaml:1:166: accounts[1].permission_check_interval: 0s is too short: check the API key's permissions at most once a minute (1m or more; the default 1h is plenty), every check spends request weight the exchange rate-limits`},
		{"label name", "accounts: [{name: a, exchange: simulated, scenario: calm, labels: {1desk: x}}]\n", `c.yaml:1:75: accounts[0].labels.1desk: label name "1desk": use letters, digits and _, not starting with a digit`},
		{"notifier type missing", "notifiers: [{name: n}]\n", `c.yaml:1:13: notifiers[0].type: is required: console, slack, telegram, email or webhook`},
		{"notifier type unknown", "notifiers: [{name: n, type: telegarm}]\n", `c.yaml:1:29: notifiers[0].type: unknown notifier type "telegarm" (did you mean "telegram"?)`},
		{"notifier name missing and duplicate", "notifiers: [{type: console}, {name: a, type: console}, {name: a, type: console}]\n", `c.yaml:1:13: notifiers[0].name: is required: a short unique name for this notifier, e.g. "ops"
c.yaml:1:63: notifiers[2].name: duplicate notifier name "a" (also notifiers[1] at line 1); notifier names must be unique`},
		{"console extra field", "notifiers: [{name: n, type: console, url: http://x}]\n", `c.yaml:1:43: notifiers[0].url: not a field of a console notifier (a console notifier takes only name, type, timeout and max_age)`},
		{"api_url on webhook", "notifiers: [{name: n, type: webhook, url: https://x, api_url: https://y}]\n", `c.yaml:1:63: notifiers[0].api_url: not a field of a webhook notifier (a webhook notifier takes url, url_file, secret, secret_file, timeout and max_age)`},
		{"slack nothing", "notifiers: [{name: n, type: slack}]\n", `c.yaml:1:13: notifiers[0].webhook_url: is required: a Slack incoming-webhook URL, or token + channel for bot mode`},
		{"slack both modes", "notifiers: [{name: n, type: slack, webhook_url: https://x, token: t, channel: c}]\n", `c.yaml:1:67: notifiers[0].token: webhook_url and token are two ways to post: use webhook_url (webhook mode) or token + channel (bot mode), not both`},
		{"slack token without channel", "notifiers: [{name: n, type: slack, token: t}]\n", `c.yaml:1:13: notifiers[0].channel: is required with token (bot mode): the channel to post to, e.g. C0123456789`},
		{"slack webhook with channel", "notifiers: [{name: n, type: slack, webhook_url: https://x, channel: c}]\n", `c.yaml:1:69: notifiers[0].channel: is for bot mode (token + channel); a webhook posts to its own channel: remove channel`},
		{"slack webhook with api_url", "notifiers: [{name: n, type: slack, webhook_url: https://x, api_url: https://y}]\n", `c.yaml:1:69: notifiers[0].api_url: is for bot mode (token + channel); a webhook posts to webhook_url: remove api_url`},
		{"slack bad api_url", "notifiers: [{name: n, type: slack, token: t, channel: c, api_url: \"127.0.0.1:9\"}]\n", `c.yaml:1:67: notifiers[0].api_url: "127.0.0.1:9" is not an absolute https or http URL (e.g. https://example.com/path)`},
		{"telegram nothing", "notifiers: [{name: n, type: telegram}]\n", `c.yaml:1:13: notifiers[0].token: is required: the bot token from @BotFather (token: ${TELEGRAM_TOKEN} or token_file)
c.yaml:1:13: notifiers[0].chat_id: is required: the chat to post to, e.g. "-1001234567890" or "@channelname"`},
		{"telegram bad chat_id", "notifiers: [{name: n, type: telegram, token: t, chat_id: abc, message_thread_id: 0}]\n", `c.yaml:1:58: notifiers[0].chat_id: "abc" is not a chat id: use the numeric id (e.g. "-1001234567890") or "@channelname"
c.yaml:1:82: notifiers[0].message_thread_id: must be a forum topic id (more than 0); remove it to post to the chat itself`},
		{"email nothing", "notifiers: [{name: n, type: email}]\n", `c.yaml:1:13: notifiers[0].smtp: is required: the SMTP server as host:port, e.g. smtp.example.com:587
c.yaml:1:13: notifiers[0].from: is required: the sender address, e.g. marginwatch@example.com
c.yaml:1:13: notifiers[0].to: is required: at least one recipient, e.g. [me@example.com]`},
		{"email bad values", "notifiers: [{name: n, type: email, smtp: smtp.example.com, tls: ssl, from: nobody, to: [ok@example.com, bad], password: p}]\n", `c.yaml:1:42: notifiers[0].smtp: "smtp.example.com" is not host:port (e.g. smtp.example.com:587)
c.yaml:1:65: notifiers[0].tls: unknown tls mode "ssl" (use starttls, implicit or none)
c.yaml:1:76: notifiers[0].from: "nobody" is not an email address (e.g. marginwatch@example.com)
c.yaml:1:105: notifiers[0].to[1]: "bad" is not an email address (e.g. me@example.com)
c.yaml:1:121: notifiers[0].password: needs username: set the SMTP login name too`},
		{"email password in clear text", "notifiers: [{name: n, type: email, smtp: \"smtp.example.com:25\", tls: none, username: u, password: p, from: a@example.com, to: [b@example.com]}, {name: m, type: email, smtp: \"mail:25\", tls: none, username: u, password_file: /nonexistent, from: a@example.com, to: [b@example.com]}]\n", `c.yaml:1:70: notifiers[0].tls: none would send the SMTP password to smtp.example.com in clear text over the network; use tls: starttls (usually port 587) or tls: implicit (usually port 465), or send through a relay on this machine (smtp: 127.0.0.1:25) that forwards with TLS
c.yaml:1:190: notifiers[1].tls: none would send the SMTP password to mail in clear text over the network; use tls: starttls (usually port 587) or tls: implicit (usually port 465), or send through a relay on this machine (smtp: 127.0.0.1:25) that forwards with TLS
c.yaml:1:224: notifiers[1].password_file: cannot read the secret: stat /nonexistent: no such file or directory`},
		{"email tls none to this machine or without password", "notifiers:\n" +
			"  - {name: a, type: email, smtp: \"127.0.0.1:25\", tls: none, username: u, password: p, from: a@example.com, to: [b@example.com]}\n" +
			"  - {name: b, type: email, smtp: \"[::1]:25\", tls: none, username: u, password: p, from: a@example.com, to: [b@example.com]}\n" +
			"  - {name: c, type: email, smtp: \"localhost:25\", tls: none, username: u, password: p, from: a@example.com, to: [b@example.com]}\n" +
			"  - {name: d, type: email, smtp: \"smtp.example.com:25\", tls: none, from: a@example.com, to: [b@example.com]}\n" +
			"  - {name: e, type: email, smtp: \"smtp.example.com:587\", username: u, password: p, from: a@example.com, to: [b@example.com]}\n", ``},
		{"webhook nothing", "notifiers: [{name: n, type: webhook}]\n", `c.yaml:1:13: notifiers[0].url: is required: the http(s) URL to POST alerts to`},
		{"webhook ftp", "notifiers: [{name: n, type: webhook, url: ftp://x}]\n", `c.yaml:1:43: notifiers[0].url: is not an absolute https or http URL (e.g. https://example.com/path)`},
		{"timeout zero", "notifiers: [{name: n, type: console, timeout: 0s}]\n", `c.yaml:1:47: notifiers[0].timeout: must be more than 0 (e.g. 10s): how long one delivery attempt may take`},
		{"max_age below timeout", "notifiers: [{name: n, type: console, timeout: 30s, max_age: 10s}]\n", `c.yaml:1:61: notifiers[0].max_age: 10s must be at least timeout (30s), or a notification would expire during its first attempt`},
		{"rule name bad", "rules: [{name: Liquidation Near, metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:16: rules[0].name: "Liquidation Near": use lower-case letters, digits, '-', '_' and '.', starting with a letter or digit (e.g. "liquidation-near")`},
		{"rule name missing", "rules: [{metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:9: rules[0].name: is required: a unique name such as "liquidation-near"`},
		{"rule name built-in", "rules: [{name: data-stale, metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:16: rules[0].name: "data-stale" is the built-in rule raised when data stops; pick another name`},
		{"rule name of a self alert", "rules: [{name: notifier-failing, metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:16: rules[0].name: "notifier-failing" is a built-in rule of marginwatch about itself; pick another name`},
		{"scope unknown", "rules: [{name: r, scope: positon, metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:26: rules[0].scope: unknown scope "positon" (did you mean "position"?)`},
		{"scope unknown far", "rules: [{name: r, scope: portfolio, metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:26: rules[0].scope: unknown scope "portfolio" (use account, position or event)`},
		{"metric missing", "rules: [{name: r, above: {warning: 5}}]\n", `c.yaml:1:9: rules[0].metric: is required: the metric to watch, e.g. liq_distance_pct`},
		{"metric unknown far", "rules: [{name: r, metric: pnl, above: {warning: 5}}]\n", `c.yaml:1:27: rules[0].metric: unknown metric "pnl" (known metrics: margin_ratio, equity, available_balance, unrealized_pnl, effective_leverage, net_exposure_ratio, drawdown_pct, funding_next_cost, funding_paid_24h, position_count, data_age_seconds, liq_distance_pct, liq_distance_atr, leverage, size_pct_equity, funding_rate, funding_apr_pct, unrealized_pnl_pct, has_stop_loss, stop_coverage_pct, stop_distance_pct)`},
		{"metric wrong scope", "rules: [{name: r, scope: position, metric: equity, below: {warning: 5}}, {name: s, scope: account, metric: leverage, above: {warning: 5}}]\n", `c.yaml:1:26: rules[0].scope: equity is an account metric; use scope: account (or leave scope out)
c.yaml:1:91: rules[1].scope: leverage is a position metric; use scope: position (or leave scope out)`},
		{"above and below", "rules: [{name: r, metric: leverage, above: {warning: 5}, below: {warning: 1}}]\n", `c.yaml:1:65: rules[0].below: a rule has either above or below, not both; split it into two rules, or into two conditions under any:`},
		{"no thresholds", "rules: [{name: r, metric: leverage}]\n", `c.yaml:1:9: rules[0]: needs thresholds: above or below, e.g. below: {warning: 15, critical: 7}`},
		{"empty thresholds", "rules: [{name: r, metric: leverage, above: {}}]\n", `c.yaml:1:44: rules[0].above: needs at least one severity, e.g. {warning: 15, critical: 7}`},
		{"severity key unknown", "rules: [{name: r, metric: leverage, above: {warn: 5}}]\n", `c.yaml:1:51: rules[0].above.warn: unknown severity "warn" (did you mean "warning"?)`},
		{"info above warning", "rules: [{name: r, metric: leverage, above: {info: 6, critical: 5}}]\n", `c.yaml:1:64: rules[0].above.critical: must be above info (6) for an "above" rule`},
		{"hysteresis negative", "rules: [{name: r, metric: leverage, above: {warning: 5}, hysteresis: -1}]\n", `c.yaml:1:70: rules[0].hysteresis: must be 0 or more: how far the value must come back past a threshold to step down`},
		{"hysteresis too big", "rules: [{name: r, metric: liq_distance_pct, below: {info: 30, warning: 15, critical: 12}, hysteresis: 3}]\n", `c.yaml:1:103: rules[0].hysteresis: 3 must be smaller than the gap between warning (15) and critical (12), or the alert could not step down between them; lower hysteresis or move the thresholds apart`},
		{"repeat unused severity", "rules: [{name: r, metric: leverage, above: {warning: 5}, repeat: {info: 1h, warning: 0s, urgent: 1m}}]\n", `c.yaml:1:73: rules[0].repeat.info: the rule never fires with info; remove it (the rule has warning)
c.yaml:1:86: rules[0].repeat.warning: must be more than 0 (e.g. 1h): how often to remind while the alert keeps firing
c.yaml:1:98: rules[0].repeat.urgent: unknown severity "urgent" (use info, warning or critical)`},
		{"repeat negative", "rules: [{name: r, metric: leverage, above: {warning: 5}, repeat: {warning: -1m}}]\n", `c.yaml:1:76: rules[0].repeat.warning: "-1m" is negative; durations must be 0 or more`},
		{"repeat zero for all", "rules: [{name: r, metric: leverage, above: {warning: 5}, repeat: 0s}]\n", `c.yaml:1:66: rules[0].repeat: must be more than 0 (e.g. 1h): how often to remind while the alert keeps firing`},
		{"window without drawdown", "rules: [{name: r, metric: equity, below: {warning: 5}, window: 1h}]\n", `c.yaml:1:64: rules[0].window: only drawdown_pct takes a window; remove it`},
		{"window zero", "rules: [{name: r, metric: drawdown_pct, above: {warning: 5}, window: 0s}]\n", `c.yaml:1:70: rules[0].window: must be more than 0 (e.g. 24h, or day for the calendar day): the span the equity peak is taken over`},
		{"symbols on account rule", "rules: [{name: r, metric: equity, below: {warning: 5}, symbols: [BTCUSDT, \"\"]}]\n", `c.yaml:1:65: rules[0].symbols: only position rules filter by symbol; remove symbols, or use scope: position
c.yaml:1:75: rules[0].symbols[1]: "" is not a symbol (e.g. BTCUSDT)`},
		{"event rule empty", "rules: [{name: r, scope: event}]\n", `c.yaml:1:9: rules[0].event: is required for scope: event: margin_call, liquidation or key_problem
c.yaml:1:9: rules[0].severity: is required for an event rule: info, warning or critical`},
		{"event rule bad values", "rules: [{name: r, scope: event, event: margincall, severity: page, metric: equity, above: {warning: 1}, for: 1m}]\n", `c.yaml:1:40: rules[0].event: unknown event "margincall" (did you mean "margin_call"?)
c.yaml:1:62: rules[0].severity: unknown severity "page" (use info, warning or critical)
c.yaml:1:76: rules[0].metric: an event rule has no metric (events fire once per occurrence); remove it
c.yaml:1:91: rules[0].above: an event rule has no above (events fire once per occurrence); remove it
c.yaml:1:110: rules[0].for: an event rule has no for (events fire once per occurrence); remove it`},
		{"threshold rule with severity", "rules: [{name: r, metric: leverage, above: {warning: 5}, severity: critical, event: liquidation}]\n", `c.yaml:1:68: rules[0].severity: only an event rule (scope: event) takes severity; a threshold rule names its severities in above/below, e.g. above: {warning: 5}
c.yaml:1:85: rules[0].event: only an event rule (scope: event) takes event; a threshold rule names its severities in above/below, e.g. above: {warning: 5}`},
		{"notify empty", term + "rules: [{name: r, metric: leverage, above: {warning: 5}, notify: []}]\n", `c.yaml:2:66: rules[0].notify: is empty: list notifier names, or remove notify to mean every notifier`},
		{"notify without notifiers", "rules: [{name: r, metric: leverage, above: {warning: 5}, notify: [ops]}]\n", `c.yaml:1:67: rules[0].notify[0]: unknown notifier "ops": no notifiers are configured`},
		{"accounts unknown", acct + "rules: [{name: r, metric: leverage, above: {warning: 5}, accounts: [mian]}]\n", `c.yaml:2:69: rules[0].accounts[0]: unknown account "mian" (did you mean "main"?)`},
		{"digest ok", acct + term + "digests: [{name: d, schedule: \"@daily\", notify: [term], accounts: [main]}]\n", ``},
		{"digest bad schedule", "digests: [{name: d, schedule: \"0 8 * *\"}, {name: d, schedule: \"CRON_TZ=Europe/Berlin\"}, {name: e, schedule: \"CRON_TZ=Nowhere/Zone 0 8 * * *\"}, {name: f}]\n", `c.yaml:1:31: digests[0].schedule: "0 8 * *": expected exactly 5 fields, found 4: [0 8 * *] (use 5 fields "minute hour day-of-month month weekday", e.g. "0 8 * * *", optionally after CRON_TZ=Europe/Berlin)
c.yaml:1:50: digests[1].name: duplicate digest name "d" (also digests[0] at line 1); digest names must be unique
c.yaml:1:63: digests[1].schedule: "CRON_TZ=Europe/Berlin": no schedule after the time zone (use 5 fields "minute hour day-of-month month weekday", e.g. "0 8 * * *", optionally after CRON_TZ=Europe/Berlin)
c.yaml:1:109: digests[2].schedule: "CRON_TZ=Nowhere/Zone 0 8 * * *": provided bad location Nowhere/Zone: unknown time zone Nowhere/Zone (use 5 fields "minute hour day-of-month month weekday", e.g. "0 8 * * *", optionally after CRON_TZ=Europe/Berlin)
c.yaml:1:144: digests[3].schedule: is required: a cron schedule, e.g. "0 8 * * *" or "CRON_TZ=Europe/Berlin 0 8 * * *"`},
		{"digest unknown refs", acct + term + "digests: [{name: d, schedule: \"0 8 * * *\", notify: [ops], accounts: [main2]}]\n", `c.yaml:3:53: digests[0].notify[0]: unknown notifier "ops" (configured: term)
c.yaml:3:70: digests[0].accounts[0]: unknown account "main2" (did you mean "main"?)`},
		{"listen not host:port", "listen: \"9464\"\n", `c.yaml:1:9: listen: "9464" is not host:port (e.g. 127.0.0.1:9464; "" disables the admin API)`},
		{"listen bad port", "listen: \"localhost:http\"\n", `c.yaml:1:9: listen: "localhost:http" has a bad port "http", not a number up to 65535 (e.g. 127.0.0.1:9464; "" disables the admin API)`},
		{"listen empty disables", "listen: \"\"\n", ``},
		{"state_dir empty", "state_dir: \"\"\n", `c.yaml:1:12: state_dir: must not be empty: the directory for marginwatch's database, e.g. /var/lib/marginwatch`},
		{"heartbeat both", "heartbeat_url: https://x\nheartbeat_url_file: /x\n", `c.yaml:2:21: heartbeat_url_file: set heartbeat_url or heartbeat_url_file, not both`},
		{"root not a mapping", "- a\n- b\n", `c.yaml:1:1: must be a mapping of keys (key: value), not a list`},
		{"empty file", "", ``},
		{"comments only", "# nothing yet\n", ``},
		{"bool", "accounts: [{name: a, exchange: simulated, scenario: calm, stream: yes}]\n", `c.yaml:1:67: accounts[0].stream: "yes" is not a boolean (use true or false)`},
		{"int", "notifiers: [{name: n, type: telegram, token: t, chat_id: \"1\", message_thread_id: 1.5}]\n", `c.yaml:1:82: notifiers[0].message_thread_id: "1.5" is not a whole number`},
		{"float", "rules: [{name: r, metric: leverage, above: {warning: .nan, critical: abc}}]\n", `c.yaml:1:54: rules[0].above.warning: ".nan" is not a number (use e.g. 15 or 0.5)
c.yaml:1:70: rules[0].above.critical: "abc" is not a number (use e.g. 15 or 0.5)`},
		{"list expected", "notifiers: [{name: n, type: email, smtp: \"h:25\", from: a@example.com, to: b@example.com}]\n", `c.yaml:1:75: notifiers[0].to: must be a list (e.g. [a, b] or one "- item" per line), not "b@example.com"`},
		{"mapping expected", "defaults: [15s]\n", `c.yaml:1:11: defaults: must be a mapping of keys (key: value), not a list`},
		{"scalar expected", "listen: {a: b}\n", `c.yaml:1:9: listen: must be a single value, not a mapping`},
		{"negative duration", "rules: [{name: r, metric: leverage, above: {warning: 5}, for: -1m}]\n", `c.yaml:1:63: rules[0].for: "-1m" is negative; durations must be 0 or more`},
		{"element not a mapping", "accounts: [main]\n", `c.yaml:1:12: accounts[0]: must be a mapping of keys (key: value), not "main"`},
		{"merge key not a mapping", "x-base: &x {a: 1}\nrules: [{<<: 5, name: r, metric: leverage, above: {warning: 5}}]\n", `c.yaml:2:14: rules[0]: a "<<" merge key needs a mapping or a list of mappings (e.g. <<: *defaults)`},
		{"merge keys", "x-base: &x {metric: leverage, above: {warning: 5}}\nrules: [{<<: *x, name: r}, {<<: [*x], name: s, metric: equity, above: {warning: 2}, severity: warning}]\n", `c.yaml:2:95: rules[1].severity: only an event rule (scope: event) takes severity; a threshold rule names its severities in above/below, e.g. above: {warning: 5}`},
		{"second document", "listen: \"\"\n---\nlisten: \"\"\n", `c.yaml:2:1: a second YAML document: the file must hold exactly one; remove the second "---"`},
		{"unterminated var", "listen: \"${LISTEN\"\n", `c.yaml:1:9: listen: unterminated ${ (write ${NAME}, or $$ for a literal $)`},
		{"map value empty", "accounts: [{name: a, exchange: simulated, scenario: calm, labels: {desk: }}]\n", `c.yaml:1:68: accounts[0].labels.desk: has no value`},
		{"null keeps default", "listen:\nstate_dir: ~\ndefaults:\n", ``},
		{"top-level typo", "notifier: []\n", `c.yaml:1:1: unknown key "notifier" (did you mean "notifiers"?)`},
		{"key not a string", "? [a]\n: b\n", `c.yaml:1:3: a key must be a plain string`},
		{"secret file missing", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret_file: /nonexistent/secret}]\n", `c.yaml:1:75: accounts[0].api_secret_file: cannot read the secret: stat /nonexistent/secret: no such file or directory`},
		{"secret file empty path", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret_file: \"\"}]\n", `c.yaml:1:75: accounts[0].api_secret_file: is empty: give the path of a file holding the secret, or remove it`},
		{"secret file is a directory", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret_file: /}]\n", `c.yaml:1:75: accounts[0].api_secret_file: cannot read the secret: / is not a regular file`},
		{"secret file of another notifier type", "notifiers: [{name: n, type: webhook, url: https://x, token_file: /nonexistent}]\n", `c.yaml:1:66: notifiers[0].token_file: not a field of a webhook notifier (a webhook notifier takes url, url_file, secret, secret_file, timeout and max_age)`},
		{"rule_files bad pattern", "rule_files: [\"[\"]\n", `c.yaml:1:14: rule_files[0]: bad pattern "[": syntax error in pattern (in a glob * ? [ are special; escape them with \)`},
		{"rule_files no match", "rule_files: [testdata/none/*.yaml]\n", `c.yaml:1:14: rule_files[0]: "testdata/none/*.yaml" matches no file and the config has no other rules, so only the built-in data-stale rule would watch; fix the pattern (a relative one is relative to the config file's folder), or write rules: [] to run without rules on purpose`},
		{"rule_files matches a directory", "rule_files: [testd*]\n", `c.yaml:1:14: rule_files[0]: cannot read rule file: testdata is not a regular file`},
		{"syntax tab", "accounts:\n\t- name: a\n", "c.yaml:2:1: YAML syntax: found character that cannot start any token (YAML indents with spaces, not tabs; quote values starting with @ or `)"},
		{"syntax colon in value", "listen: a: b\n", `c.yaml:1:10: YAML syntax: mapping values are not allowed in this context (quote a value that contains ": ")`},
	}
	env := envOf(map[string]string{"EMPTY": ""})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(tt.src, env); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestTelegramBotOneServer: two commands-taking telegram notifiers on one
// bot token must use the same api_url (one bot polls one server); the
// error names both notifiers and the fix.
func TestTelegramBotOneServer(t *testing.T) {
	for _, tc := range []struct {
		name, notifiers, want string
	}{
		{"same server", `
  - {name: a, type: telegram, token: "123:abc", chat_id: "-100", api_url: "https://api.telegram.org/"}
  - {name: b, type: telegram, token: "123:abc", chat_id: "-200", api_url: "https://api.telegram.org"}`, ""},
		{"other server, no commands", `
  - {name: a, type: telegram, token: "123:abc", chat_id: "-100"}
  - {name: b, type: telegram, token: "123:abc", chat_id: "-200", api_url: "http://127.0.0.1:8081", commands: false}`, ""},
		{"other token", `
  - {name: a, type: telegram, token: "123:abc", chat_id: "-100"}
  - {name: b, type: telegram, token: "456:def", chat_id: "-200", api_url: "http://127.0.0.1:8081"}`, ""},
		{"other server", `
  - {name: a, type: telegram, token: "123:abc", chat_id: "-100"}
  - {name: b, type: telegram, token: "123:abc", chat_id: "-200", api_url: "http://127.0.0.1:8081"}`,
			`c.yaml:5:75: notifiers[1].api_url: "http://127.0.0.1:8081" differs from the api_url of notifier "a" (line 4), which takes commands through the same bot token: one bot polls one server; give both the same api_url, or set commands: false on one of them`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "accounts:\n  - {name: demo, exchange: simulated, scenario: funding-spike}\nnotifiers:" + tc.notifiers + "\n"
			_, err := Parse("c.yaml", []byte(src), envOf(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}
