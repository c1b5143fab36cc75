package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// dropPosition removes the positionRisk row of symbol and positionSide, as
// if it had been closed; no forced order is added.
func dropPosition(t *testing.T, srv *binancetest.Server, path, symbol, positionSide string) {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(srv.Body(path)), &rows); err != nil {
		t.Fatal(err)
	}
	var keep []map[string]any
	for _, r := range rows {
		if r["symbol"] != symbol || r["positionSide"] != positionSide {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(rows) {
		t.Fatalf("no %s %s row in %s", symbol, positionSide, path)
	}
	b, _ := json.Marshal(keep)
	srv.SetBody(path, string(b))
}

func liquidationEvents(snap *exchanges.Snapshot) []exchanges.Event {
	var out []exchanges.Event
	for _, ev := range snap.Events {
		if ev.Kind == exchanges.Liquidation {
			out = append(out, ev)
		}
	}
	return out
}

// TestLiquidationWhilePolling: a position that disappears between two
// polls is looked up in Binance's forced orders (the fixture's rows), and
// the liquidation or ADL comes as one event in the snapshot in which the
// position disappears, never again afterwards; a position closed by the
// user raises none. Only a disappearance costs the lookup (20).
func TestLiquidationWhilePolling(t *testing.T) {
	cases := []struct {
		name                 string
		exchange             string
		account              binancetest.Account
		riskPath, forcePath  string
		symbol, positionSide string
		at                   int64 // ms: the forced order's time; 0 for a close by the user
		side                 exchanges.Side
		id, time             string
		says                 []string
	}{
		{"one-way liquidation", USDM, binancetest.USDMOneWay, "/fapi/v3/positionRisk", "/fapi/v1/forceOrders", "BTCUSDT", "BOTH",
			binancetest.LiquidationTime, exchanges.Long, "main/liquidation/BTCUSDT/long/6071832819", "2020-07-30T11:13:40.087Z",
			[]string{"BTCUSDT long liquidated by Binance: 0.001 filled at an average 10913.21000 (order 6071832819 at 2020-07-30T11:13:40Z)"}},
		{"hedge ADL", USDM, binancetest.USDMHedge, "/fapi/v3/positionRisk", "/fapi/v1/forceOrders", "BTCUSDT", "SHORT",
			binancetest.ADLTime, exchanges.Short, "main/liquidation/BTCUSDT/short/6072734303", "2020-07-30T12:05:25.071Z",
			[]string{"BTCUSDT short closed by Binance's auto-deleveraging (ADL): 0.001 filled at an average 10979.82000"}},
		{"COIN-M liquidation", COINM, binancetest.COINM, "/dapi/v1/positionRisk", "/dapi/v1/forceOrders", "BTCUSD_PERP", "BOTH",
			binancetest.COINMLiquidationTime, exchanges.Long, "main/liquidation/BTCUSD_PERP/long/165123080", "2020-08-04T11:53:25.05Z",
			[]string{"BTCUSD_PERP long liquidated by Binance: 1 filled at an average 11326.9"}},
		{"COIN-M hedge liquidation", COINM, binancetest.COINMHedge, "/dapi/v1/positionRisk", "/dapi/v1/forceOrders", "BTCUSD_201225", "LONG",
			binancetest.COINMLiquidationTime, exchanges.Long, "main/liquidation/BTCUSD_201225/long/165123080", "2020-08-04T11:53:25.05Z",
			[]string{"liquidated by Binance"}},
		{"closed by the user", USDM, binancetest.USDMOneWay, "/fapi/v3/positionRisk", "/fapi/v1/forceOrders", "SOLUSDT", "BOTH",
			0, "", "", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			at := c.at
			if at == 0 {
				at = binancetest.LiquidationTime
			}
			clk.Advance(time.UnixMilli(at).Add(-10 * time.Second).Sub(clk.Now()))
			ctx := context.Background()
			snap, err := ex.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev := liquidationEvents(snap); len(ev) != 0 || srv.Count(c.forcePath) != 0 {
				t.Fatalf("first poll: events %+v, %d forceOrders requests", ev, srv.Count(c.forcePath))
			}
			// Polls with every position still there never ask.
			clk.Advance(time.Second)
			if _, err := ex.Snapshot(ctx); err != nil || srv.Count(c.forcePath) != 0 {
				t.Fatalf("steady poll: %v, %d forceOrders requests", err, srv.Count(c.forcePath))
			}

			dropPosition(t, srv, c.riskPath, c.symbol, c.positionSide)
			clk.Advance(14 * time.Second)
			srv.ResetCounts()
			snap, err = ex.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if srv.Count(c.forcePath) != 1 || srv.Weights()[c.forcePath] != 20 {
				t.Errorf("forceOrders: %d requests, weight %d; want 1, 20", srv.Count(c.forcePath), srv.Weights()[c.forcePath])
			}
			evs := liquidationEvents(snap)
			if c.at == 0 {
				if len(evs) != 0 {
					t.Errorf("a position the user closed raised %+v", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("events %+v, want one liquidation", snap.Events)
			}
			ev := evs[0]
			if ev.Symbol != c.symbol || ev.Side != c.side || ev.ID != c.id || ev.Time.UTC().Format(time.RFC3339Nano) != c.time {
				t.Errorf("event %+v, want %s %s id %s at %s", ev, c.symbol, c.side, c.id, c.time)
			}
			for _, s := range c.says {
				if !strings.Contains(ev.Message, s) {
					t.Errorf("message %q does not say %q", ev.Message, s)
				}
			}
			for _, p := range snap.Positions {
				if p.Symbol == c.symbol && p.Side == c.side {
					t.Errorf("the liquidated position is still in the snapshot")
				}
			}
			// Reported once: the next polls neither ask nor report.
			clk.Advance(15 * time.Second)
			srv.ResetCounts()
			snap, err = ex.Snapshot(ctx)
			if err != nil || len(liquidationEvents(snap)) != 0 || srv.Count(c.forcePath) != 0 {
				t.Errorf("poll after: %v, events %+v, %d forceOrders requests", err, snap, srv.Count(c.forcePath))
			}
		})
	}
}

// TestLiquidationLookupFails: when forceOrders cannot be read, the
// Snapshot fails (transient) instead of reporting the position as simply
// gone, and the next poll asks again and reports the liquidation.
func TestLiquidationLookupFails(t *testing.T) {
	for _, fail := range []binancetest.Failure{binancetest.ServerError(503), binancetest.MalformedJSON(), binancetest.RateLimited(20)} {
		t.Run(fmt.Sprint(fail.Status), func(t *testing.T) {
			ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
			clk.Advance(time.UnixMilli(binancetest.LiquidationTime).Add(-10 * time.Second).Sub(clk.Now()))
			ctx := context.Background()
			if _, err := ex.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			dropPosition(t, srv, "/fapi/v3/positionRisk", "BTCUSDT", "BOTH")
			srv.Fail("/fapi/v1/forceOrders", fail)
			clk.Advance(15 * time.Second)
			snap, err := ex.Snapshot(ctx)
			if err == nil || errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), "forceOrders") {
				t.Fatalf("Snapshot with forceOrders failing = %v, %+v; want a transient error naming forceOrders", err, snap)
			}
			clk.Advance(30 * time.Second) // past the 429's Retry-After
			snap, err = ex.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev := liquidationEvents(snap); len(ev) != 1 || ev[0].ID != "main/liquidation/BTCUSDT/long/6071832819" {
				t.Errorf("events on the poll after the failure = %+v, want the liquidation", snap.Events)
			}
		})
	}
}

// TestLiquidateHelper: binancetest's Liquidate, at the fake's own clock,
// is what other packages' tests use; the adapter reports it.
func TestLiquidateHelper(t *testing.T) {
	for _, c := range []struct {
		exchange             string
		account              binancetest.Account
		symbol, positionSide string
		side                 exchanges.Side
	}{
		{USDM, binancetest.USDMOneWay, "ETHUSDT", "BOTH", exchanges.Short},
		{USDM, binancetest.USDMHedge, "BTCUSDT", "LONG", exchanges.Long},
		{COINM, binancetest.COINM, "ETHUSD_PERP", "BOTH", exchanges.Short},
	} {
		t.Run(c.symbol+" "+c.positionSide, func(t *testing.T) {
			ex, srv, clk := fixture(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			ctx := context.Background()
			if _, err := ex.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Advance(7 * time.Second)
			id, err := srv.Liquidate(c.symbol, c.positionSide)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(8 * time.Second)
			snap, err := ex.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ev := liquidationEvents(snap)
			if len(ev) != 1 || ev[0].Symbol != c.symbol || ev[0].Side != c.side || !strings.HasSuffix(ev[0].ID, fmt.Sprint(id)) {
				t.Errorf("events %+v, want %s %s liquidated (order %d)", snap.Events, c.symbol, c.side, id)
			}
			if _, err := srv.Liquidate(c.symbol, c.positionSide); err == nil {
				t.Error("liquidating a position twice succeeded")
			}
		})
	}
}
