package hyperliquid

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// fundingNow is an hour after the userFunding fixture's rows (2023-04-20
// 00:00 UTC), so that all three fall in the last 24 h.
var fundingNow = time.UnixMilli(1681948800000).Add(time.Hour)

func newAdapter(t *testing.T, srv *hyperliquidtest.Server, now func() time.Time) *Exchange {
	t.Helper()
	e, err := New(config.Account{Name: "hl", Exchange: Name, Address: hyperliquidtest.Address, Endpoint: srv.URL, PollInterval: 15 * time.Second},
		Options{Now: now, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkSet compares every metric but data_age_seconds with a relative
// error below 1e-9; NaN wants the metric absent (null in status -json).
func checkSet(t *testing.T, what string, s metrics.Set, want map[string]float64) {
	t.Helper()
	got := s.Map()
	for name, g := range got {
		if name == "data_age_seconds" {
			continue
		}
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s: %s = %v has no expected value", what, name, g)
		case math.IsNaN(w):
			t.Errorf("%s: %s = %v, want null", what, name, g)
		case math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)):
			t.Errorf("%s: %s = %.15g, want %.15g", what, name, g, w)
		}
	}
	for name, w := range want {
		if _, ok := got[name]; !ok && !math.IsNaN(w) {
			t.Errorf("%s: %s is null, want %v", what, name, w)
		}
	}
}

// TestSnapshotFidelity: Snapshot + metrics.Compute from the fixture bodies
// equal hand-computed values for every metric.
func TestSnapshotFidelity(t *testing.T) {
	nan := math.NaN()
	const hour = 365 * 24.0 // funding intervals a year
	paid := -(0.145796 + 2.694388 + 0.056134)
	ethFunding, btcFunding := 0.0000224376, 0.0000125 // metaAndAssetCtxs
	for _, tc := range []struct {
		name    string
		state   string
		account map[string]float64
		pos     map[string]map[string]float64
	}{
		{
			// An isolated ETH long: szi 0.0335, positionValue 100.02765 →
			// mark 2985.9, maxLeverage 50 → maintenance 1.0002765,
			// marginUsed 4.967826, served liq 2866.26936529.
			name: "isolated ETH", state: hyperliquidtest.Isolated,
			account: map[string]float64{
				"margin_ratio":       0, // crossMaintenanceMarginUsed 0: nothing cross
				"equity":             13109.482328,
				"available_balance":  13104.514502,
				"unrealized_pnl":     -0.0134,
				"effective_leverage": 100.02765 / 13109.482328,
				"net_exposure_ratio": 100.02765 / 13109.482328,
				"drawdown_pct":       nan,
				"funding_next_cost":  100.02765 * ethFunding,
				"funding_paid_24h":   paid,
				"position_count":     1,
			},
			pos: map[string]map[string]float64{"ETH long": {
				"liq_distance_pct":   (2985.9 - 2866.26936529) / 2985.9 * 100,
				"liq_distance_atr":   nan, // the candle fixture is kPEPE's, two candles
				"leverage":           20,
				"size_pct_equity":    100.02765 / 13109.482328 * 100,
				"funding_rate":       ethFunding,
				"funding_apr_pct":    ethFunding * hour * 100,
				"funding_next_cost":  100.02765 * ethFunding,
				"unrealized_pnl_pct": -0.0134 / (0.0335 * 2986.3 / 20) * 100,
				"has_stop_loss":      0, // the orders are INJ's
				"stop_coverage_pct":  0,
				"stop_distance_pct":  nan,
				"margin_ratio":       (100.02765 / 100) / 4.967826, // maintenance / marginUsed
			}},
		},
		{
			// 2023 cross: no crossMaintenanceMarginUsed, no maxLeverage (meta:
			// BTC 40, ETH 25); BTC short −0.00785, value 211.64542 (mark
			// 26961.2), liq 173198.69592357; ETH long 0.1334, value
			// 227.675114, liquidationPx null.
			name: "2023 cross", state: hyperliquidtest.Cross2023,
			account: map[string]float64{
				"margin_ratio":       (211.64542/80 + 227.675114/50) / 1182.312496,
				"equity":             1182.312496,
				"available_balance":  1010.57173,
				"unrealized_pnl":     -0.08007 + 0.118726,
				"effective_leverage": (211.64542 + 227.675114) / 1182.312496,
				"net_exposure_ratio": (227.675114 - 211.64542) / 1182.312496,
				"drawdown_pct":       nan,
				"funding_next_cost":  -211.64542*btcFunding + 227.675114*ethFunding,
				"funding_paid_24h":   paid,
				"position_count":     2,
			},
			pos: map[string]map[string]float64{
				"BTC short": {
					"liq_distance_pct":   (173198.69592357 - 26961.2) / 26961.2 * 100,
					"liq_distance_atr":   nan,
					"leverage":           20,
					"size_pct_equity":    211.64542 / 1182.312496 * 100,
					"funding_rate":       btcFunding,
					"funding_apr_pct":    -btcFunding * hour * 100,
					"funding_next_cost":  -211.64542 * btcFunding,
					"unrealized_pnl_pct": -0.08007 / (0.00785 * 26951 / 20) * 100,
					"has_stop_loss":      0, "stop_coverage_pct": 0, "stop_distance_pct": nan,
					"margin_ratio": nan, // cross
				},
				"ETH long": {
					"liq_distance_pct":   nan, // liquidationPx null
					"liq_distance_atr":   nan,
					"leverage":           20,
					"size_pct_equity":    227.675114 / 1182.312496 * 100,
					"funding_rate":       ethFunding,
					"funding_apr_pct":    ethFunding * hour * 100,
					"funding_next_cost":  227.675114 * ethFunding,
					"unrealized_pnl_pct": 0.118726 / (0.1334 * 1705.82 / 20) * 100,
					"has_stop_loss":      0, "stop_coverage_pct": 0, "stop_distance_pct": nan,
					"margin_ratio": nan,
				},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{State: tc.state})
			e := newAdapter(t, srv, func() time.Time { return fundingNow })
			snap, err := e.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			a := metrics.Compute("hl", Name, nil, snap, nil, fundingNow)
			if a.Pool != Pool {
				t.Errorf("pool %q, want %q", a.Pool, Pool)
			}
			checkSet(t, "account", a.Metrics, tc.account)
			if len(a.Positions) != len(tc.pos) {
				t.Fatalf("%d positions, want %d", len(a.Positions), len(tc.pos))
			}
			for _, p := range a.Positions {
				w, ok := tc.pos[p.Symbol+" "+string(p.Side)]
				if !ok {
					t.Errorf("unexpected position %s %s", p.Symbol, p.Side)
					continue
				}
				checkSet(t, p.Symbol, p.Metrics, w)
				if !p.Raw.NextFundingTime.Equal(fundingNow.Truncate(time.Hour).Add(time.Hour)) || p.Raw.FundingInterval != time.Hour {
					t.Errorf("%s: funding every %v, next %v; want hourly, the next full hour", p.Symbol, p.Raw.FundingInterval, p.Raw.NextFundingTime)
				}
			}
		})
	}
}

// TestFundingWindow: rows older than 24 h do not count; before any read
// the figure is unknown (NaN), not zero.
func TestFundingWindow(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	now := fundingNow.Add(24 * time.Hour) // the rows are 25 h old
	e := newAdapter(t, srv, func() time.Time { return now })
	if v := e.fundingPaid(now); !math.IsNaN(v) {
		t.Errorf("before any read: %v, want NaN", v)
	}
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v := snap.Balances[0].FundingPaid24h; v != 0 {
		t.Errorf("funding paid = %v, want 0 (every row older than 24 h)", v)
	}
}

// TestStopsFromFrontendOpenOrders: of the fixture's INJ orders, only the
// reduce-only Stop Market on the sell side protects a long; the Take
// Profit Market does not, nor do the children of the unfilled Limit entry;
// none closes a short.
func TestStopsFromFrontendOpenOrders(t *testing.T) {
	var orders []order
	if err := json.Unmarshal(hyperliquidtest.Fixture("info_frontendOpenOrders.json"), &orders); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		side exchanges.Side
		want []exchanges.Stop
	}{
		{exchanges.Long, []exchanges.Stop{{Trigger: 9.995, Quantity: 12.5}}},
		{exchanges.Short, nil},
	} {
		got := stopsFor("INJ", tc.side, orders)
		if len(got) != len(tc.want) {
			t.Errorf("%s: stops %+v, want %+v", tc.side, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: stop %+v, want %+v", tc.side, got[i], tc.want[i])
			}
		}
	}
	if got := stopsFor("ETH", exchanges.Long, orders); len(got) != 0 {
		t.Errorf("ETH: %+v, want none (the orders are INJ's)", got)
	}
	// A position TP/SL of size 0 closes the whole position; a stop that is
	// neither reduce-only nor a position TP/SL does not count.
	extra := []order{
		{Coin: "BTC", Side: "B", IsTrigger: true, OrderType: "Stop Limit", IsPositionTpsl: true, TriggerPx: num{120000, true}},
		{Coin: "BTC", Side: "B", IsTrigger: true, OrderType: "Stop Market", TriggerPx: num{110000, true}, Sz: num{1, true}},
	}
	got := stopsFor("BTC", exchanges.Short, extra)
	if len(got) != 1 || !got[0].ClosePosition || got[0].Trigger != 120000 {
		t.Errorf("BTC short: %+v, want one close-position stop at 120000", got)
	}
}

// TestCandles: candleSnapshot rows become closed candles, oldest first,
// of the coin asked for.
func TestCandles(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	now := time.UnixMilli(1684706399999 + 1)
	e := newAdapter(t, srv, func() time.Time { return now })
	list, err := e.fetchCandles(context.Background(), "kPEPE", now)
	if err != nil {
		t.Fatal(err)
	}
	want := []exchanges.Candle{
		{OpenTime: time.UnixMilli(1684699200000), High: 0.001616, Low: 0.001601, Close: 0.001604},
		{OpenTime: time.UnixMilli(1684702800000), High: 0.001603, Low: 0.001584, Close: 0.001591},
	}
	if len(list) != 2 || list[0] != want[0] || list[1] != want[1] {
		t.Errorf("candles %+v, want %+v", list, want)
	}
	if list, _ := e.fetchCandles(context.Background(), "kPEPE", now.Add(-time.Millisecond)); len(list) != 1 {
		t.Errorf("%d candles before the second closed, want 1", len(list))
	}
	if list, _ := e.fetchCandles(context.Background(), "ETH", now); len(list) != 0 {
		t.Errorf("%d candles of another coin kept, want 0", len(list))
	}
}

// TestFundingPageBoundary: 21 coins held all day are 504 funding rows in
// 24 h, 21 per hourly timestamp. userFunding answers at most 500 rows from
// startTime; the 500th row's timestamp has 4 more rows on the next page,
// which must neither be lost nor counted twice.
func TestFundingPageBoundary(t *testing.T) {
	now := time.Date(2026, 1, 2, 0, 30, 0, 0, time.UTC)
	type row struct {
		Delta map[string]any `json:"delta"`
		Hash  string         `json:"hash"`
		Time  int64          `json:"time"`
	}
	var all []row
	for h := 23; h >= 0; h-- {
		at := now.Truncate(time.Hour).Add(-time.Duration(h) * time.Hour).UnixMilli()
		for c := range 21 {
			// Funding rows carry no transaction: every hash the same.
			all = append(all, row{Delta: map[string]any{"coin": fmt.Sprint("C", c), "type": "funding", "usdc": "-1.0"}, Hash: "0x0", Time: at})
		}
	}
	var pages atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q struct {
			Type      string
			StartTime int64
		}
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch q.Type {
		case "clearinghouseState":
			w.Write(hyperliquidtest.Fixture(hyperliquidtest.Empty))
		case "frontendOpenOrders":
			w.Write([]byte("[]"))
		case "metaAndAssetCtxs":
			w.Write(hyperliquidtest.Fixture("info_metaAndAssetCtxs_excerpt.json"))
		case "userFunding":
			pages.Add(1)
			page := []row{}
			for _, r := range all {
				if r.Time >= q.StartTime && len(page) < 500 {
					page = append(page, r)
				}
			}
			json.NewEncoder(w).Encode(page)
		}
	}))
	defer hs.Close()
	e, err := New(config.Account{Name: "hl", Exchange: Name, Address: hyperliquidtest.Address, Endpoint: hs.URL, PollInterval: 15 * time.Second}, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Balances[0].FundingPaid24h; math.Abs(got-504) > 1e-9 {
		t.Errorf("funding_paid_24h = %v, want 504 (21 coins × 24 h × 1 USDC)", got)
	}
	if p := pages.Load(); p != 2 {
		t.Errorf("%d userFunding pages read, want 2", p)
	}
}
