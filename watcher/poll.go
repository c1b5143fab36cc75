package watcher

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// poll runs one account's poll loop: the first poll after a.startAfter,
// then every a.every (the budget plan's; see schedule.go). It keeps a.due,
// so that a reload that keeps the account goes on at the same pace.
func (w *Watcher) poll(ctx context.Context, a *account) {
	if !sleep(ctx, a.startAfter) {
		return
	}
	t := time.NewTicker(a.interval())
	defer t.Stop()
	for {
		a.due = time.Now().Add(a.interval())
		w.cycle(ctx, a)
		if ctx.Err() != nil {
			a.due = time.Time{} // perhaps cut short: due again at once
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return // a tick and the stop were both ready: no poll after the stop
		}
	}
}

// cycle polls one account once and evaluates it.
func (w *Watcher) cycle(ctx context.Context, a *account) {
	if r, ok := w.fetch(ctx, a, a.interval()); ok {
		w.absorb(a, r)
	}
}

// polled is the outcome of one Snapshot.
type polled struct {
	snap  *exchanges.Snapshot
	err   error
	begin time.Time
}

// fetch reads a Snapshot, giving up after timeout. It reports false when
// ctx ended: a cancelled poll is no exchange failure.
func (w *Watcher) fetch(ctx context.Context, a *account, timeout time.Duration) (polled, bool) {
	begin := time.Now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	snap, err := a.ex.Snapshot(pctx)
	cancel()
	if err != nil && ctx.Err() != nil {
		return polled{}, false
	}
	return polled{snap: snap, err: err, begin: begin}, true
}

// absorb evaluates a fetched Snapshot (or its failure). A snapshot that
// made it is evaluated even when shutdown has begun: its events were taken
// from the exchange and exist nowhere else.
func (w *Watcher) absorb(a *account, r polled) {
	w.noteRead(a, r)
	w.judgeRead(a, r)
}

// noteRead reports a fetched Snapshot (or its failure) to the hooks and
// keeps its error for /healthz.
func (w *Watcher) noteRead(a *account, r polled) {
	now := w.now()
	err := r.err
	if w.opts.Hooks.Polled != nil {
		weight := -1
		if wr, ok := a.ex.(interface{ UsedWeight() int }); ok {
			weight = wr.UsedWeight()
		}
		w.opts.Hooks.Polled(a.cfg.Name, time.Since(r.begin), err == nil, now, weight)
	}
	if hw, ok := a.ex.(interface{ HostWeight() (string, int) }); ok && w.opts.Hooks.Weight != nil {
		if host, used := hw.HostWeight(); used >= 0 {
			w.opts.Hooks.Weight(host, used)
		}
	}
	a.setPollErr(err)
}

// judgeRead evaluates a fetched Snapshot (or its failure).
func (w *Watcher) judgeRead(a *account, r polled) {
	snap, err := r.snap, r.err
	now := w.now()
	var acct *metrics.Account
	batch := &store.Batch{}
	if err != nil {
		_, since := a.freshness()
		a.log.Warn("poll failed", "err", err, "blind_for", now.Sub(since).Round(time.Second))
		acct = metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, since, now)
		if es, ok := a.ex.(exchanges.EventSource); ok {
			acct.Events = es.PendingEvents() // e.g. a revoked key: exactly when the user must hear of it
		}
	} else {
		acct = metrics.Compute(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, snap, a.hist, now)
	}
	if st, ok := a.persist(err == nil, now); ok {
		batch.Accounts = map[string]store.AccountState{a.cfg.Name: st}
	}

	w.commitMu.Lock()
	committed := w.evaluate(a, acct, batch, now)
	w.commitMu.Unlock()
	w.cycled()
	if err == nil && committed && w.opts.Hooks.Heartbeat != nil {
		if s, _, _ := w.running(); w.health.heartbeatDue(s.names) {
			w.opts.Hooks.Heartbeat()
		}
	}
}

// historyEvery is how often an account's equity history is written while
// it changes. Every poll changes it (its newest point is stamped with the
// poll's time), and rewriting the whole week's blob every second would be
// the database's main load; a restart loses at most this much of it.
const historyEvery = time.Minute

// persist returns the account state to store after a poll, and false when
// nothing worth a write changed: the first fresh data since the start, a
// history older than historyEvery, the exchange's bans (kept across
// restarts: a restarted daemon must not hammer a banned IP). Only the
// account's poller calls it.
func (a *account) persist(fresh bool, now time.Time) (store.AccountState, bool) {
	st := a.saved
	changed := false
	if bk, ok := a.ex.(exchanges.BanKeeper); ok {
		if bans := bk.Bans(); !slices.EqualFunc(bans, st.Bans, sameBan) {
			st.Bans, changed = slices.Clone(bans), true
		}
	}
	if fresh {
		hist, err := a.hist.MarshalBinary()
		if err != nil {
			a.log.Warn("encode equity history", "err", err)
		}
		st.LastSuccess = now
		if a.savedAt.IsZero() || (!bytes.Equal(hist, a.saved.History) && now.Sub(a.savedAt) >= historyEvery) {
			st.History, changed = hist, true
		}
	}
	if !changed {
		return store.AccountState{}, false
	}
	a.saved, a.savedAt = st, now
	return st, true
}

func sameBan(a, b exchanges.Ban) bool {
	return a.Host == b.Host && a.Status == b.Status && a.Until.Equal(b.Until)
}

// cycled records that a poll cycle completed, for Alive.
func (w *Watcher) cycled() {
	w.lastCycle.Store(max(int64(time.Since(w.base)), 1))
}

// blindSince is when an account's current blindness began: its last
// successful poll, but no earlier than when the daemon began watching it (a
// restarted daemon, or an account a reload added, gets stale_after before
// crying blind).
func blindSince(lastSuccess, watchedSince time.Time) time.Time {
	if lastSuccess.Before(watchedSince) {
		return watchedSince
	}
	return lastSuccess
}

// blindSlack puts the blindness check just past stale_after: data-stale
// fires on an age strictly above it.
const blindSlack = time.Millisecond

// watchBlind evaluates a as stale the moment stale_after has passed without
// fresh data, whatever its poller is doing: polls that fail between two
// ticks, or one that hangs until its timeout, would otherwise raise
// data-stale up to a poll interval late. The polls take it from there
// (repeats, resolution).
func (w *Watcher) watchBlind(ctx context.Context, a *account) {
	var judged time.Time // the blindness already evaluated, by its start
	for ctx.Err() == nil {
		_, since := a.freshness()
		wait := a.cfg.PollInterval // only to see fresh data start a new wait
		if !since.Equal(judged) {
			wait = since.Add(a.cfg.StaleAfter + blindSlack).Sub(w.now())
		}
		if wait <= 0 {
			w.evaluateBlind(a, since)
			judged = since
			continue
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// evaluateBlind evaluates a as stale, unless fresh data came since.
func (w *Watcher) evaluateBlind(a *account, since time.Time) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	if _, now := a.freshness(); !now.Equal(since) {
		return
	}
	now := w.now()
	a.log.Warn("no fresh data for stale_after", "blind_for", now.Sub(since).Round(time.Second), "stale_after", a.cfg.StaleAfter)
	w.evaluate(a, metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, since, now), &store.Batch{}, now)
}
