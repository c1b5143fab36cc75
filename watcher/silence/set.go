package silence

import (
	"slices"
	"time"
)

// Window is a recurring silence (a config mute_window): in force for
// Duration from every activation of Schedule.
type Window struct {
	Name     string
	Schedule interface{ Next(time.Time) time.Time } // a robfig/cron schedule
	Duration time.Duration
	Matchers []Matcher
}

// Occurrence returns the window's occurrence in force at now, as a
// Silence whose ID is "window:"+Name.
func (w *Window) Occurrence(now time.Time) (Silence, bool) {
	if w.Schedule == nil || w.Duration <= 0 {
		return Silence{}, false
	}
	// The first activation after now-Duration is the only one whose span
	// can cover now.
	start := w.Schedule.Next(now.Add(-w.Duration))
	if start.IsZero() || start.After(now) {
		return Silence{}, false
	}
	return Silence{ID: "window:" + w.Name, Matchers: w.Matchers, StartsAt: start, EndsAt: start.Add(w.Duration), Window: w.Name}, true
}

// active reports whether an occurrence of the window is in force at now,
// without building it (Set.Silenced runs on every streamed tick of a
// silenced alert and must not allocate).
func (w *Window) active(now time.Time) bool {
	if w.Schedule == nil || w.Duration <= 0 {
		return false
	}
	start := w.Schedule.Next(now.Add(-w.Duration))
	return !start.IsZero() && !start.After(now)
}

// Set is the silences the daemon knows at one moment: the stored ones
// (active, future or just ended) and the mute windows. It is immutable;
// a change builds a new one.
type Set struct {
	silences []Silence
	windows  []Window
	// winIDs[i] is windows[i]'s silence ID, built once.
	winIDs []string
}

// NewSet returns the set of silences and windows; it keeps both slices.
func NewSet(silences []Silence, windows []Window) *Set {
	s := &Set{silences: silences, windows: windows, winIDs: make([]string, len(windows))}
	for i := range windows {
		s.winIDs[i] = "window:" + windows[i].Name
	}
	return s
}

// Silenced returns the ID of a silence or window in force at now that
// matches t. A nil Set silences nothing.
func (s *Set) Silenced(t *Target, now time.Time) (string, bool) {
	if s == nil {
		return "", false
	}
	for i := range s.silences {
		if x := &s.silences[i]; x.Active(now) && x.Matches(t) {
			return x.ID, true
		}
	}
	for i := range s.windows {
		w := &s.windows[i]
		if len(w.Matchers) > 0 && w.active(now) && matchAll(w.Matchers, t) {
			return s.winIDs[i], true
		}
	}
	return "", false
}

// List returns the silences not yet ended at now (active or future) and
// the windows' occurrences in force, ordered by end.
func (s *Set) List(now time.Time) []Silence {
	if s == nil {
		return nil
	}
	var out []Silence
	for _, x := range s.silences {
		if now.Before(x.EndsAt) {
			out = append(out, x)
		}
	}
	for i := range s.windows {
		if o, ok := s.windows[i].Occurrence(now); ok {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b Silence) int { return a.EndsAt.Compare(b.EndsAt) })
	return out
}

// Get returns the stored silence with id.
func (s *Set) Get(id string) (Silence, bool) {
	if s == nil {
		return Silence{}, false
	}
	for _, x := range s.silences {
		if x.ID == id {
			return x, true
		}
	}
	return Silence{}, false
}

// NextChange returns the first moment after now at which a silence or a
// window starts or ends (zero if none within a week): alerts a silence
// held back are released then.
func (s *Set) NextChange(now time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, x := range s.silences {
		consider(x.StartsAt)
		consider(x.EndsAt)
	}
	for i := range s.windows {
		w := &s.windows[i]
		if o, ok := w.Occurrence(now); ok {
			consider(o.EndsAt)
		}
		if w.Schedule != nil {
			consider(w.Schedule.Next(now))
		}
	}
	if !next.IsZero() && next.Sub(now) > 7*24*time.Hour {
		return time.Time{}
	}
	return next
}
