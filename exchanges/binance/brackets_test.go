package binance

import (
	"context"
	"regexp"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

func TestMaintFor(t *testing.T) {
	bs := []bracket{{0, 10000, 0.0065, 0}, {10000, 100000, 0.01, 35}}
	cases := []struct {
		x, want float64
		ok      bool
	}{
		{5000, 32.5, true},   // 5000 × 0.65%
		{10000, 65, true},    // the floor belongs to the upper bracket: 100 − 35
		{31000, 275, true},   // 310 − 35
		{200000, 1965, true}, // above the last cap: the last bracket
		{0, 0, false},        // no position
		{-1, 0, false},       // nonsense
	}
	for _, c := range cases {
		got, ok := maintFor(bs, c.x)
		if ok != c.ok || !approx(got, c.want) {
			t.Errorf("maintFor(%v) = %v, %v; want %v, %v", c.x, got, ok, c.want, c.ok)
		}
	}
	if _, ok := maintFor(nil, 100); ok {
		t.Error("maintFor without brackets is ok")
	}
}

// TestMaintFromBrackets: positionRisk without maintMargin (as v2 answers)
// gets each position's maintenance margin from its leverage brackets, by
// notional (hand-computed from the fake's brackets).
func TestMaintFromBrackets(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	risk := srv.Body("/fapi/v3/positionRisk")
	srv.SetBody("/fapi/v3/positionRisk", regexp.MustCompile(`"maintMargin": "[^"]*", `).ReplaceAllString(risk, ""))
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"BTCUSDT": 30500 * 0.004,   // bracket 1 (< 50,000): 122
		"ETHUSDT": 31000*0.01 - 35, // bracket 2 (10,000 to 100,000): 275
		"SOLUSDT": 14000 * 0.01,    // bracket 1 (< 50,000): 140
	}
	for _, p := range snap.Positions {
		if !approx(p.MaintMargin, want[p.Symbol]) {
			t.Errorf("%s maintenance margin = %v, want %v", p.Symbol, p.MaintMargin, want[p.Symbol])
		}
	}
	// The cross maintenance margin is Binance's total less the isolated
	// ETHUSDT position's: 367 − 275.
	if b := snap.Balances[0]; !approx(b.CrossMaintMargin, 92) {
		t.Errorf("cross maintenance margin = %v, want 92", b.CrossMaintMargin)
	}
	a := metrics.Compute("main", USDM, nil, snap, nil, clk.Now())
	for _, p := range a.Positions {
		if p.Symbol != "ETHUSDT" {
			continue
		}
		if v, _ := p.Metrics.Get(metrics.MarginRatio); !approx(v, 275.0/5000) {
			t.Errorf("ETHUSDT isolated margin_ratio = %v, want 275/5000", v)
		}
	}
	// Hourly: not read again within the hour, read again after it.
	clk.Advance(59 * 60e9)
	srv.ResetCounts()
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("/fapi/v1/leverageBracket"); n != 0 {
		t.Errorf("brackets read %d times after 59 min", n)
	}
	clk.Advance(60e9)
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("/fapi/v1/leverageBracket"); n != 3 {
		t.Errorf("brackets read %d times after an hour, want 3", n)
	}
}
