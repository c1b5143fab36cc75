package rules

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// TestAlertContextIsFinite: an exchange figure that is not a number (an
// adapter's NaN or infinite mark price; metrics.Compute leaves such metrics
// absent) stays out of the alert's context. JSON cannot hold it, so the
// outbox could not store the alert, and the whole evaluation's notices would
// be dropped while the engine's state had moved on.
func TestAlertContextIsFinite(t *testing.T) {
	rs := mustCompile(t, config.Rule{
		Name: "leverage-cap", Scope: ScopePosition, Metric: "leverage",
		Above: map[string]float64{"warning": 5}, Repeat: map[string]time.Duration{"warning": time.Hour},
	})
	raw := &exchanges.Position{Symbol: "BTCUSDT", Side: exchanges.Long, MarkPrice: math.NaN(),
		EntryPrice: math.Inf(1), LiquidationPrice: math.Inf(-1), Leverage: 10}
	acct := positionsAcct("main", pos{"BTCUSDT", "long", metrics.Leverage, 10})
	acct.Positions[0].Raw = raw
	res := NewEngine(rs, nil).Evaluate(acct, t0)
	if len(res.Notices) != 1 {
		t.Fatalf("got %d notices, want 1", len(res.Notices))
	}
	a := res.Notices[0].Alert
	for k, v := range a.Context {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("context %s = %v", k, v)
		}
	}
	if _, err := json.Marshal(a); err != nil {
		t.Errorf("the alert cannot be stored: %v", err)
	}
}
