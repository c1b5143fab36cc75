package bybit

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// fastConf is the streams' timing in tests: seconds become tens of ms.
var fastConf = streamConf{ping: 200 * time.Millisecond, silence: 3 * time.Second, reseedGap: 20 * time.Millisecond,
	backoffMin: 20 * time.Millisecond, backoffMax: 100 * time.Millisecond, stable: time.Second}

func init() { hubConf = fastConf }

// streamed starts Stream on a fake with the Hedge account; it returns when
// the streams are up and a Snapshot has seeded the view.
func streamed(t *testing.T, secret string) (*bybittest.Server, *Exchange, chan error) {
	t.Helper()
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	cfg := account(srv.URL, false)
	cfg.StreamEndpoint = "ws" + strings.TrimPrefix(srv.URL, "http")
	cfg.Stream = true
	if secret != "" {
		cfg.APISecret = config.Secret(secret)
	}
	e, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.sc = fastConf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Stream(ctx, func() {}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Stream did not return")
		}
		e.Close()
		forget(srv.URL)
		if h := tickerHubFor(e.wsBase, nil); h != nil {
			h.Close()
		}
	})
	if secret != "" {
		return srv, e, done
	}
	waitFor(t, "private stream up", func() bool { return e.StreamStatus().Up })
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tickers subscribed", func() bool { return srv.Subscribers("tickers.BTCUSDT") == 1 })
	waitFor(t, "live view trusted", func() bool { var s exchanges.Snapshot; _, ok := e.Live(&s); return ok })
	return srv, e, done
}

// waitFor polls cond for up to 10 s (a generous bound, not a latency).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}

func position(s *exchanges.Snapshot, symbol string, side exchanges.Side) *exchanges.Position {
	for i := range s.Positions {
		if s.Positions[i].Symbol == symbol && s.Positions[i].Side == side {
			return &s.Positions[i]
		}
	}
	return nil
}

// TestStreamTickCrossesWithoutREST: a mark pushed on the public stream
// reprices the BTCUSDT legs and the pool, and liq_distance_pct crosses
// the 15% threshold with no REST request.
func TestStreamTickCrossesWithoutREST(t *testing.T) {
	srv, e, _ := streamed(t, "")
	srv.ResetCounts()
	if n := srv.PushTicker("BTCUSDT", map[string]any{"markPrice": "45000"}); n != 1 {
		t.Fatalf("pushed to %d connections", n)
	}
	var s exchanges.Snapshot
	waitFor(t, "tick applied", func() bool {
		e.Live(&s)
		p := position(&s, "BTCUSDT", exchanges.Long)
		return p != nil && p.MarkPrice == 45000
	})
	if _, ok := e.Live(&s); !ok {
		t.Fatal("view not trusted after a tick")
	}
	long, short := position(&s, "BTCUSDT", exchanges.Long), position(&s, "BTCUSDT", exchanges.Short)
	check := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("long notional", long.Notional, 0.5*45000)
	check("long PnL", long.UnrealizedPnL, 0.5*(45000-60000))
	check("short PnL", short.UnrealizedPnL, -0.2*(45000-62000))
	// The pool moves by the legs' change: 200 − (500 + 200) + (−7500 + 3400).
	check("pool PnL", s.Balances[0].UnrealizedPnL, 200-700-7500+3400)
	check("equity", s.Balances[0].MarginBalance, 10250-700-7500+3400)
	a := metrics.Compute("bb", Name, nil, &s, nil, time.Now())
	for _, p := range a.Positions {
		if p.Symbol == "BTCUSDT" && p.Side == exchanges.Long {
			d, _ := p.Metrics.Get(metrics.LiqDistancePct)
			if !(d < 15) {
				t.Errorf("liq_distance_pct %v, want below the 15%% threshold", d)
			}
		}
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("%d REST requests for a tick: %v", n, srv.Counts())
	}
}

// TestStreamTickerDeltaMerge: a delta carrying only fundingRate keeps the
// mark of the snapshot; one carrying only markPrice keeps the rate.
func TestStreamTickerDeltaMerge(t *testing.T) {
	srv, e, _ := streamed(t, "")
	srv.PushTicker("BTCUSDT", map[string]any{"fundingRate": "0.0005"})
	var s exchanges.Snapshot
	waitFor(t, "rate applied", func() bool {
		e.Live(&s)
		return position(&s, "BTCUSDT", exchanges.Long).FundingRate == 0.0005
	})
	if m := position(&s, "BTCUSDT", exchanges.Long).MarkPrice; m != 61000 {
		t.Errorf("mark %v after a rate-only delta, want the snapshot's 61000", m)
	}
	srv.PushTicker("BTCUSDT", map[string]any{"markPrice": "60000"})
	waitFor(t, "mark applied", func() bool {
		e.Live(&s)
		return position(&s, "BTCUSDT", exchanges.Long).MarkPrice == 60000
	})
	if r := position(&s, "BTCUSDT", exchanges.Long).FundingRate; r != 0.0005 {
		t.Errorf("rate %v after a mark-only delta, want 0.0005", r)
	}
}

// TestStreamBadAuth: a key the private stream refuses ends Stream with an
// ErrPermanent error (the daemon keeps polling).
func TestStreamBadAuth(t *testing.T) {
	_, _, done := streamed(t, "not-the-secret")
	select {
	case err := <-done:
		if !errors.Is(err, exchanges.ErrPermanent) {
			t.Fatalf("Stream: %v, want ErrPermanent", err)
		}
		if strings.Contains(err.Error(), "not-the-secret") {
			t.Errorf("the secret leaked: %v", err)
		}
		done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Stream did not return on a refused key")
	}
}

// TestStreamDownAndReconnect: with the streams refused, Live is not ok; once
// they are back, the view waits for a REST read (here failing at first)
// before it is trusted again.
func TestStreamDownAndReconnect(t *testing.T) {
	srv, e, _ := streamed(t, "")
	var s exchanges.Snapshot
	srv.RefuseStreams(true)
	waitFor(t, "view untrusted while down", func() bool { _, ok := e.Live(&s); return !ok })
	if st := e.StreamStatus(); st.Up || st.Reason == "" {
		t.Errorf("status %+v while down", st)
	}
	// A REST read that fails keeps the reconnected view untrusted.
	var saved any
	srv.Edit("/v5/account/wallet-balance", func(b map[string]any) { saved, b["result"] = b["result"], map[string]any{"list": []any{}} })
	before := srv.Count("/v5/account/wallet-balance")
	srv.RefuseStreams(false)
	waitFor(t, "reconnected", func() bool { return e.StreamStatus().Up })
	waitFor(t, "a reseed tried", func() bool { return srv.Count("/v5/account/wallet-balance") > before })
	if _, ok := e.Live(&s); ok {
		t.Fatal("a reconnected view is trusted before a REST read reseeded it")
	}
	if e.StreamStatus().Reconnects == 0 {
		t.Error("no reconnect counted")
	}
	srv.Edit("/v5/account/wallet-balance", func(b map[string]any) { b["result"] = saved }) // the reseed succeeds
	waitFor(t, "trusted after the reseed", func() bool { _, ok := e.Live(&s); return ok })
}

// TestStreamSilence: a connection that stays open but answers no ping makes
// the view untrusted within the heartbeat.
func TestStreamSilence(t *testing.T) {
	srv, e, _ := streamed(t, "")
	srv.MuteStreams(true)
	var s exchanges.Snapshot
	waitFor(t, "untrusted when silent", func() bool { _, ok := e.Live(&s); return !ok })
	srv.MuteStreams(false)
	waitFor(t, "trusted again", func() bool { _, ok := e.Live(&s); return ok })
}

// TestStreamPrivateRows: wallet, position (a hedge leg closing with size 0)
// and order rows apply through the REST mapping.
func TestStreamPrivateRows(t *testing.T) {
	srv, e, _ := streamed(t, "")
	srv.PushWallet(map[string]any{"totalEquity": "9000", "totalWalletBalance": "8800", "totalMarginBalance": "9000",
		"totalAvailableBalance": "5000", "totalPerpUPL": "200", "totalMaintenanceMargin": "150"})
	var s exchanges.Snapshot
	waitFor(t, "wallet applied", func() bool { e.Live(&s); return s.Balances[0].AvailableBalance == 5000 })
	if b := s.Balances[0]; b.MarginBalance != 9000 || b.MaintMargin != 150 || b.CrossUnPnL != 200 {
		t.Errorf("pool %+v", b)
	}
	srv.PushPosition(map[string]any{"symbol": "BTCUSDT", "positionIdx": 2, "side": "", "size": "0"})
	waitFor(t, "short leg closed", func() bool { e.Live(&s); return position(&s, "BTCUSDT", exchanges.Short) == nil })
	if position(&s, "BTCUSDT", exchanges.Long) == nil {
		t.Fatal("the long leg went too")
	}
	// The long's StopLoss order is cancelled: only... no stop is left.
	srv.PushOrder(map[string]any{"symbol": "BTCUSDT", "category": "linear", "orderId": "sl-2", "side": "Sell", "positionIdx": 1,
		"stopOrderType": "StopLoss", "triggerPrice": "50000", "qty": "0", "orderStatus": "Untriggered", "reduceOnly": true, "closeOnTrigger": true, "triggerDirection": 2})
	waitFor(t, "stop added", func() bool {
		e.Live(&s)
		for _, st := range position(&s, "BTCUSDT", exchanges.Long).Stops {
			if st.Trigger == 50000 {
				return true
			}
		}
		return false
	})
	if _, ok := e.Live(&s); !ok {
		t.Error("view untrusted after private rows")
	}
}

// TestLiveAllocs: Live in steady state allocates nothing.
func TestLiveAllocs(t *testing.T) {
	_, e, _ := streamed(t, "")
	var s exchanges.Snapshot
	e.Live(&s)
	if n := testing.AllocsPerRun(100, func() { e.Live(&s) }); n != 0 {
		t.Errorf("Live allocates %v times", n)
	}
}

// TestStreamedCost: a streamed account's Snapshots come every
// reconcile_interval, and its slow reads are spread over those.
func TestStreamedCost(t *testing.T) {
	a := account("https://api.bybit.com", false)
	a.Stream, a.ReconcileInterval = true, 5*time.Minute
	if c := Estimate(a, 3); c.Poll != 10 { // 4 + 3 + 2 + 7/12, rounded up
		t.Errorf("streamed Poll %d, want 10", c.Poll)
	}
	a.Stream = false
	if c := Estimate(a, 3); c.Poll != 8 { // 7 + 2·15/300 + 7·15/3600
		t.Errorf("polled Poll %d, want 8", c.Poll)
	}
}

// TestOddFramesDoNotPanic: null, numbers, wrong shapes and missing fields
// in every topic's frame are skipped or make the view wait for a REST
// read; none panics, and the positions and pool stay numbers.
func TestOddFramesDoNotPanic(t *testing.T) {
	datas := []string{`null`, `1`, `"x"`, `{}`, `[]`, `[null]`, `[1]`, `[{}]`, `[{"symbol":null}]`, `[{"symbol":1,"size":1}]`,
		`[{"symbol":"BTCUSDT","positionIdx":1}]`, `[{"symbol":"BTCUSDT","positionIdx":1,"side":"Buy","size":"0.5"}]`,
		`[{"symbol":"BTCUSDT","positionIdx":1,"side":"Buy","size":"0.5","markPrice":"1","unrealisedPnl":null}]`,
		`[{"accountType":"UNIFIED","totalEquity":null}]`, `[{"symbol":"BTCUSDT","side":"Sell","positionIdx":1,"orderId":"x","orderStatus":"New","triggerPrice":null,"qty":5}]`}
	var frames []string
	for _, topic := range []string{"position", "wallet", "order"} {
		for _, d := range datas {
			frames = append(frames, `{"topic":"`+topic+`","data":`+d+`}`)
		}
		frames = append(frames, `{"topic":"`+topic+`"}`, `{"topic":null,"data":[]}`, `{"topic":"`+topic+`","data":[`)
	}
	frames = append(frames, `null`, `1`, `[]`, `{"op":null}`, `{"op":"subscribe","success":null}`, `{"op":"auth","success":1}`)
	var ticks []string
	for _, d := range []string{`null`, `1`, `[]`, `{}`, `{"symbol":null,"markPrice":1}`, `{"markPrice":null,"fundingRate":1}`,
		`{"markPrice":"NaN","fundingRate":"Inf"}`, `{"markPrice":"-1"}`, `{"markPrice":"62000","fundingRate":""}`} {
		for _, typ := range []string{"snapshot", "delta", "null"} {
			ticks = append(ticks, `{"topic":"tickers.BTCUSDT","type":"`+typ+`","data":`+d+`}`)
		}
	}
	ticks = append(ticks, `{"topic":"tickers."}`, `{"topic":1}`, `null`, `[`)

	srv, e := newFake(t)
	srv.Hedge()
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &tickerHub{log: e.log, sinks: map[tickSink][]string{e: {"BTCUSDT"}}, down: map[tickSink]bool{}, state: map[string]*tickerState{}}
	for _, f := range frames {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("private frame %s: panic %v", f, r)
				}
			}()
			if err := e.privateMsg([]byte(f), false); err != nil && !strings.Contains(f, "subscribe") {
				t.Logf("private frame %s: %v", f, err)
			}
		}()
	}
	for _, f := range ticks {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("ticker frame %s: panic %v", f, r)
				}
			}()
			h.frame([]byte(f), time.Now())
		}()
	}
	var s exchanges.Snapshot
	e.Live(&s)
	for _, p := range s.Positions {
		for name, v := range map[string]float64{"size": p.Size, "mark": p.MarkPrice, "pnl": p.UnrealizedPnL, "notional": p.Notional} {
			if math.IsNaN(v) || math.IsInf(v, 0) || (name != "pnl" && v <= 0) {
				t.Errorf("%s %s: %s = %v", p.Symbol, p.Side, name, v)
			}
		}
	}
	for _, b := range s.Balances {
		if math.IsNaN(b.MarginBalance) || math.IsNaN(b.UnrealizedPnL) || math.IsNaN(b.MaintMargin) {
			t.Errorf("pool %+v holds NaN", b)
		}
	}
}
