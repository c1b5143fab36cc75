package watcher

import (
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance"
	"github.com/marginwatch/marginwatch/exchanges/bybit"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid"
	"github.com/marginwatch/marginwatch/watcher/budget"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// snapshotEvery is the configured interval of an account's Snapshots:
// poll_interval, or reconcile_interval when it streams.
func snapshotEvery(a config.Account) time.Duration {
	if a.Stream && a.ReconcileInterval > 0 {
		return a.ReconcileInterval
	}
	return a.PollInterval
}

// EstimateCost is an account's draw on a shared request budget computed
// from its configuration alone (no adapter, no network), for `check`;
// false for exchanges without one. Every adapter with a budget is listed
// here, beside NewExchange.
func EstimateCost(a config.Account) (exchanges.Cost, bool) {
	switch a.Exchange {
	case binance.USDM, binance.COINM:
		return binance.Estimate(a, -1), true
	case hyperliquid.Name:
		return hyperliquid.Estimate(a, -1), true
	case bybit.Name:
		return bybit.Estimate(a, -1), true
	}
	return exchanges.Cost{}, false
}

// PlanConfig is the plan of cfg's accounts from their estimated costs, as
// `check` shows it: started at the beginning of start's clock minute, so
// that its figures do not depend on the second check runs at (the daemon
// plans from its real start: its first polls may end up to a minute
// sooner or later).
func PlanConfig(cfg *config.Config, start time.Time) budget.Plan {
	start = start.Truncate(time.Minute)
	ds := make([]budget.Demand, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		c, _ := EstimateCost(a)
		ds[i] = demand(a, c, a.Stream)
	}
	return budget.Make(ds, start)
}

// planAccounts plans the accounts of s from their adapters' costs
// (exchanges.Coster; the others keep their intervals). Accounts in fresh
// start with a first poll, placed by the plan. The others, kept over a
// reload, have their caches and are watched: they must not wait. A polled
// one keeps its phase (its next poll when it was due); a streamed one
// polls at once if its view is not trusted (a stream down, or waiting for
// a REST read), and reconciles an interval after.
func planAccounts(s *setup, fresh map[*account]bool, start time.Time) budget.Plan {
	ds := make([]budget.Demand, len(s.accounts))
	now := time.Now() // the poll loops' clock
	for i, a := range s.accounts {
		var c exchanges.Cost
		if cs, ok := a.ex.(exchanges.Coster); ok {
			c = cs.Cost()
		}
		streamed := a.streamed()
		if !fresh[a] {
			c.First = c.Poll
		}
		ds[i] = demand(a.cfg, c, streamed)
		if !fresh[a] {
			ds[i].Kept = true
			if !streamed && !a.due.IsZero() {
				ds[i].Next = max(a.due.Sub(now), 0)
			}
		}
	}
	return budget.Make(ds, start)
}

// demand is what account a asks of its budget. A polled account's
// interval is never stretched beyond half its stale_after: its data must
// come well within stale_after, or data-stale would fire and resolve every
// cycle while every poll succeeds. A streamed one's reconciliations are
// not bounded by it: its streams keep it fresh.
func demand(a config.Account, c exchanges.Cost, streamed bool) budget.Demand {
	d := budget.Demand{Account: a.Name, Cost: c, Every: snapshotEvery(a)}
	if !streamed {
		d.Every, d.Cap = a.PollInterval, staleCap(a)
	}
	return d
}

// staleCap is the longest interval a's polls may be stretched to: half its
// stale_after, or poll_interval when that is longer.
func staleCap(a config.Account) time.Duration {
	return max(a.PollInterval, a.StaleAfter/2)
}

// streamed reports whether a is watched by its streams (stream: true on an
// exchange that streams), with REST reconciliations every a.every; else
// it is polled.
func (a *account) streamed() bool {
	_, ok := a.ex.(exchanges.Streamer)
	return ok && a.cfg.Stream
}

// applyPlan gives s's accounts their effective intervals and start
// offsets (a kept account's: when its next poll is due). Fresh accounts
// are not watched before their first poll is due: data-stale counts from
// then. The caller holds w.mu, or s does not run yet.
func applyPlan(s *setup, p budget.Plan, fresh map[*account]bool) {
	for i, a := range s.accounts {
		sc := p.Schedules[i]
		a.every, a.startAfter = sc.Every, sc.StartAfter
		a.pollEvery = a.cfg.PollInterval
		if sum, ok := p.Budget(sc.Budget); ok && sum.Stretch > 1 {
			// Polling while the streams are down: as fresh as a polled
			// account must be.
			a.pollEvery = min(stretchLike(a.cfg.PollInterval, sc.Every, snapshotEvery(a.cfg)), staleCap(a.cfg))
		}
		if fresh[a] {
			a.due = time.Now().Add(sc.StartAfter)
			a.mu.Lock()
			a.watchedSince = a.watchedSince.Add(sc.StartAfter)
			a.mu.Unlock()
		}
	}
	s.plan = p
}

// stretchLike stretches d as configured was stretched to effective.
func stretchLike(d, effective, configured time.Duration) time.Duration {
	if configured <= 0 || effective <= configured {
		return d
	}
	return time.Duration(float64(d) * float64(effective) / float64(configured))
}

// logPlan says once, at start and at reloads that change it, that a budget
// is oversubscribed (warn) and how long the first polls take when they
// need more than a minute (info).
func (w *Watcher) logPlan(p budget.Plan) {
	msgs := p.Stretched()
	if !slices.Equal(msgs, w.stretched) {
		for _, m := range msgs {
			w.log.Warn(m)
		}
		if len(msgs) == 0 && len(w.stretched) > 0 {
			w.log.Info("request budgets fit again: polling at the configured intervals")
		}
		w.stretched = msgs
	}
	for _, b := range p.Budgets {
		if b.StartUp > time.Minute {
			w.log.Info("first polls spread to stay under 80% of the request budget", "budget", b.Budget,
				"accounts", b.Accounts, "weight", b.StartUpWeight, "over", b.StartUp.Round(time.Second))
		}
	}
	if w.opts.Hooks.Planned != nil {
		w.opts.Hooks.Planned(p)
	}
}

// interval is how often a polls: the plan's interval, the configured one
// before any plan (tests that build accounts by hand).
func (a *account) interval() time.Duration {
	if a.every > 0 {
		return a.every
	}
	return a.cfg.PollInterval
}
