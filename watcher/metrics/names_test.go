package metrics

import (
	"math"
	"strings"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
)

// TestSetKeepsInfinities: ±Inf is a value (equity ≤ 0 makes leverage
// infinite) and must reach the rules; only NaN means absent.
func TestSetKeepsInfinities(t *testing.T) {
	tests := []struct {
		name string
		v    float64
		ok   bool
	}{
		{"finite", 2.5, true},
		{"+Inf", math.Inf(1), true},
		{"-Inf", math.Inf(-1), true},
		{"NaN", math.NaN(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			s.Put(EffectiveLeverage, 1) // a NaN must also clear an earlier value
			s.Put(EffectiveLeverage, tt.v)
			got, ok := s.Get(EffectiveLeverage)
			if ok != tt.ok || ok && got != tt.v {
				t.Errorf("Get = %v, %v; want %v, %v", got, ok, tt.v, tt.ok)
			}
			if _, in := s.Map()["effective_leverage"]; in != tt.ok {
				t.Errorf("Map holds effective_leverage: %v, want %v", in, tt.ok)
			}
		})
	}
}

// TestComputeCOINMPoolAtZeroEquity: a COIN-M pool whose equity is gone reads
// as infinitely leveraged on its own, the other pool is unaffected.
func TestComputeCOINMPoolAtZeroEquity(t *testing.T) {
	snap := coinMAtZeroEquity()
	a := Compute("c", "binance-coinm", nil, snap, nil, t0)
	checkSet(t, "BTC pool", &a.Assets[0].Metrics, want{Equity: -0.001, EffectiveLeverage: inf, NetExposureRatio: inf})
	checkSet(t, "ETH pool", &a.Assets[1].Metrics, want{Equity: 2, EffectiveLeverage: 0.2, NetExposureRatio: -0.2})
	checkSet(t, "BTC position", &a.Positions[0].Metrics, want{SizePctEquity: inf, Leverage: 20})
	checkSet(t, "ETH position", &a.Positions[1].Metrics, want{SizePctEquity: 20, Leverage: 5})
}

func coinMAtZeroEquity() *exchanges.Snapshot {
	return &exchanges.Snapshot{
		Time:    t0,
		Inverse: true,
		Balances: []exchanges.Balance{
			{Asset: "BTC", MarginBalance: -0.001},
			{Asset: "ETH", MarginBalance: 2},
		},
		Positions: []exchanges.Position{
			{Symbol: "BTCUSD_PERP", Side: exchanges.Long, MarginAsset: "BTC", Notional: 0.025, Leverage: 20},
			{Symbol: "ETHUSD_PERP", Side: exchanges.Short, MarginAsset: "ETH", Notional: 0.4, Leverage: 5},
		},
	}
}

// TestEveryMetricHasItsUnit: the catalogue gives every metric a unit, the
// same one the notifiers format it in (they cannot import this package),
// and a 0–1 ratio is never confused with a percentage.
func TestEveryMetricHasItsUnit(t *testing.T) {
	for _, id := range All() {
		info := id.Info()
		if info.Unit == notifiers.UnitPlain {
			t.Errorf("%s has no unit", info.Name)
		}
		if got := notifiers.UnitOf(info.Name); got != info.Unit {
			t.Errorf("%s: catalogue unit %s, notifiers.UnitOf %s", info.Name, info.Unit, got)
		}
		if strings.HasSuffix(info.Name, "_pct") && info.Unit != notifiers.UnitPercent {
			t.Errorf("%s ends in _pct but its unit is %s", info.Name, info.Unit)
		}
	}
	if u := MarginRatio.Info().Unit; u != notifiers.UnitFraction {
		t.Errorf("margin_ratio unit %s, want fraction (1.0 = liquidation)", u)
	}
}
