package slack

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/store"
)

func botConfig(apiURL string, timeout time.Duration) config.Notifier {
	return config.Notifier{
		Name: "ops", Type: "slack", Token: config.Secret(testToken),
		Channel: "C0123456789", APIURL: apiURL, Timeout: timeout,
	}
}

func webhookConfig(hook string, timeout time.Duration) config.Notifier {
	return config.Notifier{Name: "ops", Type: "slack", WebhookURL: config.Secret(hook), Timeout: timeout}
}

func TestConformanceBot(t *testing.T) {
	notifiertest.Run(t, notifiertest.Setup{
		New: func(t *testing.T, timeout time.Duration, logger *slog.Logger) (notifiers.Notifier, notifiertest.Peer) {
			p := newBotPeer(t)
			n, err := New(botConfig(p.front.URL, timeout), Options{Logger: logger, Threads: &notifiertest.Threads{}})
			if err != nil {
				t.Fatal(err)
			}
			return n, p
		},
		Secrets: []string{testToken},
	})
}

func TestConformanceWebhook(t *testing.T) {
	var hooks []string
	var mu sync.Mutex
	notifiertest.Run(t, notifiertest.Setup{
		New: func(t *testing.T, timeout time.Duration, logger *slog.Logger) (notifiers.Notifier, notifiertest.Peer) {
			p := newWebhookPeer(t)
			mu.Lock()
			hooks = append(hooks, p.url())
			mu.Unlock()
			n, err := New(webhookConfig(p.url(), timeout), Options{Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			return n, p
		},
		// The URL's path is the secret; each peer has its own host:port,
		// so the path alone is checked (it covers every full URL).
		Secrets: []string{testWebhookPath, strings.TrimPrefix(testWebhookPath, "/services/")},
	})
	if len(hooks) == 0 {
		t.Fatal("the suite built no notifier")
	}
}

var t0 = time.Date(2026, 11, 28, 3, 14, 0, 0, time.UTC)

// incident returns a notification of incident id with the given kind.
func incident(id string, kind notifiers.Kind, sev notifiers.Severity) notifiers.Alert {
	a := notifiers.Alert{
		ID: id, Status: notifiers.Firing, Kind: kind, Severity: sev,
		Rule: "liquidation-near", Account: "main", Symbol: "BTCUSDT", Side: "long",
		Metric: "liq_distance_pct", Value: 6.21, Threshold: 7, Op: "below",
		StartsAt: t0, At: t0.Add(time.Minute), Summary: "BTCUSDT long is 6.2% from liquidation",
	}
	switch kind {
	case notifiers.KindResolved:
		a.Status, a.Value = notifiers.Resolved, 18
	case notifiers.KindClosed:
		a.Status = notifiers.Resolved
	}
	return a
}

// closing is the closing notice of incident id for reason.
func closing(id, reason string) notifiers.Alert {
	a := incident(id, notifiers.KindClosed, notifiers.Critical)
	a.Reason = reason
	return a
}

// TestThreading sends a sequence of messages through a bot-mode notifier
// whose threads live in a bbolt store, restarting (new store handle, new
// notifier) where a step says so.
func TestThreading(t *testing.T) {
	p := newBotPeer(t)
	dir := filepath.Join(t.TempDir(), "state")
	open := func() (*store.Store, *Notifier) {
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		n, err := New(botConfig(p.front.URL, 5*time.Second), Options{Threads: st})
		if err != nil {
			t.Fatal(err)
		}
		return st, n
	}
	st, n := open()
	defer func() { _ = st.Close() }()

	// Post i (0-based) gets ts "<secs>.00000<i+1>"; wantThread names the
	// post whose ts the message must reply to (-1: top level).
	steps := []struct {
		name          string
		restart       bool
		alerts        []notifiers.Alert
		wantThread    int
		wantBroadcast bool
	}{
		{"A fires", false, []notifiers.Alert{incident("A", notifiers.KindFiring, notifiers.Warning)}, -1, false},
		{"A repeats in its thread", false, []notifiers.Alert{incident("A", notifiers.KindRepeat, notifiers.Warning)}, 0, false},
		{"A escalates, broadcast", false, []notifiers.Alert{incident("A", notifiers.KindEscalated, notifiers.Critical)}, 0, true},
		{"after a restart A's critical repeat still threads", true, []notifiers.Alert{incident("A", notifiers.KindRepeat, notifiers.Critical)}, 0, true},
		{"A eases, quietly", false, []notifiers.Alert{incident("A", notifiers.KindEased, notifiers.Warning)}, 0, false},
		{"B fires alone", false, []notifiers.Alert{incident("B", notifiers.KindFiring, notifiers.Warning)}, -1, false},
		{"A and B: two threads, top level", false, []notifiers.Alert{
			incident("A", notifiers.KindRepeat, notifiers.Warning), incident("B", notifiers.KindRepeat, notifiers.Warning)}, -1, false},
		{"B and new C: top level, C takes this ts", false, []notifiers.Alert{
			incident("B", notifiers.KindRepeat, notifiers.Warning), incident("C", notifiers.KindFiring, notifiers.Warning)}, -1, false},
		{"C resolves in its thread", true, []notifiers.Alert{incident("C", notifiers.KindResolved, notifiers.Warning)}, 7, false},
		{"B keeps its own thread", false, []notifiers.Alert{incident("B", notifiers.KindResolved, notifiers.Warning)}, 5, false},
		{"D and E fire together", false, []notifiers.Alert{
			incident("D", notifiers.KindFiring, notifiers.Critical), incident("E", notifiers.KindFiring, notifiers.Warning)}, -1, false},
		{"D and E share that thread", false, []notifiers.Alert{
			incident("D", notifiers.KindRepeat, notifiers.Warning), incident("E", notifiers.KindResolved, notifiers.Warning)}, 10, false},
		{"a test is never threaded", false, []notifiers.Alert{incident("A", notifiers.KindTest, notifiers.Info)}, -1, false},
		{"A resolves in its thread after the test", true, []notifiers.Alert{incident("A", notifiers.KindResolved, notifiers.Critical)}, 0, false},
		{"F fires", false, []notifiers.Alert{incident("F", notifiers.KindFiring, notifiers.Critical)}, -1, false},
		{"F is liquidated: in its thread, broadcast", false, []notifiers.Alert{closing("F", notifiers.ReasonLiquidated)}, 14, true},
		{"G fires", false, []notifiers.Alert{incident("G", notifiers.KindFiring, notifiers.Critical)}, -1, false},
		{"G closes: in its thread, quietly", true, []notifiers.Alert{closing("G", notifiers.ReasonClosed)}, 16, false},
	}
	for i, s := range steps {
		if s.restart {
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st, n = open()
		}
		if retry, err := n.Notify(context.Background(), s.alerts...); err != nil {
			t.Fatalf("step %d %s: Notify: retry=%v err=%v", i, s.name, retry, err)
		}
		posts := p.accepted()
		if len(posts) != i+1 {
			t.Fatalf("step %d %s: peer has %d posts, want %d", i, s.name, len(posts), i+1)
		}
		got := posts[i]
		want := ""
		if s.wantThread >= 0 {
			want = posts[s.wantThread].TS
		}
		if got.ThreadTS != want {
			t.Errorf("step %d %s: thread_ts %q, want %q", i, s.name, got.ThreadTS, want)
		}
		if gotB := got.Broadcast == "true"; gotB != s.wantBroadcast {
			t.Errorf("step %d %s: reply_broadcast %v, want %v", i, s.name, gotB, s.wantBroadcast)
		}
		if got.Channel != "C0123456789" {
			t.Errorf("step %d %s: channel %q", i, s.name, got.Channel)
		}
	}

	// The test alert's incident "A" kept its real thread.
	posts := p.accepted()
	for id, post := range map[string]int{"A": 0, "B": 5, "C": 7, "D": 10, "E": 10} {
		if ref, ok := st.Thread("ops", id); !ok || ref != posts[post].TS {
			t.Errorf("stored thread of %s = %q, %v; want %q", id, ref, ok, posts[post].TS)
		}
	}
}

func TestLostThreadStartsANewOne(t *testing.T) {
	p := newBotPeer(t)
	threads := &notifiertest.Threads{}
	_ = threads.SetThread("ops", "A", "1600000000.000001")
	var logs bytes.Buffer
	n, err := New(botConfig(p.front.URL, 5*time.Second), Options{Threads: threads, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p.failNext("thread_not_found", 1)
	if retry, err := n.Notify(context.Background(), incident("A", notifiers.KindRepeat, notifiers.Warning)); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	posts := p.accepted()
	if got := p.received(); got != 2 || len(posts) != 1 || posts[0].ThreadTS != "" {
		t.Fatalf("peer received %d posts and accepted %+v; want a refused threaded post, then one top-level post", got, posts)
	}
	if ref, _ := threads.Thread("ops", "A"); ref != posts[0].TS {
		t.Errorf("thread of A = %q, want the new message %q", ref, posts[0].TS)
	}
	if !strings.Contains(logs.String(), "thread no longer exists") {
		t.Errorf("no log line about the lost thread:\n%s", logs.String())
	}
}

func TestThreadStoreFailureDoesNotFailDelivery(t *testing.T) {
	p := newBotPeer(t)
	threads := &notifiertest.Threads{}
	threads.Err = errors.New("disk full")
	var logs bytes.Buffer
	n, err := New(botConfig(p.front.URL, 5*time.Second), Options{Threads: threads, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), incident("A", notifiers.KindFiring, notifiers.Critical)); err != nil {
		t.Fatalf("Notify: retry=%v err=%v; a delivered message must not be reported as failed", retry, err)
	}
	if len(p.accepted()) != 1 {
		t.Fatalf("peer got %d posts, want 1", len(p.accepted()))
	}
	if !strings.Contains(logs.String(), "disk full") || !strings.Contains(logs.String(), "notifier=ops") {
		t.Errorf("the store failure was not logged:\n%s", logs.String())
	}
}

// TestWebhookPayload pins the exact JSON a webhook receives for the suite's
// two alerts: critical position alert first, then the resolved account alert.
func TestWebhookPayload(t *testing.T) {
	p := newWebhookPeer(t)
	n, err := New(webhookConfig(p.url(), 5*time.Second), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	got := p.Delivered()
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	const want = `{"text":":rotating_light: CRITICAL escalated: liquidation-near · main BTCUSDT long · liq_distance_pct 6.21% \u0026lt; 7% (+1 more)",` +
		`"attachments":[` +
		`{"color":"#d32f2f","fallback":"CRITICAL escalated: liquidation-near · main BTCUSDT long · liq_distance_pct 6.21% \u0026lt; 7%","blocks":[` +
		`{"type":"section","text":{"type":"mrkdwn","text":":rotating_light: *CRITICAL* · escalated · *liquidation-near*\nAccount *main* · *BTCUSDT* long\n` +
		"`liq_distance_pct` is *6.21%*, below the critical threshold of 7%\\nBTCUSDT long is 6.2% from liquidation \\u0026lt;now\\u0026gt;\"}}," +
		`{"type":"section","fields":[` +
		`{"type":"mrkdwn","text":"*Mark price*\n91234.5"},` +
		`{"type":"mrkdwn","text":"*Entry price*\n95000"},` +
		`{"type":"mrkdwn","text":"*Liq. price*\n85570.1"},` +
		`{"type":"mrkdwn","text":"*Liq. distance*\n6.21%"},` +
		`{"type":"mrkdwn","text":"*Leverage*\n5x"},` +
		`{"type":"mrkdwn","text":"*Margin ratio*\n41%"},` +
		`{"type":"mrkdwn","text":"*Equity*\n10234.12"}]},` +
		`{"type":"section","text":{"type":"mrkdwn","text":":book: *Runbook:* Add margin or cut size \u0026amp; breathe"}},` +
		`{"type":"context","elements":[{"type":"mrkdwn","text":"Started \u003c!date^1795835640^{date_short_pretty} {time}|2026-11-28 03:14 UTC\u003e · desk=alpha · incident a1b2c3d4e5f60718"}]}]},` +
		`{"color":"#2e7d32","fallback":"RESOLVED (was warning): margin-ratio · main · margin_ratio 31% ≤ 50%","blocks":[` +
		`{"type":"section","text":{"type":"mrkdwn","text":":white_check_mark: *RESOLVED* · was warning · *margin-ratio*\nAccount *main*\n` +
		"`margin_ratio` is now *31%*, no longer above 50%\\naccount margin ratio is 0.31 (1.00 = liquidation)\"}}," +
		`{"type":"context","elements":[{"type":"mrkdwn","text":"Started \u003c!date^1795832040^{date_short_pretty} {time}|2026-11-28 02:14 UTC\u003e · resolved \u003c!date^1795835760^{date_short_pretty} {time}|2026-11-28 03:16 UTC\u003e · incident 0f1e2d3c4b5a6978"}]}]}],` +
		`"replace_original":false,"delete_original":false,"unfurl_links":false,"unfurl_media":false}`
	if got[0] != want {
		t.Errorf("webhook body:\n got %s\nwant %s", got[0], want)
	}
}
