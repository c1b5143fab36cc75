package watcher

import (
	"context"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/digest"
)

// threadsKept is how long an incident's thread reference is kept; an older
// incident's next notice only starts a new thread. historyKept is how long
// sent alerts are kept for digests.
const (
	threadsKept = 30 * 24 * time.Hour
	historyKept = 2 * digest.Window
)

// maintain garbage-collects the store every hour.
func (w *Watcher) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := w.now()
		if _, err := w.store.PruneThreads(now.Add(-threadsKept)); err != nil {
			w.log.Warn("prune thread references", "err", err)
		}
		if _, err := w.store.PruneHistory(now.Add(-historyKept)); err != nil {
			w.log.Warn("prune alert history", "err", err)
		}
		w.pruneOrphanOutbox(now)
		w.pruneSilences(now)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneOrphanOutbox drops outbox entries of notifiers no longer configured
// once they are older than the default max_age: no worker will ever send
// them. Each drop is an error log line, as for any undeliverable alert.
func (w *Watcher) pruneOrphanOutbox(now time.Time) {
	depth, err := w.store.OutboxDepth()
	if err != nil {
		w.log.Warn("read outbox depth", "err", err)
		return
	}
	s, _, _ := w.running()
	for name := range depth {
		if slices.Contains(s.names, name) {
			continue
		}
		entries, err := w.store.Pending(name, 0)
		if err != nil {
			w.log.Warn("read outbox", "notifier", name, "err", err)
			continue
		}
		for _, e := range entries {
			if now.Sub(e.Created) < delivery.DefaultMaxAge {
				continue
			}
			if err := w.store.Ack(name, e.ID); err != nil {
				w.log.Warn("drop orphaned outbox entry", "notifier", name, "err", err)
				continue
			}
			w.log.Error("dropping undeliverable notification: its notifier is no longer configured", "notifier", name, "entry", e.ID, "alerts", len(e.Alerts), "created", e.Created)
		}
	}
}
