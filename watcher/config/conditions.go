package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// Rule semantics beyond one metric and its thresholds: combined conditions
// (any:), default hysteresis, keep_firing_for and calendar drawdown windows.

const (
	// MaxConditions bounds a rule's any: list; the engine judges a target's
	// conditions without allocating, in a fixed-size array.
	MaxConditions = 8
	// DefaultHysteresisFraction is the hysteresis of an unset `hysteresis`:
	// this fraction of each threshold's magnitude.
	DefaultHysteresisFraction = 0.02
	// DefaultResetAt and DefaultTimezone are the daily reset of `window: day`.
	DefaultResetAt  = "00:00"
	DefaultTimezone = "UTC"
	// WindowDay is the value of `window:` for a calendar day.
	WindowDay = "day"
)

// Conditions returns the rule's conditions: its any: list, or else one
// condition made of its own metric, above/below and hysteresis, positioned
// at the rule's keys. Event rules have none.
func (r *Rule) Conditions() []Condition {
	if r.Scope == "event" {
		return nil
	}
	if len(r.Any) > 0 || r.At.written("any") {
		return r.Any
	}
	return []Condition{{Metric: r.Metric, Above: r.Above, Below: r.Below, Hysteresis: r.Hysteresis, At: r.At}}
}

// HysteresisFor returns the hysteresis of the condition's threshold of
// severity sev. A written hysteresis (or, in a Condition built in code, a
// non-zero one) applies to every threshold. Unset, it is
// DefaultHysteresisFraction of the threshold's magnitude, at most half the
// gap to the neighbouring severities' thresholds (so every step down stays
// possible), and 0 for boolean metrics (has_stop_loss), whose value 1 must
// resolve a `below: {warning: 1}` rule.
func (cd *Condition) HysteresisFor(sev string) float64 {
	if cd.At.written("hysteresis") || cd.Hysteresis != 0 {
		return cd.Hysteresis
	}
	if id, ok := metrics.Lookup(cd.Metric); ok && id == metrics.HasStopLoss {
		return 0
	}
	th := cd.Above
	if len(th) == 0 {
		th = cd.Below
	}
	v, ok := th[sev]
	if !ok {
		return 0
	}
	h := DefaultHysteresisFraction * math.Abs(v)
	for _, other := range th {
		if gap := math.Abs(other - v); gap > 0 {
			h = min(h, gap/2)
		}
	}
	// Stay inside the metric's range, or the value could never come back
	// far enough: stop_coverage_pct below 100 resolves at 100, not 102.
	if id, ok := metrics.Lookup(cd.Metric); ok {
		if room := resolveRoom(metricRanges[id], len(cd.Above) > 0, v); room >= 0 {
			h = min(h, room)
		}
	}
	return h
}

// resolveRoom is how far past threshold t the metric's range vr reaches on
// the side a level is left by (below t for above, above t for below), or -1
// when that side is unbounded (an unlisted metric ranges over everything).
func resolveRoom(vr valueRange, above bool, t float64) float64 {
	if vr == (valueRange{}) {
		return -1
	}
	room := vr.max - t
	if above {
		room = t - vr.min
	}
	if math.IsInf(room, 0) || room < 0 {
		return -1 // unbounded, or a threshold outside the range (its own error)
	}
	return room
}

// positionOnly reports whether a condition of r watches a metric that only
// positions have (the rule's scope then defaults to position).
func positionOnly(r *Rule) bool {
	for _, cd := range r.Conditions() {
		if id, ok := metrics.Lookup(cd.Metric); ok && id.Info().Scopes == metrics.PositionScope {
			return true
		}
	}
	return false
}

// finishWindow fills the window defaults of a drawdown rule: 24h rolling,
// or for window: day the reset at DefaultResetAt in DefaultTimezone.
func finishWindow(r *Rule) {
	if !r.usesMetric("drawdown_pct") {
		return
	}
	switch {
	case r.Daily:
		if !r.At.written("reset_at") {
			r.ResetAt = DefaultResetAt
		}
		if !r.At.written("timezone") {
			r.Timezone = DefaultTimezone
		}
	case !r.At.written("window"):
		r.Window = DefaultDrawdownWindow
	}
}

// usesMetric reports whether any of the rule's conditions watches metric.
func (r *Rule) usesMetric(metric string) bool {
	return slices.ContainsFunc(r.Conditions(), func(cd Condition) bool { return cd.Metric == metric })
}

// validateAny checks a rule's any: list; the rule itself must then name no
// metric, thresholds or hysteresis.
func validateAny(r *Rule, c *collector) {
	l := r.At
	for _, k := range []string{"metric", "above", "below", "hysteresis"} {
		if l.written(k) {
			c.add(l.Errorf(k, "a rule with any: names its metrics, thresholds and hysteresis in each condition; move %s into the conditions, or remove any:", k))
		}
	}
	switch {
	case len(r.Any) == 0:
		c.add(l.Errorf("any", "needs at least one condition, e.g. any: [{metric: liq_distance_pct, below: {warning: 10}}, {metric: liq_distance_atr, below: {warning: 3}}]"))
		return
	case len(r.Any) > MaxConditions:
		c.add(l.Errorf(fmt.Sprintf("any[%d]", MaxConditions), "a rule takes at most %d conditions; split the rule", MaxConditions))
	}
	for i := range r.Any {
		validateCondition(&r.Any[i], r.Scope, c)
	}
}

// validateCondition checks one condition of a rule of the given scope: its
// metric, its thresholds and its hysteresis.
func validateCondition(cd *Condition, scope string, c *collector) {
	l := cd.At
	id, known := metrics.Lookup(cd.Metric)
	switch {
	case cd.Metric == "":
		c.add(l.Errorf("metric", "is required: the metric to watch, e.g. liq_distance_pct"))
	case !known:
		names := make([]string, 0, len(metrics.All()))
		for _, m := range metrics.All() {
			names = append(names, m.String())
		}
		if s := c.suggest(cd.Metric, names); s != "" {
			c.add(l.Errorf("metric", "unknown metric %q (did you mean %q?)", cd.Metric, s))
		} else {
			c.add(l.Errorf("metric", "unknown metric %q (known metrics: %s)", cd.Metric, strings.Join(names, ", ")))
		}
	default:
		want := metrics.AccountScope
		if scope == "position" {
			want = metrics.PositionScope
		}
		if id.Info().Scopes&want == 0 {
			other := "account"
			if scope == "account" {
				other = "position"
			}
			c.add(l.Errorf("scope", "%s is %s %s metric; use scope: %s (or leave scope out)", cd.Metric, article(other), other, other))
		}
	}

	var field string
	var th map[string]float64
	switch above, below := l.written("above"), l.written("below"); {
	case above && below:
		if strings.Contains(l.Path, ".any[") {
			c.add(l.Errorf("below", "a condition has either above or below, not both; split it into two conditions"))
		} else {
			c.add(l.Errorf("below", "a rule has either above or below, not both; split it into two rules, or into two conditions under any:"))
		}
		return
	case above:
		field, th = "above", cd.Above
	case below:
		field, th = "below", cd.Below
	default:
		c.add(l.Errorf("", "needs thresholds: above or below, e.g. below: {warning: 15, critical: 7}"))
		return
	}
	if len(th) == 0 {
		c.add(l.Errorf(field, "needs at least one severity, e.g. {warning: 15, critical: 7}"))
		return
	}
	ordered := true
	for sev := range th {
		if !slices.Contains(severityNames, sev) {
			c.add(l.Errorf(field+"."+sev, "%s", unknownChoice(c, "severity", sev, severityNames)))
			ordered = false
		}
	}
	// Adjacent severities (of those present) must be strictly ordered: a
	// more severe threshold is further into danger.
	var prev string
	minGap, gapLo, gapHi := 0.0, "", ""
	for _, sev := range severityNames {
		v, ok := th[sev]
		if !ok {
			continue
		}
		if prev != "" {
			p := th[prev]
			gap := v - p
			if field == "below" {
				gap = p - v
			}
			if gap <= 0 {
				c.add(l.Errorf(field+"."+sev, "must be %s %s (%s) for %s %q rule", field, prev, num(p), article(field), field))
				ordered = false
			} else if gapLo == "" || gap < minGap {
				minGap, gapLo, gapHi = gap, prev, sev
			}
		}
		prev = sev
	}
	switch {
	case cd.Hysteresis < 0:
		c.add(l.Errorf("hysteresis", "must be 0 or more: how far the value must come back past a threshold to step down"))
	case ordered && gapLo != "" && cd.Hysteresis >= minGap:
		c.add(l.Errorf("hysteresis", "%s must be smaller than the gap between %s (%s) and %s (%s), or the alert could not step down between them; lower hysteresis or move the thresholds apart",
			num(cd.Hysteresis), gapLo, num(th[gapLo]), gapHi, num(th[gapHi])))
	case known && l.written("hysteresis"):
		checkResolvable(cd, metricRanges[id], field, th, c)
	}
}

// checkResolvable reports a written hysteresis that takes a threshold's
// resolution out of the metric's range: the alert could never resolve.
func checkResolvable(cd *Condition, vr valueRange, field string, th map[string]float64, c *collector) {
	for _, sev := range severityNames {
		t, ok := th[sev]
		if !ok {
			continue
		}
		room := resolveRoom(vr, field == "above", t)
		if room < 0 || cd.Hysteresis <= room {
			continue
		}
		at, past := t-cd.Hysteresis, "at or below"
		if field == "below" {
			at, past = t+cd.Hysteresis, "at or above"
		}
		c.add(cd.At.Errorf("hysteresis", "%s would make %s.%s (%s) resolve only %s %s, which %s never reaches (%s); use a hysteresis of at most %s",
			num(cd.Hysteresis), field, sev, num(t), past, num(at), cd.Metric, vr.what, num(room)))
		return
	}
}

var resetAtRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// ParseResetAt returns the time of day "HH:MM" (24-hour clock) names, as
// the span since midnight.
func ParseResetAt(s string) (time.Duration, error) {
	m := resetAtRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a time of day as \"HH:MM\" on a 24-hour clock (e.g. \"00:00\" or \"08:30\"; quote it)", s)
	}
	h, mm := int(m[1][0]-'0')*10+int(m[1][1]-'0'), int(m[2][0]-'0')*10+int(m[2][1]-'0')
	return time.Duration(h)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// LoadTimezone returns the IANA time zone name names; "Local" is refused, the
// host's zone being no part of the config.
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%q is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as UTC, Europe/Berlin or America/New_York; names are case-sensitive)", name)
	}
	return loc, nil
}

// hours writes d in hours, as a window is written (e.g. 168h).
func hours(d time.Duration) string {
	return strconv.FormatFloat(d.Hours(), 'f', -1, 64) + "h"
}

// validateWindow checks window, reset_at and timezone of a threshold rule.
func validateWindow(r *Rule, c *collector) {
	l := r.At
	drawdown := r.usesMetric("drawdown_pct")
	if l.written("window") {
		switch {
		case !drawdown:
			c.add(l.Errorf("window", "only drawdown_pct takes a window; remove it"))
		case !r.Daily && r.Window <= 0:
			c.add(l.Errorf("window", "must be more than 0 (e.g. 24h, or day for the calendar day): the span the equity peak is taken over"))
		case !r.Daily && r.Window > metrics.DefaultHistoryCapacity:
			// The daemon keeps this much equity history: a longer window
			// would silently forget its oldest peaks.
			c.add(l.Errorf("window", "%s is longer than the %s of equity history kept (%d days); use at most %s",
				hours(r.Window), hours(metrics.DefaultHistoryCapacity), metrics.DefaultHistoryCapacity/(24*time.Hour), hours(metrics.DefaultHistoryCapacity)))
		}
	}
	for _, k := range []string{"reset_at", "timezone"} {
		if l.written(k) && !r.Daily {
			c.add(l.Errorf(k, "only a calendar-day drawdown (window: day) takes %s; add window: day, or remove %s", k, k))
		}
	}
	if !r.Daily || !drawdown {
		return
	}
	if _, err := ParseResetAt(r.ResetAt); err != nil {
		c.add(l.Errorf("reset_at", "%v", err))
	}
	if _, err := LoadTimezone(r.Timezone); err != nil {
		c.add(l.Errorf("timezone", "%v", err))
	}
}
