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

// TestPositionContextShowsItsPoolsMarginRatio: on a COIN-M account with
// several margin pools, a cross ETH position's alert shows the ETH pool's
// margin ratio, not the account's highest (the BTC pool's).
func TestPositionContextShowsItsPoolsMarginRatio(t *testing.T) {
	rs := mustCompile(t, config.Rule{Name: "lev", Scope: "position", Metric: "leverage",
		Above: map[string]float64{"warning": 10}, Repeat: map[string]time.Duration{"warning": time.Hour}, SendResolved: true})
	snap := &exchanges.Snapshot{Time: t0, Inverse: true,
		Balances: []exchanges.Balance{
			{Asset: "BTC", WalletBalance: 1, MarginBalance: 1, CrossWalletBalance: 1, CrossMaintMargin: 0.9},
			{Asset: "ETH", WalletBalance: 10, MarginBalance: 10, CrossWalletBalance: 10, CrossMaintMargin: 1},
		},
		Positions: []exchanges.Position{{Symbol: "ETHUSD_PERP", Side: exchanges.Long, Size: 1, ContractSize: 10, MarkPrice: 2000, EntryPrice: 2000,
			Leverage: 20, MarginType: exchanges.Cross, MarginAsset: "ETH", Pool: "ETH", Notional: 0.005}},
	}
	res := NewEngine(rs, nil).Evaluate(metrics.Compute("main", "binance-coinm", nil, snap, nil, t0), t0)
	if len(res.Notices) != 1 {
		t.Fatalf("notices %d, want 1", len(res.Notices))
	}
	if got := res.Notices[0].Alert.Context["margin_ratio"]; got != 0.1 {
		t.Errorf("ETH position's context margin_ratio = %v, want the ETH pool's 0.1", got)
	}
}
