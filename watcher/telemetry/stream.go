package telemetry

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marginwatch/marginwatch/exchanges"
)

// latencyBuckets span a loopback tick (well under a millisecond) to a
// tick that waited behind a slow commit.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// streamMetrics are the real-time mode's series.
type streamMetrics struct {
	latency    prometheus.Histogram
	up         *prometheus.GaugeVec
	reconnects *prometheus.CounterVec

	mu   sync.Mutex
	seen map[string]uint64 // reconnects already counted, by account
}

func newStreamMetrics() *streamMetrics {
	return &streamMetrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "stream_tick_to_evaluation_seconds",
			Help:      "Time from the arrival of a streamed change (mark-price tick, account or order update) to the end of its evaluation.",
			Buckets:   latencyBuckets,
		}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "stream_up",
			Help:      "1 while a streamed account's streams are connected and current, 0 while it is polled instead.",
		}, []string{"account"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "stream_reconnects_total",
			Help:      "Stream connections re-established (forced 24 h reconnects and resubscriptions included).",
		}, []string{"account"}),
		seen: map[string]uint64{},
	}
}

func (s *streamMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.latency, s.up, s.reconnects}
}

// Streamed records the tick-to-evaluation latency of one streamed change.
func (m *Metrics) Streamed(_ string, latency time.Duration) {
	m.stream.latency.Observe(max(latency.Seconds(), 0))
}

// SetStreamState records a streamed account's stream health.
func (m *Metrics) SetStreamState(account string, st exchanges.StreamStatus) {
	account = labelValue(account)
	up := 0.0
	if st.Up {
		up = 1
	}
	m.stream.up.WithLabelValues(account).Set(up)
	s := m.stream
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.reconnects.WithLabelValues(account)
	if prev := s.seen[account]; st.Reconnects > prev {
		c.Add(float64(st.Reconnects - prev))
	}
	s.seen[account] = st.Reconnects
}

func (s *streamMetrics) forget(account string) {
	l := prometheus.Labels{"account": account}
	s.up.DeletePartialMatch(l)
	s.reconnects.DeletePartialMatch(l)
	s.mu.Lock()
	delete(s.seen, account)
	s.mu.Unlock()
}
