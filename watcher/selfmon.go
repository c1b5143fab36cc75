package watcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// NotifierFailing is the built-in alert raised on every other notifier when
// one notifier keeps failing, and resolved when it delivers again.
const NotifierFailing = "notifier-failing"

// onNotifierHealth turns a delivery health report into a notifier-failing
// notice for every other notifier. It runs on the failing notifier's worker.
func (w *Watcher) onNotifierHealth(h delivery.Health) {
	others := slices.DeleteFunc(slices.Clone(w.names), func(n string) bool { return n == h.Notifier })
	if len(others) == 0 {
		w.log.Error("the only notifier is failing: nobody can be told", "notifier", h.Notifier, "err", h.LastError)
		return
	}
	a := notifiers.Alert{
		ID:       incidentID(NotifierFailing, h.Notifier, h.Since),
		Status:   notifiers.Firing,
		Kind:     notifiers.KindFiring,
		Severity: notifiers.Critical,
		Rule:     NotifierFailing,
		StartsAt: h.Since,
		At:       w.now(),
		Labels:   map[string]string{"notifier": h.Notifier},
		Summary: fmt.Sprintf("notifier %s has been failing since %s: %s; its alerts wait in the outbox",
			h.Notifier, h.Since.UTC().Format(time.DateTime), h.LastError),
		Runbook: "Check the notifier's credentials and the service's status; `marginwatch notify-test -notifier " + h.Notifier + "` tries it.",
	}
	if !h.Failing {
		a.Status, a.Kind = notifiers.Resolved, notifiers.KindResolved
		a.Summary = fmt.Sprintf("notifier %s delivers again (failing since %s)", h.Notifier, h.Since.UTC().Format(time.DateTime))
	}
	entries := delivery.Entries([]rules.Notice{{Alert: a, Notify: others}}, w.names, a.At)
	w.mu.Lock()
	w.unsaved = append(w.unsaved, &store.Batch{Enqueue: entries})
	ok := w.commitUnsaved()
	w.mu.Unlock()
	if ok {
		w.disp.Kick()
	}
}

// incidentID derives a stable incident id from its identity and start.
func incidentID(rule, target string, since time.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", rule, target, since.UnixNano()))
	return hex.EncodeToString(sum[:8])
}
