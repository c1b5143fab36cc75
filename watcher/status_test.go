package watcher

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// sinking is an exchange whose equity the test sets, with one long
// position 5% from liquidation.
type sinking struct {
	mu     sync.Mutex
	equity float64
}

func (s *sinking) set(equity float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.equity = equity
}

func (s *sinking) Snapshot(context.Context) (*exchanges.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &exchanges.Snapshot{
		Time:     time.Now(),
		Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: s.equity, MarginBalance: s.equity, CrossWalletBalance: s.equity, AvailableBalance: s.equity}},
		Positions: []exchanges.Position{{
			Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 0.1,
			EntryPrice: 100000, MarkPrice: 100000, LiquidationPrice: 95000, Leverage: 5, Notional: 10000,
			FundingInterval: 8 * time.Hour,
		}},
	}, nil
}

func (s *sinking) Close() error { return nil }

// TestStatusLiveView: Status shows each account's last evaluation with
// drawdown_pct from the daemon's equity history, what fires on it now,
// and the engine's alerts with their lifecycle phase (a rule with `for`
// pending, one without firing). Before the first read it has no metrics.
func TestStatusLiveView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &sinking{equity: 10000}
		w, _ := newTestWatcher(t, testConfig+`  - name: slow-liquidation
    metric: liq_distance_pct
    below: {warning: 50}
    for: 10m
`, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(ex)})
		before := w.Status(time.Now())
		if len(before) != 1 || before[0].Name != "main" || before[0].Latest != nil {
			t.Fatalf("before the first read: %+v, want main without metrics", before)
		}
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		ex.set(9000) // 10% below the peak
		time.Sleep(10 * time.Second)
		synctest.Wait()

		view := w.Status(time.Now())
		if len(view) != 1 || view[0].Latest == nil {
			t.Fatalf("view %+v, want main with metrics", view)
		}
		a := view[0]
		if a.Name != "main" || a.Exchange != "simulated" || a.LastSuccess.IsZero() || a.Latest.Stale {
			t.Errorf("account %+v, want main (simulated), fresh", a)
		}
		if dd, ok := a.Latest.Metrics.Get(metrics.DrawdownPct); !ok || dd != 10 {
			t.Errorf("drawdown_pct %v (defined %v), want 10", dd, ok)
		}
		if eq, _ := a.Latest.Metrics.Get(metrics.Equity); eq != 9000 {
			t.Errorf("equity %v, want 9000", eq)
		}
		phases := map[string]rules.Phase{}
		for _, st := range a.Alerts {
			phases[st.Key.Rule] = st.Phase
			if (st.Phase == rules.Active && st.ID == "") || st.Key.Account != "main" {
				t.Errorf("alert %+v lacks its id or account", st)
			}
		}
		if phases["liquidation-near"] != rules.Active || phases["slow-liquidation"] != rules.Pending || len(phases) != 2 {
			t.Errorf("alert phases %v, want liquidation-near firing and slow-liquidation pending", phases)
		}
		var hits []string
		for _, h := range a.Firing {
			hits = append(hits, h.Rule)
		}
		if len(hits) != 2 || hits[0] != "liquidation-near" {
			t.Errorf("firing now %v, want liquidation-near (critical) first, then slow-liquidation", hits)
		}
	})
}
