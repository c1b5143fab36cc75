package binance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// fixtureIncomeTime is the time of the rows of fapi_v1_income.json and
// dapi_v1_income.json: 2019-10-09 08:00 UTC.
var fixtureIncomeTime = time.UnixMilli(1570608000000).UTC()

// TestTransfers: the income fixture bodies (a TRANSFER row each, served as
// they are; COIN-M's tranId is a string) and added rows in their shape.
// The first poll reports the transfers of the last 24h (one made while the
// daemon was down must not read as a loss after a restart; the equity
// history applies each ID once). A transfer after it is reported once,
// with its pool, amount and time; trading income (funding, realized PnL,
// commission) never is.
func TestTransfers(t *testing.T) {
	cases := []struct {
		name, exch, fixture, asset string
		account                    binancetest.Account
		fixtureID                  string
	}{
		{"USDⓈ-M", USDM, "fapi_v1_income.json", "USDC", binancetest.USDMPools, "main/TRANSFER/USDT/9689322392"},
		{"COIN-M", COINM, "dapi_v1_income.json", "BTC", binancetest.COINMHedge, "main/TRANSFER/BTC/9689322392"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, c.exch, binancetest.Options{Account: c.account}, nil)
			clk.Advance(fixtureIncomeTime.Add(-time.Hour).Sub(clk.Now())) // 07:00
			if c.exch == COINM {
				srv.AddIncomeJSON(binancetest.Fixture(c.fixture))
			}
			at := func(h, m int) time.Time { return time.Date(2019, 10, 9, h, m, 0, 0, time.UTC) }
			srv.AddIncome(
				binancetest.Income{Type: "TRANSFER", Amount: "-40", Asset: c.asset, Time: at(6, 0)}, // before the first poll: while the daemon was down
				binancetest.Income{Type: "TRANSFER", Amount: "500", Asset: c.asset, Time: at(7, 30)},
				binancetest.Income{Type: "COIN_SWAP_WITHDRAW", Amount: "-25", Asset: c.asset, Time: at(7, 40)},
				binancetest.Income{Symbol: "X", Type: "FUNDING_FEE", Amount: "-1", Asset: c.asset, Time: at(7, 45)},
				binancetest.Income{Symbol: "X", Type: "REALIZED_PNL", Amount: "-300", Asset: c.asset, Time: at(7, 50)},
				binancetest.Income{Symbol: "X", Type: "COMMISSION", Amount: "-2", Asset: c.asset, Time: at(7, 51)},
			)
			poll := func() []exchanges.Transfer {
				t.Helper()
				snap, err := ex.Snapshot(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return snap.Transfers
			}
			if got := poll(); len(got) != 1 || got[0].Amount != -40 || got[0].Pool != c.asset || !got[0].Time.Equal(at(6, 0)) {
				t.Errorf("first poll: transfers %+v, want the -40 %s of 06:00", got, c.asset)
			}
			clk.Advance(time.Hour + 5*time.Minute) // 08:05: income read again
			got := poll()
			fixturePool := "USDT"
			if c.exch == COINM {
				fixturePool = "BTC"
			}
			want := []exchanges.Transfer{
				{Pool: c.asset, Amount: 500, Time: at(7, 30)},
				{Pool: c.asset, Amount: -25, Time: at(7, 40)},
				{ID: c.fixtureID, Pool: fixturePool, Amount: -0.375, Time: fixtureIncomeTime},
			}
			if len(got) != len(want) {
				t.Fatalf("transfers %+v, want %+v", got, want)
			}
			ids := map[string]bool{}
			for i, w := range want {
				g := got[i]
				if (w.ID != "" && g.ID != w.ID) || g.ID == "" || g.Pool != w.Pool || !approx(g.Amount, w.Amount) || !g.Time.Equal(w.Time) {
					t.Errorf("transfer %d = %+v, want %+v", i, g, w)
				}
				ids[g.ID] = true
			}
			if len(ids) != len(want) {
				t.Errorf("transfer IDs not unique: %v", ids)
			}
			for i := range 3 {
				clk.Advance(6 * time.Minute) // each poll reads income again
				if got := poll(); len(got) != 0 {
					t.Errorf("poll %d after: transfers %+v again", i+1, got)
				}
			}
		})
	}
}

// TestTransferWithWalletMove: a wallet that moves while the positions stay
// as they were brings the income read forward, so the transfer arrives in
// the same poll as the wallet change, not up to 5 minutes later. Income
// reads are incremental: one page from the last row read.
func TestTransferWithWalletMove(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMPools}, nil)
	ctx := context.Background()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(15 * time.Second)
	srv.ResetCounts()
	snap, err := ex.Snapshot(ctx)
	if err != nil || len(snap.Transfers) != 0 || srv.Count("/fapi/v1/income") != 0 {
		t.Fatalf("steady poll: err %v, transfers %+v, %d income reads", err, snap.Transfers, srv.Count("/fapi/v1/income"))
	}
	// 200 USDC withdrawn: the USDC wallet drops from 900 to 700.
	clk.Advance(45 * time.Second)
	srv.AddIncome(binancetest.Income{Type: "TRANSFER", Amount: "-200", Asset: "USDC", Time: clk.Now().Add(-2 * time.Second)})
	srv.SetBody("/fapi/v2/account", strings.Replace(srv.Body("/fapi/v2/account"), `"walletBalance": "900.00000000"`, `"walletBalance": "700.00000000"`, 1))
	srv.ResetCounts()
	snap, err = ex.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Transfers) != 1 || snap.Transfers[0].Pool != "USDC" || snap.Transfers[0].Amount != -200 {
		t.Errorf("transfers %+v, want the 200 USDC withdrawal in the poll that sees the wallet move", snap.Transfers)
	}
	if n := srv.Count("/fapi/v1/income"); n != 1 {
		t.Errorf("%d income reads, want 1", n)
	}
}

// TestTransfersMultiAssets: in multi-assets mode every transfer goes to
// the USD pool, a stablecoin one to one, another asset at the mark price
// of its USDT perpetual.
func TestTransfersMultiAssets(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMMultiAssets}, nil)
	ctx := context.Background()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	srv.SetBody("/fapi/v1/premiumIndex", strings.Replace(srv.Body("/fapi/v1/premiumIndex"), "[",
		`[{"symbol":"BTCUSDT","markPrice":"60000.00000000","indexPrice":"60000","estimatedSettlePrice":"60000","lastFundingRate":"0.0001","interestRate":"0.0001","nextFundingTime":1767254400000,"time":1767240000000},`, 1))
	clk.Advance(time.Minute)
	srv.AddIncome(
		binancetest.Income{Type: "TRANSFER", Amount: "100", Asset: "USDC", Time: clk.Now()},
		binancetest.Income{Type: "TRANSFER", Amount: "0.01", Asset: "BTC", Time: clk.Now()},
	)
	clk.Advance(5 * time.Minute)
	snap, err := ex.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Transfers) != 2 || snap.Transfers[0].Pool != "USD" || snap.Transfers[0].Amount != 100 ||
		snap.Transfers[1].Pool != "USD" || !approx(snap.Transfers[1].Amount, 600) {
		t.Errorf("transfers %+v, want 100 USDC and 0.01 BTC × 60000 into USD", snap.Transfers)
	}
}
