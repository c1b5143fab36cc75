package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marginwatch/marginwatch/watcher/config"
)

// TestCheckWarnings: check prints each warning, positioned, with its result
// on stdout, says how many there were and still exits 0.
func TestCheckWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	const text = `accounts:
  - {name: demo, exchange: simulated, scenario: crash}
notifiers:
  - {name: term, type: console}
rules:
  - {name: margin-call, scope: event, event: margin_call, severity: critical}
  - {name: liquidated, scope: event, event: liquidation, severity: critical}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check", "-config", path)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, errOut)
	}
	want := path + `:6:46: warning: rules[0].event: margin_call is never reported for account demo (the simulated exchange has no user-data stream), so this rule can never fire; only Binance accounts with stream: true report margin_call (margin_ratio and liq_distance_pct rules see one coming while polling): stream the account, or remove the rule
` + path + `:7:45: warning: rules[1].event: liquidation is never reported for account demo (the simulated exchange never liquidates a position), so this rule can never fire; only Binance accounts and streamed Hyperliquid accounts report liquidation: remove the rule, or apply it to such an account
` + path + `: ok: 1 accounts, 1 notifiers, 3 rules (1 built in), 1 files read, 2 warnings
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// TestCheckRefusesClearText: a clear-text exchange endpoint or SMTP password
// to another machine is an error, exit 1, positioned at the key.
func TestCheckRefusesClearText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	const text = `accounts:
  - name: main
    exchange: binance-usdm
    api_key: k
    api_secret: s
    endpoint: http://fapi.example.com
notifiers:
  - name: mail
    type: email
    smtp: smtp.example.com:25
    tls: none
    username: me
    password: p
    from: mw@example.com
    to: [me@example.com]
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check", "-config", path)
	if code != exitFailure || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing on stdout", code, out)
	}
	want := path + `:6:15: accounts[0].endpoint: "http://fapi.example.com" is plain http to another machine: the API key and the account's data would cross the network in clear text; use https://, or plain http only to this machine (127.0.0.1, ::1 or localhost, e.g. a local test server or a TLS-terminating proxy)
` + path + `:11:10: notifiers[0].tls: none would send the SMTP password to smtp.example.com in clear text over the network; use tls: starttls (usually port 587) or tls: implicit (usually port 465), or send through a relay on this machine (smtp: 127.0.0.1:25) that forwards with TLS
`
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
}

// TestCheckTraps: the first-hour traps of issue 10, which check accepted
// with "ok", fail it now, each positioned at its value with the fix.
func TestCheckTraps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	const text = `listen: ":9464"
accounts:
  - name: main
    exchange: binance-usdm
    api_key: $BINANCE_API_KEY
    api_secret: ${BINANCE_API_SECRET}
notifiers:
  - {name: term, type: console}
rule_files: [rule.d/*.yaml]
rules:
  - name: margin-high
    metric: margin_ratio
    above: {critical: 80}
  - name: no-stop
    metric: has_stop_loss
    below: {warning: 1}
    symbols: [btcusdt, BTC-USDT]
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BINANCE_API_SECRET", "s")
	code, out, errOut := runCLI("check", "-config", path)
	if code != exitFailure || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing on stdout", code, out)
	}
	want := path + `:1:9: listen: ":9464" serves the admin API (silences, acks), /metrics and /healthz on every network interface without authentication: anyone who reaches the port could silence your alerts and reads account names, equity and positions; use 127.0.0.1:9464 (this machine only), or set admin.token_file (and firewall the port)
` + path + `:5:14: accounts[0].api_key: is a $ followed by a name, which is used as written, not expanded: write ${NAME} to read an environment variable (e.g. ${BINANCE_API_KEY}), or start it with $$ for a literal $
` + path + `:13:23: rules[0].above.critical: margin_ratio is a fraction (1.0 = liquidation), not a percent: did you mean 0.8?
` + path + `:17:15: rules[1].symbols[0]: "btcusdt" never matches: Binance writes symbols in upper case without separators; write "BTCUSDT"
` + path + `:17:24: rules[1].symbols[1]: "BTC-USDT" never matches: Binance writes symbols in upper case without separators; write "BTCUSDT"
`
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}

	// Fixed, what only warns is printed with the result, exit 0.
	fixed := strings.NewReplacer(`":9464"`, "127.0.0.1:9464", "$BINANCE_API_KEY", "${BINANCE_API_KEY}", "critical: 80", "critical: 0.8", "btcusdt, BTC-USDT", "BTCUSDT").Replace(text)
	if err := os.WriteFile(path, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BINANCE_API_KEY", "k")
	code, out, errOut = runCLI("check", "-config", path)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, errOut)
	}
	want = path + `:8:3: warning: notifiers: console only: under systemd nobody sees it (its lines go to the journal); add a telegram, slack, email or webhook notifier
` + path + `:9:14: warning: rule_files[0]: "rule.d/*.yaml" matches no file (looked for ` + filepath.Join(dir, "rule.d/*.yaml") + `): no rules are read from it; fix the pattern or remove it
` + path + `: ok: 1 accounts, 1 notifiers, 3 rules (1 built in), 1 files read, 2 warnings
budget binance-usdm fapi.binance.com: 1 accounts ask for 60 weight/min of the 1,920 allowed (80% of 2,400)
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}

	// The typo'd glob alone, every user rule gone: an error, not "ok: 1 rules".
	only := "accounts: [{name: main, exchange: simulated, scenario: calm}]\nrule_files: [rule.d/*.yaml]\n"
	if err := os.WriteFile(path, []byte(only), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI("check", "-config", path)
	want = path + `:2:14: rule_files[0]: "rule.d/*.yaml" matches no file (looked for ` + filepath.Join(dir, "rule.d/*.yaml") + `) and the config has no other rules, so only the built-in data-stale rule would watch; fix the pattern (a relative one is relative to the config file's folder), or write rules: [] to run without rules on purpose
`
	if code != exitFailure || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 1, nothing, and:\n%s", code, out, errOut, want)
	}
}

// TestCheckPositionalPath: `check config.yaml` is a usage error that shows
// the -config form.
func TestCheckPositionalPath(t *testing.T) {
	code, out, errOut := runCLI("check", "config.yaml")
	want := `marginwatch check: unexpected argument "config.yaml"
the config file is given with -config: marginwatch check -config config.yaml
`
	if code != exitUsage || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 2, nothing, and:\n%s", code, out, errOut, want)
	}
}

// TestCheckCountsBuiltInOnce: the built-in data-stale rule is one rule,
// however many accounts it watches.
func TestCheckCountsBuiltInOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	const text = `accounts:
  - {name: a, exchange: simulated, scenario: calm}
  - {name: b, exchange: simulated, scenario: crash}
  - {name: c, exchange: simulated, scenario: funding-spike}
notifiers: [{name: term, type: console}]
rules:
  - {name: lev, metric: leverage, above: {warning: 5}}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check", "-config", path)
	want := path + ": ok: 3 accounts, 1 notifiers, 2 rules (1 built in), 1 files read\n"
	if code != exitOK || errOut != "" || out != want {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant 0, nothing, and:\n%s", code, errOut, out, want)
	}
}

// TestRunWarnsConsoleOnlyUnderSystemd: run logs the console-only warning
// when systemd started it, and not in a terminal, where the console is seen.
func TestRunWarnsConsoleOnlyUnderSystemd(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte("accounts: [{name: main, exchange: binance-usdm, api_key: k, api_secret: s}]\nnotifiers: [{name: term, type: console}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		systemd bool
		want    string
	}{
		{false, ""},
		{true, `level=WARN msg="config warning" warning="c.yaml:2:12: warning: notifiers: console only: under systemd nobody sees it (its lines go to the journal); add a telegram, slack, email or webhook notifier"` + "\n"},
	} {
		var b strings.Builder
		logger := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
		logWarnings(logger, cfg, tt.systemd)
		if b.String() != tt.want {
			t.Errorf("systemd %v: logged %q, want %q", tt.systemd, b.String(), tt.want)
		}
	}
	t.Setenv("INVOCATION_ID", "")
	t.Setenv("NOTIFY_SOCKET", "")
	if underSystemd() {
		t.Error("underSystemd without INVOCATION_ID or NOTIFY_SOCKET")
	}
	t.Setenv("INVOCATION_ID", "0123456789abcdef")
	if !underSystemd() {
		t.Error("not underSystemd with INVOCATION_ID set")
	}
}

// TestCheckBudget: check prints the request budget of the configured
// accounts, estimated without the network, and says when the intervals
// must be stretched to fit 80% of it. Check plans from the start of a
// clock minute, so its figures do not depend on the second it runs at:
// 20 accounts started at :00 fit their first polls and three steady
// polls each into the first minute but for one (20 × 101 = 2,020 > 1,920),
// which starts at 1m0s.
func TestCheckBudget(t *testing.T) {
	for _, c := range []struct {
		name    string
		n       int
		account string
		want    string
	}{
		{"fits", 20, "exchange: binance-usdm", `budget binance-usdm fapi.binance.com: 20 accounts ask for 1,200 weight/min of the 1,920 allowed (80% of 2,400); first polls 1,120 weight over 1m0s
`},
		{"60 polled", 60, "exchange: binance-usdm", `budget binance-usdm fapi.binance.com: 60 accounts ask for 3,600 weight/min of the 1,920 allowed (80% of 2,400); stretched 1.93×: 1,800 weight/min at every 30s instead of 15s; first polls 3,360 weight over 5m0s
warning: 60 binance-usdm fapi.binance.com accounts ask for 3,600 weight/min, 1.9× the 1,864 one IP may use (80% of 2,400, less 56 kept free for a first poll): polling every 30s instead of 15s; use stream: true, or fewer accounts per IP
`},
		// Stretched to 90 s, they would be stale (60 s) between two polls.
		{"130 polled", 130, "exchange: binance-usdm", `budget binance-usdm fapi.binance.com: 130 accounts ask for 7,800 weight/min of the 1,920 allowed (80% of 2,400); held at half of stale_after: 3,900 weight/min at every 30s instead of 15s, over the 1,864 the polls may use; first polls 7,280 weight over 30s
warning: 130 binance-usdm fapi.binance.com accounts ask for 7,800 weight/min; even polled every 30s (half of stale_after) they need 3,900 weight/min, more than the 1,864 one IP may use (80% of 2,400, less 56 kept free for a first poll): some polls will wait for the next minute and data-stale will say so; use stream: true, raise stale_after, or split the accounts across IPs
`},
		{"coin-m streamed", 60, "exchange: binance-coinm, stream: true", `budget binance-coinm dapi.binance.com: 60 accounts ask for 144 weight/min of the 1,920 allowed (80% of 2,400); first polls 2,880 weight over 4m55s
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("accounts:\n")
			for i := range c.n {
				fmt.Fprintf(&b, "  - {name: a%02d, %s, api_key: k, api_secret: s}\n", i, c.account)
			}
			b.WriteString("listen: 127.0.0.1:9464\nnotifiers: [{name: hook, type: webhook, url: 'https://example.com/hook'}]\n")
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI("check", "-config", path)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			_, got, _ := strings.Cut(out, "files read\n")
			if got != c.want {
				t.Errorf("stdout after the result:\n%s\nwant:\n%s\n(all of it:\n%s)", got, c.want, out)
			}
		})
	}
}
