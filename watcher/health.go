package watcher

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// health is what /healthz reports beyond the accounts' freshness. Its own
// small mutex: commits and deliveries update it, and Health must never wait
// for either.
type health struct {
	mu sync.Mutex
	// storeErr is the last commit's failure while batches are held; nil
	// once a commit went through.
	storeErr error
	// failing holds the notifiers reported failing, with their last error.
	failing map[string]string
	// stateGone says why the state database's path no longer leads to the
	// open database ("" while it does); see checkStateFile.
	stateGone string

	// stateFile is the database file as first seen at its path. Only the
	// commit path reads and writes it (under Watcher.commitMu), not h.mu.
	stateFile os.FileInfo
}

func (h *health) setStore(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.storeErr = err
}

func (h *health) setNotifier(name string, failing bool, lastErr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !failing {
		delete(h.failing, name)
		return
	}
	if h.failing == nil {
		h.failing = make(map[string]string)
	}
	h.failing[name] = lastErr
}

// failingNames returns the notifiers reported failing, sorted.
func (h *health) failingNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.failing))
}

// heartbeatDue reports whether the heartbeat may be pinged after a
// committed cycle: the state database is still the one at its path and
// writable (a deleted one loses everything at the next restart), and at
// least one of names delivers (is not reported failing; no notifier at all
// delivers nothing). The dead-man's switch outside must hear silence
// whenever /healthz has these complaints.
func (h *health) heartbeatDue(names []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stateGone != "" || h.storeErr != nil {
		return false
	}
	for _, n := range names {
		if _, bad := h.failing[n]; !bad {
			return true
		}
	}
	return false
}

// Alive reports whether the poll loop is making progress: a cycle (failed
// polls count: an exchange outage is data-stale's business, not a reason to
// restart) completed within three poll intervals, or a minute. The service
// manager's watchdog is fed only while it is true. It never waits on the
// disk, and reads the monotonic clock.
func (w *Watcher) Alive() bool {
	w.mu.Lock()
	var longest time.Duration
	for _, a := range w.cur.accounts {
		longest = max(longest, a.interval())
	}
	w.mu.Unlock()
	since := time.Since(w.base) - time.Duration(w.lastCycle.Load())
	return since < max(3*longest, time.Minute)
}

// Health is /healthz: ok, or one line per reason the daemon cannot be
// trusted right now, each naming the account or notifier and the fix: an
// account without fresh data for stale_after, an account whose API key is
// rejected, a state database that cannot be written or was deleted under
// the daemon, every notifier failing. It never waits on the disk or the network.
func (w *Watcher) Health() (ok bool, detail string) {
	now := w.now()
	_, engine, _ := w.running()
	// data-stale still firing (restored after a restart while the exchange
	// is down) counts too: the daemon's own start is no fresh data.
	blind := map[string]bool{}
	for _, st := range engine.States() {
		if st.Key.Rule == rules.DataStale && st.Phase == rules.Active {
			blind[st.Key.Account] = true
		}
	}
	var lines []string
	w.mu.Lock()
	s := w.cur
	for _, a := range s.accounts {
		last, since := a.freshness()
		age := now.Sub(since)
		switch {
		case age > a.cfg.StaleAfter:
			lines = append(lines, fmt.Sprintf("account %s: no fresh data for %s; check the exchange's status and the network", a.cfg.Name, age.Round(time.Second)))
		case blind[a.cfg.Name] && last.Before(a.watchedSince):
			lines = append(lines, fmt.Sprintf("account %s: no fresh data since before the restart; check the exchange's status and the network", a.cfg.Name))
		}
		if err := a.keyProblem(); err != nil {
			lines = append(lines, fmt.Sprintf("account %s: API key problem: %s", a.cfg.Name, oneLine(err.Error())))
		}
	}
	w.mu.Unlock()

	w.health.mu.Lock()
	if gone := w.health.stateGone; gone != "" {
		lines = append(lines, gone)
	}
	if err := w.health.storeErr; err != nil {
		lines = append(lines, fmt.Sprintf("state database %s cannot be written (%s); alerts are held in memory: free disk space or fix the state_dir", w.store.Path(), oneLine(err.Error())))
	}
	all := len(s.names) > 0
	var notifierLines []string
	for _, n := range s.names {
		lastErr, bad := w.health.failing[n]
		if !bad {
			all = false
			break
		}
		notifierLines = append(notifierLines, fmt.Sprintf("notifier %s: failing (%s); alerts wait in the outbox: check its credentials and endpoint (`marginwatch notify-test -notifier %s`)", n, oneLine(lastErr), n))
	}
	w.health.mu.Unlock()
	if all {
		lines = append(lines, "every notifier is failing: nobody can be told of an alert")
		lines = append(lines, notifierLines...)
	}
	if len(lines) == 0 {
		return true, ""
	}
	return false, strings.Join(lines, "\n") + "\n"
}

// checkStateFile notices the state database deleted or replaced under the
// running daemon (a cleanup job, an `rm -rf` of state_dir): bbolt keeps
// writing to the open file, commits succeed, and everything — alert
// states, dedup timers, the outbox — is gone at the next restart. It
// compares the file at the database's path with the one seen at the first
// check (os.SameFile: device and inode), and sets /healthz's reason and
// logs once when that changes. A stat is cheap; it runs after each commit,
// whose path already waits on the disk, never in Health. Callers hold
// w.commitMu.
func (w *Watcher) checkStateFile() {
	path := w.store.Path()
	fi, err := os.Stat(path)
	h := &w.health
	gone := ""
	switch {
	case err != nil:
		why := err.Error()
		var pe *os.PathError
		if errors.As(err, &pe) {
			why = pe.Err.Error() // the path is named already
		}
		gone = fmt.Sprintf("state database %s is gone (%s): marginwatch writes its alert state to a deleted file, lost at the next restart; restart marginwatch to create it again, and keep state_dir out of cleanup jobs", path, oneLine(why))
	case h.stateFile == nil:
		h.stateFile = fi
	case !os.SameFile(h.stateFile, fi):
		gone = fmt.Sprintf("state database %s was replaced by another file: marginwatch writes its alert state to the old, deleted one, lost at the next restart; restart marginwatch to use the new one", path)
	}
	h.mu.Lock()
	was := h.stateGone
	h.stateGone = gone
	h.mu.Unlock()
	switch {
	case gone != "" && was == "":
		w.log.Error("the state database was deleted or replaced under the running daemon; restart marginwatch", "path", path, "err", gone)
	case gone == "" && was != "":
		w.log.Info("the state database is back at its path", "path", path)
	}
}

// keyProblem is what is wrong with the account's API key now: what the
// exchange says (exchanges.KeyHealth), or the last poll's permanent error.
func (a *account) keyProblem() error {
	if kh, ok := a.ex.(exchanges.KeyHealth); ok {
		if err := kh.KeyProblem(); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pollErr
}

// setPollErr keeps a poll's error when it is permanent (a rejected key),
// and forgets it after a successful poll.
func (a *account) setPollErr(err error) {
	if err != nil && !errors.Is(err, exchanges.ErrPermanent) {
		return // transient: data-stale speaks for it
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pollErr = err
}

// oneLine keeps a /healthz reason on its line.
func oneLine(s string) string {
	return strings.Join(slices.Collect(func(yield func(string) bool) {
		for l := range strings.Lines(s) {
			if l = strings.TrimSpace(l); l != "" && !yield(l) {
				return
			}
		}
	}), "; ")
}
