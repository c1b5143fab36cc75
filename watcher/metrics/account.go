package metrics

import (
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Account is one account's metrics after one poll (or, when Stale, the
// little that is known without fresh data).
type Account struct {
	Name     string
	Exchange string
	Labels   map[string]string
	// Time is when the snapshot was read; zero when no snapshot ever was.
	Time time.Time
	// Stale means this poll failed: only DataAgeSeconds is meaningful, and
	// rules on other metrics keep their state untouched.
	Stale bool
	// Metrics are the account-scope metrics. For a COIN-M account the money
	// metrics are per asset (Assets) and Metrics holds margin_ratio (the
	// highest per-asset ratio), position_count and data_age_seconds.
	Metrics   Set
	Assets    []Asset
	Positions []Position
	Events    []exchanges.Event

	history *EquityHistory
}

// Asset is the account metrics of one margin asset.
type Asset struct {
	Asset   string
	Metrics Set
}

// Position is one position's metrics.
type Position struct {
	Symbol string
	Side   exchanges.Side
	// Raw is the position the metrics were computed from (mark, entry and
	// liquidation price for alert context). Read-only.
	Raw     *exchanges.Position
	Metrics Set
}

// Drawdown returns drawdown_pct over another window than the default 24h.
func (a *Account) Drawdown(now time.Time, window time.Duration) (float64, bool) {
	if a.history == nil || a.Stale {
		return 0, false
	}
	eq, ok := a.Metrics.Get(Equity)
	if !ok && len(a.Assets) == 1 {
		// A single-asset COIN-M account keeps its equity per asset.
		eq, ok = a.Assets[0].Metrics.Get(Equity)
	}
	if !ok {
		return 0, false
	}
	return a.history.Drawdown(now, window, eq)
}
