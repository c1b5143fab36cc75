package telegram

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/marginwatch/marginwatch/notifiers/notifiertest"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// digestAlert is what the daemon sends for digest "morning" at 07:00 UTC:
// one account with a position and an alert whose summary needs escaping,
// and one account never polled.
func digestAlert() notifiers.Alert {
	return notifiertest.Digest("BTCUSDT <long> & 6.2% from liquidation")
}

func TestDigestRender(t *testing.T) {
	parts := split([]notifiers.Alert{digestAlert()})
	const want = "📋 <b>DIGEST</b> · morning\n" +
		"<pre>marginwatch digest morning — Sat 2026-11-28 07:00 UTC\n" +
		"\n" +
		"main (binance-usdm)\n" +
		"  equity 10000.00 · margin ratio 2.5% · leverage 3x · funding paid 24h 1.50 · drawdown n/a\n" +
		"  1 position:\n" +
		"    BTCUSDT long: size 300% of equity · leverage 10x · liquidation 10% away · no stop-loss\n" +
		"  alerts in the last 24h (1), newest first:\n" +
		"    06:00 critical firing liquidation-near BTCUSDT long — BTCUSDT &lt;long&gt; &amp; 6.2% from liquidation\n" +
		"\n" +
		"sub\n" +
		"  no data received yet: the exchange has not answered\n" +
		"  no alerts in the last 24h</pre>"
	if len(parts) != 1 || parts[0].text != want {
		t.Fatalf("parts %+v\nwant one: %q", parts, want)
	}
	if empty := split([]notifiers.Alert{{Kind: notifiers.KindDigest, Rule: "digest:x"}}); len(empty) != 1 || empty[0].text != "📋 <b>DIGEST</b> · x" {
		t.Errorf("empty digest: %+v", empty)
	}
}

// longDigest is a digest of n numbered lines of 100 characters (105
// UTF-16 units, 110 once escaped) with a blank line every tenth.
func longDigest(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i%10 == 9 {
			continue
		}
		fmt.Fprintf(&b, "line %04d <a&b> 🚀🚀🚀🚀🚀 %s", i, strings.Repeat("é", 74))
	}
	return b.String()
}

// TestDigestSplit sends a digest of 20,000 characters: it goes out as
// several messages, each within Telegram's limit (the fake API checks the
// HTML and the length), each with the head line, its own <pre> and its
// "(k/n)", silent although silent_warnings is off, and a reply to nothing
// although a thread is stored under the digest's ID; together they hold
// every line in order.
func TestDigestSplit(t *testing.T) {
	d := notifiers.Alert{
		ID: "digest:night:20261128T0700Z", Kind: notifiers.KindDigest, Status: notifiers.Firing,
		Severity: notifiers.Info, Rule: "digest:night", Summary: longDigest(200),
	}
	th := &notifiertest.Threads{}
	_ = th.SetThread("phone", d.ID, "77")
	w := &noWait{}
	n, api := newTest(t, nil, Options{Threads: th, Wait: w.wait})
	if retry, err := n.Notify(context.Background(), d); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	reqs := api.requests()
	// 180 lines of 111 units and 20 blank ones; 4,064 units per message
	// less 36 for the head line and the tags: 35 lines of text each.
	if len(reqs) != 6 || len(w.waits) != 5 {
		t.Fatalf("%d messages after %d pauses, want 6 after 5", len(reqs), len(w.waits))
	}
	var lines []string
	for k, r := range reqs {
		f := r.fields
		if f["disable_notification"] != "true" || f["reply_parameters"] != "" {
			t.Errorf("message %d: disable_notification %q, reply_parameters %q; want silent, no reply",
				k+1, f["disable_notification"], f["reply_parameters"])
		}
		footer := fmt.Sprintf("</pre>\n\n<i>(%d/6)</i>", k+1)
		body, ok := strings.CutPrefix(f["text"], "📋 <b>DIGEST</b> · night\n<pre>")
		body, ok2 := strings.CutSuffix(body, footer)
		if !ok || !ok2 {
			t.Fatalf("message %d is not a digest part: %q", k+1, f["text"])
		}
		if strings.HasPrefix(body, "\n") || strings.HasSuffix(body, "\n") {
			t.Errorf("message %d starts or ends with a blank line", k+1)
		}
		text, err := parseHTML(body)
		if err != nil {
			t.Fatalf("message %d: %v", k+1, err)
		}
		lines = append(lines, strings.Split(text, "\n")...)
	}
	// Every line of text, in order; of the blank lines only those on a
	// break are gone.
	j := 0
	for l := range strings.SplitSeq(d.Summary, "\n") {
		if j < len(lines) && lines[j] == l {
			j++
		} else if l != "" {
			t.Fatalf("line %q missing or out of order", l)
		}
	}
	if j != len(lines) {
		t.Errorf("messages hold %d lines, matched %d", len(lines), j)
	}
	if len(th.Refs()) != 1 {
		t.Errorf("threads = %v; a digest must store none", th.Refs())
	}
}

// TestDigestPiecesStandAlone: a digest's pieces never share a message,
// even when two would fit (here "a" and "b", apart by more blank lines
// than a message holds), and a digest of several pieces shares none with
// an alert either: it is a Split part of its own. A digest of one piece
// packs like an alert (see TestDigestSilence).
func TestDigestPiecesStandAlone(t *testing.T) {
	d := notifiers.Alert{Kind: notifiers.KindDigest, Rule: "digest:d", Summary: "a" + strings.Repeat("\n", 5000) + "b"}
	w := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, "w")
	parts := split([]notifiers.Alert{d, w})
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3: %+v", len(parts), parts)
	}
	const head = "📋 <b>DIGEST</b> · d\n<pre>"
	for i, want := range []string{head + "a</pre>\n\n<i>(1/3)</i>", head + "b</pre>\n\n<i>(2/3)</i>"} {
		if parts[i].text != want || len(parts[i].alerts) != 1 || parts[i].alerts[0].Kind != notifiers.KindDigest {
			t.Errorf("part %d carries %d alerts: %q, want %q", i+1, len(parts[i].alerts), parts[i].text, want)
		}
	}
	if want := "🟠 <b>WARNING</b> · firing\n"; !strings.HasPrefix(parts[2].text, want) || len(parts[2].alerts) != 1 {
		t.Errorf("third part carries %d alerts: %q, want it to start %q", len(parts[2].alerts), parts[2].text, want)
	}
	var n Notifier
	if got := n.Split([]notifiers.Alert{d, w}); len(got) != 2 || got[0][0].Kind != notifiers.KindDigest || got[1][0].ID != "w" {
		t.Errorf("Split = %+v, want the digest, then the alert", got)
	}
}

// TestDigestSilence: a digest alone never rings; should it share a
// message with alerts, the alerts decide as usual.
func TestDigestSilence(t *testing.T) {
	d := notifiers.Alert{Kind: notifiers.KindDigest, Status: notifiers.Firing, Severity: notifiers.Info, Rule: "digest:d", Summary: "short"}
	crit := alert(notifiers.Critical, notifiers.Firing, notifiers.KindFiring, "c")
	warn := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, "w")
	tests := []struct {
		name       string
		silent     bool
		alerts     []notifiers.Alert
		wantSilent string
	}{
		{"digest, silent off", false, []notifiers.Alert{d}, "true"},
		{"digest, silent on", true, []notifiers.Alert{d}, "true"},
		{"warning and digest, silent off", false, []notifiers.Alert{warn, d}, ""},
		{"critical and digest, silent on", true, []notifiers.Alert{crit, d}, ""},
		{"warning and digest, silent on", true, []notifiers.Alert{warn, d}, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, api := newTest(t, func(c *config.Notifier) { c.SilentWarnings = tt.silent }, Options{})
			if retry, err := n.Notify(context.Background(), tt.alerts...); err != nil {
				t.Fatalf("Notify: retry=%v err=%v", retry, err)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d messages, want 1", len(reqs))
			}
			if got := reqs[0].fields["disable_notification"]; got != tt.wantSilent {
				t.Errorf("disable_notification = %q, want %q", got, tt.wantSilent)
			}
		})
	}
}
