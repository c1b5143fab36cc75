package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marginwatch/marginwatch/watcher/metrics"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsageAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"check", "-nope"}, exitUsage, "flag provided but not defined: -nope"},
		{[]string{"check", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"run", "-config", "../../examples/demo.yaml", "-log-format", "xml"}, exitUsage, `-log-format "xml": use text or json`},
		{[]string{"version"}, exitOK, "marginwatch dev"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("marginwatch %q: exit %d, output %q; want exit %d and %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
	}
}

func TestCheckShippedConfigs(t *testing.T) {
	for _, path := range []string{"../../rules.example.yaml", "../../examples/demo.yaml"} {
		code, out, errOut := runCLI("check", "-config", path)
		if code != exitOK {
			t.Errorf("check %s: exit %d\n%s%s", path, code, out, errOut)
		}
		if !strings.Contains(out, ": ok: ") {
			t.Errorf("check %s: no ok line: %q", path, out)
		}
	}
}

func TestCheckReportsPositionedErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	const bad = `accounts:
  - name: main
    exchange: simulated
    scenario: crash
rules:
  - name: liq
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
    treshold: 3
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("check", "-config", path)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := path + ":9:5: rules[0]: unknown key \"treshold\""; !strings.HasPrefix(errOut, want) {
		t.Errorf("error %q does not start with %q", errOut, want)
	}
}

func TestMissingConfigFile(t *testing.T) {
	code, _, errOut := runCLI("check", "-config", filepath.Join(t.TempDir(), "nope.yaml"))
	if code != exitFailure || !strings.Contains(errOut, "nope.yaml") {
		t.Errorf("exit %d, %q: want 1 naming the file", code, errOut)
	}
}

func TestRunRefusesConfigWithoutAccounts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("state_dir: state\nlisten: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("run", "-config", path)
	if code != exitConfig || !strings.Contains(errOut, "no accounts configured") {
		t.Errorf("exit %d, %q: want 78 and 'no accounts configured'", code, errOut)
	}
}

// TestStatusJSON checks that `status -json` on the demo prints every metric
// of SPEC.md for the account and each position.
func TestStatusJSON(t *testing.T) {
	code, out, errOut := runCLI("status", "-config", "../../examples/demo.yaml", "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status -json is not JSON: %v\n%s", err, out)
	}
	if len(doc.Accounts) != 1 {
		t.Fatalf("%d accounts, want 1", len(doc.Accounts))
	}
	a := doc.Accounts[0]
	if a.Name != "demo" || a.Exchange != "simulated" {
		t.Errorf("account %q/%q", a.Name, a.Exchange)
	}
	if len(a.Positions) < 2 {
		t.Fatalf("%d positions, want several", len(a.Positions))
	}
	for _, id := range metrics.All() {
		scopes := id.Info().Scopes
		if scopes&metrics.AccountScope != 0 {
			if _, ok := a.Metrics[id.String()]; !ok {
				t.Errorf("account metrics lack %s", id)
			}
		}
		if scopes&metrics.PositionScope != 0 {
			for _, p := range a.Positions {
				if _, ok := p.Metrics[id.String()]; !ok {
					t.Errorf("position %s %s lacks %s", p.Symbol, p.Side, id)
				}
			}
		}
	}
	// Values that every simulated position has.
	for _, p := range a.Positions {
		for _, name := range []string{"leverage", "size_pct_equity", "funding_rate", "funding_apr_pct", "unrealized_pnl_pct", "has_stop_loss"} {
			if p.Metrics[name] == nil {
				t.Errorf("%s %s: %s is null", p.Symbol, p.Side, name)
			}
		}
	}
	var btc *positionJSON
	for i := range a.Positions {
		if a.Positions[i].Symbol == "BTCUSDT" {
			btc = &a.Positions[i]
		}
	}
	if btc == nil || btc.Metrics["liq_distance_pct"] == nil || btc.Metrics["liq_distance_atr"] == nil {
		t.Errorf("the crashing BTCUSDT position has no liquidation distance: %+v", btc)
	}
	if v := a.Metrics["equity"]; v == nil || *v <= 0 {
		t.Errorf("equity %v, want > 0", v)
	}
}

func TestStatusTable(t *testing.T) {
	code, out, errOut := runCLI("status", "-config", "../../examples/demo.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"demo (simulated) · polled ", "margin ratio", "SYMBOL", "LIQ DIST", "BTCUSDT", "missing-stop-loss"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}

func TestNotifyTestConsole(t *testing.T) {
	code, out, errOut := runCLI("notify-test", "-config", "../../examples/demo.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"TEST: marginwatch can reach you here", "term (console): ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("notify-test output lacks %q:\n%s", want, out)
		}
	}
	code, _, errOut = runCLI("notify-test", "-config", "../../examples/demo.yaml", "-notifier", "nope")
	if code != exitFailure || !strings.Contains(errOut, `no notifier named "nope"`) {
		t.Errorf("unknown notifier: exit %d, %q", code, errOut)
	}
}

// TestCheckBadConfigs runs every bad config of watcher/config's testdata
// through the real `check`: exit 1, and the first line names the file, the
// line, the column and (but for a YAML syntax error) the field. The exact
// messages are pinned in watcher/config.
func TestCheckBadConfigs(t *testing.T) {
	files, err := filepath.Glob("../../watcher/config/testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, f := range files {
		base := filepath.Base(f)
		if base == "full.yaml" {
			continue
		}
		bad++
		t.Run(base, func(t *testing.T) {
			t.Setenv("BINANCE_API_KEY", "")
			os.Unsetenv("BINANCE_API_KEY")
			code, out, errOut := runCLI("check", "-config", f)
			if code != exitFailure {
				t.Fatalf("exit %d, want 1; stdout %q", code, out)
			}
			first, _, _ := strings.Cut(errOut, "\n")
			prefix := f + ":"
			if !strings.HasPrefix(first, prefix) {
				t.Fatalf("error %q does not start with the file", first)
			}
			pos, msg, _ := strings.Cut(strings.TrimPrefix(first, prefix), ": ")
			if pos == "" || msg == "" || strings.Trim(pos, "0123456789:") != "" {
				t.Errorf("error %q has no line:col position", first)
			}
			if strings.Count(pos, ":") != 1 {
				t.Errorf("error %q does not name line and column", first)
			}
			if base != "syntax.yaml" && !strings.Contains(msg, ": ") {
				t.Errorf("error %q does not name the field", first)
			}
		})
	}
	if bad < 10 {
		t.Errorf("only %d bad configs found", bad)
	}
}

// TestCheckBuildsNotifiers: what only a notifier's constructor can judge is
// reported by check, positioned at the notifier.
func TestCheckBuildsNotifiers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	text := "notifiers:\n  - {name: term, type: console}\n  - name: hook\n    type: webhook\n    url: https://example.com/hook\n    secret: whsec_not*base64\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("check", "-config", path)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := path + ":3:5: notifiers[1]: "; !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "not valid base64") {
		t.Errorf("error %q, want it to start with %q and say what is wrong", errOut, want)
	}
	if strings.Contains(errOut, "not*base64") {
		t.Errorf("the secret leaked: %q", errOut)
	}
}
