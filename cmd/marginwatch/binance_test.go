package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

func binanceConfig(t *testing.T, exchange, url, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: ""
accounts:
  - name: main
    exchange: %s
    endpoint: %s
    api_key: %s
    api_secret: %s
%snotifiers:
  - {name: term, type: console}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
`, exchange, url, binancetest.Key, binancetest.Secret, extra)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStatusAgainstBinanceFake: `status -json` against the fake Binance
// USDⓈ-M account equals hand-computed values (relative error below 1e-9).
// The account (binancetest's one-way scenario): wallet 50000 (44000 cross +
// 6000 isolated), unrealized PnL −1500, maint 367;
// BTCUSDT long 0.5 @ 60000 mark 61000 cross 10x liq 39000, funding 0.0001/8h;
// ETHUSDT short 10 @ 3000 mark 3100 isolated 5x (wallet 6000) maint 105 liq 3560, 0.0002/8h;
// SOLUSDT long 100 @ 150 mark 140 cross 3x liq 80, −0.0003/4h.
func TestStatusAgainstBinanceFake(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	code, out, errOut := runCLI("status", "-config", binanceConfig(t, "binance-usdm", srv.URL, ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Accounts) != 1 {
		t.Fatalf("%d accounts", len(doc.Accounts))
	}
	a := doc.Accounts[0]
	nan := math.NaN() // null: not defined here
	checkMetrics(t, "account", a.Metrics, map[string]float64{
		"margin_ratio":       (367.0 - 105) / (44000 - 500), // cross maint / (cross wallet + cross PnL)
		"equity":             48500,                         // 50000 − 1500
		"available_balance":  31000,
		"unrealized_pnl":     -1500,
		"effective_leverage": (30500.0 + 31000 + 14000) / 48500, // Σ|notional| / equity
		"net_exposure_ratio": (30500.0 - 31000 + 14000) / 48500,
		"drawdown_pct":       nan, // one-off poll: no history
		"funding_next_cost":  30500*0.0001 - 31000*0.0002 - 14000*0.0003,
		"funding_paid_24h":   3.5 - 2 + 1.25, // FUNDING_FEE rows −3.5, +2, −1.25 → 2.75 paid
		"position_count":     3,
	})
	want := map[string]map[string]float64{
		"BTCUSDT long": {
			"liq_distance_pct": 22000.0 / 61000 * 100, "liq_distance_atr": 22000.0 / 500, "leverage": 10,
			"size_pct_equity": 30500.0 / 48500 * 100, "funding_rate": 0.0001, "funding_apr_pct": 0.0001 * 3 * 365 * 100,
			"funding_next_cost": 3.05, "unrealized_pnl_pct": 500 / (0.5 * 60000 / 10) * 100, "has_stop_loss": 1, "margin_ratio": nan,
			// Algo STOP_MARKET SELL closePosition at 55000, above liq 39000.
			"stop_coverage_pct": 100, "stop_distance_pct": 6000.0 / 61000 * 100,
		},
		"ETHUSDT short": {
			"liq_distance_pct": 460.0 / 3100 * 100, "liq_distance_atr": 460.0 / 40, "leverage": 5,
			"size_pct_equity": 31000.0 / 48500 * 100, "funding_rate": 0.0002, "funding_apr_pct": -0.0002 * 3 * 365 * 100,
			"funding_next_cost": -6.2, "unrealized_pnl_pct": -1000 / (10 * 3000.0 / 5) * 100, "has_stop_loss": 1,
			"margin_ratio": 105.0 / (6000 - 1000),
			// STOP BUY reduce-only of 1 at 3400, below liq 3560: 1 of 10.
			"stop_coverage_pct": 10, "stop_distance_pct": 300.0 / 3100 * 100,
		},
		"SOLUSDT long": {
			"liq_distance_pct": 60.0 / 140 * 100, "liq_distance_atr": 60.0 / 5, "leverage": 3,
			"size_pct_equity": 14000.0 / 48500 * 100, "funding_rate": -0.0003, "funding_apr_pct": -0.0003 * 6 * 365 * 100,
			"funding_next_cost": -4.2, "unrealized_pnl_pct": -1000 / (100 * 150.0 / 3) * 100, "has_stop_loss": 0, "margin_ratio": nan,
			// A take-profit, a BUY stop and a stop that is not reduce-only: none.
			"stop_coverage_pct": 0, "stop_distance_pct": nan,
		},
	}
	if len(a.Positions) != len(want) {
		t.Fatalf("%d positions, want %d", len(a.Positions), len(want))
	}
	for _, p := range a.Positions {
		w, ok := want[p.Symbol+" "+p.Side]
		if !ok {
			t.Errorf("unexpected position %s %s", p.Symbol, p.Side)
			continue
		}
		checkMetrics(t, p.Symbol, p.Metrics, w)
	}
	var firing []string
	for _, h := range a.Firing {
		firing = append(firing, h.Rule+" "+h.Symbol+" "+h.Severity.String())
	}
	if got := strings.Join(firing, ", "); got != "liquidation-near ETHUSDT warning" {
		t.Errorf("firing = %q, want the ETH short at 14.8%% from liquidation", got)
	}
}

// checkMetrics compares every metric but data_age_seconds (wall clock) with
// a relative error below 1e-9; NaN wants null.
func checkMetrics(t *testing.T, what string, got map[string]*float64, want map[string]float64) {
	t.Helper()
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: %s is missing from the output", what, name)
		}
	}
	for name, g := range got {
		if name == "data_age_seconds" {
			continue
		}
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s: %s has no expected value", what, name)
		case math.IsNaN(w):
			if g != nil {
				t.Errorf("%s: %s = %v, want null", what, name, *g)
			}
		case g == nil:
			t.Errorf("%s: %s is null, want %v", what, name, w)
		case math.Abs(*g-w) > 1e-9*math.Max(1, math.Abs(w)):
			t.Errorf("%s: %s = %.15g, want %.15g", what, name, *g, w)
		}
	}
}

// TestRunRefusesUnsafeKeys: a key that can withdraw stops `run` with exit 78
// and says why; a trading key or one that can transfer funds too, unless
// allow_trading_key is set.
func TestRunRefusesUnsafeKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		perm  binancetest.Permissions
		extra string
		want  string
	}{
		{"withdrawals", binancetest.Withdrawals, "", "can withdraw funds"},
		{"trading", binancetest.Trading, "", "allow_trading_key"},
		{"withdrawals even with allow_trading_key", binancetest.Withdrawals, "    allow_trading_key: true\n", "can withdraw funds"},
		{"universal transfer", binancetest.UniversalTransfer, "", "permitsUniversalTransfer"},
		{"internal transfer", binancetest.InternalTransfer, "", "enableInternalTransfer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay, Permissions: tc.perm})
			code, _, errOut := runCLI("run", "-config", binanceConfig(t, "binance-usdm", srv.URL, tc.extra))
			if code != exitConfig {
				t.Fatalf("exit %d, want 78; stderr:\n%s", code, errOut)
			}
			if !strings.Contains(errOut, "refusing to start") || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr does not say why:\n%s", errOut)
			}
			if strings.Contains(errOut, binancetest.Secret) || strings.Contains(errOut, binancetest.Key) {
				t.Errorf("a key or secret leaked into the log:\n%s", errOut)
			}
		})
	}
}

// TestRunAcceptsTransferKeyWhenAllowed: with allow_trading_key a key that
// can transfer funds is not refused: the daemon starts and polls (the ETH
// short's liquidation-near warning reaches the console).
func TestRunAcceptsTransferKeyWhenAllowed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay, Permissions: binancetest.UniversalTransfer})
	d := startDaemon(t, binanceConfig(t, "binance-usdm", srv.URL, "    allow_trading_key: true\n"))
	d.waitFor(t, 60*time.Second, "liquidation-near", "ETHUSDT")
	if n := srv.Count("/sapi/v1/account/apiRestrictions"); n < 1 {
		t.Errorf("the key's permissions were not checked (%d requests)", n)
	}
}

func TestStatusTableAgainstBinanceFake(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	code, out, errOut := runCLI("status", "-config", binanceConfig(t, "binance-usdm", srv.URL, ""))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// liq distance 22000/61000×100 = 36.0656%, 460/3100×100 = 14.8387%, 60/140×100 = 42.8571%
	for _, want := range []string{"main (binance-usdm) · polled ", "equity 48500.00", "BTCUSDT", "36.07%", "ETHUSDT", "14.84%", "SOLUSDT", "42.86%",
		"WARNING  liquidation-near ETHUSDT short"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}

// TestStatusCoinM: a COIN-M account reports per-asset money metrics and the
// account margin ratio as the highest per-asset ratio.
func TestStatusCoinM(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.COINM})
	code, out, errOut := runCLI("status", "-config", binanceConfig(t, "binance-coinm", srv.URL, ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	a := doc.Accounts[0]
	if len(a.Assets) == 0 || len(a.Positions) == 0 {
		t.Fatalf("COIN-M status has %d assets and %d positions:\n%s", len(a.Assets), len(a.Positions), out)
	}
	highest := math.Inf(-1)
	for _, as := range a.Assets {
		if v := as.Metrics["margin_ratio"]; v != nil {
			highest = math.Max(highest, *v)
		}
		if as.Metrics["equity"] == nil {
			t.Errorf("asset %s has no equity", as.Asset)
		}
	}
	if mr := a.Metrics["margin_ratio"]; mr == nil || *mr != highest {
		t.Errorf("account margin_ratio %v, want the highest asset ratio %v", mr, highest)
	}
}

// metricOf is a metric of a status -json metric map, NaN when null or absent.
func metricOf(m map[string]*float64, name string) float64 {
	if v := m[name]; v != nil {
		return *v
	}
	return math.NaN()
}

// near: relative error below 1e-9.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestStatusBinanceUSDCPool: a single-asset-mode USDⓈ-M account with a USDT
// pool and a USDC pool close to liquidation (binancetest's USDMPools).
// Binance's total* fields are USDT's alone (wallet 23.72469206, maint 0):
// from them the account looks idle. The USDC pool: wallet 900, PnL −750,
// equity 150, cross maint 117 (BTCUSDC long 0.5, notional 29250 × 0.4%):
// margin ratio 117 / 150 = 0.78, the highest pool's, so it is the
// account's, and the margin rule fires from it. The USDT pool's asset row
// reports maintMargin 0 (the fixture's, taken before the ADA position
// opened); its floor is the ADAUSDT position's 0.0800428.
func TestStatusBinanceUSDCPool(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMPools})
	cfg := binanceConfig(t, "binance-usdm", srv.URL, "")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, []byte(`  - name: margin-high
    metric: margin_ratio
    above: {warning: 0.5, critical: 0.7}
`)...)
	if err := os.WriteFile(cfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("status", "-config", cfg, "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	a := doc.Accounts[0]
	const (
		usdcRatio = 117.0 / (900 - 750)
		usdtEq    = 23.72469206
		usdtRatio = 0.0800428 / usdtEq // the ADAUSDT position's maint: the pool floor
		liq       = 29100.0 / 0.498    // 58433.734939759
	)
	if got := metricOf(a.Metrics, "margin_ratio"); !near(got, usdcRatio) {
		t.Errorf("account margin_ratio = %v, want the USDC pool's %v", got, usdcRatio)
	}
	pools := map[string]map[string]*float64{}
	for _, as := range a.Assets {
		pools[as.Asset] = as.Metrics
	}
	if len(pools) != 2 || pools["USDC"] == nil || pools["USDT"] == nil {
		t.Errorf("assets %v, want USDC and USDT pools", pools)
	}
	for _, c := range []struct {
		pool, name string
		want       float64
	}{
		{"USDC", "margin_ratio", usdcRatio},
		{"USDC", "equity", 150},
		{"USDC", "unrealized_pnl", -750},
		{"USDC", "effective_leverage", 29250.0 / 150},
		{"USDT", "margin_ratio", usdtRatio},
		{"USDT", "equity", usdtEq},
		{"USDT", "effective_leverage", 12.314277 / usdtEq},
	} {
		if got := metricOf(pools[c.pool], c.name); !near(got, c.want) {
			t.Errorf("%s %s = %v, want %v", c.pool, c.name, got, c.want)
		}
	}
	for _, p := range a.Positions {
		switch p.Symbol {
		case "BTCUSDC":
			if got := metricOf(p.Metrics, "size_pct_equity"); !near(got, 29250.0/150*100) {
				t.Errorf("BTCUSDC size_pct_equity = %v, want %v (of its own pool's equity)", got, 29250.0/150*100)
			}
			if got := metricOf(p.Metrics, "liq_distance_pct"); !near(got, (58500-liq)/58500*100) {
				t.Errorf("BTCUSDC liq_distance_pct = %v, want %v", got, (58500-liq)/58500*100)
			}
		case "ADAUSDT":
			if got := metricOf(p.Metrics, "size_pct_equity"); !near(got, 12.314277/usdtEq*100) {
				t.Errorf("ADAUSDT size_pct_equity = %v, want %v", got, 12.314277/usdtEq*100)
			}
		default:
			t.Errorf("unexpected position %s", p.Symbol)
		}
	}
	var firing []string
	for _, h := range a.Firing {
		firing = append(firing, fmt.Sprintf("%s %s %s %.6f", h.Rule, h.Symbol, h.Severity, h.Value))
	}
	want := fmt.Sprintf("margin-high  critical %.6f", usdcRatio)
	if !slices.Contains(firing, want) {
		t.Errorf("firing = %q, want %q (the USDC pool's ratio)", firing, want)
	}
	if !slices.ContainsFunc(firing, func(s string) bool { return strings.HasPrefix(s, "liquidation-near BTCUSDC critical") }) {
		t.Errorf("firing = %q, want liquidation-near BTCUSDC critical", firing)
	}
}

// TestStatusCoinMHedgeFloor: Binance's COIN-M hedge example reports the BTC
// asset's maintMargin as 0 while the long is 1% from liquidation. The
// pool's maintenance margin is never below its cross positions' (from the
// brackets, by quantity in BTC): the long's 100/mark BTC × 0.4% (the added
// short is isolated and has its own); the account margin ratio is that over
// the cross wallet 0.00241969, not 0.
func TestStatusCoinMHedgeFloor(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.COINMHedge})
	code, out, errOut := runCLI("status", "-config", binanceConfig(t, "binance-coinm", srv.URL, ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	const mark = 11788.66626667
	want := 100 / mark * 0.004 / 0.00241969
	if got := metricOf(doc.Accounts[0].Metrics, "margin_ratio"); !near(got, want) {
		t.Errorf("account margin_ratio = %v, want %v (the pool floor)", got, want)
	}
}
