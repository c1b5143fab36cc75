package watcher

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// Built-in alerts about the daemon itself. Like data-stale they are alert
// states, persisted with their notices, so that a restart neither forgets
// to resolve them nor opens them again as new incidents. They live outside
// the rules engine (which drops states no rule claims), under the account
// SelfAccount.
const (
	// NotifierFailing goes to every other notifier when one notifier keeps
	// failing (and, as a probe, to the failing one), and resolves, to every
	// notifier, when it delivers again. Its state's Symbol is
	// the notifier's name.
	NotifierFailing = config.NotifierFailingRule
	// ConfigReloadFailed goes to every notifier when an edited config or
	// rule file is rejected (the last good one keeps running), and resolves
	// at the next successful reload or start.
	ConfigReloadFailed = config.ConfigReloadFailedRule
	// SelfAccount is the account of the daemon's alerts about itself.
	SelfAccount = config.SelfAccount
)

// isSelf reports whether a stored state is one of the daemon's own.
func isSelf(k rules.Key) bool {
	return k.Account == SelfAccount && (k.Rule == NotifierFailing || k.Rule == ConfigReloadFailed)
}

func notifierKey(name string) rules.Key {
	return rules.Key{Account: SelfAccount, Rule: NotifierFailing, Symbol: name}
}

var reloadKey = rules.Key{Account: SelfAccount, Rule: ConfigReloadFailed}

// resumeSelf takes over the self alerts of the last run (from the store):
// a notifier still failing stays failing until it delivers; config-reload-
// failed resolves, as the configuration that started is valid; a
// notifier-failing of a notifier no longer configured resolves. Callers hold
// w.commitMu.
func (w *Watcher) resumeSelf(states []rules.State) {
	now := w.now()
	var (
		gone    []rules.Key
		notices []rules.Notice
	)
	for _, st := range states {
		switch st.Key.Rule {
		case NotifierFailing:
			name := st.Key.Symbol
			if slices.Contains(w.cur.names, name) {
				w.self[st.Key] = st
				w.health.setNotifier(name, true, "failing before the restart, not delivered since")
				w.disp.Resume(name, st.Since)
				continue
			}
			gone = append(gone, st.Key)
			a := resolved(st, now, fmt.Sprintf("notifier %s is no longer configured (failing since %s)", name, stamp(st.Since)))
			notices = append(notices, rules.Notice{Alert: a})
		case ConfigReloadFailed:
			gone = append(gone, st.Key)
			a := resolved(st, now, "marginwatch started with a valid configuration: the configuration on disk is the one running again")
			notices = append(notices, rules.Notice{Alert: a})
		}
	}
	if len(gone) > 0 {
		w.commitNotices(nil, gone, notices)
	}
}

// closeRemovedNotifiers resolves notifier-failing of notifiers a reload
// removed. Callers hold w.commitMu.
func (w *Watcher) closeRemovedNotifiers() {
	var (
		gone    []rules.Key
		notices []rules.Notice
	)
	now := w.now()
	for _, k := range slices.SortedFunc(maps.Keys(w.self), cmpKey) {
		st := w.self[k]
		if k.Rule != NotifierFailing || slices.Contains(w.cur.names, k.Symbol) {
			continue
		}
		delete(w.self, k)
		w.health.setNotifier(k.Symbol, false, "")
		gone = append(gone, k)
		notices = append(notices, rules.Notice{Alert: resolved(st, now, fmt.Sprintf("notifier %s is no longer configured (failing since %s)", k.Symbol, stamp(st.Since)))})
	}
	if len(gone) > 0 {
		w.commitNotices(nil, gone, notices)
	}
}

// onNotifierHealth turns a delivery health report into the notifier-failing
// alert's state and notices: the firing one for every other notifier, the
// resolution for every notifier. It runs on the failing notifier's worker.
func (w *Watcher) onNotifierHealth(h delivery.Health) {
	w.health.setNotifier(h.Notifier, h.Failing, h.LastError)
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	others := slices.DeleteFunc(slices.Clone(w.cur.names), func(n string) bool { return n == h.Notifier })
	if len(others) == 0 && h.Failing {
		w.log.Error("the only notifier is failing: nobody can be told", "notifier", h.Notifier, "err", h.LastError)
	}
	now := w.now()
	k := notifierKey(h.Notifier)
	st, open := w.self[k]
	if !h.Failing {
		if !open {
			st = selfState(k, notifiers.Critical, h.Since, now)
		}
		delete(w.self, k)
		a := resolved(st, now, fmt.Sprintf("notifier %s delivers again (failing since %s)", h.Notifier, stamp(st.Since)))
		a.Labels = map[string]string{"notifier": h.Notifier}
		// Every notifier, the recovered one too: probe may have told it
		// the incident (possibly before a restart), and its thread must
		// not stay firing; if not, it learns why its backlog came late.
		w.commitNotices(nil, []rules.Key{k}, []rules.Notice{{Alert: a}})
		return
	}
	if open {
		return // already told (a failure run carried over a restart)
	}
	st = selfState(k, notifiers.Critical, h.Since, now)
	w.self[k] = st
	a := firing(st, now)
	a.Labels = map[string]string{"notifier": h.Notifier}
	a.Summary = fmt.Sprintf("notifier %s has been failing since %s: %s; its alerts wait in the outbox", h.Notifier, stamp(h.Since), h.LastError)
	a.Runbook = "Check the notifier's credentials and the service's status; `marginwatch notify-test -notifier " + h.Notifier + "` tries it."
	w.commitNotices([]rules.State{st}, nil, []rules.Notice{{Alert: a, Notify: others}})
}

// probeEvery is how often a failing notifier with nothing left to send is
// sent its own notifier-failing notice: a notifier that refused for good
// (a revoked token) has dropped its entries, and without a new attempt it
// would count as failing, and the heartbeat stay silent, long after it was
// fixed.
const probeEvery = 30 * time.Second

// probeFailing sends probes until ctx is done.
func (w *Watcher) probeFailing(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.probe()
	}
}

// probe queues notifier-failing, as a repeat, for every failing notifier
// whose outbox is empty (pending entries are retried anyway).
func (w *Watcher) probe() {
	failing := w.health.failingNames()
	if len(failing) == 0 {
		return
	}
	depth, err := w.store.OutboxDepth()
	if err != nil {
		w.log.Warn("read outbox depth", "err", err)
		return
	}
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	now := w.now()
	var notices []rules.Notice
	for _, name := range failing {
		st, open := w.self[notifierKey(name)]
		if !open || depth[name] > 0 || !slices.Contains(w.cur.names, name) {
			continue
		}
		a := firing(st, now)
		a.Kind = notifiers.KindRepeat
		a.Labels = map[string]string{"notifier": name}
		a.Summary = fmt.Sprintf("notifier %s has been failing since %s; alerts meant for it may have been lost — check the other channels and `marginwatch status`", name, stamp(st.Since))
		notices = append(notices, rules.Notice{Alert: a, Notify: []string{name}})
	}
	w.commitNotices(nil, nil, notices)
}

// reloadFailure logs a rejected configuration and tells every notifier,
// as one incident per run of failures; the last good configuration keeps
// running.
func (w *Watcher) reloadFailure(err error) {
	now := w.now()
	w.log.Error("configuration reload rejected; the last good configuration keeps running", "err", err)
	if w.opts.Hooks.Reloaded != nil {
		w.opts.Hooks.Reloaded(false, now)
	}
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	st, open := w.self[reloadKey]
	if !open {
		st = selfState(reloadKey, notifiers.Warning, now, now)
	}
	st.LastSent = now
	w.self[reloadKey] = st
	a := firing(st, now)
	if open {
		a.Kind = notifiers.KindRepeat // a new, different mistake: say so, same incident
	}
	msg := err.Error()
	if lines := strings.Split(msg, "\n"); len(lines) > 3 {
		msg = strings.Join(lines[:3], "; ") + fmt.Sprintf("; and %d more", len(lines)-3)
	}
	a.Summary = "config reload failed, still running the last good configuration: " + strings.ReplaceAll(msg, "\n", "; ")
	a.Runbook = "Fix the file (`marginwatch check -config " + w.cur.cfg.Path + "` lists every problem) and save it again."
	w.commitNotices([]rules.State{st}, nil, []rules.Notice{{Alert: a}})
}

// reloadSuccess resolves config-reload-failed when it was firing.
func (w *Watcher) reloadSuccess() {
	now := w.now()
	if w.opts.Hooks.Reloaded != nil {
		w.opts.Hooks.Reloaded(true, now)
	}
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	st, open := w.self[reloadKey]
	if !open {
		return
	}
	delete(w.self, reloadKey)
	a := resolved(st, now, "config reloaded: the configuration on disk is the one running again")
	w.commitNotices(nil, []rules.Key{reloadKey}, []rules.Notice{{Alert: a}})
}

// selfStates returns the daemon's own alert states. Callers hold
// w.commitMu.
func (w *Watcher) selfStates() []rules.State {
	return slices.SortedFunc(maps.Values(w.self), func(a, b rules.State) int { return cmpKey(a.Key, b.Key) })
}

// selfState is a new firing self alert.
func selfState(k rules.Key, sev notifiers.Severity, since, now time.Time) rules.State {
	return rules.State{
		Key: k, Phase: rules.Active, ID: rules.IncidentID(k, "", since), Severity: sev,
		Since: since, StartsAt: since, LastSent: now,
	}
}

// firing is the skeleton of a self alert's firing notice.
func firing(st rules.State, now time.Time) notifiers.Alert {
	return notifiers.Alert{
		ID: st.ID, Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: st.Severity,
		Rule: st.Key.Rule, Account: st.Key.Account, StartsAt: st.StartsAt, At: now,
	}
}

// resolved is a self alert's resolution notice.
func resolved(st rules.State, now time.Time, summary string) notifiers.Alert {
	a := firing(st, now)
	a.Status, a.Kind, a.Summary = notifiers.Resolved, notifiers.KindResolved, summary
	if st.Key.Rule == NotifierFailing {
		a.Labels = map[string]string{"notifier": st.Key.Symbol}
	}
	return a
}

func stamp(t time.Time) string { return t.UTC().Format(time.DateTime) }

func cmpKey(a, b rules.Key) int {
	return strings.Compare(a.Account+"\x00"+a.Rule+"\x00"+a.Symbol+"\x00"+a.Side, b.Account+"\x00"+b.Rule+"\x00"+b.Symbol+"\x00"+b.Side)
}

// commitNotices commits self-alert state changes with their notices in one
// transaction and wakes delivery. Callers hold w.commitMu.
func (w *Watcher) commitNotices(put []rules.State, del []rules.Key, notices []rules.Notice) {
	b := &store.Batch{Put: put, Delete: del, Enqueue: delivery.Entries(notices, w.cur.names, w.now())}
	if len(b.Put)+len(b.Delete)+len(b.Enqueue) == 0 {
		return
	}
	w.save(b)
}
