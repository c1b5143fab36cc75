package watcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// ErrNotFound is returned (wrapped) by ExpireSilence and Ack for an ID the
// daemon does not know: the message names the ID and where to find valid
// ones.
var ErrNotFound = errors.New("not found")

// ErrNotAckable is returned (wrapped) by Ack for one of the daemon's
// built-in alerts (data-stale, notifier-failing, config-reload-failed):
// they end when the daemon recovers, not when someone acknowledges them.
var ErrNotAckable = errors.New("cannot be acknowledged")

// silencesKept is how long an ended silence stays in the store before
// maintain removes it.
const silencesKept = 24 * time.Hour

// controls holds the silences and mute windows in force. The rules
// engine asks it (as its rules.Silencer) on every notice due; it answers
// from an immutable silence.Set swapped whole on each change.
type controls struct {
	mu      sync.Mutex // orders changes; readers use set
	stored  []silence.Silence
	windows []silence.Window
	set     atomic.Pointer[silence.Set]
	// changed wakes releaseLoop: a silence ended early, the windows changed.
	changed chan struct{}
}

func newControls() *controls {
	c := &controls{changed: make(chan struct{}, 1)}
	c.set.Store(silence.NewSet(nil, nil))
	return c
}

// Silenced implements rules.Silencer.
func (c *controls) Silenced(k rules.Key, sev notifiers.Severity, now time.Time) bool {
	_, ok := c.silencedBy(k, sev, now)
	return ok
}

// silencedBy names the silence that withholds the alert k at sev. The
// built-in data-stale is never silenced: "monitoring is blind" must reach
// every notifier, whatever a silence on its account says.
func (c *controls) silencedBy(k rules.Key, sev notifiers.Severity, now time.Time) (string, bool) {
	if k.Rule == rules.DataStale {
		return "", false
	}
	t := silence.Target{Account: k.Account, Rule: k.Rule, Symbol: k.Symbol, Side: k.Side, Severity: sev.String()}
	return c.set.Load().Silenced(&t, now)
}

// update replaces the stored silences and/or the windows (nil keeps
// them) and wakes releaseLoop. Callers hold c.mu.
func (c *controls) update(stored []silence.Silence, windows []silence.Window) {
	if stored != nil {
		c.stored = stored
	}
	if windows != nil {
		c.windows = windows
	}
	c.set.Store(silence.NewSet(slices.Clip(c.stored), slices.Clip(c.windows)))
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// loadSilences reads the stored silences at start. An unreadable record
// is logged and skipped: the others still hold.
func (w *Watcher) loadSilences() {
	stored, err := w.store.Silences()
	if err != nil {
		w.log.Error("some stored silences cannot be read and are ignored", "err", err)
	}
	w.ctl.mu.Lock()
	defer w.ctl.mu.Unlock()
	w.ctl.update(slices.Clone(stored), nil)
}

// setWindows puts the config's mute windows in force (start, reload).
func (w *Watcher) setWindows(ws []silence.Window) {
	w.ctl.mu.Lock()
	defer w.ctl.mu.Unlock()
	if ws == nil {
		ws = []silence.Window{}
	}
	w.ctl.update(nil, ws)
}

// AddSilence stores s (its ID and CreatedAt are set here; a zero StartsAt
// means now) and returns it as stored. Matching alerts are withheld from
// their next notice on. A silence that cannot be stored is refused: one
// kept only in memory would end at the next restart.
func (w *Watcher) AddSilence(s silence.Silence) (silence.Silence, error) {
	now := w.now()
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	s.CreatedAt, s.Window = now, ""
	if err := s.Validate(); err != nil {
		return silence.Silence{}, err
	}
	if !s.EndsAt.After(now) {
		return silence.Silence{}, fmt.Errorf("silence ends in the past (%s): give a duration or a later end", s.EndsAt.UTC().Format(time.RFC3339))
	}
	var id [6]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	s.ID = hex.EncodeToString(id[:])
	w.ctl.mu.Lock()
	defer w.ctl.mu.Unlock()
	if err := w.store.PutSilence(s); err != nil {
		return silence.Silence{}, fmt.Errorf("cannot store the silence (free disk space or fix the state_dir): %w", err)
	}
	w.ctl.update(append(slices.Clone(w.ctl.stored), s), nil)
	w.log.Info("silence added", "id", s.ID, "matchers", matcherList(s.Matchers), "ends", s.EndsAt, "author", s.Author, "comment", s.Comment)
	return s, nil
}

// ExpireSilence ends the silence id now and returns it; alerts it held
// back that still fire are sent at once. Mute windows cannot be expired:
// they come from the config.
func (w *Watcher) ExpireSilence(id string) (silence.Silence, error) {
	if name, ok := strings.CutPrefix(id, "window:"); ok {
		return silence.Silence{}, fmt.Errorf("%s is the mute window %q of the config: remove or change it under mute_windows and reload", id, name)
	}
	now := w.now()
	w.ctl.mu.Lock()
	i := slices.IndexFunc(w.ctl.stored, func(s silence.Silence) bool { return s.ID == id })
	if i < 0 || !now.Before(w.ctl.stored[i].EndsAt) {
		w.ctl.mu.Unlock()
		return silence.Silence{}, fmt.Errorf("no active silence %q (see marginwatch silence list): %w", id, ErrNotFound)
	}
	s := w.ctl.stored[i]
	s.EndsAt = now
	if s.StartsAt.After(now) {
		s.StartsAt = now
	}
	if err := w.store.PutSilence(s); err != nil {
		w.ctl.mu.Unlock()
		return silence.Silence{}, fmt.Errorf("cannot store the silence's end (free disk space or fix the state_dir): %w", err)
	}
	stored := slices.Clone(w.ctl.stored)
	stored[i] = s
	w.ctl.update(stored, nil)
	w.ctl.mu.Unlock()
	w.log.Info("silence expired", "id", s.ID, "matchers", matcherList(s.Matchers))
	w.release()
	return s, nil
}

// Silences returns the silences in force or still to come, mute windows'
// current occurrences included, ordered by end.
func (w *Watcher) Silences() []silence.Silence { return w.ctl.set.Load().List(w.now()) }

// Ack acknowledges the firing incident id (rules.State.ID): its repeats
// stop until its severity rises or it ends. It returns the incident's
// state as acknowledged.
func (w *Watcher) Ack(id, author, comment string) (rules.State, error) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	_, engine, _ := w.running()
	now := w.now()
	for _, s := range engine.States() {
		if s.ID == id && s.Key.Rule == rules.DataStale {
			return rules.State{}, fmt.Errorf("%s is the built-in alert %s, which %w: it ends when data returns, and repeats until then", id, s.Key.Rule, ErrNotAckable)
		}
	}
	st, ok := engine.Ack(id, author, comment, now)
	if !ok {
		for _, s := range w.self {
			if s.ID == id {
				return rules.State{}, fmt.Errorf("%s is the built-in alert %s, which %w: it ends when the daemon recovers", id, s.Key.Rule, ErrNotAckable)
			}
		}
		return rules.State{}, fmt.Errorf("no firing alert %q (see marginwatch status): %w", id, ErrNotFound)
	}
	w.save(&store.Batch{Put: []rules.State{st}})
	w.log.Info("alert acknowledged", "id", id, "rule", st.Key.Rule, "account", st.Key.Account, "symbol", st.Key.Symbol, "side", st.Key.Side, "author", author, "comment", comment)
	return st, nil
}

// release sends the notices silences withheld from alerts that still fire
// and that nothing silences any more.
func (w *Watcher) release() {
	if _, engine, _ := w.running(); !engine.Releasable(w.now()) {
		return // the common case: no need to wait for a commit in flight
	}
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	_, engine, _ := w.running()
	now := w.now()
	res := engine.Release(now)
	if len(res.Changed) == 0 {
		return
	}
	if len(res.Notices) > 0 {
		w.log.Info("a silence ended on firing alerts: sending them now", "alerts", len(res.Notices))
	}
	w.save(&store.Batch{Put: res.Changed, Enqueue: delivery.Entries(res.Notices, w.cur.names, now)})
	if w.opts.Hooks.Evaluated != nil {
		w.opts.Hooks.Evaluated(append(engine.States(), w.selfStates()...))
	}
}

// releaseLoop releases withheld notices whenever a silence or mute window
// ends: at each change of the set and at its next scheduled change.
func (w *Watcher) releaseLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		wait := time.Minute // a floor against a clock step
		if next := w.ctl.set.Load().NextChange(w.now()); !next.IsZero() {
			wait = min(wait, max(next.Sub(w.now()), 0)+10*time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-w.ctl.changed:
		case <-t.C:
		}
		w.release()
	}
}

// pruneSilences removes silences that ended more than silencesKept ago.
func (w *Watcher) pruneSilences(now time.Time) {
	w.ctl.mu.Lock()
	defer w.ctl.mu.Unlock()
	n, err := w.store.PruneSilences(now.Add(-silencesKept))
	if err != nil {
		w.log.Warn("prune ended silences", "err", err)
		return
	}
	if n == 0 {
		return
	}
	kept := slices.DeleteFunc(slices.Clone(w.ctl.stored), func(s silence.Silence) bool { return s.EndsAt.Before(now.Add(-silencesKept)) })
	w.ctl.update(kept, nil)
}

func matcherList(ms []silence.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, " ")
}
