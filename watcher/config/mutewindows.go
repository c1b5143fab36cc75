package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/marginwatch/marginwatch/watcher/silence"
)

// MuteWindow is a recurring silence (`mute_windows:`): every activation of
// Schedule silences the alerts all Matchers match for Duration.
type MuteWindow struct {
	Name     string        `yaml:"name"`
	Schedule string        `yaml:"schedule"` // cron, CRON_TZ= prefix allowed, as for digests
	Duration time.Duration `yaml:"duration"`
	Matchers []string      `yaml:"matchers"` // as for silences: rule=x, symbol=~BTC.*, side!=short
	At       Location      `yaml:"-"`
}

// MuteWindows returns the config's mute windows, parsed, in file order. Load
// validated them, so none is left out on a loaded config; call it at start
// and after every reload (windows reload with the config). Each call builds
// new values.
func (c *Config) MuteWindows() []silence.Window {
	var out []silence.Window
	for i := range c.Mutes {
		w, err := c.Mutes[i].window()
		if err != nil {
			continue // cannot happen after validation
		}
		out = append(out, w)
	}
	return out
}

// window parses w.
func (w *MuteWindow) window() (silence.Window, error) {
	sched, err := ParseSchedule(w.Schedule)
	if err != nil {
		return silence.Window{}, err
	}
	ms, err := silence.ParseMatchers(w.Matchers)
	if err != nil {
		return silence.Window{}, err
	}
	return silence.Window{Name: w.Name, Schedule: sched, Duration: w.Duration, Matchers: ms}, nil
}

// validateMuteWindows checks each window and that names are unique.
func validateMuteWindows(ws []MuteWindow, c *collector) {
	seen := make(map[string]Location)
	for i := range ws {
		w := &ws[i]
		validateMuteWindow(w, c)
		if w.Name == "" {
			continue
		}
		if first, dup := seen[w.Name]; dup {
			c.add(w.At.Errorf("name", "duplicate mute window name %q (also %s at line %d); mute window names must be unique", w.Name, first.Path, first.Pos.Line))
			continue
		}
		seen[w.Name] = w.At
	}
}

func validateMuteWindow(w *MuteWindow, c *collector) {
	l := w.At
	checkName(l, "mute window", w.Name, "weekend-funding", c)
	switch {
	case w.Schedule == "":
		c.add(l.Errorf("schedule", "is required: a cron schedule of when the window opens, e.g. \"CRON_TZ=UTC 0 0 * * SAT\""))
	default:
		sched, err := ParseSchedule(w.Schedule)
		if err != nil {
			c.add(l.Errorf("schedule", "%q: %v (use 5 fields \"minute hour day-of-month month weekday\", e.g. \"0 0 * * SAT\", optionally after CRON_TZ=UTC)", w.Schedule, err))
		} else if _, every := sched.(cron.ConstantDelaySchedule); every {
			// @every counts from whenever it is asked, so no occurrence
			// can be placed: the window would never (or always) be open.
			c.add(l.Errorf("schedule", "%q: @every has no fixed times for a window to open at; use a cron time, e.g. \"0 * * * *\" for every hour", w.Schedule))
		}
	}
	if w.Duration <= 0 {
		c.add(l.Errorf("duration", "must be more than 0 (e.g. 48h): how long the window stays open after each time the schedule fires"))
	}
	if len(w.Matchers) == 0 {
		c.add(l.Errorf("matchers", "is required: at least one matcher, e.g. [\"rule=funding-cost\"]; a window matching everything would silence every alert, the daemon's own included"))
	}
	for i, s := range w.Matchers {
		if _, err := silence.ParseMatcher(s); err != nil {
			c.add(l.Errorf(fmt.Sprintf("matchers[%d]", i), "%v", err))
		}
	}
}

// muteWindowWarnings reports a window matcher `rule=x` or `account=x` naming
// no rule or account of the config: it silences nothing (a typo, or a rule
// since renamed).
func (c *Config) muteWindowWarnings() []Warning {
	builtin := []string{DataStaleRule, NotifierFailingRule, ConfigReloadFailedRule}
	var rules []string
	for i := range c.Rules {
		rules = append(rules, c.Rules[i].Name)
	}
	var accounts []string
	for i := range c.Accounts {
		accounts = append(accounts, c.Accounts[i].Name)
	}
	var ws []Warning
	for i := range c.Mutes {
		w := &c.Mutes[i]
		for j, s := range w.Matchers {
			m, err := silence.ParseMatcher(s)
			if err != nil || m.Op != silence.Equal {
				continue
			}
			var known []string
			switch m.Label {
			case "rule":
				known = rules
			case "account":
				known = accounts
			default:
				continue
			}
			if slices.Contains(known, m.Value) {
				continue
			}
			if m.Label == "rule" && slices.Contains(builtin, m.Value) || m.Label == "account" && m.Value == SelfAccount {
				ws = append(ws, w.At.warnf(fmt.Sprintf("matchers[%d]", j), "%s=%s names one of the daemon's alerts about itself (data-stale, notifier-failing, config-reload-failed), which are never silenced: they say marginwatch is blind or deaf; remove the matcher", m.Label, m.Value))
				continue
			}
			hint := ""
			if s := suggest(m.Value, known); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			ws = append(ws, w.At.warnf(fmt.Sprintf("matchers[%d]", j), "no %s is named %q%s, so this matcher silences nothing; fix the name or remove the window", m.Label, m.Value, hint))
		}
	}
	return ws
}
