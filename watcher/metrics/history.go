package metrics

import "time"

// EquityHistory remembers enough of an account's equity to answer "what was
// the peak within the last W" for any window up to its capacity. It must be
// persisted (MarshalBinary/UnmarshalBinary) so drawdown survives restarts.
// Implementation: TODO (metrics helper).
type EquityHistory struct{}

// Observe records the equity at t.
func (h *EquityHistory) Observe(t time.Time, equity float64) {}

// Drawdown returns (peak − equity) / peak × 100 with the peak over
// [now−window, now] (equity included), and false when there is no positive peak.
func (h *EquityHistory) Drawdown(now time.Time, window time.Duration, equity float64) (float64, bool) {
	return 0, false
}
