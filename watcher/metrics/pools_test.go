package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// TestComputePools: a USDⓈ-M account in single-asset mode with a USDT and a
// USDC pool gets the money metrics per pool; each position's size is over
// its own pool's equity; the account margin ratio is the highest pool's.
func TestComputePools(t *testing.T) {
	snap := &exchanges.Snapshot{
		Time: t0,
		Balances: []exchanges.Balance{
			{Asset: "USDT", WalletBalance: 10000, MarginBalance: 10000, AvailableBalance: 8000,
				CrossWalletBalance: 10000, CrossMaintMargin: 100, FundingPaid24h: 1},
			{Asset: "USDC", WalletBalance: 2000, UnrealizedPnL: -100, MarginBalance: 1900, AvailableBalance: 500,
				CrossWalletBalance: 2000, CrossUnPnL: -100, CrossMaintMargin: 95, FundingPaid24h: 2},
		},
		Positions: []exchanges.Position{
			{Symbol: "BTCUSDT", Side: exchanges.Long, MarginAsset: "USDT", Pool: "USDT", MarginType: exchanges.Cross,
				Size: 0.5, MarkPrice: 60000, EntryPrice: 60000, Notional: 30000, Leverage: 10, MaintMargin: 100},
			{Symbol: "ETHUSDC", Side: exchanges.Short, MarginAsset: "USDC", Pool: "USDC", MarginType: exchanges.Cross,
				Size: 2, MarkPrice: 3000, EntryPrice: 2950, Notional: 6000, Leverage: 20, MaintMargin: 95, UnrealizedPnL: -100},
		},
	}
	hist := NewEquityHistory(0)
	a := Compute("main", "binance-usdm", nil, snap, hist, t0)
	if a.Pool != "" || len(a.Assets) != 2 || a.Assets[0].Asset != "USDT" || a.Assets[1].Asset != "USDC" {
		t.Fatalf("pool %q assets %+v; want USDT and USDC pools", a.Pool, a.Assets)
	}
	checkSet(t, "account", &a.Metrics, want{
		MarginRatio:   0.05, // max(USDT 100/10,000 = 0.01, USDC 95/(2,000 − 100) = 0.05)
		PositionCount: 2,
		Equity:        absent, EffectiveLeverage: absent, DrawdownPct: absent,
	})
	checkSet(t, "USDT", &a.Assets[0].Metrics, want{
		Equity: 10000, AvailableBalance: 8000, MarginRatio: 0.01,
		EffectiveLeverage: 3, NetExposureRatio: 3, FundingPaid24h: 1, DrawdownPct: 0,
	})
	checkSet(t, "USDC", &a.Assets[1].Metrics, want{
		Equity: 1900, UnrealizedPnL: -100, MarginRatio: 0.05,
		EffectiveLeverage: 6000.0 / 1900, NetExposureRatio: -6000.0 / 1900, FundingPaid24h: 2, DrawdownPct: 0,
	})
	checkSet(t, "BTC", &a.Positions[0].Metrics, want{SizePctEquity: 300, Leverage: 10})         // 30,000 / 10,000
	checkSet(t, "ETH", &a.Positions[1].Metrics, want{SizePctEquity: 6000.0 / 19, Leverage: 20}) // 6,000 / 1,900 × 100

	// Each pool has its own drawdown: USDC falls 10%, USDT does not move.
	snap.Time = t0.Add(time.Minute)
	snap.Balances[1].MarginBalance = 1710
	a = Compute("main", "binance-usdm", nil, snap, hist, t0.Add(time.Minute))
	checkSet(t, "USDT later", &a.Assets[0].Metrics, want{DrawdownPct: 0})
	checkSet(t, "USDC later", &a.Assets[1].Metrics, want{DrawdownPct: 10}) // (1,900 − 1,710) / 1,900
	if dd, ok := a.Drawdown("USDC", t0.Add(time.Minute), time.Hour); !ok || math.Abs(dd-10) > 1e-9 {
		t.Errorf("Drawdown(USDC, 1h) = %v, %v; want 10", dd, ok)
	}
	if _, ok := a.Drawdown("", t0.Add(time.Minute), time.Hour); ok {
		t.Error(`Drawdown("") of a two-pool account is ok`)
	}

	// Multi-assets mode: one USD pool, everything on the account.
	one := &exchanges.Snapshot{Time: t0, Balances: []exchanges.Balance{{Asset: "USD", MarginBalance: 12000, CrossWalletBalance: 12000}},
		Positions: []exchanges.Position{{Symbol: "BTCUSDC", Side: exchanges.Long, MarginAsset: "USDC", Pool: "USD", Notional: 6000}}}
	a = Compute("m", "binance-usdm", nil, one, nil, t0)
	if a.Pool != "USD" || a.Assets != nil {
		t.Errorf("multi-assets mode: pool %q, assets %v; want USD on the account", a.Pool, a.Assets)
	}
	checkSet(t, "USD account", &a.Metrics, want{Equity: 12000, EffectiveLeverage: 0.5})
	checkSet(t, "USD position", &a.Positions[0].Metrics, want{SizePctEquity: 50})
}

// TestMaintMarginFloor: a pool's cross maintenance margin is never below its
// cross positions' sum. The numbers are the official COIN-M hedge-mode
// example bodies (fixtures dapi_v1_account_hedge.json and
// dapi_v1_positionRisk_hedge.json): the account reports maintMargin 0 while
// the BTCUSD_201225 LONG (1 contract of 100 USD) is 1% from liquidation.
// Binance ("Leverage and Margin of COIN-M Futures"): maintenance margin =
// notional × maintenance margin rate − maintenance amount, the notional in
// the coin = contracts × contract size / mark; the adapter takes the rate
// 0.004 and amount 0 from BTCUSD's first bracket (dapi_v1_leverageBracket.json).
func TestMaintMarginFloor(t *testing.T) {
	const (
		wallet = 0.00241969
		mark   = 11788.66626667
		liq    = 11667.63509587
	)
	notional := 1 * 100 / mark // 0.0084827 BTC
	mm := notional*0.004 - 0   // 0.0000339 BTC
	long := exchanges.Position{
		Symbol: "BTCUSD_201225", Side: exchanges.Long, MarginAsset: "BTC", Pool: "BTC", MarginType: exchanges.Cross,
		Size: 1, ContractSize: 100, EntryPrice: 11707.70000003, MarkPrice: mark, LiquidationPrice: liq,
		Leverage: 125, Notional: notional, UnrealizedPnL: 0.00005866, MaintMargin: mm,
	}
	bal := exchanges.Balance{Asset: "BTC", WalletBalance: wallet, MarginBalance: wallet, AvailableBalance: wallet,
		CrossWalletBalance: wallet}
	tests := []struct {
		name       string
		crossMaint float64 // the account body's figure
		positions  []exchanges.Position
		want       float64
	}{
		{"official hedge body: account says 0", 0, []exchanges.Position{long}, mm / wallet}, // ≈ 0.0140, not 0
		{"account figure above the sum wins", 0.0001, []exchanges.Position{long}, 0.0001 / wallet},
		{"isolated positions do not count", 0, []exchanges.Position{func() exchanges.Position {
			p := long
			p.MarginType, p.IsolatedWallet = exchanges.Isolated, 0.001
			return p
		}()}, 0},
		{"unknown account figure stays unknown", math.NaN(), []exchanges.Position{long}, absent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bal
			b.CrossMaintMargin = tt.crossMaint
			snap := &exchanges.Snapshot{Time: t0, Inverse: true, Balances: []exchanges.Balance{b}, Positions: tt.positions}
			a := Compute("c", "binance-coinm", nil, snap, nil, t0)
			checkSet(t, "account", &a.Metrics, want{MarginRatio: tt.want})
		})
	}
	a := Compute("c", "binance-coinm", nil, &exchanges.Snapshot{Time: t0, Inverse: true,
		Balances: []exchanges.Balance{bal}, Positions: []exchanges.Position{long}}, nil, t0)
	checkSet(t, "long", &a.Positions[0].Metrics, want{LiqDistancePct: (mark - liq) / mark * 100}) // 1.03%
}

// TestSignedLiqDistance: past the liquidation price the distance is
// negative, so a below-rule keeps firing; hedge-mode cross legs share one
// liquidation price and the symbol's net cross side decides for both.
func TestSignedLiqDistance(t *testing.T) {
	candles := flatCandles(15) // ATR 2
	pos := func(side exchanges.Side, size, mark, liq float64, mt exchanges.MarginType) exchanges.Position {
		return exchanges.Position{Symbol: "BTCUSDT", Side: side, MarginType: mt, Size: size, MarkPrice: mark,
			LiquidationPrice: liq, Notional: size * mark, Candles: candles}
	}
	tests := []struct {
		name      string
		positions []exchanges.Position
		pct, atr  []float64 // per position
	}{
		{"long safe", []exchanges.Position{pos(exchanges.Long, 1, 100, 90, exchanges.Cross)}, []float64{10}, []float64{5}},
		{"long past liquidation", []exchanges.Position{pos(exchanges.Long, 1, 80, 90, exchanges.Cross)}, []float64{-12.5}, []float64{-5}},
		{"short safe", []exchanges.Position{pos(exchanges.Short, 1, 100, 110, exchanges.Isolated)}, []float64{10}, []float64{5}},
		{"short past liquidation", []exchanges.Position{pos(exchanges.Short, 1, 125, 110, exchanges.Isolated)}, []float64{-12}, []float64{-7.5}},
		{"at the liquidation price", []exchanges.Position{pos(exchanges.Long, 1, 90, 90, exchanges.Cross)}, []float64{0}, []float64{0}},
		// Net long 2 − 1: the shared price below the mark is safe for both legs.
		{"hedge net long", []exchanges.Position{pos(exchanges.Long, 2, 100, 80, exchanges.Cross), pos(exchanges.Short, 1, 100, 80, exchanges.Cross)},
			[]float64{20, 20}, []float64{10, 10}},
		{"hedge net long, past", []exchanges.Position{pos(exchanges.Long, 2, 75, 80, exchanges.Cross), pos(exchanges.Short, 1, 75, 80, exchanges.Cross)},
			[]float64{-500.0 / 75, -500.0 / 75}, []float64{-2.5, -2.5}},
		// Net short 1 − 2: the shared price above the mark is safe for both
		// (the long leg alone would read −20%).
		{"hedge net short", []exchanges.Position{pos(exchanges.Long, 1, 100, 120, exchanges.Cross), pos(exchanges.Short, 2, 100, 120, exchanges.Cross)},
			[]float64{20, 20}, []float64{10, 10}},
		// An isolated leg has its own liquidation price and its own side.
		{"hedge with an isolated leg", []exchanges.Position{pos(exchanges.Long, 1, 100, 120, exchanges.Isolated), pos(exchanges.Short, 2, 100, 120, exchanges.Cross)},
			[]float64{-20, 20}, []float64{-10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := &exchanges.Snapshot{Time: t0, Balances: []exchanges.Balance{{Asset: "USDT", MarginBalance: 1000}}, Positions: tt.positions}
			a := Compute("a", "x", nil, snap, nil, t0)
			for i := range tt.positions {
				checkSet(t, string(tt.positions[i].Side), &a.Positions[i].Metrics, want{LiqDistancePct: tt.pct[i], LiqDistanceATR: tt.atr[i]})
			}
		})
	}
}
