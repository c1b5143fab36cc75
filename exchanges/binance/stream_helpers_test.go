package binance

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// streamDeadline bounds every wait of the stream tests: a real loopback
// websocket, so generous rather than tight.
const streamDeadline = 15 * time.Second

// streamed is an adapter with its user-data stream running on a fake.
type streamed struct {
	ex      *Exchange
	srv     *binancetest.Server
	cancel  context.CancelFunc
	errc    chan error
	changes chan struct{}
	clock   *clock // the adapter's and the fake's
}

// fastStream shortens what a test must not wait for.
func fastStream(sc *streamConf) {
	sc.backoffMin, sc.backoffMax = 10*time.Millisecond, 100*time.Millisecond
}

// refillDialTokens gives the process-wide connection pacing a full burst,
// so that the tests' many connections do not wait on it.
func refillDialTokens() {
	wsPace.Fill()
}

// startStream starts Stream (after conf changes its timing), seeds the
// adapter with a Snapshot once the user-data stream is connected, and
// waits until the view is live.
func startStream(t *testing.T, exchange string, so binancetest.Options, conf func(*streamConf)) *streamed {
	t.Helper()
	ex, srv, clk := fixture(t, exchange, so, func(a *config.Account) {
		a.StreamEndpoint = "ws" + strings.TrimPrefix(a.Endpoint, "http")
		a.Stream, a.ReconcileInterval = true, 5*time.Minute
	})
	fastStream(&ex.sc)
	if conf != nil {
		conf(&ex.sc)
	}
	refillDialTokens()
	ctx, cancel := context.WithCancel(context.Background())
	s := &streamed{ex: ex, srv: srv, cancel: cancel, errc: make(chan error, 1), changes: make(chan struct{}, 1), clock: clk}
	go func() {
		s.errc <- ex.Stream(ctx, func() {
			select {
			case s.changes <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(s.stop(t))
	// The daemon's order, and Binance's: the stream first, then the
	// Snapshot that seeds the view (one made before the connection would
	// be made again once it is up).
	s.wait(t, "the user-data connection", func() bool { return ex.StreamStatus().Up && srv.UserConnections() == 1 })
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatalf("seeding Snapshot: %v", err)
	}
	s.wait(t, "the stream to come up", func() bool {
		var snap exchanges.Snapshot
		_, ok := ex.Live(&snap)
		return ok && srv.UserConnections() == 1
	})
	return s
}

// stop ends Stream and checks that it returned nil.
func (s *streamed) stop(t *testing.T) func() {
	return func() {
		s.cancel()
		select {
		case err := <-s.errc:
			if err != nil {
				t.Errorf("Stream returned %v", err)
			}
		case <-time.After(streamDeadline):
			t.Errorf("Stream did not return after its context ended")
		}
	}
}

// wait polls cond until it holds, failing the test after streamDeadline.
func (s *streamed) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(streamDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (stream status %+v)", what, s.ex.StreamStatus())
		}
		select {
		case <-s.changes:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// view is the live view as it is, ok or not.
func view(ex *Exchange) exchanges.Snapshot {
	var snap exchanges.Snapshot
	ex.live.mu.Lock()
	ex.live.copyInto(&snap)
	ex.live.mu.Unlock()
	return snap
}

// live reads Live until it is ok and returns it.
func (s *streamed) live(t *testing.T, what string, cond func(exchanges.Snapshot) bool) exchanges.Snapshot {
	t.Helper()
	var snap exchanges.Snapshot
	s.wait(t, what, func() bool {
		_, ok := s.ex.Live(&snap)
		return ok && cond(snap)
	})
	return snap
}

// pushUntil pushes frame until Live is ok and cond holds. After a
// reconnection the fake registers the new connection a moment after the
// client's handshake completes, and may still hold the old one: a frame
// pushed in between reaches only the connection that is going away.
func (s *streamed) pushUntil(t *testing.T, what, frame string, cond func(exchanges.Snapshot) bool) {
	t.Helper()
	var snap exchanges.Snapshot
	s.wait(t, what, func() bool {
		s.srv.PushUser(frame)
		_, ok := s.ex.Live(&snap)
		return ok && cond(snap)
	})
}

func posOf(snap exchanges.Snapshot, symbol string, side exchanges.Side) *exchanges.Position {
	for i := range snap.Positions {
		if snap.Positions[i].Symbol == symbol && snap.Positions[i].Side == side {
			return &snap.Positions[i]
		}
	}
	return nil
}

func poolOf(snap exchanges.Snapshot, asset string) *exchanges.Balance {
	for i := range snap.Balances {
		if snap.Balances[i].Asset == asset {
			return &snap.Balances[i]
		}
	}
	return nil
}

// near: within 1e-9 relative, or 1e-8 absolute: Binance cuts its figures
// at the eighth decimal (COMPUSDT's 1 × 49.72023376 × 1% is reported as
// 0.49720233).
func near(a, b float64) bool {
	if math.Abs(a-b) <= 1e-8 {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// field is one figure of a position or pool to compare.
type field struct {
	name string
	got  float64
	want float64
}

func checkFields(t *testing.T, what string, fs ...field) {
	t.Helper()
	for _, f := range fs {
		if !near(f.got, f.want) {
			t.Errorf("%s: %s = %.12g, want %.12g", what, f.name, f.got, f.want)
		}
	}
}

func posFields(p, w *exchanges.Position) []field {
	return []field{
		{"Size", p.Size, w.Size}, {"EntryPrice", p.EntryPrice, w.EntryPrice}, {"MarkPrice", p.MarkPrice, w.MarkPrice},
		{"Notional", p.Notional, w.Notional}, {"UnrealizedPnL", p.UnrealizedPnL, w.UnrealizedPnL},
		{"MaintMargin", p.MaintMargin, w.MaintMargin}, {"IsolatedWallet", p.IsolatedWallet, w.IsolatedWallet},
		{"LiquidationPrice", p.LiquidationPrice, w.LiquidationPrice}, {"FundingRate", p.FundingRate, w.FundingRate},
	}
}

func poolFields(b, w *exchanges.Balance) []field {
	return []field{
		{"WalletBalance", b.WalletBalance, w.WalletBalance}, {"UnrealizedPnL", b.UnrealizedPnL, w.UnrealizedPnL},
		{"MarginBalance", b.MarginBalance, w.MarginBalance}, {"MaintMargin", b.MaintMargin, w.MaintMargin},
		{"CrossWalletBalance", b.CrossWalletBalance, w.CrossWalletBalance}, {"CrossUnPnL", b.CrossUnPnL, w.CrossUnPnL},
		{"CrossMaintMargin", b.CrossMaintMargin, w.CrossMaintMargin},
	}
}

func posName(p *exchanges.Position) string { return fmt.Sprintf("%s %s", p.Symbol, p.Side) }
