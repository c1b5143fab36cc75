package main

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
)

func TestStatusBybitHedgePositions(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	code, out, errOut := runCLI("status", "-config", bybitConfig(t, srv.URL, ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Log(out)
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	want := map[string]map[string]float64{
		"BTCUSDT long": {"liq_distance_pct": 21000.0 / 61000 * 100, "liq_distance_atr": nan, "leverage": 10, "size_pct_equity": 30500.0 / 10250 * 100,
			"funding_rate": 0.0001, "funding_apr_pct": 0.0001 * 3 * 365 * 100, "funding_next_cost": 3.05,
			"unrealized_pnl_pct": 500 / (0.5 * 60000 / 10) * 100, "has_stop_loss": 1, "stop_coverage_pct": 100, "stop_distance_pct": 6000.0 / 61000 * 100, "margin_ratio": nan},
		"BTCUSDT short": {"liq_distance_pct": 21000.0 / 61000 * 100, "liq_distance_atr": nan, "leverage": 10, "size_pct_equity": 12200.0 / 10250 * 100,
			"funding_rate": 0.0001, "funding_apr_pct": -0.0001 * 3 * 365 * 100, "funding_next_cost": -1.22,
			"unrealized_pnl_pct": 200 / (0.2 * 62000 / 10) * 100, "has_stop_loss": 1, "stop_coverage_pct": 100, "stop_distance_pct": 4000.0 / 61000 * 100, "margin_ratio": nan},
		"ETHUSDC short": {"liq_distance_pct": 400.0 / 3100 * 100, "liq_distance_atr": nan, "leverage": 5, "size_pct_equity": 15500.0 / 10250 * 100,
			"funding_rate": -0.0002, "funding_apr_pct": 0.0002 * 6 * 365 * 100, "funding_next_cost": 3.1,
			"unrealized_pnl_pct": -500 / (5 * 3000.0 / 5) * 100, "has_stop_loss": 1, "stop_coverage_pct": 40, "stop_distance_pct": 200.0 / 3100 * 100, "margin_ratio": nan},
	}
	for _, p := range doc.Accounts[0].Positions {
		k := p.Symbol + " " + p.Side
		checkMetrics(t, k, p.Metrics, want[k])
		for name := range want[k] {
			if _, ok := p.Metrics[name]; !ok {
				t.Errorf("%s: %s missing from JSON", k, name)
			}
		}
	}
}
