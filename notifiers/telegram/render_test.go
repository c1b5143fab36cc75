package telegram

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

func TestRender(t *testing.T) {
	conf := notifiertest.Alerts()
	t0 := time.Date(2026, 11, 28, 3, 14, 0, 0, time.UTC)
	tests := []struct {
		name  string
		alert notifiers.Alert
		want  string
	}{
		{"critical escalated position alert", conf[0], `🔴 <b>CRITICAL</b> · escalated
<b>liquidation-near</b> · main · BTCUSDT long
liq_distance_pct <code>6.21%</code> below <code>7%</code>
BTCUSDT long is 6.2% from liquidation &lt;now&gt;
mark <code>91234.5</code> · entry <code>95000</code> · liq <code>85570.1</code> · liq distance <code>6.21%</code> · leverage <code>5x</code> · margin ratio <code>41%</code> · equity <code>10234.12</code>
Runbook: Add margin or cut size &amp; breathe
Labels: desk=alpha
Started 2026-11-28 03:14 UTC`},
		{"resolved account alert", conf[1], `✅ <b>RESOLVED</b> · was warning
<b>margin-ratio</b> · main
margin_ratio <code>31%</code> no longer above <code>50%</code>
account margin ratio is 0.31 (1.00 = liquidation)
Started 2026-11-28 02:14 UTC`},
		{"liquidated", notifiers.Alert{
			ID: "l1", Status: notifiers.Resolved, Kind: notifiers.KindClosed, Reason: notifiers.ReasonLiquidated,
			Severity: notifiers.Critical, Rule: "liquidation-near", Account: "main", Symbol: "BTCUSDT", Side: "long",
			Metric: "liq_distance_pct", Value: 0.8, Threshold: 7, Op: "below", StartsAt: t0,
		}, `💥 <b>LIQUIDATED</b> · was critical
<b>liquidation-near</b> · main · BTCUSDT long
liq_distance_pct last <code>0.8%</code> (below <code>7%</code>) — <b>the exchange liquidated the position</b>
Started 2026-11-28 03:14 UTC`},
		{"closed", notifiers.Alert{
			ID: "c1", Status: notifiers.Resolved, Kind: notifiers.KindClosed, Reason: notifiers.ReasonClosed,
			Severity: notifiers.Warning, Rule: "liquidation-near", Account: "main", Symbol: "BTCUSDT", Side: "long",
			Metric: "liq_distance_pct", Value: 12, Threshold: 15, Op: "below", StartsAt: t0,
		}, `⏹ <b>CLOSED</b> · was warning
<b>liquidation-near</b> · main · BTCUSDT long
liq_distance_pct last <code>12%</code> (below <code>15%</code>) — the position (or its rule or account) went away: no longer watched
Started 2026-11-28 03:14 UTC`},
		{"infinite leverage", notifiers.Alert{
			ID: "i1", Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: notifiers.Critical,
			Rule: "over-leveraged", Account: "main", Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20, Op: "above",
			Context: map[string]float64{"leverage": math.Inf(1), "equity": -3},
		}, `🔴 <b>CRITICAL</b> · firing
<b>over-leveraged</b> · main
effective_leverage <code>∞ (equity ≤ 0)</code> above <code>20x</code>
leverage <code>∞ (equity ≤ 0)</code> · equity <code>-3.00</code>`},
		{"notify-test", notifiers.Alert{
			Status: notifiers.Firing, Kind: notifiers.KindTest, Severity: notifiers.Critical,
			Rule: "notify-test", Account: "marginwatch", Summary: "Test alert from marginwatch: if you read this, phone works.",
		}, `🧪 <b>TEST — not a real alert</b> · CRITICAL
<b>notify-test</b> · marginwatch
Test alert from marginwatch: if you read this, phone works.`},
		{"event with account context", notifiers.Alert{
			ID: "e1", Status: notifiers.Firing, Kind: notifiers.KindEvent, Severity: notifiers.Critical,
			Rule: "margin-call", Account: "main", Metric: "margin_call", StartsAt: t0,
			Summary: "Binance sent a MARGIN_CALL",
			Context: map[string]float64{"account_margin_ratio": 0.93, "equity": 512, "entry_price": 3012.456, "unknown_key": 1},
		}, `🔴 <b>CRITICAL</b> · event
<b>margin-call</b> · main
Event: margin_call
Binance sent a MARGIN_CALL
entry <code>3012.46</code> · account margin ratio <code>93%</code> · equity <code>512.00</code>
Started 2026-11-28 03:14 UTC`},
		{"warning repeat with nasty text", notifiers.Alert{
			ID: "n1", Status: notifiers.Firing, Kind: notifiers.KindRepeat, Severity: notifiers.Warning,
			Rule: "a<b>&c", Account: `"main"`, Symbol: "X&Y", Side: "short", Metric: "funding_rate",
			Value: 0.000125, Threshold: 0.0001, Op: "above",
			Summary: `<script>alert("x")</script> & 'more' &amp;`,
			Runbook: "see <https://example.com/?a=1&b=2>",
			Labels:  map[string]string{"z": "<1>", "a": "b&c"},
		}, `🟠 <b>WARNING</b> · repeat
<b>a&lt;b&gt;&amp;c</b> · "main" · X&amp;Y short
funding_rate <code>0.0125%</code> above <code>0.0100%</code>
&lt;script&gt;alert("x")&lt;/script&gt; &amp; 'more' &amp;amp;
Runbook: see &lt;https://example.com/?a=1&amp;b=2&gt;
Labels: a=b&amp;c, z=&lt;1&gt;`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(tt.alert)
			if got != tt.want {
				t.Errorf("render:\n%s\n\nwant:\n%s", got, tt.want)
			}
			if _, err := parseHTML(got); err != nil {
				t.Errorf("Telegram would reject it: %v", err)
			}
		})
	}
}

// TestRenderHugeAlert: an alert whose every field is enormous (and full of
// characters that grow when escaped) still fits one message, parses, and
// shows that it was cut.
func TestRenderHugeAlert(t *testing.T) {
	huge := strings.Repeat("<&>😀", 3000)
	labels := map[string]string{}
	for i := range 200 {
		labels[strings.Repeat("k", 10)+string(rune('a'+i%26))+strings.Repeat("x", i)] = huge
	}
	a := notifiers.Alert{
		ID: "h", Status: notifiers.Firing, Kind: notifiers.Kind(huge), Severity: notifiers.Critical,
		Rule: huge, Account: huge, Symbol: huge, Side: huge, Metric: huge, Op: huge,
		Summary: huge, Runbook: huge, Labels: labels, StartsAt: time.Unix(0, 0),
		Context: map[string]float64{"mark_price": 1, "equity": 2},
	}
	got := render(a)
	if n := utf16Len(got); n > maxMessage-footerReserve {
		t.Errorf("rendered alert is %d UTF-16 units, more than %d", n, maxMessage-footerReserve)
	}
	if _, err := parseHTML(got); err != nil {
		t.Errorf("Telegram would reject it: %v", err)
	}
	for _, want := range []string{"🔴 <b>CRITICAL</b>", "…", "Runbook: ", "Started 1970-01-01 00:00 UTC"} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered alert lacks %q", want)
		}
	}
	parts := split([]notifiers.Alert{a, a})
	if len(parts) != 2 {
		t.Errorf("two huge alerts in %d parts, want 2", len(parts))
	}
	for i, p := range parts {
		if n := utf16Len(p.text); n > maxMessage {
			t.Errorf("part %d is %d UTF-16 units", i+1, n)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"a&b", 7, "a&amp;b"},
		{"a&bc", 7, "a&amp;…"},
		{"a&b", 6, "a…"}, // never "a&am…"
		{"ab<", 4, "ab…"},
		{"😀😀", 4, "😀😀"},
		{"😀😀x", 4, "😀…"}, // an emoji is two UTF-16 units
		{"bad\xffutf8", 20, "bad\uFFFDutf8"},
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.max); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestFitLines(t *testing.T) {
	lines := []string{"<b>head</b>", "second", "third"}
	tests := []struct {
		limit int
		want  string
	}{
		{100, "<b>head</b>\nsecond\nthird"},
		{24, "<b>head</b>\nsecond\nthird"},
		{23, "<b>head</b>\nsecond\n…"},
		{20, "<b>head</b>\nsecond\n…"},
		{19, "<b>head</b>\n…"},
		{12, "…"},
	}
	for _, tt := range tests {
		got := fitLines(lines, tt.limit)
		if got != tt.want {
			t.Errorf("fitLines(limit %d) = %q, want %q", tt.limit, got, tt.want)
		}
		if utf16Len(got) > tt.limit {
			t.Errorf("fitLines(limit %d) is %d long", tt.limit, utf16Len(got))
		}
	}
}

func TestSplitOne(t *testing.T) {
	parts := split(notifiertest.Alerts())
	if len(parts) != 1 || len(parts[0].alerts) != 2 {
		t.Fatalf("two small alerts in %d parts", len(parts))
	}
	if want := render(notifiertest.Alerts()[0]) + "\n\n" + render(notifiertest.Alerts()[1]); parts[0].text != want {
		t.Errorf("split text:\n%s\nwant:\n%s", parts[0].text, want)
	}
}

// A closing notice never reads as a recovery.
func TestClosedNeverLooksResolved(t *testing.T) {
	for _, reason := range []string{notifiers.ReasonClosed, notifiers.ReasonLiquidated, ""} {
		a := notifiertest.Alerts()[0]
		a.Status, a.Kind, a.Reason = notifiers.Resolved, notifiers.KindClosed, reason
		got := strings.ToLower(render(a))
		for _, bad := range []string{"resolved", "recovered", "back to normal", "✅", "no longer below"} {
			if strings.Contains(got, bad) {
				t.Errorf("reason %q: %q in\n%s", reason, bad, got)
			}
		}
	}
}
