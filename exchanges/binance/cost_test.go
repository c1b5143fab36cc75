package binance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// TestCost: Cost's First is the weight the fake counts for the key check
// and the first poll, and its Poll the average of an hour of polls every
// 15 s after it (rounded up), for N = 3 symbols on both exchanges.
func TestCost(t *testing.T) {
	for _, c := range []struct {
		kind        string
		account     binancetest.Account
		first, poll int
	}{
		{USDM, binancetest.USDMOneWay, 57, 15},
		{COINM, binancetest.COINM, 48, 14},
	} {
		t.Run(c.kind, func(t *testing.T) {
			ex, srv, clk := fixture(t, c.kind, binancetest.Options{Account: c.account}, func(a *config.Account) { a.PollInterval = 15 * time.Second })
			if c.kind == COINM { // a third symbol, as in TestWeightCOINM
				risk := strings.TrimSpace(srv.Body("/dapi/v1/positionRisk"))
				link := `{"symbol": "LINKUSD_PERP", "positionAmt": "100", "entryPrice": "14.0", "breakEvenPrice": "14.01", "markPrice": "15.00000000", "unRealizedProfit": "0.47619048", "liquidationPrice": "9.00000000", "leverage": "10", "maxQty": "50000", "marginType": "cross", "isolatedMargin": "0.00000000", "isAutoAddMargin": "false", "positionSide": "BOTH", "updateTime": 1627026881327}`
				srv.SetBody("/dapi/v1/positionRisk", strings.TrimSuffix(risk, "]")+","+link+"]")
			}
			before := ex.Cost()
			host := strings.TrimPrefix(srv.URL, "http://")
			if before.Budget != c.kind+" "+host || before.Limit != 2400 || before.First != c.first || before.Poll != c.poll {
				t.Errorf("Cost before any Snapshot = %+v, want %s %s, 2400, first %d, poll %d", before, c.kind, host, c.first, c.poll)
			}
			if err := ex.CheckKey(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := ex.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
			if w := srv.Weight(); w != c.first {
				t.Errorf("key check and first poll weigh %d (%v), Cost says %d", w, srv.Weights(), c.first)
			}
			srv.ResetCounts()
			const polls = 240
			for range polls {
				clk.Advance(15 * time.Second)
				if _, err := ex.Snapshot(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			avg := float64(srv.Weight()) / polls
			got := ex.Cost()
			t.Logf("%s, N=3: first %d, an hour of polls every 15 s averages %.2f, Cost %+v", c.kind, c.first, avg, got)
			if got != before {
				t.Errorf("Cost after polls = %+v, want %+v (same symbols)", got, before)
			}
			if avg > float64(got.Poll) || avg < float64(got.Poll)-1.5 {
				t.Errorf("average poll %.2f, Cost.Poll %d", avg, got.Poll)
			}
		})
	}
}

// TestEstimate: the static estimate for `check` follows the account's
// endpoint, interval and streaming.
func TestEstimate(t *testing.T) {
	for _, c := range []struct {
		a    config.Account
		n    int
		want string
	}{
		{config.Account{Exchange: USDM, PollInterval: 15 * time.Second}, -1, "{binance-usdm fapi.binance.com 2400 15 56}"},
		{config.Account{Exchange: COINM, PollInterval: 15 * time.Second}, -1, "{binance-coinm dapi.binance.com 2400 14 47}"},
		{config.Account{Exchange: USDM, PollInterval: 15 * time.Second, Testnet: true}, 0, "{binance-usdm testnet.binancefuture.com 2400 12 40}"},
		// Streaming: a reconciliation every 5 min takes open orders,
		// funding and transfers from the stream (income hourly), and the
		// start-up adds the listen key (TestReconcileWeight measures it).
		{config.Account{Exchange: USDM, PollInterval: 15 * time.Second, Stream: true, ReconcileInterval: 5 * time.Minute}, 3, "{binance-usdm fapi.binance.com 2400 17 57}"},
		{config.Account{Exchange: COINM, PollInterval: 15 * time.Second, Stream: true, ReconcileInterval: 5 * time.Minute}, 3, "{binance-coinm dapi.binance.com 2400 12 48}"},
		{config.Account{Exchange: USDM, PollInterval: 15 * time.Second, Stream: true, ReconcileInterval: 5 * time.Minute}, 12, "{binance-usdm fapi.binance.com 2400 25 100}"},
		{config.Account{Exchange: USDM, PollInterval: 15 * time.Second, Endpoint: "http://127.0.0.1:9"}, 12, "{binance-usdm 127.0.0.1:9 2400 24 100}"},
	} {
		if got := fmtCost(Estimate(c.a, c.n)); got != c.want {
			t.Errorf("Estimate(%s stream=%v testnet=%v, %d) = %s, want %s", c.a.Exchange, c.a.Stream, c.a.Testnet, c.n, got, c.want)
		}
	}
}

func fmtCost(c any) string { return fmt.Sprint(c) }
