package telegram

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/marginwatch/marginwatch/notifiers"
)

// maxMessage is Telegram's limit on a message's text after entity parsing.
// We hold the HTML source to it, counted in UTF-16 code units as Telegram
// counts: markup only ever adds characters, so a source that fits is a
// parsed text that fits.
const maxMessage = 4096

// Caps on the escaped HTML of each dynamic field. Their sum, with the fixed
// markup of one alert and the part footer, stays under maxMessage, so one
// alert always fits one message; fitLines is only the last line of defence.
const (
	capName    = 200 // rule, account, metric, operator
	capSymbol  = 60  // symbol, side
	capSummary = 1500
	capRunbook = 800
	capLabels  = 500
)

// footerReserve is room kept free in every part for the "(k/n)" footer of
// a split message.
const footerReserve = 32

// ellipsis marks text that was cut.
const ellipsis = "…"

// part is one Telegram message: the HTML text and the alerts it carries
// (a digest split over several messages is carried by each of them).
type part struct {
	text   string
	alerts []notifiers.Alert
}

// split renders alerts into as few messages as fit, in order: one per
// group (see groups), or one per piece for a digest too long for one
// message. A message of several parts ends each with "(k/n)".
func split(alerts []notifiers.Alert) []part {
	var parts []part
	for _, g := range groups(alerts) {
		for _, text := range g.texts {
			parts = append(parts, part{text: text, alerts: alerts[g.lo:g.hi:g.hi]})
		}
	}
	if len(parts) > 1 {
		for i := range parts {
			parts[i].text += fmt.Sprintf("\n\n<i>(%d/%d)</i>", i+1, len(parts))
		}
	}
	return parts
}

// group is a run of alerts, alerts[lo:hi], and the messages it renders as:
// one, except for a digest too long for one message, which is a group of
// its own with a message per piece.
type group struct {
	lo, hi int
	texts  []string
}

// groups packs alerts, in order, into runs that each fit one message: it
// cuts only between alerts, so no entity (and no alert) is ever split, and
// starts a new run when the next alert would pass the limit. The packing
// is greedy, so a run rendered on its own packs into one message again:
// Split's parts are groups, and Notify on a part sends one message.
func groups(alerts []notifiers.Alert) []group {
	const sep = "\n\n"
	limit := maxMessage - footerReserve
	var out []group
	var cur strings.Builder
	size, lo := 0, 0
	flush := func(hi int) {
		if cur.Len() > 0 {
			out = append(out, group{lo: lo, hi: hi, texts: []string{cur.String()}})
		}
		cur.Reset()
		size, lo = 0, hi
	}
	for i, a := range alerts {
		ps := pieces(a, limit)
		if len(ps) > 1 {
			// The pieces of one digest are messages of their own: joined,
			// their <pre> blocks would read as one with a gap.
			flush(i)
			out = append(out, group{lo: i, hi: i + 1, texts: ps})
			lo = i + 1
			continue
		}
		w := utf16Len(ps[0])
		if cur.Len() > 0 && size+utf16Len(sep)+w > limit {
			flush(i)
		}
		if cur.Len() > 0 {
			cur.WriteString(sep)
			size += utf16Len(sep)
		}
		cur.WriteString(ps[0])
		size += w
	}
	flush(len(alerts))
	return out
}

// pieces renders one alert as the HTML pieces split packs, each at most
// limit long: an alert is one piece, a digest as many as its length needs.
func pieces(a notifiers.Alert, limit int) []string {
	if a.Kind == notifiers.KindDigest {
		return digestPieces(a, limit)
	}
	return []string{fitLines(alertLines(a), limit)}
}

// digestPieces renders a digest as preformatted text under a head line:
//
//	📋 <b>DIGEST</b> · morning
//	<pre>marginwatch digest morning — Sat 2026-11-28 07:00 UTC
//	…</pre>
//
// Its lines are cut into pieces of at most limit UTF-16 units, head line
// and tags included, between lines only: each piece opens and closes its
// own <pre>, and each repeats the head line so that every message says
// what it is. A blank line where one piece ends and the next begins is
// dropped; a single line too long for a piece is clipped.
func digestPieces(a notifiers.Alert, limit int) []string {
	title := "📋 <b>DIGEST</b> · " + clip(a.DigestName(), capName)
	head := title + "\n<pre>"
	const tail = "</pre>"
	budget := limit - utf16Len(head) - utf16Len(tail)

	var out []string
	var cur []string
	size := 0
	flush := func() {
		for len(cur) > 0 && cur[len(cur)-1] == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			out = append(out, head+strings.Join(cur, "\n")+tail)
		}
		cur, size = nil, 0
	}
	for l := range strings.SplitSeq(strings.ReplaceAll(a.Summary, "\r\n", "\n"), "\n") {
		l = clip(l, budget)
		w := utf16Len(l)
		if len(cur) > 0 && size+1+w > budget {
			flush()
		}
		switch {
		case len(cur) == 0 && l == "" && len(out) > 0:
			continue // a blank line on a break
		case len(cur) > 0:
			size++ // the newline
		}
		cur = append(cur, l)
		size += w
	}
	flush()
	if len(out) == 0 {
		// An empty digest still says that it came.
		out = append(out, title)
	}
	return out
}

// render returns the HTML of one alert, for tests and single-alert callers.
func render(a notifiers.Alert) string {
	return fitLines(alertLines(a), maxMessage-footerReserve)
}

// alertLines renders one alert as lines of Telegram HTML, most important
// first. Every line is self-contained (each tag it opens it closes), so
// fitLines may drop trailing lines without breaking the markup.
//
//	🔴 <b>CRITICAL</b> · escalated
//	<b>rule</b> · account · SYMBOL side
//	metric <code>value</code> below <code>threshold</code>
//	summary
//	mark <code>…</code> · liq <code>…</code> · …
//	Runbook: …
//	Labels: k=v, …
//	Started 2006-01-02 15:04 UTC
func alertLines(a notifiers.Alert) []string {
	var lines []string
	lines = append(lines, headLine(a))

	where := "<b>" + clip(a.Rule, capName) + "</b>"
	if a.Account != "" {
		where += " · " + clip(a.Account, capName)
	}
	if a.Symbol != "" || a.Side != "" {
		where += " · " + strings.TrimSpace(clip(a.Symbol, capSymbol)+" "+clip(a.Side, capSymbol))
	}
	lines = append(lines, where)

	if c := comparison(a); c != "" {
		lines = append(lines, c)
	}
	if a.Summary != "" {
		lines = append(lines, clip(a.Summary, capSummary))
	}
	if c := contextLine(a); c != "" {
		lines = append(lines, c)
	}
	if a.Runbook != "" {
		lines = append(lines, "Runbook: "+clip(a.Runbook, capRunbook))
	}
	if l := labelsLine(a.Labels); l != "" {
		lines = append(lines, l)
	}
	if !a.StartsAt.IsZero() {
		lines = append(lines, "Started "+a.StartsAt.UTC().Format("2006-01-02 15:04")+" UTC")
	}
	return lines
}

// headLine puts what decides whether to get up first: a test is marked as
// such before anything else, a liquidation or a closed position says so
// (never with the resolution's tick: nothing recovered), a resolution says
// so, a firing alert leads with its severity.
func headLine(a notifiers.Alert) string {
	sev := strings.ToUpper(a.Severity.String())
	switch {
	case a.Kind == notifiers.KindTest:
		return "🧪 <b>TEST — not a real alert</b> · " + sev
	case a.Liquidated():
		return "💥 <b>LIQUIDATED</b> · was " + a.Severity.String()
	case a.Kind == notifiers.KindClosed:
		return "⏹ <b>CLOSED</b> · was " + a.Severity.String()
	case a.Status == notifiers.Resolved:
		return "✅ <b>RESOLVED</b> · was " + a.Severity.String()
	}
	h := emoji(a.Severity) + " <b>" + sev + "</b>"
	if a.Kind != "" {
		h += " · " + clip(string(a.Kind), capSymbol)
	}
	return h
}

func emoji(s notifiers.Severity) string {
	switch s {
	case notifiers.Critical:
		return "🔴"
	case notifiers.Warning:
		return "🟠"
	case notifiers.Info:
		return "🔵"
	default:
		return "⚪"
	}
}

// comparison states the value against the threshold, both in the metric's
// unit (Alert.Figure). A resolved alert says
// what is true now ("no longer below 7"), not the condition that cleared; a
// closing notice says what was last seen and why the alert ends.
func comparison(a notifiers.Alert) string {
	if a.Metric == "" {
		return ""
	}
	metric := clip(a.Metric, capName)
	val, thr := a.Figure(a.Metric, a.Value), a.Figure(a.Metric, a.Threshold)
	if a.Kind == notifiers.KindClosed {
		why := "the position (or its rule or account) went away: no longer watched"
		if a.Liquidated() {
			why = "<b>the exchange liquidated the position</b>"
		}
		if a.Op == "" {
			return fmt.Sprintf("%s last <code>%s</code> — %s", metric, val, why)
		}
		return fmt.Sprintf("%s last <code>%s</code> (%s <code>%s</code>) — %s", metric, val, clip(a.Op, capName), thr, why)
	}
	if a.Op == "" {
		// Events have no threshold; their metric is the event name.
		return "Event: " + metric
	}
	op := clip(a.Op, capName)
	if a.Status == notifiers.Resolved {
		op = "no longer " + op
	}
	return fmt.Sprintf("%s <code>%s</code> %s <code>%s</code>", metric, val, op, thr)
}

// contextLine shows notifiers.ContextFields only. Other keys are left out:
// the context map is open-ended and the message has a hard size limit.
func contextLine(a notifiers.Alert) string {
	ctx := a.Context
	var items []string
	for _, f := range notifiers.ContextFields {
		if v, ok := ctx[f.Key]; ok {
			items = append(items, fmt.Sprintf("%s <code>%s</code>", f.Label, a.Figure(f.Key, v)))
		}
	}
	return strings.Join(items, " · ")
}

func labelsLine(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	return "Labels: " + clip(notifiers.FormatLabels(labels), capLabels)
}

// fitLines joins lines with newlines. If the result would exceed limit it
// drops whole trailing lines and ends with an ellipsis line instead: lines
// are self-contained, so the markup stays balanced. With the field caps this
// never happens to a real alert; it is the guarantee, not the plan.
func fitLines(lines []string, limit int) string {
	total := 0
	for i, l := range lines {
		total += utf16Len(l)
		if i > 0 {
			total++ // the newline
		}
	}
	if total <= limit {
		return strings.Join(lines, "\n")
	}
	var keep []string
	n := 0
	for i, l := range lines {
		add := utf16Len(l)
		if i > 0 {
			add++
		}
		// Room for "\n…" must remain.
		if n+add+1+utf16Len(ellipsis) > limit {
			break
		}
		keep = append(keep, l)
		n += add
	}
	return strings.Join(append(keep, ellipsis), "\n")
}

// escaper escapes the three characters Telegram's HTML mode requires
// outside tags. Quotes need escaping only inside attributes, and we write
// no attribute with dynamic text.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// clip returns s escaped for Telegram HTML, at most max UTF-16 code units
// long, cut between whole characters (never inside an entity) and ended
// with an ellipsis when cut. Invalid UTF-8, which Telegram rejects, becomes
// U+FFFD.
func clip(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	esc := escaper.Replace(s)
	if utf16Len(esc) <= max {
		return esc
	}
	var b strings.Builder
	n := 0
	budget := max - utf16Len(ellipsis)
	for _, r := range s {
		e := escaper.Replace(string(r))
		w := utf16Len(e)
		if n+w > budget {
			break
		}
		b.WriteString(e)
		n += w
	}
	b.WriteString(ellipsis)
	return b.String()
}

// utf16Len is the length of s as Telegram counts it.
func utf16Len(s string) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
