package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTraps: configs that loaded before and left the trader unprotected
// while check said "ok" are errors now, each positioned at the value with
// its fix. Inline configs are named c.yaml.
func TestTraps(t *testing.T) {
	rule := func(metric, field, th string) string {
		return "rules: [{name: r, metric: " + metric + ", " + field + ": {" + th + "}}]\n"
	}
	tests := []struct {
		name, src, want string
	}{
		// Thresholds outside the metric's range.
		{"margin_ratio as a percent", rule("margin_ratio", "above", "warning: 70, critical: 80"), `c.yaml:1:58: rules[0].above.warning: margin_ratio is a fraction (1.0 = liquidation), not a percent: did you mean 0.7?
c.yaml:1:72: rules[0].above.critical: margin_ratio is a fraction (1.0 = liquidation), not a percent: did you mean 0.8?`},
		{"margin_ratio far above 100", rule("margin_ratio", "above", "critical: 150"), `c.yaml:1:59: rules[0].above.critical: margin_ratio is a fraction (1.0 = liquidation), not a percent: use a value between 0 and 1, e.g. 0.8`},
		{"margin_ratio as a fraction", rule("margin_ratio", "above", "warning: 0.7, critical: 0.8"), ``},
		{"margin_ratio at 1", rule("margin_ratio", "above", "critical: 1"), ``},
		{"margin_ratio below 0", rule("margin_ratio", "below", "info: 0"), `c.yaml:1:55: rules[0].below.info: margin_ratio is never below 0 (0 or more, 1.0 = liquidation), so this threshold can never fire; use a threshold above 0`},
		{"has_stop_loss above 1", rule("has_stop_loss", "above", "warning: 1"), `c.yaml:1:59: rules[0].above.warning: has_stop_loss is 1 (an effective stop protects the position) or 0 (none), so above 1 can never fire; write below: {warning: 1} to fire when a position has no stop`},
		{"has_stop_loss below 0", rule("has_stop_loss", "below", "warning: 0"), `c.yaml:1:59: rules[0].below.warning: has_stop_loss is 1 (an effective stop protects the position) or 0 (none), so below 0 can never fire; write below: {warning: 1} to fire when a position has no stop`},
		{"has_stop_loss below 2", rule("has_stop_loss", "below", "warning: 2"), `c.yaml:1:59: rules[0].below.warning: has_stop_loss is 1 (an effective stop protects the position) or 0 (none), so below 2 fires for every position; write below: {warning: 1} to fire when a position has no stop`},
		{"has_stop_loss above -1", rule("has_stop_loss", "above", "info: -1"), `c.yaml:1:56: rules[0].above.info: has_stop_loss is 1 (an effective stop protects the position) or 0 (none), so above -1 fires for every position; write below: {info: 1} to fire when a position has no stop`},
		{"has_stop_loss meaningful", "rules: [{name: r, metric: has_stop_loss, below: {warning: 1}}, {name: s, metric: has_stop_loss, above: {info: 0}}]\n", ``},
		{"stop_coverage_pct below 0", rule("stop_coverage_pct", "below", "warning: 0"), `c.yaml:1:63: rules[0].below.warning: stop_coverage_pct is never below 0 (a percentage, 0 to 100, capped at 100), so this threshold can never fire; use a threshold between 0 and 100`},
		{"stop_coverage_pct above 100", rule("stop_coverage_pct", "above", "info: 100"), `c.yaml:1:60: rules[0].above.info: stop_coverage_pct is never above 100 (a percentage, 0 to 100, capped at 100), so this threshold can never fire; use a threshold between 0 and 100`},
		{"stop_coverage_pct below 150", rule("stop_coverage_pct", "below", "warning: 150"), `c.yaml:1:63: rules[0].below.warning: stop_coverage_pct is always below 150 (a percentage, 0 to 100, capped at 100), so this threshold fires all the time; use a threshold between 0 and 100`},
		{"stop_coverage_pct below 100", rule("stop_coverage_pct", "below", "warning: 100, critical: 50"), ``},
		// Past 100 once equity turns negative: all equity gone can fire.
		{"drawdown_pct above 100", rule("drawdown_pct", "above", "warning: 50, critical: 100"), ``},
		{"drawdown_pct below 0", rule("drawdown_pct", "below", "info: 0"), `c.yaml:1:55: rules[0].below.info: drawdown_pct is never below 0 (a percentage, 0 or more, 100 = all equity gone), so this threshold can never fire; use a threshold above 0`},
		{"position_count below 0", rule("position_count", "below", "info: 0"), `c.yaml:1:57: rules[0].below.info: position_count is never below 0 (0 or more), so this threshold can never fire; use a threshold above 0`},
		{"position_count above -1", rule("position_count", "above", "info: -1"), `c.yaml:1:57: rules[0].above.info: position_count is always above -1 (0 or more), so this threshold fires all the time; use a threshold above 0`},
		{"data_age_seconds below 0", rule("data_age_seconds", "below", "info: -5"), `c.yaml:1:59: rules[0].below.info: data_age_seconds is never below -5 (0 or more), so this threshold can never fire; use a threshold above 0`},
		{"leverage below 0", rule("leverage", "below", "info: 0"), `c.yaml:1:51: rules[0].below.info: leverage is never below 0 (more than 0), so this threshold can never fire; use a threshold above 0`},
		{"effective_leverage below 0", rule("effective_leverage", "below", "info: 0"), `c.yaml:1:61: rules[0].below.info: effective_leverage is never below 0 (0 or more), so this threshold can never fire; use a threshold above 0`},
		{"size_pct_equity above 100 can fire", rule("size_pct_equity", "above", "warning: 150, critical: 300"), ``},
		{"liq_distance_pct below 0 can fire", rule("liq_distance_pct", "below", "warning: 5, critical: -1"), ``},
		{"unrealized_pnl_pct below -100 can fire", rule("unrealized_pnl_pct", "below", "warning: -50, critical: -150"), ``},
		{"funding_apr_pct above 100 can fire", rule("funding_apr_pct", "above", "warning: 150"), ``},
		{"equity below 0 can fire", rule("equity", "below", "critical: 0"), ``},
		{"every severity judged", rule("stop_coverage_pct", "above", "info: 100, warning: 120, critical: 150"), `c.yaml:1:60: rules[0].above.info: stop_coverage_pct is never above 100 (a percentage, 0 to 100, capped at 100), so this threshold can never fire; use a threshold between 0 and 100
c.yaml:1:74: rules[0].above.warning: stop_coverage_pct is never above 120 (a percentage, 0 to 100, capped at 100), so this threshold can never fire; use a threshold between 0 and 100
c.yaml:1:89: rules[0].above.critical: stop_coverage_pct is never above 150 (a percentage, 0 to 100, capped at 100), so this threshold can never fire; use a threshold between 0 and 100`},

		// Symbols not in Binance's form.
		{"symbols lower case", "rules: [{name: r, metric: leverage, above: {warning: 5}, symbols: [btcusdt, BTC-USDT, BTC/USDT, \"BINANCE:BTCUSDT.P\", \"eth usdt\", \"\"]}]\n", `c.yaml:1:68: rules[0].symbols[0]: "btcusdt" never matches: Binance writes symbols in upper case without separators; write "BTCUSDT"
c.yaml:1:77: rules[0].symbols[1]: "BTC-USDT" never matches: Binance writes symbols in upper case without separators; write "BTCUSDT"
c.yaml:1:87: rules[0].symbols[2]: "BTC/USDT" never matches: Binance writes symbols in upper case without separators; write "BTCUSDT"
c.yaml:1:97: rules[0].symbols[3]: "BINANCE:BTCUSDT.P" never matches: Binance writes symbols in upper case without separators; write "BTCUSDT"
c.yaml:1:118: rules[0].symbols[4]: "eth usdt" never matches: Binance writes symbols in upper case without separators; write "ETHUSDT"
c.yaml:1:130: rules[0].symbols[5]: "" is not a symbol (e.g. BTCUSDT)`},
		{"symbols in Binance's form", "rules: [{name: r, metric: leverage, above: {warning: 5}, symbols: [BTCUSDT, BTCUSD_PERP, ETHUSDT_250627, 1000PEPEUSDT, 币安人生USDT]}]\n", ``},

		// $NAME without braces is used as written.
		{"api_key $NAME", "accounts: [{name: main, exchange: binance-usdm, api_key: $BINANCE_API_KEY, api_secret: \"${SECRET}\"}]\n", `c.yaml:1:58: accounts[0].api_key: is a $ followed by a name, which is used as written, not expanded: write ${NAME} to read an environment variable (e.g. ${BINANCE_API_KEY}), or start it with $$ for a literal $`},
		// A secret is never quoted back: it may be a real password.
		{"password $NAME-like", "notifiers: [{name: m, type: email, smtp: \"h:587\", username: u, password: \"$ecretPassw0rd\", from: a@example.com, to: [b@example.com]}]\n", `c.yaml:1:74: notifiers[0].password: is a $ followed by a name, which is used as written, not expanded: write ${NAME} to read an environment variable (e.g. ${BINANCE_API_KEY}), or start it with $$ for a literal $`},
		// A $ inside a longer secret is meant literally (expand keeps it).
		{"secret with $ inside", "accounts: [{name: main, exchange: binance-usdm, api_key: k, api_secret: \"pa$word\"}]\n", ``},
		{"secret with $$ and ${}", "accounts: [{name: main, exchange: binance-usdm, api_key: \"pa$$word\", api_secret: \"x${SECRET}\"}]\n", ``},
		{"a plain value $NAME", "notifiers: [{name: m, type: email, smtp: \"h:587\", username: u, password: \"${SECRET}\", from: $MAIL_FROM, to: [b@example.com]}]\n", `c.yaml:1:93: notifiers[0].from: $MAIL_FROM is used as written, not expanded: write "${MAIL_FROM}" to read the environment variable (or $$MAIL_FROM for a literal $)`},
		{"templates keep their $", "rules: [{name: r, metric: leverage, above: {warning: 5}, summary: '{{$v := .Value}}{{$v}} costs $5 in $USD'}]\n", ``},

		// rule_files that match nothing.
		{"rule_files literal missing", "rule_files: [testdata/rules.d/a.yaml, testdata/rules.d/c.yaml]\n", `c.yaml:1:39: rule_files[1]: no such file testdata/rules.d/c.yaml: fix the path (a relative one is relative to the config file's folder) or remove it`},
		{"rule_files glob empty, no rules left", "rule_files: [testdata/rulez.d/*.yaml]\n", `c.yaml:1:14: rule_files[0]: "testdata/rulez.d/*.yaml" matches no file and the config has no other rules, so only the built-in data-stale rule would watch; fix the pattern (a relative one is relative to the config file's folder), or write rules: [] to run without rules on purpose`},
		{"rule_files glob empty, rules: [] meant", "rule_files: [testdata/rulez.d/*.yaml]\nrules: []\n", ``},
		{"rule_files glob empty, other rules", "rule_files: [testdata/rulez.d/*.yaml, testdata/rules.d/a.yaml]\n", ``},

		// admin
		{"admin token empty", "admin: {token: \"${EMPTY}\"}\n", `c.yaml:1:16: admin.token: is empty (an empty environment variable?); give the secret, or remove the key`},
		{"admin token file missing", "admin: {token_file: /nonexistent/admin-token}\n", `c.yaml:1:21: admin.token_file: cannot read the secret: stat /nonexistent/admin-token: no such file or directory`},
		{"admin token and file", "admin: {token: t, token_file: /x}\n", `c.yaml:1:31: admin.token_file: set token or token_file, not both`},
		{"admin unknown key", "admin: {tokenfile: /x}\n", `c.yaml:1:9: admin: unknown key "tokenfile" (did you mean "token_file"?)`},
		{"admin token file", "admin: {token_file: testdata/secrets/coin-key}\n", ``},

		// listen other machines reach: writes (silences, acks) need a token.
		{"listen on every interface", "listen: \":9464\"\n", `c.yaml:1:9: listen: ":9464" serves the admin API (silences, acks), /metrics and /healthz on every network interface without authentication: anyone who reaches the port could silence your alerts and reads account names, equity and positions; use 127.0.0.1:9464 (this machine only), or set admin.token_file (and firewall the port)`},
		{"listen on 0.0.0.0", "listen: 0.0.0.0:9464\n", `c.yaml:1:9: listen: "0.0.0.0:9464" serves the admin API (silences, acks), /metrics and /healthz on every network interface without authentication: anyone who reaches the port could silence your alerts and reads account names, equity and positions; use 127.0.0.1:9464 (this machine only), or set admin.token_file (and firewall the port)`},
		{"listen on a LAN address", "listen: \"[fd00::5]:9000\"\n", `c.yaml:1:9: listen: "[fd00::5]:9000" serves the admin API (silences, acks), /metrics and /healthz to the network without authentication: anyone who reaches the port could silence your alerts and reads account names, equity and positions; use 127.0.0.1:9000 (this machine only), or set admin.token_file (and firewall the port)`},
		{"listen on a LAN IPv4 address", "listen: 192.168.1.5:9464\n", `c.yaml:1:9: listen: "192.168.1.5:9464" serves the admin API (silences, acks), /metrics and /healthz to the network without authentication: anyone who reaches the port could silence your alerts and reads account names, equity and positions; use 127.0.0.1:9464 (this machine only), or set admin.token_file (and firewall the port)`},
		{"listen on the network with a token", "listen: 192.168.1.5:9464\nadmin: {token: \"${SECRET}\"}\n", ``},
		{"listen on the network with a token file", "listen: 192.168.1.5:9464\nadmin: {token_file: testdata/secrets/coin-key}\n", ``},
		// The unreadable file is the one problem to report.
		{"listen on the network, token file missing", "listen: 192.168.1.5:9464\nadmin: {token_file: /nonexistent/admin-token}\n", `c.yaml:2:21: admin.token_file: cannot read the secret: stat /nonexistent/admin-token: no such file or directory`},
		{"listen on loopback without a token", "listen: \"[::1]:9464\"\n", ``},
		{"listen on 127.0.0.2 without a token", "listen: 127.0.0.2:9464\n", ``},
		{"listen on localhost without a token", "listen: localhost:9464\n", ``},
		{"listen off without a token", "listen: \"\"\n", ``},
	}
	env := envOf(map[string]string{"EMPTY": "", "SECRET": "s"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(tt.src, env); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestTrapWarnings: what runs but may not do what the trader thinks is a
// positioned warning naming the fix (check prints it and exits 0).
func TestTrapWarnings(t *testing.T) {
	const binance = "accounts: [{name: main, exchange: binance-usdm, api_key: k, api_secret: s}]\n"
	const sim = "accounts: [{name: demo, exchange: simulated, scenario: calm}]\n"
	const phone = "notifiers: [{name: phone, type: telegram, token: t, chat_id: \"1\"}]\n"
	tests := []struct {
		name, src, want string
	}{
		{"listen on loopback", binance + phone + "listen: \"[::1]:9464\"\n", ``},
		{"listen on localhost", binance + phone + "listen: localhost:9464\n", ``},
		{"listen off", binance + phone + "listen: \"\"\n", ``},
		{"listen with an admin token", binance + phone + "listen: 192.168.1.5:9464\nadmin: {token: \"${TOKEN}\"}\n", ``},
		{"console only", binance + "notifiers: [{name: term, type: console}, {name: journal, type: console}]\n", `c.yaml:2:12: warning: notifiers: console only: under systemd nobody sees it (its lines go to the journal); add a telegram, slack, email or webhook notifier`},
		{"no notifiers", binance, `c.yaml:1:1: warning: notifiers: no notifiers: nobody is told of an alert; add a telegram, slack, email or webhook notifier`},
		{"console and a phone", binance + "notifiers: [{name: term, type: console}, {name: phone, type: telegram, token: t, chat_id: \"1\"}]\n", ``},
		{"console only, simulated (the demo)", sim + "notifiers: [{name: term, type: console}]\n", ``},
		{"console only, no accounts (a rules file)", "notifiers: [{name: term, type: console}]\n", ``},
		{"rule_files glob empty, rules: [] meant", binance + phone + "rule_files: [testdata/rulez.d/*.yaml]\nrules: []\n", `c.yaml:3:14: warning: rule_files[0]: "testdata/rulez.d/*.yaml" matches no file: no rules are read from it; fix the pattern or remove it`},
		{"rule_files glob empty, other rules", binance + phone + "rule_files: [testdata/rulez.d/*.yaml, testdata/rules.d/a.yaml]\n", `c.yaml:3:14: warning: rule_files[0]: "testdata/rulez.d/*.yaml" matches no file: no rules are read from it; fix the pattern or remove it`},
	}
	env := envOf(map[string]string{"TOKEN": "t0k3n"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.src), env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if g := warningText(cfg); g != tt.want {
				t.Errorf("warnings:\n%s\nwant:\n%s", g, tt.want)
			}
		})
	}
}

// TestReadableSecrets: a secret file that other users can read warns with
// the chmod that fixes it; one they cannot reach (mode 0600, or a folder
// only its owner enters, as systemd's credentials folder) does not.
func TestReadableSecrets(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	closed := filepath.Join(root, "closed")
	for _, d := range []struct {
		dir  string
		mode os.FileMode
	}{{open, 0o755}, {closed, 0o700}} {
		if err := os.Mkdir(d.dir, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.dir, d.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	write := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte("s3cret\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(open, "world"), 0o644)
	write(filepath.Join(open, "group"), 0o640)
	write(filepath.Join(open, "mine"), 0o600)
	write(filepath.Join(closed, "world"), 0o644)

	src := `accounts:
  - {name: a, exchange: binance-usdm, api_key_file: open/world, api_secret_file: open/mine}
  - {name: b, exchange: binance-coinm, api_key_file: closed/world, api_secret_file: open/group}
admin: {token_file: open/mine}
notifiers: [{name: phone, type: telegram, token_file: open/mine, chat_id: "1"}]
`
	name := filepath.Join(root, "c.yaml")
	cfg, err := Parse(name, []byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		name + ":2:53: warning: accounts[0].api_key_file: " + filepath.Join(open, "world") + " can be read by other users of this machine (mode 0644): chmod 600 " + filepath.Join(open, "world"),
		name + ":3:85: warning: accounts[1].api_secret_file: " + filepath.Join(open, "group") + " can be read by other users of this machine (mode 0640): chmod 600 " + filepath.Join(open, "group"),
	}
	got := warningText(cfg)
	if g, w := got, strings.Join(want, "\n"); g != w {
		t.Errorf("warnings:\n%s\nwant:\n%s", g, w)
	}
}

// TestSyntaxColumn: a YAML syntax error points at the column to fix, not
// only the line.
func TestSyntaxColumn(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"tab indent", "accounts:\n\t- name: a\n", "c.yaml:2:1: YAML syntax: found character that cannot start any token (YAML indents with spaces, not tabs; quote values starting with @ or `)"},
		{"tab before a value", "rules:\n  - name: r\n    metric: leverage\n    above:\n\t  warning: 5\n", "c.yaml:5:1: YAML syntax: found character that cannot start any token (YAML indents with spaces, not tabs; quote values starting with @ or `)"},
		{"colon in a value", "rules:\n  - name: r\n    summary: Price: high\n", `c.yaml:3:19: YAML syntax: mapping values are not allowed in this context (quote a value that contains ": ")`},
		{"colon inside quotes is fine, the next is not", "rules:\n  - name: r\n    summary: 'a: b' c: d\n", `c.yaml:3:22: YAML syntax: mapping values are not allowed in this context (quote a value that contains ": ")`},
		{"indentation", "accounts:\n  - name: main\n    exchange: simulated\n   scenario: crash\n", "c.yaml:4:4: YAML syntax: did not find expected '-' indicator (check the indentation)"},
		{"backquote", "rules:\n  - name: r\n    summary: `x`\n", "c.yaml:3:14: YAML syntax: found character that cannot start any token (YAML indents with spaces, not tabs; quote values starting with @ or `)"},
		{"unclosed flow", "symbols: [BTCUSDT\nlisten: x\n", `c.yaml:1:10: YAML syntax: did not find expected ',' or ']' (close the [ with ] or the { with }, or quote a value holding , [ ] { or })`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(tt.src, nil); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestFixSymbolCOINM(t *testing.T) {
	for in, want := range map[string]string{"BTCUSD-PERP": "BTCUSD_PERP", "btcusd/perp": "BTCUSD_PERP", "ETHUSD-250627": "ETHUSD_250627", "BTC-USDT": "BTCUSDT", "BTCUSD_PERP": "BTCUSD_PERP"} {
		if got := fixSymbol(in); got != want {
			t.Errorf("fixSymbol(%q) = %q, want %q", in, got, want)
		}
	}
}
