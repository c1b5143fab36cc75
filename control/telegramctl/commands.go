package telegramctl

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// command is one of the bot's commands, as setMyCommands publishes it and
// /help lists it.
type command struct {
	name, args, about string
}

var commands = []command{
	{"status", "", "accounts and the riskiest positions"},
	{"positions", "", "every open position"},
	{"alerts", "", "pending and firing alerts, and silences"},
	{"mute", "matcher... duration", "silence matching alerts, e.g. /mute rule=liquidation-near symbol=BTCUSDT 2h"},
	{"unmute", "id", "end a silence now"},
	{"ack", "id [comment]", "stop an alert's repeats until it escalates or ends"},
	{"help", "", "this list"},
}

// respond runs command name with args for author and returns the reply's
// lines (each a complete piece of Telegram HTML). group is true for a
// group or channel chat, where an unknown command gets one line.
func respond(ctl Control, name string, args []string, author string, group bool, now time.Time) []string {
	switch name {
	case "status":
		return renderStatus(ctl.Status(now), now)
	case "positions":
		return renderPositions(ctl.Status(now), now)
	case "alerts":
		return renderAlerts(ctl.Status(now), ctl.Silences(), now)
	case "mute":
		return mute(ctl, args, author, now)
	case "unmute":
		return unmute(ctl, args)
	case "ack":
		return ack(ctl, args, author)
	case "help":
		return help()
	}
	if group {
		// In a group it was likely meant for another bot: one line, not
		// the whole list in everyone's chat.
		return []string{"Not a marginwatch command: " + esc("/"+clip(name, 40)) + " — /help lists mine."}
	}
	if name == "start" {
		return help()
	}
	return append([]string{"Unknown command " + esc("/"+clip(name, 40)) + "."}, help()...)
}

func help() []string {
	lines := []string{"<b>marginwatch commands</b>"}
	for _, c := range commands {
		l := "/" + c.name
		if c.args != "" {
			l += " <i>" + esc(c.args) + "</i>"
		}
		lines = append(lines, l+" — "+esc(c.about))
	}
	return append(lines,
		"Matchers: "+esc(strings.Join(silence.Labels, ", "))+" with =, != or =~ (a regexp). Durations: 30m, 2h, 1d, 1d12h.")
}

func mute(ctl Control, args []string, author string, now time.Time) []string {
	const usage = "Usage: <code>/mute matcher... duration</code>, e.g. <code>/mute rule=liquidation-near symbol=BTCUSDT 2h</code>"
	if len(args) < 2 {
		return []string{"Not muted: give at least one matcher and a duration.", usage}
	}
	d, err := parseDuration(args[len(args)-1])
	if err != nil {
		return []string{"Not muted: " + esc(err.Error()), usage}
	}
	ms, err := silence.ParseMatchers(args[:len(args)-1])
	if err != nil {
		return []string{"Not muted: " + esc(err.Error()), usage}
	}
	s, err := ctl.AddSilence(silence.Silence{Matchers: ms, StartsAt: now, EndsAt: now.Add(d), Author: author, Comment: "via Telegram"})
	if err != nil {
		return []string{"Not muted: " + esc(err.Error())}
	}
	lines := []string{
		"🔕 Muted until " + esc(s.EndsAt.UTC().Format(timeLayout)) + " (" + esc(fmtDuration(s.EndsAt.Sub(now))) + "): " + matchersHTML(s.Matchers),
		"id <code>" + esc(s.ID) + "</code> — <code>/unmute " + esc(s.ID) + "</code> ends it",
	}
	n := 0
	for _, a := range ctl.Status(now) {
		for _, st := range a.Alerts {
			if st.Key.Rule == rules.DataStale {
				continue // never silenced: "monitoring is blind" always speaks
			}
			if s.Matches(&silence.Target{Account: st.Key.Account, Rule: st.Key.Rule, Symbol: st.Key.Symbol, Side: st.Key.Side, Severity: st.Severity.String()}) {
				n++
			}
		}
	}
	switch n {
	case 0:
		lines = append(lines, "<i>It matches no alert pending or firing now.</i>")
	case 1:
		lines = append(lines, "It matches 1 alert pending or firing now.")
	default:
		lines = append(lines, fmt.Sprintf("It matches %d alerts pending or firing now.", n))
	}
	return lines
}

func unmute(ctl Control, args []string) []string {
	if len(args) != 1 {
		return []string{"Usage: <code>/unmute id</code> (/alerts lists the silences and their ids)"}
	}
	s, err := ctl.ExpireSilence(args[0])
	if err != nil {
		if errors.Is(err, watcher.ErrNotFound) {
			return []string{"No silence " + code(args[0]) + " in force: /alerts lists the silences and their ids."}
		}
		return []string{"Not unmuted: " + esc(err.Error())}
	}
	return []string{"🔔 Silence " + code(s.ID) + " ended: " + matchersHTML(s.Matchers)}
}

func ack(ctl Control, args []string, author string) []string {
	if len(args) < 1 {
		return []string{"Usage: <code>/ack id [comment]</code> (/alerts lists the alerts and their ids)"}
	}
	st, err := ctl.Ack(args[0], author, strings.Join(args[1:], " "))
	if err != nil {
		if errors.Is(err, watcher.ErrNotFound) {
			return []string{"No firing alert " + code(args[0]) + ": /alerts lists the alerts and their ids."}
		}
		return []string{"Not acknowledged: " + esc(err.Error())}
	}
	return []string{"✅ Acknowledged " + code(st.ID) + ": " + alertTarget(st) + " — repeats stop until it escalates or ends."}
}

var daysRE = regexp.MustCompile(`^(\d+)d(.*)$`)

// parseDuration reads a Go duration ("90m", "2h30m") or days in front of
// one ("1d", "1d12h"), at most silence.MaxDuration.
func parseDuration(s string) (time.Duration, error) {
	tooLong := fmt.Errorf("duration %q is too long: a silence lasts at most 365d; /unmute ends one early", s)
	var d time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 365 {
			return 0, tooLong
		}
		d, rest = time.Duration(days)*24*time.Hour, m[2]
	}
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: the last argument is how long, e.g. 30m, 2h or 1d", s)
		}
		if r > silence.MaxDuration || d+r > silence.MaxDuration {
			return 0, tooLong
		}
		d += r
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q: must be more than 0", s)
	}
	return d, nil
}

// fmtDuration writes d the way parseDuration reads it, without zero
// units: "2h", "1d12h", "45m".
func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if d > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", d/time.Second)
	}
	return b.String()
}
