package config

import (
	"math"
	"strconv"

	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// valueRange is the values a metric can take, for telling a threshold that
// can never be crossed (or is always crossed) from a real one. It lives here
// rather than beside the metric catalogue (watcher/metrics/names.go) because
// only config validation needs it; keep the two in step (SPEC "Metrics").
type valueRange struct {
	min, max float64
	// what describes the range in messages.
	what string
	// fraction marks margin_ratio: 1.0 = liquidation, a threshold above 1
	// is a percent written by mistake.
	fraction bool
	// boolean marks a 1-or-0 metric.
	boolean bool
}

// metricRanges holds the metrics whose values are bounded; a metric not
// listed can take any value (a signed money figure, a funding rate, a
// liquidation distance that turns negative past the liquidation price, a
// size or a return on margin above 100 %).
//
// ±Inf counts as inside: effective_leverage and size_pct_equity are +Inf
// when equity is at or below zero, which above-rules must see.
var metricRanges = map[metrics.ID]valueRange{
	// maintenance margin / margin balance: 0 with nothing to maintain, 1 at
	// liquidation; briefly above 1 past it.
	metrics.MarginRatio: {min: 0, max: math.Inf(1), what: "0 or more, 1.0 = liquidation", fraction: true},
	// (peak − equity) / peak × 100: 100 is all equity gone, and more once
	// equity turns negative, so above: {critical: 100} can fire.
	metrics.DrawdownPct:       {min: 0, max: math.Inf(1), what: "a percentage, 0 or more, 100 = all equity gone"},
	metrics.StopCoveragePct:   {min: 0, max: 100, what: "a percentage, 0 to 100, capped at 100"},
	metrics.HasStopLoss:       {min: 0, max: 1, what: "1 or 0", boolean: true},
	metrics.EffectiveLeverage: {min: 0, max: math.Inf(1), what: "0 or more"},
	metrics.SizePctEquity:     {min: 0, max: math.Inf(1), what: "0 or more"},
	metrics.PositionCount:     {min: 0, max: math.Inf(1), what: "0 or more"},
	metrics.DataAgeSeconds:    {min: 0, max: math.Inf(1), what: "0 or more"},
	metrics.StopDistancePct:   {min: 0, max: math.Inf(1), what: "0 or more"},
	metrics.Leverage:          {min: 0, max: math.Inf(1), what: "more than 0"},
}

// checkThresholdRanges reports each threshold of a threshold rule that its
// metric can never cross (the rule can never fire at that severity) or
// always crosses (it fires all the time). Comparisons are strict: above
// fires on value > threshold, below on value < threshold.
func checkThresholdRanges(r *Rule, c *collector) {
	id, ok := metrics.Lookup(r.Metric)
	if !ok || (r.Scope != "account" && r.Scope != "position") {
		return
	}
	vr, bounded := metricRanges[id]
	if !bounded {
		return
	}
	field, th := "above", r.Above
	switch above, below := r.At.written("above"), r.At.written("below"); {
	case above && below:
		return // reported by validation
	case below:
		field, th = "below", r.Below
	case !above:
		return
	}
	for _, sev := range severityNames {
		t, ok := th[sev]
		if !ok {
			continue
		}
		if msg := rangeProblem(r.Metric, vr, field, sev, t); msg != "" {
			c.add(r.At.Errorf(field+"."+sev, "%s", msg))
		}
	}
}

// rangeProblem says what is wrong with threshold t of a field ("above" or
// "below") rule at severity sev on metric name ranging over vr, or "".
func rangeProblem(name string, vr valueRange, field, sev string, t float64) string {
	if vr.fraction && t > 1 {
		if t <= 100 {
			return name + " is a fraction (1.0 = liquidation), not a percent: did you mean " + num(round10(t/100)) + "?"
		}
		return name + " is a fraction (1.0 = liquidation), not a percent: use a value between 0 and 1, e.g. 0.8"
	}
	never := field == "above" && t >= vr.max || field == "below" && t <= vr.min
	always := field == "above" && t < vr.min || field == "below" && t > vr.max
	if !never && !always {
		return ""
	}
	if vr.boolean {
		how := "can never fire"
		if always {
			how = "fires for every position"
		}
		return name + " is 1 (an effective stop protects the position) or 0 (none), so " + field + " " + num(t) + " " + how +
			"; write below: {" + sev + ": 1} to fire when a position has no stop"
	}
	fix := "use a threshold above " + num(vr.min)
	if !math.IsInf(vr.max, 1) {
		fix = "use a threshold between " + num(vr.min) + " and " + num(vr.max)
	}
	if never {
		return name + " is never " + field + " " + num(t) + " (" + vr.what + "), so this threshold can never fire; " + fix
	}
	return name + " is always " + field + " " + num(t) + " (" + vr.what + "), so this threshold fires all the time; " + fix
}

// round10 rounds f to 10 significant digits, so that 7.1/100 reads 0.071.
func round10(f float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 10, 64), 64)
	if err != nil {
		return f
	}
	return r
}
