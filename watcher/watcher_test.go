package watcher

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// scripted is an exchange whose answers the test switches: a snapshot with
// one long position whose liquidation price the test sets, or an outage.
type scripted struct {
	mu   sync.Mutex
	liq  float64
	down bool
}

func (s *scripted) set(liq float64, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.liq, s.down = liq, down
}

func (s *scripted) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errors.New("GET /fapi/v3/account: 503 Service Unavailable")
	}
	return &exchanges.Snapshot{
		Time:     time.Now(),
		Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: 10000, MarginBalance: 10000, CrossWalletBalance: 10000, AvailableBalance: 9000}},
		Positions: []exchanges.Position{{
			Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 0.1,
			EntryPrice: 100000, MarkPrice: 100000, LiquidationPrice: s.liq, Leverage: 5, Notional: 10000,
			FundingInterval: 8 * time.Hour, Stops: []exchanges.Stop{{Trigger: 99990, ClosePosition: true}},
		}},
	}, nil
}

func (s *scripted) Close() error { return nil }

const testConfig = `state_dir: state
listen: ""
defaults: {poll_interval: 5s, stale_after: 30s}
accounts:
  - {name: main, exchange: simulated, scenario: calm}
notifiers:
  - {name: term, type: console}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
    hysteresis: 2
`

// lockedBuffer collects console output written by the delivery worker.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) lines(parts ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range strings.Split(b.b.String(), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newTestWatcher builds a watcher from config text (written to a fresh
// folder, so a reload can read it) on its own fresh state store.
func newTestWatcher(t testing.TB, text string, opts Options) (*Watcher, *store.Store) {
	t.Helper()
	return loadWatcher(t, writeConfig(t, text), nil, opts)
}

// runWatcher starts w.Run and returns a function that stops it and checks
// that it returned nil.
func runWatcher(t *testing.T, w *Watcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// scriptedExchange makes every account use ex.
func scriptedExchange(ex exchanges.Exchange) func(config.Account, func() time.Time, *slog.Logger) (exchanges.Exchange, error) {
	return func(config.Account, func() time.Time, *slog.Logger) (exchanges.Exchange, error) { return ex, nil }
}

// TestOutageRaisesDataStaleAndKeepsAlerts: while the exchange fails,
// data-stale fires once stale_after has passed, the firing liquidation alert
// is neither resolved nor repeated early, and when data returns data-stale
// resolves.
func TestOutageRaisesDataStaleAndKeepsAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &scripted{liq: 95000} // 5% away: critical
		out := &lockedBuffer{}
		w, st := newTestWatcher(t, testConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)

		step := func(d time.Duration) {
			time.Sleep(d)
			synctest.Wait()
		}
		step(time.Second)
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("critical liquidation alert printed %d times, want 1:\n%s", n, out)
		}

		ex.set(95000, true) // the API fails during the crash
		step(25 * time.Second)
		if n := out.lines("data-stale"); n != 0 {
			t.Fatalf("data-stale before stale_after:\n%s", out)
		}
		step(15 * time.Second) // 40 s without data > 30 s
		if n := out.lines("CRITICAL", "firing", "data-stale"); n != 1 {
			t.Fatalf("data-stale printed %d times after 40 s blind, want 1:\n%s", n, out)
		}
		if n := out.lines("liquidation-near", "resolved"); n != 0 {
			t.Fatalf("an outage resolved the liquidation alert:\n%s", out)
		}

		ex.set(99000, false) // data returns; 1% away is still critical
		step(5 * time.Second)
		if n := out.lines("data-stale", "resolved"); n != 1 {
			t.Errorf("data-stale resolved %d times after data returned, want 1:\n%s", n, out)
		}
		if n := out.lines("liquidation-near"); n != 1 {
			t.Errorf("liquidation-near printed %d times across the outage, want 1 (no early repeat, no resolution):\n%s", n, out)
		}

		stop()

		// Everything delivered: the outbox is empty.
		depth, err := st.OutboxDepth()
		if err != nil {
			t.Fatal(err)
		}
		for n, d := range depth {
			if d != 0 {
				t.Errorf("outbox of %s holds %d entries after shutdown", n, d)
			}
		}
	})
}

// refusing is a notifier whose service rejects every message for good.
type refusing struct{}

func (refusing) Notify(context.Context, ...notifiers.Alert) (bool, error) {
	return false, errors.New("401 invalid_auth")
}

// TestNotifierFailingGoesToTheOthers: when one notifier refuses, the others
// get a notifier-failing alert naming it; the failing one is not sent its own.
func TestNotifierFailingGoesToTheOthers(t *testing.T) {
	text := strings.Replace(testConfig+`
  - name: missing-stop
    metric: has_stop_loss
    below: {warning: 1}
`, "  - {name: term, type: console}\n", "  - {name: term, type: console}\n  - {name: chat, type: console}\n", 1)
	out := &lockedBuffer{}
	synctest.Test(t, func(t *testing.T) {
		w, _ := newTestWatcher(t, text, Options{
			Stdout:      out,
			NewExchange: scriptedExchange(&scripted{liq: 95000}),
			NewTarget: func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
				if n.Name == "chat" {
					return delivery.Target{Name: n.Name, Notifier: refusing{}}, nil
				}
				return NewTarget(n, env)
			},
		})
		stop := runWatcher(t, w)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		stop()
	})
	if n := out.lines("notifier-failing", "notifier chat has been failing", "401 invalid_auth"); n != 1 {
		t.Errorf("notifier-failing about chat printed %d times on the console, want 1:\n%s", n, out)
	}
}

// TestDigestCarriesLatestMetricsAndAlerts: a digest goes out on its
// schedule with the account's latest metrics and the alerts sent before it.
func TestDigestCarriesLatestMetricsAndAlerts(t *testing.T) {
	out := &lockedBuffer{}
	synctest.Test(t, func(t *testing.T) {
		w, _ := newTestWatcher(t, testConfig+`digests:
  - {name: quick, schedule: "@every 10s"}
`, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		stop := runWatcher(t, w)
		time.Sleep(25 * time.Second)
		synctest.Wait()
		stop()
	})
	text := out.String()
	if n := strings.Count(text, "marginwatch digest quick"); n != 2 {
		t.Errorf("%d digests in 25 s on @every 10s, want 2:\n%s", n, text)
	}
	// BTCUSDT: |100000 − 95000| / 100000 = 5% from liquidation; the
	// liquidation alert fired before the first digest.
	for _, want := range []string{"main (", "BTCUSDT long", "5% away", "alerts in the last 24h (1)", "liquidation-near BTCUSDT long"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q:\n%s", want, text)
		}
	}
}
