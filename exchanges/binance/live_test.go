package binance

import (
	"context"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// Brackets that agree with the scenarios' maintenance margins, which were
// made up apart from their brackets: ETHUSDT short 10 at 3100 (notional
// 31000) has maint 105 = 31000 × 0.5% − 50; BTCUSD_PERP long 10
// contracts at 52000 (0.01923077 BTC) has 0.00009615 ≈ 0.5%. A mark tick
// recomputes from brackets, so fidelity needs brackets that agree.
const (
	usdmBrackets = `[
  {"symbol":"BTCUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":125,"notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.004,"cum":0.0},
    {"bracket":2,"initialLeverage":100,"notionalCap":500000,"notionalFloor":50000,"maintMarginRatio":0.005,"cum":50.0}]},
  {"symbol":"ETHUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":50,"notionalCap":100000,"notionalFloor":0,"maintMarginRatio":0.005,"cum":50.0}]},
  {"symbol":"SOLUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":50,"notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.01,"cum":0.0}]}
]`
	coinmBrackets = `[
  {"symbol":"BTCUSD_PERP","notionalCoef":1.5,"brackets":[{"bracket":1,"initialLeverage":125,"qtyCap":50,"qtylFloor":0,"maintMarginRatio":0.005,"cum":0}]},
  {"symbol":"ETHUSD_PERP","notionalCoef":1.5,"brackets":[{"bracket":1,"initialLeverage":75,"qtyCap":500,"qtylFloor":0,"maintMarginRatio":0.005,"cum":0}]}
]`
)

// seeded is an adapter seeded by one Snapshot of a fake account.
func seeded(t *testing.T, exchange string, account binancetest.Account) (*Exchange, *exchanges.Snapshot) {
	t.Helper()
	ex, srv, _ := fixture(t, exchange, binancetest.Options{Account: account}, nil)
	switch account {
	case binancetest.USDMOneWay:
		srv.SetBody("/fapi/v1/leverageBracket", usdmBrackets)
	case binancetest.COINM:
		srv.SetBody("/dapi/v2/leverageBracket", coinmBrackets)
	}
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return ex, snap
}

// A tick at the REST body's own mark gives back the REST snapshot's
// numbers; Snapshot's result stays the caller's.
func TestMarkTickFidelity(t *testing.T) {
	cases := []struct {
		name     string
		exchange string
		account  binancetest.Account
	}{
		{"usdm one-way cross and isolated", USDM, binancetest.USDMOneWay},
		{"usdm hedge", USDM, binancetest.USDMHedge},
		{"usdm multi-assets", USDM, binancetest.USDMMultiAssets},
		{"usdm two pools", USDM, binancetest.USDMPools},
		{"coinm cross and isolated", COINM, binancetest.COINM},
		{"coinm hedge", COINM, binancetest.COINMHedge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, snap := seeded(t, c.exchange, c.account)
			if len(snap.Positions) == 0 {
				t.Fatal("the scenario holds no position")
			}
			now := time.Now()
			for _, p := range snap.Positions {
				ex.markTick(p.Symbol, p.MarkPrice, p.FundingRate, p.NextFundingTime, now)
			}
			got := view(ex)
			if len(got.Positions) != len(snap.Positions) || len(got.Balances) != len(snap.Balances) {
				t.Fatalf("view has %d positions and %d pools, snapshot %d and %d", len(got.Positions), len(got.Balances), len(snap.Positions), len(snap.Balances))
			}
			for i := range snap.Positions {
				w := &snap.Positions[i]
				p := posOf(got, w.Symbol, w.Side)
				if p == nil {
					t.Fatalf("%s missing from the view", posName(w))
				}
				checkFields(t, posName(w), posFields(p, w)...)
			}
			for i := range snap.Balances {
				checkFields(t, "pool "+snap.Balances[i].Asset, poolFields(poolOf(got, snap.Balances[i].Asset), &snap.Balances[i])...)
			}
		})
	}
}

// A tick at another mark gives hand-computed figures.
func TestMarkTickMoves(t *testing.T) {
	type pos struct {
		symbol                    string
		side                      exchanges.Side
		notional, upnl, maint, fr float64
	}
	type pool struct {
		asset                   string
		upnl, mb, maint, cu, cm float64
	}
	cases := []struct {
		name     string
		exchange string
		account  binancetest.Account
		symbol   string
		mark     float64
		pos      []pos
		pool     pool
	}{
		{
			// BTC long 0.5 @ 60000 at 62000: 31000 notional, +1000, 0.4% = 124.
			name: "usdm cross", exchange: USDM, account: binancetest.USDMOneWay, symbol: "BTCUSDT", mark: 62000,
			pos: []pos{{"BTCUSDT", exchanges.Long, 31000, 1000, 124, 0.0005}},
			// −1500 + (1000 − 500); 50000 − 1000; 367 + 2; cross −500 + 500; 262 + 2.
			pool: pool{"USDT", -1000, 49000, 369, 0, 264},
		},
		{
			// ETH short 10 @ 3000 at 3200: 32000, −2000, 32000 × 0.5% − 50 = 110.
			name: "usdm isolated", exchange: USDM, account: binancetest.USDMOneWay, symbol: "ETHUSDT", mark: 3200,
			pos: []pos{{"ETHUSDT", exchanges.Short, 32000, -2000, 110, 0.0005}},
			// −1500 − 1000; 50000 − 2500; 367 + 5; the cross figures stay.
			pool: pool{"USDT", -2500, 47500, 372, -500, 262},
		},
		{
			// LONG 0.01 @ 20000 and SHORT 0.02 @ 22000 at 20000: 200, 0,
			// 0.8; 400, +40, 1.6.
			name: "usdm hedge", exchange: USDM, account: binancetest.USDMHedge, symbol: "BTCUSDT", mark: 20000,
			pos: []pos{{"BTCUSDT", exchanges.Long, 200, 0, 0.8, 0.0005}, {"BTCUSDT", exchanges.Short, 400, 40, 1.6, 0.0005}},
			// 51.20817624 − 10 + 20; 1000 + that; 3.01720233 − 0.04 − 0.08.
			pool: pool{"USDT", 61.20817624, 1061.20817624, 2.89720233, 61.20817624, 2.89720233},
		},
		{
			// BTCUSD_PERP long 10 × 100 USD @ 50000 at 40000: 0.025 BTC,
			// 1000 × (1/50000 − 1/40000) = −0.005, 0.025 × 0.5%.
			name: "coinm cross", exchange: COINM, account: binancetest.COINM, symbol: "BTCUSD_PERP", mark: 40000,
			pos:  []pos{{"BTCUSD_PERP", exchanges.Long, 0.025, -0.005, 0.000125, 0.0005}},
			pool: pool{"BTC", -0.005, 0.495, 0.000125, -0.005, 0.000125},
		},
		{
			// ETHUSD_PERP short 50 × 10 USD @ 2000 at 2500: 0.2 ETH,
			// −500 × (1/2000 − 1/2500) = −0.05, 0.2 × 0.5% = 0.001.
			name: "coinm isolated", exchange: COINM, account: binancetest.COINM, symbol: "ETHUSD_PERP", mark: 2500,
			pos: []pos{{"ETHUSD_PERP", exchanges.Short, 0.2, -0.05, 0.001, 0.0005}},
			// Binance's ETH row: PnL −0.01190476 → −0.05, maint 0.00119048
			// → 0.001, the cross figures stay (0, 0 after the isolated maint).
			pool: pool{"ETH", -0.05, 1.95, 0.001, 0, 0},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, _ := seeded(t, c.exchange, c.account)
			next := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
			received := time.Now()
			ex.markTick(c.symbol, c.mark, 0.0005, next, received)
			got := view(ex)
			for _, w := range c.pos {
				p := posOf(got, w.symbol, w.side)
				if p == nil {
					t.Fatalf("%s %s missing", w.symbol, w.side)
				}
				checkFields(t, posName(p), field{"MarkPrice", p.MarkPrice, c.mark}, field{"Notional", p.Notional, w.notional},
					field{"UnrealizedPnL", p.UnrealizedPnL, w.upnl}, field{"MaintMargin", p.MaintMargin, w.maint}, field{"FundingRate", p.FundingRate, w.fr})
				if !p.NextFundingTime.Equal(next) {
					t.Errorf("%s: NextFundingTime %v, want %v", posName(p), p.NextFundingTime, next)
				}
			}
			b := poolOf(got, c.pool.asset)
			checkFields(t, "pool "+c.pool.asset, field{"UnrealizedPnL", b.UnrealizedPnL, c.pool.upnl}, field{"MarginBalance", b.MarginBalance, c.pool.mb},
				field{"MaintMargin", b.MaintMargin, c.pool.maint}, field{"CrossUnPnL", b.CrossUnPnL, c.pool.cu}, field{"CrossMaintMargin", b.CrossMaintMargin, c.pool.cm})
			if tick, _ := ex.Live(&got); !tick.Equal(received) {
				t.Errorf("Live's tick %v, want the tick's receipt %v", tick, received)
			}
		})
	}
}

// Snapshot's result is its caller's: a tick does not write into it.
func TestSeedIsACopy(t *testing.T) {
	ex, snap := seeded(t, USDM, binancetest.USDMOneWay)
	before := snap.Positions[0]
	ex.markTick(before.Symbol, before.MarkPrice*2, 0, time.Time{}, time.Now())
	if snap.Positions[0].MarkPrice != before.MarkPrice || snap.Positions[0].UnrealizedPnL != before.UnrealizedPnL {
		t.Errorf("markTick changed the Snapshot's own result: %+v", snap.Positions[0])
	}
}

// Live is not ok before a seeding Snapshot, nor while the user stream is
// down, nor after marksDown until marksDown(nil).
func TestLiveOK(t *testing.T) {
	ex, _, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	var snap exchanges.Snapshot
	if _, ok := ex.Live(&snap); ok {
		t.Fatal("Live ok before any Snapshot")
	}
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := ex.Live(&snap); ok {
		t.Fatal("Live ok while the user stream is not connected")
	}
	calls := 0
	ex.live.changed = func() { calls++ }
	ex.userState(true, "", false)
	if _, ok := ex.Live(&snap); !ok {
		t.Fatal("Live not ok: seeded and connected")
	}
	ex.marksDown(context.DeadlineExceeded)
	if _, ok := ex.Live(&snap); ok {
		t.Fatal("Live ok while the mark-price stream is down")
	}
	if s := ex.StreamStatus(); s.Up || s.Reason == "" {
		t.Errorf("StreamStatus %+v while the marks are down", s)
	}
	ex.marksDown(nil)
	if _, ok := ex.Live(&snap); !ok {
		t.Fatal("Live not ok once the marks are back")
	}
	if calls != 3 {
		t.Errorf("changed called %d times for up, marks down, marks up; want 3", calls)
	}
}

// In steady state a tick and a Live allocate nothing.
func TestLiveAllocs(t *testing.T) {
	ex, snap := seeded(t, USDM, binancetest.USDMOneWay)
	ex.live.changed = func() {}
	ex.userState(true, "", false)
	var out exchanges.Snapshot
	ex.Live(&out)
	mark, now := snap.Positions[0].MarkPrice, time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		mark++
		ex.markTick("BTCUSDT", mark, 0.0001, now, now)
		if _, ok := ex.Live(&out); !ok {
			t.Fatal("Live not ok")
		}
	})
	if allocs != 0 {
		t.Errorf("markTick + Live allocate %v times per run, want 0", allocs)
	}
}

// BenchmarkMarkTickLive is one tick of a held symbol and one Live of a
// 3-position account.
func BenchmarkMarkTickLive(b *testing.B) {
	srv := binancetest.NewServer(b, binancetest.Options{Account: binancetest.USDMOneWay})
	ex, err := New(config.Account{Name: "main", Exchange: USDM, APIKey: binancetest.Key, APISecret: binancetest.Secret, Endpoint: srv.URL}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	if _, err := ex.Snapshot(context.Background()); err != nil {
		b.Fatal(err)
	}
	ex.live.changed = func() {}
	ex.userState(true, "", false)
	var out exchanges.Snapshot
	now := time.Now()
	mark := 61000.0
	b.ReportAllocs()
	for b.Loop() {
		mark += 0.1
		ex.markTick("BTCUSDT", mark, 0.0001, now, now)
		ex.Live(&out)
	}
}
