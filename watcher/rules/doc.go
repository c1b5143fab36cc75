// Package rules compiles the alerting rules of a config and runs the alert
// lifecycle of SPEC.md:
//
//	inactive → pending (condition true, waiting `for`) → firing (notify)
//	→ repeat every `repeat` while firing → resolved (notify if send_resolved)
//
// Compile turns config rules into *Rule values (thresholds indexed by
// severity, metric IDs resolved, templates parsed and test-executed) and adds
// one built-in "data-stale" rule per account. An Engine holds the State of
// every pending or firing alert; Evaluate feeds it one account's metrics and
// returns the notices due and the state changes to persist. FiringNow answers
// "what would fire right now" without any state, for `marginwatch status`.
//
// # Conditions
//
// An `above` rule fires at severity s when value > threshold[s], a `below`
// rule when value < threshold[s]; the most severe match wins. ±Inf is a
// value like any other: equity at or below zero makes effective_leverage
// +Inf, which fires (or keeps firing) every above-rule on it. While an alert
// fires at severity c, each severity up to c stays matched until the value
// has moved `hysteresis` back past that severity's threshold; stepping up
// always uses the plain thresholds, and `for` only delays the start of an
// incident, never an escalation.
//
// Hysteresis is per threshold: the rule's `hysteresis`, or unset 2% of each
// threshold's magnitude (at most half the gap to the next severity's
// threshold; 0 for has_stop_loss, whose value 1 must resolve).
//
// A rule with `any:` has several conditions on one target, each a metric
// with its own thresholds and hysteresis; it is one alert (one Key, one
// incident ID) at the highest severity any condition gives, and its notices
// carry the metric, value and threshold of the condition that gives it.
// Present conditions may start or escalate it; it eases or resolves only
// when no condition that had a value for it is missing now (a gap is no
// sign of recovery; a condition that never had one, such as an ATR before
// 15 closed candles, does not hold it open).
//
// `keep_firing_for` (Prometheus semantics): a firing alert keeps each
// severity it reached for that long after the condition last held it
// (State.Held); the condition returning meanwhile sends nothing, repeats go
// on, and it resolves once the condition has been clear for that long. A
// drawdown rule with `window: day` measures the drawdown since the last
// daily reset (`reset_at` in `timezone`) and keeps each severity it reached
// until the next reset: "stop for the day" stays on however equity bounces,
// and resolves at the first evaluation of the new day, whose peak is the
// equity then. A pending alert is not kept: it never notified.
//
// A missing metric (a gap in the exchange's answer, no liquidation price)
// is no sign either way: it starts no alert and changes none — no
// resolution, easing, escalation or re-fire, a pending alert stays pending —
// and the alert keeps its incident ID and last known value. A firing alert
// keeps repeating on its timer through a gap, with the last known value.
//
// # Endings
//
// An alert resolves (kind resolved, when send_resolved) only when its metric
// is present and back on the safe side past the hysteresis. When its target
// goes away in a fresh evaluation — a position closed or liquidated, a
// margin pool no longer held — a firing alert ends with status resolved,
// kind closed and reason "liquidated" when the same evaluation's events hold
// a liquidation of that symbol (and side, when the event names one), else
// "closed"; a pending one ends silently. send_resolved: false silences a
// plain close but never a liquidation. The closing summary is built in (see
// Closed); the runbook is the rule's, executed with .Reason set.
//
// Account-scope rules read the account's metrics. On an account with several
// margin pools (COIN-M coins, USDⓈ-M USDT and USDC in single-asset mode),
// whose money metrics exist per pool, a rule on a money metric
// (metrics.ID.PerPool: drawdown_pct with any window included) judges each
// pool instead: the pool's asset becomes the alert's Symbol and its "asset"
// label (so "equity below 2" fires per coin). margin_ratio, position_count
// and data_age_seconds stay on the account, margin_ratio as the highest
// pool's. An account with one pool keeps everything on the account, so its
// alerts have no Symbol; an account that gains or loses a second pool
// closes the alerts of the old shape and starts the new ones.
//
// # Templates
//
// A rule's summary and runbook are Go text/template strings executed with a
// TemplateData value. Besides the text/template built-ins (printf, index,
// len, eq, lt, …) one function is defined:
//
//	num   formats a number with about four significant digits and no
//	      exponent: {{num .Value}} → "6.2", "0.8512", "64230"
//
// Examples:
//
//	summary: '{{.Symbol}} {{.Side}} is {{printf "%.1f" .Value}}% from liquidation'
//	summary: '{{.Account}} leverage {{num (index .Metrics "effective_leverage")}}x ({{.Severity}})'
//	runbook: 'Equity {{num (index .Metrics "equity")}}; desk {{.Labels.desk}}'
//
// Compile executes every template once against sample data, so a syntax
// error, an unknown field ({{.Foo}}) or an unknown function is reported with
// the file, line and column of the rule's summary or runbook key. A template
// that still fails at run time falls back to the default summary.
package rules
