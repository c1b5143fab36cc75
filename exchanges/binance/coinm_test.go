package binance

import (
	"context"
	"math"
	"testing"

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
		"has_stop_loss":      1,
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
		"has_stop_loss":      0, // only a reduce-only LIMIT
		// isolated wallet = isolatedMargin 0.03809524 − PnL (−0.01190476) = 0.05
		"margin_ratio": 0.00119048 / 0.03809524,
	})
	if p := pos["ETHUSD_PERP"].Raw; p.MarginType != exchanges.Isolated || math.Abs(p.IsolatedWallet-0.05) > 1e-12 || p.ContractSize != 10 || p.MarginAsset != "ETH" {
		t.Errorf("ETHUSD_PERP raw = %+v", p)
	}
	// Steady weight: account 5 + positionRisk 1 + premiumIndex 10 + openOrders 2.
	srv.ResetCounts()
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := srv.Weight(); w != 18 {
		t.Errorf("steady COIN-M poll weight = %d (%v), want 18", w, srv.Weights())
	}
}
