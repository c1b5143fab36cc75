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
	res := w.engine.Evaluate(acct, now)
	// The engine reuses its Result slices at the account's next evaluation;
	// a batch held after a failed commit must not change under it.
	batch.Put = slices.Clone(res.Changed)
	batch.Delete = slices.Clone(res.Deleted)
	batch.Enqueue = delivery.Entries(res.Notices, w.cur.names, now)
	w.unsaved = append(w.unsaved, batch)
	committed := w.commitUnsaved()
	if committed && len(batch.Enqueue) > 0 {
		w.disp.Kick()
	}
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
		if st.Phase != rules.Active {
			continue
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
	b := &store.Batch{Delete: gone, Enqueue: delivery.Entries(notices, w.cur.names, now)}
	w.unsaved = append(w.unsaved, b)
	if w.commitUnsaved() && len(b.Enqueue) > 0 {
		w.disp.Kick()
	}
}

// enqueue queues daemon-made notices (not from rules) and wakes delivery.
func (w *Watcher) enqueue(notices []rules.Notice) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	entries := delivery.Entries(notices, w.cur.names, w.now())
	if len(entries) == 0 {
		return
	}
	w.unsaved = append(w.unsaved, &store.Batch{Enqueue: entries})
	if w.commitUnsaved() {
		w.disp.Kick()
	}
}

// record keeps the alerts just queued for the digests' "last 24h". A
// failure costs a digest line, never a notice, so it is only logged.
func (w *Watcher) record(entries []store.Entry) {
	var alerts []notifiers.Alert
	for _, e := range entries {
		alerts = append(alerts, e.Alerts...) // the same alert for several notifiers is recorded once
	}
	if len(alerts) == 0 {
		return
	}
	if err := w.store.RecordAlerts(alerts); err != nil {
		w.log.Warn("record alert history for digests", "err", err)
	}
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
	for _, a := range s.accounts {
		if d.Accounts == nil || slices.Contains(d.Accounts, a.cfg.Name) {
			a.mu.Lock()
			latest := a.latest
			if latest == nil { // not polled yet since start
				latest = metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, a.lastSuccess, at)
			}
			a.mu.Unlock()
			accts = append(accts, latest)
		}
	}
	msg := digest.Render(d.Name, accts, recent, at, digest.Location(d.Schedule))
	w.enqueue([]rules.Notice{{Alert: msg, Notify: d.Notify}})
}

// commitUnsaved commits every batch not yet in the store, oldest first, and
// reports whether all are in. A batch that cannot be written (full disk, I/O
// error) stays in memory and is retried on the next cycle: the alert state in
// memory is already ahead, so dropping the batch would lose its notices.
// Callers hold w.commitMu.
func (w *Watcher) commitUnsaved() bool {
	for len(w.unsaved) > 0 {
		err := w.commit(w.unsaved[0])
		if errors.Is(err, store.ErrBadBatch) {
			// This batch can never be written (a value JSON cannot hold):
			// holding it would block every later one.
			w.log.Error("dropping an unstorable state update", "err", err)
			w.unsaved = w.unsaved[1:]
			continue
		}
		if err != nil {
			w.log.Error("cannot write the state database; alerts are held in memory and retried next cycle — free disk space or fix the state_dir", "path", w.store.Path(), "err", err, "held_batches", len(w.unsaved))
			w.health.setStore(err)
			return false
		}
		w.record(w.unsaved[0].Enqueue)
		w.unsaved = w.unsaved[1:]
	}
	w.health.setStore(nil)
	return true
}
