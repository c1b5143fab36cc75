package binance

import (
	"context"
	"reflect"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

type pk struct {
	symbol string
	side   exchanges.Side
}

func positionsOf(t *testing.T, ex *Exchange) map[pk]exchanges.Position {
	t.Helper()
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[pk]exchanges.Position{}
	for _, p := range snap.Positions {
		m[pk{p.Symbol, p.Side}] = p
	}
	return m
}

func checkStops(t *testing.T, what string, got, want []exchanges.Stop) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: stops %+v, want %+v", what, got, want)
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if !approx(g.Trigger, w.Trigger) || !approx(g.Quantity, w.Quantity) || g.ClosePosition != w.ClosePosition || g.Trailing != w.Trailing {
			t.Errorf("%s: stop %d = %+v, want %+v", what, i, g, w)
		}
	}
}

// TestStopsUSDM: every stop on the closing side is reported with its
// trigger and quantity, whether or not it can fire before liquidation
// (the metrics decide); take-profits are not stops; a trailing stop with an
// activation price the market has not reached protects nothing yet (a
// long's SELL arms above the market), one past it fires at the latest at
// the activation price less callbackRate%; without an activation price it
// fires callbackRate% from the mark.
// One-way account: BTCUSDT long 0.5 (mark 61000, liq 39000), ETHUSDT short
// 10 (mark 3100), SOLUSDT long 100 (mark 140).
func TestStopsUSDM(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	srv.SetBody("/fapi/v1/openAlgoOrders", "["+
		// Beyond the liquidation price: never fires, still a stop.
		binancetest.AlgoOrderRow(binancetest.Order{ID: 1, Type: "STOP_MARKET", Symbol: "BTCUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "35000", ClosePosition: true})+","+
		// 40% of the position, reduce-only.
		binancetest.AlgoOrderRow(binancetest.Order{ID: 2, Type: "STOP_MARKET", Symbol: "BTCUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "58000", Quantity: "0.2", ReduceOnly: true})+","+
		binancetest.AlgoOrderRow(binancetest.Order{ID: 3, Type: "TAKE_PROFIT_MARKET", Symbol: "BTCUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "70000", ClosePosition: true})+","+
		// A trailing algo stop without activation price: 1.5% above the mark for a short.
		binancetest.AlgoOrderRow(binancetest.Order{ID: 4, Type: "TRAILING_STOP_MARKET", Symbol: "ETHUSDT", Side: "BUY", PositionSide: "BOTH", Quantity: "10", Rate: "1.5", ReduceOnly: true})+"]")
	srv.SetBody("/fapi/v1/openOrders", "["+
		// The ETH short's only other order: a close-position take-profit.
		binancetest.OrderRow(binancetest.Order{ID: 11, Type: "TAKE_PROFIT_MARKET", Symbol: "ETHUSDT", Side: "BUY", PositionSide: "BOTH", Trigger: "2500", ClosePosition: true})+","+
		binancetest.OrderRow(binancetest.Order{ID: 12, Type: "TRAILING_STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Quantity: "100", Activate: "150", Rate: "1", ReduceOnly: true})+","+
		binancetest.OrderRow(binancetest.Order{ID: 13, Type: "TRAILING_STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Quantity: "50", Rate: "2", ReduceOnly: true})+","+
		// Not reduce-only in one-way mode: it could open a short.
		binancetest.OrderRow(binancetest.Order{ID: 14, Type: "STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "120", Quantity: "100"})+","+
		// Armed: the mark (140) is past its activation price (130).
		binancetest.OrderRow(binancetest.Order{ID: 15, Type: "TRAILING_STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Quantity: "20", Activate: "130", Rate: "1", ReduceOnly: true})+"]")
	ps := positionsOf(t, ex)
	checkStops(t, "BTCUSDT long", ps[pk{"BTCUSDT", exchanges.Long}].Stops, []exchanges.Stop{
		{Trigger: 35000, ClosePosition: true},
		{Trigger: 58000, Quantity: 0.2},
	})
	checkStops(t, "ETHUSDT short", ps[pk{"ETHUSDT", exchanges.Short}].Stops, []exchanges.Stop{
		{Trigger: 3100 * 1.015, Quantity: 10, Trailing: true},
	})
	// Order 12 (activation 150, above the mark) is not armed: no stop.
	checkStops(t, "SOLUSDT long", ps[pk{"SOLUSDT", exchanges.Long}].Stops, []exchanges.Stop{
		{Trigger: 140 * 0.98, Quantity: 50, Trailing: true},
		{Trigger: 130 * 0.99, Quantity: 20, Trailing: true},
	})

	// Only the close-position take-profit left: no stop at all.
	srv.SetBody("/fapi/v1/openAlgoOrders", "[]")
	srv.SetBody("/fapi/v1/openOrders", "["+binancetest.OrderRow(binancetest.Order{ID: 11, Type: "TAKE_PROFIT_MARKET", Symbol: "ETHUSDT", Side: "BUY", PositionSide: "BOTH", Trigger: "2500", ClosePosition: true})+"]")
	ex2, srv2, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	srv2.SetBody("/fapi/v1/openAlgoOrders", srv.Body("/fapi/v1/openAlgoOrders"))
	srv2.SetBody("/fapi/v1/openOrders", srv.Body("/fapi/v1/openOrders"))
	for k, p := range positionsOf(t, ex2) {
		if p.Stops != nil {
			t.Errorf("%v: stops %+v, want none (a take-profit is no stop)", k, p.Stops)
		}
	}
}

// TestStopsHedge: in hedge mode a stop protects the position of its
// positionSide when its side closes it. USDⓈ-M: the algo SELL on the LONG
// side; the fixture's TRAILING_STOP_MARKET BUY on the SHORT side (as it
// is: activation 9020, 0.40, 0.3%) is on the closing side but not armed,
// the mark being far above its activation price, so it protects nothing
// yet; the algo SELL on the SHORT side would add to the short. COIN-M: the
// BUY on the LONG side would add to the long; the trailing BUY on the SHORT
// side is not armed either.
func TestStopsHedge(t *testing.T) {
	ex, _, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMHedge}, nil)
	ps := positionsOf(t, ex)
	checkStops(t, "BTCUSDT long", ps[pk{"BTCUSDT", exchanges.Long}].Stops, []exchanges.Stop{{Trigger: 18000, Quantity: 0.01}})
	checkStops(t, "BTCUSDT short", ps[pk{"BTCUSDT", exchanges.Short}].Stops, nil)
	checkStops(t, "COMPUSDT short", ps[pk{"COMPUSDT", exchanges.Short}].Stops, nil)

	exc, _, _ := fixture(t, COINM, binancetest.Options{Account: binancetest.COINMHedge}, nil)
	pc := positionsOf(t, exc)
	checkStops(t, "BTCUSD_201225 long", pc[pk{"BTCUSD_201225", exchanges.Long}].Stops, nil)
	checkStops(t, "BTCUSD_201225 short", pc[pk{"BTCUSD_201225", exchanges.Short}].Stops, nil)

	exo, _, _ := fixture(t, COINM, binancetest.Options{Account: binancetest.COINM}, nil)
	po := positionsOf(t, exo)
	checkStops(t, "BTCUSD_PERP long", po[pk{"BTCUSD_PERP", exchanges.Long}].Stops, []exchanges.Stop{{Trigger: 45000, Quantity: 10}})
	checkStops(t, "ETHUSD_PERP short", po[pk{"ETHUSD_PERP", exchanges.Short}].Stops, nil) // a reduce-only LIMIT only
}

// TestPools: single-asset mode has one pool per margin asset from the
// account's asset rows (Binance's totals are USDT's alone); multi-assets
// mode one USD pool from the totals. Every position names its pool.
func TestPools(t *testing.T) {
	ex, _, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMPools}, nil)
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nan := snap.Balances[0].FundingPaid24h // no funding rows: 0 (known) for both
	want := []exchanges.Balance{
		{Asset: "USDC", WalletBalance: 900, UnrealizedPnL: -750, MarginBalance: 150, MaintMargin: 117, AvailableBalance: 0,
			CrossWalletBalance: 900, CrossUnPnL: -750, CrossMaintMargin: 117, FundingPaid24h: nan},
		// The fixture's USDT row as it is (availableBalance included).
		{Asset: "USDT", WalletBalance: 23.72469206, MarginBalance: 23.72469206, AvailableBalance: 126.72469206,
			CrossWalletBalance: 23.72469206, FundingPaid24h: nan},
	}
	if nan != 0 || !reflect.DeepEqual(snap.Balances, want) {
		t.Errorf("pools\n%+v\nwant\n%+v", snap.Balances, want)
	}
	for _, p := range snap.Positions {
		if w := map[string]string{"ADAUSDT": "USDT", "BTCUSDC": "USDC"}[p.Symbol]; p.Pool != w || p.MarginAsset != w {
			t.Errorf("%s: pool %q margin asset %q, want %q", p.Symbol, p.Pool, p.MarginAsset, w)
		}
	}

	exm, _, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMMultiAssets}, nil)
	snap, err = exm.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Balances) != 1 || snap.Balances[0].Asset != "USD" || snap.Balances[0].WalletBalance != 126.72469206 ||
		snap.Balances[0].MarginBalance != 126.72469206 || snap.Balances[0].CrossWalletBalance != 126.72469206 {
		t.Errorf("multi-assets pools %+v, want one USD pool of the totals", snap.Balances)
	}
	if len(snap.Positions) != 1 || snap.Positions[0].Pool != "USD" || snap.Positions[0].MarginAsset != "USDT" {
		t.Errorf("multi-assets positions %+v, want ADAUSDT in pool USD", snap.Positions)
	}

	// COIN-M: one pool per margin coin.
	exc, _, _ := fixture(t, COINM, binancetest.Options{Account: binancetest.COINM}, nil)
	snap, err = exc.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range snap.Positions {
		if p.Pool != p.MarginAsset || p.Pool == "" {
			t.Errorf("%s: pool %q, margin asset %q", p.Symbol, p.Pool, p.MarginAsset)
		}
	}
}

// TestPoolWithoutAssetRow: a position margined in an asset the account
// does not list fails the Snapshot, saying so, rather than hiding the pool.
func TestPoolWithoutAssetRow(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMPools}, nil)
	acct := srv.Body("/fapi/v2/account")
	srv.SetBody("/fapi/v2/account", acct[:len(acct)-len(acct[indexOf(acct, `,
    {"asset": "USDC"`):])]+acct[indexOf(acct, `
  ],
  "positions"`):])
	_, err := ex.Snapshot(context.Background())
	if err == nil || !containsAll(err.Error(), "USDC", "no USDC asset row") {
		t.Errorf("err = %v, want one naming the missing USDC pool", err)
	}
}
