package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
)

// TestDigestIntact: a digest of several thousand characters and many lines,
// with characters JSON and HTML treat specially, reaches the receiver as
// one alert whose summary is the digest, byte for byte.
func TestDigestIntact(t *testing.T) {
	var b strings.Builder
	b.WriteString("marginwatch digest morning — Sat 2026-11-28 07:00 UTC\n")
	for acct := range 3 {
		fmt.Fprintf(&b, "\nacct-%d (binance-usdm)\n", acct)
		b.WriteString("  equity 10000.00 · margin ratio 2.5% · leverage 3x · funding paid 24h 1.50 · drawdown n/a\n")
		b.WriteString("  20 positions, nearest to liquidation first:\n")
		for i := range 20 {
			fmt.Fprintf(&b, "    SYM%02dUSDT long: size 10.00%% of equity · leverage 10x · liquidation %d.00%% away · no stop-loss\n", i, i+5)
		}
		b.WriteString("  alerts in the last 24h (1), newest first:\n")
		b.WriteString("    06:00 critical firing liquidation-near — \"quoted\" <tag> & \\backslash\\ \ttab 🚀")
		if acct < 2 {
			b.WriteByte('\n')
		}
	}
	summary := b.String()
	if len(summary) < 5000 {
		t.Fatalf("digest is only %d bytes", len(summary))
	}
	at := time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)
	d := notifiers.Alert{
		ID: "digest:morning:20261128T0700Z", Status: notifiers.Firing, Kind: notifiers.KindDigest,
		Severity: notifiers.Info, Rule: "digest:morning", StartsAt: at, At: at, Summary: summary,
	}
	r := newReceiver(t, "", time.Now)
	n := mustNew(t, cfgFor(r, ""), Options{})
	if retry, err := n.Notify(context.Background(), d); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	got := r.Delivered()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	var p Payload
	if err := json.Unmarshal([]byte(got[0]), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(p.Alerts))
	}
	a := p.Alerts[0]
	if a.Kind != "digest" || a.Severity != "info" || a.Status != "firing" || a.Rule != "digest:morning" || a.Account != "" || a.ID != d.ID {
		t.Errorf("alert = %+v", a)
	}
	if a.Summary != summary {
		t.Errorf("summary changed on the way:\n got %q\nwant %q", a.Summary, summary)
	}
}
