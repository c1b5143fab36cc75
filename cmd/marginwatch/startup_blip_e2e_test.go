package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// TestStartWhileExchangeUnreachable: a daemon started while the exchange
// refuses connections stays up, delivers what the previous run left in the
// outbox meanwhile, raises data-stale at stale_after and resolves it when
// the exchange answers.
func TestStartWhileExchangeUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the binary for about a minute")
	}
	t.Parallel()
	fake := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	r := newReceiver(t)
	r.set(http.StatusServiceUnavailable, "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	write := func(endpoint string) {
		text := fmt.Sprintf(`state_dir: state
listen: ""
defaults: {poll_interval: 1s, stale_after: 10s}
accounts:
  - {name: main, exchange: binance-usdm, endpoint: %q, api_key: %s, api_secret: %s}
notifiers:
  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
`, endpoint, binancetest.Key, binancetest.Secret, r.srv.URL)
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A first run queues the liquidation alert while the receiver is down,
	// and is killed.
	write(fake.URL)
	first := startDaemon(t, cfg)
	waitUntil(t, 30*time.Second, "a failed webhook attempt", func() bool {
		reqs, _ := r.snapshot()
		return len(reqs) >= 1
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()

	// The second starts with the exchange refusing connections.
	exAddr := freeAddr(t)
	write("http://" + exAddr)
	r.set(http.StatusOK, "")
	started := time.Now()
	second := startDaemon(t, cfg)
	exited := make(chan struct{})
	go func() {
		<-second.done // stdout closes when the process ends
		close(exited)
	}()
	waitUntil(t, 30*time.Second, "the previous run's alert to be delivered", func() bool {
		_, acc := r.snapshot()
		return countAccepted(acc, "liquidation-near", "firing") >= 1
	})
	waitUntil(t, 60*time.Second, "data-stale", func() bool {
		_, acc := r.snapshot()
		return countAccepted(acc, "data-stale", "firing") >= 1
	})
	if wait := 30*time.Second - time.Since(started); wait > 0 {
		time.Sleep(wait)
	}
	select {
	case <-exited:
		t.Fatalf("the daemon exited while the exchange was unreachable; stderr:\n%s", second.errb.String())
	default:
	}

	// The exchange comes back on the address the daemon keeps trying.
	target, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", exAddr)
	if err != nil {
		t.Skipf("the exchange's address was taken meanwhile: %v", err)
	}
	back := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	back.Listener.Close()
	back.Listener = ln
	back.Start()
	defer back.Close()
	waitUntil(t, 90*time.Second, "data-stale to resolve", func() bool {
		_, acc := r.snapshot()
		return countAccepted(acc, "data-stale", "resolved") >= 1
	})
	if _, acc := r.snapshot(); countAccepted(acc, "liquidation-near", "firing") != 1 {
		t.Errorf("the previous run's alert arrived %d times, want 1", countAccepted(acc, "liquidation-near", "firing"))
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, second, 15*time.Second)
}
