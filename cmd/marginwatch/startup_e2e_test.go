package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// TestSighupDuringStartup: a SIGHUP (`systemctl reload`, a config
// management run) while the daemon is still checking its API key neither
// kills it (SIGHUP's default action) nor is lost: the daemon starts and then
// reloads.
func TestSighupDuringStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	target, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	checking := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/apiRestrictions") {
			select {
			case checking <- struct{}{}:
			default:
			}
			time.Sleep(2 * time.Second) // a slow key check
		}
		proxy.ServeHTTP(w, r)
	}))
	defer slow.Close()

	d := startDaemon(t, binanceConfig(t, "binance-usdm", slow.URL, ""))
	select {
	case <-checking:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not check its key")
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // the check ends, the daemon starts and reloads
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
	if !strings.Contains(d.errb.String(), "configuration reloaded") {
		t.Errorf("the reload asked for during start-up did not happen:\n%s", d.errb.String())
	}
}
