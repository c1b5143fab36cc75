package bybit

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

func account(url string, allowTrading bool) config.Account {
	return config.Account{Name: "bb", Exchange: Name, Endpoint: url, APIKey: bybittest.Key, APISecret: bybittest.Secret,
		AllowTradingKey: allowTrading, PollInterval: 15 * time.Second}
}

func newFake(t *testing.T) (*bybittest.Server, *Exchange) {
	t.Helper()
	srv := bybittest.NewServer(t, bybittest.Options{})
	e, err := New(account(srv.URL, false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); forget(srv.URL) })
	return srv, e
}

// forget clears the process-wide limit state of the fake's host.
func forget(url string) {
	limitsMu.Lock()
	delete(limits, hostOf(url))
	limitsMu.Unlock()
}

func near(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		switch {
		case math.IsNaN(w):
			if ok {
				t.Errorf("%s: %s = %v, want absent", what, name, g)
			}
		case !ok:
			t.Errorf("%s: %s absent, want %v", what, name, w)
		case math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)):
			t.Errorf("%s: %s = %.15g, want %.15g", what, name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && name != "data_age_seconds" {
			t.Errorf("%s: %s = %v has no expected value", what, name, got[name])
		}
	}
}

// TestFidelity: Snapshot + metrics.Compute from the fixture rows (the
// Hedge scenario) equal hand-computed values, hedge mode included.
func TestFidelity(t *testing.T) {
	srv, e := newFake(t)
	srv.Hedge()
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a := metrics.Compute("bb", Name, nil, snap, nil, time.Now())
	nan := math.NaN()
	mr := 123.456 / 10200
	if math.Abs(mr-0.0121) > 1e-4 {
		t.Errorf("margin_ratio %v disagrees with accountMMRate 0.0121 by more than 1e-4", mr)
	}
	near(t, "account", a.Metrics.Map(), map[string]float64{
		"margin_ratio": mr, "equity": 10250, "available_balance": 7000, "unrealized_pnl": 200,
		"effective_leverage": (30500.0 + 12200 + 15500) / 10250, "net_exposure_ratio": (30500.0 - 12200 - 15500) / 10250,
		"funding_next_cost": 30500*0.0001 - 12200*0.0001 + 15500*0.0002, "funding_paid_24h": 0.003676, "position_count": 3,
	})
	want := map[string]map[string]float64{
		"BTCUSDT long": {"liq_distance_pct": 21000.0 / 61000 * 100, "leverage": 10, "size_pct_equity": 30500.0 / 10250 * 100,
			"funding_rate": 0.0001, "funding_apr_pct": 0.0001 * 3 * 365 * 100, "funding_next_cost": 3.05,
			"unrealized_pnl_pct": 500 / (0.5 * 60000 / 10) * 100, "has_stop_loss": 1, "stop_coverage_pct": 100, "stop_distance_pct": 6000.0 / 61000 * 100, "margin_ratio": nan},
		// Net long: the shared liquidation price guards the long side for both legs.
		"BTCUSDT short": {"liq_distance_pct": 21000.0 / 61000 * 100, "leverage": 10, "size_pct_equity": 12200.0 / 10250 * 100,
			"funding_rate": 0.0001, "funding_apr_pct": -0.0001 * 3 * 365 * 100, "funding_next_cost": -1.22,
			"unrealized_pnl_pct": 200 / (0.2 * 62000 / 10) * 100, "has_stop_loss": 1, "stop_coverage_pct": 100, "stop_distance_pct": 4000.0 / 61000 * 100},
		"ETHUSDC short": {"liq_distance_pct": 400.0 / 3100 * 100, "leverage": 5, "size_pct_equity": 15500.0 / 10250 * 100,
			"funding_rate": -0.0002, "funding_apr_pct": 0.0002 * 6 * 365 * 100, "funding_next_cost": 3.1,
			"unrealized_pnl_pct": -500 / (5 * 3000.0 / 5) * 100, "has_stop_loss": 1, "stop_coverage_pct": 40, "stop_distance_pct": 200.0 / 3100 * 100},
	}
	if len(a.Positions) != 3 {
		t.Fatalf("%d positions, want 3", len(a.Positions))
	}
	for _, p := range a.Positions {
		key := p.Symbol + " " + string(p.Side)
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected position %s", key)
			continue
		}
		near(t, key, p.Metrics.Map(), w)
	}
}

func TestStopClassification(t *testing.T) {
	srv, e := newFake(t)
	srv.Hedge()
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]exchanges.Stop{}
	for _, p := range snap.Positions {
		got[p.Symbol+" "+string(p.Side)] = p.Stops
	}
	want := map[string][]exchanges.Stop{
		"BTCUSDT long":  {{Trigger: 55000, ClosePosition: true}}, // StopLoss order; the TakeProfit is not one
		"BTCUSDT short": {{Trigger: 65000, ClosePosition: true}}, // the position's own stopLoss; the long leg's orders are not its
		"ETHUSDC short": {{Trigger: 3300, Quantity: 2}},          // reduce-only Stop rising; the non-reduce-only one opens
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Errorf("%s: stops %+v, want %+v", k, g, w)
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s: stop %+v, want %+v", k, g[i], w[i])
			}
		}
	}
}

func TestKeyCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readOnly int
		perms    map[string][]string
		allow    bool
		want     string // "" accepted
	}{
		{"readOnly 1 (docs example, trade scopes listed)", 1, nil, false, ""},
		{"readOnly 0 refused", 0, nil, false, "allow_trading_key"},
		{"readOnly 0 with allow_trading_key", 0, nil, true, ""},
		{"Withdraw refused", 1, map[string][]string{"Wallet": {"AccountTransfer", "Withdraw"}}, false, "Withdraw"},
		{"Withdraw refused even with allow_trading_key", 0, map[string][]string{"Wallet": {"Withdraw"}}, true, "Withdraw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := bybittest.NewServer(t, bybittest.Options{})
			srv.SetKey(tc.readOnly, tc.perms)
			e, err := New(account(srv.URL, tc.allow), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer forget(srv.URL)
			err = e.CheckKey(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a permanent refusal naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), bybittest.Secret) || strings.Contains(err.Error(), bybittest.Key) {
				t.Errorf("the key or secret leaked: %v", err)
			}
		})
	}
}

// TestKeyChangeRaisesKeyProblem: a re-check that finds new permissions
// raises key_problem and KeyProblem reports the refusal.
func TestKeyChangeRaisesKeyProblem(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	now := time.Now()
	clock := func() time.Time { return now }
	a := account(srv.URL, false)
	a.PermissionCheckInterval = time.Minute
	e, err := New(a, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer forget(srv.URL)
	if err := e.CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.SetKey(0, nil)
	now = now.Add(2 * time.Minute)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Events) != 1 || snap.Events[0].Kind != exchanges.KeyProblem || !strings.Contains(snap.Events[0].Message, "readOnly 1 → 0") {
		t.Fatalf("events %+v, want one key_problem naming the change", snap.Events)
	}
	if e.KeyProblem() == nil {
		t.Error("KeyProblem is nil after the key became writable")
	}
}

// TestRateLimit10006: after retCode 10006 nothing is sent until the reset
// time, then polling resumes; the ban is reported for persistence.
func TestRateLimit10006(t *testing.T) {
	srv, e := newFake(t)
	srv.Hedge()
	if err := e.CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(1500 * time.Millisecond)
	srv.RateLimit(until)
	if _, err := e.Snapshot(context.Background()); err == nil {
		t.Fatal("Snapshot succeeded under 10006")
	}
	n := srv.Requests()
	for time.Now().Before(until.Add(-200 * time.Millisecond)) {
		_, err := e.Snapshot(context.Background())
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Status != codeRateLimit {
			t.Fatalf("err = %v, want a RateLimitError", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := srv.Requests(); got != n {
		t.Errorf("%d requests inside the ban", got-n)
	}
	if b := e.Bans(); len(b) != 1 || b[0].Until.UnixMilli() != until.UnixMilli() {
		t.Errorf("Bans() = %+v, want one until the reset time", b)
	}
	time.Sleep(time.Until(until) + 50*time.Millisecond)
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatalf("no recovery after the reset time: %v", err)
	}
}

// TestIPBan403: HTTP 403 bans the host for 10 minutes, persisted by Bans
// and honoured by another adapter after RestoreBans.
func TestIPBan403(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits int
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits++
			return &http.Response{StatusCode: http.StatusForbidden, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		})
		cfg := account("https://bybit.invalid", false)
		e, err := New(cfg, Options{HTTPClient: &http.Client{Transport: rt}})
		if err != nil {
			t.Fatal(err)
		}
		defer forget(cfg.Endpoint)
		start := time.Now()
		if err := e.CheckKey(context.Background()); err == nil {
			t.Fatal("no error on 403")
		}
		bans := e.Bans()
		if len(bans) != 1 || bans[0].Status != http.StatusForbidden || bans[0].Until.Sub(start) != 10*time.Minute {
			t.Fatalf("Bans() = %+v, want 403 for 10 minutes", bans)
		}
		forget(cfg.Endpoint) // a restart: the process state is gone
		e2, _ := New(cfg, Options{HTTPClient: &http.Client{Transport: rt}})
		e2.RestoreBans(bans)
		time.Sleep(9*time.Minute + 59*time.Second)
		if err := e2.CheckKey(context.Background()); err == nil || hits != 1 {
			t.Fatalf("err %v, %d requests: want none inside the restored ban", err, hits)
		}
		time.Sleep(2 * time.Second)
		e2.CheckKey(context.Background())
		if hits != 2 {
			t.Errorf("%d requests after the ban, want 2", hits)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRequestsPerPoll measures the requests of a first and a steady poll
// against the fake and prints the accounts one IP can watch.
func TestRequestsPerPoll(t *testing.T) {
	srv, e := newFake(t)
	srv.Hedge()
	if err := e.CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := srv.Requests()
	srv.ResetCounts()
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	steady := srv.Requests()
	// 2 symbols, 2 settle coins held: wallet 1 + positions 2 + orders 2 + tickers 2.
	if steady != 7 {
		t.Errorf("steady poll sent %d requests (%v), want 7", steady, srv.Counts())
	}
	c := e.Cost()
	perMin := float64(c.Poll) * float64(time.Minute/(15*time.Second))
	accounts := int(float64(c.Limit) * 0.8 / perMin)
	t.Logf("first poll %d requests (key check included), steady %d; Cost %+v; at a 15 s poll %.0f requests/min per account: %d accounts per IP under 80%% of 600 requests/5 s",
		first, steady, c, perMin, accounts)
}

// TestUnknownFundingInterval: without instruments-info, the interval is
// unknown, so funding_apr_pct is absent rather than computed for 8 h (Bybit
// symbols fund every 1 to 8 hours); the rate itself is still shown.
func TestUnknownFundingInterval(t *testing.T) {
	srv, e := newFake(t)
	srv.Hedge()
	srv.Edit("/v5/market/instruments-info", func(b map[string]any) {
		b["retCode"], b["retMsg"], b["result"] = 10001, "params error", map[string]any{}
	})
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a := metrics.Compute("bb", Name, nil, snap, nil, time.Now())
	for _, p := range a.Positions {
		if v, ok := p.Metrics.Get(metrics.FundingAPRPct); ok {
			t.Errorf("%s %s funding_apr_pct %v with the interval unknown, want absent", p.Symbol, p.Side, v)
		}
		if _, ok := p.Metrics.Get(metrics.FundingRate); !ok {
			t.Errorf("%s %s funding_rate absent, want the ticker's", p.Symbol, p.Side)
		}
	}
}

// TestKeyBudgetExhausted: an answer saying the key has no request left
// (X-Bapi-Limit-Status 0) holds its next request until the reset time
// rather than drawing a 10006 ban.
func TestKeyBudgetExhausted(t *testing.T) {
	srv, e := newFake(t)
	srv.Hedge()
	until := time.Now().Add(time.Second)
	srv.ExhaustUID(until)
	done := make(chan error, 1)
	go func() { _, err := e.Snapshot(context.Background()); done <- err }()
	time.Sleep(500 * time.Millisecond)
	if n := srv.Requests(); n > 1 {
		t.Errorf("%d requests before the key's budget reset, want at most the first", n)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Snapshot still waiting 10 s after the reset")
	}
	if time.Now().Before(until) {
		t.Error("Snapshot ended before the reset time")
	}
	if b := e.Bans(); len(b) != 0 {
		t.Errorf("Bans() = %+v: an exhausted key budget is a wait, not a ban", b)
	}
}
