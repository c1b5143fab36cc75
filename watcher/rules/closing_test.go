package rules

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// liquidationNear is the rule of the SPEC example, with a summary written
// for a firing alert and a runbook.
func liquidationNear(mod func(*config.Rule)) config.Rule {
	return liqRule(func(r *config.Rule) {
		r.Name = "liquidation-near"
		r.Labels = map[string]string{"team": "risk"}
		r.Summary = `{{.Symbol}} {{.Side}} is {{printf "%.1f" .Value}}% from liquidation`
		r.Runbook = `Add margin or cut size ({{.Reason}}).`
		if mod != nil {
			mod(r)
		}
	})
}

var liquidationEvents = config.Rule{Name: "liquidations", Scope: "event", Event: "liquidation", Severity: "critical",
	Repeat: map[string]time.Duration{"critical": 10 * time.Minute}}

// TestLiquidationWhileFiring: the position of a critical liquidation-near
// alert is liquidated. The user hears about the liquidation (the event) and
// the incident ends as "liquidated" — never as a recovery.
func TestLiquidationWhileFiring(t *testing.T) {
	rs := mustCompile(t, liquidationNear(nil), liquidationEvents)
	e := NewEngine(rs, nil)
	first := e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 2.1}), t0)
	if got := summarize(first); got != "firing:critical" {
		t.Fatalf("first: %q, want firing:critical", got)
	}
	firing := first.Notices[0].Alert

	gone := positionsAcct("main")
	gone.Events = []exchanges.Event{{ID: "liq1", Kind: exchanges.Liquidation, Time: t0.Add(time.Minute), Symbol: "BTCUSDT", Side: exchanges.Long}}
	res := e.Evaluate(gone, t0.Add(time.Minute))
	if got := summarize(res); got != "event:critical closed:critical" {
		t.Fatalf("after the liquidation: %q, want one event and one closed notice", got)
	}
	c := res.Notices[1].Alert
	if c.Status != notifiers.Resolved || c.Reason != notifiers.ReasonLiquidated {
		t.Errorf("closing notice status %s reason %q, want resolved/liquidated", c.Status, c.Reason)
	}
	if c.ID != firing.ID || !c.StartsAt.Equal(t0) {
		t.Errorf("closing notice ID %s starts %s, want the incident's %s %s", c.ID, c.StartsAt, firing.ID, t0)
	}
	if want := "BTCUSDT long was liquidated while liquidation-near was critical (2.1% from liquidation)"; c.Summary != want {
		t.Errorf("summary %q, want %q", c.Summary, want)
	}
	if c.Runbook != "Add margin or cut size (liquidated)." {
		t.Errorf("runbook %q", c.Runbook)
	}
	if c.Metric != "liq_distance_pct" || c.Op != "below" || c.Value != 2.1 || c.Threshold != 7 ||
		!maps.Equal(c.Labels, map[string]string{"desk": "alpha", "team": "risk"}) {
		t.Errorf("closing notice lacks what the firing one carried: %+v", c)
	}
	if len(e.States()) != 0 || !slices.Contains(res.Deleted, Key{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long"}) {
		t.Errorf("state not ended: states %+v deleted %+v", e.States(), res.Deleted)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Errorf("closing notice cannot be stored: %v", err)
	}
}

func TestPositionGone(t *testing.T) {
	liq := func(sym, side string) []exchanges.Event {
		return []exchanges.Event{{ID: "x", Kind: exchanges.Liquidation, Symbol: sym, Side: exchanges.Side(side)}}
	}
	tests := []struct {
		name   string
		rule   config.Rule
		events []exchanges.Event
		want   string // "kind:severity:reason" of each notice
	}{
		{"closed without a liquidation event", liquidationNear(nil), nil, "closed:critical:closed"},
		{"liquidation event for the symbol and side", liquidationNear(nil), liq("BTCUSDT", "long"), "closed:critical:liquidated"},
		{"liquidation event naming no side", liquidationNear(nil), liq("BTCUSDT", ""), "closed:critical:liquidated"},
		{"liquidation of the other side", liquidationNear(nil), liq("BTCUSDT", "short"), "closed:critical:closed"},
		{"liquidation of another symbol", liquidationNear(nil), liq("ETHUSDT", "long"), "closed:critical:closed"},
		{"margin call is no liquidation", liquidationNear(nil),
			[]exchanges.Event{{Kind: exchanges.MarginCall, Symbol: "BTCUSDT"}}, "closed:critical:closed"},
		{"send_resolved false: a plain close is silent", liquidationNear(func(r *config.Rule) { r.SendResolved = false }), nil, ""},
		{"send_resolved false: a liquidation is still told", liquidationNear(func(r *config.Rule) { r.SendResolved = false }),
			liq("BTCUSDT", "long"), "closed:critical:liquidated"},
		{"a pending alert ends silently", liquidationNear(func(r *config.Rule) { r.For = time.Hour }), liq("BTCUSDT", "long"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(mustCompile(t, tc.rule), nil)
			e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 2.1}), t0)
			gone := positionsAcct("main")
			gone.Events = tc.events
			res := e.Evaluate(gone, t0.Add(time.Minute))
			var got []string
			for _, n := range res.Notices {
				got = append(got, string(n.Alert.Kind)+":"+n.Alert.Severity.String()+":"+n.Alert.Reason)
				if n.Alert.Kind == notifiers.KindResolved {
					t.Errorf("a gone position reads as recovered: %+v", n.Alert)
				}
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("notices %q, want %q", g, tc.want)
			}
			if len(e.States()) != 0 || len(res.Deleted) != 1 {
				t.Errorf("states %+v deleted %+v, want the alert ended", e.States(), res.Deleted)
			}
		})
	}
}

// TestCoinMAssetGone: a per-asset account alert whose margin asset is no
// longer in the account closes with reason closed.
func TestCoinMAssetGone(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name: "equity-low", Scope: "account", Metric: "equity",
		Below: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": time.Hour},
		SendResolved: true,
	})
	mk := func(assets ...string) *metrics.Account {
		a := &metrics.Account{Name: "main"}
		a.Metrics.Put(metrics.MarginRatio, 0.2)
		for _, as := range assets {
			x := metrics.Asset{Asset: as}
			x.Metrics.Put(metrics.Equity, 1.5)
			a.Assets = append(a.Assets, x)
		}
		return a
	}
	e := NewEngine(rs, nil)
	if got := summarizeSym(e.Evaluate(mk("BTC", "ETH"), t0)); got != "firing:warning:BTC firing:warning:ETH" {
		t.Fatalf("first: %q", got)
	}
	res := e.Evaluate(mk("ETH"), t0.Add(time.Minute))
	if got := summarizeSym(res); got != "closed:warning:BTC" {
		t.Fatalf("after BTC left: %q, want closed:warning:BTC", got)
	}
	c := res.Notices[0].Alert
	if c.Reason != notifiers.ReasonClosed || c.Status != notifiers.Resolved || !strings.Contains(c.Summary, "BTC") {
		t.Errorf("closing notice %+v", c)
	}
	if got := describeStates(e); got != "firing:warning" {
		t.Errorf("states %q, want ETH still firing", got)
	}
}

// TestGapIsNoResolution: a two-evaluation gap in one position's funding_rate
// (premiumIndex had a hole) changes nothing: no resolution, no new incident,
// and the alert carries on as before afterwards.
func TestGapIsNoResolution(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name: "funding", Scope: "position", Metric: "funding_rate",
		Above:        map[string]float64{"warning": 0.001, "critical": 0.003},
		Repeat:       map[string]time.Duration{"warning": time.Hour, "critical": time.Hour},
		SendResolved: true,
	})
	e := NewEngine(rs, nil)
	steps := []struct {
		at   time.Duration
		v    float64
		want string
	}{
		{0, 0.002, "firing:warning"},
		{time.Minute, absent, ""},
		{2 * time.Minute, absent, ""},
		{3 * time.Minute, 0.002, ""}, // no re-fire
		{4 * time.Minute, 0.004, "escalated:critical"},
		{5 * time.Minute, 0.0001, "resolved:critical"},
	}
	store := map[Key]State{}
	var incident, last string
	for i, s := range steps {
		acct := positionsAcct("main",
			pos{"BTCUSDT", "long", metrics.FundingRate, s.v},
			pos{"ETHUSDT", "long", metrics.FundingRate, 0.0001},
		)
		res := e.Evaluate(acct, t0.Add(s.at))
		if got := summarize(res); got != s.want {
			t.Errorf("step %d: notices %q, want %q", i, got, s.want)
		}
		if i == 1 || i == 2 {
			if len(res.Changed)+len(res.Deleted) != 0 {
				t.Errorf("step %d: the gap changed state: %+v", i, res)
			}
			if got := describeStates(e); got != "firing:warning" {
				t.Errorf("step %d: states %q, want firing:warning", i, got)
			}
		}
		checkIDs(t, i, res, &incident, &last)
		applyResult(store, res)
		checkStore(t, i, store, e.States())
	}
}

func TestGapLifecycle(t *testing.T) {
	tests := []struct {
		name  string
		rule  config.Rule
		steps []step
	}{
		{"a gap keeps a critical alert critical and the hysteresis band intact", liqRule(func(r *config.Rule) { r.Hysteresis = 2 }), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: time.Minute, v: absent, want: "", state: "firing:critical"},
			{at: 2 * time.Minute, v: 8, want: "", state: "firing:critical"}, // 8 < 7+2: still critical
			{at: 3 * time.Minute, v: 10, want: "eased:warning", state: "firing:warning"},
		}},
		{"repeats go on through a gap with the last known value", liqRule(nil), []step{
			{at: 0, v: 5, want: "firing:critical", state: "firing:critical"},
			{at: 5 * time.Minute, v: absent, want: "", state: "firing:critical"},
			{at: 10 * time.Minute, v: absent, want: "repeat:critical", state: "firing:critical"},
			{at: 15 * time.Minute, v: absent, want: "", state: "firing:critical"},
			{at: 20 * time.Minute, v: 5, want: "repeat:critical", state: "firing:critical"},
		}},
		{"a pending alert does not fire on a missing value", liqRule(func(r *config.Rule) { r.For = time.Minute }), []step{
			{at: 0, v: 5, want: "", state: "pending:critical"},
			{at: 2 * time.Minute, v: absent, want: "", state: "pending:critical"},
			{at: 3 * time.Minute, v: 5, want: "firing:critical", state: "firing:critical"},
		}},
		{"a gap starts nothing", liqRule(nil), []step{
			{at: 0, v: absent, want: "", state: ""},
			{at: time.Minute, v: 20, want: "", state: ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(mustCompile(t, tc.rule), nil)
			var incident, last string
			for i, s := range tc.steps {
				res := e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, s.v}), t0.Add(s.at))
				if got := summarize(res); got != s.want {
					t.Errorf("step %d: notices %q, want %q", i, got, s.want)
				}
				if got := describeStates(e); got != s.state {
					t.Errorf("step %d: states %q, want %q", i, got, s.state)
				}
				checkIDs(t, i, res, &incident, &last)
				if i == 2 && strings.HasPrefix(tc.name, "repeats") && (len(res.Notices) == 0 || res.Notices[0].Alert.Value != 5) {
					t.Errorf("step %d: repeat %+v, want the last known value 5", i, res.Notices)
				}
			}
		})
	}
}

// TestCoinMAssetGap: a per-asset account alert whose asset is still there
// but whose metric is missing keeps its state.
func TestCoinMAssetGap(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name: "equity-low", Scope: "account", Metric: "equity",
		Below: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": time.Hour},
		SendResolved: true,
	})
	mk := func(btc float64) *metrics.Account {
		a := &metrics.Account{Name: "main"}
		a.Assets = []metrics.Asset{{Asset: "BTC"}, {Asset: "ETH"}}
		a.Assets[0].Metrics.Put(metrics.Equity, btc)
		a.Assets[1].Metrics.Put(metrics.Equity, 30)
		return a
	}
	e := NewEngine(rs, nil)
	steps := []struct {
		v    float64
		want string
	}{{1.5, "firing:warning:BTC"}, {absent, ""}, {1.5, ""}, {3, "resolved:warning:BTC"}}
	for i, s := range steps {
		if got := summarizeSym(e.Evaluate(mk(s.v), t0.Add(time.Duration(i)*time.Minute))); got != s.want {
			t.Errorf("step %d: %q, want %q", i, got, s.want)
		}
	}
}

// A stream can report the liquidation while the position is still there
// and its disappearance in the next evaluation: the close is still a
// liquidation. A liquidation told long before is not the reason of a
// later close.
func TestLiquidationBeforeDisappearance(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after time.Duration
		want  string
	}{
		{"disappears a second later", time.Second, notifiers.ReasonLiquidated},
		{"disappears within the memory", liquidationMemory, notifiers.ReasonLiquidated},
		{"closed long after", liquidationMemory + time.Minute, notifiers.ReasonClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(mustCompile(t, liquidationNear(nil), liquidationEvents), nil)
			e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 2.1}), t0)
			told := positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 1.9})
			told.Events = []exchanges.Event{{ID: "liq1", Kind: exchanges.Liquidation, Symbol: "BTCUSDT", Side: exchanges.Long}}
			if got := summarize(e.Evaluate(told, t0.Add(time.Second))); got != "event:critical" {
				t.Fatalf("the liquidation event: %q, want event:critical", got)
			}
			if tt.after > liquidationMemory { // the alert stays firing meanwhile
				e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 1.9}), t0.Add(tt.after/2))
			}
			res := e.Evaluate(positionsAcct("main"), t0.Add(time.Second+tt.after))
			if len(res.Notices) != 1 || res.Notices[0].Alert.Kind != notifiers.KindClosed || res.Notices[0].Alert.Reason != tt.want {
				t.Fatalf("notices %s, want one closed notice with reason %s", summarize(res), tt.want)
			}
		})
	}
}

// The liquidation memory survives a reload (a new engine from the old
// one's states).
func TestLiquidationMemoryAcrossReload(t *testing.T) {
	rs := mustCompile(t, liquidationNear(nil), liquidationEvents)
	e := NewEngine(rs, nil)
	e.Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 2.1}), t0)
	told := positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 1.9})
	told.Events = []exchanges.Event{{ID: "liq1", Kind: exchanges.Liquidation, Symbol: "BTCUSDT", Side: exchanges.Long}}
	e.Evaluate(told, t0.Add(time.Second))
	next := NewEngine(rs, e.States())
	next.Inherit(e)
	res := next.Evaluate(positionsAcct("main"), t0.Add(2*time.Second))
	if len(res.Notices) != 1 || res.Notices[0].Alert.Reason != notifiers.ReasonLiquidated {
		t.Fatalf("notices %s, want one closed notice with reason liquidated", summarize(res))
	}
}
