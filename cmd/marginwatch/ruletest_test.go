package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `marginwatch test`: exit 0 on the shipped tests, 1 on a wrong
// expectation (with the diff), 2 on usage errors; help lists it.
func TestRuleTestCommand(t *testing.T) {
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong.yaml")
	const file = `rule_files: [` + "%s" + `]
tests:
  - name: crash
    interval: 15s
    account: {name: main}
    steps:
      - balances: [{asset: USDT, wallet: 10000}]
        positions: [{symbol: BTCUSDT, side: long, size: 0.01, entry: 60000, mark: 60000, liq: 40000, leverage: 5, stops: [{trigger: 57600, close_position: true}]}]
      - at: 2m
        positions: [{symbol: BTCUSDT, side: long, liq: 57000}]
    expect:
      - {at: 2m, alerts: [{rule: liquidation-near, severity: warning, symbol: BTCUSDT, side: long, kind: firing}]}
`
	rulesPath, err := filepath.Abs("../../rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte(strings.Replace(file, "%s", rulesPath, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"test", "../../examples/rules.example.test.yaml", "../../examples/demo.test.yaml"}, exitOK, " passed, 0 failed"},
		{[]string{"test", wrong}, exitFailure, ": crash: at 2m: want firing liquidation-near warning BTCUSDT long, got firing liquidation-near critical BTCUSDT long"},
		{[]string{"test", "-run", "^nothing$", wrong}, exitOK, "0 passed, 0 failed (no test matches -run"},
		{[]string{"test", filepath.Join(dir, "absent.yaml")}, exitFailure, "cannot read the test file"},
		{[]string{"test"}, exitUsage, "name at least one test file"},
		{[]string{"test", "-run", "(", wrong}, exitUsage, `-run "("`},
		{[]string{"help"}, exitOK, "marginwatch test    [-run REGEX]"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("marginwatch %q: exit %d, output %q; want exit %d and %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
	}
}
