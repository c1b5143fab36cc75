package binance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// usdtWallet is an ACCOUNT_UPDATE that moves only the USDT wallet, to
// see that a connection still applies what it gets.
func usdtWallet(srv *binancetest.Server, wallet string) string {
	return srv.AccountUpdate("FUNDING_FEE", []binancetest.Balance{{Asset: "USDT", Wallet: wallet, CrossWallet: wallet}}, nil)
}

func walletIs(asset string, w float64) func(exchanges.Snapshot) bool {
	return func(s exchanges.Snapshot) bool {
		b := poolOf(s, asset)
		return b != nil && b.WalletBalance == w
	}
}

// The fixture's ACCOUNT_UPDATE (hedge mode: BTCUSDT LONG 20 and SHORT 10,
// both isolated; USDT and BUSD wallets) on the hedge account (BTCUSDT LONG
// 0.01 and SHORT 0.02, cross, at 21000; COMPUSDT SHORT 1).
func TestAccountUpdateFixture(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMHedge}, func(c *streamConf) { c.reseedGap = time.Hour })
	// The Snapshot the size changes ask for fails once, and the next try
	// is an hour away: the view keeps what the update gave.
	s.srv.Fail("/fapi/v2/account", binancetest.ServerError(500))
	s.srv.PushUser(binancetest.Fixture("ws_ACCOUNT_UPDATE.json"))
	s.wait(t, "the update", func() bool { return poolOf(view(s.ex), "USDT").WalletBalance == 122624.12345678 })
	s.wait(t, "the Snapshot it asks for to fail", func() bool { return s.srv.Count("/fapi/v2/account") == 2 })
	var snap exchanges.Snapshot
	if _, ok := s.ex.Live(&snap); ok {
		t.Error("Live ok while the positions whose size changed wait for a Snapshot")
	}
	got := view(s.ex)
	long, short := posOf(got, "BTCUSDT", exchanges.Long), posOf(got, "BTCUSDT", exchanges.Short)
	if long == nil || short == nil || posOf(got, "COMPUSDT", exchanges.Short) == nil || len(got.Positions) != 3 {
		t.Fatalf("positions %+v", got.Positions)
	}
	// Size, entry, PnL, margin type and isolated wallet as given; notional
	// at the mark (21000); maintenance margin from the brackets (50000 to
	// 500000: 0.5% − 50).
	checkFields(t, "LONG", field{"Size", long.Size, 20}, field{"EntryPrice", long.EntryPrice, 6563.665}, field{"UnrealizedPnL", long.UnrealizedPnL, 2850.212},
		field{"IsolatedWallet", long.IsolatedWallet, 13200.70726908}, field{"Notional", long.Notional, 420000}, field{"MaintMargin", long.MaintMargin, 2050})
	checkFields(t, "SHORT", field{"Size", short.Size, 10}, field{"EntryPrice", short.EntryPrice, 6563.86}, field{"UnrealizedPnL", short.UnrealizedPnL, -1423.156},
		field{"IsolatedWallet", short.IsolatedWallet, 6570.42511771}, field{"Notional", short.Notional, 210000}, field{"MaintMargin", short.MaintMargin, 1000})
	if long.MarginType != exchanges.Isolated || short.MarginType != exchanges.Isolated {
		t.Errorf("margin types %s, %s; want isolated", long.MarginType, short.MarginType)
	}
	// USDT: wallet and cross wallet as given; PnL 2850.212 − 1423.156 +
	// 21.20817624 (COMP); margin balance wallet + PnL; maintenance
	// 2050 + 1000 + 0.49720233; the cross figures are COMP's alone.
	usdt := poolOf(got, "USDT")
	checkFields(t, "USDT", field{"WalletBalance", usdt.WalletBalance, 122624.12345678}, field{"CrossWalletBalance", usdt.CrossWalletBalance, 100.12345678},
		field{"UnrealizedPnL", usdt.UnrealizedPnL, 1448.26417624}, field{"MarginBalance", usdt.MarginBalance, 124072.38763302},
		field{"MaintMargin", usdt.MaintMargin, 3050.49720233}, field{"CrossUnPnL", usdt.CrossUnPnL, 21.20817624}, field{"CrossMaintMargin", usdt.CrossMaintMargin, 0.49720233})
	// BUSD had no pool: now it has its wallet.
	if b := poolOf(got, "BUSD"); b == nil || b.WalletBalance != 1 || b.MarginBalance != 1 {
		t.Errorf("BUSD pool %+v, want wallet and margin balance 1", b)
	}
	// The next Snapshot reseeds the view from REST and Live is ok again.
	if _, err := s.ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap2 := s.live(t, "the view reseeded", func(exchanges.Snapshot) bool { return true })
	if p := posOf(snap2, "BTCUSDT", exchanges.Long); p == nil || p.Size != 0.01 {
		t.Errorf("after the Snapshot: BTCUSDT long %+v, want REST's 0.01", p)
	}
}

// A position change the view cannot complete runs a Snapshot by itself,
// and the view is ok once it is in.
func TestReseed(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	before := s.srv.Count("/fapi/v3/positionRisk")
	s.srv.PushUser(s.srv.AccountUpdate("ORDER", nil, []binancetest.PositionUpdate{
		{Symbol: "BTCUSDT", PositionSide: "BOTH", Amount: "0.600", Entry: "60100", UnrealizedPnL: "540", MarginType: "cross"}}))
	s.wait(t, "a Snapshot the stream runs itself", func() bool { return s.srv.Count("/fapi/v3/positionRisk") > before })
	// REST still says 0.5: the reseed restores it, ok.
	s.live(t, "the reseeded view", func(snap exchanges.Snapshot) bool {
		p := posOf(snap, "BTCUSDT", exchanges.Long)
		return p != nil && p.Size == 0.5
	})
}

// MARGIN_CALL raises one margin_call event, however often it arrives
// (the two connections of a forced reconnect both deliver it).
func TestMarginCall(t *testing.T) {
	for _, c := range []struct {
		exchange string
		account  binancetest.Account
		symbol   string
		maint    string
	}{
		{USDM, binancetest.USDMOneWay, "ETHUSDT", "1.614445"},
		{COINM, binancetest.COINM, "BTCUSD_200925", "1.614445"},
	} {
		t.Run(c.exchange, func(t *testing.T) {
			s := startStream(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			frame := s.srv.MarginCall()
			s.srv.PushUser(frame)
			s.srv.PushUser(frame)
			snap := s.live(t, "the margin call", func(s exchanges.Snapshot) bool { return len(s.Events) > 0 })
			ev := snap.Events[0]
			wantID := fmt.Sprintf("main/margin_call/%d", time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC).UnixMilli())
			if len(snap.Events) != 1 || ev.Kind != exchanges.MarginCall || ev.ID != wantID || ev.Symbol != c.symbol || ev.Side != exchanges.Long ||
				!strings.Contains(ev.Message, "maintenance margin "+c.maint) {
				t.Fatalf("events %+v, want one margin_call %s on %s long naming its maintenance margin", snap.Events, wantID, c.symbol)
			}
			// The duplicate never comes out.
			wallet := "USDT"
			if c.exchange == COINM {
				wallet = "BTC"
			}
			s.srv.PushUser(s.srv.AccountUpdate("DEPOSIT", []binancetest.Balance{{Asset: wallet, Wallet: "7", CrossWallet: "7"}}, nil))
			snap = s.live(t, "a later update", walletIs(wallet, 7))
			if len(snap.Events) != 0 {
				t.Errorf("events again: %+v", snap.Events)
			}
		})
	}
}

// A liquidation fill raises one liquidation event with the ID REST gives
// that forced order; the reconciling Snapshot, which sees the position
// gone and asks forceOrders, does not report it again.
func TestLiquidationFill(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	frame, id, err := s.srv.LiquidationFill("BTCUSDT", "BOTH")
	if err != nil {
		t.Fatal(err)
	}
	s.srv.PushUser(frame)
	s.srv.PushUser(frame)
	s.srv.PushUser(s.srv.AccountUpdate("ORDER", nil, []binancetest.PositionUpdate{{Symbol: "BTCUSDT", PositionSide: "BOTH", Amount: "0"}}))
	// Each ok Live hands its events out once: collect them. One
	// connection delivers in order, so the duplicate fill is in before the
	// position is gone.
	var events []exchanges.Event
	s.live(t, "the liquidation and the position gone", func(s exchanges.Snapshot) bool {
		events = append(events, s.Events...)
		return len(events) > 0 && posOf(s, "BTCUSDT", exchanges.Long) == nil
	})
	want := fmt.Sprintf("main/liquidation/BTCUSDT/long/%d", id)
	if len(events) != 1 || events[0].ID != want || events[0].Kind != exchanges.Liquidation ||
		events[0].Symbol != "BTCUSDT" || events[0].Side != exchanges.Long {
		t.Fatalf("events %+v, want one liquidation %s", events, want)
	}
	asked := s.srv.Count("/fapi/v1/forceOrders")
	rest, err := s.ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.Count("/fapi/v1/forceOrders") == asked {
		t.Fatal("the Snapshot did not ask forceOrders about the disappearance: the test proves nothing")
	}
	for _, ev := range rest.Events {
		if ev.Kind == exchanges.Liquidation {
			t.Errorf("the Snapshot reports the liquidation again: %+v", ev)
		}
	}
}

// Without the stream's report, the Snapshot reports the same ID: the two
// paths agree.
func TestLiquidationIDAgrees(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, id, err := srv.LiquidationFill("BTCUSDT", "BOTH")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("main/liquidation/BTCUSDT/long/%d", id)
	if len(snap.Events) != 1 || snap.Events[0].ID != want {
		t.Errorf("events %+v, want the liquidation %s", snap.Events, want)
	}
}

// Stops appear and disappear with ORDER_TRADE_UPDATE and ALGO_UPDATE.
func TestStopUpdates(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	stops := func(symbol string, side exchanges.Side) []exchanges.Stop {
		return posOf(view(s.ex), symbol, side).Stops
	}
	if len(stops("ETHUSDT", exchanges.Short)) != 1 || len(stops("BTCUSDT", exchanges.Long)) != 1 || len(stops("SOLUSDT", exchanges.Long)) != 0 {
		t.Fatalf("seeded stops: ETH %v, BTC %v, SOL %v", stops("ETHUSDT", exchanges.Short), stops("BTCUSDT", exchanges.Long), stops("SOLUSDT", exchanges.Long))
	}
	steps := []struct {
		name   string
		frame  string
		symbol string
		side   exchanges.Side
		want   []exchanges.Stop
	}{
		{"regular stop placed", s.srv.OrderUpdate(binancetest.Order{ID: 555, Type: "STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "120", Quantity: "40", ReduceOnly: true}, "NEW"),
			"SOLUSDT", exchanges.Long, []exchanges.Stop{{Trigger: 120, Quantity: 40}}},
		{"algo stop placed", s.srv.AlgoUpdate(binancetest.Order{ID: 777, Type: "STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "110", ClosePosition: true}, "NEW"),
			"SOLUSDT", exchanges.Long, []exchanges.Stop{{Trigger: 120, Quantity: 40}, {Trigger: 110, ClosePosition: true}}},
		{"a take-profit is no stop", s.srv.AlgoUpdate(binancetest.Order{ID: 778, Type: "TAKE_PROFIT", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "200", ReduceOnly: true}, "NEW"),
			"SOLUSDT", exchanges.Long, []exchanges.Stop{{Trigger: 120, Quantity: 40}, {Trigger: 110, ClosePosition: true}}},
		{"regular stop cancelled", s.srv.OrderUpdate(binancetest.Order{ID: 555, Type: "STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "120", Quantity: "40", ReduceOnly: true}, "CANCELED"),
			"SOLUSDT", exchanges.Long, []exchanges.Stop{{Trigger: 110, ClosePosition: true}}},
		{"seeded regular stop cancelled", s.srv.OrderUpdate(binancetest.Order{ID: 1917641, Type: "STOP", Symbol: "ETHUSDT", Side: "BUY", PositionSide: "BOTH", Trigger: "3400", Quantity: "1", ReduceOnly: true}, "CANCELED"),
			"ETHUSDT", exchanges.Short, nil},
		{"seeded algo stop triggered", s.srv.AlgoUpdate(binancetest.Order{ID: 2148627, Type: "STOP_MARKET", Symbol: "BTCUSDT", Side: "SELL", PositionSide: "BOTH", Trigger: "55000", ClosePosition: true}, "TRIGGERED"),
			"BTCUSDT", exchanges.Long, nil},
		{"the fixture's ALGO_UPDATE (another symbol's take-profit)", binancetest.Fixture("ws_ALGO_UPDATE.json"),
			"SOLUSDT", exchanges.Long, []exchanges.Stop{{Trigger: 110, ClosePosition: true}}},
	}
	for _, st := range steps {
		s.srv.PushUser(st.frame)
		s.wait(t, st.name, func() bool {
			got := stops(st.symbol, st.side)
			if len(got) != len(st.want) {
				return false
			}
			for i := range got {
				if got[i] != st.want[i] {
					return false
				}
			}
			return true
		})
	}
	if n := s.ex.StreamStatus().Reconnects; n != 0 {
		t.Errorf("%d reconnects", n)
	}
}

// A dropped connection comes back by itself and applies what follows.
func TestReconnectAfterDrop(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	s.srv.DropUserStreams()
	s.wait(t, "the reconnection", func() bool {
		return s.ex.StreamStatus().Reconnects == 1 && s.ex.StreamStatus().Up && s.srv.UserConnections() == 1
	})
	s.pushUntil(t, "an update on the new connection", usdtWallet(s.srv, "51000"), walletIs("USDT", 51000))
}

// listenKeyExpired: a new key and a new connection.
func TestListenKeyExpired(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	old := s.srv.ListenKey()
	s.srv.ExpireListenKey()
	s.wait(t, "a new key and connection", func() bool {
		created, _ := s.srv.ListenKeys()
		return created == 2 && s.srv.ListenKey() != old && s.ex.StreamStatus().Up && s.srv.UserConnections() == 1
	})
	s.pushUntil(t, "an update on the new key", usdtWallet(s.srv, "52000"), walletIs("USDT", 52000))
}

// A keepalive answered -1125: a new key and a new connection. Keepalives
// that succeed keep the key.
func TestKeepaliveLostKey(t *testing.T) {
	s := startStream(t, COINM, binancetest.Options{Account: binancetest.COINM}, func(c *streamConf) { c.keepEvery = 50 * time.Millisecond })
	s.wait(t, "keepalives", func() bool { _, kept := s.srv.ListenKeys(); return kept >= 2 })
	if created, _ := s.srv.ListenKeys(); created != 1 {
		t.Fatalf("%d keys created while keepalives succeed", created)
	}
	s.srv.LapseListenKey()
	s.wait(t, "a new key and connection", func() bool {
		created, _ := s.srv.ListenKeys()
		return created == 2 && s.ex.StreamStatus().Up && s.srv.UserConnections() == 1 && s.srv.ListenKey() != ""
	})
	s.pushUntil(t, "an update on the new key", s.srv.AccountUpdate("DEPOSIT", []binancetest.Balance{{Asset: "BTC", Wallet: "0.75", CrossWallet: "0.75"}}, nil), walletIs("BTC", 0.75))
	// Listen-key requests weigh 1 each, in the fake's count like any other.
	if n, w := s.srv.Count("/dapi/v1/listenKey"), s.srv.Weights()["/dapi/v1/listenKey"]; n < 4 || w != n {
		t.Errorf("%d listen-key requests weighing %d, want at least 4 weighing 1 each", n, w)
	}
}

// The server's pings are answered and keep the connection.
func TestServerPings(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, func(a *config.Account) {
		a.StreamEndpoint = "ws" + strings.TrimPrefix(a.Endpoint, "http")
	})
	srv.SetUserPing(10 * time.Millisecond)
	refillDialTokens()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ex.Stream(ctx, func() {}) }()
	s := &streamed{ex: ex, srv: srv, cancel: cancel, errc: errc, changes: make(chan struct{}, 1)}
	t.Cleanup(s.stop(t))
	s.wait(t, "answered pings", func() bool { return srv.UserPings() >= 5 })
	if st := ex.StreamStatus(); !st.Up || st.Reconnects != 0 || srv.UserConnections() != 1 {
		t.Errorf("status %+v, %d connections after the pings", st, srv.UserConnections())
	}
}

// A malformed frame and an unknown event type are skipped; the connection
// stays and the next event is applied.
func TestBadFramesKeepConnection(t *testing.T) {
	for _, c := range []struct {
		exchange string
		account  binancetest.Account
		asset    string
	}{
		{USDM, binancetest.USDMOneWay, "USDT"},
		{COINM, binancetest.COINM, "BTC"},
	} {
		t.Run(c.exchange, func(t *testing.T) {
			s := startStream(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			s.srv.PushUser(`{"e":"ACCOUNT_UPDATE","E":1564745798939,"a":{"B":[{"a":"USDT","wb":"12`)
			s.srv.PushUser(`{"e":"STRATEGY_UPDATE","E":1564745798939,"T":1564745798938,"su":{"si":8000,"st":"GRID"}}`)
			s.srv.PushUser(`not json at all`)
			s.srv.PushUser(s.srv.AccountUpdate("DEPOSIT", []binancetest.Balance{{Asset: c.asset, Wallet: "3", CrossWallet: "3"}}, nil))
			s.live(t, "the update after the bad frames", walletIs(c.asset, 3))
			if st := s.ex.StreamStatus(); st.Reconnects != 0 || !st.Up || s.srv.UserConnections() != 1 {
				t.Errorf("status %+v with %d connections: the bad frames cost the connection", st, s.srv.UserConnections())
			}
		})
	}
}

// The forced reconnect replaces the connection (counted) and events keep
// arriving; only one connection is left open.
func TestForcedReconnect(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, func(c *streamConf) { c.forceEvery = 200 * time.Millisecond })
	s.wait(t, "two forced reconnects", func() bool { return s.ex.StreamStatus().Reconnects >= 2 })
	s.wait(t, "one connection", func() bool { return s.srv.UserConnections() == 1 })
	s.pushUntil(t, "an update after the forced reconnects", usdtWallet(s.srv, "53000"), walletIs("USDT", 53000))
	if created, _ := s.srv.ListenKeys(); created != 1 {
		t.Errorf("%d listen keys created: a forced reconnect keeps the key", created)
	}
}

// A refused API key: Stream returns an error wrapping ErrPermanent at once.
func TestStreamRefusedKey(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	srv.Fail("/fapi/v1/listenKey", binancetest.InvalidKey())
	ctx, cancel := context.WithTimeout(context.Background(), streamDeadline)
	defer cancel()
	err := ex.Stream(ctx, func() {})
	if err == nil || !strings.Contains(err.Error(), "rejected the API key") {
		t.Fatalf("Stream: %v, want the key refusal", err)
	}
	noSecret(t, err.Error())
}

// Close stops a running Stream, which closes its listen key.
func TestCloseStopsStream(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	s.ex.Close()
	select {
	case err := <-s.errc:
		if err != nil {
			t.Errorf("Stream: %v", err)
		}
		s.errc <- nil // for the cleanup
	case <-time.After(streamDeadline):
		t.Fatal("Stream still running after Close")
	}
	if s.srv.ListenKey() != "" {
		t.Error("the listen key was not closed")
	}
	if st := s.ex.StreamStatus(); st.Up {
		t.Errorf("status %+v after Close", st)
	}
}

// A position the user-data stream reports at zero before the forced
// order's own fill arrives is not taken for an ordinary close: the view
// waits for the Snapshot, whose forced-order check names the liquidation,
// and the position leaves the view only together with its liquidation
// event. The fill that follows adds nothing.
func TestCloseBeforeFillIsNoOrdinaryClose(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	frame, id, err := s.srv.LiquidationFill("BTCUSDT", "BOTH")
	if err != nil {
		t.Fatal(err)
	}
	s.srv.PushUser(s.srv.AccountUpdate("ORDER", nil, []binancetest.PositionUpdate{{Symbol: "BTCUSDT", PositionSide: "BOTH", Amount: "0"}}))
	var events []exchanges.Event
	s.live(t, "the position gone", func(s exchanges.Snapshot) bool {
		events = append(events, s.Events...)
		gone := posOf(s, "BTCUSDT", exchanges.Long) == nil
		if gone && len(events) == 0 {
			t.Fatal("the position left the live view without its liquidation event: the daemon would call it an ordinary close")
		}
		return gone
	})
	want := fmt.Sprintf("main/liquidation/BTCUSDT/long/%d", id)
	if len(events) != 1 || events[0].ID != want {
		t.Fatalf("events %+v, want the liquidation %s", events, want)
	}
	s.srv.PushUser(frame)
	s.srv.PushUser(s.srv.MarginCall())
	s.live(t, "the next event", func(s exchanges.Snapshot) bool {
		for _, ev := range s.Events {
			if ev.Kind == exchanges.Liquidation {
				t.Fatalf("the late fill reported the liquidation again: %+v", ev)
			}
			if ev.Kind == exchanges.MarginCall {
				return true
			}
		}
		return false
	})
}
