package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
)

func bybitConfig(t *testing.T, url, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: ""
accounts:
  - name: bb
    exchange: bybit
    endpoint: %s
    api_key: %s
    api_secret: %s
    poll_interval: 1s
%snotifiers:
  - {name: term, type: console}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
  - name: missing-stop-loss
    metric: has_stop_loss
    below: {warning: 1}
`, url, bybittest.Key, bybittest.Secret, extra)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStatusAgainstBybitFake: `status -json` against the fake's hedge-mode
// account equals the hand-computed values (see bybittest.Hedge).
func TestStatusAgainstBybitFake(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	code, out, errOut := runCLI("status", "-config", bybitConfig(t, srv.URL, ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	a := doc.Accounts[0]
	checkMetrics(t, "account", a.Metrics, map[string]float64{
		"margin_ratio": 123.456 / 10200, "equity": 10250, "available_balance": 7000, "unrealized_pnl": 200,
		"effective_leverage": (30500.0 + 12200 + 15500) / 10250, "net_exposure_ratio": (30500.0 - 12200 - 15500) / 10250,
		"drawdown_pct": metricOf(a.Metrics, "drawdown_pct"), "funding_next_cost": 3.05 - 1.22 + 3.1, "funding_paid_24h": 0.003676, "position_count": 3,
	})
	if len(a.Positions) != 3 {
		t.Fatalf("%d positions", len(a.Positions))
	}
}

// TestBybitLiquidationPath: the BTCUSDT long sinks towards its liquidation
// price (warning, then critical), positions without an effective stop raise
// missing-stop-loss, and both resolve when the mark recovers and the stops
// come back.
func TestBybitLiquidationPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	srv.SetStopOrders() // no conditional stops: the long and the ETH short are unprotected
	d := startDaemon(t, bybitConfig(t, srv.URL, ""))
	d.waitFor(t, 60*time.Second, "missing-stop-loss", "ETHUSDC", "firing")
	srv.SetMark("BTCUSDT", "45000") // (45000−40000)/45000 = 11.1%
	d.waitFor(t, 30*time.Second, "liquidation-near", "BTCUSDT", "WARNING")
	srv.SetMark("BTCUSDT", "42000") // 4.8%
	d.waitFor(t, 30*time.Second, "liquidation-near", "BTCUSDT", "CRITICAL")
	srv.SetMark("BTCUSDT", "61000")
	srv.Hedge() // stops back
	d.waitFor(t, 30*time.Second, "liquidation-near", "BTCUSDT", "resolved")
	d.waitFor(t, 30*time.Second, "missing-stop-loss", "resolved")
}

// TestRunRefusesBybitWithdrawKey: a key with the Wallet permission Withdraw
// stops `run` with exit 78, naming it, even with allow_trading_key.
func TestRunRefusesBybitWithdrawKey(t *testing.T) {
	for _, extra := range []string{"", "    allow_trading_key: true\n"} {
		srv := bybittest.NewServer(t, bybittest.Options{})
		srv.Hedge()
		srv.SetKey(1, map[string][]string{"Wallet": {"AccountTransfer", "Withdraw"}})
		code, _, errOut := runCLI("run", "-config", bybitConfig(t, srv.URL, extra))
		if code != exitConfig {
			t.Fatalf("exit %d, want 78; stderr:\n%s", code, errOut)
		}
		if !strings.Contains(errOut, "Withdraw") {
			t.Errorf("stderr does not name the permission:\n%s", errOut)
		}
		if strings.Contains(errOut, bybittest.Secret) || strings.Contains(errOut, bybittest.Key) {
			t.Errorf("a key or secret leaked:\n%s", errOut)
		}
	}
}

// TestBybitStreamE2E: with stream: true a mark pushed on the fake's public
// websocket raises the warning without a REST read (poll_interval is long);
// with the websockets killed the daemon says so and polls: a mark changed
// only over REST raises the critical.
func TestBybitStreamE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	path := filepath.Join(t.TempDir(), "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: ""
accounts:
  - name: bb
    exchange: bybit
    endpoint: %s
    stream_endpoint: %s
    stream: true
    reconcile_interval: 1h
    api_key: %s
    api_secret: %s
    poll_interval: 20s
    stale_after: 10m
notifiers:
  - {name: term, type: console}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
`, srv.URL, ws, bybittest.Key, bybittest.Secret)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d, logs := startLoggedDaemon(t, path)
	waitLog(t, logs, 60*time.Second, 1, "streaming: evaluating every change")
	waitUntil(t, 30*time.Second, "tickers subscribed", func() bool { return srv.Subscribers("tickers.BTCUSDT") > 0 })
	srv.ResetCounts()
	srv.PushMark("BTCUSDT", "45000") // (45000−40000)/45000 = 11.1%
	d.waitFor(t, 30*time.Second, "liquidation-near", "BTCUSDT", "WARNING")
	if n := srv.Count("/v5/position/list"); n != 0 {
		t.Errorf("the warning came after %d REST position reads; want it from the stream alone", n)
	}
	srv.RefuseStreams(true)
	waitLog(t, logs, 30*time.Second, 1, "stream interrupted; polling until it is back")
	srv.SetMark("BTCUSDT", "42000") // REST only: 4.8%
	d.waitFor(t, 90*time.Second, "liquidation-near", "BTCUSDT", "CRITICAL")
	if srv.Count("/v5/position/list") == 0 {
		t.Error("the critical came without a REST poll")
	}
}
