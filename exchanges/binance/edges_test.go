package binance

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// TestLiquidationLookupOfAnUnlistedSymbol: a delivered quarterly (or a
// delisted perpetual) disappears and Binance answers forceOrders for it
// with -1121 "Invalid symbol": it has no forced orders to show, so the
// position counts as closed and the account is not left blind.
func TestLiquidationLookupOfAnUnlistedSymbol(t *testing.T) {
	ex, srv, clk := fixture(t, COINM, binancetest.Options{Account: binancetest.COINMHedge}, nil)
	ctx := context.Background()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	dropPosition(t, srv, "/dapi/v1/positionRisk", "BTCUSD_201225", "LONG")
	srv.Fail("/dapi/v1/forceOrders", binancetest.Failure{Status: http.StatusBadRequest, Body: `{"code":-1121,"msg":"Invalid symbol."}`, Times: 1000})
	clk.Advance(15 * time.Second)
	snap, err := ex.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot after the symbol's position disappeared: %v", err)
	}
	for _, ev := range snap.Events {
		if ev.Kind == exchanges.Liquidation {
			t.Errorf("liquidation event %+v for a symbol Binance no longer lists", ev)
		}
	}
}

// TestLiquidationLookupGivesUp: while forceOrders keeps failing, the polls
// fail (a liquidation must not pass as an ordinary close), but only for
// liqGiveUp: past it the position counts as closed and polling goes on.
func TestLiquidationLookupGivesUp(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ctx := context.Background()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	dropPosition(t, srv, "/fapi/v3/positionRisk", "SOLUSDT", "BOTH")
	srv.Fail("/fapi/v1/forceOrders", binancetest.Failure{Status: http.StatusServiceUnavailable, Times: 1000})
	var failed int
	for range 20 {
		clk.Advance(15 * time.Second)
		if _, err := ex.Snapshot(ctx); err != nil {
			failed++
			continue
		}
		break
	}
	if failed == 0 || failed > int(liqGiveUp/(15*time.Second))+1 {
		t.Fatalf("%d polls failed before the lookup was given up, want some, at most %v of them", failed, liqGiveUp)
	}
}

// TestPollsWhenTheKeyCannotBeChecked: an endpoint that does not serve
// /sapi (a futures-only proxy) or Binance's spot API out of reach: the
// permission check cannot be made, which must not keep the account from
// being polled.
func TestPollsWhenTheKeyCannotBeChecked(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	srv.Fail("/sapi/v1/account/apiRestrictions", binancetest.Failure{Status: http.StatusNotFound,
		Body: `{"code":-5000,"msg":"Path /sapi/v1/account/apiRestrictions, Method GET is invalid"}`, Times: 1000})
	ctx := context.Background()
	if err := ex.CheckKey(ctx); err == nil || errors.Is(err, exchanges.ErrPermanent) {
		t.Fatalf("CheckKey = %v, want a transient error (the daemon keeps running)", err)
	}
	clk.Advance(15 * time.Second)
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot while the key cannot be checked: %v", err)
	}
}

// TestUnpricedCollateralTransfer: in multi-assets mode a transfer of
// collateral without a USDT perpetual (WBETH) cannot be priced; it is left
// out, and a USDT withdrawal read with it still reaches the drawdown.
func TestUnpricedCollateralTransfer(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMMultiAssets}, nil)
	ctx := context.Background()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	srv.AddIncome(
		binancetest.Income{Type: "TRANSFER", Amount: "1", Asset: "WBETH", Time: clk.Now()},
		binancetest.Income{Type: "TRANSFER", Amount: "-5000", Asset: "USDT", Time: clk.Now()},
	)
	var got []exchanges.Transfer
	for range 3 {
		clk.Advance(5 * time.Minute)
		snap, err := ex.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, snap.Transfers...)
	}
	if len(got) != 1 || got[0].Amount != -5000 || got[0].Pool != "USD" {
		t.Errorf("transfers %+v, want only the 5000 USDT withdrawal", got)
	}
}
