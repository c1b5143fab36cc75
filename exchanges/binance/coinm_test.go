package binance

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

func TestSnapshotCOINM(t *testing.T) {
	ex, srv, clk := fixture(t, COINM, binancetest.Options{Account: binancetest.COINM}, nil)
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if !snap.Inverse || len(snap.Balances) != 2 {
		t.Fatalf("inverse %v, balances %+v", snap.Inverse, snap.Balances)
	}
	a := metrics.Compute("main", COINM, nil, snap, nil, clk.Now())

	const (
		btcEq       = 0.50076923
		ethEq       = 1.98809524
		btcNotional = 10 * 100 / 52000.0 // contracts × size / mark, in BTC
		ethNotional = 50 * 10 / 2100.0
	)
	checkSet(t, "account", a.Metrics, want{
		// the higher per-asset cross ratio: BTC's (ETH's only position is isolated)
		"margin_ratio":     0.00009615 / (0.5 + 0.00076923),
		"position_count":   2,
		"data_age_seconds": 0,
		"drawdown_pct":     math.NaN(),
	})
	assets := map[string]metrics.Set{}
	for _, as := range a.Assets {
		assets[as.Asset] = as.Metrics
	}
	checkSet(t, "BTC", assets["BTC"], want{
		"margin_ratio":       0.00009615 / (0.5 + 0.00076923),
		"equity":             btcEq,
		"available_balance":  0.45,
		"unrealized_pnl":     0.00076923,
		"effective_leverage": btcNotional / btcEq,
		"net_exposure_ratio": btcNotional / btcEq,
		"funding_next_cost":  btcNotional * 0.0001,
		"funding_paid_24h":   0.00001,
	})
	checkSet(t, "ETH", assets["ETH"], want{
		"margin_ratio":       0, // no cross position in ETH
		"equity":             ethEq,
		"available_balance":  1.9,
		"unrealized_pnl":     -0.01190476,
		"effective_leverage": ethNotional / ethEq,
		"net_exposure_ratio": -ethNotional / ethEq,
		"funding_next_cost":  -ethNotional * 0.0002,
		"funding_paid_24h":   -0.0002,
	})
	pos := map[string]metrics.Position{}
	for _, p := range a.Positions {
		pos[p.Symbol] = p
	}
	checkSet(t, "BTCUSD_PERP", pos["BTCUSD_PERP"].Metrics, want{
		"liq_distance_pct":   22000.0 / 52000 * 100,
		"liq_distance_atr":   22000.0 / 800,
		"leverage":           20,
		"size_pct_equity":    btcNotional / btcEq * 100,
		"funding_rate":       0.0001,
		"funding_apr_pct":    0.0001 * 1095 * 100,
		"funding_next_cost":  btcNotional * 0.0001,
		"unrealized_pnl_pct": 0.00076923 / (10 * 100 / 50000.0 / 20) * 100, // PnL / (contracts × size / entry / leverage)
	})
	checkSet(t, "ETHUSD_PERP", pos["ETHUSD_PERP"].Metrics, want{
		"liq_distance_pct":   300.0 / 2100 * 100,
		"liq_distance_atr":   300.0 / 50,
		"leverage":           10,
		"size_pct_equity":    ethNotional / ethEq * 100,
		"funding_rate":       0.0002,
		"funding_apr_pct":    -0.0002 * 1095 * 100,
		"funding_next_cost":  -ethNotional * 0.0002,
		"unrealized_pnl_pct": -0.01190476 / (50 * 10 / 2000.0 / 10) * 100,
		// isolated wallet = isolatedMargin 0.03809524 − PnL (−0.01190476) = 0.05
		"margin_ratio": 0.00119048 / 0.03809524,
	})
	if p := pos["ETHUSD_PERP"].Raw; p.MarginType != exchanges.Isolated || math.Abs(p.IsolatedWallet-0.05) > 1e-12 || p.ContractSize != 10 || p.MarginAsset != "ETH" {
		t.Errorf("ETHUSD_PERP raw = %+v", p)
	}
	// Steady weight: account 5 + positionRisk 1 + openOrders 2; premiumIndex
	// (10) every third poll (see TestWeightCOINM).
	srv.ResetCounts()
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := srv.Weight(); w != 8 {
		t.Errorf("steady COIN-M poll weight = %d (%v), want 8", w, srv.Weights())
	}
}

// TestSnapshotCOINMHedge: a COIN-M hedge account (Binance's docs examples
// served as they are; see binancetest's coinmHedge for the added rows).
// The account read reports no maintenance margin, so each position's comes
// from the brackets by quantity in BTC; the BTC pool is Binance's asset row
// unchanged (maintMargin 0): the floor of Σ cross positions' maintenance
// margins is the metrics' (see cmd/marginwatch TestStatusCoinMHedgeFloor).
func TestSnapshotCOINMHedge(t *testing.T) {
	ex, _, clk := fixture(t, COINM, binancetest.Options{Account: binancetest.COINMHedge}, nil)
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	a := metrics.Compute("main", COINM, nil, snap, nil, clk.Now())
	const (
		mark  = 11788.66626667
		eq    = 0.00241969     // the fixture's marginBalance
		longQ = 1 * 100 / mark // BTC: contracts × contract size / mark
		shrtQ = 2 * 100 / mark
	)
	type key struct {
		symbol string
		side   exchanges.Side
	}
	raw := map[key]exchanges.Position{}
	got := map[key]metrics.Set{}
	for _, p := range a.Positions {
		raw[key{p.Symbol, p.Side}], got[key{p.Symbol, p.Side}] = *p.Raw, p.Metrics
	}
	if len(raw) != 2 {
		t.Fatalf("positions = %v, want BTCUSD_201225 long and short (the empty BOTH row dropped)", raw)
	}
	long, short := key{"BTCUSD_201225", exchanges.Long}, key{"BTCUSD_201225", exchanges.Short}
	if len(snap.Balances) != 1 {
		t.Fatalf("balances %+v, want BTC", snap.Balances)
	}
	if b := snap.Balances[0]; b.Asset != "BTC" || b.WalletBalance != 0.00241969 || b.MarginBalance != 0.00241969 ||
		b.MaintMargin != 0 || b.CrossMaintMargin != 0 || b.CrossWalletBalance != 0.00241969 || b.UnrealizedPnL != 0 {
		t.Errorf("BTC pool %+v, want the fixture's asset row as it is", b)
	}
	cases := []struct {
		k           key
		size, notnl float64
		maint       float64
		margin      exchanges.MarginType
	}{
		// 0.00848 BTC: bracket 1 (< 0.01 BTC), 0.4%, cum 0.
		{long, 1, longQ, longQ * 0.004, exchanges.Cross},
		// 0.01697 BTC: bracket 2 (0.01 to 50 BTC), 0.5%, cum 0.00001.
		{short, 2, shrtQ, shrtQ*0.005 - 0.00001, exchanges.Isolated},
	}
	for _, c := range cases {
		p := raw[c.k]
		if p.Size != c.size || p.ContractSize != 100 || p.MarginAsset != "BTC" || p.MarginType != c.margin ||
			!approx(p.Notional, c.notnl) || !approx(p.MaintMargin, c.maint) {
			t.Errorf("%s %s: size %v × %v %s %s, notional %.12g (want %.12g), maint %.12g (want %.12g)",
				c.k.symbol, c.k.side, p.Size, p.ContractSize, p.MarginAsset, p.MarginType, p.Notional, c.notnl, p.MaintMargin, c.maint)
		}
	}
	// A delivery contract pays no funding: premiumIndex reports "" and 0.
	checkSet(t, "long", got[long], want{
		"liq_distance_pct":   (mark - 11667.63509587) / mark * 100,
		"liq_distance_atr":   (mark - 11667.63509587) / 100,
		"leverage":           125,
		"size_pct_equity":    longQ / eq * 100,
		"funding_rate":       0,
		"funding_apr_pct":    0,
		"funding_next_cost":  0,
		"unrealized_pnl_pct": 0.00005866 / (1 * 100 / 11707.70000003 / 125) * 100,
	})
	checkSet(t, "short", got[short], want{
		"liq_distance_pct":   (12650 - mark) / mark * 100,
		"liq_distance_atr":   (12650 - mark) / 100,
		"leverage":           125,
		"size_pct_equity":    shrtQ / eq * 100,
		"funding_rate":       0,
		"funding_apr_pct":    0,
		"funding_next_cost":  0,
		"unrealized_pnl_pct": 0.0000163 / (2 * 100 / 11800.0 / 125) * 100,
		// Isolated: maintenance margin / isolatedMargin (wallet + PnL).
		"margin_ratio": (shrtQ*0.005 - 0.00001) / 0.0002,
	})
	// One pool (BTC), so its money metrics are the account's. The asset
	// row reports no maintenance margin: the floor is the cross long's.
	checkSet(t, "account", a.Metrics, want{
		"margin_ratio":       longQ * 0.004 / eq,
		"equity":             eq,
		"available_balance":  eq,
		"unrealized_pnl":     0,
		"effective_leverage": (longQ + shrtQ) / eq,
		"net_exposure_ratio": (longQ - shrtQ) / eq,
		"funding_next_cost":  0,
		"funding_paid_24h":   0,
		"position_count":     2,
		"data_age_seconds":   0,
	})
}

// TestPremiumCOINMRotation: the COIN-M funding rate is served from the
// last premiumIndex read for two polls and read again on the third; a
// newly held symbol the last read did not list gets it at once.
func TestPremiumCOINMRotation(t *testing.T) {
	ex, srv, clk := fixture(t, COINM, binancetest.Options{Account: binancetest.COINM}, nil)
	ctx := context.Background()
	full := srv.Body("/dapi/v1/premiumIndex")
	var rows []string
	for _, l := range strings.Split(full, "\n") {
		if !strings.Contains(l, "LINKUSD_PERP") {
			rows = append(rows, l)
		}
	}
	srv.SetBody("/dapi/v1/premiumIndex", strings.Join(rows, "\n")) // not listed yet
	rate := func(symbol string) float64 {
		t.Helper()
		snap, err := ex.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range snap.Positions {
			if p.Symbol == symbol {
				return p.FundingRate
			}
		}
		t.Fatalf("%s not held", symbol)
		return 0
	}
	if r := rate("BTCUSD_PERP"); r != 0.0001 {
		t.Fatalf("first poll rate %v", r)
	}
	full = strings.Replace(full, `"lastFundingRate":"0.00010000"`, `"lastFundingRate":"0.00050000"`, 1)
	srv.SetBody("/dapi/v1/premiumIndex", strings.Replace(srv.Body("/dapi/v1/premiumIndex"), `"lastFundingRate":"0.00010000"`, `"lastFundingRate":"0.00050000"`, 1))
	for i, want := range []float64{0.0001, 0.0001, 0.0005} {
		clk.Advance(15 * time.Second)
		if r := rate("BTCUSD_PERP"); r != want {
			t.Errorf("poll %d after the change: rate %v, want %v", i+2, r, want)
		}
	}
	// LINKUSD_PERP is listed and opens on a poll whose turn is not
	// premiumIndex.
	srv.SetBody("/dapi/v1/premiumIndex", full)
	risk := strings.TrimSpace(srv.Body("/dapi/v1/positionRisk"))
	srv.SetBody("/dapi/v1/positionRisk", strings.TrimSuffix(risk, "]")+`,{"symbol":"LINKUSD_PERP","positionAmt":"100","entryPrice":"14.0","markPrice":"15.0","unRealizedProfit":"0.4","liquidationPrice":"9","leverage":"10","maxQty":"50000","marginType":"cross","isolatedMargin":"0","isAutoAddMargin":"false","positionSide":"BOTH","updateTime":1}]`)
	clk.Advance(15 * time.Second)
	srv.ResetCounts()
	if r := rate("LINKUSD_PERP"); r != 0.0001 || srv.Count("/dapi/v1/premiumIndex") != 1 {
		t.Errorf("new symbol: rate %v, %d premiumIndex reads; want 0.0001, 1", r, srv.Count("/dapi/v1/premiumIndex"))
	}
}
