package metrics

import (
	"math"

	"github.com/marginwatch/marginwatch/notifiers"
)

// ID names one metric. IDs index a Set, so a lookup costs no allocation.
type ID uint8

// The metrics of SPEC.md. Names are the contract; order is internal.
const (
	MarginRatio ID = iota
	Equity
	AvailableBalance
	UnrealizedPnL
	EffectiveLeverage
	NetExposureRatio
	DrawdownPct
	FundingNextCost
	FundingPaid24h
	PositionCount
	DataAgeSeconds
	LiqDistancePct
	LiqDistanceATR
	Leverage
	SizePctEquity
	FundingRate
	FundingAPRPct
	UnrealizedPnLPct
	HasStopLoss
	StopCoveragePct
	StopDistancePct
	numMetrics
)

// Scope is where a metric is defined: on the account, on each position, or both.
type Scope uint8

// Scopes (a bit set). PoolScope marks the account metrics that are per
// margin pool when an account has more than one (an Asset's Metrics); the
// other account metrics (margin_ratio as the highest pool's, position_count,
// data_age_seconds) stay on the account.
const (
	AccountScope Scope = 1 << iota
	PositionScope
	PoolScope
)

// Info describes a metric.
type Info struct {
	Name   string
	Scopes Scope
	Help   string
	// Unit is what the value measures: rules compare the raw value (a
	// margin_ratio of 0.8, a liq_distance_pct of 7), and every output for
	// people shows it through Unit.Format ("80%", "7%").
	Unit notifiers.Unit
}

var catalogue = [numMetrics]Info{
	MarginRatio:       {"margin_ratio", AccountScope | PoolScope | PositionScope, "account: cross maintenance margin / (cross wallet + cross unrealized PnL), 1.0 = liquidation, the highest pool's; position: the same for an isolated position", notifiers.UnitFraction},
	Equity:            {"equity", AccountScope | PoolScope, "wallet balance + unrealized PnL (Binance totalMarginBalance)", notifiers.UnitMoney},
	AvailableBalance:  {"available_balance", AccountScope | PoolScope, "balance free for new positions or withdrawal", notifiers.UnitMoney},
	UnrealizedPnL:     {"unrealized_pnl", AccountScope | PoolScope, "unrealized PnL of all positions", notifiers.UnitMoney},
	EffectiveLeverage: {"effective_leverage", AccountScope | PoolScope, "Σ|notional| / equity; +Inf when equity <= 0", notifiers.UnitMultiple},
	NetExposureRatio:  {"net_exposure_ratio", AccountScope | PoolScope, "(long notional − short notional) / equity; ±Inf by its sign when equity <= 0", notifiers.UnitMultiple},
	DrawdownPct:       {"drawdown_pct", AccountScope | PoolScope, "fall of equity from its peak within the window (default 24h), in percent; deposits, withdrawals and transfers shift the peak", notifiers.UnitPercent},
	FundingNextCost:   {"funding_next_cost", AccountScope | PoolScope | PositionScope, "projected cost of the next funding; positive = you pay", notifiers.UnitMoney},
	FundingPaid24h:    {"funding_paid_24h", AccountScope | PoolScope, "funding paid over the last 24h; positive = paid", notifiers.UnitMoney},
	PositionCount:     {"position_count", AccountScope, "number of open positions", notifiers.UnitCount},
	DataAgeSeconds:    {"data_age_seconds", AccountScope, "seconds since the last successful poll", notifiers.UnitSeconds},
	LiqDistancePct:    {"liq_distance_pct", PositionScope, "|mark − liquidation price| / mark × 100, negative once the mark is past it; absent without a liquidation price", notifiers.UnitPercent},
	LiqDistanceATR:    {"liq_distance_atr", PositionScope, "signed distance to liquidation in units of ATR(14) on 1h candles", notifiers.UnitATR},
	Leverage:          {"leverage", PositionScope, "the position's leverage setting", notifiers.UnitMultiple},
	SizePctEquity:     {"size_pct_equity", PositionScope, "|notional| / equity × 100; +Inf when equity <= 0", notifiers.UnitPercent},
	FundingRate:       {"funding_rate", PositionScope, "current predicted funding rate per interval", notifiers.UnitRate},
	FundingAPRPct:     {"funding_apr_pct", PositionScope, "funding rate annualised, in %, signed as cost to this position", notifiers.UnitPercent},
	UnrealizedPnLPct:  {"unrealized_pnl_pct", PositionScope, "PnL / (size × entry / leverage) × 100 (Binance's ROE)", notifiers.UnitPercent},
	HasStopLoss:       {"has_stop_loss", PositionScope, "1 when an effective stop (one that triggers before liquidation) protects the position, else 0", notifiers.UnitBool},
	StopCoveragePct:   {"stop_coverage_pct", PositionScope, "Σ quantity of effective stops / |size| × 100 (close-position = 100), capped at 100; 0 without one", notifiers.UnitPercent},
	StopDistancePct:   {"stop_distance_pct", PositionScope, "|mark − nearest effective stop trigger| / mark × 100; absent without one", notifiers.UnitPercent},
}

// All returns every metric ID in catalogue order.
func All() []ID {
	ids := make([]ID, numMetrics)
	for i := range ids {
		ids[i] = ID(i)
	}
	return ids
}

// Lookup finds a metric by name.
func Lookup(name string) (ID, bool) {
	for i := range catalogue {
		if catalogue[i].Name == name {
			return ID(i), true
		}
	}
	return 0, false
}

// Info describes the metric.
func (id ID) Info() Info { return catalogue[id] }

// PerPool reports whether an account rule on id judges each margin pool of
// an account with several (the Assets' Metrics) rather than the account: every
// PoolScope metric but margin_ratio, which the account carries as its
// highest pool's.
func (id ID) PerPool() bool {
	return id < numMetrics && catalogue[id].Scopes&PoolScope != 0 && id != MarginRatio
}

// String is the metric's name.
func (id ID) String() string { return catalogue[id].Name }

// Set holds the values of one target's metrics. The zero Set holds none.
type Set struct {
	vals [numMetrics]float64
	has  uint32
}

// Get returns the value of id and whether it is present.
func (s *Set) Get(id ID) (float64, bool) {
	if s.has&(1<<id) == 0 {
		return 0, false
	}
	return s.vals[id], true
}

// Put sets id to v. NaN means "absent" and is not stored. ±Inf is a value:
// equity at or below zero makes effective_leverage, size_pct_equity and
// net_exposure_ratio infinite, and above-rules must see that.
func (s *Set) Put(id ID, v float64) {
	if math.IsNaN(v) {
		s.Delete(id)
		return
	}
	s.vals[id] = v
	s.has |= 1 << id
}

// Delete removes id.
func (s *Set) Delete(id ID) { s.has &^= 1 << id }

// Map returns the present values by name (for templates). Values may be
// ±Inf, which encoding/json refuses: JSON output shows them as null (SPEC).
func (s *Set) Map() map[string]float64 {
	m := make(map[string]float64)
	for i := range catalogue {
		if v, ok := s.Get(ID(i)); ok {
			m[catalogue[i].Name] = v
		}
	}
	return m
}
