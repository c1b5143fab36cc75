package watcher

import (
	"fmt"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/watcher/rules"
)

// Alive reports whether the poll loop is making progress: a cycle (failed
// polls count: an exchange outage is data-stale's business, not a reason to
// restart) completed within three poll intervals, or a minute. The service
// manager's watchdog is fed only while it is true. It never waits on the
// disk, and reads the monotonic clock.
func (w *Watcher) Alive() bool {
	w.mu.Lock()
	var longest time.Duration
	for _, a := range w.cur.accounts {
		longest = max(longest, a.cfg.PollInterval)
	}
	w.mu.Unlock()
	since := time.Since(w.base) - time.Duration(w.lastCycle.Load())
	return since < max(3*longest, time.Minute)
}

// Health reports whether every account has fresh data (stale_after), with
// one line per blind account otherwise: /healthz. It never waits on the
// disk.
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
	for _, a := range w.cur.accounts {
		last, since := a.freshness()
		age := now.Sub(since)
		switch {
		case age > a.cfg.StaleAfter:
			lines = append(lines, fmt.Sprintf("account %s: no fresh data for %s", a.cfg.Name, age.Round(time.Second)))
		case blind[a.cfg.Name] && last.Before(a.watchedSince):
			lines = append(lines, fmt.Sprintf("account %s: no fresh data since before the restart", a.cfg.Name))
		}
	}
	w.mu.Unlock()
	if len(lines) == 0 {
		return true, ""
	}
	return false, strings.Join(lines, "\n") + "\n"
}
