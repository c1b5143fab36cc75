package watcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// crowd is an account with twenty positions that are all near liquidation.
type crowd struct{}

func (crowd) Snapshot(context.Context) (*exchanges.Snapshot, error) {
	s := &exchanges.Snapshot{
		Time:     time.Now(),
		Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: 100000, MarginBalance: 100000, CrossWalletBalance: 100000}},
	}
	for i := range 20 {
		s.Positions = append(s.Positions, exchanges.Position{
			Symbol: fmt.Sprintf("COIN%02dUSDT", i), Side: exchanges.Long, MarginType: exchanges.Cross,
			Size: 1, EntryPrice: 100, MarkPrice: 100, LiquidationPrice: 95, Leverage: 5, Notional: 100,
			Stops: []exchanges.Stop{{Trigger: 99, ClosePosition: true}},
		})
	}
	return s, nil
}

func (crowd) Close() error { return nil }

// TestTwentyPositionsOneMessage: twenty positions crossing a threshold in
// one evaluation make one message per notifier, not twenty.
func TestTwentyPositionsOneMessage(t *testing.T) {
	type hook struct {
		mu     sync.Mutex
		bodies []int // alerts per request
	}
	hooks := []*hook{{}, {}}
	var notifiersYAML string
	for i, h := range hooks {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			var p struct{ Alerts []json.RawMessage }
			if err := json.Unmarshal(b, &p); err != nil {
				t.Errorf("body: %v", err)
			}
			h.mu.Lock()
			h.bodies = append(h.bodies, len(p.Alerts))
			h.mu.Unlock()
		}))
		defer srv.Close()
		notifiersYAML += fmt.Sprintf("  - {name: hook%d, type: webhook, url: %q}\n", i, srv.URL)
	}
	text := fmt.Sprintf(`state_dir: state
listen: ""
defaults: {poll_interval: 1s, stale_after: 30s}
accounts:
  - {name: main, exchange: simulated, scenario: calm}
notifiers:
%srules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
`, notifiersYAML)
	w, _ := newTestWatcher(t, text, Options{NewExchange: scriptedExchange(crowd{})})
	stop := runWatcher(t, w)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready := true
		for _, h := range hooks {
			h.mu.Lock()
			ready = ready && len(h.bodies) > 0
			h.mu.Unlock()
		}
		if ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // a further poll must not send again
	stop()
	for i, h := range hooks {
		h.mu.Lock()
		if len(h.bodies) != 1 || h.bodies[0] != 20 {
			t.Errorf("hook%d got requests with %v alerts, want one request with 20", i, h.bodies)
		}
		h.mu.Unlock()
	}
}
