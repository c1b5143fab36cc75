package rules

import (
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// perPool reports whether account rule r judges each margin pool of acct
// rather than the account: on an account with several pools, when a
// condition watches a money metric (metrics.ID.PerPool). Its targets are
// then named by the pool's asset (Key.Symbol, and the alert's "asset"
// label); the account keeps margin_ratio (its highest pool's),
// position_count and data_age_seconds.
func perPool(r *Rule, acct *metrics.Account) bool {
	if len(acct.Assets) == 0 {
		return false
	}
	for i := range r.conds {
		if r.conds[i].metric.PerPool() {
			return true
		}
	}
	return false
}

// poolTarget is pool i of acct as a target.
func poolTarget(acct *metrics.Account, i int) target {
	as := &acct.Assets[i]
	return target{sym: as.Asset, asset: as.Asset, set: &as.Metrics}
}

// reading is the values of a rule's conditions on one target at one time.
type reading struct {
	v  [config.MaxConditions]float64
	ok [config.MaxConditions]bool
	// some: a value is present.
	some bool
}

// mask has bit i set for each of the first n conditions with a value.
func (rd *reading) mask(n int) uint8 {
	var m uint8
	for i := range n {
		if rd.ok[i] {
			m |= 1 << i
		}
	}
	return m
}

// gap reports whether a condition in reported (a bit per condition that
// had a value before) has none now.
func (rd *reading) gap(reported uint8) bool {
	for i := range config.MaxConditions {
		if reported&(1<<i) != 0 && !rd.ok[i] {
			return true
		}
	}
	return false
}

// read reads the value of each of r's conditions on t into rd, which holds
// the first's already when first is set.
func (r *Rule) read(rd *reading, acct *metrics.Account, t target, now time.Time, first bool) {
	if first {
		rd.some = rd.ok[0]
	}
	for i := range r.conds {
		if i == 0 && first {
			continue
		}
		v, ok := r.value(&r.conds[i], acct, t, now)
		rd.v[i], rd.ok[i] = v, ok
		rd.some = rd.some || ok
	}
}

// value is condition c's value on target t: drawdowns over another window
// than the metric's 24h from the account's history; a metric a pool does
// not have (margin_ratio, position_count) from the account.
func (r *Rule) value(c *cond, acct *metrics.Account, t target, now time.Time) (float64, bool) {
	if c.window == 0 && !c.daily && t.set != nil {
		if v, ok := t.set.Get(c.metric); ok || t.asset == "" {
			return v, ok
		}
	}
	return r.otherValue(c, acct, t, now)
}

func (r *Rule) otherValue(c *cond, acct *metrics.Account, t target, now time.Time) (float64, bool) {
	switch {
	case c.daily:
		return acct.Drawdown(t.asset, now, now.Sub(r.lastReset(now)))
	case c.window > 0:
		return acct.Drawdown(t.asset, now, c.window)
	case t.asset != "" && !c.metric.PerPool():
		return acct.Metrics.Get(c.metric)
	}
	return 0, false
}

// judge is the severity r's conditions give on rd: the most severe plain
// match, and while the alert fires at cur also what each condition's
// hysteresis still holds. dec is the condition that gives it (the first of
// equals), -1 when none matches.
func (r *Rule) judge(rd *reading, cur notifiers.Severity) (sev notifiers.Severity, dec int) {
	dec = -1
	for i := range r.conds {
		if !rd.ok[i] {
			continue
		}
		c := &r.conds[i]
		s := c.severity(rd.v[i])
		if cur > notifiers.None {
			s = max(s, c.held(rd.v[i], cur))
		}
		if s > sev {
			sev, dec = s, i
		}
	}
	return sev, dec
}

// poolSet is the money metrics of the pool named asset: acct's own with a
// single pool (or asset ""), else that pool's; nil when it has none such.
func poolSet(acct *metrics.Account, asset string) *metrics.Set {
	if len(acct.Assets) == 0 || asset == "" {
		return &acct.Metrics
	}
	for i := range acct.Assets {
		if acct.Assets[i].Asset == asset {
			return &acct.Assets[i].Metrics
		}
	}
	return nil
}
