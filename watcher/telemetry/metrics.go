package telemetry

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/marginwatch/marginwatch/watcher/budget"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// namespace prefixes every marginwatch metric.
const namespace = "marginwatch"

// Values of the result label on marginwatch_polls_total and
// marginwatch_config_reloads_total.
const (
	resultOK    = "ok"
	resultError = "error"
)

// pollBuckets spans one fast REST round trip (tens of milliseconds) up to a
// poll that waits out the exchange client's timeouts, so a struggling API
// shows up as a shift to the right instead of vanishing into +Inf.
var pollBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics is the daemon's Prometheus instrumentation. It owns a private
// registry (never prometheus.DefaultRegisterer). Its methods are safe for
// concurrent use; the zero value is not usable, call New.
type Metrics struct {
	reg *prometheus.Registry

	pollDuration *prometheus.HistogramVec
	polls        *prometheus.CounterVec
	lastSuccess  *prometheus.GaugeVec
	weight       *prometheus.GaugeVec

	budgetWeight *prometheus.GaugeVec
	budgetLimit  *prometheus.GaugeVec
	pollEvery    *prometheus.GaugeVec
	hostWeight   *prometheus.GaugeVec

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	reloads    *prometheus.CounterVec

	alerts   *alertCollector
	delivery *deliveryCollector
	stream   *streamMetrics
}

// New builds the metrics and registers them, the Go runtime and process
// collectors, and marginwatch_build_info on a fresh registry. version is the
// binary's version (set with -ldflags -X); empty means the module version
// the Go toolchain recorded.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "poll_duration_seconds",
			Help:      "How long one poll of an account took (snapshot, candles and metric computation), successful or not.",
			Buckets:   pollBuckets,
		}, []string{"account"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "polls_total",
			Help:      `Polls of an account by result ("ok" or "error"). A rising error rate means the exchange or the key has a problem.`,
		}, []string{"account", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_success_timestamp_seconds",
			Help:      "Unix time of the last successful poll of an account. time() minus this is how old the data behind the account's alerts is.",
		}, []string{"account"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "exchange_weight_used",
			Help:      "Request weight the exchange reported as used in its current rate-limit window (Binance X-MBX-USED-WEIGHT-1M), per account. Near the exchange's limit, polls start failing with HTTP 429/418.",
		}, []string{"account"}),
		budgetWeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "budget_weight_per_minute",
			Help:      "Request weight a minute the poll plan spends from a shared budget (venue and host), at the effective intervals. Planned to stay under 80% of marginwatch_budget_limit_per_minute.",
		}, []string{"budget"}),
		budgetLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "budget_limit_per_minute",
			Help:      "The venue's request weight limit a minute for a shared budget (Binance: 2,400 per IP).",
		}, []string{"budget"}),
		pollEvery: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "poll_interval_seconds",
			Help:      "Effective interval of an account's snapshots (polls, or reconciliations when streaming): the configured one, stretched when its budget is oversubscribed.",
		}, []string{"account"}),
		hostWeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "exchange_used_weight",
			Help:      "Request weight the exchange last reported as used this minute on a host by this IP (Binance X-MBX-USED-WEIGHT-1M). The adapters hold requests above 80% of the limit.",
		}, []string{"host"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_successful",
			Help:      "1 if the last configuration (re)load succeeded, 0 if it was rejected and the previous configuration is still running.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_success_timestamp_seconds",
			Help:      "Unix time of the last successful configuration (re)load.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "config_reloads_total",
			Help:      `Configuration (re)loads by result ("ok" or "error").`,
		}, []string{"result"}),
		alerts:   newAlertCollector(),
		delivery: newDeliveryCollector(),
		stream:   newStreamMetrics(),
	}
	// Both results exist from the start so rate() and increase() see the
	// first failure instead of a series appearing out of nowhere.
	m.reloads.WithLabelValues(resultOK)
	m.reloads.WithLabelValues(resultError)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(version),
		m.pollDuration, m.polls, m.lastSuccess, m.weight,
		m.budgetWeight, m.budgetLimit, m.pollEvery, m.hostWeight,
		m.reloadOK, m.reloadTime, m.reloads,
		m.alerts, m.delivery,
	)
	m.reg.MustRegister(m.stream.collectors()...)
	return m
}

// Registry returns the registry the metrics live on, for callers that want
// to add their own collectors or gather directly (tests, an embedding
// program).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// PollDone records one poll of account: how long it took, whether it
// succeeded and, when it did, at what time.
func (m *Metrics) PollDone(account string, took time.Duration, ok bool, at time.Time) {
	account = labelValue(account)
	m.pollDuration.WithLabelValues(account).Observe(max(took.Seconds(), 0))
	okc := m.polls.WithLabelValues(account, resultOK)
	errc := m.polls.WithLabelValues(account, resultError)
	if !ok {
		errc.Inc()
		return
	}
	okc.Inc()
	m.lastSuccess.WithLabelValues(account).Set(unixSeconds(at))
}

// SetExchangeWeight records the request weight the exchange reported as
// used for account.
func (m *Metrics) SetExchangeWeight(account string, used int) {
	m.weight.WithLabelValues(labelValue(account)).Set(float64(used))
}

// SetPlan replaces the budget and interval series with those of p: a
// reload that drops an account or a budget drops its series.
func (m *Metrics) SetPlan(p budget.Plan) {
	m.budgetWeight.Reset()
	m.budgetLimit.Reset()
	m.pollEvery.Reset()
	for _, b := range p.Budgets {
		m.budgetWeight.WithLabelValues(labelValue(b.Budget)).Set(b.Planned)
		m.budgetLimit.WithLabelValues(labelValue(b.Budget)).Set(float64(b.Limit))
	}
	for _, s := range p.Schedules {
		m.pollEvery.WithLabelValues(labelValue(s.Account)).Set(s.Every.Seconds())
	}
}

// SetHostWeight records the request weight the exchange reported as used
// this minute on host.
func (m *Metrics) SetHostWeight(host string, used int) {
	m.hostWeight.WithLabelValues(labelValue(host)).Set(float64(used))
}

// ForgetAccount removes every series of account, for a reload that dropped
// it from the config; otherwise its last_success_timestamp would stand still
// and look exactly like an account whose data went stale.
func (m *Metrics) ForgetAccount(account string) {
	l := prometheus.Labels{"account": labelValue(account)}
	m.pollDuration.DeletePartialMatch(l)
	m.polls.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.weight.DeletePartialMatch(l)
	m.pollEvery.DeletePartialMatch(l)
	m.stream.forget(labelValue(account))
}

// SetAlerts replaces the alert counts with those of states: one series per
// (rule, severity, state) that has at least one alert. It swaps the whole
// set at once, so a scrape never sees a half-updated one.
func (m *Metrics) SetAlerts(states []rules.State) {
	counts := make(map[alertLabels]int, len(states))
	for _, s := range states {
		counts[alertLabels{
			rule:     labelValue(s.Key.Rule),
			severity: s.Severity.String(),
			state:    labelValue(string(s.Phase)),
		}]++
	}
	m.alerts.set(counts)
}

// Reloaded records the outcome of a configuration (re)load, the initial
// load included, at time at.
func (m *Metrics) Reloaded(ok bool, at time.Time) {
	if !ok {
		m.reloadOK.Set(0)
		m.reloads.WithLabelValues(resultError).Inc()
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(unixSeconds(at))
	m.reloads.WithLabelValues(resultOK).Inc()
}

// WatchDelivery makes every scrape read the delivery numbers live: stats
// gives the dispatcher's counters per notifier and depth the number of
// entries waiting in the outbox per notifier. A second call replaces the
// first (a reload swaps the dispatcher); a fresh dispatcher counts from zero
// again, which Prometheus's rate() and increase() treat as a counter reset.
// Either function may be nil. A depth error fails only the depth series of
// that scrape and counts in promhttp_metric_handler_errors_total.
func (m *Metrics) WatchDelivery(stats func() map[string]delivery.Stats, depth func() (map[string]int, error)) {
	m.delivery.src.Store(&deliverySource{stats: stats, depth: depth})
}

// unixSeconds is t as fractional Unix seconds, the base unit Prometheus
// expects for timestamps.
// Whole seconds and the fraction are converted apart: today's UnixNano does
// not fit a float64's 53-bit mantissa, and converting it first turns a clean
// .25 s into .2499998.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// labelValue makes s a valid label value: client_golang panics on invalid
// UTF-8, and a config typo must not crash the daemon.
func labelValue(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// buildInfo is the usual constant-1 gauge whose labels say what is running.
func buildInfo(version string) prometheus.Collector {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" && bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels say which marginwatch build is running (module version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{
			"version":   labelValue(version),
			"revision":  labelValue(revision),
			"goversion": runtime.Version(),
		},
	}, func() float64 { return 1 })
}

// alertLabels is one marginwatch_alerts series.
type alertLabels struct{ rule, severity, state string }

// alertCollector exports the alert counts last given to SetAlerts.
type alertCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	counts map[alertLabels]int
}

func newAlertCollector() *alertCollector {
	return &alertCollector{
		desc: prometheus.NewDesc(namespace+"_alerts",
			`Alerts that are not inactive, by rule, severity and state ("pending": condition true, waiting for "for"; "firing": notified). Counts alerts, not incidents' identities, so symbols and sides are not labels.`,
			[]string{"rule", "severity", "state"}, nil),
	}
}

func (c *alertCollector) set(counts map[alertLabels]int) {
	c.mu.Lock()
	c.counts = counts
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *alertCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *alertCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	counts := c.counts
	c.mu.Unlock()
	// The map is never written after set, so it is read without the lock.
	for l, n := range counts {
		ch <- constMetric(c.desc, prometheus.GaugeValue, float64(n), l.rule, l.severity, l.state)
	}
}

// deliverySource is what WatchDelivery was given.
type deliverySource struct {
	stats func() map[string]delivery.Stats
	depth func() (map[string]int, error)
}

// deliveryCollector reads the dispatcher's counters and the outbox depth at
// scrape time.
type deliveryCollector struct {
	sent, failed, dropped, depth *prometheus.Desc

	src atomic.Pointer[deliverySource]
}

func newDeliveryCollector() *deliveryCollector {
	notifier := []string{"notifier"}
	return &deliveryCollector{
		sent: prometheus.NewDesc(namespace+"_notifications_sent_total",
			"Notifications a notifier delivered (one per outbox entry; an entry may carry several alerts).",
			notifier, nil),
		failed: prometheus.NewDesc(namespace+"_notifications_failed_total",
			"Failed delivery attempts per notifier, retryable or not; a retry that later succeeds also counts in sent.",
			notifier, nil),
		dropped: prometheus.NewDesc(namespace+"_notifications_dropped_total",
			"Notifications given up on per notifier: permanent failures and entries older than max_age. Each one is an alert nobody received.",
			notifier, nil),
		depth: prometheus.NewDesc(namespace+"_outbox_depth",
			"Notifications waiting in the outbox per notifier. Growing means the notifier cannot deliver.",
			notifier, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sent
	ch <- c.failed
	ch <- c.dropped
	ch <- c.depth
}

// Collect implements prometheus.Collector.
func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil {
		return
	}
	var stats map[string]delivery.Stats
	if src.stats != nil {
		stats = src.stats()
	}
	for name, s := range stats {
		name = labelValue(name)
		ch <- constMetric(c.sent, prometheus.CounterValue, float64(s.Sent), name)
		ch <- constMetric(c.failed, prometheus.CounterValue, float64(s.Failed), name)
		ch <- constMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped), name)
	}
	if src.depth == nil {
		return
	}
	depth, err := src.depth()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, fmt.Errorf("read outbox depth: %w", err))
		return
	}
	// The outbox only knows notifiers with something waiting; an empty
	// outbox is a 0, not a missing series.
	for name := range stats {
		if _, ok := depth[name]; !ok {
			ch <- constMetric(c.depth, prometheus.GaugeValue, 0, labelValue(name))
		}
	}
	for name, n := range depth {
		ch <- constMetric(c.depth, prometheus.GaugeValue, float64(n), labelValue(name))
	}
}

// constMetric is prometheus.MustNewConstMetric without the panic.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
