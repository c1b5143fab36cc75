package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// TestLiquidationWhileFiringCritical: the ETHUSDT short of the fake Binance
// account is 14.8% from liquidation, critical for the rule below. Binance
// then liquidates it: the position disappears from positionRisk and a forced
// order appears in forceOrders. The user must hear exactly one liquidation
// event and one closing notice with reason "liquidated" — never a green
// "resolved" for an alert whose position the exchange took away.
func TestLiquidationWhileFiringCritical(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	hook := newReceiver(t)
	cfg := binanceConfig(t, "binance-usdm", fake.URL, "    poll_interval: 1s\n")
	writeAtomically(t, cfg, strings.NewReplacer(
		"  - {name: term, type: console}\n",
		fmt.Sprintf("  - {name: term, type: console}\n  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}\n", hook.srv.URL),
		"below: {warning: 15, critical: 7}",
		"below: {warning: 20, critical: 15}\n  - {name: liquidated, scope: event, event: liquidation, severity: critical}",
	).Replace(readFile(t, cfg)))

	d := startDaemon(t, cfg)
	waitUntil(t, 60*time.Second, "liquidation-near to fire critical on ETHUSDT", func() bool {
		_, got := hook.snapshot()
		for _, a := range got {
			if a.Rule == "liquidation-near" && a.Symbol == "ETHUSDT" && a.Kind == "firing" && a.Severity == "critical" {
				return true
			}
		}
		return false
	})
	if _, err := fake.Liquidate("ETHUSDT", "BOTH"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the closing notice", func() bool {
		_, got := hook.snapshot()
		return countAccepted(got, "liquidation-near", "closed") > 0 && countAccepted(got, "liquidated", "event") > 0
	})
	time.Sleep(3 * time.Second) // a few more polls: nothing more may arrive
	_, got := hook.snapshot()
	var closing []webhookAlert
	for _, a := range got {
		if a.Rule == "liquidation-near" && a.Symbol == "ETHUSDT" && a.Kind == "closed" {
			closing = append(closing, a)
		}
	}
	if len(closing) != 1 || closing[0].Reason != "liquidated" || closing[0].Status != "resolved" {
		t.Errorf("closing notices for ETHUSDT = %+v, want one with status resolved, reason liquidated", closing)
	}
	if n := countAccepted(got, "liquidated", "event"); n != 1 {
		t.Errorf("%d liquidation events, want 1", n)
	}
	if n := countAccepted(got, "liquidation-near", "resolved"); n != 0 {
		t.Errorf("%d resolved notices for liquidation-near, want none: a liquidation is no recovery", n)
	}
	// The console says it too, in words a trader cannot misread.
	d.waitFor(t, 10*time.Second, "LIQUIDATED", "ETHUSDT")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
