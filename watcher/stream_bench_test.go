package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// tickAccount is a streamed account of benchPositions cross positions
// whose live view the benchmark moves one symbol at a time, copying it
// into the watcher's snapshot the way an adapter's Live does.
type tickAccount struct {
	view exchanges.Snapshot
}

const benchPositions = 10

func newTickAccount() *tickAccount {
	t := &tickAccount{view: exchanges.Snapshot{
		Balances:  []exchanges.Balance{{Asset: "USDT", WalletBalance: 100000, MarginBalance: 100000, CrossWalletBalance: 100000, AvailableBalance: 50000, CrossMaintMargin: 2000, MaintMargin: 2000, FundingPaid24h: 3}},
		Positions: make([]exchanges.Position, benchPositions),
	}}
	for i := range t.view.Positions {
		t.view.Positions[i] = exchanges.Position{
			Symbol: fmt.Sprintf("SYM%dUSDT", i), Side: exchanges.Long, MarginAsset: "USDT", Pool: "USDT", MarginType: exchanges.Cross,
			Size: 1, EntryPrice: 1000, MarkPrice: 1000, LiquidationPrice: 500, Leverage: 5, Notional: 1000, MaintMargin: 5,
			FundingRate: 0.0001, FundingInterval: 8 * time.Hour, Stops: []exchanges.Stop{{Trigger: 900, ClosePosition: true}},
		}
	}
	return t
}

// tick moves symbol i's mark, as a mark-price tick does.
func (t *tickAccount) tick(i int, mark float64) {
	p := &t.view.Positions[i]
	p.MarkPrice, p.Notional = mark, p.Size*mark
	p.UnrealizedPnL = p.Size * (mark - p.EntryPrice)
}

func (t *tickAccount) Live(snap *exchanges.Snapshot) (time.Time, bool) {
	now := time.Now()
	snap.Time = now
	if len(snap.Balances) != len(t.view.Balances) || len(snap.Positions) != len(t.view.Positions) {
		snap.Balances = make([]exchanges.Balance, len(t.view.Balances))
		snap.Positions = make([]exchanges.Position, len(t.view.Positions))
	}
	copy(snap.Balances, t.view.Balances)
	copy(snap.Positions, t.view.Positions)
	return now, true
}

func (t *tickAccount) Snapshot(context.Context) (*exchanges.Snapshot, error) { return &t.view, nil }
func (t *tickAccount) Close() error                                          { return nil }
func (t *tickAccount) Stream(ctx context.Context, _ func()) error            { <-ctx.Done(); return nil }
func (t *tickAccount) StreamStatus() exchanges.StreamStatus                  { return exchanges.StreamStatus{Up: true} }

// BenchmarkTick is the per-tick cost of real-time mode: 100 streamed
// accounts of 10 positions each under the shipped rules.example.yaml; one
// op is one mark-price tick of a symbol every account holds, which
// re-evaluates all 100 accounts (live view, metrics, rules). It reports
// allocations per tick (0 in steady state) and ns per account.
//
//	go test -run='^$' -bench=Tick -benchmem ./watcher/
func BenchmarkTick(b *testing.B) {
	const accounts = 100
	rulesPath, err := filepath.Abs("../rules.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "state_dir: state\nlisten: \"\"\nrule_files: [%q]\nnotifiers: [{name: term, type: console}]\naccounts:\n", rulesPath)
	for i := range accounts {
		fmt.Fprintf(&cfg, "  - {name: a%d, exchange: simulated, scenario: calm, stream: true}\n", i)
	}
	views := map[string]*tickAccount{}
	w, _ := newTestWatcher(b, cfg.String(), Options{Stdout: &lockedBuffer{}, NewExchange: func(a config.Account, _ func() time.Time, _ *slog.Logger) (exchanges.Exchange, error) {
		views[a.Name] = newTickAccount()
		return views[a.Name], nil
	}})
	s, _, _ := w.running()
	step := func(mark float64) {
		for _, a := range s.accounts {
			v := views[a.cfg.Name]
			v.tick(3, mark)
			if _, ok, committed := w.liveCycle(a, v); !ok || !committed {
				b.Fatal("live cycle failed")
			}
		}
	}
	step(1000) // arrays grown, first states written
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		step(1000 + float64(n%10)*0.1) // quiet moves: nothing fires or resolves
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*accounts), "ns/account")
}
