package watcher

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// binanceConfig is n USD-M accounts (no network: check and PlanConfig only
// estimate their costs) with the given extra settings.
func binanceConfig(t *testing.T, n int, extra string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("state_dir: state\nlisten: \"\"\naccounts:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: a%03d, exchange: binance-usdm, api_key: k, api_secret: s%s}\n", i, extra)
	}
	b.WriteString("notifiers:\n  - {name: term, type: console}\n")
	cfg, err := config.Load(writeConfig(t, b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPlanConfigIgnoresTheSecond: what check shows of the plan does not
// depend on the second of the clock minute it runs at.
func TestPlanConfigIgnoresTheSecond(t *testing.T) {
	for _, n := range []int{20, 60} {
		cfg := binanceConfig(t, n, "")
		minute := time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC)
		want := PlanConfig(cfg, minute).Budgets[0].String()
		for _, s := range []time.Duration{time.Second, 20 * time.Second, 47*time.Second + 300*time.Millisecond, 59 * time.Second} {
			if got := PlanConfig(cfg, minute.Add(s)).Budgets[0].String(); got != want {
				t.Errorf("%d accounts, %s into the minute:\n%s\nwant, as at :00:\n%s", n, s, got, want)
			}
		}
	}
}

// costly is a scripted exchange that draws on a shared request budget.
type costly struct {
	scripted
	cost exchanges.Cost
}

func (c *costly) Cost() exchanges.Cost { return c.cost }

// TestOversubscribedPlanDoesNotFlapDataStale: an account whose budget
// cannot hold its polls even stretched is polled at half its stale_after,
// not beyond it: every poll succeeds, so data-stale never fires, and the
// warning says loudly that the budget is over. (Stretched to 2 minutes
// against stale_after 30s, data-stale fired and resolved every cycle.)
func TestOversubscribedPlanDoesNotFlapDataStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 50 a poll every 5 s is 600 a minute against 80 − 50 = 30.
		ex := &costly{scripted: scripted{liq: 50000}, cost: exchanges.Cost{Budget: "test", Limit: 100, Poll: 50, First: 50}}
		out, logs := &lockedBuffer{}, &lockedBuffer{}
		var mu sync.Mutex
		var polls []time.Time
		w, _ := newTestWatcher(t, testConfig, Options{
			Stdout: out, Logger: slog.New(slog.NewTextHandler(logs, nil)), NewExchange: scriptedExchange(ex),
			Hooks: Hooks{Polled: func(_ string, _ time.Duration, ok bool, at time.Time, _ int) {
				mu.Lock()
				defer mu.Unlock()
				if ok {
					polls = append(polls, at)
				}
			}},
		})
		stop := runWatcher(t, w)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		stop()
		if n := out.lines("data-stale"); n != 0 {
			t.Errorf("data-stale printed %d times while every poll succeeded:\n%s", n, out)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(polls) < 19 {
			t.Errorf("%d polls in 5 minutes, want 20 (every 15s, half of stale_after)", len(polls))
		}
		for i := 1; i < len(polls); i++ {
			if gap := polls[i].Sub(polls[i-1]); gap > 15*time.Second {
				t.Errorf("poll %d came %s after the one before, more than half of stale_after", i, gap)
			}
		}
		if n := logs.lines("level=WARN", "even polled every 15s (half of stale_after) they need 200 weight/min", "data-stale will say so"); n != 1 {
			t.Errorf("the over-budget warning logged %d times, want 1:\n%s", n, logs)
		}
	})
}

// costlyStream is a streamed exchange that draws on a shared budget.
type costlyStream struct {
	streamed
	cost exchanges.Cost
}

func (c *costlyStream) Cost() exchanges.Cost { return c.cost }

// TestStreamedFallbackCapped: a streamed account's reconciliations may be
// stretched past stale_after (its streams keep it fresh), but its polls
// while the streams are down may not: they are held at half its
// stale_after.
func TestStreamedFallbackCapped(t *testing.T) {
	// 70 a reconciliation every minute against 80 − 70 = 10: 7×, every 7
	// minutes; poll_interval 5s stretched alike would be 35s.
	ex := &costlyStream{streamed: streamed{scripted: scripted{liq: 50000}}, cost: exchanges.Cost{Budget: "test", Limit: 100, Poll: 70, First: 70}}
	w, _ := newTestWatcher(t, streamConfig, Options{NewExchange: scriptedExchange(ex)})
	s, _, _ := w.running()
	a := s.accounts[0]
	if a.interval() != 7*time.Minute {
		t.Errorf("reconciling every %s, want 7m0s", a.interval())
	}
	if got := a.fallbackInterval(); got != 15*time.Second {
		t.Errorf("polling every %s while the streams are down, want 15s (half of stale_after)", got)
	}
}

// TestPlanConfigHyperliquidStreamSlots: 25 streamed Hyperliquid accounts
// ask for 10 streamed and 15 polled accounts' weight, not 25 streamed
// ones' (Hyperliquid serves 10 streamed addresses per IP).
func TestPlanConfigHyperliquidStreamSlots(t *testing.T) {
	var b strings.Builder
	b.WriteString("state_dir: state\nlisten: \"\"\naccounts:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "  - {name: h%02d, exchange: hyperliquid, address: \"0x%040x\", stream: true}\n", i, i+1)
	}
	b.WriteString("notifiers:\n  - {name: term, type: console}\n")
	cfg, err := config.Load(writeConfig(t, b.String()))
	if err != nil {
		t.Fatal(err)
	}
	p := PlanConfig(cfg, time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC))
	var streamed, polled int
	for _, d := range p.Schedules {
		if d.Every >= cfg.Accounts[0].ReconcileInterval { // stretched or not
			streamed++
		} else {
			polled++
		}
	}
	if streamed != 10 || polled != 15 {
		t.Errorf("planned %d streamed and %d polled, want 10 and 15:\n%s", streamed, polled, p.Budgets[0])
	}
	// 10 × ~10 + 15 × ~96 weight a minute: over the 960 allowed, so
	// stretched (with 25 streamed it was 250, and no stretch).
	if got := p.Budgets[0].String(); !strings.Contains(got, "1,540 weight/min") || !strings.Contains(got, "stretched") {
		t.Errorf("budget: %s", got)
	}
}
