package watcher

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// heavyFirst is a cost whose first polls fit one a minute (1,500 of the
// 1,920 allowed) and whose steady polls are light: a plan spreads the
// first polls of n fresh accounts over n minutes.
var heavyFirst = exchanges.Cost{Budget: "test", Limit: 2400, Poll: 1, First: 1500}

// addBefore returns text with n polled accounts added at the head of its
// accounts.
func addBefore(text string, n int) string {
	var b strings.Builder
	b.WriteString("accounts:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: added%d, exchange: simulated, scenario: calm}\n", i)
	}
	return strings.Replace(text, "accounts:\n", b.String(), 1)
}

// reloadTo writes text to path and reloads w, then lets a second pass.
func reloadTo(t *testing.T, w *Watcher, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	w.RequestReload()
	time.Sleep(time.Second)
	synctest.Wait()
}

// TestReloadDoesNotDelayKeptAccount: a reload that adds accounts before a
// kept one starts the added ones spread over the minutes their first
// polls need, but the kept account keeps polling at its interval: it
// already has its caches, and it is watched.
func TestReloadDoesNotDelayKeptAccount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig) // poll_interval 5s, stale_after 30s
		out := &lockedBuffer{}
		var mu sync.Mutex
		var polls []time.Time // main's
		w, _ := loadWatcher(t, path, nil, Options{
			Stdout: out,
			NewExchange: func(config.Account, func() time.Time, *slog.Logger) (exchanges.Exchange, error) {
				return &costly{scripted: scripted{liq: 50000}, cost: heavyFirst}, nil
			},
			Hooks: Hooks{Polled: func(account string, _ time.Duration, ok bool, _ time.Time, _ int) {
				mu.Lock()
				defer mu.Unlock()
				if account == "main" && ok {
					polls = append(polls, time.Now())
				}
			}},
		})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(12 * time.Second)
		synctest.Wait()
		reloadTo(t, w, path, addBefore(testConfig, 5))
		time.Sleep(2 * time.Minute)
		synctest.Wait()

		if n := out.lines("data-stale", "main"); n != 0 {
			t.Errorf("data-stale for the kept account:\n%s", out)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(polls); i++ {
			if gap := polls[i].Sub(polls[i-1]); gap > 5*time.Second+time.Second {
				t.Errorf("main polled %s after the poll before (at %s), want every 5s across the reload", gap, polls[i-1].Format("15:04:05"))
			}
		}
		if len(polls) < 25 {
			t.Errorf("main polled %d times in 2m13s, want every 5s", len(polls))
		}
	})
}

// TestReloadKeepsPollingStreamDown: a kept streamed account whose streams
// are down at a reload keeps being polled, at once and every poll_interval:
// it does not wait the start offset a plan gives fresh accounts.
func TestReloadKeepsPollingStreamDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &costlyStream{streamed: streamed{scripted: scripted{liq: 50000}, up: true}, cost: heavyFirst}
		path := writeConfig(t, streamConfig) // poll_interval 5s, stale_after 30s
		out := &lockedBuffer{}
		w, _ := loadWatcher(t, path, nil, Options{
			Stdout: out,
			NewExchange: func(a config.Account, _ func() time.Time, _ *slog.Logger) (exchanges.Exchange, error) {
				if a.Name == "main" {
					return ex, nil
				}
				return &costly{scripted: scripted{liq: 50000}, cost: heavyFirst}, nil
			},
		})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		ex.setUp(false)
		time.Sleep(12 * time.Second)
		synctest.Wait()
		reloadTo(t, w, path, addBefore(streamConfig, 5))
		before := ex.polls()
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := ex.polls() - before; n < 11 {
			t.Errorf("%d REST polls in the minute after the reload with the streams down, want 12 (every 5s)", n)
		}
		if n := out.lines("data-stale", "main"); n != 0 {
			t.Errorf("data-stale for the kept account, polled all along:\n%s", out)
		}
	})
}
