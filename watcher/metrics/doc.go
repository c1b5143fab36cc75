// Package metrics turns an exchange snapshot into the risk metrics of
// SPEC.md ("Metrics"): margin ratio, equity, leverage, exposure, drawdown,
// funding and data age per account (per margin asset on COIN-M), and
// liquidation distance, leverage, size, funding, return on margin and stop
// coverage per position.
//
// Definitions follow Binance. Where a figure cannot be defined (no
// liquidation price, too few candles for ATR, a gap in the exchange's
// answer) the metric is absent rather than made up; the rules treat an
// absent value as a gap that changes no alert. Equity at or below zero is
// the one infinite case (SPEC): effective_leverage and size_pct_equity are
// +Inf and net_exposure_ratio ±Inf by its sign, so above-rules fire.
//
// Compute is on the polling hot path. For a snapshot with n positions it
// allocates the Account, its Positions slice and, on COIN-M, the Assets slice
// — nothing per position — so that accounts with thousands of positions
// stay cheap (see BenchmarkCompute).
//
// EquityHistory keeps the equity peaks that drawdown_pct needs in a monotonic
// deque bucketed to one minute, so months of polling cost a bounded few
// hundred kilobytes at most, and persists them in a small versioned,
// checksummed binary form.
package metrics
