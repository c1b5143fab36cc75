package binance

import (
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// clock is a settable test clock shared by the adapter and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture starts a fake and an adapter on it.
func fixture(t *testing.T, exchange string, so binancetest.Options, mod func(*config.Account)) (*Exchange, *binancetest.Server, *clock) {
	t.Helper()
	clk := newClock()
	if so.Now == nil {
		so.Now = clk.Now
	}
	srv := binancetest.NewServer(t, so)
	// Limits are per host and process-wide: a ban left behind must not hit
	// a later test whose server gets the same port.
	t.Cleanup(func() {
		limitsMu.Lock()
		delete(limits, hostOf(srv.URL))
		limitsMu.Unlock()
	})
	acct := config.Account{
		Name:      "main",
		Exchange:  exchange,
		APIKey:    binancetest.Key,
		APISecret: binancetest.Secret,
		Endpoint:  srv.URL,
	}
	if mod != nil {
		mod(&acct)
	}
	ex, err := New(acct, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex, srv, clk
}

// want is expected metrics: name → value; a name mapped to NaN must be
// absent.
type want map[string]float64

// stopMetrics are computed by the metrics package from Position.Stops;
// this package tests the Stops themselves (stops_test.go).
var stopMetrics = map[string]bool{"has_stop_loss": true, "stop_coverage_pct": true, "stop_distance_pct": true}

func checkSet(t *testing.T, what string, s metrics.Set, w want) {
	t.Helper()
	got := s.Map()
	for name, v := range w {
		g, ok := got[name]
		if math.IsNaN(v) {
			if ok {
				t.Errorf("%s: %s = %v, want absent", what, name, g)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: %s absent, want %v", what, name, v)
			continue
		}
		if !approx(g, v) {
			t.Errorf("%s: %s = %.15g, want %.15g", what, name, g, v)
		}
	}
	var extra []string
	for name := range got {
		if _, ok := w[name]; !ok && !stopMetrics[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("%s: unexpected metrics %s", what, strings.Join(extra, ", "))
	}
}

// approx: relative error below 1e-9 (absolute for values near 0).
func approx(a, b float64) bool {
	d := math.Abs(a - b)
	if m := math.Max(math.Abs(a), math.Abs(b)); m > 1 {
		return d/m < 1e-9
	}
	return d < 1e-9
}

// noSecret fails when s holds the key or the secret.
func noSecret(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, binancetest.Key) || strings.Contains(s, binancetest.Secret) {
		t.Errorf("secret leaked: %s", s)
	}
}

func indexOf(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		panic("test body has no " + sub)
	}
	return i
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
