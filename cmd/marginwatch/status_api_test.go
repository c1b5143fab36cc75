package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// apiView is a daemon's view of three accounts: one evaluated with a
// history 20% below its peak, one whose reads fail, one not read yet.
func apiView(now time.Time) []watcher.AccountStatus {
	hist := metrics.NewEquityHistory(48 * time.Hour)
	hist.Observe("USDT", now.Add(-time.Hour), 10000)
	snap := &exchanges.Snapshot{
		Time:     now.Add(-time.Second),
		Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: 8000, MarginBalance: 8000, CrossWalletBalance: 8000, AvailableBalance: 8000}},
		Positions: []exchanges.Position{{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 0.1,
			EntryPrice: 100000, MarkPrice: 100000, LiquidationPrice: 95000, Leverage: 5, Notional: 10000}},
	}
	acct := metrics.Compute("main", "binance-usdm", nil, snap, hist, now)
	return []watcher.AccountStatus{
		{Name: "main", Exchange: "binance-usdm", Latest: acct, LastSuccess: now.Add(-time.Second),
			Firing: []rules.Hit{{Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long", Severity: notifiers.Critical, Metric: "liq_distance_pct", Value: 5, Threshold: 7}},
			Alerts: []rules.State{
				{Key: rules.Key{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long"}, Phase: rules.Active, ID: "a1b2", Severity: notifiers.Critical,
					Since: now.Add(-time.Minute), StartsAt: now.Add(-time.Minute), LastSent: now.Add(-time.Minute), Value: 5, Threshold: 7},
				{Key: rules.Key{Account: "main", Rule: "drawdown"}, Phase: rules.Pending, Severity: notifiers.Warning, Since: now.Add(-time.Second), Value: 20, Threshold: 10},
			}},
		{Name: "sub", Exchange: "binance-usdm", Latest: metrics.Stale("sub", "binance-usdm", nil, now.Add(-time.Minute), now), LastSuccess: now.Add(-time.Minute)},
		{Name: "new", Exchange: "simulated"},
	}
}

func TestStatusAPI(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(adminHandler(http.NotFoundHandler(), &fakeControl{view: apiView}, func() writePolicy { return writePolicy{} }, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		method string
		code   int
	}{{http.MethodPost, 405}, {http.MethodPut, 405}, {http.MethodDelete, 405}, {http.MethodHead, 200}} {
		req, _ := http.NewRequest(tc.method, srv.URL+statusPath, strings.NewReader("{}"))
		// As an API client sends a write; without it the guard answers 415.
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || (tc.code == 405 && resp.Header.Get("Allow") != "GET, HEAD") {
			t.Errorf("%s %s: %s, Allow %q; want %d", tc.method, statusPath, resp.Status, resp.Header.Get("Allow"), tc.code)
		}
	}

	// The document, from a handler with a fixed clock.
	rec := httptest.NewRecorder()
	statusHandler(&fakeControl{view: apiView}, func() time.Time { return now }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, statusPath, nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	var raw struct {
		Source   string                       `json:"source"`
		Accounts []map[string]json.RawMessage `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if raw.Source != "daemon" || len(raw.Accounts) != 3 {
		t.Fatalf("source %q, %d accounts; want daemon, 3\n%s", raw.Source, len(raw.Accounts), body)
	}
	for _, key := range []string{"name", "exchange", "time", "pool", "metrics", "positions", "firing", "alerts"} {
		if _, ok := raw.Accounts[0][key]; !ok {
			t.Errorf("account lacks %q:\n%s", key, body)
		}
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Accounts[0]
	for name, want := range map[string]float64{"drawdown_pct": 20, "equity": 8000, "position_count": 1} {
		if v := m.Metrics[name]; v == nil || *v != want {
			t.Errorf("main %s = %v, want %v", name, v, want)
		}
	}
	if len(m.Positions) != 1 || m.Positions[0].Size != 0.1 || m.Positions[0].Metrics["liq_distance_pct"] == nil || *m.Positions[0].Metrics["liq_distance_pct"] != 5 {
		t.Errorf("main positions %+v, want BTCUSDT 0.1, 5%% from liquidation", m.Positions)
	}
	if len(m.Alerts) != 2 || m.Alerts[0].State != "firing" || m.Alerts[0].ID != "a1b2" || m.Alerts[0].StartsAt == nil ||
		m.Alerts[1].State != "pending" || m.Alerts[1].ID != "" || m.Alerts[1].StartsAt != nil || *m.Alerts[1].Value != 20 {
		t.Errorf("main alerts %+v, want liquidation-near firing and drawdown pending", m.Alerts)
	}
	if len(m.Firing) != 1 || m.Firing[0].Severity != notifiers.Critical {
		t.Errorf("main firing %+v", m.Firing)
	}
	sub, fresh := doc.Accounts[1], doc.Accounts[2]
	if !strings.Contains(sub.Error, "no fresh data since 2026-03-01 11:59:00 UTC") || sub.Metrics["data_age_seconds"] == nil || *sub.Metrics["data_age_seconds"] != 60 {
		t.Errorf("stale account: error %q, data_age_seconds %v", sub.Error, sub.Metrics["data_age_seconds"])
	}
	if !strings.Contains(fresh.Error, "no data yet") || fresh.Time != nil || fresh.Alerts == nil || fresh.Positions == nil {
		t.Errorf("unread account %+v, want an error, no time, empty lists", fresh)
	}
	if !strings.Contains(body, `"alerts": []`) {
		t.Errorf("an account without alerts lacks \"alerts\": []:\n%s", body)
	}
}

// TestAskDaemon: status takes the daemon's document, and says briefly why
// when it cannot: no listen, nobody listening, an admin server without the
// API, an answer that is not the live view.
func TestAskDaemon(t *testing.T) {
	api := httptest.NewServer(adminHandler(http.NotFoundHandler(), &fakeControl{view: apiView}, func() writePolicy { return writePolicy{} }, slog.New(slog.DiscardHandler)))
	t.Cleanup(api.Close)
	old := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(old.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"accounts": []}`) }))
	t.Cleanup(other.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	goneAddr := gone.Listener.Addr().String()
	gone.Close()

	doc, err := askDaemon(api.Listener.Addr().String(), 5*time.Second)
	if err != nil || doc.Source != sourceDaemon || len(doc.Accounts) != 3 || doc.via != api.Listener.Addr().String() {
		t.Errorf("daemon: %v, source %q, %d accounts, via %q", err, doc.Source, len(doc.Accounts), doc.via)
	}
	for _, tc := range []struct{ listen, want string }{
		{"", "`listen` is not set"},
		{goneAddr, "no daemon answered at " + goneAddr + ": connection refused"},
		{old.Listener.Addr().String(), "has no live view: 404 Not Found"},
		{other.Listener.Addr().String(), "answered something else than its live view"},
	} {
		if _, err := askDaemon(tc.listen, 5*time.Second); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listen %q: %v, want %q", tc.listen, err, tc.want)
		}
	}
	for in, want := range map[string]string{":9464": "127.0.0.1:9464", "0.0.0.0:9464": "127.0.0.1:9464", "[::]:9464": "[::1]:9464", "127.0.0.1:1": "127.0.0.1:1", "localhost:9": "localhost:9"} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// An infinite metric is null in the JSON (SPEC) and named in "infinite"
// with its sign, so that status reading the daemon's view shows ∞, not
// "undefined".
func TestStatusInfiniteRoundTrip(t *testing.T) {
	inf, negInf, one := math.Inf(1), math.Inf(-1), 1.0
	doc := statusJSON{Source: sourceDaemon, Accounts: []accountJSON{{
		Name: "main", Exchange: "binance-usdm",
		Metrics:   metricsJSON{"effective_leverage": &inf, "net_exposure_ratio": &negInf, "margin_ratio": &one, "drawdown_pct": nil},
		Positions: []positionJSON{{Symbol: "BTCUSDT", Side: "long", Metrics: metricsJSON{"size_pct_equity": &inf}}},
	}}}
	var buf bytes.Buffer
	if err := writeStatus(&buf, doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"effective_leverage": null`) || !strings.Contains(buf.String(), `"net_exposure_ratio": -1`) {
		t.Fatalf("JSON lacks the null metric or its sign:\n%s", buf.String())
	}
	var back statusJSON
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	restoreInfinite(&back)
	m, p := back.Accounts[0].Metrics, back.Accounts[0].Positions[0].Metrics
	if v := m["effective_leverage"]; v == nil || !math.IsInf(*v, 1) {
		t.Errorf("effective_leverage read back as %v, want +Inf", v)
	}
	if v := m["net_exposure_ratio"]; v == nil || !math.IsInf(*v, -1) {
		t.Errorf("net_exposure_ratio read back as %v, want -Inf", v)
	}
	if v := m["drawdown_pct"]; v != nil {
		t.Errorf("undefined drawdown_pct read back as %v, want nil", *v)
	}
	if v := p["size_pct_equity"]; v == nil || !math.IsInf(*v, 1) {
		t.Errorf("size_pct_equity read back as %v, want +Inf", v)
	}
}
