// Package notifiertest is the conformance suite every notifier runs against
// its real protocol peer (slacktest, a fake Telegram Bot API, a go-smtp
// server, a webhook receiver): success, permanent rejection, retryable
// failure, rate limiting with a retry hint, a peer that never answers, no
// secret in any error or log line, closing notices (liquidated, closed)
// that never read as a recovery, an infinite value, and, for a
// notifiers.Splitter, one message per part.
package notifiertest

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
)

// Outcome is how the peer answers the next deliveries.
type Outcome int

// Outcomes a Peer must be able to produce.
const (
	// OK accepts the message.
	OK Outcome = iota
	// Permanent rejects it for good (HTTP 400/403/404, SMTP 550, Telegram
	// "chat not found"): the notifier must say retry=false.
	Permanent
	// Retryable fails in a way that may heal (HTTP 500/502/503, SMTP 451).
	Retryable
	// RateLimited is HTTP 429 / Telegram error_code 429 with a retry hint
	// (Setup.RetryHint) that the notifier must report as a RetryAfterError.
	RateLimited
	// Hang accepts the connection and never answers.
	Hang
)

func (o Outcome) String() string {
	return [...]string{"OK", "Permanent", "Retryable", "RateLimited", "Hang"}[o]
}

// Peer is the test server a notifier under test talks to.
type Peer interface {
	// SetOutcome makes the peer answer every following delivery with o. For
	// RateLimited the peer's retry hint is retryAfter (whole seconds).
	SetOutcome(o Outcome, retryAfter time.Duration)
	// Delivered returns the text of every message the peer accepted, in
	// order, in whatever form the protocol carries it (JSON body, mail
	// body, …): the suite only searches it for the alerts' content.
	Delivered() []string
}

// Setup describes one notifier for the suite.
type Setup struct {
	// New returns a fresh notifier under test and its peer. timeout is the
	// per-attempt timeout the notifier must apply itself (a peer that hangs
	// must not hold Notify past it); logger is where it must log, if it logs.
	New func(t *testing.T, timeout time.Duration, logger *slog.Logger) (notifiers.Notifier, Peer)
	// Secrets must never appear in an error string or a log line (tokens,
	// passwords, webhook URLs, signing secrets).
	Secrets []string
	// NoRetryHint is set for protocols without a rate-limit hint (SMTP): a
	// RateLimited outcome is then only required to be retryable.
	NoRetryHint bool
	// Structured is set when the peer receives data, not prose (the
	// webhook's JSON body): for EdgeAlerts the suite then checks the
	// "kind", "reason" and null "value" fields instead of the wording.
	Structured bool
}

// Alerts returns two alerts of one evaluation, most severe first: a critical
// liquidation warning on a position and a resolved account alert.
func Alerts() []notifiers.Alert {
	t0 := time.Date(2026, 11, 28, 3, 14, 0, 0, time.UTC)
	return []notifiers.Alert{
		{
			ID: "a1b2c3d4e5f60718", Status: notifiers.Firing, Kind: notifiers.KindEscalated,
			Severity: notifiers.Critical, Rule: "liquidation-near", Account: "main",
			Symbol: "BTCUSDT", Side: "long", Metric: "liq_distance_pct",
			Value: 6.21, Threshold: 7, Op: "below", StartsAt: t0, At: t0.Add(2 * time.Minute),
			Summary: "BTCUSDT long is 6.2% from liquidation <now>",
			Runbook: "Add margin or cut size & breathe",
			Labels:  map[string]string{"desk": "alpha"},
			Context: map[string]float64{"mark_price": 91234.5, "entry_price": 95000, "liq_price": 85570.1, "liq_distance_pct": 6.21, "leverage": 5, "margin_ratio": 0.41, "equity": 10234.12},
		},
		{
			ID: "0f1e2d3c4b5a6978", Status: notifiers.Resolved, Kind: notifiers.KindResolved,
			Severity: notifiers.Warning, Rule: "margin-ratio", Account: "main",
			Metric: "margin_ratio", Value: 0.31, Threshold: 0.5, Op: "above",
			StartsAt: t0.Add(-time.Hour), At: t0.Add(2 * time.Minute),
			Summary: "account margin ratio is 0.31 (1.00 = liquidation)",
		},
	}
}

// Figures are what a channel for people must show of Alerts(): each
// alert's value and threshold, and the trader context of the position
// alert (mark, entry, liquidation price, distance, leverage, margin ratio,
// equity), each in its metric's unit (notifiers.FormatMetric), so that one
// value reads the same in every channel: "6.21%", "41%", "10234.12".
func Figures() []string {
	var out []string
	for _, a := range Alerts() {
		out = append(out, notifiers.FormatMetric(a.Metric, a.Value), notifiers.FormatMetric(a.Metric, a.Threshold))
	}
	c := Alerts()[0].Context
	for _, k := range []string{"mark_price", "entry_price", "liq_price", "liq_distance_pct", "leverage", "margin_ratio", "equity"} {
		out = append(out, notifiers.FormatMetric(k, c[k]))
	}
	return out
}

// EdgeAlerts returns alerts at the edges of the lifecycle, most severe
// first: the closing notice of a liquidated position, an account alert
// whose value is +Inf (equity at or below zero), and the closing notice of
// a position that was closed.
func EdgeAlerts() []notifiers.Alert {
	t0 := time.Date(2026, 11, 28, 3, 14, 0, 0, time.UTC)
	return []notifiers.Alert{
		{
			ID: "1122334455667788", Status: notifiers.Resolved, Kind: notifiers.KindClosed, Reason: notifiers.ReasonLiquidated,
			Severity: notifiers.Critical, Rule: "liquidation-near", Account: "main",
			Symbol: "ETHUSDT", Side: "long", Metric: "liq_distance_pct",
			Value: 0.4, Threshold: 7, Op: "below", StartsAt: t0, At: t0.Add(9 * time.Minute),
			Summary: "ETHUSDT long is 0.4% from liquidation",
		},
		{
			ID: "99aabbccddeeff00", Status: notifiers.Firing, Kind: notifiers.KindFiring,
			Severity: notifiers.Critical, Rule: "over-leveraged", Account: "main",
			Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20, Op: "above",
			StartsAt: t0.Add(9 * time.Minute), At: t0.Add(9 * time.Minute),
			Summary: "account main has no equity left",
			Context: map[string]float64{"equity": -12.5, "leverage": math.Inf(1)},
		},
		{
			ID: "8877665544332211", Status: notifiers.Resolved, Kind: notifiers.KindClosed, Reason: notifiers.ReasonClosed,
			Severity: notifiers.Warning, Rule: "funding-drain", Account: "main",
			Symbol: "SOLUSDT", Side: "short", Metric: "funding_apr_pct",
			Value: 45, Threshold: 30, Op: "above", StartsAt: t0.Add(-time.Hour), At: t0.Add(9 * time.Minute),
			Summary: "SOLUSDT short pays 45% APR in funding",
		},
	}
}

// RetryHint is the retry hint the suite asks a RateLimited peer to give.
const RetryHint = 5 * time.Second

// attemptTimeout is the per-attempt timeout the suite gives notifiers:
// short, so the Hang case is quick, but long enough for a TLS handshake on a
// loaded CI machine under the race detector.
const attemptTimeout = 2 * time.Second

// Run runs the conformance suite.
func Run(t *testing.T, s Setup) {
	t.Run("success", func(t *testing.T) {
		n, peer, logs := newUnderTest(t, s)
		retry, err := n.Notify(context.Background(), Alerts()...)
		if err != nil {
			t.Fatalf("Notify: retry=%v err=%v", retry, err)
		}
		got := peer.Delivered()
		if len(got) != 1 {
			t.Fatalf("peer got %d messages, want 1 for one call with two alerts", len(got))
		}
		for _, want := range []string{"BTCUSDT", "liquidation-near", "margin-ratio", "main"} {
			if !strings.Contains(got[0], want) {
				t.Errorf("message lacks %q:\n%s", want, got[0])
			}
		}
		// Most severe first.
		if i, j := strings.Index(got[0], "liquidation-near"), strings.Index(got[0], "margin-ratio"); i < 0 || j < 0 || i > j {
			t.Errorf("the critical alert does not come first:\n%s", got[0])
		}
		noSecrets(t, s, logs.String())
	})

	failures := []struct {
		outcome   Outcome
		wantRetry bool
	}{
		{Permanent, false},
		{Retryable, true},
		{RateLimited, true},
		{Hang, true},
	}
	for _, f := range failures {
		t.Run(f.outcome.String(), func(t *testing.T) {
			n, peer, logs := newUnderTest(t, s)
			peer.SetOutcome(f.outcome, RetryHint)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan struct{})
			var retry bool
			var err error
			go func() {
				defer close(done)
				retry, err = n.Notify(ctx, Alerts()...)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatalf("Notify did not return within 20 s against a %s peer (per-attempt timeout %s)", f.outcome, attemptTimeout)
			}
			if err == nil {
				t.Fatalf("Notify against a %s peer: no error", f.outcome)
			}
			if retry != f.wantRetry {
				t.Errorf("Notify against a %s peer: retry=%v, want %v (err: %v)", f.outcome, retry, f.wantRetry, err)
			}
			if f.outcome == RateLimited && !s.NoRetryHint {
				after, ok := notifiers.RetryAfter(err)
				if !ok || after != RetryHint {
					t.Errorf("rate limited: RetryAfter(err) = %v, %v; want %v (err: %v)", after, ok, RetryHint, err)
				}
			}
			if len(peer.Delivered()) != 0 {
				t.Errorf("a %s peer accepted a message", f.outcome)
			}
			noSecrets(t, s, err.Error())
			noSecrets(t, s, logs.String())

			// The same notifier recovers once the peer does.
			peer.SetOutcome(OK, 0)
			if retry, err := n.Notify(context.Background(), Alerts()...); err != nil {
				t.Errorf("after the peer recovered: retry=%v err=%v", retry, err)
			}
		})
	}

	t.Run("units and trader context", func(t *testing.T) {
		n, peer, _ := newUnderTest(t, s)
		if retry, err := n.Notify(context.Background(), Alerts()...); err != nil {
			t.Fatalf("Notify: retry=%v err=%v", retry, err)
		}
		got := strings.Join(peer.Delivered(), "\n")
		want := Figures()
		if s.Structured {
			// Machine output keeps raw numbers, the context included.
			want = []string{`"context":{`, `"mark_price":91234.5`, `"entry_price":95000`, `"liq_price":85570.1`, `"equity":10234.12`, `"margin_ratio":0.41`}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("message lacks %q:\n%s", w, got)
			}
		}
		// The margin ratio is a fraction shown as a percent: never "0.41".
		if !s.Structured && strings.Contains(got, "0.41") {
			t.Errorf("message shows the margin ratio as a bare fraction (0.41):\n%s", got)
		}
	})

	t.Run("closed, liquidated and infinite", func(t *testing.T) {
		n, peer, logs := newUnderTest(t, s)
		if retry, err := n.Notify(context.Background(), EdgeAlerts()...); err != nil {
			t.Fatalf("Notify: retry=%v err=%v", retry, err)
		}
		got := strings.Join(peer.Delivered(), "\n")
		if len(peer.Delivered()) == 0 {
			t.Fatal("nothing delivered")
		}
		for _, want := range []string{"ETHUSDT", "over-leveraged", "SOLUSDT"} {
			if !strings.Contains(got, want) {
				t.Errorf("message lacks %q:\n%s", want, got)
			}
		}
		// Go's own spelling of infinity means a renderer did not handle it.
		if strings.Contains(got, "+Inf") {
			t.Errorf("message shows +Inf:\n%s", got)
		}
		if s.Structured {
			for _, want := range []string{`"kind":"closed"`, `"reason":"liquidated"`, `"reason":"closed"`, `"value":null`} {
				if !strings.Contains(got, want) {
					t.Errorf("body lacks %s:\n%s", want, got)
				}
			}
		} else {
			lower := strings.ToLower(got)
			for _, want := range []string{"liquidated", "closed", "∞"} {
				if !strings.Contains(lower, want) {
					t.Errorf("message lacks %q:\n%s", want, got)
				}
			}
			if !strings.Contains(got, "LIQUIDATED") {
				t.Errorf("a liquidation is not spelled out loudly (LIQUIDATED):\n%s", got)
			}
			// None of these alerts recovered.
			for _, bad := range []string{"resolved", "recovered", "back to normal", "✅", "white_check_mark"} {
				if strings.Contains(lower, bad) {
					t.Errorf("message says %q about alerts that did not recover:\n%s", bad, got)
				}
			}
		}
		noSecrets(t, s, logs.String())
	})

	t.Run("split", func(t *testing.T) {
		n, peer, _ := newUnderTest(t, s)
		sp, ok := n.(notifiers.Splitter)
		if !ok {
			t.Skip("not a Splitter")
		}
		alerts := append(Alerts(), EdgeAlerts()...)
		parts := sp.Split(alerts)
		var joined []notifiers.Alert
		for i, p := range parts {
			if len(p) == 0 {
				t.Fatalf("part %d is empty", i+1)
			}
			joined = append(joined, p...)
			before := len(peer.Delivered())
			if retry, err := n.Notify(context.Background(), p...); err != nil {
				t.Fatalf("part %d: retry=%v err=%v", i+1, retry, err)
			}
			if got := len(peer.Delivered()) - before; got != 1 {
				t.Errorf("part %d went out as %d messages, want 1", i+1, got)
			}
		}
		if len(joined) != len(alerts) {
			t.Fatalf("the parts hold %d alerts, want %d", len(joined), len(alerts))
		}
		for i := range alerts {
			if joined[i].ID != alerts[i].ID || joined[i].Kind != alerts[i].Kind {
				t.Errorf("alert %d of the parts is %s/%s, want %s/%s", i, joined[i].ID, joined[i].Kind, alerts[i].ID, alerts[i].Kind)
			}
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		n, _, _ := newUnderTest(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		retry, err := n.Notify(ctx, Alerts()...)
		if err == nil || !retry {
			t.Errorf("Notify with a cancelled context: retry=%v err=%v; want a retryable error", retry, err)
		}
	})
}

func newUnderTest(t *testing.T, s Setup) (notifiers.Notifier, Peer, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, peer := s.New(t, attemptTimeout, logger)
	return n, peer, logs
}

func noSecrets(t *testing.T, s Setup, text string) {
	t.Helper()
	for _, secret := range s.Secrets {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("a secret leaked into %q", text)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
