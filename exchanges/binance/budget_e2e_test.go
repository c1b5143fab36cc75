package binance

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/budget"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// figures is what one run of many accounts against the fake shows.
type figures struct {
	polls, firsts, failed int
	refused, peak         int
	every                 time.Duration
	plan                  budget.Summary
}

// runAccounts polls n USDⓈ-M accounts (3 symbols each) against one fake
// for 3 minutes of virtual time, on the budget plan's schedule as the
// daemon's poll loop runs it (first poll after StartAfter, then every
// Every, each poll bounded by Every); with plain, every 15 s from the
// start, as before the plan. The fake is served in-process, so the run
// takes seconds.
func runAccounts(t *testing.T, n int, stream, plain bool) figures {
	srv := inprocFake(t, binancetest.Options{Account: binancetest.USDMOneWay})
	var f figures
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		exs := make([]*Exchange, n)
		ds := make([]budget.Demand, n)
		for i := range exs {
			a := config.Account{
				Name: fmt.Sprintf("a%03d", i), Exchange: USDM, APIKey: binancetest.Key, APISecret: binancetest.Secret,
				Endpoint: srv.URL, PollInterval: 15 * time.Second, Stream: stream, ReconcileInterval: 5 * time.Minute,
			}
			ex, err := New(a, Options{HTTPClient: &http.Client{Transport: srv.Transport()}})
			if err != nil {
				t.Fatal(err)
			}
			exs[i] = ex
			ds[i] = budget.Demand{Account: a.Name, Cost: ex.Cost(), Every: snapshotEvery(a)}
		}
		p := budget.Make(ds, time.Now())
		f.plan = p.Budgets[0]
		if plain {
			for i := range p.Schedules {
				p.Schedules[i].Every, p.Schedules[i].StartAfter = ds[i].Every, 0
			}
		}
		f.every = p.Schedules[0].Every
		var polls, firsts, failed atomic.Int64
		var wg sync.WaitGroup
		for i, ex := range exs {
			sc := p.Schedules[i]
			wg.Go(func() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(sc.StartAfter):
				}
				tk := time.NewTicker(sc.Every)
				defer tk.Stop()
				for first := true; ; first = false {
					pctx, pcancel := context.WithTimeout(ctx, sc.Every)
					_, err := ex.Snapshot(pctx)
					pcancel()
					switch {
					case ctx.Err() != nil:
						return
					case err != nil:
						failed.Add(1)
					case first:
						firsts.Add(1)
						polls.Add(1)
					default:
						polls.Add(1)
					}
					select {
					case <-ctx.Done():
						return
					case <-tk.C:
					}
				}
			})
		}
		wg.Wait()
		f.polls, f.firsts, f.failed = int(polls.Load()), int(firsts.Load()), int(failed.Load())
	})
	f.refused, f.peak = srv.Refused(), srv.PeakMinuteWeight()
	return f
}

// TestBudgetFigures is the figure: 60 and 500 accounts for 3
// minutes, polled every 15 s and streamed (reconciled every 5 min: mostly
// the start-up seed), never answered 429/418, no minute above 80% of 2,400.
func TestBudgetFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of CPU")
	}
	for _, c := range []struct {
		n      int
		stream bool
	}{{60, false}, {60, true}, {500, false}, {500, true}} {
		mode := "polled every 15s"
		if c.stream {
			mode = "streamed, reconciled every 5m"
		}
		t.Run(fmt.Sprintf("%d %s", c.n, mode), func(t *testing.T) {
			f := runAccounts(t, c.n, c.stream, false)
			t.Logf("%d accounts %s: plan every %s (asked %.0f/min, planned %.0f/min; first polls %d weight over %s); in 3 min: %d first polls, %d polls, %d failed; 429/418: %d; peak minute %d of 2,400",
				c.n, mode, f.every, f.plan.Asked, f.plan.Planned, f.plan.StartUpWeight, f.plan.StartUp.Round(time.Second), f.firsts, f.polls, f.failed, f.refused, f.peak)
			if f.refused != 0 {
				t.Errorf("%d requests answered 429/418", f.refused)
			}
			if f.peak > hotWeight {
				t.Errorf("peak minute weight %d > %d (80%% of 2,400)", f.peak, hotWeight)
			}
			if f.failed != 0 {
				t.Errorf("%d polls failed", f.failed)
			}
			if f.firsts == 0 {
				t.Errorf("no account started")
			}
		})
	}
}

// TestBudgetUngated: the 60 polled accounts as before the plan and the
// gate (every 15 s from the start, nothing held back) are refused by the
// fake within the first minute: 429 and then 418.
func TestBudgetUngated(t *testing.T) {
	ungated = true
	t.Cleanup(func() { ungated = false })
	f := runAccounts(t, 60, false, true)
	t.Logf("60 accounts, no plan, no gate: %d first polls, %d polls, %d failed; 429/418: %d; peak minute %d", f.firsts, f.polls, f.failed, f.refused, f.peak)
	if f.refused == 0 {
		t.Errorf("no request refused")
	}
}
