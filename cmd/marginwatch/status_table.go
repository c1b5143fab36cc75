package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// tableWidth is what the status table fits: an 80-column terminal, an SSH
// session on a phone.
const tableWidth = 80

// Terminal colours for the table: red for critical and for a position past
// liquidation, amber (the terminal's yellow) for warning.
const (
	colorRed   = "\x1b[31m"
	colorAmber = "\x1b[33m"
	colorReset = "\x1b[0m"
)

// statusTimeLayout is how status shows a time: UTC, like the console
// notifier, email and the webhook, and saying so.
const statusTimeLayout = "2006-01-02 15:04:05 UTC"

// printStatus writes doc for a person: per account a header with the poll
// time and the data's age, what would fire now (most severe first), the
// money figures (a table of pools when there are several), and one line
// per position, nearest to liquidation first. Figures are in their
// metric's unit (notifiers.FormatMetric), as in every alert channel. No
// line is wider than tableWidth, except a word longer than that in an
// error. color adds terminal colours.
func printStatus(w io.Writer, doc statusJSON, now time.Time, color bool) {
	p := &tablePrinter{w: w, color: color, restating: doc.restating}
	if doc.Source == sourceDaemon {
		p.line("", fmt.Sprintf("marginwatch status, %s: live view from the daemon at %s", now.UTC().Format(statusTimeLayout), doc.via))
	} else {
		p.line("", fmt.Sprintf("marginwatch status, %s: each account polled once now", now.UTC().Format(statusTimeLayout)))
		if doc.via != "" {
			for _, l := range wrap(doc.via, "", "  ") {
				p.line("", l)
			}
		}
	}
	for _, a := range doc.Accounts {
		p.line("", "")
		p.account(a, now)
	}
	if doc.Source == sourceDaemon && doc.Silences != nil {
		p.line("", "")
		p.silences(doc.Silences, now, "Silences:")
	}
}

// silences writes a table of ss (the daemon's order, by end): id,
// matchers, when it ends (and starts, if later), author (a mute window is
// marked), comment. heading ("" for none) goes above a non-empty table.
func (p *tablePrinter) silences(ss []silenceJSON, now time.Time, heading string) {
	if len(ss) == 0 {
		p.line("", "No silences.")
		return
	}
	if heading != "" {
		p.line("", heading)
	}
	cols := []column{{"ID", false}, {"MATCHERS", false}, {"ENDS IN", false}, {"AUTHOR", false}, {"COMMENT", false}}
	rows := make([][]string, len(ss))
	for i, s := range ss {
		ends := span(s.EndsAt.Sub(now))
		if s.StartsAt.After(now) {
			ends += " (starts in " + span(s.StartsAt.Sub(now)) + ")"
		}
		author := s.Author
		if s.Window != "" {
			author = "mute window"
		}
		rows[i] = []string{s.ID, clipRunes(strings.Join(s.Matchers, " "), 40), ends, clipRunes(author, 16), clipRunes(notifiers.OneLine(s.Comment), 30)}
	}
	p.table(cols, rows, nil)
}

// span is a time to come, to the minute: "45s", "59m", "1h59m", "3d4h".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		if h, m := int(d.Hours()), int(d.Minutes())%60; h > 0 {
			return fmt.Sprintf("%dh%02dm", h, m)
		}
		return fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		d = d.Round(time.Hour)
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

type tablePrinter struct {
	w         io.Writer
	color     bool
	restating map[string]bool // see statusJSON
}

// line writes s, coloured with c on a terminal.
func (p *tablePrinter) line(c, s string) {
	if p.color && c != "" && s != "" {
		s = c + s + colorReset
	}
	fmt.Fprintln(p.w, s)
}

func (p *tablePrinter) account(a accountJSON, now time.Time) {
	head := a.Name + " (" + a.Exchange + ")"
	if a.Time != nil {
		age := max(now.Sub(*a.Time).Round(time.Second), 0)
		head += fmt.Sprintf(" · polled %s UTC, %s ago", a.Time.UTC().Format("15:04:05"), notifiers.UnitSeconds.Format(age.Seconds()))
	}
	p.line("", head)
	if a.Error != "" {
		for _, l := range wrap("error: "+a.Error, "  ", "    ") {
			p.line(colorRed, l)
		}
		return
	}
	p.firing(a.Firing)
	p.alerts(a.Alerts)
	p.money(a)
	p.positions(a)
}

// firing lists what would fire now, most severe first (FiringNow's order):
// the comparison in the metric's unit, then the rule's summary unless it
// is the engine's default, which says the same.
func (p *tablePrinter) firing(hits []rules.Hit) {
	if len(hits) == 0 {
		p.line("", "  No rule would fire now.")
		return
	}
	p.line("", "  Would fire now:")
	for _, h := range hits {
		target := ""
		if h.Symbol != "" {
			target = " " + strings.TrimSpace(h.Symbol+" "+h.Side)
		}
		op, value := ">", notifiers.FormatMetric(h.Metric, h.Value)
		switch {
		case math.IsNaN(h.Value): // the daemon's JSON: not finite (equity at or below zero)
			op, value = "vs", "∞"
		case h.Value < h.Threshold:
			op = "<"
		}
		l := fmt.Sprintf("  %-8s %s%s: %s %s %s %s", strings.ToUpper(h.Severity.String()), h.Rule, target,
			h.Metric, value, op, notifiers.FormatMetric(h.Metric, h.Threshold))
		p.line(severityColor(h.Severity), clipRunes(notifiers.OneLine(l), tableWidth))
		if s := strings.Join(strings.Fields(h.Summary), " "); s != "" && !p.restating[h.Rule] {
			p.line("", clipRunes("           "+s, tableWidth))
		}
	}
}

// alerts lists the daemon's alerts with their lifecycle state, firing
// before pending; a one-off poll has none.
func (p *tablePrinter) alerts(as []alertJSON) {
	if len(as) == 0 {
		return
	}
	p.line("", "  Alerts in the daemon:")
	ordered := slices.Clone(as)
	slices.SortStableFunc(ordered, func(x, y alertJSON) int {
		return cmp.Or(cmp.Compare(pendingRank(x.State), pendingRank(y.State)), cmp.Compare(y.Severity, x.Severity))
	})
	for _, a := range ordered {
		target := ""
		if a.Symbol != "" {
			target = " " + strings.TrimSpace(a.Symbol+" "+a.Side)
		}
		since := a.Since
		if a.StartsAt != nil {
			since = *a.StartsAt
		}
		l := fmt.Sprintf("  %-8s %s %s%s since %s UTC", strings.ToUpper(a.State), a.Severity, a.Rule, target, since.UTC().Format("15:04:05"))
		p.line(severityColor(a.Severity), clipRunes(notifiers.OneLine(l), tableWidth))
		// The ID in full on a line of its own: `ack` needs all of it.
		var more []string
		if a.ID != "" {
			more = append(more, "id "+a.ID)
		}
		switch {
		case a.SilencedBy != "":
			more = append(more, "silenced by "+a.SilencedBy)
		case a.State == "acked":
			more = append(more, strings.TrimSuffix("acked by "+a.AckedBy+": "+a.AckComment, ": "))
		}
		if len(more) > 0 {
			p.line("", clipRunes(notifiers.OneLine("           "+strings.Join(more, " · ")), tableWidth))
		}
	}
}

// pendingRank puts pending alerts after the others.
func pendingRank(state string) int {
	if state == "pending" {
		return 1
	}
	return 0
}

// money writes the account's figures: three lines for one margin pool, or
// the account's margin ratio and a table of pools when there are several
// (their money is in different assets and does not add up).
func (p *tablePrinter) money(a accountJSON) {
	m := a.Metrics
	count := "positions " + fig(m, "position_count")
	if len(a.Assets) == 0 {
		money := func(name string) string { return figIn(m, name, a.Pool) }
		p.line("", "  equity "+money("equity")+" · available "+money("available_balance")+" · unrealized PnL "+money("unrealized_pnl"))
		p.line("", "  margin ratio "+fig(m, "margin_ratio")+" · leverage "+fig(m, "effective_leverage")+" · net exposure "+fig(m, "net_exposure_ratio")+" · drawdown "+fig(m, "drawdown_pct"))
		p.line("", "  funding paid 24h "+money("funding_paid_24h")+" · next funding "+money("funding_next_cost")+" · "+count)
		return
	}
	p.line("", "  margin ratio "+fig(m, "margin_ratio")+" (highest pool) · "+count)
	cols := []column{{"POOL", false}, {"EQUITY", true}, {"AVAILABLE", true}, {"UNREAL. PNL", true}, {"MARGIN", true}, {"LEV", true}, {"DRAWDOWN", true}}
	var rows [][]string
	for _, as := range a.Assets {
		rows = append(rows, []string{as.Asset, figIn(as.Metrics, "equity", as.Asset), figIn(as.Metrics, "available_balance", as.Asset), figIn(as.Metrics, "unrealized_pnl", as.Asset),
			fig(as.Metrics, "margin_ratio"), fig(as.Metrics, "effective_leverage"), fig(as.Metrics, "drawdown_pct")})
	}
	p.table(cols, rows, nil)
}

// positions writes one line per position, nearest to liquidation first
// (past it first of all; without a liquidation price last), coloured by the
// most severe rule that would fire on it.
func (p *tablePrinter) positions(a accountJSON) {
	if len(a.Positions) == 0 {
		p.line("", "  No open positions.")
		return
	}
	ps := slices.Clone(a.Positions)
	slices.SortStableFunc(ps, func(x, y positionJSON) int {
		dx, dy := x.Metrics["liq_distance_pct"], y.Metrics["liq_distance_pct"]
		switch {
		case dx != nil && dy != nil:
			return cmp.Compare(*dx, *dy)
		case dx != nil:
			return -1
		case dy != nil:
			return 1
		}
		return 0
	})
	worst := map[string]notifiers.Severity{}
	for _, h := range a.Firing {
		if k := h.Symbol + " " + h.Side; h.Symbol != "" && h.Severity > worst[k] {
			worst[k] = h.Severity
		}
	}
	cols := []column{{"SYMBOL", false}, {"SIDE", false}, {"SIZE", true}, {"LIQ DIST", true}, {"LEV", true}, {"STOP", false}, {"FUNDING", true}, {"APR", true}}
	rows := make([][]string, len(ps))
	colors := make([]string, len(ps))
	for i, pos := range ps {
		m := pos.Metrics
		rows[i] = []string{pos.Symbol, pos.Side, size(pos.Size), fig(m, "liq_distance_pct"), fig(m, "leverage"), stop(m), fig(m, "funding_rate"), fig(m, "funding_apr_pct")}
		colors[i] = severityColor(worst[pos.Symbol+" "+pos.Side])
		if d := m["liq_distance_pct"]; d != nil && *d < 0 {
			colors[i] = colorRed
		}
	}
	p.table(cols, rows, colors)
	p.line("", "  LIQ DIST < 0: past liquidation. STOP: size covered, distance from mark.")
	p.line("", "  FUNDING: rate per interval; APR: a year of it, + = this position pays.")
}

// column is a table column: its heading and whether it holds figures
// (aligned right).
type column struct {
	head  string
	right bool
}

// table writes rows under cols, each column as wide as its widest cell,
// two spaces apart, or one when that would pass tableWidth; colors (nil or
// one per row) colour whole rows.
func (p *tablePrinter) table(cols []column, rows [][]string, colors []string) {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c.head)
	}
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	const indent = 2
	sep, total := "  ", indent
	for _, w := range widths {
		total += w + 2
	}
	if total-2 > tableWidth {
		sep = " "
	}
	format := func(cells []string) string {
		var b strings.Builder
		b.WriteString(strings.Repeat(" ", indent))
		for i, cell := range cells {
			if i > 0 {
				b.WriteString(sep)
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if cols[i].right {
				b.WriteString(pad + cell)
			} else if i < len(cells)-1 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(cell)
			}
		}
		return strings.TrimRight(b.String(), " ") // no trailing blanks
	}
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	p.line("", format(heads))
	for i, r := range rows {
		c := ""
		if colors != nil {
			c = colors[i]
		}
		p.line(c, format(r))
	}
}

// fig is metric name of m in its unit, "-" where it has no value (no
// liquidation price, no stop, no history in a one-off poll).
func fig(m metricsJSON, name string) string { return figIn(m, name, "") }

// figIn is fig with money in asset (a coin keeps six significant digits).
func figIn(m metricsJSON, name, asset string) string {
	v := m[name]
	if v == nil {
		return "-"
	}
	if math.IsInf(*v, 0) {
		return notifiers.FormatNumber(*v) // "∞": the note would not fit a cell
	}
	return notifiers.FormatMetricIn(name, *v, asset)
}

// stop describes a position's effective stops: "none", or the share of the
// size they close and the nearest one's distance from the mark ("100% at
// 3.5%").
func stop(m metricsJSON) string {
	has := m["has_stop_loss"]
	switch {
	case has == nil:
		return "-"
	case *has != 1:
		return "none"
	}
	s := fig(m, "stop_coverage_pct")
	if d := m["stop_distance_pct"]; d != nil {
		s += " at " + notifiers.FormatMetric("stop_distance_pct", *d)
	}
	return s
}

// size is a position's size in contracts or coins, as the exchange counts
// it: the digits it has, never an exponent.
func size(v float64) string {
	if v == 0 {
		return "-"
	}
	return notifiers.UnitPrice.Format(math.Abs(v))
}

func severityColor(s notifiers.Severity) string {
	switch s {
	case notifiers.Critical:
		return colorRed
	case notifiers.Warning:
		return colorAmber
	}
	return ""
}

// clipRunes shortens s to at most n runes, the last one "…".
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most tableWidth runes at spaces, the
// first indented by first and the rest by rest. An error names the place
// and the fix, so it is wrapped, never cut.
func wrap(s, first, rest string) []string {
	var lines []string
	cur := first
	empty := true
	for _, word := range strings.Fields(notifiers.OneLine(s)) {
		if !empty && utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(word) > tableWidth {
			lines = append(lines, cur)
			cur, empty = rest, true
		}
		if !empty {
			cur += " "
		}
		cur += word
		empty = false
	}
	return append(lines, cur)
}
