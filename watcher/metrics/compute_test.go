package metrics

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// want maps metric IDs to expected values; NaN means "must be absent".
type want map[ID]float64

var absent = math.NaN()

var inf = math.Inf(1)

func checkSet(t *testing.T, what string, s *Set, w want) {
	t.Helper()
	for id, v := range w {
		got, ok := s.Get(id)
		if math.IsNaN(v) {
			if ok {
				t.Errorf("%s %s = %v, want absent", what, id, got)
			}
			continue
		}
		if !ok {
			t.Errorf("%s %s absent, want %v", what, id, v)
			continue
		}
		if math.IsInf(v, 0) || math.IsInf(got, 0) {
			if got != v {
				t.Errorf("%s %s = %v, want %v", what, id, got, v)
			}
			continue
		}
		if math.Abs(got-v) > 1e-9*math.Max(1, math.Abs(v)) {
			t.Errorf("%s %s = %.12g, want %.12g", what, id, got, v)
		}
	}
}

// flatCandles returns n candles with high 101, low 99, close 100: every true
// range is 2, so ATR(14) is exactly 2.
func flatCandles(n int) []exchanges.Candle {
	c := make([]exchanges.Candle, n)
	for i := range c {
		c[i] = exchanges.Candle{OpenTime: t0.Add(time.Duration(i-n) * time.Hour), High: 101, Low: 99, Close: 100}
	}
	return c
}

func TestComputeUSDM(t *testing.T) {
	snap := &exchanges.Snapshot{
		Time: t0.Add(-5 * time.Second),
		Balances: []exchanges.Balance{{
			Asset: "USDT", WalletBalance: 10000, UnrealizedPnL: 0, MarginBalance: 10000,
			MaintMargin: 279, AvailableBalance: 5000,
			CrossWalletBalance: 4000, // 10,000 − ETH's isolated 6,000
			CrossUnPnL:         1000, // BTC only
			CrossMaintMargin:   124,
			FundingPaid24h:     12.5,
		}},
		Positions: []exchanges.Position{
			{
				Symbol: "BTCUSDT", Side: exchanges.Long, MarginAsset: "USDT", MarginType: exchanges.Cross,
				Size: 0.5, EntryPrice: 60000, MarkPrice: 62000, LiquidationPrice: 40000, Leverage: 10,
				Notional: 31000, UnrealizedPnL: 1000, MaintMargin: 124,
				FundingRate: 0.0001, FundingInterval: 8 * time.Hour,
				Stops: []exchanges.Stop{{Trigger: 55800, ClosePosition: true}},
			},
			{
				Symbol: "ETHUSDT", Side: exchanges.Short, MarginAsset: "USDT", MarginType: exchanges.Isolated,
				Size: 10, EntryPrice: 3000, MarkPrice: 3100, LiquidationPrice: 3400, Leverage: 5,
				Notional: 31000, UnrealizedPnL: -1000, MaintMargin: 155, IsolatedWallet: 6000,
				FundingRate: 0.0002, FundingInterval: 4 * time.Hour,
			},
		},
		Events: []exchanges.Event{{ID: "e1", Kind: exchanges.MarginCall}},
	}
	labels := map[string]string{"desk": "alpha"}
	a := Compute("main", "binance-usdm", labels, snap, nil, t0)

	if a.Name != "main" || a.Exchange != "binance-usdm" || a.Labels["desk"] != "alpha" || a.Stale || !a.Time.Equal(snap.Time) {
		t.Errorf("identity = %q %q %v stale=%v time=%v", a.Name, a.Exchange, a.Labels, a.Stale, a.Time)
	}
	if len(a.Events) != 1 || len(a.Assets) != 0 || len(a.Positions) != 2 {
		t.Fatalf("events %d assets %d positions %d, want 1 0 2", len(a.Events), len(a.Assets), len(a.Positions))
	}
	checkSet(t, "account", &a.Metrics, want{
		MarginRatio:       0.0248, // 124 / (4,000 + 1,000)
		Equity:            10000,
		AvailableBalance:  5000,
		UnrealizedPnL:     0,
		EffectiveLeverage: 6.2,  // (31,000 + 31,000) / 10,000
		NetExposureRatio:  0,    // (31,000 − 31,000) / 10,000
		FundingNextCost:   -3.1, // BTC 31,000 × 0.0001 = 3.1; ETH short −31,000 × 0.0002 = −6.2
		FundingPaid24h:    12.5,
		PositionCount:     2,
		DataAgeSeconds:    5,
		DrawdownPct:       absent, // no history
		LiqDistancePct:    absent,
	})

	btc, eth := &a.Positions[0], &a.Positions[1]
	if btc.Symbol != "BTCUSDT" || btc.Side != exchanges.Long || btc.Raw != &snap.Positions[0] {
		t.Errorf("position 0 = %s %s raw %p", btc.Symbol, btc.Side, btc.Raw)
	}
	checkSet(t, "BTC", &btc.Metrics, want{
		LiqDistancePct:   2200.0 / 62, // |62,000 − 40,000| / 62,000 × 100 = 35.48…
		LiqDistanceATR:   absent,      // no candles
		Leverage:         10,
		SizePctEquity:    310, // 31,000 / 10,000 × 100
		FundingRate:      0.0001,
		FundingAPRPct:    10.95, // 0.0001 × (8760h / 8h = 1095) × 100
		FundingNextCost:  3.1,
		UnrealizedPnLPct: 100.0 / 3, // 1,000 / (0.5 × 60,000 / 10 = 3,000) × 100
		HasStopLoss:      1,
		StopCoveragePct:  100,    // close-position
		StopDistancePct:  10,     // |62,000 − 55,800| / 62,000 × 100
		MarginRatio:      absent, // cross: the account ratio covers it
	})
	checkSet(t, "ETH", &eth.Metrics, want{
		LiqDistancePct:   300.0 / 31, // |3,100 − 3,400| / 3,100 × 100 = 9.677…
		Leverage:         5,
		SizePctEquity:    310,
		FundingRate:      0.0002,
		FundingAPRPct:    -43.8, // 0.0002 × (8760h / 4h = 2190) × 100 × −1 (short receives)
		FundingNextCost:  -6.2,
		UnrealizedPnLPct: -100.0 / 6, // −1,000 / (10 × 3,000 / 5 = 6,000) × 100
		HasStopLoss:      0,
		StopCoveragePct:  0,
		StopDistancePct:  absent,
		MarginRatio:      0.031, // 155 / (6,000 − 1,000)
	})
}

// Hedge mode: a long and a short on one symbol are two positions sharing one
// candle slice; the short has no liquidation price.
func TestComputeHedgeMode(t *testing.T) {
	candles := flatCandles(20)
	snap := &exchanges.Snapshot{
		Time: t0,
		Balances: []exchanges.Balance{{
			Asset: "USDT", WalletBalance: 1000, UnrealizedPnL: 15, MarginBalance: 1015, AvailableBalance: 900,
			CrossWalletBalance: 1000, CrossUnPnL: 15, CrossMaintMargin: 0.825, FundingPaid24h: math.NaN(),
		}},
		Positions: []exchanges.Position{
			{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 1, EntryPrice: 100, MarkPrice: 110,
				LiquidationPrice: 60, Leverage: 2, Notional: 110, UnrealizedPnL: 10, MaintMargin: 0.55, Candles: candles},
			{Symbol: "BTCUSDT", Side: exchanges.Short, MarginType: exchanges.Cross, Size: 0.5, EntryPrice: 120, MarkPrice: 110,
				Leverage: 2, Notional: 55, UnrealizedPnL: 5, MaintMargin: 0.275, Candles: candles,
				Stops: []exchanges.Stop{{Trigger: 132, Quantity: 0.25}}},
		},
	}
	a := Compute("h", "binance-usdm", nil, snap, nil, t0)
	checkSet(t, "account", &a.Metrics, want{
		MarginRatio:       0.825 / 1015, // (0.55 + 0.275) / (1,000 + 15)
		Equity:            1015,
		EffectiveLeverage: 165.0 / 1015, // (110 + 55) / 1,015
		NetExposureRatio:  55.0 / 1015,  // (110 − 55) / 1,015
		FundingNextCost:   0,
		FundingPaid24h:    absent, // NaN: unknown
		PositionCount:     2,
		DataAgeSeconds:    0,
	})
	if a.Positions[0].Side != exchanges.Long || a.Positions[1].Side != exchanges.Short {
		t.Errorf("sides = %s, %s; want long, short", a.Positions[0].Side, a.Positions[1].Side)
	}
	checkSet(t, "long", &a.Positions[0].Metrics, want{
		LiqDistancePct:   500.0 / 11, // |110 − 60| / 110 × 100 = 45.45…
		LiqDistanceATR:   25,         // 50 / ATR 2
		SizePctEquity:    11000.0 / 1015,
		UnrealizedPnLPct: 20, // 10 / (1 × 100 / 2 = 50) × 100
		HasStopLoss:      0,
		FundingAPRPct:    0,
	})
	checkSet(t, "short", &a.Positions[1].Metrics, want{
		LiqDistancePct:   absent, // no liquidation price
		LiqDistanceATR:   absent,
		UnrealizedPnLPct: 50.0 / 3, // 5 / (0.5 × 120 / 2 = 30) × 100
		HasStopLoss:      1,        // no liquidation price: every stop counts
		StopCoveragePct:  50,       // 0.25 of 0.5
		StopDistancePct:  20,       // |110 − 132| / 110 × 100
	})
}

func TestComputeEquityEdgeCases(t *testing.T) {
	pos := exchanges.Position{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 1,
		EntryPrice: 1000, MarkPrice: 500, LiquidationPrice: 400, Leverage: 2, Notional: 500, UnrealizedPnL: -500, MaintMargin: 2.5}
	tests := []struct {
		name      string
		bal       exchanges.Balance
		positions []exchanges.Position
		account   want
		position  want
	}{
		{
			name: "zero equity",
			bal: exchanges.Balance{WalletBalance: 500, UnrealizedPnL: -500, MarginBalance: 0,
				CrossWalletBalance: 500, CrossUnPnL: -500, CrossMaintMargin: 2.5},
			positions: []exchanges.Position{pos},
			account: want{
				Equity: 0, MarginRatio: 1, // margin balance 0 with 2.5 maintenance: liquidation
				EffectiveLeverage: inf, NetExposureRatio: inf, PositionCount: 1,
			},
			// 100/500; −500/(1000/2); leverage is the setting, equity does not matter.
			position: want{SizePctEquity: inf, LiqDistancePct: 20, UnrealizedPnLPct: -100, Leverage: 2},
		},
		{
			name: "negative equity",
			bal: exchanges.Balance{WalletBalance: 400, UnrealizedPnL: -500, MarginBalance: -100,
				CrossWalletBalance: 400, CrossUnPnL: -500, CrossMaintMargin: 2.5},
			positions: []exchanges.Position{pos},
			account:   want{Equity: -100, MarginRatio: 1, EffectiveLeverage: inf, NetExposureRatio: inf},
			position:  want{SizePctEquity: inf, Leverage: 2},
		},
		{
			name: "negative equity, net short",
			bal:  exchanges.Balance{MarginBalance: -100},
			positions: []exchanges.Position{pos, func() exchanges.Position {
				p := pos
				p.Side, p.Notional = exchanges.Short, 800
				return p
			}()},
			account: want{EffectiveLeverage: inf, NetExposureRatio: math.Inf(-1)},
		},
		{
			// Net exposure 0 has no sign: the ratio is 0, and the gross
			// exposure still reads as infinite leverage.
			name: "negative equity, hedged",
			bal:  exchanges.Balance{MarginBalance: -100},
			positions: []exchanges.Position{pos, func() exchanges.Position {
				p := pos
				p.Side = exchanges.Short
				return p
			}()},
			account:  want{EffectiveLeverage: inf, NetExposureRatio: 0},
			position: want{SizePctEquity: inf},
		},
		{
			// Nothing held: no exposure to lever, so an empty account at 0
			// does not read as infinitely leveraged.
			name:    "zero equity, no positions",
			bal:     exchanges.Balance{},
			account: want{Equity: 0, EffectiveLeverage: 0, NetExposureRatio: 0, MarginRatio: 0},
		},
		{
			name: "no positions",
			bal:  exchanges.Balance{WalletBalance: 800, MarginBalance: 800, CrossWalletBalance: 800, AvailableBalance: 800},
			account: want{
				Equity: 800, MarginRatio: 0, EffectiveLeverage: 0, NetExposureRatio: 0,
				FundingNextCost: 0, PositionCount: 0, FundingPaid24h: 0,
			},
		},
		{
			name: "no liquidation price and unknown leverage",
			bal:  exchanges.Balance{WalletBalance: 5000, MarginBalance: 5000, CrossWalletBalance: 5000, CrossMaintMargin: 2.5},
			positions: []exchanges.Position{{Symbol: "X", Side: exchanges.Short, MarginType: exchanges.Cross, Size: 1,
				EntryPrice: 500, MarkPrice: 500, Notional: 500, Candles: flatCandles(15)}},
			account: want{MarginRatio: 0.0005, EffectiveLeverage: 0.1, NetExposureRatio: -0.1}, // 2.5/5,000; ±500/5,000
			position: want{LiqDistancePct: absent, LiqDistanceATR: absent, Leverage: absent,
				UnrealizedPnLPct: absent, SizePctEquity: 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := &exchanges.Snapshot{Time: t0, Balances: []exchanges.Balance{tt.bal}, Positions: tt.positions}
			a := Compute("a", "x", nil, snap, NewEquityHistory(0), t0)
			checkSet(t, "account", &a.Metrics, tt.account)
			if len(tt.positions) > 0 {
				checkSet(t, "position", &a.Positions[0].Metrics, tt.position)
			}
		})
	}
}

func TestComputeCOINM(t *testing.T) {
	snap := &exchanges.Snapshot{
		Time:    t0.Add(-2 * time.Second),
		Inverse: true,
		Balances: []exchanges.Balance{
			{Asset: "BTC", WalletBalance: 0.1, UnrealizedPnL: -0.005, MarginBalance: 0.095, AvailableBalance: 0.07,
				CrossWalletBalance: 0.1, CrossUnPnL: -0.005, CrossMaintMargin: 0.0001, FundingPaid24h: 0.00001},
			{Asset: "ETH", WalletBalance: 2, UnrealizedPnL: -0.1, MarginBalance: 1.9, AvailableBalance: 1.5,
				CrossWalletBalance: 1.88, FundingPaid24h: math.NaN()},
		},
		Positions: []exchanges.Position{
			{
				// 10 contracts × 100 USD: notional 1,000/40,000 = 0.025 BTC;
				// PnL 1,000 × (1/50,000 − 1/40,000) = −0.005 BTC.
				Symbol: "BTCUSD_PERP", Side: exchanges.Long, MarginAsset: "BTC", MarginType: exchanges.Cross,
				Size: 10, ContractSize: 100, EntryPrice: 50000, MarkPrice: 40000, LiquidationPrice: 30000, Leverage: 20,
				Notional: 0.025, UnrealizedPnL: -0.005, MaintMargin: 0.0001, FundingRate: 0.0001,
			},
			{
				// 100 contracts × 10 USD: notional 1,000/2,500 = 0.4 ETH;
				// short PnL −1,000 × (1/2,000 − 1/2,500) = −0.1 ETH.
				Symbol: "ETHUSD_PERP", Side: exchanges.Short, MarginAsset: "ETH", MarginType: exchanges.Isolated,
				Size: 100, ContractSize: 10, EntryPrice: 2000, MarkPrice: 2500, LiquidationPrice: 2600, Leverage: 5,
				Notional: 0.4, UnrealizedPnL: -0.1, MaintMargin: 0.002, IsolatedWallet: 0.12, FundingRate: 0.0001,
			},
		},
	}
	hist := NewEquityHistory(0)
	a := Compute("c", "binance-coinm", nil, snap, hist, t0)
	checkSet(t, "account", &a.Metrics, want{
		MarginRatio:    0.0001 / 0.095, // max(BTC 0.0001/0.095, ETH 0: no cross positions)
		PositionCount:  2,
		DataAgeSeconds: 2,
		Equity:         absent, // money metrics are per pool
		DrawdownPct:    absent, // two coins: per pool
	})
	if a.Pool != "" {
		t.Errorf("Pool = %q, want none: two pools", a.Pool)
	}
	if len(a.Assets) != 2 || a.Assets[0].Asset != "BTC" || a.Assets[1].Asset != "ETH" {
		t.Fatalf("assets = %+v", a.Assets)
	}
	checkSet(t, "BTC", &a.Assets[0].Metrics, want{
		Equity: 0.095, AvailableBalance: 0.07, UnrealizedPnL: -0.005,
		MarginRatio:       0.0001 / 0.095,
		EffectiveLeverage: 0.025 / 0.095, NetExposureRatio: 0.025 / 0.095,
		FundingNextCost: 0.0000025, // 0.025 × 0.0001
		FundingPaid24h:  0.00001,
		DrawdownPct:     0, // its first observation
	})
	checkSet(t, "ETH", &a.Assets[1].Metrics, want{
		Equity: 1.9, MarginRatio: 0,
		EffectiveLeverage: 0.4 / 1.9, NetExposureRatio: -0.4 / 1.9,
		FundingNextCost: -0.00004, // −0.4 × 0.0001
		FundingPaid24h:  absent,
	})
	checkSet(t, "BTC position", &a.Positions[0].Metrics, want{
		LiqDistancePct:   25,                  // 10,000 / 40,000 × 100
		SizePctEquity:    0.025 / 0.095 * 100, // of the BTC equity
		UnrealizedPnLPct: -500,                // −0.005 / (10 × 100 / 50,000 / 20 = 0.001) × 100
		MarginRatio:      absent,
	})
	checkSet(t, "ETH position", &a.Positions[1].Metrics, want{
		LiqDistancePct:   4,               // 100 / 2,500 × 100
		SizePctEquity:    0.4 / 1.9 * 100, // of the ETH equity
		UnrealizedPnLPct: -100,            // −0.1 / (100 × 10 / 2,000 / 5 = 0.1) × 100
		MarginRatio:      0.1,             // 0.002 / (0.12 − 0.1)
	})
	if hist.len() != 2 {
		t.Errorf("two-pool COIN-M recorded %d equities, want one per pool", hist.len())
	}
}

// A single-pool COIN-M account keeps its metrics on the account, in its coin.
func TestComputeCOINMSingleAssetDrawdown(t *testing.T) {
	hist := NewEquityHistory(0)
	hist.Observe("BTC", t0.Add(-2*time.Hour), 0.125)
	snap := &exchanges.Snapshot{Time: t0, Inverse: true, Balances: []exchanges.Balance{{Asset: "BTC", MarginBalance: 0.1}}}
	a := Compute("c", "binance-coinm", nil, snap, hist, t0)
	checkSet(t, "account", &a.Metrics, want{DrawdownPct: 20, MarginRatio: 0, Equity: 0.1}) // (0.125 − 0.1) / 0.125
	if a.Pool != "BTC" || a.Assets != nil {
		t.Errorf("pool %q, assets %v; want BTC on the account", a.Pool, a.Assets)
	}
	dd, ok := a.Drawdown("", t0, time.Hour) // the 0.125 peak is 2h old
	if !ok || dd != 0 {
		t.Errorf("Drawdown(1h) = %v, %v; want 0, true", dd, ok)
	}
}

func TestComputeDrawdown(t *testing.T) {
	hist := NewEquityHistory(0)
	hist.Observe("", t0.Add(-30*time.Hour), 20000) // outside 24h
	hist.Observe("", t0.Add(-2*time.Hour), 12500)
	snap := &exchanges.Snapshot{Time: t0.Add(-time.Second), Balances: []exchanges.Balance{{MarginBalance: 10000}}}
	a := Compute("a", "x", nil, snap, hist, t0)
	checkSet(t, "account", &a.Metrics, want{DrawdownPct: 20}) // (12,500 − 10,000) / 12,500
	tests := []struct {
		window time.Duration
		want   float64
	}{
		{time.Hour, 0},       // only the 10,000 just observed
		{3 * time.Hour, 20},  // 12,500 peak
		{48 * time.Hour, 50}, // (20,000 − 10,000) / 20,000
	}
	for _, tt := range tests {
		if dd, ok := a.Drawdown("", t0, tt.window); !ok || math.Abs(dd-tt.want) > 1e-9 {
			t.Errorf("Drawdown(%v) = %v, %v; want %v", tt.window, dd, ok, tt.want)
		}
	}
	if _, ok := Compute("a", "x", nil, snap, nil, t0).Drawdown("", t0, time.Hour); ok {
		t.Error("Drawdown without history is ok")
	}
}

func TestStale(t *testing.T) {
	tests := []struct {
		name string
		last time.Time
		want float64
	}{
		{"90s ago", t0.Add(-90 * time.Second), 90},
		{"future", t0.Add(time.Minute), 0},
		{"never", time.Time{}, float64(math.MaxInt64) / 1e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Stale("s", "x", map[string]string{"k": "v"}, tt.last, t0)
			if !a.Stale || a.Name != "s" || a.Labels["k"] != "v" || len(a.Positions) != 0 {
				t.Errorf("account = %+v", a)
			}
			checkSet(t, "stale", &a.Metrics, want{DataAgeSeconds: tt.want})
			if m := a.Metrics.Map(); len(m) != 1 {
				t.Errorf("metrics = %v, want only data_age_seconds", m)
			}
		})
	}
	if a := Compute("n", "x", nil, nil, nil, t0); !a.Stale {
		t.Error("Compute(nil snapshot) not stale")
	}
}

func TestATR(t *testing.T) {
	c := func(h, l, cl float64) exchanges.Candle { return exchanges.Candle{High: h, Low: l, Close: cl} }
	series := []exchanges.Candle{
		c(10.5, 9.5, 10),
		c(11, 10, 10.8),     // TR max(1, |11−10|, |10−10|) = 1
		c(12, 11.5, 11.8),   // TR max(0.5, |12−10.8| = 1.2, 0.7) = 1.2: gap up
		c(11, 10.5, 10.6),   // TR max(0.5, 0.8, |10.5−11.8| = 1.3) = 1.3: gap down
		c(11.1, 10.1, 10.6), // and 10 more alike: TR max(1, 0.5, 0.5) = 1
		c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6),
		c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6), c(11.1, 10.1, 10.6),
		c(13, 12, 12.5), // TR max(1, |13−10.6| = 2.4, 1.4) = 2.4
	}
	nan := series[5]
	nan.High = math.NaN()
	tests := []struct {
		name    string
		candles []exchanges.Candle
		want    float64
		ok      bool
	}{
		{"14 candles", series[:14], 0, false},
		{"15 candles: mean of 14 TRs", series[:15], 14.5 / 14, true},           // (1 + 1.2 + 1.3 + 11×1) / 14
		{"16 candles: one Wilder step", series, (14.5/14*13 + 2.4) / 14, true}, // = 222.1 / 196
		{"NaN", append(append([]exchanges.Candle{}, series[:5]...), append([]exchanges.Candle{nan}, series[6:]...)...), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := ATR(tt.candles)
		if ok != tt.ok || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: ATR = %.15g, %v; want %.15g, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func benchSnapshot(n int) *exchanges.Snapshot {
	snap := &exchanges.Snapshot{
		Time: t0,
		Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: 1e6, MarginBalance: 1e6, CrossWalletBalance: 1e6,
			CrossMaintMargin: 5000, FundingPaid24h: 10}},
		Positions: make([]exchanges.Position, n),
	}
	candles := make([][]exchanges.Candle, 50)
	for i := range candles {
		candles[i] = flatCandles(30)
	}
	for i := range snap.Positions {
		side := exchanges.Long
		if i%2 == 1 {
			side = exchanges.Short
		}
		snap.Positions[i] = exchanges.Position{
			Symbol: fmt.Sprintf("SYM%dUSDT", i/2), Side: side, MarginAsset: "USDT", MarginType: exchanges.Cross,
			Size: 1, EntryPrice: 100, MarkPrice: 101, LiquidationPrice: 50, Leverage: 5, Notional: 101,
			UnrealizedPnL: 1, MaintMargin: 0.5, FundingRate: 0.0001, FundingInterval: 8 * time.Hour,
			Candles: candles[(i/2)%len(candles)],
		}
	}
	return snap
}

// Compute allocates the Account, its Positions slice and one scratch index,
// nothing per position.
func TestComputeAllocations(t *testing.T) {
	snap := benchSnapshot(1000)
	hist := NewEquityHistory(0)
	allocs := testing.AllocsPerRun(20, func() { Compute("a", "x", nil, snap, hist, t0) })
	if allocs > 3 {
		t.Errorf("Compute with 1,000 positions made %v allocations, want <= 3", allocs)
	}
}

func BenchmarkCompute(b *testing.B) {
	snap := benchSnapshot(1000)
	hist := NewEquityHistory(0)
	b.ReportAllocs()
	for b.Loop() {
		Compute("a", "binance-usdm", nil, snap, hist, t0)
	}
}

// ComputeInto on a reused Account allocates nothing once its arrays have
// grown: the per-tick path of a streamed account (single and several pools).
func TestComputeIntoAllocatesNothing(t *testing.T) {
	pools := benchSnapshot(10)
	pools.Balances = append(pools.Balances, exchanges.Balance{Asset: "USDC", WalletBalance: 10, MarginBalance: 10})
	for name, snap := range map[string]*exchanges.Snapshot{"one pool": benchSnapshot(10), "two pools": pools} {
		hist := NewEquityHistory(0)
		var a Account
		ComputeInto(&a, "a", "x", nil, snap, hist, t0)
		want := Compute("a", "x", nil, snap, NewEquityHistory(0), t0)
		if !reflect.DeepEqual(a.Metrics, want.Metrics) || len(a.Positions) != len(want.Positions) || len(a.Assets) != len(want.Assets) {
			t.Fatalf("%s: ComputeInto differs from Compute", name)
		}
		allocs := testing.AllocsPerRun(50, func() { ComputeInto(&a, "a", "x", nil, snap, hist, t0) })
		if allocs != 0 {
			t.Errorf("%s: ComputeInto on a reused Account made %v allocations, want 0", name, allocs)
		}
	}
}

// TestUnknownFundingCostIsUnknown: a position whose funding rate the venue
// could not tell (NaN) leaves the pool's funding_next_cost absent rather
// than smaller than it is.
func TestUnknownFundingCostIsUnknown(t *testing.T) {
	snap := &exchanges.Snapshot{
		Time:     t0,
		Balances: []exchanges.Balance{{Asset: "USDC", WalletBalance: 1000, MarginBalance: 1000, FundingPaid24h: math.NaN()}},
		Positions: []exchanges.Position{
			{Symbol: "BTC", Side: exchanges.Long, Pool: "USDC", MarginType: exchanges.Cross, Size: 0.01, EntryPrice: 60000, MarkPrice: 60000, Leverage: 5, Notional: 600, FundingRate: 0.0001, FundingInterval: time.Hour},
			{Symbol: "ETH", Side: exchanges.Long, Pool: "USDC", MarginType: exchanges.Cross, Size: 0.1, EntryPrice: 3000, MarkPrice: 3000, Leverage: 5, Notional: 300, FundingRate: math.NaN(), FundingInterval: time.Hour},
		},
	}
	a := Compute("hl", "hyperliquid", nil, snap, nil, t0)
	if v, ok := a.Positions[0].Metrics.Get(FundingNextCost); !ok || math.Abs(v-0.06) > 1e-12 {
		t.Errorf("BTC funding_next_cost %v %v, want 0.06", v, ok)
	}
	if v, ok := a.Metrics.Get(FundingNextCost); ok {
		t.Errorf("account funding_next_cost %v with ETH's unknown, want absent", v)
	}
}
