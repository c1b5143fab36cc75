package ruletest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The shipped test files pass: the rules they test behave as documented.
func TestShippedFiles(t *testing.T) {
	var out strings.Builder
	files := []string{"../../../examples/rules.example.test.yaml", "../../../examples/demo.test.yaml"}
	sum := Run(&out, files, Options{})
	if !sum.OK() || sum.Passed < 5 {
		t.Fatalf("summary %+v, output:\n%s", sum, out.String())
	}
}

// rulesFile is a small rule file the tests below test.
const rulesFile = `rules:
  - name: liq
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
    hysteresis: 2
`

// testFile is a test of rulesFile; %s is its expect block.
const testFile = `rule_files: [rules.yaml]
tests:
  - name: sinks
    interval: 1m
    account: {name: main}
    steps:
      - balances: [{asset: USDT, wallet: 1000}]
        positions: [{symbol: BTCUSDT, side: long, size: 0.01, entry: 100, mark: 100, liq: 50}]
      - positions: [{symbol: BTCUSDT, side: long, liq: 90}]
      - positions: [{symbol: BTCUSDT, side: long, liq: 95}]
  - name: other
    interval: 1m
    account: {name: main}
    steps:
      - balances: [{asset: USDT, wallet: 1000}]
    expect:
      - {at: 0s, alerts: []}
`

func write(t *testing.T, test string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rulesFile), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(p, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sinks(expect string) string {
	return strings.Replace(testFile, "  - name: other", "    expect:\n"+expect+"  - name: other", 1)
}

func TestDiffs(t *testing.T) {
	for _, tc := range []struct {
		name, expect string
		ok           bool
		want         []string
	}{
		{"right", `      - {at: 1m, alerts: [{rule: liq, severity: warning, symbol: BTCUSDT, side: long, kind: firing}]}
      - {at: 2m, alerts: [{rule: liq, severity: critical, symbol: BTCUSDT, side: long, kind: escalated}]}
`, true, nil},
		{"wrong severity and kind", `      - {at: 2m, alerts: [{rule: liq, severity: warning, symbol: BTCUSDT, side: long, kind: firing}]}
`, false, []string{"FAIL ", ": sinks: at 2m: want firing liq warning BTCUSDT long, got escalated liq critical BTCUSDT long"}},
		{"missing", `      - {at: 0s, alerts: [{rule: liq, severity: warning, symbol: BTCUSDT, side: long, kind: firing}]}
`, false, []string{": sinks: at 0s: missing firing liq warning BTCUSDT long", "(no notice at all"}},
		{"unexpected", `      - {at: 1m, alerts: []}
`, false, []string{": sinks: at 1m: unexpected firing liq warning BTCUSDT long"}},
		{"wrong reason", `      - {at: 1m, alerts: [{rule: liq, severity: warning, symbol: BTCUSDT, side: long, kind: firing, reason: liquidated}]}
`, false, []string{"want firing liq warning BTCUSDT long (liquidated), got firing liq warning BTCUSDT long"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			sum := Run(&out, []string{write(t, sinks(tc.expect))}, Options{})
			if sum.OK() != tc.ok || sum.Broken != 0 {
				t.Fatalf("summary %+v, want ok=%v; output:\n%s", sum, tc.ok, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if !tc.ok && !strings.Contains(out.String(), "1 passed, 1 failed") {
				t.Errorf("no summary line:\n%s", out.String())
			}
		})
	}
}

func TestRunSelects(t *testing.T) {
	p := write(t, sinks("      - {at: 1m, alerts: []}\n")) // sinks fails
	for _, tc := range []struct {
		re           string
		pass, failed int
	}{
		{"^other$", 1, 0},
		{"sink", 0, 1},
		{"nothing", 0, 0},
	} {
		var out strings.Builder
		sum := Run(&out, []string{p}, Options{Run: regexp.MustCompile(tc.re)})
		if sum.Passed != tc.pass || sum.Failed != tc.failed {
			t.Errorf("-run %s: %+v, want %d passed %d failed:\n%s", tc.re, sum, tc.pass, tc.failed, out.String())
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown key", strings.Replace(sinks("      - {at: 1m, alerts: []}\n"), "interval: 1m", "intervall: 1m", 1), `t.yaml:4: unknown key "intervall"`},
		{"bad kind", sinks("      - {at: 1m, alerts: [{rule: liq, severity: warning, kind: fired}]}\n"), `t.yaml:12: sinks: expect[0].alerts[0].kind: "fired": use one of firing`},
		{"bad severity", sinks("      - {at: 1m, alerts: [{rule: liq, severity: high, kind: firing}]}\n"), `t.yaml:12: sinks: expect[0].alerts[0].severity: "high"`},
		{"bad side", strings.Replace(sinks("      - {at: 1m, alerts: []}\n"), "side: long, liq: 90", "side: up, liq: 90", 1), `t.yaml:9: sinks: steps[1].positions[0].side: "up": use long or short`},
		{"steps back in time", strings.Replace(sinks("      - {at: 1m, alerts: []}\n"), "      - positions: [{symbol: BTCUSDT, side: long, liq: 95}]", "      - at: 30s\n        positions: [{symbol: BTCUSDT, side: long, liq: 95}]", 1), `t.yaml:10: sinks: steps[2].at: 30s must come after the previous step (1m)`},
		{"duration without unit", sinks("      - {at: 60, alerts: []}\n"), "t.yaml:12: cannot unmarshal !!int `60` into time.Duration: write a duration with a unit"},
		{"no rule files", "tests: []\n", "t.yaml:1: rule_files: name the rule files"},
		{"bad yaml", "tests: [\n", "t.yaml:"},
		{"missing rule file", strings.Replace(sinks("      - {at: 1m, alerts: []}\n"), "rules.yaml", "nope.yaml", 1), "nope.yaml"},
		{"coin-m account", strings.Replace(sinks("      - {at: 1m, alerts: []}\n"), "account: {name: main}", "account: {name: main, exchange: binance-coinm}", 1), `sinks: account.exchange: binance-coinm is not supported by marginwatch test yet`},
		{"account not in config", strings.Replace(sinks("      - {at: 1m, alerts: []}\n"), "rule_files: [rules.yaml]", "config: rules.yaml", 1), `account "main" is not in`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			sum := Run(&out, []string{write(t, tc.file)}, Options{})
			if sum.Broken != 1 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("summary %+v; output lacks %q:\n%s", sum, tc.want, out.String())
			}
		})
	}
}

// Verbose prints every notice, for writing expectations.
func TestVerbose(t *testing.T) {
	var out strings.Builder
	Run(&out, []string{write(t, sinks("      - {at: 1m, alerts: []}\n"))}, Options{Verbose: true})
	for _, w := range []string{": sinks: at 1m: firing liq warning BTCUSDT long", ": sinks: at 2m: escalated liq critical BTCUSDT long", "ok   "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

func TestDur(t *testing.T) {
	for _, s := range []string{"0s", "15s", "2m", "1h30m", "2h", "17m45s", "1h0m5s"} {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Dur(d); got != s {
			t.Errorf("Dur(%s) = %s", s, got)
		}
	}
}
