package config

import (
	"strings"
	"testing"
)

// TestWarnings checks every warning of a testdata config with its exact
// text, in file order: the config file by line, then the rule file.
func TestWarnings(t *testing.T) {
	cfg, err := Load("testdata/warnings/events.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	const f, r = "testdata/warnings/events.yaml", "testdata/warnings/rules.d/more.yaml"
	want := []string{
		f + `:11:12: warning: rules[0].event: margin_call is never reported for accounts main, demo (only the user-data stream reports it: set stream: true; the simulated exchange has no user-data stream), so this rule can never fire; only Binance accounts with stream: true report margin_call (margin_ratio and liq_distance_pct rules see one coming while polling): stream the account, or remove the rule`,
		f + `:15:12: warning: rules[1].event: liquidation is never reported for account demo (the simulated exchange never liquidates a position), so this rule fires only for main; limit it to those with accounts: [main] to silence this warning`,
		f + `:18:43: warning: rules[3].event: key_problem is never reported for account demo (a simulated account has no API key to go bad), so this rule can never fire; only Binance and Bybit accounts report key_problem: remove the rule, or apply it to such an account`,
		f + `:22:62: warning: notifiers[0].api_url: "http://10.0.0.5:8080/api" is plain http to another machine: the bot token would cross the network in clear text with every message; use https://, or plain http only to a server on this machine (127.0.0.1, ::1 or localhost)`,
		f + `:23:44: warning: notifiers[1].webhook_url: is plain http to another machine: the webhook URL is the credential and would cross the network in clear text with every message; use the https:// URL Slack gave you, or plain http only to a proxy on this machine (127.0.0.1, ::1 or localhost)`,
		f + `:24:65: warning: notifiers[2].api_url: "http://bot-api:8081" is plain http to another machine: the bot token would cross the network in clear text with every message; use https://, or plain http only to a server on this machine (127.0.0.1, ::1 or localhost)`,
		r + `:2:48: warning: rules[0].event: margin_call is never reported for accounts main, demo (only the user-data stream reports it: set stream: true; the simulated exchange has no user-data stream), so this rule can never fire; only Binance accounts with stream: true report margin_call (margin_ratio and liq_distance_pct rules see one coming while polling): stream the account, or remove the rule`,
		r + `:3:38: warning: rules[1].event: key_problem is never reported for account demo (a simulated account has no API key to go bad), so this rule fires only for main; limit it to those with accounts: [main] to silence this warning`,
	}
	got := warningText(cfg)
	if g, w := got, strings.Join(want, "\n"); g != w {
		t.Errorf("warnings:\n%s\nwant:\n%s", g, w)
	}
	if strings.Contains(got, "s3cret") {
		t.Errorf("a secret leaked into a warning:\n%s", got)
	}
}

// TestWarningsCases covers the account filters and the configs that must
// stay quiet, on inline configs named c.yaml.
func TestWarningsCases(t *testing.T) {
	const binance = "  - {name: main, exchange: binance-usdm, api_key: k, api_secret: s}\n"
	const sim = "  - {name: demo, exchange: simulated, scenario: calm}\n"
	const phone = "notifiers: [{name: phone, type: telegram, token: t, chat_id: \"1\"}]\n"
	tests := []struct {
		name, src, want string
	}{
		{"no rules", "accounts:\n" + binance + sim + phone, ``},
		{"binance only", phone + "accounts:\n" + binance + "rules:\n  - {name: l, scope: event, event: liquidation, severity: critical}\n  - {name: k, scope: event, event: key_problem, severity: critical}\n", ``},
		{"no accounts, no warning", "rules:\n  - {name: m, scope: event, event: margin_call, severity: critical}\n  - {name: l, scope: event, event: liquidation, severity: critical}\n", ``},
		{"margin_call on a streamed account", phone + "accounts:\n" + binance + "  - {name: live, exchange: binance-coinm, api_key: k, api_secret: s, stream: true}\nrules:\n  - {name: m, scope: event, event: margin_call, severity: critical}\n",
			`c.yaml:6:36: warning: rules[0].event: margin_call is never reported for account main (only the user-data stream reports it: set stream: true), so this rule fires only for live; limit it to those with accounts: [live] to silence this warning`},
		{"stream on a simulated account", "accounts:\n  - {name: demo, exchange: simulated, scenario: calm, stream: true}\n",
			`c.yaml:2:63: warning: accounts[0].stream: the simulated exchange has no streams: account demo is polled every poll_interval (remove stream: true)`},
		{"margin_call filtered to the streamed account", phone + "accounts:\n" + binance + "  - {name: live, exchange: binance-coinm, api_key: k, api_secret: s, stream: true}\nrules:\n  - {name: m, scope: event, event: margin_call, severity: critical, accounts: [live]}\n", ``},
		{"simulated only, every kind", "accounts:\n" + sim + "  - {name: demo2, exchange: simulated, scenario: crash}\nrules:\n  - {name: l, scope: event, event: liquidation, severity: critical}\n",
			`c.yaml:5:36: warning: rules[0].event: liquidation is never reported for accounts demo, demo2 (the simulated exchange never liquidates a position), so this rule can never fire; only Binance accounts and streamed Hyperliquid accounts report liquidation: remove the rule, or apply it to such an account`},
		{"venues", phone + "accounts:\n  - {name: hl, exchange: hyperliquid, address: \"0x0123456789abcdef0123456789abcdef01234567\"}\n  - {name: hls, exchange: hyperliquid, address: \"0x0123456789abcdef0123456789abcdef01234568\", stream: true}\n  - {name: bb, exchange: bybit, api_key: k, api_secret: s}\nrules:\n  - {name: l, scope: event, event: liquidation, severity: critical}\n  - {name: m, scope: event, event: margin_call, severity: critical}\n",
			`c.yaml:7:36: warning: rules[0].event: liquidation is never reported for accounts hl, bb (on Hyperliquid only the stream reports liquidations: set stream: true; this build cannot yet tell a Bybit liquidation from a close (the closing notice says closed)), so this rule fires only for hls; limit it to those with accounts: [hls] to silence this warning
c.yaml:8:36: warning: rules[1].event: margin_call is never reported for accounts hl, hls, bb (Hyperliquid sends no margin call; Bybit sends no margin call), so this rule can never fire; only Binance accounts with stream: true report margin_call (margin_ratio and liq_distance_pct rules see one coming while polling): stream the account, or remove the rule`},
		{"filtered to binance", phone + "accounts:\n" + binance + sim + "rules:\n  - {name: l, scope: event, event: liquidation, severity: critical, accounts: [main]}\n", ``},
		{"https and loopback notifier URLs", "notifiers:\n  - {name: a, type: telegram, token: t, chat_id: \"1\", api_url: \"https://bot.example.com\"}\n  - {name: b, type: slack, token: t, channel: C, api_url: \"http://[::1]:9/api\"}\n  - {name: c, type: slack, webhook_url: \"http://localhost:9/hook\"}\n  - {name: d, type: slack, webhook_url: \"https://hooks.slack.com/x\"}\n", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.src), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if g := warningText(cfg); g != tt.want {
				t.Errorf("warnings:\n%s\nwant:\n%s", g, tt.want)
			}
		})
	}
}

// TestShippedWarnings pins the warnings of the repository's example files:
// both check clean.
func TestShippedWarnings(t *testing.T) {
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"../../examples/demo.yaml", nil},
		{"../../rules.example.yaml", nil}, // no accounts: nothing for its event rules to miss
	} {
		cfg, err := Load(tt.path)
		if err != nil {
			t.Fatalf("Load(%s): %v", tt.path, err)
		}
		ws := cfg.Warnings()
		if len(ws) != len(tt.want) {
			t.Errorf("%s: %d warnings, want %d: %v", tt.path, len(ws), len(tt.want), ws)
			continue
		}
		for i, w := range ws {
			if !strings.Contains(w.String(), tt.want[i]) {
				t.Errorf("%s: warning %q, want it to contain %q", tt.path, w, tt.want[i])
			}
		}
	}
}

// warningText is cfg's warnings, one a line.
func warningText(cfg *Config) string {
	var lines []string
	for _, w := range cfg.Warnings() {
		lines = append(lines, w.String())
	}
	return strings.Join(lines, "\n")
}

// parseErr is the text of Parse's error for src, "" when it loads.
func parseErr(src string, env func(string) (string, bool)) string {
	if _, err := Parse("c.yaml", []byte(src), env); err != nil {
		return err.Error()
	}
	return ""
}
