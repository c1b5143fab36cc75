// Package ruletest runs rule unit tests, the engine of `marginwatch test`
// (modelled on `promtool test rules`).
//
// A test file names rule files (or one whole config) and gives, per test, a
// sequence of synthetic account snapshots over time and the notices
// expected at given times. The runner loads the rules with watcher/config
// and rules.Compile, turns each snapshot into metrics with metrics.Compute
// and feeds them to a rules.Engine at a fake clock: the daemon's own code
// from exchanges.Snapshot on, so a test cannot pass on a copy of the rule
// logic that the daemon does not run. It lives under watcher/rules, not in
// cmd/marginwatch, so that Go tests (and later the admin API) can run rule
// tests without the CLI.
//
// # Test file
//
//	rule_files: [../rules.example.yaml]   # relative to the test file; or
//	# config: ../examples/demo.yaml       # a whole config: its rules and accounts
//	start: 2026-01-05T12:00:00Z           # the clock at "0s" (optional)
//	tests:
//	  - name: liquidation-near escalates
//	    interval: 15s                     # evaluations between steps, like polls
//	    account: {name: main, exchange: binance-usdm, labels: {desk: alpha}}
//	    steps:
//	      - at: 0s
//	        balances: [{asset: USDT, wallet: 10000, maint_margin: 100}]
//	        positions:
//	          - {symbol: BTCUSDT, side: long, size: 0.1, entry: 60000, mark: 60000, liq: 40000, leverage: 5, stops: [{trigger: 55000, close_position: true}]}
//	      - at: 1m
//	        positions: [{symbol: BTCUSDT, side: long, mark: 45000}]   # only what changes
//	    expect:
//	      - at: 1m
//	        alerts: [{rule: liquidation-near, severity: warning, symbol: BTCUSDT, side: long, kind: firing}]
//
// A step carries the previous one forward: a balance (by asset) or position
// (by symbol and side) it names overrides only the fields given; `closed:
// true` removes a position; `events` and `transfers` happen at that step
// only; `stale: true` makes the step a failed poll. A step without `at`
// comes one interval after the previous one. The engine is evaluated at
// every interval tick from 0 up to the last step or expectation, and at
// every step and expectation time. An expectation lists every notice of the
// evaluation at its time, in any order (`alerts: []` asserts none); times
// not listed are not checked. An alert's account defaults to the test's.
//
// Defaults that keep files short: margin_balance = wallet + unrealized_pnl,
// the cross figures equal the totals, a position's notional is size × mark,
// its unrealized_pnl (mark − entry) × size × side, its pool the single
// balance's asset, margin_type cross. Balance figures are not summed from
// the positions: give maint_margin and unrealized_pnl where a rule reads
// them.
package ruletest
