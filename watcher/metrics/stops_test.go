package metrics

import (
	"math"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges"
)

// TestEffectiveStops: only stops that trigger before liquidation count
// (SPEC has_stop_loss). The first four cases are the issue's.
func TestEffectiveStops(t *testing.T) {
	// A long of 10 at mark 100, liquidated at 80; a short of 10 at 100,
	// liquidated at 120.
	long := exchanges.Position{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross,
		Size: 10, MarkPrice: 100, LiquidationPrice: 80, Notional: 1000}
	short := long
	short.Side, short.LiquidationPrice = exchanges.Short, 120
	noLiq := long
	noLiq.LiquidationPrice = 0
	with := func(p exchanges.Position, stops ...exchanges.Stop) exchanges.Position {
		p.Stops = stops
		return p
	}
	tests := []struct {
		name     string
		pos      exchanges.Position
		has, cov float64
		dist     float64 // NaN: absent
	}{
		{"stop beyond liquidation: no protection", with(long, exchanges.Stop{Trigger: 75, ClosePosition: true}), 0, 0, absent},
		{"reduce-only algo stop of 40%", with(long, exchanges.Stop{Trigger: 90, Quantity: 4}), 1, 40, 10},
		// The adapter leaves take-profits out of Stops: a close-position
		// take-profit alone is no stop at all.
		{"close-position take-profit only", with(long), 0, 0, absent},
		// A trailing stop triggers from its activation price.
		{"trailing stop from its activation price", with(long, exchanges.Stop{Trigger: 95, Quantity: 10, Trailing: true}), 1, 100, 5},
		{"short stop below liquidation", with(short, exchanges.Stop{Trigger: 110, ClosePosition: true}), 1, 100, 10},
		{"short stop beyond liquidation", with(short, exchanges.Stop{Trigger: 125, ClosePosition: true}), 0, 0, absent},
		{"stop at the liquidation price", with(long, exchanges.Stop{Trigger: 80, ClosePosition: true}), 0, 0, absent},
		{"no liquidation price: every stop counts", with(noLiq, exchanges.Stop{Trigger: 50, Quantity: 5}), 1, 50, 50},
		{"nearest of several, coverage capped", with(long,
			exchanges.Stop{Trigger: 85, Quantity: 8}, exchanges.Stop{Trigger: 97, Quantity: 8}, exchanges.Stop{Trigger: 70, Quantity: 8}),
			1, 100, 3}, // 8 + 8 of 10 (the 70 is beyond liquidation); nearest 97
		{"only the effective quantity counts", with(long,
			exchanges.Stop{Trigger: 90, Quantity: 3}, exchanges.Stop{Trigger: 79, ClosePosition: true}), 1, 30, 10},
		{"unreadable trigger does not count", with(long, exchanges.Stop{Trigger: math.NaN(), ClosePosition: true},
			exchanges.Stop{Trigger: 0, ClosePosition: true}), 0, 0, absent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := &exchanges.Snapshot{Time: t0, Balances: []exchanges.Balance{{Asset: "USDT", MarginBalance: 1000}},
				Positions: []exchanges.Position{tt.pos}}
			a := Compute("a", "x", nil, snap, nil, t0)
			checkSet(t, "position", &a.Positions[0].Metrics, want{HasStopLoss: tt.has, StopCoveragePct: tt.cov, StopDistancePct: tt.dist})
		})
	}
}

// TestEffectiveStopsHedge: in hedge mode a long leg of a symbol that is net
// short shares a liquidation price above the mark; its stop below the mark
// fires on a fall, which that liquidation never races, so it counts.
func TestEffectiveStopsHedge(t *testing.T) {
	snap := &exchanges.Snapshot{Time: t0, Balances: []exchanges.Balance{{Asset: "USDT", MarginBalance: 1000}},
		Positions: []exchanges.Position{
			{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 1, MarkPrice: 100, LiquidationPrice: 120,
				Stops: []exchanges.Stop{{Trigger: 90, ClosePosition: true}}},
			{Symbol: "BTCUSDT", Side: exchanges.Short, MarginType: exchanges.Cross, Size: 3, MarkPrice: 100, LiquidationPrice: 120,
				Stops: []exchanges.Stop{{Trigger: 125, ClosePosition: true}}}, // beyond the shared liquidation price
		}}
	a := Compute("a", "x", nil, snap, nil, t0)
	checkSet(t, "long leg", &a.Positions[0].Metrics, want{HasStopLoss: 1, StopCoveragePct: 100, StopDistancePct: 10})
	checkSet(t, "short leg", &a.Positions[1].Metrics, want{HasStopLoss: 0, StopCoveragePct: 0, StopDistancePct: absent})
}
