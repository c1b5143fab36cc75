package rules

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

func liqRule(mod func(*config.Rule)) config.Rule {
	r := config.Rule{
		Name:         "liq",
		Scope:        "position",
		Metric:       "liq_distance_pct",
		Below:        map[string]float64{"warning": 15, "critical": 7},
		Repeat:       map[string]time.Duration{"warning": time.Hour, "critical": 10 * time.Minute},
		SendResolved: true,
	}
	if mod != nil {
		mod(&r)
	}
	return r
}

func levRule(mod func(*config.Rule)) config.Rule {
	r := config.Rule{
		Name:         "lev",
		Scope:        "position",
		Metric:       "leverage",
		Above:        map[string]float64{"warning": 20},
		Repeat:       map[string]time.Duration{"warning": time.Hour},
		SendResolved: true,
	}
	if mod != nil {
		mod(&r)
	}
	return r
}

type step struct {
	at     time.Duration
	v      float64 // the metric's value; NaN: absent
	closed bool    // the position is gone
	stale  bool    // the poll failed
	want   string  // notices, "kind:severity" in order
	state  string  // states afterwards, "phase:severity"
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name  string
		rule  config.Rule
		steps []step
	}{
		{"for 0 fires in the same evaluation", liqRule(nil), []step{
			{at: 0, v: 20, want: "", state: ""},
			{at: time.Minute, v: 6, want: "firing:critical", state: "firing:critical"},
		}},
		{"for: inactive, pending, firing", liqRule(func(r *config.Rule) { r.For = time.Minute }), []step{
			{at: 0, v: 10, want: "", state: "pending:warning"},
			{at: 30 * time.Second, v: 10, want: "", state: "pending:warning"},
			{at: 59 * time.Second, v: 10, want: "", state: "pending:warning"},
			{at: 60 * time.Second, v: 10, want: "firing:warning", state: "firing:warning"},
		}},
		{"for: pending back to inactive silently, clock restarts", liqRule(func(r *config.Rule) { r.For = time.Minute }), []step{
			{at: 0, v: 10, want: "", state: "pending:warning"},
			{at: 30 * time.Second, v: 20, want: "", state: ""},
			{at: 60 * time.Second, v: 10, want: "", state: "pending:warning"},
			{at: 119 * time.Second, v: 10, want: "", state: "pending:warning"},
			{at: 120 * time.Second, v: 10, want: "firing:warning", state: "firing:warning"},
		}},
		{"for: pending follows severity and fires at the current one", liqRule(func(r *config.Rule) { r.For = time.Minute }), []step{
			{at: 0, v: 10, want: "", state: "pending:warning"},
			{at: 30 * time.Second, v: 5, want: "", state: "pending:critical"},
			{at: 60 * time.Second, v: 5, want: "firing:critical", state: "firing:critical"},
		}},
		{"for does not delay escalation", liqRule(func(r *config.Rule) { r.For = time.Minute }), []step{
			{at: 0, v: 10, want: "", state: "pending:warning"},
			{at: 60 * time.Second, v: 10, want: "firing:warning", state: "firing:warning"},
			{at: 61 * time.Second, v: 5, want: "escalated:critical", state: "firing:critical"},
		}},
		{"repeat every repeat[warning]", liqRule(nil), []step{
			{at: 0, v: 10, want: "firing:warning", state: "firing:warning"},
			{at: 59 * time.Minute, v: 10, want: "", state: "firing:warning"},
			{at: 60 * time.Minute, v: 10, want: "repeat:warning", state: "firing:warning"},
			{at: 119 * time.Minute, v: 11, want: "", state: "firing:warning"},
			{at: 120 * time.Minute, v: 11, want: "repeat:warning", state: "firing:warning"},
		}},
		{"escalation is immediate inside the repeat window; critical repeats on its own timer", liqRule(nil), []step{
			{at: 0, v: 10, want: "firing:warning", state: "firing:warning"},
			{at: time.Minute, v: 5, want: "escalated:critical", state: "firing:critical"},
			{at: 10 * time.Minute, v: 5, want: "", state: "firing:critical"},
			{at: 11 * time.Minute, v: 5, want: "repeat:critical", state: "firing:critical"},
			{at: 21 * time.Minute, v: 5, want: "repeat:critical", state: "firing:critical"},
		}},
		{"eased once, repeat timer restarts at the lower severity", liqRule(nil), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: 5 * time.Minute, v: 10, want: "eased:warning", state: "firing:warning"},
			{at: 6 * time.Minute, v: 10, want: "", state: "firing:warning"},
			{at: 64 * time.Minute, v: 10, want: "", state: "firing:warning"},
			{at: 65 * time.Minute, v: 10, want: "repeat:warning", state: "firing:warning"},
		}},
		{"resolved with send_resolved carries the last severity", liqRule(nil), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, v: 20, want: "resolved:critical", state: ""},
		}},
		{"resolution after easing carries the eased severity", liqRule(nil), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, v: 10, want: "eased:warning", state: "firing:warning"},
			{at: 2 * time.Minute, v: 20, want: "resolved:warning", state: ""},
		}},
		{"resolved without send_resolved is silent", liqRule(func(r *config.Rule) { r.SendResolved = false }), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, v: 20, want: "", state: ""},
			{at: 2 * time.Minute, v: 5, want: "firing:critical", state: "firing:critical"},
		}},
		{"a missing value is a gap, not a resolution", liqRule(nil), []step{
			{at: 0, v: absent, want: "", state: ""},
			{at: time.Minute, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: 2 * time.Minute, v: absent, want: "", state: "firing:critical"},
			{at: 3 * time.Minute, v: 20, want: "resolved:critical", state: ""},
		}},
		{"a closed position is closed, not resolved", liqRule(nil), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, closed: true, want: "closed:critical", state: ""},
			{at: 2 * time.Minute, closed: true, want: "", state: ""},
		}},
		{"a closed position drops its pending state silently", liqRule(func(r *config.Rule) { r.For = time.Hour }), []step{
			{at: 0, v: 5, want: "", state: "pending:critical"},
			{at: time.Minute, closed: true, want: "", state: ""},
		}},
		{"flapping with hysteresis: 0 fires and resolves at each crossing", levRule(func(r *config.Rule) { r.At.Keys = map[string]config.Pos{"hysteresis": {}} }), []step{
			{at: 0, v: 21, want: "firing:warning", state: "firing:warning"},
			{at: 15 * time.Second, v: 19, want: "resolved:warning", state: ""},
			{at: 30 * time.Second, v: 21, want: "firing:warning", state: "firing:warning"},
			{at: 45 * time.Second, v: 20, want: "resolved:warning", state: ""}, // strict: 20 > 20 is false
			{at: 60 * time.Second, v: 20.5, want: "firing:warning", state: "firing:warning"},
		}},
		// The flap of issue 10 (fired at 9.27, resolved at 8.97, fired at
		// 9.02 within 47 s): the default hysteresis, 2% of 9 = 0.18, holds
		// the alert until the value falls to 8.82.
		{"flapping with the default hysteresis is one incident", levRule(func(r *config.Rule) { r.Above = map[string]float64{"warning": 9} }), []step{
			{at: 0, v: 9.27, want: "firing:warning", state: "firing:warning"},
			{at: 20 * time.Second, v: 8.97, want: "", state: "firing:warning"},
			{at: 47 * time.Second, v: 9.02, want: "", state: "firing:warning"},
			{at: 60 * time.Second, v: 8.85, want: "", state: "firing:warning"},
			{at: 75 * time.Second, v: 8.8, want: "resolved:warning", state: ""},
		}},
		{"the default hysteresis of has_stop_loss is 0: a stop resolves", config.Rule{Name: "no-stop", Scope: "position", Metric: "has_stop_loss",
			Below: map[string]float64{"warning": 1}, Repeat: map[string]time.Duration{"warning": time.Hour}, SendResolved: true}, []step{
			{at: 0, v: 0, want: "firing:warning", state: "firing:warning"},
			{at: time.Minute, v: 1, want: "resolved:warning", state: ""},
		}},
		{"keep_firing_for: 12h keeps the alert across a clear, a return and midnight", levRule(func(r *config.Rule) {
			r.KeepFiringFor = 12 * time.Hour
			r.Repeat = map[string]time.Duration{"warning": 24 * time.Hour}
		}), []step{
			{at: 0, v: 25, want: "firing:warning", state: "firing:warning"}, // 12:00
			{at: time.Hour, v: 10, want: "", state: "firing:warning"},
			{at: 5 * time.Hour, v: 25, want: "", state: "firing:warning"}, // back: nothing new
			{at: 5*time.Hour + 15*time.Minute, v: 10, want: "", state: "firing:warning"},
			{at: 12 * time.Hour, v: 10, want: "", state: "firing:warning"}, // midnight
			{at: 16*time.Hour + 59*time.Minute, v: 10, want: "", state: "firing:warning"},
			{at: 17 * time.Hour, v: 10, want: "resolved:warning", state: ""}, // 12h after it last held, at 05:00
		}},
		{"keep_firing_for keeps each severity, and a gap changes nothing", liqRule(func(r *config.Rule) {
			r.KeepFiringFor = time.Hour
			r.Repeat = map[string]time.Duration{"warning": 24 * time.Hour, "critical": 24 * time.Hour}
		}), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: 10 * time.Minute, v: 10, want: "", state: "firing:critical"},
			{at: 15 * time.Minute, v: 20, want: "", state: "firing:critical"},
			{at: 30 * time.Minute, v: absent, want: "", state: "firing:critical"},
			{at: 60 * time.Minute, v: 12, want: "eased:warning", state: "firing:warning"}, // critical last held at 0, warning holds
			{at: 90 * time.Minute, v: 20, want: "", state: "firing:warning"},
			{at: 119 * time.Minute, v: 20, want: "", state: "firing:warning"},
			{at: 120 * time.Minute, v: 20, want: "resolved:warning", state: ""},
		}},
		{"flapping with hysteresis is one incident", levRule(func(r *config.Rule) { r.Hysteresis = 2 }), []step{
			{at: 0, v: 21, want: "firing:warning", state: "firing:warning"},
			{at: 15 * time.Second, v: 19, want: "", state: "firing:warning"},
			{at: 30 * time.Second, v: 21, want: "", state: "firing:warning"},
			{at: 45 * time.Second, v: 18.5, want: "", state: "firing:warning"},
			{at: 60 * time.Second, v: 18, want: "resolved:warning", state: ""}, // 18 > 20−2 is false
		}},
		{"hysteresis on the way down, below rule", liqRule(func(r *config.Rule) { r.Hysteresis = 2 }), []step{
			{at: 0, v: 6, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, v: 8.9, want: "", state: "firing:critical"}, // 8.9 < 7+2
			{at: 2 * time.Minute, v: 9, want: "eased:warning", state: "firing:warning"},
			{at: 3 * time.Minute, v: 16.9, want: "", state: "firing:warning"}, // 16.9 < 15+2
			{at: 4 * time.Minute, v: 17, want: "resolved:warning", state: ""},
		}},
		{"stepping up uses the plain thresholds", levRule(func(r *config.Rule) {
			r.Above = map[string]float64{"warning": 80, "critical": 90}
			r.Hysteresis = 5
		}), []step{
			{at: 0, v: 81, want: "firing:warning", state: "firing:warning"},
			{at: time.Minute, v: 88, want: "", state: "firing:warning"},
			{at: 2 * time.Minute, v: 90, want: "", state: "firing:warning"},
			{at: 3 * time.Minute, v: 90.5, want: "escalated:critical", state: "firing:critical"},
			{at: 4 * time.Minute, v: 86, want: "", state: "firing:critical"},
			{at: 5 * time.Minute, v: 85, want: "eased:warning", state: "firing:warning"},
		}},
		{"three severities, above", levRule(func(r *config.Rule) {
			r.Above = map[string]float64{"info": 10, "warning": 20, "critical": 50}
			r.Repeat = map[string]time.Duration{"info": 0, "warning": time.Hour, "critical": time.Hour}
		}), []step{
			{at: 0, v: 10, want: "", state: ""},
			{at: time.Minute, v: 11, want: "firing:info", state: "firing:info"},
			{at: 2 * time.Minute, v: 51, want: "escalated:critical", state: "firing:critical"},
			{at: 3 * time.Minute, v: 15, want: "eased:info", state: "firing:info"},
			{at: 24 * time.Hour, v: 15, want: "", state: "firing:info"}, // repeat 0: never
		}},
		{"a failed poll leaves a firing alert alone, even with the position missing", liqRule(nil), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, stale: true, want: "", state: "firing:critical"},
			{at: 20 * time.Minute, stale: true, want: "", state: "firing:critical"},
			{at: 21 * time.Minute, v: 5, want: "repeat:critical", state: "firing:critical"},
			{at: 22 * time.Minute, v: 20, want: "resolved:critical", state: ""},
		}},
		{"a failed poll leaves a pending alert alone", liqRule(func(r *config.Rule) { r.For = time.Minute }), []step{
			{at: 0, v: 5, want: "", state: "pending:critical"},
			{at: 2 * time.Minute, stale: true, want: "", state: "pending:critical"},
			{at: 3 * time.Minute, v: 5, want: "firing:critical", state: "firing:critical"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustCompile(t, tc.rule)
			e := NewEngine(rs, nil)
			store := map[Key]State{}
			var incident, lastID string
			for i, s := range tc.steps {
				var acct *metrics.Account
				switch {
				case s.stale:
					acct = &metrics.Account{Name: "main", Stale: true}
					acct.Metrics.Put(metrics.DataAgeSeconds, 1)
				case s.closed:
					acct = positionsAcct("main")
				default:
					id, _ := metrics.Lookup(tc.rule.Metric)
					acct = positionsAcct("main", pos{"BTCUSDT", "long", id, s.v})
				}
				res := e.Evaluate(acct, t0.Add(s.at))
				if got := summarize(res); got != s.want {
					t.Errorf("step %d (+%s): notices %q, want %q", i, s.at, got, s.want)
				}
				if got := describeStates(e); got != s.state {
					t.Errorf("step %d (+%s): states %q, want %q", i, s.at, got, s.state)
				}
				checkIDs(t, i, res, &incident, &lastID)
				applyResult(store, res)
				checkStore(t, i, store, e.States())
			}
		})
	}
}

// checkIDs asserts that the notices of one incident share an ID and that a
// new incident gets a new one.
func checkIDs(t *testing.T, step int, res Result, incident, last *string) {
	t.Helper()
	for _, n := range res.Notices {
		a := n.Alert
		if a.ID == "" {
			t.Errorf("step %d: %s notice without ID", step, a.Kind)
			continue
		}
		if a.Kind == notifiers.KindFiring {
			if a.ID == *last {
				t.Errorf("step %d: new incident reuses ID %s", step, a.ID)
			}
			*incident, *last = a.ID, a.ID
			continue
		}
		if a.ID != *incident {
			t.Errorf("step %d: %s notice ID %s, want the incident's %s", step, a.Kind, a.ID, *incident)
		}
	}
}

func applyResult(store map[Key]State, res Result) {
	for _, st := range res.Changed {
		store[st.Key] = st
	}
	for _, k := range res.Deleted {
		delete(store, k)
	}
}

// checkStore asserts that persisting Changed and Deleted reproduces the
// engine's states (up to the current Value, which is deliberately not
// persisted on every poll).
func checkStore(t *testing.T, step int, store map[Key]State, states []State) {
	t.Helper()
	got := slices.Collect(maps.Values(store))
	slices.SortFunc(got, func(a, b State) int { return cmpKey(a.Key, b.Key) })
	want := slices.Clone(states)
	// Held moves on every evaluation while the condition holds and is
	// persisted only when it matters (see heldStale and
	// TestKeepFiringForSurvivesRestart).
	for i := range got {
		got[i].Value, got[i].Held = 0, [numSeverities]time.Time{}
	}
	for i := range want {
		want[i].Value, want[i].Held = 0, [numSeverities]time.Time{}
	}
	if len(got) != len(want) || len(got) > 0 && !reflect.DeepEqual(got, want) {
		t.Errorf("step %d: persisted states\n%+v\nwant engine states\n%+v", step, got, want)
	}
}

func TestAccountScopeLifecycle(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name:         "margin",
		Scope:        "account",
		Metric:       "margin_ratio",
		Above:        map[string]float64{"warning": 0.5, "critical": 0.8},
		Repeat:       map[string]time.Duration{"warning": time.Hour, "critical": time.Hour},
		SendResolved: true,
	})
	e := NewEngine(rs, nil)
	steps := []struct {
		v    float64
		want string
	}{
		{0.4, ""},
		{0.6, "firing:warning"},
		{0.85, "escalated:critical"},
		{0.3, "resolved:critical"},
	}
	for i, s := range steps {
		res := e.Evaluate(accountAcct("main", metrics.MarginRatio, s.v), t0.Add(time.Duration(i)*time.Minute))
		if got := summarize(res); got != s.want {
			t.Errorf("step %d: notices %q, want %q", i, got, s.want)
		}
		for _, n := range res.Notices {
			if n.Alert.Symbol != "" || n.Alert.Side != "" {
				t.Errorf("step %d: account alert with symbol %q side %q", i, n.Alert.Symbol, n.Alert.Side)
			}
		}
	}
}

func TestDataStale(t *testing.T) {
	margin := config.Rule{
		Name:         "margin",
		Scope:        "account",
		Metric:       "margin_ratio",
		Above:        map[string]float64{"critical": 0.8},
		Repeat:       map[string]time.Duration{"critical": time.Hour},
		SendResolved: true,
	}
	rs := mustCompile(t, margin)
	e := NewEngine(rs, nil)

	fresh := func(age, ratio float64) *metrics.Account {
		a := accountAcct("main", metrics.MarginRatio, ratio)
		a.Metrics.Put(metrics.DataAgeSeconds, age)
		return a
	}
	stale := func(age float64) *metrics.Account {
		a := &metrics.Account{Name: "main", Stale: true}
		a.Metrics.Put(metrics.DataAgeSeconds, age)
		return a
	}
	steps := []struct {
		at    time.Duration
		acct  *metrics.Account
		want  string
		state string
	}{
		{0, fresh(1, 0.9), "firing:critical/margin", "margin:firing:critical"},
		{45 * time.Second, stale(45), "", "margin:firing:critical"},
		{60 * time.Second, stale(60), "", "margin:firing:critical"}, // strict: 60 > 60 is false
		{61 * time.Second, stale(61), "firing:critical/data-stale", "data-stale:firing:critical margin:firing:critical"},
		{31 * time.Minute, stale(1860), "", "data-stale:firing:critical margin:firing:critical"},
		{31*time.Minute + time.Second, stale(1861), "repeat:critical/data-stale", "data-stale:firing:critical margin:firing:critical"},
		// Data returns: data-stale resolves; the margin alert, untouched
		// while blind, is judged again and resolves too.
		{32 * time.Minute, fresh(2, 0.1), "resolved:critical/data-stale resolved:critical/margin", ""},
	}
	for i, s := range steps {
		res := e.Evaluate(s.acct, t0.Add(s.at))
		var got []string
		for _, n := range res.Notices {
			got = append(got, string(n.Alert.Kind)+":"+n.Alert.Severity.String()+"/"+n.Alert.Rule)
			if n.Alert.Rule == DataStale {
				if n.Notify != nil {
					t.Errorf("step %d: data-stale notifies %v, want every notifier (nil)", i, n.Notify)
				}
			}
		}
		if g := strings.Join(got, " "); g != s.want {
			t.Errorf("step %d: notices %q, want %q", i, g, s.want)
		}
		var st []string
		for _, x := range e.States() {
			st = append(st, x.Key.Rule+":"+string(x.Phase)+":"+x.Severity.String())
		}
		if g := strings.Join(st, " "); g != s.state {
			t.Errorf("step %d: states %q, want %q", i, g, s.state)
		}
	}
}

func TestDataStaleSummary(t *testing.T) {
	rs := mustCompile(t)
	e := NewEngine(rs, nil)
	a := &metrics.Account{Name: "main", Stale: true, Labels: map[string]string{"desk": "alpha"}}
	a.Metrics.Put(metrics.DataAgeSeconds, 75.4)
	res := e.Evaluate(a, t0)
	if len(res.Notices) != 1 {
		t.Fatalf("notices %q, want one data-stale", summarize(res))
	}
	got := res.Notices[0].Alert
	if want := "monitoring of account main is blind: no fresh data for 75 s"; got.Summary != want {
		t.Errorf("summary %q, want %q", got.Summary, want)
	}
	if got.Threshold != 60 || got.Metric != "data_age_seconds" || got.Op != "above" || got.Runbook == "" {
		t.Errorf("alert %+v: want threshold 60 on data_age_seconds above, with a runbook", got)
	}
	// The other account has its own stale_after (120s): 75s is fine there.
	b := &metrics.Account{Name: "other", Stale: true}
	b.Metrics.Put(metrics.DataAgeSeconds, 75.4)
	if res := e.Evaluate(b, t0); len(res.Notices) != 0 {
		t.Errorf("other account: notices %q, want none below its 120s stale_after", summarize(res))
	}
}

func TestEvents(t *testing.T) {
	critRepeat := map[string]time.Duration{"critical": 10 * time.Minute} // as the loader fills it
	rs := mustCompile(t,
		config.Rule{Name: "mcall", Scope: "event", Event: "margin_call", Severity: "critical", Notify: []string{"phone"}, Repeat: critRepeat},
		config.Rule{Name: "liq-other", Scope: "event", Event: "liquidation", Severity: "critical", Accounts: []string{"other"}, Repeat: critRepeat},
		config.Rule{Name: "liq-btc", Scope: "event", Event: "liquidation", Severity: "warning", Symbols: []string{"BTCUSDT"}, Repeat: map[string]time.Duration{"warning": time.Hour}},
	)
	e := NewEngine(rs, nil)
	a := positionsAcct("main")
	a.Stale = true // events still count on a failed poll: key problems arrive then
	a.Events = []exchanges.Event{
		{ID: "e1", Kind: exchanges.MarginCall, Time: t0.Add(-time.Second), Message: "margin call"},
		{ID: "e2", Kind: exchanges.Liquidation, Time: t0, Symbol: "BTCUSDT", Side: exchanges.Long, Message: "liquidated 0.1 BTC"},
		{ID: "e3", Kind: exchanges.Liquidation, Time: t0, Symbol: "ETHUSDT", Side: exchanges.Short},
		{ID: "e4", Kind: exchanges.KeyProblem, Time: t0},
	}
	res := e.Evaluate(a, t0)
	var ids []string
	for _, n := range res.Notices {
		ids = append(ids, n.Alert.ID)
	}
	type got struct {
		rule, kind, sev, sym, summary string
		notify                        []string
	}
	var gs []got
	for _, n := range res.Notices {
		x := n.Alert
		if x.Status != notifiers.Firing || x.Op != "" {
			t.Errorf("%s: status %s op %q, want firing and no op", x.Rule, x.Status, x.Op)
		}
		gs = append(gs, got{x.Rule, string(x.Kind), x.Severity.String(), x.Symbol, x.Summary, n.Notify})
	}
	want := []got{
		{"mcall", "event", "critical", "", "margin_call on main: margin call", []string{"phone"}},
		{"liq-btc", "event", "warning", "BTCUSDT", "liquidation on main BTCUSDT long: liquidated 0.1 BTC", nil},
	}
	if !reflect.DeepEqual(gs, want) {
		t.Errorf("event notices\n%+v\nwant\n%+v", gs, want)
	}
	if len(e.States()) != 0 || len(res.Changed) != 0 {
		t.Errorf("events kept state: %+v", e.States())
	}
	// An event's ID derives from the occurrence, so a retried delivery or a
	// re-reported event is recognisable downstream.
	res2 := e.Evaluate(a, t0.Add(time.Minute))
	if len(res2.Notices) != 2 || res2.Notices[0].Alert.ID != ids[0] || res2.Notices[1].Alert.ID != ids[1] || ids[0] == ids[1] {
		t.Errorf("second evaluation IDs differ or collide: %v", ids)
	}
}

func TestRestore(t *testing.T) {
	rs := mustCompile(t, liqRule(nil))
	acct := func(v float64) *metrics.Account {
		return positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, v})
	}

	e1 := NewEngine(rs, nil)
	r := e1.Evaluate(acct(5), t0)
	if summarize(r) != "firing:critical" {
		t.Fatalf("first: %q", summarize(r))
	}
	id := r.Notices[0].Alert.ID
	// Persisted states, as the store would hand them back after kill -9.
	store := map[Key]State{}
	applyResult(store, r)
	saved := slices.Collect(maps.Values(store))

	e2 := NewEngine(rs, saved)
	steps := []struct {
		at   time.Duration
		v    float64
		want string
	}{
		{5 * time.Minute, 5, ""}, // no early repeat after the restart
		{10 * time.Minute, 5, "repeat:critical"},
		{11 * time.Minute, 20, "resolved:critical"}, // resolution still sent
	}
	for i, s := range steps {
		res := e2.Evaluate(acct(s.v), t0.Add(s.at))
		if got := summarize(res); got != s.want {
			t.Errorf("step %d: notices %q, want %q", i, got, s.want)
		}
		for _, n := range res.Notices {
			if n.Alert.ID != id || !n.Alert.StartsAt.Equal(t0) {
				t.Errorf("step %d: ID %s starts %s, want the incident's %s %s", i, n.Alert.ID, n.Alert.StartsAt, id, t0)
			}
		}
	}

	// A pending alert keeps its `for` clock across a restart.
	rf := mustCompile(t, liqRule(func(r *config.Rule) { r.For = time.Minute }))
	e3 := NewEngine(rf, nil)
	r3 := e3.Evaluate(acct(5), t0)
	e4 := NewEngine(rf, r3.Changed)
	if got := summarize(e4.Evaluate(acct(5), t0.Add(59*time.Second))); got != "" {
		t.Errorf("restored pending at 59s: %q, want nothing", got)
	}
	if got := summarize(e4.Evaluate(acct(5), t0.Add(60*time.Second))); got != "firing:critical" {
		t.Errorf("restored pending at 60s: %q, want firing:critical", got)
	}
}

func TestRestoreDropsUnclaimedStates(t *testing.T) {
	rs := mustCompile(t, liqRule(nil), config.Rule{
		Name: "main-only", Scope: "account", Metric: "equity", Below: map[string]float64{"warning": 10},
		Accounts: []string{"main"}, Repeat: map[string]time.Duration{"warning": time.Hour},
	}, liqRule(func(r *config.Rule) { r.Name = "btc-only"; r.Symbols = []string{"BTCUSDT"} }))
	firing := func(k Key) State {
		return State{Key: k, Phase: Active, ID: "x", Severity: notifiers.Warning, Since: t0, StartsAt: t0, LastSent: t0}
	}
	kept := firing(Key{Account: "main", Rule: "liq", Symbol: "BTCUSDT", Side: "long"})
	states := []State{
		kept,
		firing(Key{Account: "main", Rule: "removed", Symbol: "BTCUSDT", Side: "long"}),   // rule gone
		firing(Key{Account: "other", Rule: "main-only"}),                                 // filter excludes it
		firing(Key{Account: "gone", Rule: "liq", Symbol: "BTCUSDT", Side: "long"}),       // account left the config
		firing(Key{Account: "gone", Rule: DataStale}),                                    // its data-stale too
		firing(Key{Account: "main", Rule: "liq"}),                                        // position rule without symbol
		{Key: Key{Account: "main", Rule: "liq", Symbol: "ETHUSDT", Side: "long"}},        // no phase
		{Key: Key{Account: "main", Rule: "liq", Symbol: "SOLUSDT"}, Phase: Active},       // no severity
		firing(Key{Account: "main", Rule: "main-only", Symbol: "BTCUSDT", Side: "long"}), // account rule with a side
		firing(Key{Account: "main", Rule: "btc-only", Symbol: "ETHUSDT", Side: "long"}),  // symbol filter excludes it
	}
	e := NewEngine(rs, states)
	kept.Reported = 1 // seeded: the condition the alert reports had a value
	if got := e.States(); !reflect.DeepEqual(got, []State{kept}) {
		t.Errorf("States() = %+v, want only %+v", got, kept)
	}
	// Reported once, in the first evaluation, whatever the account.
	res := e.Evaluate(positionsAcct("other"), t0)
	want := []Key{
		{Account: "gone", Rule: "data-stale"},
		{Account: "gone", Rule: "liq", Symbol: "BTCUSDT", Side: "long"},
		{Account: "main", Rule: "btc-only", Symbol: "ETHUSDT", Side: "long"},
		{Account: "main", Rule: "liq"},
		{Account: "main", Rule: "liq", Symbol: "ETHUSDT", Side: "long"},
		{Account: "main", Rule: "liq", Symbol: "SOLUSDT"},
		{Account: "main", Rule: "main-only", Symbol: "BTCUSDT", Side: "long"},
		{Account: "main", Rule: "removed", Symbol: "BTCUSDT", Side: "long"},
		{Account: "other", Rule: "main-only"},
	}
	if !reflect.DeepEqual(res.Deleted, want) || len(res.Notices) != 0 {
		t.Errorf("first Evaluate: deleted\n%+v\nwant\n%+v\nnotices %q", res.Deleted, want, summarize(res))
	}
	if res := e.Evaluate(positionsAcct("other"), t0); len(res.Deleted) != 0 {
		t.Errorf("second Evaluate deleted %+v again", res.Deleted)
	}
}

func TestFilters(t *testing.T) {
	rs := mustCompile(t,
		liqRule(func(r *config.Rule) { r.Name = "btc-only"; r.Symbols = []string{"BTCUSDT"} }),
		liqRule(func(r *config.Rule) { r.Name = "other-only"; r.Accounts = []string{"other"} }),
		liqRule(func(r *config.Rule) {
			r.Name = "many-symbols" // more than manySymbolsLimit: the map path
			r.Symbols = []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "ETHUSDT"}
		}),
	)
	mk := func(name string) *metrics.Account {
		return positionsAcct(name,
			pos{"BTCUSDT", "long", metrics.LiqDistancePct, 5},
			pos{"ETHUSDT", "short", metrics.LiqDistancePct, 5},
		)
	}
	tests := []struct {
		acct string
		want []string
	}{
		{"main", []string{"btc-only/BTCUSDT", "many-symbols/ETHUSDT"}},
		{"other", []string{"btc-only/BTCUSDT", "many-symbols/ETHUSDT", "other-only/BTCUSDT", "other-only/ETHUSDT"}},
	}
	for _, tc := range tests {
		t.Run(tc.acct, func(t *testing.T) {
			e := NewEngine(rs, nil)
			var got []string
			for _, n := range e.Evaluate(mk(tc.acct), t0).Notices {
				got = append(got, n.Alert.Rule+"/"+n.Alert.Symbol)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Evaluate: %v, want %v", got, tc.want)
			}
			got = nil
			for _, h := range FiringNow(rs, mk(tc.acct), t0) {
				got = append(got, h.Rule+"/"+h.Symbol)
			}
			slices.Sort(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FiringNow: %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHedgeModeSidesAreSeparateAlerts(t *testing.T) {
	rs := mustCompile(t, liqRule(nil))
	e := NewEngine(rs, nil)
	a := positionsAcct("main",
		pos{"BTCUSDT", "long", metrics.LiqDistancePct, 5},
		pos{"BTCUSDT", "short", metrics.LiqDistancePct, 10},
	)
	res := e.Evaluate(a, t0)
	if got := summarizeSym(res); got != "firing:critical:BTCUSDT firing:warning:BTCUSDT" {
		t.Fatalf("notices %q", got)
	}
	if res.Notices[0].Alert.ID == res.Notices[1].Alert.ID {
		t.Errorf("long and short share ID %s", res.Notices[0].Alert.ID)
	}
	// Closing only the short closes only the short's alert.
	a = positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 5})
	res = e.Evaluate(a, t0.Add(time.Minute))
	if len(res.Notices) != 1 || res.Notices[0].Alert.Side != "short" || res.Notices[0].Alert.Kind != notifiers.KindClosed {
		t.Errorf("after closing the short: %+v", res.Notices)
	}
}

// Most severe first, then by rule name ("lev" < "liq"), then symbol.
func TestNoticesMostSevereFirst(t *testing.T) {
	rs := mustCompile(t, liqRule(nil), levRule(nil))
	e := NewEngine(rs, nil)
	a := positionsAcct("main",
		pos{"AUSDT", "long", metrics.LiqDistancePct, 10},
		pos{"BUSDT", "long", metrics.LiqDistancePct, 5},
		pos{"CUSDT", "long", metrics.Leverage, 25},
	)
	if got, want := summarizeSym(e.Evaluate(a, t0)), "firing:critical:BUSDT firing:warning:CUSDT firing:warning:AUSDT"; got != want {
		t.Errorf("notices %q, want %q", got, want)
	}
}

func TestCoinMPerAssetAccountAlerts(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name: "equity-low", Scope: "account", Metric: "equity",
		Below: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": time.Hour},
		SendResolved: true,
	})
	mk := func(btc, eth float64) *metrics.Account {
		a := &metrics.Account{Name: "main"}
		a.Metrics.Put(metrics.MarginRatio, 0.2)
		a.Assets = []metrics.Asset{{Asset: "BTC"}, {Asset: "ETH"}}
		a.Assets[0].Metrics.Put(metrics.Equity, btc)
		a.Assets[1].Metrics.Put(metrics.Equity, eth)
		return a
	}
	e := NewEngine(rs, nil)
	res := e.Evaluate(mk(1.5, 30), t0)
	if len(res.Notices) != 1 {
		t.Fatalf("notices %q, want one for BTC", summarize(res))
	}
	a := res.Notices[0].Alert
	if a.Symbol != "BTC" || a.Side != "" || a.Summary != "main BTC equity 1.50 < 2.00 (warning)" {
		t.Errorf("alert symbol %q side %q summary %q", a.Symbol, a.Side, a.Summary)
	}
	if want := map[string]float64{"equity": 1.5, "margin_ratio": 0.2}; !reflect.DeepEqual(a.Context, want) {
		t.Errorf("context %v, want %v", a.Context, want)
	}
	if got := summarizeSym(e.Evaluate(mk(2.5, 30), t0.Add(time.Minute))); got != "resolved:warning:BTC" {
		t.Errorf("after recovery: %q", got)
	}
}

func TestEvaluateNil(t *testing.T) {
	e := NewEngine(nil, nil)
	if res := e.Evaluate(nil, t0); len(res.Notices)+len(res.Changed)+len(res.Deleted) != 0 {
		t.Errorf("Evaluate(nil) = %+v", res)
	}
	if hits := FiringNow(nil, nil, t0); hits != nil {
		t.Errorf("FiringNow(nil) = %+v", hits)
	}
}

func TestDrawdownWindow(t *testing.T) {
	dd := func(name string, window time.Duration) config.Rule {
		return config.Rule{Name: name, Scope: "account", Metric: "drawdown_pct", Window: window,
			Above: map[string]float64{"warning": 3}, Repeat: map[string]time.Duration{"warning": time.Hour}}
	}
	rs := mustCompile(t, dd("dd-1h", time.Hour), dd("dd-4h", 4*time.Hour), dd("dd-24h", 24*time.Hour))
	hist := metrics.NewEquityHistory(0)
	snap := func(at time.Time, equity float64) *exchanges.Snapshot {
		return &exchanges.Snapshot{Time: at, Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: equity, MarginBalance: equity}}}
	}
	// Equity 1000 three hours ago, 950 now: a 5% drawdown over 4h and 24h,
	// none over the last hour.
	metrics.Compute("main", "simulated", nil, snap(t0.Add(-3*time.Hour), 1000), hist, t0.Add(-3*time.Hour))
	acct := metrics.Compute("main", "simulated", nil, snap(t0, 950), hist, t0)
	var got []string
	for _, h := range FiringNow(rs, acct, t0) {
		got = append(got, h.Rule+"="+formatNum(h.Value))
	}
	e := NewEngine(rs, nil)
	for _, n := range e.Evaluate(acct, t0).Notices {
		got = append(got, "notice:"+n.Alert.Rule+"="+formatNum(n.Alert.Value))
	}
	want := []string{"dd-4h=5", "dd-24h=5", "notice:dd-24h=5", "notice:dd-4h=5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestConcurrentUse runs evaluations of two accounts and status reads at
// once; the race detector checks the locking, the results check that one
// account's Result is not clobbered by the other's.
func TestConcurrentUse(t *testing.T) {
	rs := mustCompile(t, liqRule(nil))
	e := NewEngine(rs, nil)
	done := make(chan string, 2)
	for _, name := range []string{"main", "other"} {
		go func() {
			var bad string
			for i := range 200 {
				v := 5.0
				if i%2 == 1 {
					v = 20
				}
				res := e.Evaluate(positionsAcct(name, pos{"BTCUSDT", "long", metrics.LiqDistancePct, v}), t0.Add(time.Duration(i)*time.Second))
				want := "firing:critical"
				if i%2 == 1 {
					want = "resolved:critical"
				}
				if got := summarize(res); got != want || res.Notices[0].Alert.Account != name {
					bad = name + ": " + got
				}
				_ = e.States()
			}
			done <- bad
		}()
	}
	for range 2 {
		if bad := <-done; bad != "" {
			t.Error(bad)
		}
	}
}
