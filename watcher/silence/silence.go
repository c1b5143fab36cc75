// Package silence matches alerts against silences: one-off ones added by a
// user (CLI, admin API, Telegram /mute), stored by the daemon, and the
// recurring mute_windows of the config. It knows nothing of the rules
// engine or the store; both hand it the few strings it matches.
package silence

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Labels are the names a matcher may test, in the order they are listed in
// messages.
var Labels = []string{"account", "rule", "symbol", "side", "severity"}

// severities are the names a severity matcher may compare with (those of
// notifiers.Severity, which this package does not import).
var severities = []string{"info", "warning", "critical"}

// Op is a matcher's comparison.
type Op string

// Matcher comparisons, as Alertmanager writes them.
const (
	Equal    Op = "="
	NotEqual Op = "!="
	Regexp   Op = "=~"
)

// Matcher tests one label of an alert. Build it with ParseMatcher; the zero
// Matcher matches nothing.
type Matcher struct {
	Label string
	Op    Op
	Value string
	re    *regexp.Regexp
}

// ParseMatcher reads `label=value`, `label!=value` or `label=~regexp`. The
// value may be double-quoted; a regexp must match the whole value
// (Alertmanager's anchoring). Errors say what is accepted.
func ParseMatcher(s string) (Matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return Matcher{}, fmt.Errorf("matcher %q: want label=value, label!=value or label=~regexp, with label one of %s", s, strings.Join(Labels, ", "))
	}
	m := Matcher{Label: strings.TrimSpace(s[:i])}
	rest := s[i:]
	switch {
	case strings.HasPrefix(rest, "=~"):
		m.Op, rest = Regexp, rest[2:]
	case strings.HasPrefix(rest, "!="):
		m.Op, rest = NotEqual, rest[2:]
	case strings.HasPrefix(rest, "="):
		m.Op, rest = Equal, rest[1:]
	default:
		return Matcher{}, fmt.Errorf("matcher %q: want label=value, label!=value or label=~regexp", s)
	}
	if !slices.Contains(Labels, m.Label) {
		return Matcher{}, fmt.Errorf("matcher %q: unknown label %q: use one of %s", s, m.Label, strings.Join(Labels, ", "))
	}
	m.Value = strings.TrimSpace(rest)
	if len(m.Value) >= 2 && m.Value[0] == '"' && m.Value[len(m.Value)-1] == '"' {
		m.Value = unescape(m.Value[1 : len(m.Value)-1])
	}
	if m.Op == Regexp {
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("matcher %q: bad regexp: %v", s, err)
		}
		m.re = re
	} else if m.Label == "severity" && m.Value != "" && !slices.Contains(severities, m.Value) {
		return Matcher{}, fmt.Errorf("matcher %q: no severity %q: use info, warning or critical", s, m.Value)
	} else if m.Value == "" && m.Op == Equal {
		return Matcher{}, fmt.Errorf("matcher %q: empty value (to match alerts without a %s, use %s=~\"\")", s, m.Label, m.Label)
	}
	return m, nil
}

// ParseMatchers parses each of ss; at least one is required.
func ParseMatchers(ss []string) ([]Matcher, error) {
	if len(ss) == 0 {
		return nil, fmt.Errorf("no matcher: give at least one, e.g. rule=liquidation-near or symbol=BTCUSDT")
	}
	ms := make([]Matcher, 0, len(ss))
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// unescape reads a quoted value as Alertmanager does: \" is ", \\ is \,
// \n is a newline, and any other backslash is kept, so a regexp such as
// "BTC\d+" means the same quoted or not.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '"', '\\':
			b.WriteByte(s[i+1])
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i+1])
		}
		i++
	}
	return b.String()
}

// quoter is the inverse of unescape.
var quoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// String writes the matcher as ParseMatcher reads it: the value is quoted
// when it is empty or holds whitespace or a double quote, which the
// unquoted form would lose.
func (m Matcher) String() string {
	v := m.Value
	if v == "" || strings.ContainsFunc(v, unicode.IsSpace) || strings.Contains(v, `"`) {
		v = `"` + quoter.Replace(v) + `"`
	}
	return m.Label + string(m.Op) + v
}

// MarshalText writes the matcher as a string (JSON, the store, the API).
func (m Matcher) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses a matcher written by MarshalText.
func (m *Matcher) UnmarshalText(b []byte) error {
	p, err := ParseMatcher(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// Target is what a matcher sees of an alert. Account-scope alerts have an
// empty Symbol and Side; Severity is its name (info, warning, critical).
type Target struct {
	Account, Rule, Symbol, Side, Severity string
}

func (t *Target) label(name string) string {
	switch name {
	case "account":
		return t.Account
	case "rule":
		return t.Rule
	case "symbol":
		return t.Symbol
	case "side":
		return t.Side
	case "severity":
		return t.Severity
	}
	return ""
}

// Matches reports whether the matcher holds for t.
func (m *Matcher) Matches(t *Target) bool {
	v := t.label(m.Label)
	switch m.Op {
	case Equal:
		return v == m.Value
	case NotEqual:
		return v != m.Value
	case Regexp:
		return m.re != nil && m.re.MatchString(v)
	}
	return false
}

// MaxDuration caps a silence's length: a typo ("8784h") must not mute
// alerts for years.
const MaxDuration = 365 * 24 * time.Hour

// Silence withholds the notices of every alert all its matchers match
// from StartsAt until EndsAt.
type Silence struct {
	// ID names the silence for `silence expire` and /unmute; a mute
	// window's is "window:" and its name.
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Author    string    `json:"author,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	// Window is the mute window this silence is the current occurrence
	// of; empty for a user's silence.
	Window string `json:"window,omitempty"`
}

// Active reports whether the silence is in force at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Matches reports whether every matcher holds for t (a silence without
// matchers matches nothing: it would silence everything).
func (s *Silence) Matches(t *Target) bool {
	return len(s.Matchers) > 0 && matchAll(s.Matchers, t)
}

func matchAll(ms []Matcher, t *Target) bool {
	for i := range ms {
		if !ms[i].Matches(t) {
			return false
		}
	}
	return true
}

// Validate checks a silence before it is stored.
func (s *Silence) Validate() error {
	if len(s.Matchers) == 0 {
		return fmt.Errorf("silence without matchers would silence everything: give at least one, e.g. rule=liquidation-near")
	}
	for _, m := range s.Matchers {
		if m.Op == "" {
			return fmt.Errorf("silence matcher %q is not parsed: build matchers with ParseMatcher", m.Label)
		}
	}
	if s.StartsAt.IsZero() || s.EndsAt.IsZero() {
		return fmt.Errorf("silence needs a start and an end")
	}
	if d := s.EndsAt.Sub(s.StartsAt); d > MaxDuration {
		return fmt.Errorf("the silence would last %s: a silence lasts at most 365 days (8760h); for longer, change or remove the rule", d.Round(time.Hour))
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("silence ends (%s) before it starts (%s)", s.EndsAt.UTC().Format(time.RFC3339), s.StartsAt.UTC().Format(time.RFC3339))
	}
	return nil
}
