package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
)

// hyperliquidConfig is a config of one hyperliquid account on the fake at
// url; extra adds account keys, notifiers adds notifier lines.
func hyperliquidConfig(t *testing.T, url, extra, notifiers string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: ""
accounts:
  - name: hl
    exchange: hyperliquid
    address: %q
    endpoint: %s
%snotifiers:
  - {name: term, type: console}
%srules:
  - name: liquidation-near
    scope: position
    metric: liq_distance_pct
    below: {warning: 3, critical: 1.5}
  - name: missing-stop-loss
    scope: position
    metric: has_stop_loss
    below: {warning: 1}
`, hyperliquidtest.Address, url, extra, notifiers)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStatusAgainstHyperliquidFake: `status -json` against the fake's
// isolated ETH account (info_clearinghouseState.json) equals hand-computed
// values. Mark 2985.9 = positionValue 100.02765 / szi 0.0335; maintenance
// 100.02765 / (2 × 50); marginUsed 4.967826; funding 0.0000224376 an hour
// (metaAndAssetCtxs); the userFunding rows are from 2023 (none in 24 h).
func TestStatusAgainstHyperliquidFake(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	code, out, errOut := runCLI("status", "-config", hyperliquidConfig(t, srv.URL, "", ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Accounts) != 1 || len(doc.Accounts[0].Positions) != 1 {
		t.Fatalf("want one account with one position:\n%s", out)
	}
	a := doc.Accounts[0]
	nan := math.NaN()
	const f, eq, pv = 0.0000224376, 13109.482328, 100.02765
	checkMetrics(t, "account", a.Metrics, map[string]float64{
		"margin_ratio": 0, "equity": eq, "available_balance": 13104.514502, "unrealized_pnl": -0.0134,
		"effective_leverage": pv / eq, "net_exposure_ratio": pv / eq, "drawdown_pct": nan,
		"funding_next_cost": pv * f, "funding_paid_24h": 0, "position_count": 1,
	})
	p := a.Positions[0]
	if p.Symbol != "ETH" || p.Side != "long" {
		t.Errorf("position %s %s, want ETH long", p.Symbol, p.Side)
	}
	checkMetrics(t, "ETH", p.Metrics, map[string]float64{
		"liq_distance_pct": (2985.9 - 2866.26936529) / 2985.9 * 100, "liq_distance_atr": nan, "leverage": 20,
		"size_pct_equity": pv / eq * 100, "funding_rate": f, "funding_apr_pct": f * 365 * 24 * 100,
		"funding_next_cost": pv * f, "unrealized_pnl_pct": -0.0134 / (0.0335 * 2986.3 / 20) * 100,
		"has_stop_loss": 0, "stop_coverage_pct": 0, "stop_distance_pct": nan, "margin_ratio": pv / 100 / 4.967826,
	})
}

// TestHyperliquidEndToEnd: the real binary polls the fake every second.
// The isolated ETH long starts 4.0% from its liquidation price (2866.27)
// with no stop: missing-stop-loss fires. The mark sinks to 2940 (2.5%:
// warning), then 2900 (1.2%: critical); it recovers to 2985.9 and the
// alert resolves; a reduce-only sell stop at 2900 (above liquidation)
// resolves missing-stop-loss.
func TestHyperliquidEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	hook := newReceiver(t)
	cfg := hyperliquidConfig(t, srv.URL, "    poll_interval: 1s\n",
		fmt.Sprintf("  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}\n", hook.srv.URL))
	d := startDaemon(t, cfg)

	seen := func(rule, kind, severity string) func() bool {
		return func() bool {
			_, got := hook.snapshot()
			for _, a := range got {
				if a.Rule == rule && a.Symbol == "ETH" && a.Kind == kind && (severity == "" || a.Severity == severity) {
					return true
				}
			}
			return false
		}
	}
	waitUntil(t, 60*time.Second, "missing-stop-loss on ETH", seen("missing-stop-loss", "firing", ""))
	if seen("liquidation-near", "firing", "")() {
		t.Fatal("liquidation-near fired at 4% from liquidation")
	}
	if err := srv.SetMark("ETH", 2940); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "liquidation-near warning", seen("liquidation-near", "firing", "warning"))
	if err := srv.SetMark("ETH", 2900); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "liquidation-near critical", func() bool {
		_, got := hook.snapshot()
		for _, a := range got {
			if a.Rule == "liquidation-near" && a.Symbol == "ETH" && a.Severity == "critical" && a.Kind != "resolved" {
				return true
			}
		}
		return false
	})
	if err := srv.SetMark("ETH", 2985.9); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "liquidation-near resolved", seen("liquidation-near", "resolved", ""))
	if err := srv.AddStop("ETH", "A", 2900, 0.0335); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "missing-stop-loss resolved", seen("missing-stop-loss", "resolved", ""))
	d.waitFor(t, 10*time.Second, "missing-stop-loss", "ETH")
	if n := srv.Refused(); n != 0 {
		t.Errorf("%d requests answered 429: one account at a 1 s poll must stay under the limit", n)
	}
}

// TestHyperliquidStreamEndToEnd: with stream: true the real binary keeps
// the account from the fake's websocket. A mark pushed over it (2940: 2.5%
// from liquidation) raises the warning with no REST request between the
// push and the alert (poll_interval 10s, reconcile_interval 10m); with the
// websocket stopped the daemon polls, and a mark moved only in the REST
// answers (2900: 1.2%) raises critical.
func TestHyperliquidStreamEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	hook := newReceiver(t)
	cfg := hyperliquidConfig(t, srv.URL, "    stream: true\n    poll_interval: 10s\n    reconcile_interval: 10m\n",
		fmt.Sprintf("  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}\n", hook.srv.URL))
	startDaemon(t, cfg)
	seen := func(rule, kind, severity string) func() bool {
		return func() bool {
			_, got := hook.snapshot()
			for _, a := range got {
				if a.Rule == rule && a.Symbol == "ETH" && a.Kind == kind && (severity == "" || a.Severity == severity) {
					return true
				}
			}
			return false
		}
	}
	waitUntil(t, 60*time.Second, "missing-stop-loss on ETH (the seeding read)", seen("missing-stop-loss", "firing", ""))
	waitUntil(t, 30*time.Second, "the daemon subscribed to ETH's activeAssetCtx", func() bool {
		n, err := srv.PushMark("ETH", 2985.9)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	time.Sleep(200 * time.Millisecond) // the seeding read's reseed, if any, is done
	reqs := srv.Requests()
	if _, err := srv.PushMark("ETH", 2940); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 8*time.Second, "liquidation-near warning from the websocket", seen("liquidation-near", "firing", "warning"))
	if n := srv.Requests() - reqs; n != 0 {
		t.Errorf("%d REST requests between the pushed mark and its alert, want none", n)
	}

	srv.StopWS()
	reqs = srv.Requests()
	if err := srv.SetMark("ETH", 2900); err != nil { // REST only: no websocket
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "liquidation-near critical from a poll", func() bool {
		_, got := hook.snapshot()
		for _, a := range got {
			if a.Rule == "liquidation-near" && a.Symbol == "ETH" && a.Severity == "critical" && a.Kind != "resolved" {
				return true
			}
		}
		return false
	})
	if srv.Requests() == reqs {
		t.Error("critical without a REST read: the websocket was stopped")
	}
}
