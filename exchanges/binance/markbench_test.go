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
	simplejson "github.com/bitly/go-simplejson"
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

// BenchmarkGoBinanceMarkDecode measures what go-binance v2.8.12 does with
// each frame before our handler sees it, step for step as its handlers do
// (futures.wsCombinedMarkPriceServe: simplejson, MustMap, Marshal,
// Unmarshal; delivery.WsMarkPriceServe: one Unmarshal). These functions are
// unexported, so the steps are repeated here; BenchmarkMarkStreamLoopback
// runs the real ones.
func BenchmarkGoBinanceMarkDecode(b *testing.B) {
	raw, combined := markFrames(b)
	b.Run("usdm-combined", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			j, err := simplejson.NewJson(combined)
			if err != nil {
				b.Fatal(err)
			}
			data := j.Get("data").MustMap()
			jsonData, _ := json.Marshal(data)
			event := new(futures.WsMarkPriceEvent)
			if err := json.Unmarshal(jsonData, event); err != nil || event.Symbol != "BTCUSDT" {
				b.Fatal(err, event)
			}
		}
	})
	b.Run("coinm-raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			event := new(delivery.WsMarkPriceEvent)
			if err := json.Unmarshal(raw, &event); err != nil || event.Symbol != "BTCUSDT" {
				b.Fatal(err, event)
			}
		}
	})
}

// BenchmarkMarkStreamLoopback is one frame through the whole client path:
// a loopback websocket (no compression), gorilla's read, go-binance's
// combined decode, the hub's route to one sink. The allocations counted
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
	wsTokens.Lock()
	wsTokens.n = wsDialBurst
	wsTokens.Unlock()
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
