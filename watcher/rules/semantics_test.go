package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST case must not depend on the host's zoneinfo

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// usdtSnap is a one-pool USDⓈ-M snapshot with the given equity.
func usdtSnap(at time.Time, equity float64) *exchanges.Snapshot {
	return &exchanges.Snapshot{Time: at, Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: equity, MarginBalance: equity}}}
}

// TestDayWindowLatch: "stop for the day" — a window: day drawdown alert
// fires on a 2.5% loss since the daily reset, stays on through a bounce
// (where a rolling 24h rule resolves), and resolves at the next reset, in
// UTC and in a zone whose day is 23 hours long (DST begins).
func TestDayWindowLatch(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		at     time.Time
		equity float64
		want   string // notices as rule=kind:severity
	}
	tests := []struct {
		name, tz string
		steps    []step
	}{
		{"UTC across midnight", "UTC", []step{
			{time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC), 10000, ""},
			{time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC), 9750, "day=firing:warning dd-24h=firing:warning"},
			{time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC), 9900, "dd-24h=resolved:warning"},
			{time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC), 9900, ""},
			{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 9900, "day=resolved:warning"},
			{time.Date(2026, 3, 2, 0, 15, 0, 0, time.UTC), 9900, ""},
		}},
		{"New York, the day DST begins (23 hours)", "America/New_York", []step{
			{time.Date(2026, 3, 8, 0, 30, 0, 0, ny), 10000, ""},
			{time.Date(2026, 3, 8, 14, 0, 0, 0, ny), 9750, "day=firing:warning dd-24h=firing:warning"},
			{time.Date(2026, 3, 8, 15, 0, 0, 0, ny), 9900, "dd-24h=resolved:warning"},
			{time.Date(2026, 3, 8, 23, 59, 0, 0, ny), 9900, ""},                   // 03:59 UTC
			{time.Date(2026, 3, 9, 0, 0, 0, 0, ny), 9900, "day=resolved:warning"}, // 04:00 UTC, not 05:00
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustCompile(t,
				config.Rule{Name: "day", Scope: "account", Metric: "drawdown_pct", Daily: true, ResetAt: "00:00", Timezone: tc.tz,
					Above: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": 24 * time.Hour}, SendResolved: true},
				config.Rule{Name: "dd-24h", Scope: "account", Metric: "drawdown_pct", Window: 24 * time.Hour,
					Above: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": 24 * time.Hour}, SendResolved: true},
			)
			hist := metrics.NewEquityHistory(0)
			e := NewEngine(rs, nil)
			store := map[Key]State{}
			for i, s := range tc.steps {
				acct := metrics.Compute("main", "simulated", nil, usdtSnap(s.at, s.equity), hist, s.at)
				res := e.Evaluate(acct, s.at)
				var got []string
				for _, n := range res.Notices {
					got = append(got, fmt.Sprintf("%s=%s:%s", n.Alert.Rule, n.Alert.Kind, n.Alert.Severity))
				}
				slices.Sort(got)
				if g := strings.Join(got, " "); g != s.want {
					t.Errorf("step %d (%s): notices %q, want %q", i, s.at.UTC().Format(time.DateTime), g, s.want)
				}
				applyResult(store, res)
				// A restart at any point keeps the latch: the next
				// evaluation runs on an engine rebuilt from the store.
				e = NewEngine(rs, slices.Collect(mapsValues(store)))
			}
		})
	}
}

func mapsValues(m map[Key]State) func(func(State) bool) {
	return func(yield func(State) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// TestDayWindowSummaryWhileLatched: a repeat during the latch says the alert
// still fires although the value alone would not.
func TestDayWindowSummaryWhileLatched(t *testing.T) {
	rs := mustCompile(t, config.Rule{Name: "day", Scope: "account", Metric: "drawdown_pct", Daily: true, ResetAt: "06:00", Timezone: "Europe/Berlin",
		Above: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": time.Hour}, SendResolved: true})
	hist := metrics.NewEquityHistory(0)
	e := NewEngine(rs, nil)
	at := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC) // 08:00 in Berlin, after the 06:00 reset
	e.Evaluate(metrics.Compute("main", "simulated", nil, usdtSnap(at, 10000), hist, at), at)
	at = at.Add(time.Hour)
	if got := summarize(e.Evaluate(metrics.Compute("main", "simulated", nil, usdtSnap(at, 9700), hist, at), at)); got != "firing:warning" {
		t.Fatalf("3%% down: %q", got)
	}
	at = at.Add(time.Hour)
	res := e.Evaluate(metrics.Compute("main", "simulated", nil, usdtSnap(at, 9950), hist, at), at)
	if len(res.Notices) != 1 || res.Notices[0].Alert.Kind != notifiers.KindRepeat {
		t.Fatalf("bounce: %+v", res.Notices)
	}
	if got, want := res.Notices[0].Alert.Summary, "main drawdown_pct 0.5% (warning, fired at > 2%, still firing)"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	// FiringNow is stateless: the bounce alone fires nothing.
	if hits := FiringNow(rs, metrics.Compute("main", "simulated", nil, usdtSnap(at, 9950), hist, at), at); len(hits) != 0 {
		t.Errorf("FiringNow during the latch = %+v, want none", hits)
	}
}

func TestLastReset(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	r := &Rule{daily: true, resetAt: 30 * time.Minute, loc: ny}
	tests := []struct{ now, want time.Time }{
		{time.Date(2026, 3, 8, 0, 29, 0, 0, ny), time.Date(2026, 3, 7, 0, 30, 0, 0, ny)},
		{time.Date(2026, 3, 8, 0, 30, 0, 0, ny), time.Date(2026, 3, 8, 0, 30, 0, 0, ny)},
		{time.Date(2026, 3, 8, 23, 0, 0, 0, ny), time.Date(2026, 3, 8, 0, 30, 0, 0, ny)},
		{time.Date(2026, 11, 1, 12, 0, 0, 0, ny), time.Date(2026, 11, 1, 0, 30, 0, 0, ny)}, // a 25-hour day
	}
	for _, tc := range tests {
		if got := r.lastReset(tc.now); !got.Equal(tc.want) {
			t.Errorf("lastReset(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

// TestKeepFiringForSurvivesRestart: a restart at any evaluation neither
// re-fires the alert nor makes it resolve later than without the restart,
// and at most keep_firing_for/20 earlier (the Held time persisted while the
// condition holds lags by at most that).
func TestKeepFiringForSurvivesRestart(t *testing.T) {
	keep := 12 * time.Hour
	rule := levRule(func(r *config.Rule) {
		r.KeepFiringFor = keep
		r.Repeat = map[string]time.Duration{"warning": 48 * time.Hour}
	})
	rs := mustCompile(t, rule)
	const step = 15 * time.Minute
	value := func(i int) float64 {
		if i < 12 { // holds until +2h45m
			return 25
		}
		return 10
	}
	run := func(restartAt int) (fired, resolved []time.Duration) {
		e := NewEngine(rs, nil)
		store := map[Key]State{}
		for i := 0; i <= 64; i++ { // to +16h
			if i == restartAt {
				e = NewEngine(rs, slices.Collect(mapsValues(store)))
			}
			at := time.Duration(i) * step
			res := e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.Leverage, value(i)}), t0.Add(at))
			for _, n := range res.Notices {
				switch n.Alert.Kind {
				case notifiers.KindFiring:
					fired = append(fired, at)
				case notifiers.KindResolved:
					resolved = append(resolved, at)
				default:
					t.Errorf("restart at %d: unexpected %s at +%s", restartAt, n.Alert.Kind, at)
				}
			}
			applyResult(store, res)
		}
		return fired, resolved
	}
	_, base := run(-1)
	if want := 2*time.Hour + 45*time.Minute + keep; len(base) != 1 || base[0] != want {
		t.Fatalf("without restart: resolved at %v, want [+%s]", base, want)
	}
	for k := 1; k <= 64; k++ {
		fired, resolved := run(k)
		if len(fired) != 1 || len(resolved) != 1 {
			t.Errorf("restart at step %d: fired %v, resolved %v; want one each", k, fired, resolved)
			continue
		}
		// The first evaluation that finds the condition clear (step 12)
		// persists the exact last hold: a restart after it changes nothing.
		if k > 12 && resolved[0] != base[0] {
			t.Errorf("restart at step %d, after the clear was persisted: resolved at +%s, want +%s", k, resolved[0], base[0])
		}
		if d := base[0] - resolved[0]; d < 0 || d > keep/20 {
			t.Errorf("restart at step %d: resolved at +%s, want within %s before +%s", k, resolved[0], keep/20, base[0])
		}
	}
}

// anyRule is "within 10% or within 3 ATR" as one rule, loaded from YAML.
func anyRule(t *testing.T) config.Rule {
	t.Helper()
	cfg, err := config.Parse("rules.yaml", []byte(`
rules:
  - name: liq-near
    any:
      - {metric: liq_distance_pct, below: {warning: 10, critical: 5}, hysteresis: 0.5}
      - {metric: liq_distance_atr, below: {warning: 3, critical: 1.5}}
    repeat: 24h
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Rules[0]
}

func twoMetricAcct(pct, atr float64) *metrics.Account {
	a := positionsAcct("main")
	p := metrics.Position{Symbol: "BTCUSDT", Side: exchanges.Long}
	p.Metrics.Put(metrics.LiqDistancePct, pct)
	p.Metrics.Put(metrics.LiqDistanceATR, atr)
	a.Positions = append(a.Positions, p)
	return a
}

// TestAnyConditions: "within 10% or within 3 ATR" is one alert: it fires
// once, reports the condition that decides its severity, escalates when the
// other condition gives more, does not ease through a gap in one condition,
// and resolves when both clear.
func TestAnyConditions(t *testing.T) {
	rs := mustCompile(t, anyRule(t))
	e := NewEngine(rs, nil)
	steps := []struct {
		pct, atr float64
		want     string // kind:severity:metric
		summary  string
	}{
		{12, 2.5, "firing:warning:liq_distance_atr", "BTCUSDT long liq_distance_atr 2.5 ATR < 3 ATR (warning)"},
		{9, 2.5, "", ""},
		{4, 2.5, "escalated:critical:liq_distance_pct", "BTCUSDT long liq_distance_pct 4% < 5% (critical)"},
		{9, absent, "", ""}, // the ATR is unknown: no easing
		{12, 2.5, "eased:warning:liq_distance_atr", ""},
		{12, 3.01, "", ""}, // hysteresis 2% of 3
		{12, 3.1, "resolved:warning:liq_distance_atr", ""},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Minute)
		res := e.Evaluate(twoMetricAcct(s.pct, s.atr), at)
		var got []string
		for _, n := range res.Notices {
			got = append(got, fmt.Sprintf("%s:%s:%s", n.Alert.Kind, n.Alert.Severity, n.Alert.Metric))
		}
		if g := strings.Join(got, " "); g != s.want {
			t.Errorf("step %d (%v%%, %v ATR): notices %q, want %q", i, s.pct, s.atr, g, s.want)
		}
		if s.summary != "" && len(res.Notices) == 1 && res.Notices[0].Alert.Summary != s.summary {
			t.Errorf("step %d: summary %q, want %q", i, res.Notices[0].Alert.Summary, s.summary)
		}
	}
	hits := FiringNow(rs, twoMetricAcct(4, 2.5), t0)
	if len(hits) != 1 || hits[0].Severity != notifiers.Critical || hits[0].Metric != "liq_distance_pct" || hits[0].Value != 4 || hits[0].Threshold != 5 {
		t.Errorf("FiringNow = %+v, want one critical hit on liq_distance_pct", hits)
	}
}

// TestAnyConditionNeverReported: a condition that never had a value for the
// alert (an ATR before a new symbol has 15 closed candles) is no gap: the
// alert the other condition raised resolves when that one clears.
func TestAnyConditionNeverReported(t *testing.T) {
	e := NewEngine(mustCompile(t, anyRule(t)), nil)
	var kinds []string
	for i, pct := range []float64{4, 12, 12} {
		for _, n := range e.Evaluate(twoMetricAcct(pct, absent), t0.Add(time.Duration(i)*time.Minute)).Notices {
			kinds = append(kinds, string(n.Alert.Kind)+":"+n.Alert.Severity.String())
		}
	}
	if g, want := strings.Join(kinds, " "), "firing:critical resolved:critical"; g != want {
		t.Errorf("notices %q, want %q", g, want)
	}
}

// TestAnyConditionsRestart: after a restart the alert reports the condition
// its last notice was about.
func TestAnyConditionsRestart(t *testing.T) {
	rs := mustCompile(t, anyRule(t))
	e := NewEngine(rs, nil)
	e.Evaluate(twoMetricAcct(12, 2.5), t0)
	e = NewEngine(rs, e.States())
	res := e.Evaluate(twoMetricAcct(12, 5), t0.Add(time.Minute))
	if len(res.Notices) != 1 || res.Notices[0].Alert.Metric != "liq_distance_atr" || res.Notices[0].Alert.Threshold != 3 {
		t.Errorf("resolution after restart = %+v, want one about liq_distance_atr < 3", res.Notices)
	}
}

// TestAnyConditionGapAfterRestart: which conditions had a value for an alert
// survives a restart (State.Reported), so a gap in the firing condition does
// not resolve it then either (SPEC: a gap never resolves). A state stored
// before Reported existed counts the condition it reports.
func TestAnyConditionGapAfterRestart(t *testing.T) {
	rs := mustCompile(t, anyRule(t))
	for _, tc := range []struct {
		name    string
		restart func([]State) []State // nil: no restart
	}{
		{"no restart", nil},
		{"restart", func(s []State) []State { return s }},
		{"restart from a state without Reported", func(s []State) []State {
			for i := range s {
				s[i].Reported = 0
			}
			return s
		}},
	} {
		e := NewEngine(rs, nil)
		e.Evaluate(twoMetricAcct(4, 5), t0) // critical on liq_distance_pct, ATR fine
		if tc.restart != nil {
			e = NewEngine(rs, tc.restart(e.States()))
		}
		// The liquidation price is missing this poll: liq_distance_pct absent.
		if got := summarize(e.Evaluate(twoMetricAcct(absent, 5), t0.Add(time.Minute))); got != "" {
			t.Errorf("%s: gap in the firing condition sent %q, want nothing", tc.name, got)
		}
	}
}

// TestAnyConditionFirstValueIsStored: a condition's first value for a firing
// alert is written to the store, so that after a restart a gap in it still
// holds the alert open.
func TestAnyConditionFirstValueIsStored(t *testing.T) {
	rs := mustCompile(t, anyRule(t))
	e := NewEngine(rs, nil)
	e.Evaluate(twoMetricAcct(4, absent), t0) // fires on liq_distance_pct, no ATR yet
	res := e.Evaluate(twoMetricAcct(4, 5), t0.Add(time.Minute))
	if len(res.Changed) != 1 || res.Changed[0].Reported != 0b11 {
		t.Fatalf("Changed = %+v, want the state with both conditions reported", res.Changed)
	}
	e = NewEngine(rs, slices.Clone(res.Changed))
	// liq_distance_pct clears while the ATR is missing: no sign of recovery.
	if got := summarize(e.Evaluate(twoMetricAcct(12, absent), t0.Add(2*time.Minute))); got != "" {
		t.Errorf("after restart, gap in the ATR sent %q, want nothing", got)
	}
	if got := summarize(e.Evaluate(twoMetricAcct(12, 5), t0.Add(3*time.Minute))); got != "resolved:critical" {
		t.Errorf("both clear: %q, want resolved:critical", got)
	}
}

// TestQuietEvaluateDoesNotAllocateNewKeys: any:, keep_firing_for and
// window: day keep the quiet evaluation free of allocations, alerts firing
// and kept included.
func TestQuietEvaluateDoesNotAllocateNewKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	r := anyRule(t)
	r.KeepFiringFor = time.Hour
	rs := mustCompile(t, r, config.Rule{Name: "day", Scope: "account", Metric: "drawdown_pct", Daily: true, ResetAt: "00:00", Timezone: "Europe/Berlin",
		Above: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": 24 * time.Hour}, SendResolved: true})
	e := NewEngine(rs, nil)
	mk := func(pct float64) *metrics.Account {
		a := positionsAcct("main")
		for i := range 200 {
			p := metrics.Position{Symbol: fmt.Sprintf("S%03dUSDT", i), Side: exchanges.Long}
			p.Metrics.Put(metrics.LiqDistancePct, 40)
			p.Metrics.Put(metrics.LiqDistanceATR, 12)
			if i%10 == 0 {
				p.Metrics.Put(metrics.LiqDistancePct, pct)
			}
			a.Positions = append(a.Positions, p)
		}
		return a
	}
	e.Evaluate(mk(4), t0)
	quiet := mk(30) // cleared, kept by keep_firing_for
	e.Evaluate(quiet, t0.Add(time.Minute))
	if len(e.States()) != 20 {
		t.Fatalf("%d alerts firing, want 20", len(e.States()))
	}
	now := t0.Add(2 * time.Minute)
	allocs := testing.AllocsPerRun(20, func() {
		if res := e.Evaluate(quiet, now); len(res.Notices)+len(res.Changed)+len(res.Deleted) != 0 {
			t.Fatalf("quiet evaluation produced %+v", res)
		}
	})
	if allocs != 0 {
		t.Errorf("quiet Evaluate allocates %v times, want 0", allocs)
	}
}

// TestDefaultHysteresisAtRangeEdgeResolves: stop_coverage_pct is capped at
// 100, so a "not fully covered" rule with the default hysteresis must
// resolve at 100 (2% of 100 would need 102, which never comes).
func TestDefaultHysteresisAtRangeEdgeResolves(t *testing.T) {
	cfg, err := config.Parse("rules.yaml", []byte(`
rules:
  - name: stop-partial
    metric: stop_coverage_pct
    below: {warning: 100}
    repeat: 4h
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(mustCompile(t, cfg.Rules[0]), nil)
	got := summarize(e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.StopCoveragePct, 50}), t0))
	got += " | " + summarize(e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.StopCoveragePct, 100}), t0.Add(time.Minute)))
	if got != "firing:warning | resolved:warning" {
		t.Errorf("notices %q, want the stop fully covering the position to resolve", got)
	}
}
