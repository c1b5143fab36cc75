package console

import (
	"bytes"
	"context"
	"testing"

	"github.com/marginwatch/marginwatch/notifiers/notifiertest"

	"github.com/marginwatch/marginwatch/notifiers"
)

// digestAlert is what the daemon sends for digest "morning" at 07:00 UTC:
// one account with a position and an alert, and one never polled.
func digestAlert() notifiers.Alert {
	return notifiertest.Digest("BTCUSDT long is 6.2% from liquidation")
}

func TestDigest(t *testing.T) {
	// Every line is indented, the empty ones too.
	const body = "  marginwatch digest morning — Sat 2026-11-28 07:00 UTC\n" +
		"  \n" +
		"  main (binance-usdm)\n" +
		"    equity 10000.00 · margin ratio 2.5% · leverage 3x · funding paid 24h 1.50 · drawdown n/a\n" +
		"    1 position:\n" +
		"      BTCUSDT long: size 300% of equity · leverage 10x · liquidation 10% away · no stop-loss\n" +
		"    alerts in the last 24h (1), newest first:\n" +
		"      06:00 critical firing liquidation-near BTCUSDT long — BTCUSDT long is 6.2% from liquidation\n" +
		"  \n" +
		"  sub\n" +
		"    no data received yet: the exchange has not answered\n" +
		"    no alerts in the last 24h\n"
	tests := []struct {
		color bool
		want  string
	}{
		{false, "2026-11-28 07:00:00 UTC DIGEST   morning\n" + body},
		// Info's colour, as for any info line.
		{true, "2026-11-28 07:00:00 UTC \x1b[36mDIGEST  \x1b[0m morning\n" + body},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		retry, err := newTest(&buf, tt.color).Notify(context.Background(), digestAlert())
		if err != nil || retry {
			t.Fatalf("Notify = %v, %v", retry, err)
		}
		if got := buf.String(); got != tt.want {
			t.Errorf("color %v:\ngot\n%s\nwant\n%s\n(got %q)", tt.color, got, tt.want, got)
		}
	}
}

// TestDigestControlCharacters: a digest's lines are kept, every other
// control character is blanked, so nothing in it can forge a line of its
// own or colour the terminal.
func TestDigestControlCharacters(t *testing.T) {
	a := notifiers.Alert{
		Kind: notifiers.KindDigest, Status: notifiers.Firing, Severity: notifiers.Info,
		Rule: "digest:night\nshift", At: at,
		Summary: "first\r\nsec\x1b[31mond\tline\r\n\nlast\x00",
	}
	var buf bytes.Buffer
	if _, err := newTest(&buf, false).Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	want := "2026-11-28 13:03:42 UTC DIGEST   night shift\n" +
		"  first\n" +
		"  sec [31mond line\n" +
		"  \n" +
		"  last \n"
	if got := buf.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestDigestAmongAlerts: should a digest share a call with alerts, the
// alerts keep their one line each and the digest its block, in order.
func TestDigestAmongAlerts(t *testing.T) {
	alert := liq(notifiers.KindFiring, notifiers.Critical, 6.21, 7)
	d := notifiers.Alert{
		Kind: notifiers.KindDigest, Status: notifiers.Firing, Severity: notifiers.Info,
		Rule: "digest:d", Summary: "line 1\nline 2",
	}
	var buf bytes.Buffer
	if _, err := newTest(&buf, false).Notify(context.Background(), alert, d, alert); err != nil {
		t.Fatal(err)
	}
	line := "2026-11-28 13:03:42 UTC CRITICAL firing    liquidation-near  main BTCUSDT long  liq_distance_pct 6.21% < 7%" +
		`  "BTCUSDT long is 6.2% from liquidation"  runbook: Add margin or cut size` + "\n"
	// d has no time: it is stamped with now.
	want := line + "2026-11-28 14:03:42 UTC DIGEST   d\n  line 1\n  line 2\n" + line
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
