package rules

import (
	"encoding/json"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// TestEquityGoneKeepsFiring: equity falls to zero and below while an
// effective_leverage alert fires at warning. The leverage reads as +Inf:
// the alert escalates to critical and stays firing — never resolves — and
// its state can still be persisted.
func TestEquityGoneKeepsFiring(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name: "eff-leverage", Scope: "account", Metric: "effective_leverage",
		Above:        map[string]float64{"warning": 5, "critical": 10},
		Hysteresis:   1,
		Repeat:       map[string]time.Duration{"warning": time.Hour, "critical": 10 * time.Minute},
		SendResolved: true,
	})
	snap := func(equity float64) *exchanges.Snapshot {
		return &exchanges.Snapshot{
			Balances:  []exchanges.Balance{{Asset: "USDT", MarginBalance: equity}},
			Positions: []exchanges.Position{{Symbol: "BTCUSDT", Side: exchanges.Long, Notional: 8000, Leverage: 20}},
		}
	}
	e := NewEngine(rs, nil)
	store := map[Key]State{}
	steps := []struct {
		at     time.Duration
		equity float64
		want   string
	}{
		{0, 1000, "firing:warning"}, // 8x
		{time.Minute, 0, "escalated:critical"},
		{2 * time.Minute, -50, ""},
		{12 * time.Minute, -50, "repeat:critical"},
		{13 * time.Minute, 0, ""},
		{14 * time.Minute, 1500, "eased:warning"}, // 5.3x
		{15 * time.Minute, -1, "escalated:critical"},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		sn := snap(s.equity)
		sn.Time = now
		res := e.Evaluate(metrics.Compute("main", "x", nil, sn, nil, now), now)
		if got := summarize(res); got != s.want {
			t.Errorf("step %d (equity %v): notices %q, want %q", i, s.equity, got, s.want)
		}
		for _, n := range res.Notices {
			if n.Alert.Status != notifiers.Firing {
				t.Errorf("step %d: %s notice with status %s", i, n.Alert.Kind, n.Alert.Status)
			}
		}
		// What the store does: encode every changed state.
		for _, st := range res.Changed {
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatalf("step %d: state cannot be persisted: %v", i, err)
			}
			var back State
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("step %d: persisted state %s does not decode: %v", i, b, err)
			}
			store[back.Key] = back
		}
		if i == 1 {
			if v := store[Key{Account: "main", Rule: "eff-leverage"}].Value; !math.IsInf(v, 1) {
				t.Errorf("step %d: persisted value %v, want +Inf", i, v)
			}
		}
	}
}

func TestStateJSONRoundTrip(t *testing.T) {
	base := State{
		Key: Key{Account: "main", Rule: "r", Symbol: "BTCUSDT", Side: "long"}, Phase: Active, ID: "abc",
		Severity: notifiers.Critical, Since: t0, StartsAt: t0, LastSent: t0.Add(time.Minute),
		Metric: "effective_leverage", Op: "above", Labels: map[string]string{"desk": "alpha"}, Runbook: "cut size",
	}
	for _, v := range []float64{math.Inf(1), math.Inf(-1), 0, -2.5, 1e300} {
		st := base
		st.Value, st.Threshold = v, -v
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("value %v: %v", v, err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("value %v: %s: %v", v, b, err)
		}
		if !reflect.DeepEqual(back, st) {
			t.Errorf("value %v: round trip\n%+v\nwant\n%+v", v, back, st)
		}
	}
	// States written before these fields existed still load.
	var old State
	if err := json.Unmarshal([]byte(`{"key":{"account":"a","rule":"r"},"phase":"firing","id":"x","severity":"warning","since":"2026-03-01T12:00:00Z","value":3,"threshold":2}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Value != 3 || old.Threshold != 2 || old.Severity != notifiers.Warning || old.Metric != "" {
		t.Errorf("old state %+v", old)
	}
	var bad State
	if err := json.Unmarshal([]byte(`{"value":"lots"}`), &bad); err == nil {
		t.Error("a value of \"lots\" decodes")
	}
}

// TestClosedFromPersistedState: the watcher closes the alert of a rule that
// left the config from its persisted state alone; the notice still says
// what the firing one said.
func TestClosedFromPersistedState(t *testing.T) {
	rs := mustCompile(t, liquidationNear(nil))
	res := NewEngine(rs, nil).Evaluate(positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, 6}), t0)
	if len(res.Changed) != 1 || len(res.Notices) != 1 {
		t.Fatalf("first evaluation: %+v", res)
	}
	b, err := json.Marshal(res.Changed[0])
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	fired := res.Notices[0].Alert
	c := Closed(st, notifiers.ReasonClosed, "", t0.Add(time.Hour))
	if c.Kind != notifiers.KindClosed || c.Status != notifiers.Resolved || c.Reason != notifiers.ReasonClosed || c.ID != fired.ID {
		t.Errorf("closed %+v", c)
	}
	if c.Metric != fired.Metric || c.Op != fired.Op || c.Threshold != fired.Threshold || c.Value != fired.Value ||
		c.Runbook != fired.Runbook || !maps.Equal(c.Labels, fired.Labels) || c.Severity != fired.Severity {
		t.Errorf("closed\n%+v\nlacks what the firing notice carried\n%+v", c, fired)
	}
	if want := "BTCUSDT long was closed while liquidation-near was critical (6% from liquidation)"; c.Summary != want {
		t.Errorf("default summary %q, want %q", c.Summary, want)
	}
	if c := Closed(st, notifiers.ReasonClosed, "rule removed", t0); c.Summary != "rule removed" {
		t.Errorf("given summary replaced: %q", c.Summary)
	}
	// The alert's labels are the caller's: changing them leaves the state alone.
	c.Labels["x"] = "y"
	if _, ok := st.Labels["x"]; ok {
		t.Error("Closed shares the state's labels map")
	}
}

func TestClosedSummaries(t *testing.T) {
	st := func(k Key, metric, op string, v, thr float64) State {
		return State{Key: k, Severity: notifiers.Warning, Metric: metric, Op: op, Value: v, Threshold: thr}
	}
	tests := []struct {
		st     State
		reason string
		want   string
	}{
		{st(Key{Account: "main", Rule: "lev", Symbol: "ETHUSDT", Side: "short"}, "leverage", "above", 25, 20), notifiers.ReasonLiquidated,
			"ETHUSDT short was liquidated while lev was warning (leverage 25x > 20x)"},
		{st(Key{Account: "main", Rule: "equity-low", Symbol: "BTC"}, "equity", "below", 1.5, 2), notifiers.ReasonClosed,
			"main BTC margin asset is gone while equity-low was warning (equity 1.50 < 2.00)"},
		{st(Key{Account: "main", Rule: "margin"}, "effective_leverage", "above", math.Inf(1), 10), notifiers.ReasonClosed,
			"margin on main was closed while warning (effective_leverage ∞ (equity ≤ 0) > 10x)"},
		{st(Key{Account: "main", Rule: "old"}, "", "", 0, 0), notifiers.ReasonClosed, "old on main was closed while warning"},
	}
	for _, tc := range tests {
		if got := Closed(tc.st, tc.reason, "", t0).Summary; got != tc.want {
			t.Errorf("%+v: summary %q, want %q", tc.st.Key, got, tc.want)
		}
	}
}

// TestInfiniteInStatusView: FiringNow fires on +Inf, and its hits encode
// (the value as null, as status -json shows infinities).
func TestInfiniteInStatusView(t *testing.T) {
	rs := mustCompile(t, levRule(func(r *config.Rule) { r.Metric = "size_pct_equity"; r.Above = map[string]float64{"warning": 100} }))
	acct := positionsAcct("main", pos{"BTCUSDT", "long", metrics.SizePctEquity, math.Inf(1)})
	hits := FiringNow(rs, acct, t0)
	if len(hits) != 1 || !math.IsInf(hits[0].Value, 1) {
		t.Fatalf("hits %+v, want one at +Inf", hits)
	}
	b, err := json.Marshal(hits)
	if err != nil {
		t.Fatalf("hits do not encode: %v", err)
	}
	if !strings.Contains(string(b), `"value":null`) || !strings.Contains(string(b), `"threshold":100`) {
		t.Errorf("hits encode as %s, want value null", b)
	}
	var back []Hit
	if err := json.Unmarshal(b, &back); err != nil || len(back) != 1 || back[0].Rule != "lev" {
		t.Errorf("hits decode as %+v, %v", back, err)
	}
}
