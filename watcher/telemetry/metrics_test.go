package telemetry

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/budget"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// scrape GETs /metrics from h and parses it with the Prometheus text parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d:\n%s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// series is one sample: its labels and value (for histograms, the sample
// count; buckets are checked separately).
type series map[string]string

func labelsOf(m *dto.Metric) series {
	s := series{}
	for _, lp := range m.GetLabel() {
		s[lp.GetName()] = lp.GetValue()
	}
	return s
}

// values maps each series of a family, keyed by its sorted labels, to its
// value.
func values(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		}
		out[key(labelsOf(m))] = v
	}
	return out
}

func key(s series) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		parts = append(parts, k+"="+s[k])
	}
	return strings.Join(parts, ",")
}

func TestMetricFamilies(t *testing.T) {
	t1 := time.Unix(1_700_000_000, 500_000_000)
	t2 := t1.Add(15 * time.Second)
	t3 := time.Unix(1_700_000_100, 0)
	t4 := time.Unix(1_700_000_200, 250_000_000)
	t5 := time.Unix(1_700_000_300, 0)

	m := New("v1.2.3")
	m.PollDone("main", 1500*time.Millisecond, true, t1)
	m.PollDone("main", 200*time.Millisecond, false, t2) // must not move last_success
	m.PollDone("alt", 40*time.Second, true, t3)
	m.SetExchangeWeight("main", 1234)
	m.SetExchangeWeight("main", 57) // last value wins
	m.SetPlan(budget.Plan{Schedules: []budget.Schedule{{Account: "gone", Every: time.Second}}})
	m.SetPlan(budget.Plan{ // replaces the one before
		Schedules: []budget.Schedule{{Account: "main", Budget: "binance-usdm fapi.binance.com", Every: 30 * time.Second}, {Account: "alt", Every: 15 * time.Second}},
		Budgets:   []budget.Summary{{Budget: "binance-usdm fapi.binance.com", Limit: 2400, Planned: 1800.5}},
	})
	m.SetHostWeight("fapi.binance.com", 1200)
	m.SetAlerts([]rules.State{
		{Key: rules.Key{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long"}, Phase: rules.Active, Severity: notifiers.Warning},
		{Key: rules.Key{Account: "main", Rule: "liquidation-near", Symbol: "ETHUSDT", Side: "long"}, Phase: rules.Active, Severity: notifiers.Warning},
		{Key: rules.Key{Account: "alt", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "short"}, Phase: rules.Active, Severity: notifiers.Critical},
		{Key: rules.Key{Account: "main", Rule: "funding-drain", Symbol: "SOLUSDT", Side: "long"}, Phase: rules.Pending, Severity: notifiers.Warning},
	})
	m.Reloaded(true, t4)
	m.Reloaded(false, t5) // failure keeps the success timestamp
	m.WatchDelivery(
		func() map[string]delivery.Stats {
			return map[string]delivery.Stats{"ops": {Sent: 5, Failed: 2, Dropped: 1}, "phone": {Sent: 1}}
		},
		func() (map[string]int, error) { return map[string]int{"ops": 3}, nil },
	)

	mfs := scrape(t, m.Handler(nil))

	tests := []struct {
		name string
		typ  dto.MetricType
		want map[string]float64
	}{
		{"marginwatch_poll_duration_seconds", dto.MetricType_HISTOGRAM, map[string]float64{"account=main": 2, "account=alt": 1}},
		{"marginwatch_polls_total", dto.MetricType_COUNTER, map[string]float64{
			"account=main,result=ok": 1, "account=main,result=error": 1,
			"account=alt,result=ok": 1, "account=alt,result=error": 0,
		}},
		{"marginwatch_last_success_timestamp_seconds", dto.MetricType_GAUGE, map[string]float64{
			"account=main": 1_700_000_000.5, "account=alt": 1_700_000_100,
		}},
		{"marginwatch_exchange_weight_used", dto.MetricType_GAUGE, map[string]float64{"account=main": 57}},
		{"marginwatch_budget_weight_per_minute", dto.MetricType_GAUGE, map[string]float64{"budget=binance-usdm fapi.binance.com": 1800.5}},
		{"marginwatch_budget_limit_per_minute", dto.MetricType_GAUGE, map[string]float64{"budget=binance-usdm fapi.binance.com": 2400}},
		{"marginwatch_poll_interval_seconds", dto.MetricType_GAUGE, map[string]float64{"account=main": 30, "account=alt": 15}},
		{"marginwatch_exchange_used_weight", dto.MetricType_GAUGE, map[string]float64{"host=fapi.binance.com": 1200}},
		{"marginwatch_alerts", dto.MetricType_GAUGE, map[string]float64{
			"rule=liquidation-near,severity=warning,state=firing":  2,
			"rule=liquidation-near,severity=critical,state=firing": 1,
			"rule=funding-drain,severity=warning,state=pending":    1,
		}},
		{"marginwatch_config_last_reload_successful", dto.MetricType_GAUGE, map[string]float64{"": 0}},
		{"marginwatch_config_last_reload_success_timestamp_seconds", dto.MetricType_GAUGE, map[string]float64{"": 1_700_000_200.25}},
		{"marginwatch_config_reloads_total", dto.MetricType_COUNTER, map[string]float64{"result=ok": 1, "result=error": 1}},
		{"marginwatch_notifications_sent_total", dto.MetricType_COUNTER, map[string]float64{"notifier=ops": 5, "notifier=phone": 1}},
		{"marginwatch_notifications_failed_total", dto.MetricType_COUNTER, map[string]float64{"notifier=ops": 2, "notifier=phone": 0}},
		{"marginwatch_notifications_dropped_total", dto.MetricType_COUNTER, map[string]float64{"notifier=ops": 1, "notifier=phone": 0}},
		{"marginwatch_outbox_depth", dto.MetricType_GAUGE, map[string]float64{"notifier=ops": 3, "notifier=phone": 0}},
		{"marginwatch_build_info", dto.MetricType_GAUGE, nil}, // labels checked below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf := mfs[tt.name]
			if mf == nil {
				t.Fatalf("family missing")
			}
			if mf.GetType() != tt.typ {
				t.Errorf("type = %v, want %v", mf.GetType(), tt.typ)
			}
			if mf.GetHelp() == "" {
				t.Errorf("no help text")
			}
			if tt.want == nil {
				return
			}
			if got := values(mf); !maps.Equal(got, tt.want) {
				t.Errorf("series = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("histogram buckets", func(t *testing.T) {
		// main observed 1.5 s and 0.2 s; alt 40 s, above every bucket.
		want := map[string]map[float64]uint64{
			"main": {0.05: 0, 0.1: 0, 0.25: 1, 0.5: 1, 1: 1, 2.5: 2, 5: 2, 10: 2, 30: 2},
			"alt":  {0.05: 0, 0.1: 0, 0.25: 0, 0.5: 0, 1: 0, 2.5: 0, 5: 0, 10: 0, 30: 0},
		}
		wantSum := map[string]float64{"main": 1.7, "alt": 40}
		for _, mm := range mfs["marginwatch_poll_duration_seconds"].GetMetric() {
			acct := labelsOf(mm)["account"]
			h := mm.GetHistogram()
			got := map[float64]uint64{}
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					got[b.GetUpperBound()] = b.GetCumulativeCount()
				}
			}
			if !maps.Equal(got, want[acct]) {
				t.Errorf("%s buckets = %v, want %v", acct, got, want[acct])
			}
			if math.Abs(h.GetSampleSum()-wantSum[acct]) > 1e-9 {
				t.Errorf("%s sum = %v, want %v", acct, h.GetSampleSum(), wantSum[acct])
			}
		}
	})

	t.Run("build info", func(t *testing.T) {
		ms := mfs["marginwatch_build_info"].GetMetric()
		if len(ms) != 1 || ms[0].GetGauge().GetValue() != 1 {
			t.Fatalf("build_info = %v, want one series of value 1", ms)
		}
		l := labelsOf(ms[0])
		if l["goversion"] != runtime.Version() || l["version"] != "v1.2.3" || l["revision"] == "" {
			t.Errorf("build_info labels = %v", l)
		}
	})

	t.Run("runtime and process collectors", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "go_info", "process_start_time_seconds"} {
			if mfs[name] == nil {
				t.Errorf("%s missing", name)
			}
		}
	})
}

func TestSetAlertsReplaces(t *testing.T) {
	m := New("")
	firing := rules.State{Key: rules.Key{Account: "main", Rule: "liquidation-near"}, Phase: rules.Active, Severity: notifiers.Critical}
	pending := rules.State{Key: rules.Key{Account: "main", Rule: "margin-high"}, Phase: rules.Pending, Severity: notifiers.Warning}
	tests := []struct {
		name   string
		states []rules.State
		want   map[string]float64
	}{
		{"two rules", []rules.State{firing, pending}, map[string]float64{
			"rule=liquidation-near,severity=critical,state=firing": 1,
			"rule=margin-high,severity=warning,state=pending":      1,
		}},
		{"one resolved", []rules.State{pending}, map[string]float64{
			"rule=margin-high,severity=warning,state=pending": 1,
		}},
		{"all resolved", nil, map[string]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.SetAlerts(tt.states)
			got := map[string]float64{}
			if mf := scrape(t, m.Handler(nil))["marginwatch_alerts"]; mf != nil {
				got = values(mf)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("marginwatch_alerts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWatchDelivery(t *testing.T) {
	stats := func(s map[string]delivery.Stats) func() map[string]delivery.Stats {
		return func() map[string]delivery.Stats { return s }
	}
	depth := func(d map[string]int, err error) func() (map[string]int, error) {
		return func() (map[string]int, error) { return d, err }
	}
	tests := []struct {
		name      string
		stats     func() map[string]delivery.Stats
		depth     func() (map[string]int, error)
		wantSent  map[string]float64
		wantDepth map[string]float64 // nil: family absent
		// promhttp_metric_handler_errors_total{cause="gathering"} on the
		// second scrape: the handler counts a failure after serving it.
		wantErrs float64
	}{
		{
			name:      "second call replaces the first",
			stats:     stats(map[string]delivery.Stats{"mail": {Sent: 7}}),
			depth:     depth(map[string]int{}, nil),
			wantSent:  map[string]float64{"notifier=mail": 7},
			wantDepth: map[string]float64{"notifier=mail": 0},
		},
		{
			name:      "depth of a notifier no longer configured",
			stats:     stats(map[string]delivery.Stats{"mail": {Sent: 7}}),
			depth:     depth(map[string]int{"old": 2}, nil),
			wantSent:  map[string]float64{"notifier=mail": 7},
			wantDepth: map[string]float64{"notifier=mail": 0, "notifier=old": 2},
		},
		{
			name:     "depth error spares the rest",
			stats:    stats(map[string]delivery.Stats{"mail": {Sent: 7}}),
			depth:    depth(nil, errors.New("database not open")),
			wantSent: map[string]float64{"notifier=mail": 7},
			wantErrs: 1,
		},
		{
			name:      "nil functions",
			wantSent:  nil,
			wantDepth: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New("")
			m.WatchDelivery(stats(map[string]delivery.Stats{"ops": {Sent: 1}}), depth(map[string]int{"ops": 9}, nil))
			m.WatchDelivery(tt.stats, tt.depth)
			h := m.Handler(nil)
			scrape(t, h)
			mfs := scrape(t, h)
			var gotSent, gotDepth map[string]float64
			if mf := mfs["marginwatch_notifications_sent_total"]; mf != nil {
				gotSent = values(mf)
			}
			if mf := mfs["marginwatch_outbox_depth"]; mf != nil {
				gotDepth = values(mf)
			}
			if !maps.Equal(gotSent, tt.wantSent) || (gotSent == nil) != (tt.wantSent == nil) {
				t.Errorf("sent = %v, want %v", gotSent, tt.wantSent)
			}
			if !maps.Equal(gotDepth, tt.wantDepth) || (gotDepth == nil) != (tt.wantDepth == nil) {
				t.Errorf("depth = %v, want %v", gotDepth, tt.wantDepth)
			}
			errs := values(mfs["promhttp_metric_handler_errors_total"])["cause=gathering"]
			if errs != tt.wantErrs {
				t.Errorf("gathering errors = %v, want %v", errs, tt.wantErrs)
			}
			if mfs["marginwatch_polls_total"] == nil && mfs["go_goroutines"] == nil {
				t.Errorf("scrape lost unrelated families")
			}
		})
	}
}

func TestForgetAccount(t *testing.T) {
	m := New("")
	at := time.Unix(1_700_000_000, 0)
	for _, a := range []string{"main", "old"} {
		m.PollDone(a, time.Second, true, at)
		m.SetExchangeWeight(a, 10)
	}
	m.ForgetAccount("old")
	mfs := scrape(t, m.Handler(nil))
	for _, name := range []string{
		"marginwatch_poll_duration_seconds", "marginwatch_polls_total",
		"marginwatch_last_success_timestamp_seconds", "marginwatch_exchange_weight_used",
	} {
		for k := range values(mfs[name]) {
			if !strings.Contains(k, "account=main") {
				t.Errorf("%s still has %s", name, k)
			}
		}
		if len(values(mfs[name])) == 0 {
			t.Errorf("%s lost account main too", name)
		}
	}
}

// TestBadLabelValues checks that invalid UTF-8 from a config neither panics
// nor breaks the exposition.
func TestBadLabelValues(t *testing.T) {
	m := New("")
	bad := "ma\xffin"
	m.PollDone(bad, time.Second, true, time.Unix(1, 0))
	m.SetExchangeWeight(bad, 1)
	m.SetAlerts([]rules.State{{Key: rules.Key{Rule: bad}, Phase: rules.Active, Severity: notifiers.Severity(42)}})
	m.WatchDelivery(
		func() map[string]delivery.Stats { return map[string]delivery.Stats{bad: {Sent: 1}} },
		func() (map[string]int, error) { return map[string]int{bad: 1}, nil },
	)
	mfs := scrape(t, m.Handler(nil))
	want := "ma\uFFFDin"
	for name, lbl := range map[string]string{
		"marginwatch_polls_total":              "account",
		"marginwatch_alerts":                   "rule",
		"marginwatch_notifications_sent_total": "notifier",
		"marginwatch_outbox_depth":             "notifier",
	} {
		ms := mfs[name].GetMetric()
		if len(ms) == 0 || labelsOf(ms[0])[lbl] != want {
			t.Errorf("%s: %v, want %s=%q", name, ms, lbl, want)
		}
	}
	if got := labelsOf(mfs["marginwatch_alerts"].GetMetric()[0])["severity"]; got != fmt.Sprint(notifiers.Severity(42)) {
		t.Errorf("severity label = %q", got)
	}
}

// TestPrivateRegistry: two instances coexist, which they could not on the
// global registry (the Go collector would be registered twice).
func TestPrivateRegistry(t *testing.T) {
	a, b := New(""), New("")
	a.SetExchangeWeight("main", 1)
	if mf := scrape(t, b.Handler(nil))["marginwatch_exchange_weight_used"]; mf != nil {
		t.Errorf("second instance sees the first one's series: %v", values(mf))
	}
	if a.Registry() == b.Registry() {
		t.Error("instances share a registry")
	}
}
