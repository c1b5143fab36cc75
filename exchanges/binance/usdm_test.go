package binance

import (
	"context"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

func TestSnapshotUSDMOneWay(t *testing.T) {
	ex, _, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if snap.Inverse || len(snap.Balances) != 1 || snap.Balances[0].Asset != "USDT" {
		t.Fatalf("balances = %+v", snap.Balances)
	}
	a := metrics.Compute("main", USDM, nil, snap, nil, clk.Now())

	checkSet(t, "account", a.Metrics, want{
		// cross maint (367 − 105 isolated ETH) / (cross wallet 44000 + cross PnL −500)
		"margin_ratio":      262.0 / 43500.0,
		"equity":            48500,
		"available_balance": 31000,
		"unrealized_pnl":    -1500,
		// (30500 + 31000 + 14000) / 48500
		"effective_leverage": 75500.0 / 48500.0,
		// (30500 − 31000 + 14000) / 48500
		"net_exposure_ratio": 13500.0 / 48500.0,
		// BTC 30500×0.0001 = 3.05; ETH short 31000×0.0002 → −6.2; SOL 14000×(−0.0003) = −4.2
		"funding_next_cost": 3.05 - 6.2 - 4.2,
		// FUNDING_FEE within 24h: −3.5 + 2 − 1.25 received → 2.75 paid
		"funding_paid_24h": 2.75,
		"position_count":   3,
		"data_age_seconds": 0,
	})

	bySym := map[string]metrics.Position{}
	for _, p := range a.Positions {
		bySym[p.Symbol] = p
	}
	cases := []struct {
		symbol string
		side   exchanges.Side
		w      want
	}{
		{"BTCUSDT", exchanges.Long, want{
			"liq_distance_pct":   22000.0 / 61000.0 * 100, // |61000 − 39000| / 61000
			"liq_distance_atr":   22000.0 / 500,           // ATR(14) of candles ranging 500
			"leverage":           10,
			"size_pct_equity":    30500.0 / 48500.0 * 100,
			"funding_rate":       0.0001,
			"funding_apr_pct":    0.0001 * 1095 * 100, // 8h: 1095 fundings a year
			"funding_next_cost":  3.05,
			"unrealized_pnl_pct": 500.0 / (0.5 * 60000 / 10) * 100,
		}},
		{"ETHUSDT", exchanges.Short, want{
			"liq_distance_pct":   460.0 / 3100.0 * 100, // |3100 − 3560| / 3100
			"liq_distance_atr":   460.0 / 40,
			"leverage":           5,
			"size_pct_equity":    31000.0 / 48500.0 * 100,
			"funding_rate":       0.0002,
			"funding_apr_pct":    -0.0002 * 1095 * 100, // a short receives a positive rate
			"funding_next_cost":  -6.2,
			"unrealized_pnl_pct": -1000.0 / (10 * 3000.0 / 5) * 100,
			"margin_ratio":       105.0 / (6000 - 1000), // isolated: maint / (wallet + PnL)
		}},
		{"SOLUSDT", exchanges.Long, want{
			"liq_distance_pct":   60.0 / 140.0 * 100,
			"liq_distance_atr":   60.0 / 5,
			"leverage":           3,
			"size_pct_equity":    14000.0 / 48500.0 * 100,
			"funding_rate":       -0.0003,
			"funding_apr_pct":    -0.0003 * 2190 * 100, // 4h interval from fundingInfo
			"funding_next_cost":  -4.2,
			"unrealized_pnl_pct": -1000.0 / (100 * 150.0 / 3) * 100,
		}},
	}
	for _, c := range cases {
		p, ok := bySym[c.symbol]
		if !ok {
			t.Errorf("%s missing", c.symbol)
			continue
		}
		if p.Side != c.side {
			t.Errorf("%s side = %s, want %s", c.symbol, p.Side, c.side)
		}
		checkSet(t, c.symbol, p.Metrics, c.w)
	}
	eth := bySym["ETHUSDT"].Raw
	if eth.MarginType != exchanges.Isolated || eth.IsolatedWallet != 6000 || eth.FundingInterval != 8*time.Hour ||
		!eth.NextFundingTime.Equal(time.UnixMilli(binancetest.NextFunding)) {
		t.Errorf("ETHUSDT raw = %+v", eth)
	}
	if sol := bySym["SOLUSDT"].Raw; sol.FundingInterval != 4*time.Hour || sol.MarginType != exchanges.Cross {
		t.Errorf("SOLUSDT raw interval %v type %s", sol.FundingInterval, sol.MarginType)
	}
}

func TestSnapshotUSDMHedge(t *testing.T) {
	ex, _, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMHedge}, nil)
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	a := metrics.Compute("main", USDM, nil, snap, nil, clk.Now())
	type key struct {
		symbol string
		side   exchanges.Side
	}
	got := map[key]metrics.Set{}
	for _, p := range a.Positions {
		got[key{p.Symbol, p.Side}] = p.Metrics
	}
	if len(got) != 3 {
		t.Fatalf("positions = %v, want BTC long, BTC short, COMP short", got)
	}
	const eq = 1051.20817624
	cases := []struct {
		k key
		w want
	}{
		// Both cross legs are liquidated with the net short, at 30000.
		{key{"BTCUSDT", exchanges.Long}, want{
			"liq_distance_pct":   9000.0 / 21000 * 100,
			"liq_distance_atr":   9000.0 / 200,
			"leverage":           20,
			"size_pct_equity":    210 / eq * 100,
			"funding_rate":       0.00038246,
			"funding_apr_pct":    0.00038246 * 1095 * 100,
			"funding_next_cost":  210 * 0.00038246,
			"unrealized_pnl_pct": 10 / (0.01 * 20000.0 / 20) * 100,
		}},
		{key{"BTCUSDT", exchanges.Short}, want{
			"liq_distance_pct":   9000.0 / 21000 * 100,
			"liq_distance_atr":   9000.0 / 200,
			"leverage":           20,
			"size_pct_equity":    420 / eq * 100,
			"funding_rate":       0.00038246,
			"funding_apr_pct":    -0.00038246 * 1095 * 100,
			"funding_next_cost":  -420 * 0.00038246,
			"unrealized_pnl_pct": 20 / (0.02 * 22000.0 / 20) * 100,
		}},
		{key{"COMPUSDT", exchanges.Short}, want{
			"liq_distance_pct":   (2260.5675721 - 49.72023376) / 49.72023376 * 100,
			"liq_distance_atr":   (2260.5675721 - 49.72023376) / 1.0,
			"leverage":           20,
			"size_pct_equity":    49.72023376 / eq * 100,
			"funding_rate":       -0.0001,
			"funding_apr_pct":    0.0001 * 1095 * 100,
			"funding_next_cost":  49.72023376 * 0.0001,
			"unrealized_pnl_pct": 21.20817624 / (1 * 70.92841 / 20) * 100,
		}},
	}
	for _, c := range cases {
		checkSet(t, c.k.symbol+" "+string(c.k.side), got[c.k], c.w)
	}
	checkSet(t, "account", a.Metrics, want{
		"margin_ratio":       3.01720233 / (1000 + 51.20817624), // all cross
		"equity":             eq,
		"available_balance":  900,
		"unrealized_pnl":     51.20817624,
		"effective_leverage": (210 + 420 + 49.72023376) / eq,
		"net_exposure_ratio": (210 - 420 - 49.72023376) / eq,
		"funding_next_cost":  210*0.00038246 - 420*0.00038246 + 49.72023376*0.0001,
		"funding_paid_24h":   0.08034,
		"position_count":     3,
		"data_age_seconds":   0,
	})
}

func TestProtects(t *testing.T) {
	cases := []struct {
		name    string
		o       order
		side    exchanges.Side
		posSide string
		want    bool
	}{
		{"one-way reduce-only stop", order{typ: "STOP_MARKET", side: "SELL", positionSide: "BOTH", reduceOnly: true, closePosition: false}, exchanges.Long, "BOTH", true},
		{"one-way close-position stop", order{typ: "STOP", side: "BUY", positionSide: "BOTH", reduceOnly: false, closePosition: true}, exchanges.Short, "BOTH", true},
		{"one-way trailing stop", order{typ: "TRAILING_STOP_MARKET", side: "SELL", positionSide: "BOTH", reduceOnly: true, closePosition: false}, exchanges.Long, "BOTH", true},
		{"one-way stop not reduce-only", order{typ: "STOP_MARKET", side: "SELL", positionSide: "BOTH", reduceOnly: false, closePosition: false}, exchanges.Long, "BOTH", false},
		{"one-way wrong side", order{typ: "STOP_MARKET", side: "BUY", positionSide: "BOTH", reduceOnly: true, closePosition: false}, exchanges.Long, "BOTH", false},
		{"take profit is no stop", order{typ: "TAKE_PROFIT_MARKET", side: "SELL", positionSide: "BOTH", reduceOnly: true, closePosition: false}, exchanges.Long, "BOTH", false},
		{"limit is no stop", order{typ: "LIMIT", side: "SELL", positionSide: "BOTH", reduceOnly: true, closePosition: false}, exchanges.Long, "BOTH", false},
		{"hedge SELL on LONG", order{typ: "STOP_MARKET", side: "SELL", positionSide: "LONG", reduceOnly: false, closePosition: false}, exchanges.Long, "LONG", true},
		{"hedge BUY on SHORT", order{typ: "STOP", side: "BUY", positionSide: "SHORT", reduceOnly: false, closePosition: false}, exchanges.Short, "SHORT", true},
		{"hedge SELL on SHORT adds to the short", order{typ: "STOP_MARKET", side: "SELL", positionSide: "SHORT", reduceOnly: false, closePosition: false}, exchanges.Short, "SHORT", false},
		{"hedge order of the other side", order{typ: "STOP_MARKET", side: "SELL", positionSide: "LONG", reduceOnly: false, closePosition: false}, exchanges.Short, "SHORT", false},
		{"one-way order for a hedge position", order{typ: "STOP_MARKET", side: "SELL", positionSide: "BOTH", reduceOnly: true, closePosition: false}, exchanges.Long, "LONG", false},
	}
	for _, c := range cases {
		if got := protects(c.o, c.side, c.posSide); got != c.want {
			t.Errorf("%s: protects = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCaches(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ctx := context.Background()
	poll := func() {
		t.Helper()
		if _, err := ex.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 04:30: klines fetched; the newest closed candle opened 03:00, the next
	// closes at 05:00.
	poll()
	steps := []struct {
		advance                  time.Duration
		klines, income, fundInfo int // cumulative requests
	}{
		{4 * time.Minute, 3, 1, 1},  // 04:34
		{time.Minute, 3, 2, 1},      // 04:35: income is 5 min old
		{25 * time.Minute, 6, 3, 1}, // 05:00: a new candle closed
		{59 * time.Minute, 6, 4, 2}, // 05:59: fundingInfo is 89 min old
		{time.Minute, 9, 4, 2},      // 06:00: a new candle; income 1 min old
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		poll()
		if k, in, fi := srv.Count("/fapi/v1/klines"), srv.Count("/fapi/v1/income"), srv.Count("/fapi/v1/fundingInfo"); k != s.klines || in != s.income || fi != s.fundInfo {
			t.Errorf("step %d: klines %d income %d fundingInfo %d, want %d %d %d", i, k, in, fi, s.klines, s.income, s.fundInfo)
		}
	}
}

func TestSlowDownAbove80Percent(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ctx := context.Background()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Minute) // income due
	srv.SetMinuteWeight(1850)    // another program on this IP spent 77%
	srv.ResetCounts()
	if _, err := ex.Snapshot(ctx); err != nil { // learns the weight from the first response
		t.Fatal(err)
	}
	if srv.Count("/fapi/v1/income") != 0 {
		t.Errorf("income refreshed above 75%% of the weight budget")
	}
	snap, err := ex.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Balances[0].FundingPaid24h; got != 2.75 {
		t.Errorf("funding paid served from cache = %v, want 2.75", got)
	}
	clk.Advance(time.Minute) // a new weight window
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Count("/fapi/v1/income") != 1 {
		t.Errorf("income not refreshed in the next minute")
	}
}

func TestNoPositions(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	srv.SetBody("/fapi/v3/positionRisk", "[]")
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Positions) != 0 || srv.Count("/fapi/v1/premiumIndex") != 0 || srv.Count("/fapi/v1/openAlgoOrders") != 0 {
		t.Errorf("positions %d, premiumIndex %d, algo %d requests", len(snap.Positions), srv.Count("/fapi/v1/premiumIndex"), srv.Count("/fapi/v1/openAlgoOrders"))
	}
	a := metrics.Compute("main", USDM, nil, snap, nil, clk.Now())
	if v, _ := a.Metrics.Get(metrics.PositionCount); v != 0 {
		t.Errorf("position_count = %v", v)
	}
}
