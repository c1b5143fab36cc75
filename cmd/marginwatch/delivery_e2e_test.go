package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// receiver is a webhook endpoint whose answer the test switches.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	status   int    // answer; 200 accepts
	header   string // Retry-After to send with a non-200
	requests []time.Time
	accepted []webhookAlert // alerts of accepted deliveries, in order
	ids      []string       // webhook-id of accepted deliveries
}

type webhookAlert struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
	Severity string `json:"severity"`
	Rule     string `json:"rule"`
	Symbol   string `json:"symbol"`
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests = append(r.requests, time.Now())
		if r.status != http.StatusOK {
			if r.header != "" {
				w.Header().Set("Retry-After", r.header)
			}
			w.WriteHeader(r.status)
			return
		}
		var p struct {
			Alerts []webhookAlert `json:"alerts"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("webhook body is not JSON: %v", err)
		}
		r.accepted = append(r.accepted, p.Alerts...)
		r.ids = append(r.ids, req.Header.Get("webhook-id"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) set(status int, retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.header = status, retryAfter
}

func (r *receiver) snapshot() (reqs []time.Time, accepted []webhookAlert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.requests...), append([]webhookAlert(nil), r.accepted...)
}

// count counts accepted alerts of rule with kind.
func countAccepted(as []webhookAlert, rule, kind string) int {
	n := 0
	for _, a := range as {
		if a.Rule == rule && a.Kind == kind {
			n++
		}
	}
	return n
}

// waitUntil polls cond every 100 ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func webhookConfig(t *testing.T, url string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := strings.Replace(e2eConfig, "  - {name: term, type: console}\n",
		fmt.Sprintf("  - {name: term, type: console}\n  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}\n", url), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestWebhookOutage: the receiver answers 500 for 20 s during an incident;
// every notice arrives once, after it recovers.
func TestWebhookOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the binary for about 40 s")
	}
	t.Parallel()
	r := newReceiver(t)
	r.set(http.StatusInternalServerError, "")
	d := startDaemon(t, webhookConfig(t, r.srv.URL))
	d.waitFor(t, 30*time.Second, "liquidation-near", "firing") // on the console meanwhile
	outageEnd := time.Now().Add(20 * time.Second)
	time.Sleep(time.Until(outageEnd))
	r.set(http.StatusOK, "")

	waitUntil(t, 90*time.Second, "the liquidation and stop-loss alerts to reach the webhook", func() bool {
		_, acc := r.snapshot()
		return countAccepted(acc, "liquidation-near", "firing") >= 1 && countAccepted(acc, "missing-stop-loss", "firing") >= 1
	})
	time.Sleep(3 * time.Second) // room for a wrong second delivery
	reqs, acc := r.snapshot()
	if countAccepted(acc, "liquidation-near", "firing") != 1 || countAccepted(acc, "missing-stop-loss", "firing") != 1 {
		t.Errorf("after the outage, each firing notice must arrive exactly once; got %+v", acc)
	}
	failed := 0
	for _, at := range reqs {
		if at.Before(outageEnd) {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("the daemon never tried the webhook during the outage")
	}
	if len(reqs) > 30 {
		t.Errorf("%d requests: the daemon hammered a failing webhook instead of backing off", len(reqs))
	}
}

// TestWebhookRetryAfter: a 429 with Retry-After: 5 holds the next attempt
// back at least 5 s.
func TestWebhookRetryAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	r := newReceiver(t)
	r.set(http.StatusTooManyRequests, "5")
	startDaemon(t, webhookConfig(t, r.srv.URL))
	waitUntil(t, 20*time.Second, "a first webhook attempt", func() bool {
		reqs, _ := r.snapshot()
		return len(reqs) >= 1
	})
	r.set(http.StatusOK, "")
	waitUntil(t, 30*time.Second, "the retry", func() bool {
		reqs, _ := r.snapshot()
		return len(reqs) >= 2
	})
	reqs, _ := r.snapshot()
	if gap := reqs[1].Sub(reqs[0]); gap < 5*time.Second {
		t.Errorf("retry came %s after a 429 with Retry-After: 5", gap)
	}
}

// TestPendingSurvivesStop: notifications still in the outbox when the
// daemon stops during a notifier outage are delivered exactly once after the
// restart, whether it was killed with SIGKILL or stopped with SIGTERM (which
// must exit within 10 s even though the notifier keeps failing).
func TestPendingSurvivesStop(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t)
			r.set(http.StatusServiceUnavailable, "")
			cfg := webhookConfig(t, r.srv.URL)
			first := startDaemon(t, cfg)
			first.waitFor(t, 20*time.Second, "missing-stop-loss", "firing")
			waitUntil(t, 20*time.Second, "a failed webhook attempt", func() bool {
				reqs, _ := r.snapshot()
				return len(reqs) >= 1
			})
			start := time.Now()
			if err := first.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if sig == syscall.SIGTERM {
				// Within 10 s by design (watcher's TestShutdownCutsHungSendShort
				// times it exactly); generous here for a loaded machine.
				waitExit(t, first, 20*time.Second)
				if took := time.Since(start); took > 18*time.Second {
					t.Errorf("SIGTERM during an outage took %s to exit, want within 10 s", took)
				}
			} else {
				_ = first.cmd.Wait()
			}

			r.set(http.StatusOK, "")
			startDaemon(t, cfg)
			waitUntil(t, 60*time.Second, "the pending stop-loss alert after the restart", func() bool {
				_, acc := r.snapshot()
				return countAccepted(acc, "missing-stop-loss", "firing") >= 1
			})
			time.Sleep(3 * time.Second)
			if _, acc := r.snapshot(); countAccepted(acc, "missing-stop-loss", "firing") != 1 {
				t.Errorf("missing-stop-loss delivered %d times after the restart, want exactly 1: %+v", countAccepted(acc, "missing-stop-loss", "firing"), acc)
			}
		})
	}
}
