package email

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

// digestAlert is what the daemon sends for digest "morning" at 07:00 UTC:
// one account with a position and an alert whose summary needs escaping
// in HTML, and one account never polled.
func digestAlert() notifiers.Alert {
	return notifiertest.Digest("BTCUSDT <long> & 6.2% from liquidation")
}

// digestHTML is digestAlert's HTML part.
const digestHTML = `<!DOCTYPE html>
<html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222">
<pre style="font-family:Menlo,Consolas,monospace;font-size:13px;margin:0 0 16px 0">marginwatch digest morning — Sat 2026-11-28 07:00 UTC

main (binance-usdm)
  equity 10000.00 · margin ratio 2.5% · leverage 3x · funding paid 24h 1.50 · drawdown n/a
  1 position:
    BTCUSDT long: size 300% of equity · leverage 10x · liquidation 10% away · no stop-loss
  alerts in the last 24h (1), newest first:
    06:00 critical firing liquidation-near BTCUSDT long — BTCUSDT &lt;long&gt; &amp; 6.2% from liquidation

sub
  no data received yet: the exchange has not answered
  no alerts in the last 24h</pre>
<p style="color:#888;font-size:12px">marginwatch</p>
</body></html>
`

func TestDigestRender(t *testing.T) {
	d := digestAlert()
	m := newMessage([]notifiers.Alert{d}, berlin)
	if got, want := m.text(), d.Summary+"\n"; got != want {
		t.Errorf("text:\n%s\nwant the digest verbatim:\n%s", got, want)
	}
	html, err := m.html()
	if err != nil {
		t.Fatal(err)
	}
	if html != digestHTML {
		t.Errorf("html:\n%s\nwant:\n%s", html, digestHTML)
	}
}

// TestDigestAmongAlerts: should a call mix them, the alerts come as usual
// and speak for the mail (subject, thread); the digest follows them.
func TestDigestAmongAlerts(t *testing.T) {
	d := notifiers.Alert{
		ID: "digest:d:20261128T0700Z", Kind: notifiers.KindDigest, Status: notifiers.Firing, Severity: notifiers.Info,
		Rule: "digest:d", Summary: "marginwatch digest d\r\n\n  main\x1b[31m <ok>",
	}
	resolved := notifiertest.Alerts()[1]
	alerts := []notifiers.Alert{resolved, d}
	m := newMessage(alerts, berlin)
	want := `RESOLVED margin-ratio - resolved (was warning)
  account   main
  value     margin_ratio is 31%, now at or below 50%
  summary   account margin ratio is 0.31 (1.00 = liquidation)
  started   2026-11-28 03:14:00 CET
  time      2026-11-28 04:16:00 CET

marginwatch digest d

  main [31m <ok>

-- 
marginwatch
`
	if got := m.text(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	html, err := m.html()
	if err != nil {
		t.Fatal(err)
	}
	if wantPre := "</table>\n<pre style=\"font-family:Menlo,Consolas,monospace;font-size:13px;margin:0 0 16px 0\">marginwatch digest d\n\n  main [31m &lt;ok&gt;</pre>\n"; !strings.Contains(html, wantPre) {
		t.Errorf("html lacks %q:\n%s", wantPre, html)
	}
	if got, want := subject(alerts), "marginwatch: margin-ratio on main"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	root := "<incident-0f1e2d3c4b5a6978@marginwatch>"
	if got, want := thread(alerts), (threading{"<notice-" + noticeHash(alerts) + "@marginwatch>", root, root}); got != want {
		t.Errorf("thread = %+v, want %+v", got, want)
	}
	if got, want := subject([]notifiers.Alert{d, d}), "[DIGEST] marginwatch d (+1 more)"; got != want {
		t.Errorf("subject of two digests = %q, want %q", got, want)
	}
}

// TestDigestDelivery sends a digest through a real server: its own
// subject, a Message-ID of its own, no thread headers, no importance, the
// digest verbatim as text and in <pre> as HTML.
func TestDigestDelivery(t *testing.T) {
	srv := startServer(t, serverConfig{mode: TLSStartTLS, username: testUser, password: testPassword})
	n := newTestNotifier(t, srv, TLSStartTLS, 5*time.Second, nil)
	d := digestAlert()
	if retry, err := n.Notify(context.Background(), d); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	msgs := srv.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	wantHeaders := map[string]string{
		"Subject":     "[DIGEST] marginwatch morning",
		"Date":        "Sat, 28 Nov 2026 07:00:00 +0000",
		"Message-ID":  "<digest-" + noticeHash([]notifiers.Alert{d}) + "@marginwatch>",
		"In-Reply-To": "",
		"References":  "",
		"Importance":  "",
	}
	for h, want := range wantHeaders {
		if got := m.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if got, want := m.Parts["text/plain"], d.Summary+"\n"; got != want {
		t.Errorf("text part:\n%s\nwant:\n%s", got, want)
	}
	if got := m.Parts["text/html"]; got != digestHTML {
		t.Errorf("html part:\n%s\nwant:\n%s", got, digestHTML)
	}
}
