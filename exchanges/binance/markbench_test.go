package binance

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/adshao/go-binance/v2/delivery"
	"github.com/adshao/go-binance/v2/futures"
	"github.com/coder/websocket"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// markFrames are the fixture's update as a raw (COIN-M) and a combined
// (USDⓈ-M) frame.
func markFrames(b *testing.B) (raw, combined []byte) {
	raw = []byte(binancetest.Fixture("ws_markPriceUpdate.json"))
	combined, err := json.Marshal(struct {
		Stream string          `json:"stream"`
		Data   json.RawMessage `json:"data"`
	}{"btcusdt@markPrice@1s", raw})
	if err != nil {
		b.Fatal(err)
	}
	return raw, combined
}

// BenchmarkMarkDecode measures the decode of each frame before the hub
// routes it (serveWS and decodeWS: one json.Unmarshal into go-binance's
// event type; go-binance's own combined handler parses the frame into a
// map, marshals the data back and unmarshals it, about 3 KB in 61
// allocations a frame).
func BenchmarkMarkDecode(b *testing.B) {
	raw, combined := markFrames(b)
	b.Run("usdm-combined", func(b *testing.B) {
		var got *futures.WsMarkPriceEvent
		decode := decodeWS(func(f *combinedMark) { got = &f.Data }, func(err error) { b.Fatal(err) })
		b.ReportAllocs()
		for b.Loop() {
			decode(combined)
		}
		if got == nil || got.Symbol != "BTCUSDT" {
			b.Fatal(got)
		}
	})
	b.Run("coinm-raw", func(b *testing.B) {
		var got *delivery.WsMarkPriceEvent
		decode := decodeWS(func(ev *delivery.WsMarkPriceEvent) { got = ev }, func(err error) { b.Fatal(err) })
		b.ReportAllocs()
		for b.Loop() {
			decode(raw)
		}
		if got == nil || got.Symbol != "BTCUSDT" {
			b.Fatal(got)
		}
	})
}

// BenchmarkMarkStreamLoopback is one frame through the whole client path:
// a loopback websocket (no compression), gorilla's read, the combined
// frame's decode, the hub's route to one sink. The allocations counted
// include the test server's writes (coder/websocket), so they are an upper
// bound of the client's.
func BenchmarkMarkStreamLoopback(b *testing.B) {
	_, frame := markFrames(b)
	start := make(chan int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(context.Background())
		for {
			select {
			case n := <-start:
				for range n {
					if c.Write(ctx, websocket.MessageText, frame) != nil {
						return
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}))
	defer srv.Close()
	wsPace.Fill()
	h := newMarkHub(USDM, wsBase(srv.URL), false, nil)
	h.debounce = time.Millisecond
	h.silence = time.Hour // the server sends only when asked
	defer h.Close()
	sink := &countSink{}
	h.watch(sink, []string{"BTCUSDT"})
	wait := func(n int64) {
		deadline := time.Now().Add(time.Minute)
		for sink.n.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d frames routed", sink.n.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for h.routes.Load() == nil || !func() bool { up, _ := h.status(); return up }() {
		if time.Now().After(deadline) {
			b.Fatal("not connected")
		}
		select {
		case start <- 1:
		case <-time.After(10 * time.Millisecond):
		}
	}
	base := sink.n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	start <- b.N
	wait(base + int64(b.N))
}
