package binance

import (
	"net/http"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// duringRead runs f once while the next read requests path, then serves
// path as usual.
func duringRead(srv *binancetest.Server, path string, f func()) {
	srv.Handle(path, func(w http.ResponseWriter, r *http.Request) {
		srv.Handle(path, nil)
		f()
		srv.Handler().ServeHTTP(w, r)
	})
}

// TestUnappliableUpdateDuringReadRereads: an update the view cannot apply
// (a trailing stop's ALGO_UPDATE, a number it cannot read, a switch of
// multi-assets mode) arrives while a reconciliation is under way, after
// the read took what it needed: the read's seed must not make the view
// trusted again as if it had the update.
func TestUnappliableUpdateDuringReadRereads(t *testing.T) {
	for _, tc := range []struct {
		name, path, symbol string
	}{
		{"trailing stop placed after the orders were taken from the view", "/fapi/v1/premiumIndex", "BTCUSDT"},
		{"multi-assets mode switched after the account read", "/fapi/v3/positionRisk", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
			ex.live.mu.Lock()
			ex.live.userUp, ex.live.userEpoch = true, 1 // the user-data stream is up
			ex.live.mu.Unlock()
			if _, err := ex.Snapshot(t.Context()); err != nil {
				t.Fatal(err)
			}
			var snap exchanges.Snapshot
			if _, ok := ex.Live(&snap); !ok {
				t.Fatal("not ok after the seed")
			}
			duringRead(srv, tc.path, func() { ex.invalidate(tc.symbol, clk.Now()) })
			if _, err := ex.Snapshot(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, ok := ex.Live(&snap); ok {
				t.Errorf("Live ok after a read raced by an update the view could not apply (symbol %q): the view is trusted without it", tc.symbol)
			}
		})
	}
}

// TestFirstSeedReplaysRacingUpdates: the streams connect before the
// read that seeds the view (Binance's order) precisely so that updates
// pushed during that read are not lost; those the stream applies while
// the first read is under way must reach the view (replayed or not
// trusted), as they do for every later read.
func TestFirstSeedReplaysRacingUpdates(t *testing.T) {
	for _, tc := range []struct {
		name string
		upd  func(ex *Exchange, clk *clock)
		bad  func(snap exchanges.Snapshot) bool
	}{
		{"wallet", func(ex *Exchange, clk *clock) {
			ex.applyAccount(moneyUpd{reason: "ORDER", bals: []balanceUpd{{asset: "USDT", wallet: "1234.5", cross: "1234.5"}}}, nil, clk.Now())
		}, func(snap exchanges.Snapshot) bool { return poolOf(snap, "USDT").WalletBalance != 1234.5 }},
		{"position closed", func(ex *Exchange, clk *clock) {
			ex.applyAccount(moneyUpd{reason: "ORDER"}, []positionUpd{{symbol: "BTCUSDT", positionSide: "BOTH", amount: "0", entry: "0", upnl: "0", marginType: "cross"}}, clk.Now())
		}, func(snap exchanges.Snapshot) bool { return posOf(snap, "BTCUSDT", exchanges.Long) != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
			ex.live.mu.Lock()
			ex.live.userUp, ex.live.userEpoch = true, 1 // connected before the seeding read
			ex.live.mu.Unlock()
			duringRead(srv, "/fapi/v1/premiumIndex", func() { tc.upd(ex, clk) })
			if _, err := ex.Snapshot(t.Context()); err != nil {
				t.Fatal(err)
			}
			var snap exchanges.Snapshot
			if _, ok := ex.Live(&snap); ok && tc.bad(snap) {
				t.Errorf("the first seed is trusted without the %s update the stream applied during its read", tc.name)
			}
		})
	}
}

// TestMarkTickDuringReadKept: a mark tick received while a
// read is under way is newer than the read's marks; the seed puts the
// read's back until the next tick.
func TestMarkTickDuringReadKept(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ex.live.mu.Lock()
	ex.live.userUp, ex.live.userEpoch = true, 1
	ex.live.mu.Unlock()
	if _, err := ex.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := posOf(view(ex), "BTCUSDT", exchanges.Long).MarkPrice
	ticked := false
	duringRead(srv, "/fapi/v1/premiumIndex", func() { // positionRisk, whose marks the read keeps, has answered
		ex.markTick("BTCUSDT", old*0.9, 0.0001, clk.Now().Add(time.Hour), clk.Now())
		ticked = true
	})
	if _, err := ex.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !ticked {
		t.Fatal("no tick during the read")
	}
	var snap exchanges.Snapshot
	if _, ok := ex.Live(&snap); ok {
		if m := posOf(snap, "BTCUSDT", exchanges.Long).MarkPrice; m != old*0.9 {
			t.Errorf("trusted view's BTCUSDT mark %v after the seed, want the newer tick's %v", m, old*0.9)
		}
	}
}

// TestLeverageDuringReadKept: a leverage change (ACCOUNT_CONFIG_UPDATE)
// that arrives while a read is under way is applied again on top of it.
func TestLeverageDuringReadKept(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ex.live.mu.Lock()
	ex.live.userUp, ex.live.userEpoch = true, 1
	ex.live.mu.Unlock()
	if _, err := ex.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := posOf(view(ex), "BTCUSDT", exchanges.Long).Leverage + 7
	duringRead(srv, "/fapi/v1/premiumIndex", func() {
		if !ex.setLeverage("BTCUSDT", want, clk.Now()) {
			t.Error("setLeverage hit nothing")
		}
	})
	if _, err := ex.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	var snap exchanges.Snapshot
	if _, ok := ex.Live(&snap); ok {
		if l := posOf(snap, "BTCUSDT", exchanges.Long).Leverage; l != want {
			t.Errorf("trusted view's BTCUSDT leverage %v after the seed, want %v", l, want)
		}
	}
}
