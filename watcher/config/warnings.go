package config

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Warning is something in a valid config that loads and runs but will not
// do what it seems to say, such as an event rule that can never fire. It
// prints as "file:line:col: warning: field.path: message". A warning never
// stops marginwatch: `check` prints it and still exits 0, `run` logs it.
type Warning Error

func (w Warning) String() string { return format(w.File, w.Pos, "warning", w.Path, w.Msg) }

// warnf is Errorf for a warning.
func (l Location) warnf(field, format string, args ...any) Warning {
	return Warning(*l.Errorf(field, format, args...))
}

// Warnings returns what the config, as loaded by Load or Parse, will not do
// as written, in file order (the config file, then each rule file, by line
// and column). It reads the config only and is cheap: call it after every
// load or reload.
//
// What it reports:
//   - stream: true on a simulated account, which has no streams;
//   - an event rule that cannot fire on the accounts it applies to:
//     margin_call on an account that is not streamed (only Binance's
//     user-data stream reports it), liquidation and key_problem on a
//     simulated account;
//   - a Slack or Telegram api_url, or a Slack webhook_url, that is plain
//     http to another machine: the token (or the webhook URL, which is
//     the credential) would cross the network in clear text. It is a
//     warning, not an error, because a self-hosted Bot API server on a
//     private network is a legitimate setup that only the user can judge.
//     A webhook notifier's url may be plain http anywhere: its body is
//     signed and its secret never leaves the machine;
//   - a rule_files wildcard that matches no file (when other rules remain,
//     or `rules: []` says none are meant; else it is an error);
//   - a *_file secret other users of the machine can read (chmod 600);
//   - `listen` reachable from other machines without an admin token:
//     /metrics and /healthz answer anyone;
//   - alerts that reach nobody under systemd (see ConsoleOnly);
//   - a mute window matcher rule=x or account=x naming no rule or account.
func (c *Config) Warnings() []Warning {
	ws := c.trapWarnings()
	for i := range c.Notifiers {
		ws = append(ws, notifierWarnings(&c.Notifiers[i])...)
	}
	for i := range c.Accounts {
		if a := &c.Accounts[i]; a.Stream && a.Exchange == "simulated" {
			ws = append(ws, a.At.warnf("stream", "the simulated exchange has no streams: account %s is polled every poll_interval (remove stream: true)", a.Name))
		}
	}
	for i := range c.Rules {
		if w, ok := eventRuleWarning(&c.Rules[i], c.Accounts); ok {
			ws = append(ws, w)
		}
	}
	rank := map[string]int{c.At.File: 0}
	for _, w := range ws {
		if _, ok := rank[w.File]; !ok {
			rank[w.File] = len(rank)
		}
	}
	slices.SortStableFunc(ws, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(rank[a.File], rank[b.File]), cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	return ws
}

// notifierWarnings reports credentials a notifier would send in clear text
// to another machine.
func notifierWarnings(n *Notifier) []Warning {
	var ws []Warning
	switch n.Type {
	case "slack", "telegram":
		if clearTextToOtherHost(n.APIURL) {
			ws = append(ws, n.At.warnf("api_url", "%q is plain http to another machine: the bot token would cross the network in clear text with every message; use https://, or plain http only to a server on this machine (127.0.0.1, ::1 or localhost)", n.APIURL))
		}
	}
	if n.Type == "slack" && clearTextToOtherHost(n.WebhookURL.Reveal()) {
		// The URL is the credential: never quote it.
		ws = append(ws, n.At.warnf("webhook_url", "is plain http to another machine: the webhook URL is the credential and would cross the network in clear text with every message; use the https:// URL Slack gave you, or plain http only to a proxy on this machine (127.0.0.1, ::1 or localhost)"))
	}
	return ws
}

// clearTextToOtherHost reports whether s is a plain http URL whose host is
// not this machine.
func clearTextToOtherHost(s string) bool {
	if s == "" {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname())
}

// neverReports says why account a never reports the event kind, or ""
// when it can.
func neverReports(kind string, a *Account) string {
	if a.Exchange == "simulated" {
		switch kind {
		case "margin_call":
			return "the simulated exchange has no user-data stream"
		case "liquidation":
			return "the simulated exchange never liquidates a position"
		case "key_problem":
			return "a simulated account has no API key to go bad"
		}
		return ""
	}
	switch a.Exchange {
	case "hyperliquid":
		switch kind {
		case "margin_call":
			return "Hyperliquid sends no margin call"
		case "liquidation":
			if !a.Stream {
				return "on Hyperliquid only the stream reports liquidations: set stream: true"
			}
		case "key_problem":
			return "a hyperliquid account has no API key to go bad"
		}
		return ""
	case "bybit":
		switch kind {
		case "margin_call":
			return "Bybit sends no margin call"
		case "liquidation":
			return "this build cannot yet tell a Bybit liquidation from a close (the closing notice says closed)"
		}
		return ""
	}
	// Binance: liquidation from the stream or forceOrders, key_problem from
	// the key checks, margin_call from the user-data stream only.
	if kind == "margin_call" && !a.Stream {
		return "only the user-data stream reports it: set stream: true"
	}
	return ""
}

// eventRuleWarning reports an event rule that cannot fire, or cannot fire
// on some of the accounts it applies to.
func eventRuleWarning(r *Rule, accounts []Account) (Warning, bool) {
	if r.Scope != "event" {
		return Warning{}, false
	}
	var dead, live, why []string
	for i := range accounts {
		a := &accounts[i]
		if len(r.Accounts) > 0 && !slices.Contains(r.Accounts, a.Name) {
			continue
		}
		reason := neverReports(r.Event, a)
		if reason == "" {
			live = append(live, a.Name)
			continue
		}
		dead = append(dead, a.Name)
		if !slices.Contains(why, reason) {
			why = append(why, reason)
		}
	}
	if len(dead) == 0 {
		return Warning{}, false
	}
	never := fmt.Sprintf("%s is never reported for %s %s (%s)", r.Event, plural(len(dead), "account", "accounts"), listNames(dead), strings.Join(why, "; "))
	if len(live) == 0 {
		if r.Event == "margin_call" {
			return r.At.warnf("event", "%s, so this rule can never fire; only Binance accounts with stream: true report margin_call (margin_ratio and liq_distance_pct rules see one coming while polling): stream the account, or remove the rule", never), true
		}
		who := map[string]string{
			"liquidation": "Binance accounts and streamed Hyperliquid accounts",
			"key_problem": "Binance and Bybit accounts",
		}[r.Event]
		if who == "" {
			who = "Binance accounts"
		}
		return r.At.warnf("event", "%s, so this rule can never fire; only %s report %s: remove the rule, or apply it to such an account", never, who, r.Event), true
	}
	fix := "limit it to those with accounts:"
	if len(live) <= maxListedNames {
		fix = fmt.Sprintf("limit it to those with accounts: [%s]", strings.Join(live, ", "))
	}
	return r.At.warnf("event", "%s, so this rule fires only for %s; %s to silence this warning", never, listNames(live), fix), true
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
