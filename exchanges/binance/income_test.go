package binance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// fundingRows returns instants × perInstant FUNDING_FEE rows of −0.01 (0.01
// paid each): perInstant symbols funded at the same millisecond, one instant
// every 15 minutes from 30 minutes ago back.
func fundingRows(instants, perInstant int, asset string) []binancetest.Income {
	var rows []binancetest.Income
	for i := range instants {
		for j := range perInstant {
			rows = append(rows, binancetest.Income{Symbol: fmt.Sprintf("S%02dUSDT", j), Type: "FUNDING_FEE", Amount: "-0.01", Asset: asset,
				Age: 30*time.Minute + time.Duration(i)*15*time.Minute})
		}
	}
	return rows
}

// TestIncomePages: more than 1,000 FUNDING_FEE rows in 24h are read page by
// page. Groups of 30 rows share a millisecond, so pages end inside a group:
// every row must count exactly once.
func TestIncomePages(t *testing.T) {
	cases := []struct {
		name    string
		exch    string
		account binancetest.Account
		path    string
		asset   string
		base    float64 // the scenario's own funding paid in asset
	}{
		{"USDⓈ-M", USDM, binancetest.USDMOneWay, "/fapi/v1/income", "USDT", 2.75},
		{"COIN-M", COINM, binancetest.COINM, "/dapi/v1/income", "BTC", 0.00001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, _ := fixture(t, c.exch, binancetest.Options{Account: c.account}, nil)
			srv.AddIncome(fundingRows(80, 30, c.asset)...) // 2,400 rows over 20h
			snap, err := ex.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// 2,400 + the scenario's rows: 1,000 + 1,000 + the rest, each
			// page repeating the rows of its first millisecond.
			if n := srv.Count(c.path); n != 3 {
				t.Errorf("%d income pages, want 3", n)
			}
			var got float64
			for _, b := range snap.Balances {
				if b.Asset == c.asset {
					got = b.FundingPaid24h
				}
			}
			if want := c.base + 2400*0.01; !approx(got, want) {
				t.Errorf("funding paid = %.10g, want %.10g", got, want)
			}
		})
	}
}

// TestIncomePageCap: at most 10 pages are read; the sum then covers the
// oldest part of the 24h and a warning says so.
func TestIncomePageCap(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	var logs bytes.Buffer
	ex.log = slog.New(slog.NewTextHandler(&logs, nil))
	srv.AddIncome(fundingRows(90, 125, "USDT")...) // 11,250 rows
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("/fapi/v1/income"); n != incomeMaxPages {
		t.Errorf("%d income pages, want %d", n, incomeMaxPages)
	}
	if !strings.Contains(logs.String(), "funding_paid_24h covers only part of the last 24h") {
		t.Errorf("no warning about the capped pages; logs:\n%s", logs.String())
	}
	// Each page after the first repeats the 125 rows of its first
	// millisecond: 1,000 + 9 × 875 rows, about 88.75 paid.
	if got := snap.Balances[0].FundingPaid24h; !(got > 80 && got < 112.5) {
		t.Errorf("funding paid = %v, want part of the 112.5 paid", got)
	}
	noSecret(t, logs.String())
}
