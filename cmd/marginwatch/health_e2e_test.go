package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pinger is a heartbeat receiver that counts pings per path.
type pinger struct {
	srv   *httptest.Server
	pings map[string]*atomic.Int64
}

func newPinger(t *testing.T, paths ...string) *pinger {
	p := &pinger{pings: map[string]*atomic.Int64{}}
	for _, path := range paths {
		p.pings[path] = &atomic.Int64{}
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := p.pings[r.URL.Path]; n != nil {
			n.Add(1)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestOnlyNotifierRevoked runs the real binary with one notifier, a webhook
// whose receiver answers 401 (a revoked token): /healthz turns 503 naming
// it and the heartbeat stops; when the receiver accepts again, both
// recover without waiting for a new alert.
func TestOnlyNotifierRevoked(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	r := newReceiver(t)
	r.set(http.StatusUnauthorized, "")
	hb := newPinger(t, "/ping/tok")
	addr := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	text := strings.Replace(e2eConfig, "  - {name: term, type: console}\n",
		fmt.Sprintf("  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}\n", r.srv.URL), 1)
	text = strings.Replace(text, `listen: ""`, fmt.Sprintf("listen: %s\nheartbeat_url: %s/ping/tok", addr, hb.srv.URL), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	base := "http://" + addr
	var body string
	waitUntil(t, 30*time.Second, "/healthz to name the refusing notifier", func() bool {
		code, b, _ := get(base + "/healthz")
		body = b
		return code == http.StatusServiceUnavailable && strings.Contains(b, "notifier hook")
	})
	if !strings.Contains(body, "every notifier is failing") {
		t.Errorf("/healthz = %q, want it to say every notifier is failing", body)
	}
	// The heartbeat goes quiet (a ping in flight may still land).
	time.Sleep(3 * time.Second)
	quiet := hb.pings["/ping/tok"].Load()
	time.Sleep(5 * time.Second)
	if n := hb.pings["/ping/tok"].Load() - quiet; n != 0 {
		t.Errorf("%d heartbeat pings while the only notifier refused", n)
	}

	r.set(http.StatusOK, "")
	waitUntil(t, 90*time.Second, "/healthz to recover", func() bool {
		code, _, _ := get(base + "/healthz")
		return code == http.StatusOK
	})
	waitUntil(t, 30*time.Second, "heartbeats to resume", func() bool { return hb.pings["/ping/tok"].Load() > quiet })
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
}

// TestReloadMovesListenAndHeartbeat: a reload that changes listen and
// heartbeat_url moves the admin server and the pings, without a restart.
func TestReloadMovesListenAndHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	hb := newPinger(t, "/ping/old", "/ping/new")
	before, after := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	write := func(addr, path string) {
		text := strings.Replace(e2eConfig, `listen: ""`, fmt.Sprintf("listen: %s\nheartbeat_url: %s%s", addr, hb.srv.URL, path), 1)
		text = strings.Replace(text, "scenario: crash", "scenario: calm", 1)
		writeAtomically(t, cfg, text)
	}
	write(before, "/ping/old")
	d := startDaemon(t, cfg)
	waitUntil(t, 20*time.Second, "/healthz on the first address", func() bool {
		code, _, _ := get("http://" + before + "/healthz")
		return code == http.StatusOK
	})
	waitUntil(t, 20*time.Second, "a ping on the first URL", func() bool { return hb.pings["/ping/old"].Load() > 0 })

	write(after, "/ping/new")
	waitUntil(t, 30*time.Second, "/healthz on the new address", func() bool {
		code, _, _ := get("http://" + after + "/healthz")
		return code == http.StatusOK
	})
	waitUntil(t, 20*time.Second, "a ping on the new URL", func() bool { return hb.pings["/ping/new"].Load() > 0 })
	waitUntil(t, 20*time.Second, "the old address to close", func() bool {
		_, _, err := get("http://" + before + "/healthz")
		return err != nil
	})
	old := hb.pings["/ping/old"].Load()
	time.Sleep(3 * time.Second)
	if n := hb.pings["/ping/old"].Load() - old; n > 0 {
		t.Errorf("%d pings on the old heartbeat_url after the reload", n)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
}
