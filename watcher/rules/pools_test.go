package rules

import (
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// TestDrawdownNetOfTransfers: withdrawing 10% of the wallet is no trading
// loss and fires no drawdown alert; a 2.5% trading loss afterwards does.
func TestDrawdownNetOfTransfers(t *testing.T) {
	rs := mustCompile(t, config.Rule{Name: "drawdown", Scope: "account", Metric: "drawdown_pct",
		Above: map[string]float64{"warning": 2}, Repeat: map[string]time.Duration{"warning": time.Hour}})
	e := NewEngine(rs, nil)
	hist := metrics.NewEquityHistory(0)
	poll := func(at time.Duration, equity float64, transfers ...exchanges.Transfer) Result {
		now := t0.Add(at)
		snap := &exchanges.Snapshot{Time: now, Transfers: transfers,
			Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: equity, MarginBalance: equity, CrossWalletBalance: equity}}}
		return e.Evaluate(metrics.Compute("main", "binance-usdm", nil, snap, hist, now), now)
	}
	if got := summarize(poll(0, 10000)); got != "" {
		t.Fatalf("first poll: %q", got)
	}
	withdrawal := exchanges.Transfer{ID: "tran-1", Pool: "USDT", Amount: -1000, Time: t0.Add(50 * time.Second)}
	if got := summarize(poll(time.Minute, 9000, withdrawal)); got != "" {
		t.Errorf("after withdrawing 10%%: %q, want no alert", got)
	}
	// The exchange reports it again (a restarted adapter re-reading its
	// income history): it is not applied twice.
	if got := summarize(poll(2*time.Minute, 9000, withdrawal)); got != "" {
		t.Errorf("withdrawal reported again: %q, want no alert", got)
	}
	res := poll(3*time.Minute, 8775) // 9,000 × 0.975
	if got := summarize(res); got != "firing:warning" {
		t.Fatalf("after a 2.5%% trading loss: %q, want firing:warning", got)
	}
	if v := res.Notices[0].Alert.Value; v < 2.5-1e-9 || v > 2.5+1e-9 {
		t.Errorf("drawdown %v, want 2.5", v)
	}
}

// TestPoolAlerts: on an account with several margin pools the money rules
// judge each pool (windowed drawdown included); the alert names the pool by
// Symbol and by the "asset" label, its context holds the pool's figures;
// margin_ratio stays on the account.
func TestPoolAlerts(t *testing.T) {
	rep := map[string]time.Duration{"warning": 24 * time.Hour}
	rs := mustCompile(t,
		config.Rule{Name: "drawdown-4h", Scope: "account", Metric: "drawdown_pct", Window: 4 * time.Hour,
			Above: map[string]float64{"warning": 3}, Repeat: rep, SendResolved: true},
		config.Rule{Name: "drawdown", Scope: "account", Metric: "drawdown_pct",
			Above: map[string]float64{"warning": 3}, Repeat: rep, SendResolved: true},
		config.Rule{Name: "margin", Scope: "account", Metric: "margin_ratio",
			Above: map[string]float64{"warning": 0.5}, Repeat: rep, SendResolved: true},
	)
	e := NewEngine(rs, nil)
	hist := metrics.NewEquityHistory(0)
	compute := func(at time.Duration, btc, eth float64, transfers ...exchanges.Transfer) *metrics.Account {
		now := t0.Add(at)
		snap := &exchanges.Snapshot{Time: now, Inverse: true, Transfers: transfers, Balances: []exchanges.Balance{
			{Asset: "BTC", WalletBalance: btc, MarginBalance: btc, CrossWalletBalance: btc, CrossMaintMargin: 0.6 * btc},
			{Asset: "ETH", WalletBalance: eth, MarginBalance: eth, CrossWalletBalance: eth},
		}}
		return metrics.Compute("main", "binance-coinm", map[string]string{"desk": "alpha"}, snap, hist, now)
	}
	// The margin rule fires once, on the account, from the BTC pool's 0.6.
	res := e.Evaluate(compute(0, 1, 20), t0)
	if got := summarizeSym(res); got != "firing:warning:" {
		t.Fatalf("first poll: %q, want the account's margin alert", got)
	}
	if _, ok := res.Notices[0].Alert.Labels["asset"]; ok {
		t.Errorf("account alert labels %v, want no asset", res.Notices[0].Alert.Labels)
	}
	// Three hours on BTC has lost 5%; ETH withdrew 10% (no loss).
	acct := compute(3*time.Hour, 0.95, 18, exchanges.Transfer{ID: "eth-out", Pool: "ETH", Amount: -2, Time: t0.Add(time.Hour)})
	res = e.Evaluate(acct, t0.Add(3*time.Hour))
	if got := summarizeSym(res); got != "firing:warning:BTC firing:warning:BTC" {
		t.Fatalf("after BTC's loss: %q, want both drawdown rules on BTC only", got)
	}
	for _, n := range res.Notices {
		a := n.Alert
		if a.Labels["asset"] != "BTC" || a.Labels["desk"] != "alpha" || a.Context["equity"] != 0.95 {
			t.Errorf("%s: labels %v context %v; want asset BTC, desk alpha, BTC equity", a.Rule, a.Labels, a.Context)
		}
	}
	var hits []string
	for _, h := range FiringNow(rs, acct, t0.Add(3*time.Hour)) {
		hits = append(hits, h.Rule+":"+h.Symbol)
	}
	if len(hits) != 3 || hits[0] != "drawdown-4h:BTC" || hits[1] != "drawdown:BTC" || hits[2] != "margin:" {
		t.Errorf("FiringNow = %v", hits)
	}
	if st := e.States(); len(st) != 3 {
		t.Errorf("states %v, want margin and two BTC drawdowns", st)
	}
}
