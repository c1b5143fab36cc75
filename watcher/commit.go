package watcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/digest"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// evaluate runs the rules on acct and commits the outcome with batch. It
// reports whether everything is in the store. Callers hold w.commitMu.
func (w *Watcher) evaluate(a *account, acct *metrics.Account, batch *store.Batch, now time.Time) bool {
	a.mu.Lock()
	a.latest = acct
	if !acct.Stale {
		a.lastSuccess = now
	}
	a.mu.Unlock()
	return w.judge(acct, batch, now, false)
}

// judge runs the rules on acct and commits the outcome with batch. With
// quiet, an evaluation that changed nothing writes nothing: a streamed
// account is judged on every tick, and the polls and reconciliations keep
// testing the disk. Callers hold w.commitMu.
func (w *Watcher) judge(acct *metrics.Account, batch *store.Batch, now time.Time, quiet bool) bool {
	res := w.engine.Evaluate(acct, now)
	if quiet && len(res.Changed) == 0 && len(res.Deleted) == 0 && len(res.Notices) == 0 && len(batch.Accounts) == 0 && w.held == nil {
		return true
	}
	// The engine reuses its Result slices at the account's next evaluation;
	// a batch held after a failed commit must not change under it.
	batch.Put = slices.Clone(res.Changed)
	batch.Delete = slices.Clone(res.Deleted)
	if len(res.Notices) > 0 {
		batch.Enqueue = delivery.Entries(res.Notices, w.cur.names, now)
	}
	committed := w.save(batch)
	if w.opts.Hooks.Evaluated != nil {
		w.opts.Hooks.Evaluated(append(w.engine.States(), w.selfStates()...))
	}
	return committed
}

// closeOrphans ends every alert of before that the current engine dropped:
// its rule or account left the configuration, or the rule stopped watching
// the account. A firing one gets a closing notice, without which the
// incident would stay open in the user's chat forever; it goes to every
// notifier (the rule that named its notifiers is gone). The notices and the
// deletion of the states are one transaction, so a crash right after can
// neither lose the notice nor send it twice. Callers hold w.commitMu.
func (w *Watcher) closeOrphans(before []rules.State) {
	kept := make(map[rules.Key]bool)
	for _, st := range w.engine.States() {
		kept[st.Key] = true
	}
	now := w.now()
	var (
		notices []rules.Notice
		gone    []rules.Key
	)
	for _, st := range before {
		if kept[st.Key] {
			continue
		}
		gone = append(gone, st.Key)
		if st.Phase != rules.Active || st.Unsent {
			continue // nothing of it went out: nothing to close
		}
		target := strings.TrimSpace(st.Key.Symbol + " " + st.Key.Side)
		if target != "" {
			target = " on " + target
		}
		summary := fmt.Sprintf("alert closed: rule %s no longer watches account %s%s (the configuration changed)", st.Key.Rule, st.Key.Account, target)
		notices = append(notices, rules.Notice{Alert: rules.Closed(st, notifiers.ReasonClosed, summary, now)})
	}
	if len(gone) == 0 {
		return
	}
	if len(notices) > 0 {
		w.log.Info("closing alerts whose rule or account left the configuration", "alerts", len(notices))
	}
	w.save(&store.Batch{Delete: gone, Enqueue: delivery.Entries(notices, w.cur.names, now)})
}

// enqueue queues daemon-made notices (not from rules) and wakes delivery.
func (w *Watcher) enqueue(notices []rules.Notice) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	entries := delivery.Entries(notices, w.cur.names, w.now())
	if len(entries) == 0 {
		return
	}
	w.save(&store.Batch{Enqueue: entries})
}

// sendDigest renders one digest from the latest metrics and queues it. It
// runs on the digest scheduler's goroutine.
func (w *Watcher) sendDigest(d config.Digest, at time.Time) {
	recent, err := w.store.RecentAlerts(at.Add(-digest.Window))
	if err != nil {
		w.log.Warn("digest without alert history", "digest", d.Name, "err", err)
	}
	s, _, _ := w.running()
	var accts []*metrics.Account
	for i, a := range s.accounts {
		c := &s.cfg.Accounts[i] // not a.cfg, which a reload rewrites
		if d.Accounts == nil || slices.Contains(d.Accounts, c.Name) {
			a.mu.Lock()
			var latest *metrics.Account
			if a.latest != nil {
				latest = a.latest.Clone() // a streamed account's changes under us
			} else { // not polled yet since start
				latest = metrics.Stale(c.Name, c.Exchange, c.Labels, a.lastSuccess, at)
			}
			a.mu.Unlock()
			accts = append(accts, latest)
		}
	}
	msg := digest.Render(d.Name, accts, recent, at, digest.Location(d.Schedule))
	w.enqueue([]rules.Notice{{Alert: msg, Notify: d.Notify}})
}

// save commits b after the batches held back by earlier failures, wakes
// delivery for what it queued, and reports whether everything is in the
// store. A batch that cannot be
// written (full disk, I/O error) is held in memory, merged with those before
// it (see merge), and retried with the next one: the alert state in memory
// is already ahead, so dropping it would lose its notices. Callers hold
// w.commitMu.
func (w *Watcher) save(b *store.Batch) bool {
	if w.held == nil {
		err := w.write(b)
		if err == nil || errors.Is(err, store.ErrBadBatch) {
			w.committed(b, err)
			return true
		}
		b, _ = merge(nil, b) // a copy: the caller's slices are not ours to keep
		w.hold(b, err)
		return false
	}
	next, dropped := merge(w.held, b)
	for _, a := range dropped {
		w.log.Error("dropping a notice held while the state database cannot be written: too many are waiting", "rule", a.Rule, "account", a.Account, "kind", a.Kind, "id", a.ID)
	}
	err := w.write(next)
	switch {
	case err == nil:
		w.held = nil
		w.committed(next, nil)
		return true
	case errors.Is(err, store.ErrBadBatch):
		// Encoding fails before the disk is touched, and the held batch
		// encoded before: b is the unstorable part.
		w.committed(b, err)
		return w.commitHeld()
	}
	w.hold(next, err)
	return false
}

// commitHeld retries the held batch alone and reports whether nothing is
// held any more. Callers hold w.commitMu.
func (w *Watcher) commitHeld() bool {
	if w.held == nil {
		return true
	}
	held := w.held
	err := w.write(held)
	if err == nil || errors.Is(err, store.ErrBadBatch) {
		w.held = nil
		w.committed(held, err)
		return true
	}
	w.hold(w.held, err)
	return false
}

// write commits b. A notice the digest history cannot hold is still queued;
// the history's complaint is only logged (it costs a digest line). Each
// commit also checks that the database is still at its path.
func (w *Watcher) write(b *store.Batch) error {
	err := w.commit(b)
	w.checkStateFile()
	if err == nil && b.HistoryErr != nil {
		w.log.Warn("alerts queued, but left out of the digests' alert history", "err", b.HistoryErr)
	}
	return err
}

// committed notes that b went through, or was dropped as unstorable
// (err), and wakes delivery when b queued notices — held ones included,
// which is why the waking is here and not with each caller: notices held
// through a full disk would otherwise wait in the outbox for the next
// new one.
func (w *Watcher) committed(b *store.Batch, err error) {
	if err != nil {
		// Holding it would block every later batch.
		w.log.Error("dropping an unstorable state update", "err", err)
	} else if len(b.Enqueue) > 0 {
		w.disp.Kick()
	}
	w.health.setStore(nil)
}

// hold keeps b for the next attempt after err.
func (w *Watcher) hold(b *store.Batch, err error) {
	w.held = b
	states, accounts, entries, alerts := heldSize(b)
	w.log.Error("cannot write the state database; alerts are held in memory and retried next cycle — free disk space or fix the state_dir",
		"path", w.store.Path(), "err", err, "held_states", states, "held_accounts", accounts, "held_entries", entries, "held_alerts", alerts)
	w.health.setStore(err)
}
