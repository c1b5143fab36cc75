package email

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
)

// msgDomain is the right-hand side of every Message-ID we generate. It is
// not a host name on purpose: the IDs must be the same whichever machine
// sends the notice, so that an incident's thread survives a move.
const msgDomain = "marginwatch"

// threading is the Message-ID and thread references of one message.
type threading struct {
	// MessageID, InReplyTo and References are header values with angle
	// brackets; InReplyTo and References are empty outside a thread.
	MessageID  string
	InReplyTo  string
	References string
}

// thread derives the Message-ID and references of a mail. When the first
// (most severe) alert is the first notice of its incident (KindFiring, or
// the one notice of an event), the mail gets the incident's root ID;
// otherwise an ID of its own. In-Reply-To and References name the root of
// every incident in the mail but the one whose root the mail is, first
// alert first, so that a mail about several incidents shows in each
// incident's thread in clients that thread by references (Gmail also
// needs the subject to match: there the mail joins its first incident's
// thread, see subject). A test alert never joins a thread, nor does a
// digest: it is no incident, and a mail of digests only gets an ID of its
// own ("<digest-…>").
func thread(alerts []notifiers.Alert) threading {
	first, ok := lead(alerts)
	if !ok {
		return threading{MessageID: "<digest-" + noticeHash(alerts) + "@" + msgDomain + ">"}
	}
	th := threading{MessageID: "<notice-" + noticeHash(alerts) + "@" + msgDomain + ">"}
	if first.Threaded() && (first.Kind == notifiers.KindFiring || first.Kind == notifiers.KindEvent) {
		th.MessageID = rootID(first.ID)
	}
	var refs []string
	for _, a := range alerts {
		if !a.Threaded() {
			continue
		}
		if root := rootID(a.ID); root != th.MessageID && !slices.Contains(refs, root) {
			refs = append(refs, root)
		}
	}
	if len(refs) > 0 {
		// Header folding keeps a long list within line limits.
		th.InReplyTo = strings.Join(refs, " ")
		th.References = th.InReplyTo
	}
	return th
}

// rootID is the Message-ID of the first notice of incident id.
func rootID(id string) string {
	return "<incident-" + idPart(id) + "@" + msgDomain + ">"
}

// noticeHash names one notice by its content: the same alerts give the
// same hash, so a retried send carries the same Message-ID.
func noticeHash(alerts []notifiers.Alert) string {
	h := sha256.New()
	for _, a := range alerts {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%d\x00", a.ID, a.Kind, a.Severity, a.At.UnixNano(), a.StartsAt.UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// idPart returns id when it is safe in a Message-ID (letters, digits, '-'
// and '_'; alert IDs are hex), else a hash of it: a '>' or a space in an ID
// must not break the header.
func idPart(id string) string {
	safe := len(id) <= 64
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			safe = false
			break
		}
	}
	if safe {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(sum[:12])
}

// lead returns the alert that speaks for a mail: the first that is not a
// digest. It reports false when alerts are all digests.
func lead(alerts []notifiers.Alert) (notifiers.Alert, bool) {
	for _, a := range alerts {
		if a.Kind != notifiers.KindDigest {
			return a, true
		}
	}
	return notifiers.Alert{}, false
}

// subject names the incident of the mail's first alert, the same for
// every notice of it: "marginwatch: liquidation-near BTCUSDT long on main".
// Gmail threads only mails whose subjects match (besides the references),
// so nothing that changes over an incident's life goes in: neither the
// severity nor RESOLVED/CLOSED (the body's first line says those) nor a
// count of the other alerts (a mail about several incidents joins the
// thread of its first). A test says "[TEST] marginwatch: …", so it cannot
// be mistaken for an incident; a digest says "[DIGEST] marginwatch
// morning". Alerts speak before digests: a digest is never urgent.
func subject(alerts []notifiers.Alert) string {
	a, ok := lead(alerts)
	if !ok {
		s := "[DIGEST] marginwatch " + alerts[0].DigestName()
		if len(alerts) > 1 {
			s += fmt.Sprintf(" (+%d more)", len(alerts)-1)
		}
		return notifiers.OneLine(s)
	}
	var b strings.Builder
	if a.Kind == notifiers.KindTest {
		b.WriteString("[TEST] ")
	}
	b.WriteString("marginwatch: ")
	b.WriteString(a.Rule)
	for _, s := range []string{a.Symbol, a.Side} {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(s)
		}
	}
	if a.Account != "" {
		b.WriteString(" on ")
		b.WriteString(a.Account)
	}
	// A newline in a header value would end the header and let the rest
	// forge new ones.
	return notifiers.OneLine(b.String())
}

// label is the word the eye looks for first: the severity, LIQUIDATED,
// CLOSED or RESOLVED.
func label(a notifiers.Alert) string {
	if r := a.ClosedReason(); r != "" {
		return strings.ToUpper(r)
	}
	if a.Status == notifiers.Resolved {
		return "RESOLVED"
	}
	return strings.ToUpper(a.Severity.String())
}

// message is what both MIME parts show: a banner, one block per alert,
// then the digests.
type message struct {
	// Banner marks a test so that nobody acts on it; empty otherwise.
	Banner string
	Alerts []alertView
	// Digests are the texts of the digests, shown as they are (preformatted
	// in HTML).
	Digests []string
}

// alertView is one alert, already reduced to the strings both parts print.
type alertView struct {
	Label string // CRITICAL, WARNING, INFO, RESOLVED, LIQUIDATED, CLOSED
	Color string // the HTML label's background
	Rule  string
	Kind  string // "escalated to critical", "resolved (was warning)", …
	// Fields are shown in order, as "name  value" lines or table rows.
	Fields []field
}

type field struct {
	Name, Value string
}

// testBanner is printed above a KindTest message in both parts.
const testBanner = "TEST - sent by marginwatch notify-test to check this channel; no action needed."

// newMessage builds the shared view of alerts. Times are shown in loc.
func newMessage(alerts []notifiers.Alert, loc *time.Location) message {
	var m message
	for _, a := range alerts {
		if a.Kind == notifiers.KindDigest {
			m.Digests = append(m.Digests, digestText(a.Summary))
			continue
		}
		if a.Kind == notifiers.KindTest {
			m.Banner = testBanner
		}
		m.Alerts = append(m.Alerts, newAlertView(a, loc))
	}
	return m
}

// digestText is a digest's text with CRLF as LF and every other control
// character blanked, as multiLine, but keeping the indentation of every
// line: it is the digest's layout.
func digestText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = notifiers.OneLine(l)
	}
	return strings.Join(lines, "\n")
}

func newAlertView(a notifiers.Alert, loc *time.Location) alertView {
	v := alertView{Label: label(a), Color: color(a), Rule: notifiers.OneLine(a.Rule), Kind: kindText(a)}
	add := func(name, value string) {
		if value = multiLine(value); value != "" {
			v.Fields = append(v.Fields, field{name, value})
		}
	}
	add("account", a.Account)
	add("position", strings.TrimSpace(a.Symbol+" "+a.Side))
	add("value", valueText(a))
	add("summary", a.Summary)
	add("context", contextText(a))
	add("runbook", a.Runbook)
	add("started", timeText(a.StartsAt, loc))
	add("time", timeText(a.At, loc))
	add("labels", notifiers.FormatLabels(a.Labels))
	return v
}

// color is the label's background: a liquidation is as red as a critical
// alert, a closed position neutral grey; only a recovery is green.
func color(a notifiers.Alert) string {
	switch {
	case a.Liquidated():
		return "#c62828"
	case a.Kind == notifiers.KindClosed:
		return "#616161"
	case a.Status == notifiers.Resolved:
		return "#2e7d32"
	case a.Severity == notifiers.Critical:
		return "#c62828"
	case a.Severity == notifiers.Warning:
		return "#ef6c00"
	default:
		return "#1565c0"
	}
}

// kindText says why this notice was sent.
func kindText(a notifiers.Alert) string {
	sev := a.Severity.String()
	switch a.Kind {
	case notifiers.KindFiring:
		return "firing"
	case notifiers.KindEscalated:
		return "escalated to " + sev
	case notifiers.KindEased:
		return "eased to " + sev + ", still firing"
	case notifiers.KindRepeat:
		return "still firing (repeat)"
	case notifiers.KindResolved:
		return "resolved (was " + sev + ")"
	case notifiers.KindClosed:
		if a.Liquidated() {
			return "the exchange liquidated the position (was " + sev + ")"
		}
		return "the position (or its rule or account) went away, no longer watched (was " + sev + ")"
	case notifiers.KindEvent:
		return "event"
	case notifiers.KindTest:
		return "TEST alert, not a real incident"
	default:
		return string(a.Kind)
	}
}

// valueText compares the value with the threshold in words, both in the
// metric's unit (Alert.Figure). A resolved
// alert states what is true now ("now at or below 0.5"), not the condition
// that no longer holds; a closed one the last value seen. An event has no
// threshold: its metric is its name.
func valueText(a notifiers.Alert) string {
	if a.Metric == "" {
		return ""
	}
	v, thr := a.Figure(a.Metric, a.Value), a.Figure(a.Metric, a.Threshold)
	resolved := a.Status == notifiers.Resolved
	switch {
	case a.Kind == notifiers.KindClosed && a.Op != "":
		return fmt.Sprintf("%s was last %s (%s %s)", a.Metric, v, a.Op, thr)
	case a.Kind == notifiers.KindClosed:
		return fmt.Sprintf("%s was last %s", a.Metric, v)
	case a.Op == "above" && !resolved:
		return fmt.Sprintf("%s is %s, above %s (%s)", a.Metric, v, thr, a.Severity)
	case a.Op == "above":
		return fmt.Sprintf("%s is %s, now at or below %s", a.Metric, v, thr)
	case a.Op == "below" && !resolved:
		return fmt.Sprintf("%s is %s, below %s (%s)", a.Metric, v, thr, a.Severity)
	case a.Op == "below":
		return fmt.Sprintf("%s is %s, now at or above %s", a.Metric, v, thr)
	default:
		return "event " + a.Metric
	}
}

// contextText lists notifiers.ContextFields in reading order, then any
// other figures by name, so nothing the engine attached is hidden.
func contextText(a notifiers.Alert) string {
	ctx := a.Context
	if len(ctx) == 0 {
		return ""
	}
	var parts []string
	known := make(map[string]bool, len(notifiers.ContextFields))
	for _, f := range notifiers.ContextFields {
		known[f.Key] = true
		if v, ok := ctx[f.Key]; ok {
			parts = append(parts, f.Label+" "+a.Figure(f.Key, v))
		}
	}
	var rest []string
	for k := range ctx {
		if !known[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		parts = append(parts, k+" "+a.Figure(k, ctx[k]))
	}
	return strings.Join(parts, " · ")
}

func timeText(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

// text renders the plain-text part:
//
//	CRITICAL liquidation-near - escalated to critical
//	  account   main
//	  …
//
// A multi-line value keeps its lines, indented under the value column.
// Digests follow the alerts as they are; a mail of digests only is their
// text and nothing else (the digest names marginwatch itself).
func (m message) text() string {
	if len(m.Alerts) == 0 && len(m.Digests) > 0 {
		return strings.Join(m.Digests, "\n\n") + "\n"
	}
	var b strings.Builder
	if m.Banner != "" {
		b.WriteString(m.Banner)
		b.WriteString("\n\n")
	}
	for i, a := range m.Alerts {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s %s - %s\n", a.Label, a.Rule, a.Kind)
		for _, f := range a.Fields {
			// Continuation lines line up under the value column.
			fmt.Fprintf(&b, "  %-9s %s\n", f.Name, strings.ReplaceAll(f.Value, "\n", "\n            "))
		}
	}
	for _, d := range m.Digests {
		b.WriteByte('\n')
		b.WriteString(d)
		b.WriteByte('\n')
	}
	b.WriteString("\n-- \nmarginwatch\n")
	return b.String()
}

// htmlTemplate is the HTML part. Inline styles only: most mail clients drop
// <style> blocks. html/template escapes every value (a summary is user
// text and may hold '<').
var htmlTemplate = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222">
{{- if .Banner}}
<p style="background:#fff3cd;border:2px dashed #b8860b;padding:8px;font-weight:bold">{{.Banner}}</p>
{{- end}}
{{- range .Alerts}}
<table cellpadding="4" cellspacing="0" style="border-collapse:collapse;margin:0 0 16px 0">
<tr><td colspan="2"><span style="background:{{.Color}};color:#fff;font-weight:bold;padding:2px 6px">{{.Label}}</span> <b>{{.Rule}}</b> - {{.Kind}}</td></tr>
{{- range .Fields}}
<tr><td style="color:#666;vertical-align:top">{{.Name}}</td><td style="white-space:pre-wrap">{{.Value}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- range .Digests}}
<pre style="font-family:Menlo,Consolas,monospace;font-size:13px;margin:0 0 16px 0">{{.}}</pre>
{{- end}}
<p style="color:#888;font-size:12px">marginwatch</p>
</body></html>
`))

// html renders the HTML part.
func (m message) html() (string, error) {
	var b strings.Builder
	if err := htmlTemplate.Execute(&b, m); err != nil {
		return "", fmt.Errorf("render html: %w", err)
	}
	return b.String(), nil
}

// multiLine keeps a value's line breaks (CRLF or LF, as LF) and replaces
// every other control character with a space, and trims surrounding space.
func multiLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = notifiers.OneLine(l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
