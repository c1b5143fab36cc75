package binance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// inprocFake starts a fake outside any bubble (its listener must not be in
// one) whose clock is the caller's time.Now: inside a synctest bubble, the
// bubble's. Its host's shared limits are forgotten at the end.
func inprocFake(t *testing.T, o binancetest.Options) *binancetest.Server {
	t.Helper()
	o.Now = func() time.Time { return time.Now() }
	srv := binancetest.NewServer(t, o)
	t.Cleanup(func() {
		limitsMu.Lock()
		delete(limits, hostOf(srv.URL))
		limitsMu.Unlock()
	})
	return srv
}

// inprocAccount is an adapter on srv through its in-process transport.
func inprocAccount(t *testing.T, srv *binancetest.Server, name, exchange string, log *slog.Logger) *Exchange {
	t.Helper()
	ex, err := New(config.Account{
		Name: name, Exchange: exchange, APIKey: binancetest.Key, APISecret: binancetest.Secret,
		Endpoint: srv.URL, PollInterval: 15 * time.Second,
	}, Options{HTTPClient: &http.Client{Transport: srv.Transport()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestGateConcurrent: 40 accounts poll back to back, as fast as they can,
// for three minutes: together they ask for far more than 2,400 a minute.
// The gate holds them at 80%: the fake never answers 429 or 418 and no
// minute passes 1,920.
func TestGateConcurrent(t *testing.T) {
	srv := inprocFake(t, binancetest.Options{Account: binancetest.USDMOneWay})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		var mu sync.Mutex
		polls := 0
		for i := range 40 {
			ex := inprocAccount(t, srv, fmt.Sprintf("a%d", i), USDM, log)
			wg.Go(func() {
				for ctx.Err() == nil {
					if _, err := ex.Snapshot(ctx); err != nil {
						if ctx.Err() == nil {
							t.Errorf("%s: %v", ex.name, err)
						}
						return
					}
					mu.Lock()
					polls++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		t.Logf("%d polls in 3 minutes, %d weight, peak minute %d", polls, srv.Weight(), srv.PeakMinuteWeight())
	})
	if n := srv.Refused(); n != 0 {
		t.Errorf("%d requests answered 429/418", n)
	}
	// Under 80%, and not far under it: the gate does not starve the
	// polls (how tightly requests pack depends on the goroutines' order).
	if p := srv.PeakMinuteWeight(); p > hotWeight || p < hotWeight*9/10 {
		t.Errorf("peak minute weight %d, want just under %d", p, hotWeight)
	}
	// One hold line a minute (3 minutes; the last may be cut by the end).
	if n := strings.Count(logs.String(), "holding Binance requests"); n < 2 || n > 3 {
		t.Errorf("%d hold lines, want one a minute:\n%s", n, logs.String())
	}
}

// TestGateWait: a request that does not fit waits for the next minute,
// exactly, or until its ctx ends, with ctx's error.
func TestGateWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(20 * time.Second) // 20 s into a minute
		tr := &transport{now: time.Now}
		l := &hostLimit{}
		if _, err := tr.reserve(context.Background(), "h", l, hotWeight-10); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.reserve(context.Background(), "h", l, 10); err != nil { // exactly 80%
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := tr.reserve(ctx, "h", l, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("reserve over 80%% = %v, want the ctx's deadline", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("gave up after %s, want 5s", d)
		}
		m, err := tr.reserve(context.Background(), "h", l, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 40*time.Second || m != minuteOf(time.Now()) {
			t.Errorf("let through after %s, want 40s (the next minute)", d)
		}
		// Binance reports more than we counted (another program): that
		// counts, plus what is still in flight.
		m2, _ := tr.reserve(context.Background(), "h", l, 5)
		l.settle(m, 1, 1900, time.Now())
		if l.reserved != 1905 {
			t.Errorf("counted %d after a report of 1,900 with 5 in flight, want 1,905", l.reserved)
		}
		l.settle(m2, 5, 1906, time.Now())
		if l.inflight != 0 || l.reserved != 1906 {
			t.Errorf("in flight %d, counted %d", l.inflight, l.reserved)
		}
	})
}

// TestGateBan: a ban is answered at once, not waited for.
func TestGateBan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &transport{now: time.Now}
		l := &hostLimit{bannedUntil: time.Now().Add(time.Minute), banStatus: http.StatusTeapot}
		_, err := tr.reserve(context.Background(), "h", l, 1)
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Status != http.StatusTeapot {
			t.Errorf("reserve during a ban = %v", err)
		}
	})
}

// TestUngatedBanned: requests that bypass the gate (as every request did
// before it) are refused by the fake once a minute passes 2,400: the fake
// enforces the limit the gate keeps to.
func TestUngatedBanned(t *testing.T) {
	srv := inprocFake(t, binancetest.Options{Account: binancetest.USDMOneWay})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/fapi/v1/premiumIndex", nil)
					resp, err := srv.Transport().RoundTrip(req)
					if err != nil {
						return
					}
					resp.Body.Close()
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
		wg.Wait()
	})
	if srv.Refused() == 0 {
		t.Errorf("no request refused at 4,000 weight a second")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
