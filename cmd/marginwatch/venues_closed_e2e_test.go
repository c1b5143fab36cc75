package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
)

// Closing notices end to end: a position closed while its alerts fire ends them as kind closed.
func TestHyperliquidClosedE2E(t *testing.T) {
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	hook := newReceiver(t)
	cfg := hyperliquidConfig(t, srv.URL, "    poll_interval: 1s\n",
		fmt.Sprintf("  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}\n", hook.srv.URL))
	startDaemon(t, cfg)
	seen := func(rule, kind string) func() bool {
		return func() bool {
			_, got := hook.snapshot()
			for _, a := range got {
				if a.Rule == rule && a.Symbol == "ETH" && a.Kind == kind {
					return true
				}
			}
			return false
		}
	}
	waitUntil(t, 60*time.Second, "missing-stop-loss firing", seen("missing-stop-loss", "firing"))
	if err := srv.SetMark("ETH", 2940); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "liquidation-near firing", seen("liquidation-near", "firing"))
	if err := srv.RemovePosition("ETH"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "liquidation-near closed", seen("liquidation-near", "closed"))
	waitUntil(t, 30*time.Second, "missing-stop-loss closed", seen("missing-stop-loss", "closed"))
	_, got := hook.snapshot()
	for _, a := range got {
		if a.Kind == "resolved" {
			t.Errorf("a closed position's alert resolved as recovered: %+v", a)
		}
	}
}

func TestBybitClosedE2E(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	d := startDaemon(t, bybitConfig(t, srv.URL, ""))
	d.waitFor(t, 60*time.Second, "liquidation-near", "ETHUSDC", "WARNING")
	srv.SetPositions(
		map[string]any{"symbol": "BTCUSDT", "side": "Buy", "positionIdx": 1, "size": "0.5", "avgPrice": "60000", "markPrice": "61000",
			"liqPrice": "40000", "leverage": "10", "unrealisedPnl": "500", "positionMM": "60", "positionIM": "3000", "stopLoss": "", "positionValue": "30000"},
		map[string]any{"symbol": "BTCUSDT", "side": "Sell", "positionIdx": 2, "size": "0.2", "avgPrice": "62000", "markPrice": "61000",
			"liqPrice": "40000", "leverage": "10", "unrealisedPnl": "200", "positionMM": "24", "positionIM": "1240", "stopLoss": "65000", "positionValue": "12400"},
	)
	l := d.waitFor(t, 30*time.Second, "liquidation-near", "ETHUSDC", "clos")
	t.Log(l)
	for _, s := range d.output() {
		t.Log(s)
	}
}
