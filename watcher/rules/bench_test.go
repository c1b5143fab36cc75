package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

const benchPositions = 1000

// benchRules is a realistic rule file: 14 position rules, 6 account rules
// (Compile adds data-stale per account).
func benchRules() []config.Rule {
	rep := map[string]time.Duration{"info": 4 * time.Hour, "warning": time.Hour, "critical": 10 * time.Minute}
	pr := func(name, metric string, above bool, warn, crit float64, mod func(*config.Rule)) config.Rule {
		r := config.Rule{Name: name, Scope: "position", Metric: metric, Repeat: rep, SendResolved: true}
		th := map[string]float64{"warning": warn, "critical": crit}
		if above {
			r.Above = th
		} else {
			r.Below = th
		}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	ar := func(name, metric string, above bool, warn, crit float64) config.Rule {
		r := pr(name, metric, above, warn, crit, nil)
		r.Scope = "account"
		return r
	}
	return []config.Rule{
		pr("liq-near", "liq_distance_pct", false, 15, 7, func(r *config.Rule) { r.Hysteresis = 2 }),
		pr("liq-near-majors", "liq_distance_pct", false, 25, 10, func(r *config.Rule) { r.Symbols = []string{"SYM000USDT", "SYM001USDT"} }),
		pr("liq-atr", "liq_distance_atr", false, 3, 1.5, func(r *config.Rule) { r.For = 5 * time.Minute }),
		pr("leverage", "leverage", true, 20, 50, nil),
		pr("size", "size_pct_equity", true, 50, 100, nil),
		pr("funding-apr", "funding_apr_pct", true, 50, 100, nil),
		pr("funding-rate", "funding_rate", true, 0.001, 0.003, nil),
		pr("funding-cost", "funding_next_cost", true, 50, 200, nil),
		pr("pnl", "unrealized_pnl_pct", false, -50, -80, nil),
		pr("no-stop", "has_stop_loss", false, 1, -1, func(r *config.Rule) {
			r.Below = map[string]float64{"warning": 1}
			r.Symbols = []string{"SYM000USDT", "SYM001USDT", "SYM002USDT", "SYM003USDT", "SYM004USDT",
				"SYM005USDT", "SYM006USDT", "SYM007USDT", "SYM008USDT", "SYM009USDT"}
		}),
		pr("isolated-margin", "margin_ratio", true, 0.5, 0.8, nil),
		pr("liq-desk", "liq_distance_pct", false, 12, 5, func(r *config.Rule) { r.Accounts = []string{"main"} }),
		pr("liq-other-desk", "liq_distance_pct", false, 12, 5, func(r *config.Rule) { r.Accounts = []string{"other"} }),
		pr("big-loss", "unrealized_pnl_pct", false, -90, -95, func(r *config.Rule) { r.Hysteresis = 5 }),
		ar("margin", "margin_ratio", true, 0.5, 0.8),
		ar("eff-leverage", "effective_leverage", true, 5, 10),
		ar("drawdown", "drawdown_pct", true, 10, 20),
		ar("funding-total", "funding_next_cost", true, 500, 2000),
		ar("available", "available_balance", false, 1000, 100),
		ar("positions", "position_count", true, 2000, 5000),
	}
}

// benchAccount has benchPositions positions; about 3% of them break a rule
// (near liquidation, over-levered, no stop), as on a busy desk.
func benchAccount() *metrics.Account {
	a := &metrics.Account{Name: "main"}
	for id, v := range map[metrics.ID]float64{
		metrics.MarginRatio: 0.3, metrics.Equity: 1e6, metrics.EffectiveLeverage: 3, metrics.DrawdownPct: 2,
		metrics.FundingNextCost: 120, metrics.AvailableBalance: 5e5, metrics.PositionCount: benchPositions,
		metrics.DataAgeSeconds: 1,
	} {
		a.Metrics.Put(id, v)
	}
	a.Positions = make([]metrics.Position, benchPositions)
	for i := range a.Positions {
		p := &a.Positions[i]
		p.Symbol = fmt.Sprintf("SYM%03dUSDT", i/2)
		p.Side = exchanges.Long
		if i%2 == 1 {
			p.Side = exchanges.Short
		}
		p.Raw = &exchanges.Position{Symbol: p.Symbol, Side: p.Side, MarkPrice: 100, EntryPrice: 99, LiquidationPrice: 60, Leverage: 5}
		s := &p.Metrics
		s.Put(metrics.LiqDistancePct, 40)
		s.Put(metrics.LiqDistanceATR, 12)
		s.Put(metrics.Leverage, 5)
		s.Put(metrics.SizePctEquity, 2)
		s.Put(metrics.FundingAPRPct, 11)
		s.Put(metrics.FundingRate, 0.0001)
		s.Put(metrics.FundingNextCost, 1)
		s.Put(metrics.UnrealizedPnLPct, 3)
		s.Put(metrics.HasStopLoss, 1)
		switch i % 97 {
		case 0:
			s.Put(metrics.LiqDistancePct, 6)
			s.Put(metrics.LiqDistanceATR, 1)
		case 1:
			s.Put(metrics.Leverage, 25)
		case 2:
			s.Put(metrics.HasStopLoss, 0)
		}
	}
	return a
}

func benchSetup(b *testing.B) (*Engine, *metrics.Account) {
	rules, err := Compile(testConfig(benchRules()...))
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(rules, nil)
	a := benchAccount()
	// Reach the steady state: every incident started, `for` elapsed.
	e.Evaluate(a, t0)
	e.Evaluate(a, t0.Add(5*time.Minute))
	if n := len(e.States()); n == 0 {
		b.Fatal("no alert firing: the benchmark would not be realistic")
	}
	return e, a
}

// BenchmarkEvaluate is the stated target: one full Evaluate of 20 rules
// over 1,000 positions, in steady state, with polls every 15 s so that the
// firing alerts repeat on their schedule.
func BenchmarkEvaluate(b *testing.B) {
	e, a := benchSetup(b)
	now := t0.Add(5 * time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(15 * time.Second)
		e.Evaluate(a, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(benchRules())*benchPositions), "ns/rule-eval")
}

// BenchmarkEvaluateQuiet is an evaluation that sends nothing and changes
// nothing (alerts firing, no repeat due): it must not allocate.
func BenchmarkEvaluateQuiet(b *testing.B) {
	e, a := benchSetup(b)
	now := t0.Add(6 * time.Minute)
	e.Evaluate(a, now)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Evaluate(a, now)
	}
}

func TestQuietEvaluateDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	rules, err := Compile(testConfig(benchRules()...))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rules, nil)
	a := benchAccount()
	e.Evaluate(a, t0)
	now := t0.Add(6 * time.Minute)
	e.Evaluate(a, now)
	if len(e.States()) == 0 {
		t.Fatal("nothing firing")
	}
	allocs := testing.AllocsPerRun(20, func() {
		if res := e.Evaluate(a, now); len(res.Notices)+len(res.Changed)+len(res.Deleted) != 0 {
			t.Fatalf("quiet evaluation produced %d notices", len(res.Notices))
		}
	})
	if allocs != 0 {
		t.Errorf("quiet Evaluate allocates %v times, want 0", allocs)
	}
}
