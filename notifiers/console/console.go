// Package console writes alerts as one readable line each to a terminal or
// log stream (stdout under systemd ends up in the journal). A digest
// (notifiers.KindDigest) is the exception: a header line, then the digest's
// own lines, each indented by two spaces so they read as one block.
package console

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
)

// ANSI colours, used only when asked for: a journal or a file should not
// fill with escape codes.
const (
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
	green  = "\x1b[32m"
	grey   = "\x1b[90m"
	reset  = "\x1b[0m"
)

// Notifier writes alerts to an io.Writer.
type Notifier struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
	// loc is the zone timestamps are shown in: UTC, as in status and the
	// other channels, whatever the machine's zone.
	loc *time.Location
	// now stamps alerts that carry no time of their own.
	now func() time.Time
}

var _ notifiers.Notifier = (*Notifier)(nil)

// New returns a console notifier writing to w, with ANSI colours when color
// is true. Times are shown in UTC, and say so.
func New(w io.Writer, color bool) *Notifier {
	return &Notifier{w: w, color: color, loc: time.UTC, now: time.Now}
}

// timeLayout stamps every line, the zone included: a bare clock time read
// at 3 a.m. must not leave the reader guessing which zone it is in.
const timeLayout = "2006-01-02 15:04:05 MST"

// Notify writes one line per alert (a block of lines per digest), in order,
// with a single Write so that concurrent callers never interleave. A write error is retryable: a full
// disk or a closed pipe may recover.
func (n *Notifier) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("console: %w", err)
	}
	var b strings.Builder
	for _, a := range alerts {
		if a.Kind == notifiers.KindDigest {
			n.digest(&b, a)
			continue
		}
		n.line(&b, a)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := io.WriteString(n.w, b.String()); err != nil {
		return true, fmt.Errorf("console: write: %w", err)
	}
	return false, nil
}

// line renders one alert, most useful first:
//
//	TIME SEVERITY KIND RULE  ACCOUNT [SYMBOL SIDE]  METRIC VALUE OP THRESHOLD  [CONTEXT]  "SUMMARY"  runbook: RUNBOOK
//
// Figures are in their metric's unit (Alert.Figure); CONTEXT is
// the trader's figures (mark, entry, liquidation price, equity, …). A closing notice (KindClosed) has KIND "closed", or "LIQUIDATED" in
// capitals, and states the metric's last value: the condition never cleared.
func (n *Notifier) line(b *strings.Builder, a notifiers.Alert) {
	at := a.At
	if at.IsZero() {
		at = n.now()
	}
	b.WriteString(at.In(n.loc).Format(timeLayout))
	b.WriteByte(' ')

	sev := fmt.Sprintf("%-8s", strings.ToUpper(a.Severity.String()))
	if n.color {
		sev = colorOf(a) + sev + reset
	}
	b.WriteString(sev)
	kind := string(a.Kind)
	if a.Liquidated() {
		kind = "LIQUIDATED"
	}
	fmt.Fprintf(b, " %-9s %s", notifiers.OneLine(kind), notifiers.OneLine(a.Rule))

	b.WriteString("  ")
	b.WriteString(notifiers.OneLine(a.Account))
	for _, s := range []string{a.Symbol, a.Side} {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(notifiers.OneLine(s))
		}
	}

	if cmp := comparison(a); cmp != "" {
		b.WriteString("  ")
		b.WriteString(cmp)
	}
	if c := a.ContextText(", "); c != "" {
		b.WriteString("  [")
		b.WriteString(c)
		b.WriteString("]")
	}
	if a.Summary != "" {
		// Quoting keeps a multi-line summary on one line.
		b.WriteString("  ")
		b.WriteString(strconv.Quote(a.Summary))
	}
	if a.Runbook != "" {
		b.WriteString("  runbook: ")
		b.WriteString(notifiers.OneLine(a.Runbook))
	}
	b.WriteByte('\n')
}

// digest renders a digest as a header line and its text indented:
//
//	TIME DIGEST   NAME
//	  first line of the digest
//	  …
//
// Every line is indented, empty ones too, so that a reader (or a script)
// can tell where the block ends: the next line that does not start with
// two spaces. Control characters are blanked per line, as in line, so the
// digest's text cannot forge an alert line.
func (n *Notifier) digest(b *strings.Builder, a notifiers.Alert) {
	at := a.At
	if at.IsZero() {
		at = n.now()
	}
	b.WriteString(at.In(n.loc).Format(timeLayout))
	b.WriteByte(' ')
	label := fmt.Sprintf("%-8s", "DIGEST")
	if n.color {
		label = colorOf(a) + label + reset
	}
	b.WriteString(label)
	b.WriteByte(' ')
	b.WriteString(notifiers.OneLine(a.DigestName()))
	b.WriteByte('\n')
	if a.Summary == "" {
		return
	}
	for l := range strings.SplitSeq(a.Summary, "\n") {
		b.WriteString("  ")
		b.WriteString(notifiers.OneLine(strings.TrimSuffix(l, "\r")))
		b.WriteByte('\n')
	}
}

// colorOf is the severity's colour while firing and green for a recovery.
// A closing notice is no recovery: red for a liquidation, grey otherwise.
func colorOf(a notifiers.Alert) string {
	switch {
	case a.Liquidated():
		return red
	case a.Kind == notifiers.KindClosed:
		return grey
	case a.Status == notifiers.Resolved:
		return green
	}
	switch a.Severity {
	case notifiers.Critical:
		return red
	case notifiers.Warning:
		return yellow
	default:
		return cyan
	}
}

// comparison renders "metric value op threshold". A resolved alert shows
// the negated operator, so the line states what is true now ("17 >= 15"),
// not the condition that no longer holds. A closed one states the last
// value seen ("last 3.1 (below 7)"): nothing cleared, the subject went away.
// Value and threshold are in the metric's unit; an infinite value carries
// notifiers.InfiniteNote.
func comparison(a notifiers.Alert) string {
	if a.Metric == "" {
		return ""
	}
	metric := notifiers.OneLine(a.Metric)
	val := a.Figure(a.Metric, a.Value)
	thr := a.Figure(a.Metric, a.Threshold)
	if a.Kind == notifiers.KindClosed {
		if a.Op == "" {
			return metric + " last " + val
		}
		return fmt.Sprintf("%s last %s (%s %s)", metric, val, notifiers.OneLine(a.Op), thr)
	}
	var op string
	resolved := a.Status == notifiers.Resolved
	switch {
	case a.Op == "above" && !resolved:
		op = ">"
	case a.Op == "above":
		op = "<="
	case a.Op == "below" && !resolved:
		op = "<"
	case a.Op == "below":
		op = ">="
	default:
		// Events have no threshold; their metric is the event name.
		return metric
	}
	return fmt.Sprintf("%s %s %s %s", metric, val, op, thr)
}
