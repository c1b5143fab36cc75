package watcher

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// TestAddedAccountNotStaleAtOnce: an account a reload adds, long after the
// daemon started, gets stale_after from when it was added before data-stale
// fires; it is not blind since the daemon's start.
func TestAddedAccountNotStaleAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		out := &lockedBuffer{}
		w, _ := loadWatcher(t, path, nil, Options{
			Stdout: out,
			NewExchange: func(a config.Account, _ func() time.Time, _ *slog.Logger) (exchanges.Exchange, error) {
				return &scripted{liq: 50000, down: a.Name == "alt"}, nil
			},
		})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(107 * time.Second)
		synctest.Wait()
		added := strings.Replace(testConfig, "accounts:\n", "accounts:\n  - {name: alt, exchange: simulated, scenario: calm}\n", 1)
		if err := os.WriteFile(path, []byte(added), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := out.lines("data-stale"); n != 0 {
			t.Errorf("an account added by reload fired data-stale at once:\n%s", out)
		}
		if ok, detail := w.Health(); !ok {
			t.Errorf("Health right after adding an account = %q, want ok", detail)
		}
		time.Sleep(30 * time.Second) // stale_after past the reload
		synctest.Wait()
		if n := out.lines("data-stale", "firing", "alt"); n != 1 {
			t.Errorf("data-stale for the added, unreachable account printed %d times after stale_after, want 1:\n%s", n, out)
		}
	})
}

// TestEditDuringStartupIsReloaded: an edit made after the configuration was
// read but before the file watch ran is not missed.
func TestEditDuringStartupIsReloaded(t *testing.T) {
	path := writeConfig(t, testConfig)
	st, err := store.Open(filepath.Join(t.TempDir(), "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The edit lands within the same file-system time stamp as the load:
	// only the content tells them apart.
	if err := os.WriteFile(path, []byte(testConfig+"  - {name: missing-stop, metric: has_stop_loss, below: {warning: 1}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan bool, 1)
	w, err := New(cfg, compiled, st, Options{
		NewExchange: scriptedExchange(&scripted{liq: 50000}),
		WatchFiles:  true,
		Hooks:       Hooks{Reloaded: func(ok bool, _ time.Time) { reloaded <- ok }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	stop := runWatcher(t, w)
	defer stop()
	select {
	case ok := <-reloaded:
		if !ok {
			t.Fatal("the reload failed")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("an edit made during start-up was not reloaded")
	}
	if n := len(w.Config().Rules); n != 2 {
		t.Errorf("running config has %d rules after the reload, want 2", n)
	}
}

// TestNoReloadWithoutEdit: a file written just before the daemon read it
// (within the file system's time-stamp resolution) is no edit during
// start-up: nothing is reloaded.
func TestNoReloadWithoutEdit(t *testing.T) {
	path := writeConfig(t, testConfig)
	reloaded := make(chan bool, 1)
	w, _ := loadWatcher(t, path, nil, Options{
		NewExchange: scriptedExchange(&scripted{liq: 50000}),
		WatchFiles:  true,
		Hooks:       Hooks{Reloaded: func(ok bool, _ time.Time) { reloaded <- ok }},
	})
	stop := runWatcher(t, w)
	defer stop()
	select {
	case <-reloaded:
		t.Fatal("reloaded a configuration nobody edited")
	case <-time.After(2 * time.Second):
	}
}

// TestReloadDoesNotWaitForHungSend: one notifier's send hangs (it answers
// only at its 30 s timeout). A reload cuts it short after reloadSendWait
// instead of holding every notifier's worker until it ends: a critical
// escalation produced right after the reload reaches the healthy console
// within seconds, not ~30 s later.
func TestReloadDoesNotWaitForHungSend(t *testing.T) {
	text := strings.Replace(testConfig, "  - {name: term, type: console}\n", "  - {name: term, type: console}\n  - {name: chat, type: console}\n", 1)
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		ex := &scripted{liq: 90000} // 10%: warning
		h := &hanging{}
		w, _ := newTestWatcher(t, text, Options{
			Stdout:      out,
			NewExchange: scriptedExchange(ex),
			NewTarget: func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
				if n.Name == "chat" {
					return delivery.Target{Name: n.Name, Notifier: h, Timeout: 30 * time.Second}, nil
				}
				return NewTarget(n, env)
			},
		})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		if h.calls.Load() == 0 || out.lines("WARNING", "liquidation-near") != 1 {
			t.Fatalf("setup: chat calls %d, console:\n%s", h.calls.Load(), out)
		}
		w.RequestReload()
		ex.set(95000, false) // 5%: critical, seen at the next poll (≤5 s)
		begin := time.Now()
		for out.lines("CRITICAL", "liquidation-near") == 0 && time.Since(begin) < time.Minute {
			time.Sleep(100 * time.Millisecond)
		}
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("the critical escalation reached the healthy console %s after it was due; a reload waited for another notifier's hung send", took.Round(time.Second))
		}
	})
}

// TestShutdownDuringReloadWithHungPoll: SIGTERM while a reload waits for a
// poll that ignores cancellation (the model of
// TestShutdownDoesNotWaitForHungPoll) still returns within 10 s, leaving
// the stuck poll behind.
func TestShutdownDuringReloadWithHungPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var polls atomic.Int32
		ex := funcExchange(func(context.Context) (*exchanges.Snapshot, error) {
			if polls.Add(1) > 1 {
				time.Sleep(time.Minute) // a stuck read that ignores ctx
			}
			return nearLiquidation("BTCUSDT"), nil
		})
		w, _ := newTestWatcher(t, testConfig, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		time.Sleep(6 * time.Second) // the second poll hangs
		synctest.Wait()
		w.RequestReload()
		time.Sleep(time.Second)
		synctest.Wait()
		begin := time.Now()
		stop()
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("Run took %s to return after SIGTERM during a reload, want within 10 s", took)
		}
		time.Sleep(2 * time.Minute) // let the stuck poll end inside the bubble
		synctest.Wait()
	})
}
