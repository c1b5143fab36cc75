package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// at is the location of a rule written at rules.yaml line 3, with its
// summary and runbook keys on lines 10 and 11.
var at = config.Location{
	File: "rules.yaml",
	Path: "rules[0]",
	Pos:  config.Pos{Line: 3, Col: 5},
	Keys: map[string]config.Pos{
		"name":    {Line: 3, Col: 11},
		"summary": {Line: 10, Col: 14},
		"runbook": {Line: 11, Col: 14},
	},
}

func TestCompileTemplateErrors(t *testing.T) {
	const fields = "(fields: Account, Rule, Symbol, Side, Metric, Value, Threshold, ValueText, ThresholdText, Op, Severity, Status, Reason, Event, Message, Labels, Metrics)"
	tests := []struct {
		name             string
		summary, runbook string
		want             string
	}{
		{"syntax", "{{.Symbol", "",
			"rules.yaml:10:14: rules[0].summary: invalid template: line 1: unclosed action"},
		{"unknown field", "{{.Symbol}} at {{.Foo}}", "",
			"rules.yaml:10:14: rules[0].summary: invalid template: line 1 col 17: <.Foo>: no field Foo " + fields},
		{"unknown function", `{{humanize .Value}}`, "",
			`rules.yaml:10:14: rules[0].summary: invalid template: line 1: function "humanize" not defined`},
		{"bad argument", "", "ok\n{{index .Metrics 3}}",
			"rules.yaml:11:14: rules[0].runbook: invalid template: line 2 col 2: <index .Metrics 3>: error calling index: value has type int; should be string"},
		{"field of a string", "{{.Symbol.Name}}", "",
			"rules.yaml:10:14: rules[0].summary: invalid template: line 1 col 9: <.Symbol.Name>: no field Name in string"},
		{"stray end, and both keys reported", "{{end}}", "{{.Nope}}",
			"rules.yaml:10:14: rules[0].summary: invalid template: line 1: unexpected {{end}}\n" +
				"rules.yaml:11:14: rules[0].runbook: invalid template: line 1 col 2: <.Nope>: no field Nope " + fields},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := liqRule(nil)
			r.At = at
			r.Summary, r.Runbook = tc.summary, tc.runbook
			rs, err := Compile(testConfig(r))
			if rs != nil {
				t.Errorf("Compile returned rules with an error")
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want config.Errors", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestTemplateFieldsHintMatchesTemplateData(t *testing.T) {
	var names []string
	typ := reflect.TypeFor[TemplateData]()
	for i := range typ.NumField() {
		names = append(names, typ.Field(i).Name)
	}
	if got := strings.Join(names, ", "); got != templateFields {
		t.Errorf("TemplateData fields %q, hint says %q", got, templateFields)
	}
}

// TestCompileUnvalidatedConfig: what config validation guarantees, Compile
// does not check again with a message for the user, but it does not pass a
// broken rule either: it names the rule in a plain (internal) error.
func TestCompileUnvalidatedConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Config
		want string
	}{
		{"no scope", testConfig(config.Rule{Name: "x", Metric: "equity", Below: map[string]float64{"warning": 1}}),
			`compile rule "x": unknown scope "" (config not validated?)`},
		{"unknown metric", testConfig(config.Rule{Name: "x", Scope: "account", Metric: "liq_distanse_pct", Below: map[string]float64{"warning": 1}}),
			`compile rule "x": unknown metric "liq_distanse_pct" (config not validated?)`},
		{"metric of another scope", testConfig(config.Rule{Name: "x", Scope: "account", Metric: "leverage", Above: map[string]float64{"warning": 1}}),
			`compile rule "x": metric leverage is not defined at account scope (config not validated?)`},
		{"no thresholds", testConfig(config.Rule{Name: "x", Scope: "position", Metric: "leverage"}),
			`compile rule "x": needs thresholds in exactly one of above and below (config not validated?)`},
		{"unknown severity", testConfig(config.Rule{Name: "x", Scope: "account", Metric: "equity", Below: map[string]float64{"fatal": 1}}),
			`compile rule "x": unknown severity "fatal" (config not validated?)`},
		{"unknown repeat severity", testConfig(config.Rule{Name: "x", Scope: "account", Metric: "equity", Below: map[string]float64{"warning": 1}, Repeat: map[string]time.Duration{"urgent": time.Hour}}),
			`compile rule "x": unknown repeat severity "urgent" (config not validated?)`},
		{"unknown event", testConfig(config.Rule{Name: "x", Scope: "event", Event: "adl", Severity: "critical"}),
			`compile rule "x": unknown event "adl" (config not validated?)`},
		{"no stale_after", &config.Config{Accounts: []config.Account{{Name: "main"}}},
			`compile rule "data-stale" of account "main": stale_after 0s is not positive (config not validated?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Compile(tc.cfg)
			if rs != nil || err == nil || err.Error() != tc.want {
				t.Fatalf("Compile = %d rules, error\n%v\nwant\n%s", len(rs), err, tc.want)
			}
			var es config.Errors
			if errors.As(err, &es) {
				t.Errorf("error is config.Errors, want a plain internal error")
			}
		})
	}
	if _, err := Compile(nil); err == nil {
		t.Error("Compile(nil) succeeded")
	}
}

// TestCompileLoadedRulesAndDataStale compiles rules through the real loader,
// which sets each rule's scope (a position-only metric, an account metric,
// an event) and each account's stale_after, and checks Compile takes them
// as the loader left them and adds one data-stale rule per account.
func TestCompileLoadedRulesAndDataStale(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
accounts:
  - {name: main, exchange: simulated, scenario: calm, stale_after: 60s}
  - {name: other, exchange: simulated, scenario: calm, stale_after: 120s}
  - {name: nodefault, exchange: simulated, scenario: calm} # stale_after from defaults
rules:
  - {name: lev, metric: leverage, above: {warning: 20}}
  - {name: eq, metric: equity, below: {warning: 100}}
  - {name: mc, event: margin_call, severity: critical}
`), nil)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	rs, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		name, scope, metric, op string
		crit                    float64
	}
	var got []summary
	for _, r := range rs {
		c, _ := r.Threshold(notifiers.Critical)
		got = append(got, summary{r.Name, r.Scope, r.Metric, r.Op(), c})
	}
	want := []summary{
		{"lev", "position", "leverage", "above", 0},
		{"eq", "account", "equity", "below", 0},
		{"mc", "event", "", "", 0},
		{"data-stale", "account", "data_age_seconds", "above", 60},
		{"data-stale", "account", "data_age_seconds", "above", 120},
		{"data-stale", "account", "data_age_seconds", "above", 60},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("compiled\n%+v\nwant\n%+v", got, want)
	}
	for i, acct := range []string{"main", "other", "nodefault"} {
		ds := rs[3+i]
		if !ds.AppliesTo(acct) || ds.AppliesTo("elsewhere") || ds.repeat[notifiers.Critical] != 30*time.Minute || !ds.sendResolved || ds.notify != nil {
			t.Errorf("data-stale of %s: %+v", acct, ds)
		}
	}
}

func TestSeverityAndHeld(t *testing.T) {
	below := &cond{has: 1<<notifiers.Warning | 1<<notifiers.Critical}
	below.thr[notifiers.Warning], below.thr[notifiers.Critical] = 15, 7
	below.hyst[notifiers.Warning], below.hyst[notifiers.Critical] = 2, 2
	above := &cond{above: true, has: 1<<notifiers.Info | 1<<notifiers.Critical}
	above.thr[notifiers.Info], above.thr[notifiers.Critical] = 1, 3
	above.hyst[notifiers.Info], above.hyst[notifiers.Critical] = 0.5, 0.5
	tests := []struct {
		name  string
		r     *cond
		v     float64
		cur   notifiers.Severity
		plain notifiers.Severity
		held  notifiers.Severity
	}{
		{"below, at warning threshold: strict", below, 15, notifiers.Warning, notifiers.None, notifiers.Warning},
		{"below, just under warning", below, 14.99, notifiers.None, notifiers.Warning, notifiers.None},
		{"below, at critical threshold", below, 7, notifiers.Critical, notifiers.Warning, notifiers.Critical},
		{"below, deep", below, 1, notifiers.Critical, notifiers.Critical, notifiers.Critical},
		{"below, hysteresis edge is strict", below, 9, notifiers.Critical, notifiers.Warning, notifiers.Warning},
		{"below, held at warning only up to cur", below, 8, notifiers.Warning, notifiers.Warning, notifiers.Warning},
		{"below, past every band", below, 17, notifiers.Warning, notifiers.None, notifiers.None},
		{"above, gap severity skipped", above, 2, notifiers.Critical, notifiers.Info, notifiers.Info},
		{"above, critical held", above, 2.6, notifiers.Critical, notifiers.Info, notifiers.Critical},
		{"above, info held", above, 0.6, notifiers.Info, notifiers.None, notifiers.Info},
		{"above, info released", above, 0.5, notifiers.Info, notifiers.None, notifiers.None},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.severity(tc.v); got != tc.plain {
				t.Errorf("severity(%v) = %s, want %s", tc.v, got, tc.plain)
			}
			if got := tc.r.held(tc.v, tc.cur); got != tc.held {
				t.Errorf("held(%v, %s) = %s, want %s", tc.v, tc.cur, got, tc.held)
			}
		})
	}
}

func TestAlertContent(t *testing.T) {
	rs := mustCompile(t, liqRule(func(r *config.Rule) {
		r.Summary = `{{.Symbol}} {{.Side}} is {{printf "%.1f" .Value}}% from liquidation ({{.Op}} {{.Threshold}}, {{.Severity}}, lev {{index .Metrics "leverage"}}, desk {{.Labels.desk}})`
		r.Runbook = `{{.Account}}/{{.Rule}}: add margin or cut size`
		r.Notify = []string{"phone", "ops"}
		r.Labels = map[string]string{"team": "risk", "desk": "beta"}
	}))
	e := NewEngine(rs, nil)
	acct := &metrics.Account{Name: "main", Labels: map[string]string{"desk": "alpha", "region": "eu"}}
	acct.Metrics.Put(metrics.Equity, 10000)
	acct.Metrics.Put(metrics.MarginRatio, 0.4)
	acct.Metrics.Put(metrics.DataAgeSeconds, 1)
	p := metrics.Position{Symbol: "BTCUSDT", Side: exchanges.Long, Raw: &exchanges.Position{
		Symbol: "BTCUSDT", Side: exchanges.Long, EntryPrice: 60000, MarkPrice: 57000, LiquidationPrice: 53466, Leverage: 10,
	}}
	p.Metrics.Put(metrics.LiqDistancePct, 6.2)
	p.Metrics.Put(metrics.Leverage, 10)
	acct.Positions = []metrics.Position{p}

	res := e.Evaluate(acct, t0)
	if len(res.Notices) != 1 {
		t.Fatalf("notices %q", summarize(res))
	}
	key := Key{Account: "main", Rule: "liq", Symbol: "BTCUSDT", Side: "long"}
	want := Notice{
		Notify: []string{"phone", "ops"},
		Alert: notifiers.Alert{
			ID:        IncidentID(key, "", t0),
			Status:    notifiers.Firing,
			Kind:      notifiers.KindFiring,
			Severity:  notifiers.Critical,
			Rule:      "liq",
			Account:   "main",
			Symbol:    "BTCUSDT",
			Side:      "long",
			Metric:    "liq_distance_pct",
			Value:     6.2,
			Threshold: 7,
			Op:        "below",
			StartsAt:  t0,
			At:        t0,
			Summary:   "BTCUSDT long is 6.2% from liquidation (below 7, critical, lev 10, desk beta)",
			Runbook:   "main/liq: add margin or cut size",
			Labels:    map[string]string{"desk": "beta", "region": "eu", "team": "risk"},
			Context: map[string]float64{
				"mark_price": 57000, "entry_price": 60000, "liq_price": 53466,
				"liq_distance_pct": 6.2, "leverage": 10, "equity": 10000, "margin_ratio": 0.4,
			},
		},
	}
	if !reflect.DeepEqual(res.Notices[0], want) {
		t.Errorf("notice\n%+v\nwant\n%+v", res.Notices[0], want)
	}
	if len(want.Alert.ID) != 16 {
		t.Errorf("ID %q: want 16 hex digits", want.Alert.ID)
	}

	// The resolution of a closed position keeps the last value and
	// severity, and the account context.
	acct.Positions = nil
	res = e.Evaluate(acct, t0.Add(time.Minute))
	if len(res.Notices) != 1 {
		t.Fatalf("notices %q", summarize(res))
	}
	got := res.Notices[0].Alert
	if got.Status != notifiers.Resolved || got.Severity != notifiers.Critical || got.Value != 6.2 || got.Threshold != 7 ||
		got.ID != want.Alert.ID || !got.StartsAt.Equal(t0) || !got.At.Equal(t0.Add(time.Minute)) {
		t.Errorf("resolution %+v", got)
	}
	if wantCtx := map[string]float64{"equity": 10000, "margin_ratio": 0.4}; !reflect.DeepEqual(got.Context, wantCtx) {
		t.Errorf("resolution context %v, want %v", got.Context, wantCtx)
	}
}

func TestIsolatedPositionContext(t *testing.T) {
	rs := mustCompile(t, liqRule(nil))
	acct := &metrics.Account{Name: "main"}
	acct.Metrics.Put(metrics.MarginRatio, 0.1)
	p := metrics.Position{Symbol: "ETHUSDT", Side: exchanges.Short}
	p.Metrics.Put(metrics.LiqDistancePct, 3)
	p.Metrics.Put(metrics.MarginRatio, 0.9)
	acct.Positions = []metrics.Position{p}
	res := NewEngine(rs, nil).Evaluate(acct, t0)
	want := map[string]float64{"liq_distance_pct": 3, "margin_ratio": 0.9, "account_margin_ratio": 0.1}
	if len(res.Notices) != 1 || !reflect.DeepEqual(res.Notices[0].Alert.Context, want) {
		t.Errorf("notices %+v, want context %v", res.Notices, want)
	}
}

func TestDefaultSummary(t *testing.T) {
	tests := []struct {
		d    TemplateData
		want string
	}{
		{TemplateData{Account: "main", Symbol: "BTCUSDT", Side: "long", Metric: "liq_distance_pct", Value: 6.2, Threshold: 7, Op: "below", Severity: "critical", Status: "firing"},
			"BTCUSDT long liq_distance_pct 6.2% < 7% (critical)"},
		{TemplateData{Account: "main", Metric: "margin_ratio", Value: 0.85123, Threshold: 0.8, Op: "above", Severity: "warning", Status: "firing"},
			"main margin_ratio 85.12% > 80% (warning)"},
		{TemplateData{Account: "main", Symbol: "BTCUSDT", Side: "short", Metric: "leverage", Value: 12, Threshold: 20, Op: "above", Severity: "warning", Status: "resolved"},
			"resolved: BTCUSDT short leverage 12x (was warning: > 20x)"},
		{TemplateData{Account: "main", Metric: "drawdown_pct", Value: 1, Threshold: 2, Op: "above", Severity: "warning", Status: "firing"},
			"main drawdown_pct 1% (warning, fired at > 2%, still firing)"},
		{TemplateData{Account: "main", Event: "key_problem", Message: "listen key expired"},
			"key_problem on main: listen key expired"},
	}
	for _, tc := range tests {
		if got := defaultSummary(&tc.d); got != tc.want {
			t.Errorf("defaultSummary(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestFormatNum(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{6.2, "6.2"},
		{7, "7"},
		{0.851234, "0.8512"},
		{64231.7, "64232"},
		{1234.56, "1235"},
		{0.00012345, "0.0001235"}, // 1.2345e-4 is a hair above the tie in binary
		{-3.14159, "-3.142"},
		{0, "0"},
	}
	for _, tc := range tests {
		if got := formatNum(tc.v); got != tc.want {
			t.Errorf("formatNum(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestRuntimeTemplateFailureFallsBack(t *testing.T) {
	// Passes Compile (the sample symbol is BTCUSDT) but fails on a symbol
	// shorter than three characters: the alert must still go out.
	rs := mustCompile(t, liqRule(func(r *config.Rule) {
		r.Summary = `{{slice .Symbol 0 3}}`
	}))
	acct := positionsAcct("main", pos{"BT", "long", metrics.LiqDistancePct, 5})
	res := NewEngine(rs, nil).Evaluate(acct, t0)
	if len(res.Notices) != 1 {
		t.Fatalf("notices %q", summarize(res))
	}
	if got, want := res.Notices[0].Alert.Summary, "BT long liq_distance_pct 5% < 7% (critical)"; got != want {
		t.Errorf("summary %q, want the default %q", got, want)
	}
}

func TestFiringNow(t *testing.T) {
	rs := mustCompile(t,
		liqRule(func(r *config.Rule) { r.For = time.Hour; r.Hysteresis = 5 }),
		config.Rule{Name: "margin", Scope: "account", Metric: "margin_ratio", Above: map[string]float64{"critical": 0.8}, Repeat: map[string]time.Duration{"critical": 10 * time.Minute}},
		config.Rule{Name: "mc", Scope: "event", Event: "margin_call", Severity: "critical", Repeat: map[string]time.Duration{"critical": 10 * time.Minute}},
	)
	acct := positionsAcct("main",
		pos{"BTCUSDT", "long", metrics.LiqDistancePct, 10},
		pos{"ETHUSDT", "long", metrics.LiqDistancePct, 16}, // inside hysteresis: stateless, so not firing
	)
	acct.Metrics.Put(metrics.MarginRatio, 0.9)
	acct.Events = []exchanges.Event{{Kind: exchanges.MarginCall}}
	got := FiringNow(rs, acct, t0)
	want := []Hit{
		{Rule: "margin", Severity: notifiers.Critical, Metric: "margin_ratio", Value: 0.9, Threshold: 0.8, Summary: "main margin_ratio 90% > 80% (critical)"},
		{Rule: "liq", Symbol: "BTCUSDT", Side: "long", Severity: notifiers.Warning, Metric: "liq_distance_pct", Value: 10, Threshold: 15, Summary: "BTCUSDT long liq_distance_pct 10% < 15% (warning)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FiringNow\n%+v\nwant\n%+v", got, want)
	}

	stale := &metrics.Account{Name: "main", Stale: true}
	stale.Metrics.Put(metrics.DataAgeSeconds, 90)
	stale.Metrics.Put(metrics.MarginRatio, 0.9) // ignored: stale
	got = FiringNow(rs, stale, t0)
	if len(got) != 1 || got[0].Rule != DataStale || got[0].Value != 90 {
		t.Errorf("FiringNow on a stale account: %+v, want only data-stale", got)
	}
}
