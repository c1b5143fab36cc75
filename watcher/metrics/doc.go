// Package metrics turns an exchange snapshot into the risk metrics of
// SPEC.md ("Metrics", "Margin pools"): margin ratio, equity, leverage,
// exposure, drawdown, funding and data age per account — per margin pool
// when it has several — and liquidation distance, leverage, size, funding,
// return on margin and stop protection per position.
//
// Definitions follow Binance. Where a figure cannot be defined (no
// liquidation price, too few candles for ATR, a gap in the exchange's
// answer) the metric is absent rather than made up; the rules treat an
// absent value as a gap that changes no alert. Equity at or below zero is
// the one infinite case (SPEC): effective_leverage and size_pct_equity are
// +Inf and net_exposure_ratio ±Inf by its sign, so above-rules fire.
//
// Stops count only when effective: a stop that would trigger beyond the
// liquidation price never fires (stops.go). liq_distance_pct is signed:
// negative once the mark is past the liquidation price.
//
// Compute is on the polling hot path. For a snapshot with n positions it
// allocates the Account, its Positions slice, one scratch index and, with
// several pools, the Assets slice — nothing per position — so that accounts
// with thousands of positions stay cheap (see BenchmarkCompute).
//
// EquityHistory keeps, per pool, the equity peaks that drawdown_pct needs,
// net of deposits, withdrawals and transfers, in a monotonic deque bucketed
// to one minute, so months of polling cost a bounded few hundred kilobytes
// per pool at most, and persists them (with the IDs of the transfers
// applied, so none is applied twice) in a small versioned, checksummed
// binary form.
package metrics
