package slack

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/marginwatch/marginwatch/notifiers"
)

// TestAlertText pins the first section (title, where, comparison, summary)
// and the one-line form of alerts of every kind.
func TestAlertText(t *testing.T) {
	repeatAbove := notifiers.Alert{
		ID: "r1", Status: notifiers.Firing, Kind: notifiers.KindRepeat, Severity: notifiers.Warning,
		Rule: "margin-ratio", Account: "desk-2", Metric: "margin_ratio", Value: 0.6234, Threshold: 0.5, Op: "above",
		Summary: "margin ratio 0.62",
	}
	closed := incident("c1", notifiers.KindResolved, notifiers.Critical)
	closed.Value = 5.5 // still below 7: the position went away, it did not recover
	event := notifiers.Alert{
		ID: "e1", Status: notifiers.Firing, Kind: notifiers.KindEvent, Severity: notifiers.Critical,
		Rule: "margin-call", Account: "main", Symbol: "ETHUSDT", Summary: "MARGIN_CALL <!channel> & friends",
	}
	test := notifiers.Alert{
		ID: "t1", Status: notifiers.Firing, Kind: notifiers.KindTest, Severity: notifiers.Info,
		Rule: "notify-test", Account: "main", Summary: "test\nsecond line",
	}
	closedKind := incident("c2", notifiers.KindClosed, notifiers.Warning)
	closedKind.Value, closedKind.Threshold, closedKind.Reason = 12, 15, notifiers.ReasonClosed
	liquidated := incident("l1", notifiers.KindClosed, notifiers.Critical)
	liquidated.Value, liquidated.Reason = 0.8, notifiers.ReasonLiquidated
	infinite := notifiers.Alert{
		ID: "i1", Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: notifiers.Critical,
		Rule: "over-leveraged", Account: "main", Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20, Op: "above",
		Context: map[string]float64{"leverage": math.Inf(1), "equity": -3},
	}
	eased := incident("x1", notifiers.KindEased, notifiers.Warning)
	eased.Value, eased.Threshold = 12.345, 15

	tests := []struct {
		name     string
		alert    notifiers.Alert
		section  string
		oneLine  string
		color    string
		nBlocks  int
		leadIcon string
	}{
		{
			"repeat above", repeatAbove,
			":warning: *WARNING* · still firing · *margin-ratio*\nAccount *desk-2*\n`margin_ratio` is *62.34%*, above the warning threshold of 50%\nmargin ratio 0.62",
			"WARNING still firing: margin-ratio · desk-2 · margin_ratio 62.34% > 50%",
			colorWarning, 2, ":warning:",
		},
		{
			// What the engine sent for a closed position before KindClosed.
			"resolved while still breached reads as closed", closed,
			":black_square_for_stop: *CLOSED* · was critical · *liquidation-near*\nAccount *main* · *BTCUSDT* long\n`liq_distance_pct` was last *5.5%* (below 7%); the position (or its rule or account) went away, so it is no longer watched\nBTCUSDT long is 6.2% from liquidation",
			"CLOSED (was critical): liquidation-near · main BTCUSDT long · liq_distance_pct last 5.5%",
			colorClosed, 2, ":black_square_for_stop:",
		},
		{
			"closed", closedKind,
			":black_square_for_stop: *CLOSED* · was warning · *liquidation-near*\nAccount *main* · *BTCUSDT* long\n`liq_distance_pct` was last *12%* (below 15%); the position (or its rule or account) went away, so it is no longer watched\nBTCUSDT long is 6.2% from liquidation",
			"CLOSED (was warning): liquidation-near · main BTCUSDT long · liq_distance_pct last 12%",
			colorClosed, 2, ":black_square_for_stop:",
		},
		{
			"liquidated", liquidated,
			":boom: *LIQUIDATED* · was critical · *liquidation-near*\nAccount *main* · *BTCUSDT* long\n`liq_distance_pct` was last *0.8%* (below 7%); *the exchange liquidated the position*\nBTCUSDT long is 6.2% from liquidation",
			"LIQUIDATED (was critical): liquidation-near · main BTCUSDT long · liq_distance_pct last 0.8%",
			colorCritical, 2, ":boom:",
		},
		{
			"infinite leverage", infinite,
			":rotating_light: *CRITICAL* · firing · *over-leveraged*\nAccount *main*\n`effective_leverage` is *∞ (equity ≤ 0)*, above the critical threshold of 20x",
			"CRITICAL firing: over-leveraged · main · effective_leverage ∞ (equity ≤ 0) > 20x",
			colorCritical, 3, ":rotating_light:",
		},
		{
			"event, escaped", event,
			":rotating_light: *CRITICAL* · event · *margin-call*\nAccount *main* · *ETHUSDT*\nMARGIN_CALL &lt;!channel&gt; &amp; friends",
			"CRITICAL event: margin-call · main ETHUSDT",
			colorCritical, 2, ":rotating_light:",
		},
		{
			"test", test,
			":test_tube: *TEST* · INFO · *notify-test*\nAccount *main*\ntest\nsecond line\n_This is a test notification from marginwatch: no action needed._",
			"[TEST] INFO: notify-test · main",
			colorInfo, 2, ":test_tube:",
		},
		{
			"eased", eased,
			":warning: *WARNING* · eased · *liquidation-near*\nAccount *main* · *BTCUSDT* long\n`liq_distance_pct` is *12.35%*, below the warning threshold of 15%\nBTCUSDT long is 6.2% from liquidation",
			"WARNING eased: liquidation-near · main BTCUSDT long · liq_distance_pct 12.35% < 15%",
			colorWarning, 2, ":warning:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks := alertBlocks(tt.alert)
			if len(blocks) != tt.nBlocks {
				t.Fatalf("%d blocks, want %d", len(blocks), tt.nBlocks)
			}
			if got := blocks[0].(*goslack.SectionBlock).Text.Text; got != tt.section {
				t.Errorf("section:\n got %q\nwant %q", got, tt.section)
			}
			if got := oneLine(tt.alert); got != tt.oneLine {
				t.Errorf("one line:\n got %q\nwant %q", got, tt.oneLine)
			}
			if got := color(tt.alert); got != tt.color {
				t.Errorf("color %s, want %s", got, tt.color)
			}
			text, _ := message([]notifiers.Alert{tt.alert})
			if !strings.HasPrefix(text, tt.leadIcon+" ") {
				t.Errorf("text %q does not lead with %s", text, tt.leadIcon)
			}
		})
	}
}

func TestTestMarkedInText(t *testing.T) {
	text, atts := message([]notifiers.Alert{{Kind: notifiers.KindTest, Status: notifiers.Firing, Severity: notifiers.Critical, Rule: "r", Account: "a"}})
	if text != ":test_tube: [TEST] CRITICAL: r · a" {
		t.Errorf("text = %q", text)
	}
	if atts[0].Fallback != "[TEST] CRITICAL: r · a" {
		t.Errorf("fallback = %q", atts[0].Fallback)
	}
}

// TestBlockLimit: each alert below takes 4 blocks (text, fields, runbook,
// context), or 2 when small (text, context); a message holds 50, one kept
// for "… and N more" while alerts remain.
func TestBlockLimit(t *testing.T) {
	tests := []struct {
		alerts     int
		small      bool
		wantShown  int
		wantMore   int // 0: no "… and N more"
		wantBlocks int
	}{
		{1, false, 1, 0, 4},
		{12, false, 12, 0, 48}, // 11×4 = 44, the 12th fits in the last 6
		{13, false, 12, 1, 49}, // 12×4 = 48, the 13th does not fit in 2
		{20, false, 12, 8, 49},
		{25, true, 25, 0, 50}, // exactly full: the last needs no reserve
		{26, true, 24, 2, 49}, // the 25th would take the block kept for the summary
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.alerts, tt.small), func(t *testing.T) {
			alerts := make([]notifiers.Alert, tt.alerts)
			for i := range alerts {
				a := incident(fmt.Sprintf("id%02d", i), notifiers.KindFiring, notifiers.Critical)
				a.Symbol = fmt.Sprintf("SYM%02dUSDT", i)
				if !tt.small {
					a.Runbook = "cut size"
					a.Context = map[string]float64{"mark_price": 100}
				}
				alerts[i] = a
			}
			text, atts := message(alerts)
			blocks := 0
			for _, a := range atts {
				blocks += len(a.Blocks.BlockSet)
			}
			if blocks != tt.wantBlocks || blocks > maxBlocks {
				t.Errorf("%d blocks, want %d (limit %d)", blocks, tt.wantBlocks, maxBlocks)
			}
			wantAtts := tt.wantShown
			if tt.wantMore > 0 {
				wantAtts++
			}
			if len(atts) != wantAtts {
				t.Fatalf("%d attachments, want %d", len(atts), wantAtts)
			}
			if want := fmt.Sprintf("(+%d more)", tt.alerts-1); tt.alerts > 1 && !strings.HasSuffix(text, want) {
				t.Errorf("text %q does not end in %q", text, want)
			}
			if tt.wantMore == 0 {
				return
			}
			last := atts[len(atts)-1]
			body := last.Blocks.BlockSet[0].(*goslack.SectionBlock).Text.Text
			if !strings.HasPrefix(body, fmt.Sprintf("*… and %d more*\n• ", tt.wantMore)) {
				t.Errorf("last attachment: %q", body)
			}
			// Every alert left out is named.
			for _, a := range alerts[tt.wantShown:] {
				if !strings.Contains(body, a.Symbol) {
					t.Errorf("%s missing from %q", a.Symbol, body)
				}
			}
			if last.Color != colorMore {
				t.Errorf("more colour %s", last.Color)
			}
		})
	}
}

func TestLongTextsAreCut(t *testing.T) {
	a := incident("long", notifiers.KindFiring, notifiers.Critical)
	a.Summary = strings.Repeat("é", 4000) // 8000 bytes
	a.Runbook = strings.Repeat("<", 2000) // 8000 bytes once escaped
	blocks := alertBlocks(a)
	for i, b := range blocks {
		sec, ok := b.(*goslack.SectionBlock)
		if !ok || sec.Text == nil {
			continue
		}
		if n := len(sec.Text.Text); n > maxSectionText {
			t.Errorf("block %d: %d bytes, limit %d", i, n, maxSectionText)
		}
		if !utf8.ValidString(sec.Text.Text) || !strings.HasSuffix(sec.Text.Text, "…") {
			t.Errorf("block %d: cut badly: …%q", i, sec.Text.Text[len(sec.Text.Text)-10:])
		}
	}
	// The message still encodes (Slack would refuse invalid UTF-8).
	if _, err := json.Marshal(blocks); err != nil {
		t.Fatal(err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := t0
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"5", "5s", true},
		{" 120 ", "2m0s", true},
		{"0", "0s", true},
		{"-1", "0s", false},
		{"", "0s", false},
		{"soon", "0s", false},
		{"Sat, 28 Nov 2026 03:14:30 GMT", "30s", true},
		{"Sat, 28 Nov 2026 03:13:00 GMT", "0s", true}, // in the past: now
		{"9223372036854775807", "24h0m0s", true},      // capped, no overflow
		{"Sun, 28 Nov 2027 03:14:00 GMT", "24h0m0s", true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got.String() != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// Closing notices never look like a recovery, in any part of the message.
func TestClosedNeverLooksResolved(t *testing.T) {
	for _, reason := range []string{notifiers.ReasonClosed, notifiers.ReasonLiquidated, ""} {
		a := incident("c", notifiers.KindClosed, notifiers.Critical)
		a.Reason = reason
		a.At = a.StartsAt.Add(time.Hour)
		text, atts := message([]notifiers.Alert{a})
		raw, err := json.Marshal(struct {
			Text string
			Atts []goslack.Attachment
		}{text, atts})
		if err != nil {
			t.Fatal(err)
		}
		body := strings.ToLower(string(raw))
		for _, bad := range []string{"resolved", "recovered", "back to normal", "white_check_mark", "no longer below", strings.ToLower(colorResolved)} {
			if strings.Contains(body, bad) {
				t.Errorf("reason %q: message contains %q:\n%s", reason, bad, raw)
			}
		}
		want := "closed"
		if reason == notifiers.ReasonLiquidated {
			want = "LIQUIDATED"
		}
		if !strings.Contains(text, strings.ToUpper(want)) {
			t.Errorf("reason %q: text %q lacks %s", reason, text, strings.ToUpper(want))
		}
		footer := atts[0].Blocks.BlockSet[len(atts[0].Blocks.BlockSet)-1].(*goslack.ContextBlock).ContextElements.Elements[0].(*goslack.TextBlockObject).Text
		if !strings.Contains(footer, " · "+strings.ToLower(want)+" <!date^") {
			t.Errorf("reason %q: footer %q does not say when it was %s", reason, footer, strings.ToLower(want))
		}
	}
}

// Infinite context figures show as ∞ with the reason, not as +Inf and not
// dropped.
func TestInfiniteContext(t *testing.T) {
	a := incident("i", notifiers.KindFiring, notifiers.Critical)
	a.Context = map[string]float64{"leverage": math.Inf(1), "equity": -3, "margin_ratio": math.NaN()}
	blocks := alertBlocks(a)
	fields := blocks[1].(*goslack.SectionBlock).Fields
	var got []string
	for _, f := range fields {
		got = append(got, f.Text)
	}
	want := []string{"*Leverage*\n∞ (equity ≤ 0)", "*Equity*\n-3.00"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fields = %q, want %q", got, want)
	}
}

// Cutting a long text never halves an entity: the plain text is cut, then
// escaped. Fails on the old escape-then-truncate.
func TestCutNeverHalvesAnEntity(t *testing.T) {
	for _, unit := range []string{"&", "<", ">", "a&", "ab<", "abc>", "é&", "&<>"} {
		a := incident("e", notifiers.KindFiring, notifiers.Critical)
		a.Summary = strings.Repeat(unit, 3000)
		a.Runbook = strings.Repeat(unit, 3000)
		a.Labels = map[string]string{"k": strings.Repeat(unit, 3000)}
		var texts []string
		for _, b := range alertBlocks(a) {
			switch b := b.(type) {
			case *goslack.SectionBlock:
				if b.Text != nil {
					texts = append(texts, b.Text.Text)
				}
			case *goslack.ContextBlock:
				texts = append(texts, b.ContextElements.Elements[0].(*goslack.TextBlockObject).Text)
			}
		}
		for _, b := range digestBlocks(strings.Repeat(unit, 4000) + "\n" + strings.Repeat("`"+unit, 2000)) {
			texts = append(texts, b.(*goslack.SectionBlock).Text.Text)
		}
		for _, text := range texts {
			if len(text) > maxSectionText {
				t.Errorf("unit %q: %d bytes, limit %d", unit, len(text), maxSectionText)
			}
			if bad := brokenEntity(text); bad != "" {
				t.Errorf("unit %q: broken entity at …%q", unit, bad)
			}
		}
	}
}

// brokenEntity returns the text around the first '&' that does not start
// &amp;, &lt; or &gt;, or "".
func brokenEntity(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			continue
		}
		rest := s[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
			return s[max(0, i-10):min(len(s), i+10)]
		}
	}
	return ""
}

func TestTruncateBacksOffAnEntity(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"abcdef&amp;xyz", 10, "abcdef…"}, // would cut "&amp" → "&a…"
		{"abcde&lt;xyz", 10, "abcde…"},    // "&lt;" cut after "&l"
		{"ab&lt;cdefgh", 10, "ab&lt;c…"},  // an entity already closed stays
		{"abcdefgh&;;;", 11, "abcdefgh…"}, // a lone '&' is dropped with the rest
		{"short", 10, "short"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.limit); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}
