package hyperliquid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// testStreamConf is the stream timing of the tests: short, so that
// silence and reconnects show within a second.
var testStreamConf = streamConf{
	ping: 100 * time.Millisecond, silence: 400 * time.Millisecond, reseedGap: 10 * time.Millisecond,
	backoffMin: 10 * time.Millisecond, backoffMax: 50 * time.Millisecond, backoffReset: time.Minute,
}

// streamAdapter is an adapter of address on srv with stream: true.
func streamAdapter(t *testing.T, srv *hyperliquidtest.Server, address string) *Exchange {
	t.Helper()
	e, err := New(config.Account{Name: "hl-" + address[len(address)-4:], Exchange: Name, Address: address, Endpoint: srv.URL,
		Stream: true, PollInterval: 15 * time.Second, ReconcileInterval: 5 * time.Minute},
		Options{HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	e.sc = testStreamConf
	return e
}

// running is a Stream under way.
type running struct {
	changes chan struct{}
	done    chan error
	stop    context.CancelFunc
}

// startStream runs e.Stream until the test ends.
func startStream(t *testing.T, e *Exchange) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{changes: make(chan struct{}, 1), done: make(chan error, 1), stop: cancel}
	go func() {
		r.done <- e.Stream(ctx, func() {
			select {
			case r.changes <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Stream did not return within 10 s of its cancellation")
		}
	})
	return r
}

// eventually polls cond every 5 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// liveOK reports whether Live is ok now.
func liveOK(e *Exchange) bool {
	var s exchanges.Snapshot
	_, ok := e.Live(&s)
	return ok
}

// streaming starts a streamed adapter, seeds it with a Snapshot and waits
// until its live view is ok and the fake pushes the held coin's ticks.
func streaming(t *testing.T, srv *hyperliquidtest.Server) (*Exchange, *running) {
	t.Helper()
	e := streamAdapter(t, srv, hyperliquidtest.Address)
	r := startStream(t, e)
	eventually(t, "the websocket up", func() bool { return e.StreamStatus().Up })
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a trusted live view", func() bool { return liveOK(e) })
	eventually(t, "an ETH activeAssetCtx subscription", func() bool {
		n, err := srv.PushMark("ETH", 2985.9)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	return e, r
}

// TestStreamMarkTick: a mark pushed over the websocket reprices the
// position at once (notional, PnL, maintenance margin, the isolated
// margin ratio) and crosses the liquidation-distance threshold without a
// single REST read; the served liquidationPx stays.
func TestStreamMarkTick(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e, _ := streaming(t, srv)
	var before exchanges.Snapshot
	eventually(t, "the 2985.9 mark", func() bool {
		_, ok := e.Live(&before)
		return ok && len(before.Positions) == 1 && before.Positions[0].MarkPrice == 2985.9
	})
	reqs := srv.Requests()
	const px = 2900.0 // liquidationPx 2866.26936529: 1.16% away, below a 2% threshold
	if _, err := srv.PushMark("ETH", px); err != nil {
		t.Fatal(err)
	}
	var s exchanges.Snapshot
	eventually(t, "the pushed mark in the live view", func() bool {
		_, ok := e.Live(&s)
		return ok && s.Positions[0].MarkPrice == px
	})
	if n := srv.Requests(); n != reqs {
		t.Errorf("%d REST requests for a mark tick, want none", n-reqs)
	}
	p := s.Positions[0]
	size, entry := 0.0335, 2986.3
	want := map[string][2]float64{
		"notional":          {p.Notional, size * px},
		"unrealized":        {p.UnrealizedPnL, size * (px - entry)},
		"maint margin":      {p.MaintMargin, size * px / 100}, // max leverage 50
		"liquidation price": {p.LiquidationPrice, 2866.26936529},
		"isolated wallet":   {p.IsolatedWallet, 4.967826 + 0.0134}, // rawUsd + szi × entryPx: mark-free
		"equity":            {s.Balances[0].MarginBalance, 13109.482328 + 0.0134 + size*(px-entry)},
	}
	for name, gw := range want {
		if math.Abs(gw[0]-gw[1]) > 1e-9*math.Max(1, math.Abs(gw[1])) {
			t.Errorf("%s = %.12g, want %.12g", name, gw[0], gw[1])
		}
	}
	a := metrics.Compute("hl", Name, nil, &s, nil, time.Now())
	got := a.Positions[0].Metrics.Map()["liq_distance_pct"]
	if w := (px - 2866.26936529) / px * 100; math.Abs(got-w) > 1e-9 || got >= 2 {
		t.Errorf("liq_distance_pct = %v, want %v (below 2)", got, w)
	}
}

// TestStreamDownFallsBack: the websocket stopped makes Live not ok (the
// daemon polls with Snapshot, which works); once it reconnects the view
// is not trusted before a REST read that began after the connection.
func TestStreamDownFallsBack(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e, r := streaming(t, srv)
	srv.StopWS()
	eventually(t, "the stream reported down", func() bool { return !e.StreamStatus().Up })
	if liveOK(e) {
		t.Fatal("Live ok with the websocket down")
	}
	if !strings.Contains(e.StreamStatus().Reason, "reconnecting") {
		t.Errorf("reason %q, want a reconnecting one", e.StreamStatus().Reason)
	}
	select {
	case <-r.changes: // the daemon heard of it
	case <-time.After(10 * time.Second):
		t.Fatal("no change signalled for the stream going down")
	}
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatalf("polling while the stream is down: %v", err)
	}
	if liveOK(e) {
		t.Fatal("Live ok after a Snapshot with the websocket down")
	}
	reads := srv.Count("clearinghouseState")
	srv.StartWS()
	eventually(t, "a trusted view again", func() bool { return liveOK(e) })
	if srv.Count("clearinghouseState") == reads {
		t.Error("the view was trusted after the reconnect without a REST read")
	}
	if st := e.StreamStatus(); !st.Up || st.Reconnects == 0 {
		t.Errorf("status %+v, want up with a reconnect counted", st)
	}
}

// TestReconnectNeedsNewerRead: a read that began before a connection
// opened does not make the view trusted; one that began after does.
func TestReconnectNeedsNewerRead(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e := streamAdapter(t, srv, hyperliquidtest.Address)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.setUp(true, "", false)
	if !liveOK(e) {
		t.Fatal("a seeded view with the stream up is not ok")
	}
	m := e.mapperAt(time.Now())
	epoch := e.live.beginRead(time.Now()) // a read starts…
	e.live.connected()                    // …a connection opens…
	e.live.seed(snap, m, nil, 0, epoch)   // …the read ends
	if liveOK(e) {
		t.Fatal("trusted after a read that began before the connection")
	}
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !liveOK(e) {
		t.Fatal("not trusted after a read that began after the connection")
	}
}

// TestPushRacingRead: a clearinghouseState push that arrives while a read
// is under way and is newer than the read's answer is applied on top of
// it; an older one is not.
func TestPushRacingRead(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e := streamAdapter(t, srv, hyperliquidtest.Address)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.setUp(true, "", false)
	var st clearinghouseState
	if err := json.Unmarshal(hyperliquidtest.Fixture(hyperliquidtest.Isolated), &st); err != nil {
		t.Fatal(err)
	}
	restTime := st.Time
	for _, tc := range []struct {
		name  string
		delta int64 // push time − the read's
		gone  bool  // the position is gone after the seed
	}{{"newer push", 1, true}, {"older push", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			push := st
			push.Time = restTime + tc.delta
			push.AssetPositions = nil // the position closed
			epoch := e.live.beginRead(time.Now())
			e.applyState(&push, time.Now())
			e.live.seed(snap, e.mapperAt(time.Now()), nil, restTime, epoch)
			var s exchanges.Snapshot
			if _, ok := e.Live(&s); !ok {
				t.Fatal("Live not ok")
			}
			if gone := len(s.Positions) == 0; gone != tc.gone {
				t.Errorf("position gone %v, want %v", gone, tc.gone)
			}
		})
	}
}

// TestStreamPositionGoneAndLiquidation: a push without the position
// removes it from the live view, as a Snapshot of the same state reports
// it (same balance, no position); a userEvents liquidation of the address
// is one liquidation event, reported once.
func TestStreamPositionGoneAndLiquidation(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e, _ := streaming(t, srv)
	reqs := srv.Requests()
	if err := srv.RemovePosition("ETH"); err != nil {
		t.Fatal(err)
	}
	if n := srv.PushState(); n != 1 {
		t.Fatalf("state pushed to %d connections, want 1", n)
	}
	var s exchanges.Snapshot
	eventually(t, "the position gone", func() bool {
		_, ok := e.Live(&s)
		return ok && len(s.Positions) == 0
	})
	if n := srv.Requests(); n != reqs {
		t.Errorf("%d REST requests for a push, want none", n-reqs)
	}
	rest, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Positions) != 0 || rest.Balances[0] != s.Balances[0] {
		t.Errorf("live balance %+v, REST %+v (positions %d)", s.Balances[0], rest.Balances[0], len(rest.Positions))
	}

	for range 2 { // the same liquidation twice: one event
		if n := srv.PushLiquidation(hyperliquidtest.Address); n != 1 {
			t.Fatalf("liquidation pushed to %d connections, want 1", n)
		}
	}
	if n := srv.PushLiquidation("0x000000000000000000000000000000000000000b"); n != 0 {
		t.Fatalf("another user's liquidation reached %d connections", n)
	}
	var evs []exchanges.Event
	eventually(t, "the liquidation event", func() bool {
		var s exchanges.Snapshot
		if _, ok := e.Live(&s); ok {
			evs = append(evs, s.Events...)
		}
		return len(evs) > 0
	})
	time.Sleep(50 * time.Millisecond) // a duplicate would have come by now
	var s2 exchanges.Snapshot
	e.Live(&s2)
	evs = append(evs, s2.Events...)
	if len(evs) != 1 || evs[0].Kind != exchanges.Liquidation || !strings.Contains(evs[0].Message, "123456") {
		t.Errorf("events %+v, want one liquidation (lid 123456)", evs)
	}
}

// TestStreamSilence: a connection that stays open but brings nothing (no
// pong to the pings) makes Live not ok within the silence limit, and is
// replaced.
func TestStreamSilence(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e, _ := streaming(t, srv)
	eventually(t, "pings answered", func() bool { return srv.WS().Pings > 0 })
	dials := srv.WS().Dials
	srv.MuteWS(true)
	eventually(t, "the view untrusted", func() bool { return !liveOK(e) })
	eventually(t, "a new connection", func() bool { return srv.WS().Dials > dials })
	srv.MuteWS(false)
	eventually(t, "the view trusted again", func() bool { return liveOK(e) })
}

// TestStreamUserLimit: Hyperliquid serves user subscriptions for 10
// unique addresses per IP: the 11th account's Stream returns an error
// wrapping ErrPermanent at once (the daemon polls it) and its Cost is a
// poll's; a second account on an address already streamed takes no new
// slot.
func TestStreamUserLimit(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	var es []*Exchange
	for i := range 10 {
		e := streamAdapter(t, srv, fmt.Sprintf("0x%040x", i+1))
		startStream(t, e)
		es = append(es, e)
	}
	eventually(t, "10 users subscribed", func() bool { return srv.WS().Users == 10 })
	for _, e := range es {
		if !e.StreamStatus().Up {
			t.Errorf("%s: stream not up", e.name)
		}
	}
	same := streamAdapter(t, srv, fmt.Sprintf("0x%040x", 1))
	startStream(t, same)
	eleventh := streamAdapter(t, srv, fmt.Sprintf("0x%040x", 11))
	streamedCost := eleventh.Cost().Poll
	// One reconciliation every 5 minutes, 3 coins: 22 + metaAndAssetCtxs
	// 20 + userFunding 23 × 5/60 + candles 63 × 5/60 = 49.2.
	if streamedCost != 50 {
		t.Errorf("a streamed account's Cost.Poll %d, want 50 (a reconciliation)", streamedCost)
	}
	err := eleventh.Stream(context.Background(), func() {})
	if !errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), "10 unique addresses per IP") {
		t.Fatalf("11th Stream: %v, want an ErrPermanent naming the limit", err)
	}
	if c, want := eleventh.Cost().Poll, estimate(eleventh.host, 15*time.Second, estimateCoins).Poll; c != want || streamedCost == want {
		t.Errorf("11th account's Cost.Poll %d (%d while it counted as streamed), want a poll's, %d", c, streamedCost, want)
	}
	eventually(t, "the 2nd account on address 1 connected", func() bool { return same.StreamStatus().Up })
	if u := srv.WS().Users; u != 10 {
		t.Errorf("%d users subscribed, want 10", u)
	}
}

// TestLiveAllocs: Live in steady state allocates nothing.
func TestLiveAllocs(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e, _ := streaming(t, srv)
	var s exchanges.Snapshot
	e.Live(&s)
	if n := testing.AllocsPerRun(100, func() { e.Live(&s) }); n != 0 {
		t.Errorf("Live allocates %v times, want 0", n)
	}
}

// TestWSFixtureMapping: the websocket's clearinghouseState fixture as it
// is maps like a REST answer: a cross SAGA short and an isolated SOL short.
func TestWSFixtureMapping(t *testing.T) {
	var f struct {
		Data struct {
			State clearinghouseState `json:"clearinghouseState"`
		} `json:"data"`
	}
	if err := json.Unmarshal(hyperliquidtest.Fixture("ws_clearinghouseState.json"), &f); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(f.Data.State.Time)
	var m mapper
	snap, err := m.build(&f.Data.State, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	a := metrics.Compute("hl", Name, nil, snap, nil, now)
	if got, want := a.Metrics.Map()["margin_ratio"], 43452.918775/3155203.7660619998; math.Abs(got-want) > 1e-9*want {
		t.Errorf("margin_ratio %v, want %v", got, want)
	}
	for _, p := range snap.Positions {
		switch p.Symbol {
		case "SAGA":
			if p.Side != exchanges.Short || p.MarginType != exchanges.Cross || p.LiquidationPrice != 29.713170189 || math.Abs(p.MarkPrice-2527.94682/103774.5) > 1e-15 {
				t.Errorf("SAGA %+v", p)
			}
		case "SOL":
			if p.MarginType != exchanges.Isolated || math.Abs(p.IsolatedWallet-(2542.93+0.21)) > 1e-9 || p.MaintMargin != 25429.33/40 {
				t.Errorf("SOL %+v", p)
			}
		default:
			t.Errorf("unexpected %s", p.Symbol)
		}
	}
}

// TestStreamTimingDefaults: a quiet streamed account is kept current by
// the pongs alone, so its data age runs up to the ping interval plus a
// pong's way: well under the default stale_after, or a slow pong raises a
// false data-stale. The silence limit lets one pong be missed and still
// ends a half-open connection before the data go stale.
func TestStreamTimingDefaults(t *testing.T) {
	sc := defaultStreamConf()
	if sc.ping > config.DefaultStaleAfter/3 {
		t.Errorf("ping every %v: a quiet account's data age nears stale_after %v", sc.ping, config.DefaultStaleAfter)
	}
	if sc.silence < 2*sc.ping || sc.silence >= config.DefaultStaleAfter {
		t.Errorf("silence limit %v: want at least two pings (%v) and under stale_after %v", sc.silence, 2*sc.ping, config.DefaultStaleAfter)
	}
}

// TestStreamPlacedStopSeen: a stop placed after the view was seeded shows
// in the trusted live view without waiting for the reconciliation (a
// missing-stop-loss alert would fire although the stop rests).
func TestStreamPlacedStopSeen(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e, _ := streaming(t, srv)
	if err := srv.AddStop("ETH", "A", 2900, 0.0335); err != nil {
		t.Fatal(err)
	}
	srv.PushState()
	if _, err := srv.PushMark("ETH", 2950); err != nil {
		t.Fatal(err)
	}
	// Frames arrive in order: once the tick shows in a trusted view, the
	// order update before it has been handled.
	var s exchanges.Snapshot
	eventually(t, "the tick in a trusted view", func() bool {
		_, ok := e.Live(&s)
		return ok && len(s.Positions) == 1 && s.Positions[0].MarkPrice == 2950
	})
	if len(s.Positions[0].Stops) == 0 {
		t.Errorf("trusted live view shows no stop although one rests (REST has it)")
	}
}

// TestStreamCancelledStopGone: a stop cancelled after the view was seeded
// is gone from the trusted live view at once, not at the reconciliation.
func TestStreamCancelledStopGone(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	if err := srv.AddStop("ETH", "A", 2900, 0.0335); err != nil {
		t.Fatal(err)
	}
	e, _ := streaming(t, srv)
	var s exchanges.Snapshot
	e.Live(&s)
	if len(s.Positions) != 1 || len(s.Positions[0].Stops) == 0 {
		t.Fatalf("stops %+v before the cancel, want the 2900 stop", s.Positions)
	}
	srv.CancelStops("ETH")
	srv.PushState()
	if _, err := srv.PushMark("ETH", 2950); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the tick in a trusted view", func() bool {
		_, ok := e.Live(&s)
		return ok && len(s.Positions) == 1 && s.Positions[0].MarkPrice == 2950
	})
	if len(s.Positions[0].Stops) != 0 {
		t.Errorf("trusted live view still shows stops %+v after the stop was cancelled (REST has none)", s.Positions[0].Stops)
	}
}

// TestTickOlderThanRacingPush: during a read, a tick and then a newer
// clearinghouseState push arrive; the seed applies the push and not the
// older tick over it.
func TestTickOlderThanRacingPush(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e := streamAdapter(t, srv, hyperliquidtest.Address)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.setUp(true, "", false)
	var push clearinghouseState
	if err := json.Unmarshal(hyperliquidtest.Fixture(hyperliquidtest.Isolated), &push); err != nil {
		t.Fatal(err)
	}
	restTime := push.Time
	push.Time++
	q := &push.AssetPositions[0].Position
	q.PositionValue.V = math.Abs(q.Szi.V) * 3000 // the push's mark: 3000
	base := time.Now()
	epoch := e.live.beginRead(base)
	e.live.applyTick("ETH", tick{mark: 2950, at: base.Add(time.Millisecond)})
	e.applyState(&push, base.Add(2*time.Millisecond))
	e.live.seed(snap, e.mapperAt(base), nil, restTime, epoch)
	var s exchanges.Snapshot
	if _, ok := e.Live(&s); !ok {
		t.Fatal("Live not ok")
	}
	if got := s.Positions[0].MarkPrice; math.Abs(got-3000) > 1e-9 {
		t.Errorf("mark %v after the seed, want the push's 3000 (the tick of 2950 is older)", got)
	}
}

// TestInvalidationDuringRead: a push that makes the view wait for a
// Snapshot (here an order update) while a read is under way is not undone
// by that read: the view stays untrusted and asks for a newer one.
func TestInvalidationDuringRead(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e := streamAdapter(t, srv, hyperliquidtest.Address)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.setUp(true, "", false)
	epoch := e.live.beginRead(time.Now())                    // a read starts…
	e.live.invalidate(time.Now())                            // …an order changes…
	e.live.seed(snap, e.mapperAt(time.Now()), nil, 0, epoch) // …the read ends
	if liveOK(e) {
		t.Fatal("trusted after a read that began before the invalidating push")
	}
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !liveOK(e) {
		t.Fatal("not trusted after a read that began after the invalidating push")
	}
}

// TestStreamLeavesFirstSeedToDaemon: a connection opening before any
// Snapshot sends no REST read of its own (the daemon's first Snapshot
// seeds the view; a second read at once would cost its weight twice).
func TestStreamLeavesFirstSeedToDaemon(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	e := streamAdapter(t, srv, hyperliquidtest.Address)
	startStream(t, e)
	eventually(t, "the websocket up", func() bool { return e.StreamStatus().Up })
	time.Sleep(20 * testStreamConf.reseedGap) // a reseed would have run by now
	if n := srv.Requests(); n != 0 {
		t.Errorf("%d REST requests before the first Snapshot, want none", n)
	}
}
