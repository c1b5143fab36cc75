package binance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// What happens on Binance while the user-data connection is down is never
// pushed again: after a reconnection the view is read again over REST
// before it is trusted. Here the BTCUSDT long is liquidated while the
// connection is down.
func TestReconnectReseeds(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	s.srv.DropUserStreams()
	id, err := s.srv.Liquidate("BTCUSDT", "BOTH") // meanwhile, on Binance
	if err != nil {
		t.Fatal(err)
	}
	var events []exchanges.Event
	s.live(t, "the view after the reconnection", func(snap exchanges.Snapshot) bool {
		events = append(events, snap.Events...)
		if posOf(snap, "BTCUSDT", exchanges.Long) != nil && s.ex.StreamStatus().Reconnects > 0 && s.srv.UserConnections() == 1 {
			// Trusted with the liquidated position only while the read
			// the reconnection asked for is not in yet.
			return false
		}
		return posOf(snap, "BTCUSDT", exchanges.Long) == nil
	})
	want := fmt.Sprintf("main/liquidation/BTCUSDT/long/%d", id)
	if len(events) != 1 || events[0].ID != want {
		t.Errorf("events %+v, want the liquidation %s with the position's disappearance", events, want)
	}
}

// A read raced by updates is brought up to date by replaying them: the
// view is trusted at once with the update's wallet (an account whose
// updates never stop would otherwise never get a read no update raced);
// a position the stream opened during a read that showed none is kept,
// and waits for its own read.
func TestRacedReadReplaysUpdates(t *testing.T) {
	ex, _, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	if _, err := ex.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	ex.live.mu.Lock()
	ex.live.userUp = true
	ex.live.mu.Unlock()
	seedRaced := func(snap *exchanges.Snapshot, during func()) {
		gen := ex.live.reads(+1, clk.Now()) // the read begins …
		during()                            // … the stream applies updates …
		ex.live.mu.Lock()                   // … and the read, older than them, seeds
		ex.live.seedLocked(seedData{snap: snap, hs: ex.live.hs[:0:0], gen: gen})
		ex.replay(gen)
		ex.live.mu.Unlock()
	}
	rest := view(ex)
	seedRaced(&exchanges.Snapshot{Time: clk.Now(), Balances: rest.Balances}, func() {
		ex.applyAccount(moneyUpd{reason: "ORDER", bals: []balanceUpd{{asset: "USDT", wallet: "1234.5", cross: "1234.5"}}}, nil, clk.Now())
	})
	var snap exchanges.Snapshot
	if _, ok := ex.Live(&snap); !ok || poolOf(snap, "USDT").WalletBalance != 1234.5 {
		t.Errorf("after a read raced by a wallet update: ok %v, USDT wallet %v; want ok and 1234.5", ok, poolOf(snap, "USDT").WalletBalance)
	}
	seedRaced(&exchanges.Snapshot{Time: clk.Now(), Balances: rest.Balances}, func() {
		ex.applyAccount(moneyUpd{reason: "ORDER"}, []positionUpd{{symbol: "XRPUSDT", positionSide: "BOTH", amount: "100", entry: "1", upnl: "0", marginType: "cross"}}, clk.Now())
	})
	if ok := func() bool { _, ok := ex.Live(&snap); return ok }(); ok || posOf(view(ex), "XRPUSDT", exchanges.Long) == nil {
		t.Errorf("a position opened during a read that showed none: Live ok %v, held %v; want it kept and the view waiting for its read", ok, posOf(view(ex), "XRPUSDT", exchanges.Long) != nil)
	}
}

// A partial liquidation (the position lives on) is forgotten: when the
// rest is liquidated later and Binance pushes the position at zero before
// the fill, the position still leaves the view only with its liquidation
// event.
func TestPartialThenFullLiquidation(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	s.srv.PushUser(s.srv.OrderUpdate(binancetest.Order{ID: 9001, Type: "LIQUIDATION", Symbol: "BTCUSDT", Side: "SELL", PositionSide: "BOTH", Quantity: "0.1"}, "PARTIALLY_FILLED"))
	s.live(t, "the partial liquidation's event", func(s exchanges.Snapshot) bool { return len(s.Events) == 1 })
	held := posOf(view(s.ex), "BTCUSDT", exchanges.Long)
	s.srv.PushUser(s.srv.AccountUpdate("ORDER", nil, []binancetest.PositionUpdate{{Symbol: "BTCUSDT", PositionSide: "BOTH", Amount: fmt.Sprint(held.Size / 2), Entry: fmt.Sprint(held.EntryPrice)}}))
	s.live(t, "the smaller position", func(s exchanges.Snapshot) bool { return true })
	frame, id, err := s.srv.LiquidationFill("BTCUSDT", "BOTH")
	if err != nil {
		t.Fatal(err)
	}
	s.srv.PushUser(s.srv.AccountUpdate("ORDER", nil, []binancetest.PositionUpdate{{Symbol: "BTCUSDT", PositionSide: "BOTH", Amount: "0"}}))
	var events []exchanges.Event
	s.live(t, "the position gone", func(snap exchanges.Snapshot) bool {
		events = append(events, snap.Events...)
		gone := posOf(snap, "BTCUSDT", exchanges.Long) == nil
		if gone && len(events) == 0 {
			t.Fatalf("the liquidated position (forced order %d) left the live view without its liquidation event: an ordinary close", id)
		}
		return gone
	})
	s.srv.PushUser(frame)
}

// One account's hanging handshake holds no other account's dial, and a
// dial waiting for a connection-attempt token gives up when its ctx ends.
func TestWsDialHonoursCtx(t *testing.T) {
	refillDialTokens()
	hangCtx, release := context.WithCancel(context.Background())
	defer release()
	go wsDial(context.Background(), func() (chan struct{}, chan struct{}, error) { <-hangCtx.Done(); return nil, nil, errors.New("x") })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, _, err := wsDial(context.Background(), func() (chan struct{}, chan struct{}, error) { return nil, nil, nil }); err != nil || time.Since(start) > time.Second {
		t.Errorf("a dial beside a hanging handshake returned %v after %v, want at once", err, time.Since(start))
	}
	wsPace.Drain()
	defer refillDialTokens()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, _, err := wsDial(ctx, func() (chan struct{}, chan struct{}, error) { return nil, nil, nil })
	if d := time.Since(start); d > time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a dial waiting for a token whose ctx ended after 100ms returned %v after %v, want its ctx error at once", err, d)
	}
}

// An account update whose numbers cannot be read (Binance sending
// garbage) is not applied as zeros: the view waits for a REST read and
// comes back with Binance's own figures.
func TestUnreadableUpdateWaitsForREST(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	want := poolOf(view(s.ex), "USDT").WalletBalance
	reads := s.srv.Count("/fapi/v2/account")
	s.srv.PushUser(s.srv.AccountUpdate("ORDER", []binancetest.Balance{{Asset: "USDT", Wallet: "not-a-number", CrossWallet: "1"}}, nil))
	s.wait(t, "the REST read the unreadable update asks for", func() bool { return s.srv.Count("/fapi/v2/account") > reads })
	s.live(t, "the view back", func(snap exchanges.Snapshot) bool {
		if w := poolOf(snap, "USDT").WalletBalance; w != want {
			t.Fatalf("trusted view's USDT wallet %v after an unreadable update, want Binance's %v", w, want)
		}
		return true
	})
}
