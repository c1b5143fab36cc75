package watcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// Built-in alerts about the daemon itself.
const (
	// NotifierFailing goes to every other notifier when one notifier keeps
	// failing, and resolves when it delivers again.
	NotifierFailing = "notifier-failing"
	// ConfigReloadFailed goes to every notifier when an edited config or
	// rule file is rejected (the last good one keeps running), and resolves
	// at the next successful reload.
	ConfigReloadFailed = "config-reload-failed"
)

// onNotifierHealth turns a delivery health report into a notifier-failing
// notice for every other notifier. It runs on the failing notifier's worker.
func (w *Watcher) onNotifierHealth(h delivery.Health) {
	w.health.setNotifier(h.Notifier, h.Failing, h.LastError)
	s, _, _ := w.running()
	others := slices.DeleteFunc(slices.Clone(s.names), func(n string) bool { return n == h.Notifier })
	if len(others) == 0 {
		w.log.Error("the only notifier is failing: nobody can be told", "notifier", h.Notifier, "err", h.LastError)
		return
	}
	since := h.Since.UTC().Format(time.DateTime)
	a := selfAlert(NotifierFailing, h.Notifier, h.Since, w.now(), notifiers.Critical, !h.Failing)
	a.Labels = map[string]string{"notifier": h.Notifier}
	a.Summary = fmt.Sprintf("notifier %s has been failing since %s: %s; its alerts wait in the outbox", h.Notifier, since, h.LastError)
	a.Runbook = "Check the notifier's credentials and the service's status; `marginwatch notify-test -notifier " + h.Notifier + "` tries it."
	if !h.Failing {
		a.Summary = fmt.Sprintf("notifier %s delivers again (failing since %s)", h.Notifier, since)
	}
	w.enqueue([]rules.Notice{{Alert: a, Notify: others}})
}

// reloadFailure logs a rejected configuration and tells every notifier
// once per run of failures; the last good configuration keeps running.
func (w *Watcher) reloadFailure(err error) {
	now := w.now()
	w.log.Error("configuration reload rejected; the last good configuration keeps running", "err", err)
	if w.opts.Hooks.Reloaded != nil {
		w.opts.Hooks.Reloaded(false, now)
	}
	w.commitMu.Lock()
	first := w.reloadFailed.IsZero()
	if first {
		w.reloadFailed = now
	}
	since, path := w.reloadFailed, w.cur.cfg.Path
	w.commitMu.Unlock()
	a := selfAlert(ConfigReloadFailed, "", since, now, notifiers.Warning, false)
	if !first {
		a.Kind = notifiers.KindRepeat // a new, different mistake: say so, same incident
	}
	msg := err.Error()
	if lines := strings.Split(msg, "\n"); len(lines) > 3 {
		msg = strings.Join(lines[:3], "; ") + fmt.Sprintf("; and %d more", len(lines)-3)
	}
	a.Summary = "config reload failed, still running the last good configuration: " + strings.ReplaceAll(msg, "\n", "; ")
	a.Runbook = "Fix the file (`marginwatch check -config " + path + "` lists every problem) and save it again."
	w.enqueue([]rules.Notice{{Alert: a}})
}

// reloadSuccess resolves config-reload-failed when it was firing.
func (w *Watcher) reloadSuccess() {
	now := w.now()
	if w.opts.Hooks.Reloaded != nil {
		w.opts.Hooks.Reloaded(true, now)
	}
	w.commitMu.Lock()
	since := w.reloadFailed
	w.reloadFailed = time.Time{}
	w.commitMu.Unlock()
	if since.IsZero() {
		return
	}
	a := selfAlert(ConfigReloadFailed, "", since, now, notifiers.Warning, true)
	a.Summary = "config reloaded: the configuration on disk is the one running again"
	w.enqueue([]rules.Notice{{Alert: a}})
}

// selfAlert is the skeleton of a built-in alert about the daemon.
func selfAlert(rule, target string, since, now time.Time, sev notifiers.Severity, resolved bool) notifiers.Alert {
	a := notifiers.Alert{
		ID:       incidentID(rule, target, since),
		Status:   notifiers.Firing,
		Kind:     notifiers.KindFiring,
		Severity: sev,
		Rule:     rule,
		Account:  "marginwatch",
		StartsAt: since,
		At:       now,
	}
	if resolved {
		a.Status, a.Kind = notifiers.Resolved, notifiers.KindResolved
	}
	return a
}

// incidentID derives a stable incident id from its identity and start.
func incidentID(rule, target string, since time.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", rule, target, since.UnixNano()))
	return hex.EncodeToString(sum[:8])
}
