package slack

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/marginwatch/marginwatch/notifiers"
)

// Attachment colours.
const (
	colorCritical = "#d32f2f"
	colorWarning  = "#f9a825"
	colorInfo     = "#1976d2"
	colorResolved = "#2e7d32"
	colorMore     = "#9e9e9e"
	// colorClosed is neutral: a position that went away did not recover.
	// A liquidation gets colorCritical.
	colorClosed = "#616161"
)

// Slack's limits: blocks per message, characters per section text and per
// field. maxBlocks is counted over every attachment of the message, the
// conservative reading of Slack's limit.
const (
	maxBlocks      = 50
	maxSectionText = 3000
	maxFieldText   = 2000
)

// message renders alerts as one Slack message: the notification text and
// one attachment per alert, the alerts that do not fit in maxBlocks
// summarised in a last attachment.
func message(alerts []notifiers.Alert) (string, []goslack.Attachment) {
	atts := make([]goslack.Attachment, 0, len(alerts))
	used := 0
	for i, a := range alerts {
		blocks := alertBlocks(a)
		budget := maxBlocks - used
		if i < len(alerts)-1 {
			budget-- // keep room for the "… and N more" section
		}
		if len(blocks) > budget {
			atts = append(atts, moreAttachment(alerts[i:]))
			break
		}
		used += len(blocks)
		atts = append(atts, goslack.Attachment{
			Color:    color(a),
			Fallback: escape(oneLine(a)),
			Blocks:   goslack.Blocks{BlockSet: blocks},
		})
	}
	text := ""
	if len(alerts) > 0 {
		text = icon(alerts[0]) + " " + escape(oneLine(alerts[0]))
		if len(alerts) > 1 {
			text += fmt.Sprintf(" (+%d more)", len(alerts)-1)
		}
	}
	return text, atts
}

// alertBlocks renders one alert: what and where, summary; the trading
// context; the runbook; when it started.
func alertBlocks(a notifiers.Alert) []goslack.Block {
	var b strings.Builder
	b.WriteString(title(a))
	b.WriteString("\n")
	b.WriteString(where(a))
	if c := comparison(a); c != "" {
		b.WriteString("\n")
		b.WriteString(c)
	}
	const testNote = "\n_This is a test notification from marginwatch: no action needed._"
	if a.Summary != "" {
		b.WriteString("\n")
		budget := maxSectionText - b.Len()
		if a.Kind == notifiers.KindTest {
			budget -= len(testNote)
		}
		b.WriteString(clip(a.Summary, budget))
	}
	if a.Kind == notifiers.KindTest {
		b.WriteString(testNote)
	}
	blocks := []goslack.Block{section(b.String())}

	var fields []*goslack.TextBlockObject
	for _, f := range notifiers.ContextFields {
		v, ok := a.Context[f.Key]
		if !ok || math.IsNaN(v) {
			continue
		}
		fields = append(fields, mrkdwn(truncate(fmt.Sprintf("*%s*\n%s", f.Title, a.Figure(f.Key, v)), maxFieldText)))
	}
	if len(fields) > 0 {
		blocks = append(blocks, goslack.NewSectionBlock(nil, fields, nil))
	}

	if a.Runbook != "" {
		const head = ":book: *Runbook:* "
		blocks = append(blocks, section(head+clip(a.Runbook, maxSectionText-len(head))))
	}

	footer := "Started " + slackDate(a.StartsAt)
	if (a.Status == notifiers.Resolved || a.Kind == notifiers.KindClosed) && !a.At.IsZero() {
		ended := "resolved"
		if r := ending(a); r != "" {
			ended = r
		}
		footer += " · " + ended + " " + slackDate(a.At)
	}
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		footer += " · " + escape(k+"="+a.Labels[k])
	}
	if a.ID != "" {
		footer += " · incident " + escape(a.ID)
	}
	blocks = append(blocks, goslack.NewContextBlock("", mrkdwn(truncate(footer, maxSectionText))))
	return blocks
}

// moreAttachment lists the alerts that did not fit, one short line each.
func moreAttachment(rest []notifiers.Alert) goslack.Attachment {
	var b strings.Builder
	fmt.Fprintf(&b, "*… and %d more*", len(rest))
	for _, a := range rest {
		b.WriteString("\n• ")
		b.WriteString(escape(oneLine(a)))
	}
	return goslack.Attachment{
		Color:    colorMore,
		Fallback: fmt.Sprintf("… and %d more", len(rest)),
		Blocks:   goslack.Blocks{BlockSet: []goslack.Block{section(b.String())}},
	}
}

// title is the first line: severity (or RESOLVED, LIQUIDATED, CLOSED, or
// TEST), kind, rule.
func title(a notifiers.Alert) string {
	sev := strings.ToUpper(a.Severity.String())
	var s string
	switch {
	case a.Kind == notifiers.KindTest:
		s = fmt.Sprintf("%s *TEST* · %s", icon(a), sev)
	case ending(a) != "":
		s = fmt.Sprintf("%s *%s* · was %s", icon(a), strings.ToUpper(ending(a)), a.Severity)
	case a.Status == notifiers.Resolved:
		s = fmt.Sprintf("%s *RESOLVED* · was %s", icon(a), a.Severity)
	default:
		s = fmt.Sprintf("%s *%s* · %s", icon(a), sev, kindWords(a.Kind))
	}
	return s + " · *" + escape(a.Rule) + "*"
}

// where names the account and, for position alerts, symbol and side.
func where(a notifiers.Alert) string {
	s := "Account *" + escape(a.Account) + "*"
	switch {
	case a.Symbol != "" && a.Side != "":
		s += " · *" + escape(a.Symbol) + "* " + escape(a.Side)
	case a.Symbol != "":
		s += " · *" + escape(a.Symbol) + "*"
	}
	return s
}

// comparison states the value against the threshold, both in the metric's
// unit (Alert.Figure). A resolved alert says
// what is true now. A closing notice says what was last seen and why the
// alert ends: nothing recovered, the subject went away.
func comparison(a notifiers.Alert) string {
	if a.Metric == "" {
		return ""
	}
	metric := "`" + escape(a.Metric) + "`"
	val, thr := a.Figure(a.Metric, a.Value), a.Figure(a.Metric, a.Threshold)
	if e := ending(a); e != "" {
		why := "the position (or its rule or account) went away, so it is no longer watched"
		if e == notifiers.ReasonLiquidated {
			why = "*the exchange liquidated the position*"
		}
		if a.Op != "above" && a.Op != "below" {
			return fmt.Sprintf("%s was last *%s*; %s", metric, val, why)
		}
		return fmt.Sprintf("%s was last *%s* (%s %s); %s", metric, val, a.Op, thr, why)
	}
	if a.Op != "above" && a.Op != "below" {
		return fmt.Sprintf("%s is *%s*", metric, val)
	}
	if a.Status != notifiers.Resolved {
		return fmt.Sprintf("%s is *%s*, %s the %s threshold of %s", metric, val, a.Op, a.Severity, thr)
	}
	return fmt.Sprintf("%s is now *%s*, no longer %s %s", metric, val, a.Op, thr)
}

// ending is how an alert ended without recovering: "liquidated" or
// "closed" for a closing notice (KindClosed), and "closed" too for a
// resolution whose value still breaches its threshold (what the engine
// sent for a closed position before KindClosed existed; such notices may
// still sit in an outbox). It is "" for every other alert.
func ending(a notifiers.Alert) string {
	if r := a.ClosedReason(); r != "" {
		return r
	}
	if a.Status == notifiers.Resolved && a.Kind != notifiers.KindTest && breached(a) {
		return notifiers.ReasonClosed
	}
	return ""
}

// breached reports whether the value is past the threshold.
func breached(a notifiers.Alert) bool {
	return (a.Op == "above" && a.Value > a.Threshold) || (a.Op == "below" && a.Value < a.Threshold)
}

// oneLine is the alert as one plain line, for the push notification and for
// the alerts summarised in "… and N more".
func oneLine(a notifiers.Alert) string {
	var b strings.Builder
	switch {
	case a.Kind == notifiers.KindTest:
		fmt.Fprintf(&b, "[TEST] %s", strings.ToUpper(a.Severity.String()))
	case ending(a) != "":
		fmt.Fprintf(&b, "%s (was %s)", strings.ToUpper(ending(a)), a.Severity)
	case a.Status == notifiers.Resolved:
		fmt.Fprintf(&b, "RESOLVED (was %s)", a.Severity)
	default:
		fmt.Fprintf(&b, "%s %s", strings.ToUpper(a.Severity.String()), kindWords(a.Kind))
	}
	fmt.Fprintf(&b, ": %s · %s", a.Rule, a.Account)
	for _, s := range []string{a.Symbol, a.Side} {
		if s != "" {
			b.WriteString(" ")
			b.WriteString(s)
		}
	}
	switch op := opSymbol(a); {
	case op == "":
	case ending(a) != "":
		fmt.Fprintf(&b, " · %s last %s", a.Metric, a.Figure(a.Metric, a.Value))
	default:
		fmt.Fprintf(&b, " · %s %s %s %s", a.Metric, a.Figure(a.Metric, a.Value), op, a.Figure(a.Metric, a.Threshold))
	}
	return notifiers.OneLine(b.String())
}

// opSymbol is the comparison that holds: the rule's operator while firing,
// its negation once resolved.
func opSymbol(a notifiers.Alert) string {
	if a.Metric == "" {
		return ""
	}
	resolved := a.Status == notifiers.Resolved
	switch {
	case a.Op == "above" && !resolved:
		return ">"
	case a.Op == "above":
		return "≤"
	case a.Op == "below" && !resolved:
		return "<"
	case a.Op == "below":
		return "≥"
	}
	return ""
}

func kindWords(k notifiers.Kind) string {
	switch k {
	case notifiers.KindFiring:
		return "firing"
	case notifiers.KindRepeat:
		return "still firing"
	case "":
		return "firing"
	default:
		return string(k) // escalated, eased, event
	}
}

// icon is the emoji that leads an alert: it shows in the push notification
// before any word does. A closing notice never gets the resolution's tick.
func icon(a notifiers.Alert) string {
	switch {
	case a.Kind == notifiers.KindTest:
		return ":test_tube:"
	case ending(a) == notifiers.ReasonLiquidated:
		return ":boom:"
	case ending(a) != "":
		return ":black_square_for_stop:"
	case a.Status == notifiers.Resolved:
		return ":white_check_mark:"
	}
	switch a.Severity {
	case notifiers.Critical:
		return ":rotating_light:"
	case notifiers.Warning:
		return ":warning:"
	default:
		return ":information_source:"
	}
}

func color(a notifiers.Alert) string {
	switch e := ending(a); {
	case e == notifiers.ReasonLiquidated:
		return colorCritical
	case e != "":
		return colorClosed
	case a.Status == notifiers.Resolved:
		return colorResolved
	}
	switch a.Severity {
	case notifiers.Critical:
		return colorCritical
	case notifiers.Warning:
		return colorWarning
	default:
		return colorInfo
	}
}

// slackDate renders t in the reader's own time zone (Slack's date
// formatting), with a UTC fallback for clients that cannot.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func section(text string) *goslack.SectionBlock {
	return goslack.NewSectionBlock(mrkdwn(truncate(text, maxSectionText)), nil, nil)
}

func mrkdwn(text string) *goslack.TextBlockObject {
	return goslack.NewTextBlockObject(goslack.MarkdownType, text, false, false)
}

// escape makes text safe inside Slack mrkdwn: &, < and > are control
// characters there (<!channel> would ping everyone, <url|text> makes links).
func escape(s string) string {
	return escaper.Replace(s)
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escapeRune is escape for one character.
func escapeRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

// cutMark marks text that was cut.
const cutMark = "…"

// clip returns plain text s escaped (see escape) in at most limit bytes:
// when the escaped text is longer, s is cut first, between characters, and
// what is left is escaped, so the cut never halves an "&amp;".
func clip(s string, limit int) string {
	return clipMapped(s, limit, escapeRune)
}

// clipMapped writes s with every rune replaced by f(r) and, when that is
// longer than limit bytes, keeps whole replacements only, ending with
// cutMark.
func clipMapped(s string, limit int, f func(rune) string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		b.WriteString(f(r))
	}
	if b.Len() <= limit {
		return b.String()
	}
	b.Reset()
	budget := limit - len(cutMark)
	for _, r := range s {
		m := f(r)
		if b.Len()+len(m) > budget {
			break
		}
		b.WriteString(m)
	}
	b.WriteString(cutMark)
	return b.String()
}

// truncate cuts mrkdwn s to at most limit bytes on a rune boundary, marking
// the cut. Slack rejects the whole message when one text is too long, and a
// message that is refused is worse than a shortened runbook. Its callers
// clip user text before they compose it (see clip); this is the last line
// of defence, and it too never cuts inside an entity.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len(cutMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	// An entity is at most "&amp;", five bytes: an '&' among the last four
	// bytes kept, with no ';' after it, starts one that the cut would halve.
	if i := strings.LastIndexByte(s[max(0, cut-4):cut], '&'); i >= 0 {
		if i += max(0, cut-4); !strings.Contains(s[i:cut], ";") {
			cut = i
		}
	}
	return s[:cut] + cutMark
}

// Code fences around a digest section; the newlines keep the fences off the
// digest's first and last lines.
const (
	fenceOpen  = "```\n"
	fenceClose = "\n```"
)

// digestMessage renders a digest as a message of its own: the notification
// text "marginwatch digest NAME" and the digest as preformatted text, in as
// many sections as its length needs (see digestBlocks). The blocks are the
// message's own, not an attachment's: a digest is not an incident and gets
// no severity colour bar.
func digestMessage(a notifiers.Alert) (string, []goslack.Block) {
	return escape(notifiers.OneLine("marginwatch digest " + a.DigestName())), digestBlocks(a.Summary)
}

// digestBlocks splits text at line boundaries into code sections of at most
// maxSectionText bytes, fences included (Slack counts characters; bytes are
// never fewer). A blank line where one section ends and the next begins is
// dropped: the section break shows the gap. Should the sections pass
// maxBlocks, the last block says how many lines were left out. A single
// line too long for a section is cut.
func digestBlocks(text string) []goslack.Block {
	budget := maxSectionText - len(fenceOpen) - len(fenceClose)
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = codeLine(l, budget)
	}
	type chunk struct {
		text string
		end  int // index in lines after the chunk's last line
	}
	var chunks []chunk
	var cur []string
	size := 0
	flush := func(end int) {
		for len(cur) > 0 && cur[len(cur)-1] == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			chunks = append(chunks, chunk{strings.Join(cur, "\n"), end})
		}
		cur, size = nil, 0
	}
	for i, l := range lines {
		add := len(l)
		if len(cur) > 0 {
			add++ // the newline
		}
		if len(cur) > 0 && size+add > budget {
			flush(i)
			add = len(l)
		}
		if len(cur) == 0 && l == "" && len(chunks) > 0 {
			continue
		}
		cur = append(cur, l)
		size += add
	}
	flush(len(lines))

	blocks := make([]goslack.Block, 0, min(len(chunks), maxBlocks))
	for i, c := range chunks {
		if i == maxBlocks-1 && len(chunks) > maxBlocks {
			left := 0
			for _, l := range lines[chunks[i-1].end:] {
				if strings.TrimSpace(l) != "" {
					left++
				}
			}
			blocks = append(blocks, section(fmt.Sprintf("_… %d more lines of the digest left out: a Slack message holds at most %d blocks._", left, maxBlocks)))
			break
		}
		blocks = append(blocks, section(fenceOpen+c.text+fenceClose))
	}
	return blocks
}

// codeLine makes one line of a digest safe inside a code block, in at most
// limit bytes (cut as clip does): control characters blanked, mrkdwn's &,
// < and > escaped (Slack parses them even there), and a run of backticks
// broken with zero-width spaces so that it cannot close the block early.
func codeLine(s string, limit int) string {
	s = notifiers.OneLine(s)
	f := escapeRune
	if strings.Contains(s, "```") {
		f = func(r rune) string {
			if r == '`' {
				return "`\u200b"
			}
			return escapeRune(r)
		}
	}
	return clipMapped(s, limit, f)
}
