package main

import (
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// freeAddr returns a loopback address nobody listens on right now.
//
// The port comes from below the kernel's ephemeral range (32768 and up on
// Linux): a port the kernel handed out for 127.0.0.1:0 and that was closed
// again is soon reused as some parallel test's client-side port, and the
// daemon then fails to bind it (seen under load as "the admin server
// failed to start").
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken: another one
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port in 20000–31999 on 127.0.0.1")
	return ""
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestExchangeSilence runs the real binary against the Binance fake: when
// the exchange goes silent, data-stale fires within stale_after plus one poll
// and /healthz turns 503; /metrics parses with the Prometheus text parser;
// when data returns, data-stale resolves and /healthz is 200 again.
func TestExchangeSilence(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	var silent atomic.Bool
	for _, path := range []string{"/fapi/v2/account", "/fapi/v3/account"} {
		srv.Handle(path, func(w http.ResponseWriter, r *http.Request) {
			if silent.Load() {
				<-r.Context().Done() // the exchange stops answering
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, srv.Body(path))
		})
	}
	var pings atomic.Int64
	hbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping/s3cr3t-token" {
			pings.Add(1)
		}
	}))
	defer hbSrv.Close()
	addr := freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: %s
heartbeat_url: %s/ping/s3cr3t-token
defaults: {poll_interval: 1s, stale_after: 3s}
accounts:
  - {name: main, exchange: binance-usdm, endpoint: %q, api_key: %s, api_secret: %s}
notifiers:
  - {name: term, type: console}
`, addr, hbSrv.URL, srv.URL, binancetest.Key, binancetest.Secret)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	base := "http://" + addr
	waitUntil(t, 20*time.Second, "/healthz to answer 200", func() bool {
		code, _, _ := get(base + "/healthz")
		return code == http.StatusOK
	})

	waitUntil(t, 10*time.Second, "a heartbeat ping after a good cycle", func() bool { return pings.Load() > 0 })

	silencedAt := time.Now()
	silent.Store(true)
	d.waitFor(t, 20*time.Second, "CRITICAL", "firing", "data-stale")
	blindPings := pings.Load()
	// stale_after 3 s plus one 1 s poll (about 4 s here); generous, for a
	// loaded machine running the race detector (the exact timing is
	// watcher's TestDataStaleFiresAtStaleAfter).
	if took := time.Since(silencedAt); took > 15*time.Second {
		t.Errorf("data-stale took %s after the exchange went silent, want within stale_after + one poll", took)
	}
	code, body, err := get(base + "/healthz")
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "account main: no fresh data") {
		t.Errorf("/healthz while blind = %d %q %v, want 503 naming the account", code, body, err)
	}

	code, body, err = get(base + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics = %d %v", code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{"marginwatch_poll_duration_seconds", "marginwatch_polls_total", "marginwatch_last_success_timestamp_seconds",
		"marginwatch_exchange_weight_used", "marginwatch_alerts", "marginwatch_notifications_sent_total", "marginwatch_outbox_depth",
		"marginwatch_config_last_reload_successful"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	firing := 0.0
	for _, m := range families["marginwatch_alerts"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["rule"] == "data-stale" && labels["state"] == "firing" {
			firing += m.GetGauge().GetValue()
		}
	}
	if firing != 1 {
		t.Errorf("marginwatch_alerts{rule=data-stale,state=firing} = %v, want 1", firing)
	}

	time.Sleep(1500 * time.Millisecond)
	if n := pings.Load() - blindPings; n != 0 {
		t.Errorf("%d heartbeat pings while the exchange was silent: the dead man's switch must go quiet", n)
	}

	silent.Store(false)
	d.waitFor(t, 20*time.Second, "resolved", "data-stale")
	waitUntil(t, 10*time.Second, "/healthz to recover", func() bool {
		code, _, _ := get(base + "/healthz")
		return code == http.StatusOK
	})
	waitUntil(t, 10*time.Second, "heartbeats to resume", func() bool { return pings.Load() > blindPings })
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
	if strings.Contains(d.errb.String(), "s3cr3t-token") {
		t.Errorf("the heartbeat URL's token reached the log")
	}
}
