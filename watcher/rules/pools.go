package rules

import (
	"time"

	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// perPool reports whether account rule r judges each margin pool of acct
// rather than the account: on an account with several pools, for the money
// metrics (metrics.ID.PerPool). Its targets are then named by the pool's
// asset (Key.Symbol, and the alert's "asset" label); the account keeps
// margin_ratio (its highest pool's), position_count and data_age_seconds.
func perPool(r *Rule, acct *metrics.Account) bool {
	return len(acct.Assets) > 0 && r.metric.PerPool()
}

// accountValue is r's value on acct itself.
func accountValue(r *Rule, acct *metrics.Account, now time.Time) (float64, bool) {
	if r.window > 0 {
		return acct.Drawdown("", now, r.window)
	}
	return acct.Metrics.Get(r.metric)
}

// poolTarget is pool i of acct as r's target, with r's value on it.
func poolTarget(r *Rule, acct *metrics.Account, i int, now time.Time) (target, float64, bool) {
	as := &acct.Assets[i]
	t := target{sym: as.Asset, asset: as.Asset, set: &as.Metrics}
	if r.window > 0 {
		v, ok := acct.Drawdown(as.Asset, now, r.window)
		return t, v, ok
	}
	v, ok := as.Metrics.Get(r.metric)
	return t, v, ok
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
