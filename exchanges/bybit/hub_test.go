package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
)

// positionFrame is a private `position` message with ws_position.json's row
// and fields set, one row per fields map.
func positionFrame(t *testing.T, rows ...map[string]any) []byte {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal(bybittest.Fixture("ws_position.json"), &f); err != nil {
		t.Fatal(err)
	}
	first := f["data"].([]any)[0].(map[string]any)
	var out []any
	for _, r := range rows {
		row := maps.Clone(first)
		maps.Copy(row, r)
		out = append(out, row)
	}
	f["data"] = out
	b, _ := json.Marshal(f)
	return b
}

// secondStream starts another account on the same fake (same stream host,
// so the same tickers hub) and waits until its view is trusted.
func secondStream(t *testing.T, srv *bybittest.Server, name string) *Exchange {
	t.Helper()
	cfg := account(srv.URL, false)
	cfg.Name = name
	cfg.StreamEndpoint = "ws" + strings.TrimPrefix(srv.URL, "http")
	cfg.Stream = true
	e, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.sc = fastConf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Stream(ctx, func() {}) }()
	t.Cleanup(func() { cancel(); <-done; e.Close() })
	waitFor(t, name+" private stream up", func() bool { return e.StreamStatus().Up })
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, name+" live view trusted", func() bool { var s exchanges.Snapshot; _, ok := e.Live(&s); return ok })
	return e
}

// TestHubSinkForgottenDuringOutageRecovers: two accounts share the tickers hub.
// The public stream drops (both are told), account B closes all its
// positions meanwhile (the hub forgets it), the public stream comes back
// (only sinks the hub still knows are told), then B opens a position
// again: B must not stay "public tickers stream down" for ever.
func TestHubSinkForgottenDuringOutageRecovers(t *testing.T) {
	srv, a, _ := streamed(t, "")
	b := secondStream(t, srv, "bb2")
	h := a.st.hub
	if h == nil || b.st.hub != h {
		t.Fatal("the accounts do not share a hub")
	}
	h.lost(errors.New("EOF")) // what serve's failure does
	var s exchanges.Snapshot
	if _, ok := b.Live(&s); ok {
		t.Fatal("B trusted with the public stream down")
	}
	// B's private stream: every position closed.
	flat := positionFrame(t,
		map[string]any{"symbol": "BTCUSDT", "positionIdx": 1, "side": "", "size": "0"},
		map[string]any{"symbol": "BTCUSDT", "positionIdx": 2, "side": "", "size": "0"},
		map[string]any{"symbol": "ETHUSDC", "positionIdx": 0, "side": "", "size": "0"})
	if err := b.privateMsg(flat, false); err != nil {
		t.Fatal(err)
	}
	h.back() // what the first frame of the new public connection does
	waitFor(t, "A trusted again", func() bool { _, ok := a.Live(&s); return ok })
	// B opens a BTCUSDT long again (the REST answers still hold it).
	open := positionFrame(t, map[string]any{"symbol": "BTCUSDT", "positionIdx": 1, "side": "Buy", "size": "0.5",
		"entryPrice": "60000", "markPrice": "61000", "liqPrice": "40000", "leverage": "10", "unrealisedPnl": "500", "positionMM": "60", "positionIM": "3000"})
	if err := b.privateMsg(open, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := b.Live(&s); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("B never trusted again although the public stream is up (A is fine): status %+v", b.StreamStatus())
}

// TestStreamCancelledStopOrderLeavesView: the long has no stopLoss of its own
// but a StopLoss conditional order (qty 0, close-position). The order is
// cancelled over the order topic: the long must have no stop any more.
func TestStreamCancelledStopOrderLeavesView(t *testing.T) {
	srv, e, _ := streamed(t, "")
	srv.SetStopOrders(
		map[string]any{"orderId": "sl-long", "symbol": "BTCUSDT", "side": "Sell", "positionIdx": 1, "orderType": "Market", "stopOrderType": "StopLoss", "triggerPrice": "55000",
			"qty": "0", "reduceOnly": true, "closeOnTrigger": true, "triggerDirection": 2, "orderStatus": "Untriggered"})
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	var s exchanges.Snapshot
	e.Live(&s)
	if st := position(&s, "BTCUSDT", exchanges.Long).Stops; len(st) != 1 || st[0].Trigger != 55000 {
		t.Fatalf("long stops %+v before the cancel, want the 55000 order", st)
	}
	srv.PushOrder(map[string]any{"orderId": "sl-long", "symbol": "BTCUSDT", "category": "linear", "side": "Sell", "positionIdx": 1,
		"stopOrderType": "StopLoss", "triggerPrice": "55000", "qty": "0", "orderStatus": "Cancelled", "reduceOnly": true, "closeOnTrigger": true, "triggerDirection": 2})
	waitFor(t, "the order cancelled in the view", func() bool {
		e.live.mu.Lock()
		defer e.live.mu.Unlock()
		_, open := e.live.orders["sl-long"]
		return !open
	})
	_, ok := e.Live(&s)
	if st := position(&s, "BTCUSDT", exchanges.Long).Stops; len(st) != 0 {
		t.Errorf("long stops %+v after its only stop order was cancelled (Live ok=%v): missing-stop-loss cannot fire", st, ok)
	}
}

// TestCloseStopsHubAndConnections: Close stops the streams of an account
// and nothing of it keeps running (goroutines, connections).
func TestCloseStopsHubAndConnections(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	t.Cleanup(func() {
		forget(srv.URL)
		tickerHubFor("ws"+strings.TrimPrefix(srv.URL, "http"), nil).Close()
	})
	for i := range 3 {
		cfg := account(srv.URL, false)
		cfg.Name = "bbc" + string(rune('0'+i))
		cfg.StreamEndpoint = "ws" + strings.TrimPrefix(srv.URL, "http")
		cfg.Stream = true
		e, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		e.sc = fastConf
		done := make(chan error, 1)
		go func() { done <- e.Stream(context.Background(), func() {}) }()
		waitFor(t, "up", func() bool { return e.StreamStatus().Up })
		if _, err := e.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "tickers subscribed", func() bool { return srv.Subscribers("tickers.BTCUSDT") == 1 })
		e.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Stream still running after Close")
		}
	}
	// Goroutines end shortly after Close: poll, bounded.
	var left []string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		left = left[:0]
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "bybit.(*") || strings.Contains(g, "coder/websocket") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("left running after Close:\n%s", strings.Join(left, "\n\n"))
}

// TestHubLogsWithoutAccount: the hub is every account's, so its lines go
// to the SetHubLogger logger, not to the first account's.
func TestHubLogsWithoutAccount(t *testing.T) {
	var accountLog, hubLines strings.Builder
	SetHubLogger(slog.New(slog.NewTextHandler(&hubLines, nil)))
	t.Cleanup(func() { SetHubLogger(nil) })
	base := "ws://127.0.0.1:1"
	h := tickerHubFor(base, slog.New(slog.NewTextHandler(&accountLog, nil)).With("account", "first"))
	t.Cleanup(h.Close)
	h.frame([]byte("not json"), time.Now())
	if !strings.Contains(hubLines.String(), "stream_host=127.0.0.1:1") || strings.Contains(hubLines.String(), "account=") {
		t.Errorf("hub log %q, want the host and no account", hubLines.String())
	}
	if accountLog.Len() != 0 {
		t.Errorf("the first account's log got the hub's lines: %q", accountLog.String())
	}
}

// TestCoinOf: a symbol's settle coin by name, as Bybit names contracts.
func TestCoinOf(t *testing.T) {
	for sym, want := range map[string]string{
		"BTCUSDT": "USDT", "1000PEPEUSDT": "USDT", "BTCUSDT-26DEC25": "USDT",
		"ETHUSDC": "USDC", "BTCPERP": "USDC", "BTC-26DEC25": "USDC", "ETH-27MAR26": "USDC",
	} {
		if got := coinOf(sym); got != want {
			t.Errorf("coinOf(%q) = %s, want %s", sym, got, want)
		}
	}
}

// TestStreamUSDCFutureKeepsCoin: a USDC dated future REST lists under
// USDC stays USDC when its position row comes over the stream.
func TestStreamUSDCFutureKeepsCoin(t *testing.T) {
	srv, e, _ := streamed(t, "")
	fut := map[string]any{"symbol": "BTC-26DEC25", "side": "Buy", "positionIdx": 0, "size": "0.1", "avgPrice": "62000", "markPrice": "63000",
		"liqPrice": "30000", "leverage": "5", "unrealisedPnl": "100", "positionMM": "10", "positionIM": "1260", "stopLoss": ""}
	srv.Edit("/v5/position/list", func(b map[string]any) {
		rows := b["result"].(map[string]any)["list"].([]any)
		row := maps.Clone(rows[0].(map[string]any))
		maps.Copy(row, fut)
		b["result"].(map[string]any)["list"] = append(rows, row)
	})
	srv.Edit("/v5/market/tickers", func(b map[string]any) {
		rows := b["result"].(map[string]any)["list"].([]any)
		row := maps.Clone(rows[0].(map[string]any))
		maps.Copy(row, map[string]any{"symbol": "BTC-26DEC25", "markPrice": "63000", "fundingRate": "", "nextFundingTime": ""})
		b["result"].(map[string]any)["list"] = append(rows, row)
	})
	s, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p := position(s, "BTC-26DEC25", exchanges.Long); p == nil || p.MarginAsset != "USDC" {
		t.Fatalf("REST: %+v, want the future in USDC", p)
	}
	row := maps.Clone(fut)
	row["size"], row["entryPrice"] = "0.3", "62000"
	srv.PushPosition(row)
	var live exchanges.Snapshot
	waitFor(t, "the streamed row applied", func() bool {
		e.Live(&live)
		p := position(&live, "BTC-26DEC25", exchanges.Long)
		return p != nil && p.Size == 0.3
	})
	if p := position(&live, "BTC-26DEC25", exchanges.Long); p.MarginAsset != "USDC" {
		t.Errorf("streamed: margin asset %s, want USDC as REST said", p.MarginAsset)
	}
}
