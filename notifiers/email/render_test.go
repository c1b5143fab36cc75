package email

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

// berlin is a fixed zone so expected times do not depend on tzdata.
var berlin = time.FixedZone("CET", 3600)

func TestText(t *testing.T) {
	event := notifiers.Alert{
		ID: "77aa", Status: notifiers.Firing, Kind: notifiers.KindEvent, Severity: notifiers.Critical,
		Rule: "margin-call", Account: "main", Metric: "margin_call",
		At:      time.Date(2026, 11, 28, 3, 20, 0, 0, time.UTC),
		Summary: "MARGIN_CALL on main\r\nBTCUSDT long is below maintenance",
		Context: map[string]float64{"account_margin_ratio": 0.93, "equity": 512.5, "zeta": 0.000125},
	}
	test := notifiers.Alert{
		ID: "t", Status: notifiers.Firing, Kind: notifiers.KindTest, Severity: notifiers.Info,
		Rule: "notify-test", Account: "main", At: time.Date(2026, 11, 28, 3, 20, 0, 0, time.UTC),
		Summary: "test alert",
	}
	at := time.Date(2026, 11, 28, 3, 20, 0, 0, time.UTC)
	liquidated := notifiers.Alert{
		ID: "l1", Status: notifiers.Resolved, Kind: notifiers.KindClosed, Reason: notifiers.ReasonLiquidated,
		Severity: notifiers.Critical, Rule: "liquidation-near", Account: "main", Symbol: "BTCUSDT", Side: "long",
		Metric: "liq_distance_pct", Value: 0.8, Threshold: 7, Op: "below", At: at,
	}
	closed := liquidated
	closed.ID, closed.Reason, closed.Severity, closed.Value, closed.Threshold = "c1", notifiers.ReasonClosed, notifiers.Warning, 12, 15
	infinite := notifiers.Alert{
		ID: "i1", Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: notifiers.Critical,
		Rule: "over-leveraged", Account: "main", Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20, Op: "above", At: at,
		Context: map[string]float64{"leverage": math.Inf(1), "equity": -3, "net_exposure_ratio": math.Inf(-1)},
	}
	tests := []struct {
		name   string
		alerts []notifiers.Alert
		want   string
	}{
		{
			name:   "escalation and resolution",
			alerts: notifiertest.Alerts(),
			want: `CRITICAL liquidation-near - escalated to critical
  account   main
  position  BTCUSDT long
  value     liq_distance_pct is 6.21%, below 7% (critical)
  summary   BTCUSDT long is 6.2% from liquidation <now>
  context   mark 91234.5 · entry 95000 · liq 85570.1 · liq distance 6.21% · leverage 5x · margin ratio 41% · equity 10234.12
  runbook   Add margin or cut size & breathe
  started   2026-11-28 04:14:00 CET
  time      2026-11-28 04:16:00 CET
  labels    desk=alpha

RESOLVED margin-ratio - resolved (was warning)
  account   main
  value     margin_ratio is 31%, now at or below 50%
  summary   account margin ratio is 0.31 (1.00 = liquidation)
  started   2026-11-28 03:14:00 CET
  time      2026-11-28 04:16:00 CET

-- 
marginwatch
`,
		},
		{
			name:   "event with a two-line summary and unknown context",
			alerts: []notifiers.Alert{event},
			want: `CRITICAL margin-call - event
  account   main
  value     event margin_call
  summary   MARGIN_CALL on main
            BTCUSDT long is below maintenance
  context   account margin ratio 93% · equity 512.50 · zeta 0.000125
  time      2026-11-28 04:20:00 CET

-- 
marginwatch
`,
		},
		{
			name:   "liquidated, closed, infinite",
			alerts: []notifiers.Alert{liquidated, closed, infinite},
			want: `LIQUIDATED liquidation-near - the exchange liquidated the position (was critical)
  account   main
  position  BTCUSDT long
  value     liq_distance_pct was last 0.8% (below 7%)
  time      2026-11-28 04:20:00 CET

CLOSED liquidation-near - the position (or its rule or account) went away, no longer watched (was warning)
  account   main
  position  BTCUSDT long
  value     liq_distance_pct was last 12% (below 15%)
  time      2026-11-28 04:20:00 CET

CRITICAL over-leveraged - firing
  account   main
  value     effective_leverage is ∞ (equity ≤ 0), above 20x (critical)
  context   leverage ∞ (equity ≤ 0) · equity -3.00 · net_exposure_ratio -∞ (equity ≤ 0)
  time      2026-11-28 04:20:00 CET

-- 
marginwatch
`,
		},
		{
			name:   "test",
			alerts: []notifiers.Alert{test},
			want: `TEST - sent by marginwatch notify-test to check this channel; no action needed.

INFO notify-test - TEST alert, not a real incident
  account   main
  summary   test alert
  time      2026-11-28 04:20:00 CET

-- 
marginwatch
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newMessage(tt.alerts, berlin).text(); got != tt.want {
				t.Errorf("text:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHTML(t *testing.T) {
	a := notifiers.Alert{
		ID: "t", Status: notifiers.Firing, Kind: notifiers.KindTest, Severity: notifiers.Warning,
		Rule: "notify-test", Account: "main<1>", Summary: "line one\nline <two>",
	}
	got, err := newMessage([]notifiers.Alert{a}, berlin).html()
	if err != nil {
		t.Fatal(err)
	}
	want := `<!DOCTYPE html>
<html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222">
<p style="background:#fff3cd;border:2px dashed #b8860b;padding:8px;font-weight:bold">TEST - sent by marginwatch notify-test to check this channel; no action needed.</p>
<table cellpadding="4" cellspacing="0" style="border-collapse:collapse;margin:0 0 16px 0">
<tr><td colspan="2"><span style="background:#ef6c00;color:#fff;font-weight:bold;padding:2px 6px">WARNING</span> <b>notify-test</b> - TEST alert, not a real incident</td></tr>
<tr><td style="color:#666;vertical-align:top">account</td><td style="white-space:pre-wrap">main&lt;1&gt;</td></tr>
<tr><td style="color:#666;vertical-align:top">summary</td><td style="white-space:pre-wrap">line one
line &lt;two&gt;</td></tr>
</table>
<p style="color:#888;font-size:12px">marginwatch</p>
</body></html>
`
	if got != want {
		t.Errorf("html:\n%s\nwant:\n%s", got, want)
	}
}

func TestSubject(t *testing.T) {
	alerts := notifiertest.Alerts()
	resolved := alerts[1]
	test := notifiers.Alert{Kind: notifiers.KindTest, Status: notifiers.Firing, Severity: notifiers.Info, Rule: "notify-test", Account: "main"}
	forged := alerts[0]
	forged.Rule = "evil\r\nBcc: victim@example.com"
	tests := []struct {
		alerts []notifiers.Alert
		want   string
	}{
		{alerts, "marginwatch: liquidation-near BTCUSDT long on main"},
		{alerts[:1], "marginwatch: liquidation-near BTCUSDT long on main"},
		{[]notifiers.Alert{resolved}, "marginwatch: margin-ratio on main"},
		{[]notifiers.Alert{test}, "[TEST] marginwatch: notify-test on main"},
		{[]notifiers.Alert{forged}, "marginwatch: evil  Bcc: victim@example.com BTCUSDT long on main"},
		{[]notifiers.Alert{{Rule: "data-stale", Kind: notifiers.KindFiring}}, "marginwatch: data-stale"},
	}
	for _, tt := range tests {
		if got := subject(tt.alerts); got != tt.want {
			t.Errorf("subject = %q, want %q", got, tt.want)
		}
	}
}

func TestThread(t *testing.T) {
	base := notifiertest.Alerts()[0]
	with := func(kind notifiers.Kind, id string) []notifiers.Alert {
		a := base
		a.Kind, a.ID = kind, id
		return []notifiers.Alert{a}
	}
	const root = "<incident-a1b2c3d4e5f60718@marginwatch>"
	notice := func(alerts []notifiers.Alert) string { return "<notice-" + noticeHash(alerts) + "@marginwatch>" }
	const rootB = "<incident-b2@marginwatch>"
	other := notifiertest.Alerts()[1]
	other.ID = "b2"
	test := base
	test.Kind = notifiers.KindTest
	// The same incident twice, a test and a digest add no reference.
	multi := append(with(notifiers.KindRepeat, base.ID), other, other, test, notifiers.Alert{ID: "d", Kind: notifiers.KindDigest})
	multiFirst := append(with(notifiers.KindFiring, base.ID), other)
	tests := []struct {
		name   string
		alerts []notifiers.Alert
		want   threading
	}{
		{"firing is the root", with(notifiers.KindFiring, base.ID), threading{MessageID: root}},
		{"event is its own root", with(notifiers.KindEvent, base.ID), threading{MessageID: root}},
		{"repeat replies", with(notifiers.KindRepeat, base.ID), threading{notice(with(notifiers.KindRepeat, base.ID)), root, root}},
		{"resolution replies", with(notifiers.KindResolved, base.ID), threading{notice(with(notifiers.KindResolved, base.ID)), root, root}},
		{"test stands alone", with(notifiers.KindTest, base.ID), threading{MessageID: notice(with(notifiers.KindTest, base.ID))}},
		{"no ID, no thread", with(notifiers.KindRepeat, ""), threading{MessageID: notice(with(notifiers.KindRepeat, ""))}},
		{"closing replies", with(notifiers.KindClosed, base.ID), threading{notice(with(notifiers.KindClosed, base.ID)), root, root}},
		{"several incidents: every root", multi, threading{notice(multi), root + " " + rootB, root + " " + rootB}},
		{"a first notice with others: its root, and the others'", multiFirst, threading{root, rootB, rootB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := thread(tt.alerts); got != tt.want {
				t.Errorf("thread = %+v, want %+v", got, tt.want)
			}
		})
	}
	// An ID that would break the header is hashed into a well-formed one.
	if id := thread(with(notifiers.KindFiring, "a b>c")).MessageID; !strings.HasPrefix(id, "<incident-h") ||
		!strings.HasSuffix(id, "@marginwatch>") || strings.ContainsAny(id[1:len(id)-1], " <>") {
		t.Errorf("Message-ID for an unsafe incident ID: %q", id)
	}
	// The same notice always gets the same ID, a different one another.
	a, b := with(notifiers.KindRepeat, base.ID), with(notifiers.KindRepeat, base.ID)
	b[0].At = b[0].At.Add(time.Hour)
	if noticeHash(a) != noticeHash(with(notifiers.KindRepeat, base.ID)) || noticeHash(a) == noticeHash(b) {
		t.Error("noticeHash is not a function of the notice")
	}
}

// A closing notice is never green and never says resolved.
func TestClosedView(t *testing.T) {
	for _, tt := range []struct {
		reason, label, color string
	}{
		{notifiers.ReasonLiquidated, "LIQUIDATED", "#c62828"},
		{notifiers.ReasonClosed, "CLOSED", "#616161"},
		{"", "CLOSED", "#616161"},
	} {
		a := notifiertest.Alerts()[0]
		a.Status, a.Kind, a.Reason = notifiers.Resolved, notifiers.KindClosed, tt.reason
		m := newMessage([]notifiers.Alert{a}, berlin)
		html, err := m.html()
		if err != nil {
			t.Fatal(err)
		}
		if v := m.Alerts[0]; v.Label != tt.label || v.Color != tt.color {
			t.Errorf("reason %q: label %s colour %s, want %s %s", tt.reason, v.Label, v.Color, tt.label, tt.color)
		}
		for _, bad := range []string{"resolved", "RESOLVED", "recovered", "#2e7d32", "now at or"} {
			if strings.Contains(m.text(), bad) || strings.Contains(html, bad) {
				t.Errorf("reason %q: the mail says %q", tt.reason, bad)
			}
		}
	}
}
