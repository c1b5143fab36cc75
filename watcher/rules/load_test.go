package rules

import (
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// TestLoadAndCompileBadTemplate is what `marginwatch check` sees for a rule
// file with broken templates: config.Load accepts the file (templates are
// the rule engine's business) and Compile points at both keys.
func TestLoadAndCompileBadTemplate(t *testing.T) {
	const file = "../config/testdata/bad_template.yaml"
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	_, err = Compile(cfg)
	want := file + ":17:14: rules[0].summary: invalid template: line 1 col 41: <.Distance>: no field Distance " +
		"(fields: Account, Rule, Symbol, Side, Metric, Value, Threshold, ValueText, ThresholdText, Op, Severity, Status, Reason, Event, Message, Labels, Metrics)\n" +
		file + `:18:14: rules[0].runbook: invalid template: line 2: function "money" not defined`
	if err == nil || err.Error() != want {
		t.Errorf("Compile error\n%v\nwant\n%s", err, want)
	}
}

// TestLoadAndCompileValid compiles a valid config through the real loader,
// so a drift between the loader's defaults and the engine shows up here.
func TestLoadAndCompileValid(t *testing.T) {
	cfg, err := config.Parse("valid.yaml", []byte(`
accounts:
  - {name: main, exchange: simulated, scenario: calm, stale_after: 90s}
notifiers:
  - {name: term, type: console}
rules:
  - name: liq
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
    summary: '{{.Symbol}} {{.Side}} is {{printf "%.1f" .Value}}% from liquidation'
`), nil)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	rs, err := Compile(cfg)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if len(rs) != 2 || rs[0].Scope != ScopePosition || !rs[0].sendResolved ||
		rs[0].repeat[notifiers.Warning] != time.Hour || rs[0].repeat[notifiers.Critical] != 10*time.Minute ||
		rs[1].Name != DataStale || rs[1].conds[0].thr[notifiers.Critical] != 90 {
		t.Errorf("compiled %+v %+v", rs[0], rs[1])
	}
}
