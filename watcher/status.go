package watcher

import (
	"time"

	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// AccountStatus is the daemon's live view of one account, for the admin
// API and `marginwatch status`.
type AccountStatus struct {
	Name     string
	Exchange string
	// Latest is a copy of the last evaluation's metrics (drawdown from the
	// equity history included); nil before the account's first read since
	// the start or the reload that added it. Latest.Stale means the last
	// read failed: only data_age_seconds is meaningful then.
	Latest *metrics.Account
	// LastSuccess is when the account last had fresh data (zero: not
	// since the start).
	LastSuccess time.Time
	// Firing is what the rules say of Latest now, without state (see
	// rules.FiringNow), most severe first.
	Firing []rules.Hit
	// Alerts are the engine's alerts of the account (pending or firing),
	// in key order.
	Alerts []rules.State
	// Silenced names, by alert key, the silence or mute window that
	// withholds the alert's notices now.
	Silenced map[rules.Key]string
}

// Status returns the live view of every configured account, in
// configuration order, as of now. It takes each account's lock only to
// copy its metrics, and never commitMu: a status request must not wait on
// the disk or hold up an evaluation.
func (w *Watcher) Status(now time.Time) []AccountStatus {
	s, engine, _ := w.running()
	byAccount := make(map[string][]rules.State)
	for _, st := range engine.States() {
		byAccount[st.Key.Account] = append(byAccount[st.Key.Account], st)
	}
	out := make([]AccountStatus, 0, len(s.accounts))
	for i, a := range s.accounts {
		// The setup's config, not a.cfg: a reload rewrites a kept
		// account's cfg while a status request may run.
		c := &s.cfg.Accounts[i]
		as := AccountStatus{Name: c.Name, Exchange: c.Exchange, Alerts: byAccount[c.Name]}
		for _, st := range as.Alerts {
			if id, ok := w.ctl.silencedBy(st.Key, st.Severity, now); ok {
				if as.Silenced == nil {
					as.Silenced = make(map[rules.Key]string)
				}
				as.Silenced[st.Key] = id
			}
		}
		a.mu.Lock()
		if a.latest != nil {
			as.Latest = a.latest.Clone() // a streamed account's changes under us
		}
		as.LastSuccess = a.lastSuccess
		a.mu.Unlock()
		if as.Latest != nil {
			as.Firing = rules.FiringNow(s.rules, as.Latest, now)
		}
		out = append(out, as)
	}
	return out
}
