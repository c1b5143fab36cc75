package hyperliquid

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

var hostSeq atomic.Int64

// inprocAdapter is an adapter on the fake's in-process transport, with a
// host of its own (limits are per host and process-wide).
func inprocAdapter(t *testing.T, srv *hyperliquidtest.Server) *Exchange {
	t.Helper()
	url := fmt.Sprintf("http://hl-%d.test", hostSeq.Add(1))
	e, err := New(config.Account{Name: "hl", Exchange: Name, Address: hyperliquidtest.Address, Endpoint: url, PollInterval: 15 * time.Second},
		Options{HTTPClient: &http.Client{Transport: srv.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRateLimitBackoff: a 429 stops every request to the host until the
// backoff ends (10 s, then 20 s while it recurs); the ban is reported for
// the daemon to persist, and a restored ban is honoured.
func TestRateLimitBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := hyperliquidtest.New(hyperliquidtest.Options{})
		e := inprocAdapter(t, srv)
		ctx := context.Background()
		srv.SetRateLimited(true)

		_, err := e.Snapshot(ctx)
		var rl *RateLimitError
		if !errors.As(err, &rl) || errors.Is(err, exchanges.ErrPermanent) {
			t.Fatalf("err = %v, want a transient *RateLimitError", err)
		}
		start := time.Now()
		if !rl.Until.Equal(start.Add(10 * time.Second)) {
			t.Errorf("ban until %v, want 10 s", rl.Until.Sub(start))
		}
		if bans := e.Bans(); len(bans) != 1 || bans[0].Status != 429 || !bans[0].Until.Equal(rl.Until) {
			t.Errorf("Bans() = %+v", bans)
		}
		for _, after := range []time.Duration{0, 5 * time.Second, 9999 * time.Millisecond} {
			time.Sleep(after - time.Since(start))
			if _, err := e.Snapshot(ctx); !errors.As(err, &rl) {
				t.Fatalf("at %v: err = %v", after, err)
			}
			if n := srv.Refused(); n != 1 {
				t.Fatalf("at %v: %d requests sent, want only the first: nothing inside a ban", after, n)
			}
		}
		time.Sleep(10*time.Second - time.Since(start))
		_, err = e.Snapshot(ctx) // the ban is over: one request, 429 again
		if !errors.As(err, &rl) || srv.Refused() != 2 {
			t.Fatalf("after the ban: err %v, %d refused", err, srv.Refused())
		}
		if d := time.Until(rl.Until); d != 20*time.Second {
			t.Errorf("second ban %v, want 20 s (doubled)", d)
		}
		srv.SetRateLimited(false)
		time.Sleep(19 * time.Second)
		if _, err := e.Snapshot(ctx); !errors.As(err, &rl) || srv.Refused() != 2 || srv.Count("clearinghouseState") != 0 {
			t.Fatalf("inside the second ban: err %v", err)
		}
		time.Sleep(time.Second)
		if _, err := e.Snapshot(ctx); err != nil {
			t.Fatalf("after the second ban: %v", err)
		}

		// A restart restores the stored ban: nothing is sent before it ends.
		e2 := inprocAdapter(t, srv)
		until := time.Now().Add(30 * time.Second)
		e2.RestoreBans([]exchanges.Ban{{Host: e2.host, Status: 429, Until: until}, {Host: "other", Status: 429, Until: until}})
		n := srv.Count("clearinghouseState")
		if _, err := e2.Snapshot(ctx); !errors.As(err, &rl) || srv.Count("clearinghouseState") != n {
			t.Fatalf("inside a restored ban: err %v", err)
		}
		time.Sleep(30 * time.Second)
		if _, err := e2.Snapshot(ctx); err != nil {
			t.Fatalf("after a restored ban: %v", err)
		}
	})
}

// TestWeightPerPoll measures the weight the fake counts for the first and
// the steady polls, compares it with Cost, and prints the figures: one IP
// watches 1200 / (4 × poll weight) accounts at the default 15 s poll (80%
// of that under the daemon's plan).
func TestWeightPerPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Start on a minute boundary so that the fake's minute holds one poll.
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)))
		srv := hyperliquidtest.New(hyperliquidtest.Options{State: hyperliquidtest.Cross2023})
		e := inprocAdapter(t, srv)
		ctx := context.Background()
		if _, err := e.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		first := srv.Weight()
		time.Sleep(15 * time.Second)
		if _, err := e.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		steady := srv.Weight() - first
		if steady != 22 {
			t.Errorf("steady poll weight %d, want 22 (clearinghouseState 2 + frontendOpenOrders 20)", steady)
		}
		c := e.Cost()
		if c.Budget != "hyperliquid "+e.host || c.Limit != 1200 {
			t.Errorf("cost %+v", c)
		}
		// Two coins: first = 22 + meta 20 + funding 20 + candles 2 × 20
		// (the fixture's two candles add nothing).
		if first != 102 {
			t.Errorf("first poll weight %d, want 102", first)
		}
		if c.First < first || c.Poll < steady {
			t.Errorf("Cost %+v below the measured first %d, steady %d", c, first, steady)
		}
		t.Logf("weight: first poll %d, steady poll %d (Cost: first %d, average poll %d with the cached reads spread, 2 coins)", first, steady, c.First, c.Poll)
		t.Logf("accounts per IP at a 15 s poll: %d at the full 1200/min, %d under the daemon's 80%% plan",
			1200/(4*c.Poll), 960/(4*c.Poll))
	})
}

// TestOneBurstOneBan: two requests in flight at once both get a 429; the
// second answer, inside the ban the first started, does not double it.
// A 429 after the ban has ended does.
func TestOneBurstOneBan(t *testing.T) {
	l := &hostLimit{}
	now := time.Unix(1e9, 0)
	l.ban(now, 0)
	if until := l.ban(now.Add(50*time.Millisecond), 0); until.Sub(now) != 10*time.Second {
		t.Errorf("two 429s of one burst: ban %v, want 10 s", until.Sub(now))
	}
	after := now.Add(12 * time.Second)
	if until := l.ban(after, 0); until.Sub(after) != 20*time.Second {
		t.Errorf("a 429 recurring after the ban: ban %v, want 20 s", until.Sub(after))
	}
}

// TestRetryAfterRestored: a 429 with Retry-After: 600 is honoured live and
// persisted; after a restart RestoreBans keeps all 10 minutes of it (not
// the 5 the adapter backs off at most by itself). A ban beyond an hour is
// cut to one.
func TestRetryAfterRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := hyperliquidtest.New(hyperliquidtest.Options{RetryAfter: 600 * time.Second})
		e := inprocAdapter(t, srv)
		srv.SetRateLimited(true)
		_, err := e.Snapshot(context.Background())
		var rl *RateLimitError
		if !errors.As(err, &rl) || time.Until(rl.Until) != 600*time.Second {
			t.Fatalf("err %v, want a 600 s ban", err)
		}
		stored := e.Bans()
		// Restart: the process-wide state is gone; the stored ban comes back.
		limitsMu.Lock()
		delete(limits, e.host)
		limitsMu.Unlock()
		e2 := inprocAdapter(t, srv)
		e2.host, e2.base = e.host, e.base
		e2.RestoreBans(stored)
		time.Sleep(5*time.Minute + time.Second)
		before := srv.Refused()
		if _, err := e2.Snapshot(context.Background()); !errors.As(err, &rl) || srv.Refused() != before {
			t.Errorf("a request went out %v before the stored ban (Retry-After 600 s) ends: %v", time.Until(stored[0].Until), err)
		}
		time.Sleep(time.Until(stored[0].Until))
		srv.SetRateLimited(false)
		if _, err := e2.Snapshot(context.Background()); err != nil {
			t.Errorf("after the restored ban: %v", err)
		}

		e3 := inprocAdapter(t, srv)
		e3.RestoreBans([]exchanges.Ban{{Host: e3.host, Status: 429, Until: time.Now().Add(48 * time.Hour)}})
		if b := e3.Bans(); len(b) != 1 || time.Until(b[0].Until) != maxRetryAfter {
			t.Errorf("a 48 h stored ban restored as %+v, want %v", b, maxRetryAfter)
		}
	})
}

// TestRetryAfterHeader: Retry-After is delay seconds or an HTTP date;
// anything else, or a time past, is no Retry-After; beyond maxRetryAfter
// it is cut.
func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"86400", maxRetryAfter},
	} {
		if got := retryAfter(tc.h, now); got != tc.want {
			t.Errorf("Retry-After %q: %v, want %v", tc.h, got, tc.want)
		}
	}
}
