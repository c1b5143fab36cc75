package console

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

var at = time.Date(2026, 11, 28, 13, 3, 42, 0, time.UTC)

func newTest(w *bytes.Buffer, color bool) *Notifier {
	n := New(w, color) // UTC, whatever the machine's zone
	n.now = func() time.Time { return at.Add(time.Hour) }
	return n
}

func liq(kind notifiers.Kind, sev notifiers.Severity, v, thr float64) notifiers.Alert {
	status := notifiers.Firing
	if kind == notifiers.KindResolved || kind == notifiers.KindClosed {
		status = notifiers.Resolved
	}
	return notifiers.Alert{
		ID: "x", Status: status, Kind: kind, Severity: sev,
		Rule: "liquidation-near", Account: "main", Symbol: "BTCUSDT", Side: "long",
		Metric: "liq_distance_pct", Value: v, Threshold: thr, Op: "below",
		At: at, Summary: "BTCUSDT long is 6.2% from liquidation",
		Runbook: "Add margin or cut size",
	}
}

func TestLines(t *testing.T) {
	const ts = "2026-11-28 13:03:42 UTC "
	const pos = "liquidation-near  main BTCUSDT long  "
	const tail = `  "BTCUSDT long is 6.2% from liquidation"  runbook: Add margin or cut size`
	tests := []struct {
		name      string
		alert     notifiers.Alert
		plain     string
		colorized string
	}{
		{
			name:      "firing critical",
			alert:     liq(notifiers.KindFiring, notifiers.Critical, 6.21, 7),
			plain:     ts + "CRITICAL firing    " + pos + "liq_distance_pct 6.21% < 7%" + tail,
			colorized: ts + "\x1b[31mCRITICAL\x1b[0m firing    " + pos + "liq_distance_pct 6.21% < 7%" + tail,
		},
		{
			name:      "escalated",
			alert:     liq(notifiers.KindEscalated, notifiers.Critical, 5, 7),
			plain:     ts + "CRITICAL escalated " + pos + "liq_distance_pct 5% < 7%" + tail,
			colorized: ts + "\x1b[31mCRITICAL\x1b[0m escalated " + pos + "liq_distance_pct 5% < 7%" + tail,
		},
		{
			name:      "eased to warning",
			alert:     liq(notifiers.KindEased, notifiers.Warning, 10.456, 15),
			plain:     ts + "WARNING  eased     " + pos + "liq_distance_pct 10.46% < 15%" + tail,
			colorized: ts + "\x1b[33mWARNING \x1b[0m eased     " + pos + "liq_distance_pct 10.46% < 15%" + tail,
		},
		{
			name:      "repeat",
			alert:     liq(notifiers.KindRepeat, notifiers.Warning, 12, 15),
			plain:     ts + "WARNING  repeat    " + pos + "liq_distance_pct 12% < 15%" + tail,
			colorized: ts + "\x1b[33mWARNING \x1b[0m repeat    " + pos + "liq_distance_pct 12% < 15%" + tail,
		},
		{
			name:      "resolved shows what is true now, in green",
			alert:     liq(notifiers.KindResolved, notifiers.Critical, 17.5, 15),
			plain:     ts + "CRITICAL resolved  " + pos + "liq_distance_pct 17.5% >= 15%" + tail,
			colorized: ts + "\x1b[32mCRITICAL\x1b[0m resolved  " + pos + "liq_distance_pct 17.5% >= 15%" + tail,
		},
		{
			name: "liquidated: loud, red, the last value, never resolved",
			alert: func() notifiers.Alert {
				a := liq(notifiers.KindClosed, notifiers.Critical, 3.1, 7)
				a.Reason = notifiers.ReasonLiquidated
				return a
			}(),
			plain:     ts + "CRITICAL LIQUIDATED " + pos + "liq_distance_pct last 3.1% (below 7%)" + tail,
			colorized: ts + "\x1b[31mCRITICAL\x1b[0m LIQUIDATED " + pos + "liq_distance_pct last 3.1% (below 7%)" + tail,
		},
		{
			name: "closed: grey, the last value",
			alert: func() notifiers.Alert {
				a := liq(notifiers.KindClosed, notifiers.Warning, 12, 15)
				a.Reason = notifiers.ReasonClosed
				return a
			}(),
			plain:     ts + "WARNING  closed    " + pos + "liq_distance_pct last 12% (below 15%)" + tail,
			colorized: ts + "\x1b[90mWARNING \x1b[0m closed    " + pos + "liq_distance_pct last 12% (below 15%)" + tail,
		},
		{
			name: "infinite leverage",
			alert: notifiers.Alert{
				Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: notifiers.Critical,
				Rule: "over-leveraged", Account: "main", Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20,
				Op: "above", At: at,
			},
			plain:     ts + "CRITICAL firing    over-leveraged  main  effective_leverage ∞ (equity ≤ 0) > 20x",
			colorized: ts + "\x1b[31mCRITICAL\x1b[0m firing    over-leveraged  main  effective_leverage ∞ (equity ≤ 0) > 20x",
		},
		{
			name: "account scope above, info, small numbers",
			alert: notifiers.Alert{
				Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: notifiers.Info,
				Rule: "funding", Account: "alt", Metric: "funding_rate", Value: 0.000125, Threshold: 0.0001,
				Op: "above", At: at,
			},
			plain:     ts + "INFO     firing    funding  alt  funding_rate 0.0125% > 0.0100%",
			colorized: ts + "\x1b[36mINFO    \x1b[0m firing    funding  alt  funding_rate 0.0125% > 0.0100%",
		},
		{
			name: "resolved above rule",
			alert: notifiers.Alert{
				Status: notifiers.Resolved, Kind: notifiers.KindResolved, Severity: notifiers.Warning,
				Rule: "leverage-high", Account: "main", Metric: "effective_leverage", Value: 8, Threshold: 10,
				Op: "above", At: at, Summary: "ok again",
			},
			plain:     ts + `WARNING  resolved  leverage-high  main  effective_leverage 8x <= 10x  "ok again"`,
			colorized: ts + "\x1b[32mWARNING \x1b[0m resolved  leverage-high  main  effective_leverage 8x <= 10x  \"ok again\"",
		},
		{
			name: "event has no comparison; summary newline stays on the line",
			alert: notifiers.Alert{
				Status: notifiers.Firing, Kind: notifiers.KindEvent, Severity: notifiers.Critical,
				Rule: "margin-call", Account: "main", Metric: "margin_call", At: at,
				Summary: "MARGIN CALL\nact now",
			},
			plain:     ts + `CRITICAL event     margin-call  main  margin_call  "MARGIN CALL\nact now"`,
			colorized: ts + "\x1b[31mCRITICAL\x1b[0m event     margin-call  main  margin_call  \"MARGIN CALL\\nact now\"",
		},
		{
			name: "test alert without time uses now; control chars in runbook are blanked",
			alert: notifiers.Alert{
				Status: notifiers.Firing, Kind: notifiers.KindTest, Severity: notifiers.Info,
				Rule: "notify-test", Account: "marginwatch", Summary: "test", Runbook: "line1\nline2",
			},
			plain:     "2026-11-28 14:03:42 UTC " + `INFO     test      notify-test  marginwatch  "test"  runbook: line1 line2`,
			colorized: "2026-11-28 14:03:42 UTC " + "\x1b[36mINFO    \x1b[0m test      notify-test  marginwatch  \"test\"  runbook: line1 line2",
		},
	}
	for _, tt := range tests {
		for _, color := range []bool{false, true} {
			want := tt.plain
			if color {
				want = tt.colorized
			}
			var buf bytes.Buffer
			n := newTest(&buf, color)
			retry, err := n.Notify(context.Background(), tt.alert)
			if err != nil || retry {
				t.Fatalf("%s: Notify = %v, %v", tt.name, retry, err)
			}
			if got := buf.String(); got != want+"\n" {
				t.Errorf("%s (color %v):\ngot  %q\nwant %q", tt.name, color, got, want+"\n")
			}
		}
	}
}

func TestSeveralAlertsInOrder(t *testing.T) {
	var buf bytes.Buffer
	n := newTest(&buf, false)
	a := liq(notifiers.KindFiring, notifiers.Critical, 6.21, 7)
	b := liq(notifiers.KindResolved, notifiers.Warning, 20, 15)
	b.Symbol, b.Summary, b.Runbook = "ETHUSDT", "", ""
	if _, err := n.Notify(context.Background(), a, b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	if want := "2026-11-28 13:03:42 UTC WARNING  resolved  liquidation-near  main ETHUSDT long  liq_distance_pct 20% >= 15%"; lines[1] != want {
		t.Errorf("second line = %q, want %q", lines[1], want)
	}
	if !strings.Contains(lines[0], "CRITICAL firing") {
		t.Errorf("first line = %q", lines[0])
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsRetryable(t *testing.T) {
	n := New(failWriter{}, false)
	retry, err := n.Notify(context.Background(), liq(notifiers.KindFiring, notifiers.Critical, 1, 7))
	if !retry || err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Notify = %v, %v; want retry with the write error", retry, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	retry, err = New(&buf, false).Notify(ctx, liq(notifiers.KindFiring, notifiers.Critical, 1, 7))
	if !retry || !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Fatalf("Notify with cancelled ctx = %v, %v, wrote %q", retry, err, buf.String())
	}
}

// lineWriter fails the test if a Write does not end on a line boundary,
// i.e. one Notify's lines were split across writes.
type lineWriter struct {
	mu     sync.Mutex
	t      *testing.T
	writes int
	busy   bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.busy {
		w.t.Error("concurrent Write")
	}
	w.busy = true
	w.writes++
	w.mu.Unlock()
	if !bytes.HasSuffix(p, []byte("\n")) || bytes.Count(p, []byte("\n")) != 3 {
		w.t.Errorf("write %q is not exactly one Notify's three lines", p)
	}
	w.mu.Lock()
	w.busy = false
	w.mu.Unlock()
	return len(p), nil
}

func TestConcurrentNotifySerialized(t *testing.T) {
	w := &lineWriter{t: t}
	n := New(w, true)
	a := liq(notifiers.KindFiring, notifiers.Critical, 6.21, 7)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := n.Notify(context.Background(), a, a, a); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if w.writes != 160 {
		t.Errorf("writes = %d, want 160", w.writes)
	}
}

// TestUnitsAndTraderContext: the console shows the same figures as every
// other channel (notifiertest.Figures: each value in its unit) and the
// trader context of a position alert on its line.
func TestUnitsAndTraderContext(t *testing.T) {
	var buf bytes.Buffer
	if _, err := newTest(&buf, false).Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for _, want := range notifiertest.Figures() {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	const ctx = "[mark 91234.5, entry 95000, liq 85570.1, liq distance 6.21%, leverage 5x, margin ratio 41%, equity 10234.12]"
	if !strings.Contains(lines[0], "liq_distance_pct 6.21% < 7%  "+ctx) {
		t.Errorf("first line lacks the comparison and context %s:\n%s", ctx, lines[0])
	}
	if !strings.Contains(lines[1], "margin_ratio 31% <= 50%") {
		t.Errorf("second line lacks the margin ratio in percent:\n%s", lines[1])
	}
}
