package metrics

import (
	"cmp"
	"slices"
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
	// Metrics are the account-scope metrics. With one margin pool every one
	// of them is here (and Pool names the pool). With several, the money
	// metrics are per pool (Assets) and Metrics holds margin_ratio (the
	// highest pool's), position_count and data_age_seconds: money in
	// different assets cannot be added up.
	Metrics Set
	// Pool is the Asset of the account's only margin pool; "" when it has
	// several (see Assets) or none.
	Pool string
	// Assets holds one entry per margin pool, in the snapshot's order, when
	// the account has more than one; nil otherwise.
	Assets    []Asset
	Positions []Position
	Events    []exchanges.Event

	history *EquityHistory
	// spare keeps the Assets array for ComputeInto while Assets is nil;
	// table is liqSides' scratch.
	spare []Asset
	table []int32
	// at is when the equities were observed (the snapshot's time, or the
	// evaluation's when the snapshot had none).
	at time.Time
}

// Asset is the account metrics of one margin pool, named by its asset
// ("USDT", "BTC", or "USD" in USDⓈ-M multi-assets mode).
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

	// pool is the index of the position's pool in the snapshot's Balances
	// (-1: none). liqSide is +1 when the liquidation price is below the
	// safe side (a long, or the legs of a net long cross symbol), -1 when
	// above.
	pool    int
	liqSide float64
	// Scratch of liqSides: the index of the first cross leg of this
	// symbol and pool, and on it the number of legs and their net size.
	leader int32
	legs   int32
	net    float64
}

// Drawdown returns drawdown_pct over another window than the default 24h,
// for the pool named asset: "" (or Pool) on a single-pool account, one of
// Assets otherwise. False when there is no history, no such pool or no
// equity.
func (a *Account) Drawdown(asset string, now time.Time, window time.Duration) (float64, bool) {
	if a.history == nil || a.Stale {
		return 0, false
	}
	set, pool := &a.Metrics, a.Pool
	if len(a.Assets) > 0 {
		set = nil
		for i := range a.Assets {
			if a.Assets[i].Asset == asset {
				set, pool = &a.Assets[i].Metrics, asset
				break
			}
		}
	} else if asset != "" && asset != a.Pool {
		set = nil
	}
	if set == nil {
		return 0, false
	}
	eq, ok := set.Get(Equity)
	if !ok {
		return 0, false
	}
	return a.history.drawdownAt(pool, a.at, now, window, eq)
}

// Clone returns a deep copy of a that shares nothing a later ComputeInto
// into a overwrites: the positions' Raw data is copied too (their Stops and
// Candles are read-only and stay shared, as are Labels).
func (a *Account) Clone() *Account {
	c := *a
	c.spare, c.table = nil, nil
	c.Assets = slices.Clone(a.Assets)
	c.Events = slices.Clone(a.Events)
	c.Positions = slices.Clone(a.Positions)
	raw := make([]exchanges.Position, len(a.Positions))
	for i := range c.Positions {
		if p := c.Positions[i].Raw; p != nil {
			raw[i] = *p
			c.Positions[i].Raw = &raw[i]
		}
	}
	return &c
}

// CompareRisk orders positions nearest to liquidation first (by
// liq_distance_pct); those without a liquidation price come last, and
// compare equal among themselves, so a stable sort keeps their order.
func CompareRisk(x, y *Position) int {
	dx, okx := x.Metrics.Get(LiqDistancePct)
	dy, oky := y.Metrics.Get(LiqDistancePct)
	switch {
	case okx && oky:
		return cmp.Compare(dx, dy)
	case okx:
		return -1
	case oky:
		return 1
	}
	return 0
}
