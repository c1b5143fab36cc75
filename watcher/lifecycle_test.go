package watcher

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// funcExchange answers Snapshot with a function the test writes.
type funcExchange func(ctx context.Context) (*exchanges.Snapshot, error)

func (f funcExchange) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) { return f(ctx) }
func (f funcExchange) Close() error                                              { return nil }

// nearLiquidation is an account with one long position per symbol, each 5%
// from liquidation (critical for testConfig's liquidation-near).
func nearLiquidation(symbols ...string) *exchanges.Snapshot {
	s := &exchanges.Snapshot{
		Time:     time.Now(),
		Balances: []exchanges.Balance{{Asset: "USDT", WalletBalance: 10000, MarginBalance: 10000, CrossWalletBalance: 10000, AvailableBalance: 9000}},
	}
	for _, sym := range symbols {
		s.Positions = append(s.Positions, exchanges.Position{
			Symbol: sym, Side: exchanges.Long, MarginType: exchanges.Cross, Size: 1,
			EntryPrice: 100, MarkPrice: 100, LiquidationPrice: 95, Leverage: 5, Notional: 100,
			FundingInterval: 8 * time.Hour, Stops: []exchanges.Stop{{Trigger: 99, ClosePosition: true}},
		})
	}
	return s
}

// writeConfig writes text as config.yaml in a fresh folder (so that a
// reload reads it) and returns its path.
func writeConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadWatcher builds a watcher from the config file at path on st (the
// config's own store when st is nil).
func loadWatcher(t testing.TB, path string, st *store.Store, opts Options) (*Watcher, *store.Store) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		if st, err = store.Open(cfg.StateDir, store.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	w, err := New(cfg, compiled, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w, st
}

// TestHeldBatchKeepsItsStates: a batch held after a failed commit (full
// disk) is written later as it was decided, even though the account was
// evaluated again meanwhile. The engine reuses its Result slices, so a held
// batch that shares them would write the next evaluation's states instead:
// BTCUSDT's firing state would never reach the store, and a restart would
// fire it again as a new incident.
func TestHeldBatchKeepsItsStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var symbols atomic.Value
		symbols.Store([]string{"BTCUSDT"})
		ex := funcExchange(func(context.Context) (*exchanges.Snapshot, error) {
			return nearLiquidation(symbols.Load().([]string)...), nil
		})
		w, st := newTestWatcher(t, testConfig, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(ex)})
		var diskFull atomic.Bool
		diskFull.Store(true)
		w.commit = func(b *store.Batch) error {
			if diskFull.Load() {
				return errors.New("write marginwatch.db: no space left on device")
			}
			return st.Commit(b)
		}
		stop := runWatcher(t, w)
		time.Sleep(time.Second) // BTCUSDT fires; its batch is held
		synctest.Wait()

		symbols.Store([]string{"BTCUSDT", "ETHUSDT"})
		diskFull.Store(false)
		time.Sleep(5 * time.Second) // next poll: ETHUSDT fires, both batches go in
		synctest.Wait()
		stop()

		states, err := st.AlertStates()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, s := range states {
			got[s.Key.Rule+" "+s.Key.Symbol] = true
		}
		for _, want := range []string{"liquidation-near BTCUSDT", "liquidation-near ETHUSDT"} {
			if !got[want] {
				t.Errorf("state of %s not stored after the disk recovered; stored: %v", want, got)
			}
		}
	})
}

// TestRestartWhileBlindKeepsDataStale: a daemon restarted while the exchange
// is still down neither resolves the firing data-stale alert (the restart
// only resets the age it counts from) nor fires it again as a new incident.
func TestRestartWhileBlindKeepsDataStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		ex := &scripted{liq: 95000, down: true}
		out := &lockedBuffer{}
		opts := Options{Stdout: out, NewExchange: scriptedExchange(ex)}
		w1, st := loadWatcher(t, path, nil, opts)
		stop := runWatcher(t, w1)
		time.Sleep(40 * time.Second)
		synctest.Wait()
		stop()
		w1.Close()
		if n := out.lines("firing", "data-stale"); n != 1 {
			t.Fatalf("data-stale fired %d times before the restart, want 1:\n%s", n, out)
		}

		w2, _ := loadWatcher(t, path, st, opts) // restart; the exchange is still down
		stop = runWatcher(t, w2)
		time.Sleep(time.Second)
		synctest.Wait()
		// Within stale_after of the restart, /healthz must not call it healthy.
		if ok, detail := w2.Health(); ok || !strings.Contains(detail, "account main: no fresh data since before the restart") {
			t.Errorf("Health right after a restart while blind = %v %q, want unhealthy", ok, detail)
		}
		time.Sleep(49 * time.Second)
		synctest.Wait()
		stop()
		if n := out.lines("resolved", "data-stale"); n != 0 {
			t.Errorf("data-stale resolved after a restart while the exchange is still down:\n%s", out)
		}
		if n := out.lines("firing", "data-stale"); n != 1 {
			t.Errorf("data-stale fired %d times across the restart, want 1 (no new incident, no early repeat):\n%s", n, out)
		}
	})
}

// hanging is a notifier whose service never answers: Notify returns only
// when its context ends.
type hanging struct{ calls atomic.Int32 }

func (h *hanging) Notify(ctx context.Context, _ ...notifiers.Alert) (bool, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return true, ctx.Err()
}

// TestShutdownCutsHungSendShort: SIGTERM while a send hangs (the notifier's
// timeout is 30 s) returns within 10 s; the message stays in the outbox for
// the next start.
func TestShutdownCutsHungSendShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &hanging{}
		w, st := newTestWatcher(t, testConfig, Options{
			NewExchange: scriptedExchange(&scripted{liq: 95000}),
			NewTarget: func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
				return delivery.Target{Name: n.Name, Notifier: h, Timeout: 30 * time.Second}, nil
			},
		})
		stop := runWatcher(t, w)
		time.Sleep(time.Second)
		synctest.Wait()
		if h.calls.Load() == 0 {
			t.Fatal("no send in flight")
		}
		begin := time.Now()
		stop()
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("Run took %s to return after ctx ended, want within 10 s", took)
		}
		depth, err := st.OutboxDepth()
		if err != nil {
			t.Fatal(err)
		}
		if depth["term"] != 1 {
			t.Errorf("outbox holds %d entries for term after shutdown, want the 1 cut short", depth["term"])
		}
	})
}

// TestShutdownDoesNotWaitForHungPoll: a poll that ignores cancellation does
// not hold SIGTERM up beyond 10 s.
func TestShutdownDoesNotWaitForHungPoll(t *testing.T) {
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
		begin := time.Now()
		stop()
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("Run took %s to return after ctx ended, want within 10 s", took)
		}
		time.Sleep(2 * time.Minute) // let the stuck poll end before the store closes
		synctest.Wait()
	})
}

// keyChecking is an exchange whose key check waits for its context, like a
// check against an unreachable exchange.
type keyChecking struct{ scripted }

func (k *keyChecking) CheckKey(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestShutdownDuringReloadRaisesNoAlert: SIGTERM while a reload is checking
// a new account's key ends the reload quietly: no config-reload-failed alert
// about a check the shutdown itself cut off, and a prompt exit.
func TestShutdownDuringReloadRaisesNoAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		out := &lockedBuffer{}
		w, _ := loadWatcher(t, path, nil, Options{
			Stdout: out,
			NewExchange: func(a config.Account, _ func() time.Time, _ *slog.Logger) (exchanges.Exchange, error) {
				if a.Name == "alt" {
					return &keyChecking{}, nil
				}
				return &scripted{liq: 50000}, nil
			},
		})
		stop := runWatcher(t, w)
		time.Sleep(time.Second)
		synctest.Wait()
		added := strings.Replace(testConfig, "accounts:\n", "accounts:\n  - {name: alt, exchange: simulated, scenario: calm}\n", 1)
		if err := os.WriteFile(path, []byte(added), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(time.Second) // the reload waits on alt's key check
		synctest.Wait()
		begin := time.Now()
		stop()
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("Run took %s to return after ctx ended during a reload, want within 10 s", took)
		}
		if strings.Contains(out.String(), ConfigReloadFailed) {
			t.Errorf("shutdown during a reload raised %s:\n%s", ConfigReloadFailed, out)
		}
	})
}

// flaky is a notifier whose service fails (retryably) while down is set.
type flaky struct{ down atomic.Bool }

func (f *flaky) Notify(context.Context, ...notifiers.Alert) (bool, error) {
	if f.down.Load() {
		return true, errors.New("503 Service Unavailable")
	}
	return false, nil
}

// TestNotifierRecoveryAfterReload: a notifier reported failing before a
// reload is reported healthy again when it delivers after the reload (the
// new dispatcher must not forget the failure run), and is not reported
// failing a second time meanwhile.
func TestNotifierRecoveryAfterReload(t *testing.T) {
	text := strings.Replace(testConfig, "  - {name: term, type: console}\n", "  - {name: term, type: console}\n  - {name: chat, type: console}\n", 1)
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, text)
		out := &lockedBuffer{}
		chat := &flaky{}
		chat.down.Store(true)
		w, _ := loadWatcher(t, path, nil, Options{
			Stdout:      out,
			NewExchange: scriptedExchange(&scripted{liq: 95000}),
			NewTarget: func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
				if n.Name == "chat" {
					return delivery.Target{Name: n.Name, Notifier: chat}, nil
				}
				return NewTarget(n, env)
			},
		})
		stop := runWatcher(t, w)
		time.Sleep(3 * time.Minute) // chat keeps failing for over a minute
		synctest.Wait()
		if n := out.lines("notifier-failing", "notifier chat has been failing"); n != 1 {
			t.Fatalf("notifier-failing about chat printed %d times before the reload, want 1:\n%s", n, out)
		}
		w.RequestReload()
		time.Sleep(time.Second)
		synctest.Wait()
		chat.down.Store(false)
		time.Sleep(10 * time.Minute) // the next retry (at most 5 min away) delivers
		synctest.Wait()
		stop()
		if n := out.lines("notifier-failing", "notifier chat delivers again"); n != 1 {
			t.Errorf("notifier-failing about chat resolved %d times after chat recovered across a reload, want 1:\n%s", n, out)
		}
		if n := out.lines("notifier-failing", "notifier chat has been failing"); n != 1 {
			t.Errorf("notifier-failing about chat fired %d times, want 1 (a reload is no new incident):\n%s", n, out)
		}
	})
}

// TestReloadKeepsAccountWithoutRace: a reload that keeps an account whose
// lines moved in the file (and adds one whose key check takes a while) gives
// the kept account its new config only once its poller has stopped. Run with
// -race: the old poller reads the account's config while the reload builds.
func TestReloadKeepsAccountWithoutRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		var checks sync.WaitGroup
		w, _ := loadWatcher(t, path, nil, Options{
			Stdout: &lockedBuffer{},
			NewExchange: func(a config.Account, _ func() time.Time, _ *slog.Logger) (exchanges.Exchange, error) {
				if a.Name == "alt" {
					return &slowKey{wg: &checks}, nil
				}
				return &scripted{liq: 50000}, nil
			},
		})
		stop := runWatcher(t, w)
		time.Sleep(time.Second)
		synctest.Wait()
		moved := "# moved down a line\n" + strings.Replace(testConfig, "accounts:\n", "accounts:\n  - {name: alt, exchange: simulated, scenario: calm}\n", 1)
		if err := os.WriteFile(path, []byte(moved), 0o600); err != nil {
			t.Fatal(err)
		}
		checks.Add(1)
		w.RequestReload()
		checks.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		w.mu.Lock()
		defer w.mu.Unlock()
		if got := w.cur.account("main").cfg.At.Pos.Line; got != 7 {
			t.Errorf("kept account main is at line %d after the reload, want 7 (where the new file has it)", got)
		}
	})
}

// slowKey is an exchange whose key check takes 12 s (two poll intervals of
// the other account).
type slowKey struct {
	scripted
	wg *sync.WaitGroup
}

func (s *slowKey) CheckKey(ctx context.Context) error {
	s.wg.Done()
	select {
	case <-time.After(12 * time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestEventOfLastPollAtShutdown: a snapshot that arrives as shutdown begins
// is still evaluated: its events (here a margin call) were taken from the
// exchange and exist nowhere else.
func TestEventOfLastPollAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var polls atomic.Int32
		ex := funcExchange(func(context.Context) (*exchanges.Snapshot, error) {
			s := nearLiquidation("BTCUSDT")
			s.Positions[0].LiquidationPrice = 50
			if polls.Add(1) == 2 {
				s.Events = []exchanges.Event{{Kind: exchanges.MarginCall, Time: time.Now()}}
				cancel() // SIGTERM arrives as the answer does
			}
			return s, nil
		})
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, testConfig+`  - {name: margin-call, scope: event, event: margin_call, severity: critical}
`, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		if err := w.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if n := out.lines("margin-call"); n != 1 {
			t.Errorf("margin call of the last poll printed %d times, want 1:\n%s", n, out)
		}
	})
}

// TestDataStaleFiresAtStaleAfter: data-stale fires when stale_after has
// passed without fresh data, not at the first poll after that (up to a poll
// interval later), whether the exchange fails fast or hangs until the poll's
// timeout.
func TestDataStaleFiresAtStaleAfter(t *testing.T) {
	for _, hang := range []bool{false, true} {
		name := map[bool]string{false: "fails", true: "hangs"}[hang]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var down atomic.Bool
				ex := funcExchange(func(ctx context.Context) (*exchanges.Snapshot, error) {
					if !down.Load() {
						return nearLiquidation("BTCUSDT"), nil
					}
					if hang {
						<-ctx.Done()
						return nil, ctx.Err()
					}
					return nil, errors.New("GET /fapi/v3/account: 503 Service Unavailable")
				})
				out := &lockedBuffer{}
				w, _ := newTestWatcher(t, testConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
				stop := runWatcher(t, w)
				synctest.Wait() // the first poll (t = 0) has data
				down.Store(true)
				time.Sleep(29 * time.Second)
				synctest.Wait()
				if n := out.lines("data-stale"); n != 0 {
					t.Fatalf("data-stale before stale_after:\n%s", out)
				}
				time.Sleep(1500 * time.Millisecond) // 30.5 s without data > stale_after 30 s
				synctest.Wait()
				if n := out.lines("CRITICAL", "firing", "data-stale"); n != 1 {
					t.Errorf("data-stale printed %d times 0.5 s after stale_after, want 1:\n%s", n, out)
				}
				time.Sleep(20 * time.Second)
				synctest.Wait()
				stop()
				if n := out.lines("data-stale"); n != 1 {
					t.Errorf("data-stale printed %d times in 50 s blind, want 1 (repeat is 30 min):\n%s", n, out)
				}
			})
		})
	}
}

// TestRemovedRuleClosesItsAlerts: a reload that removes a rule sends a
// closing notice for each of its firing alerts, so the incident does not stay
// open in the user's chat forever; the rule's pending alerts just vanish.
func TestRemovedRuleClosesItsAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		out := &lockedBuffer{}
		w, _ := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		stop := runWatcher(t, w)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near", "firing"); n != 1 {
			t.Fatalf("liquidation-near fired %d times, want 1:\n%s", n, out)
		}
		withoutRule := testConfig[:strings.Index(testConfig, "rules:")]
		if err := os.WriteFile(path, []byte(withoutRule), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		if n := out.lines("liquidation-near", "closed", "alert closed: rule liquidation-near no longer watches account main on BTCUSDT long"); n != 1 {
			t.Errorf("closing notice printed %d times, want 1:\n%s", n, out)
		}
	})
}

// TestOrphanedOutboxEntriesArePruned: entries of a notifier that is no
// longer configured are dropped once older than the default max_age; newer
// ones are kept (the notifier may come back).
func TestOrphanedOutboxEntriesArePruned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(cfg.StateDir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		now := time.Now()
		old := notifiers.Alert{ID: "old", Status: notifiers.Firing, Severity: notifiers.Critical, At: now}
		recent := notifiers.Alert{ID: "recent", Status: notifiers.Firing, Severity: notifiers.Critical, At: now}
		if err := st.Commit(&store.Batch{Enqueue: []store.Entry{
			{Notifier: "ghost", Created: now.Add(-2 * time.Hour), NextAttempt: now, Alerts: []notifiers.Alert{old}},
			{Notifier: "ghost", Created: now.Add(-time.Minute), NextAttempt: now, Alerts: []notifiers.Alert{recent}},
		}}); err != nil {
			t.Fatal(err)
		}
		w, _ := loadWatcher(t, path, st, Options{NewExchange: scriptedExchange(&scripted{liq: 50000})})
		stop := runWatcher(t, w)
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
		left, err := st.Pending("ghost", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0].Alerts[0].ID != "recent" {
			t.Errorf("ghost's outbox after maintenance = %+v, want only the recent entry", left)
		}
	})
}

// TestOrphanClosedOnceAcrossCrash: a firing alert of a rule no longer in
// the configuration is closed at start with its state deleted in the same
// transaction, so a crash (kill -9) right after, and a second start, queue
// the closing notice exactly once.
func TestOrphanClosedOnceAcrossCrash(t *testing.T) {
	path := writeConfig(t, testConfig)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.StateDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	gone := rules.State{
		Key: rules.Key{Account: "main", Rule: "funding-high", Symbol: "BTCUSDT", Side: "long"}, Phase: rules.Active,
		ID: "f00d", Severity: notifiers.Warning, Since: start, StartsAt: start, LastSent: start, Value: 0.1, Threshold: 0.05,
	}
	if err := st.Commit(&store.Batch{Put: []rules.State{gone}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // start, crash before any poll, start again
		w, _ := loadWatcher(t, path, st, Options{NewExchange: scriptedExchange(&scripted{liq: 50000})})
		w.Close()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if st, err = store.Open(cfg.StateDir, store.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	defer st.Close()
	pending, err := st.Pending("term", 0)
	if err != nil {
		t.Fatal(err)
	}
	var closing []notifiers.Alert
	for _, e := range pending {
		for _, a := range e.Alerts {
			if a.ID == "f00d" {
				closing = append(closing, a)
			}
		}
	}
	if len(closing) != 1 {
		t.Fatalf("closing notice queued %d times across a crash, want 1: %+v", len(closing), pending)
	}
	if a := closing[0]; a.Kind != notifiers.KindClosed || a.Reason != notifiers.ReasonClosed || a.Status != notifiers.Resolved || a.Severity != notifiers.Warning {
		t.Errorf("closing notice = %+v, want kind closed, reason closed, status resolved, severity warning", a)
	}
	states, err := st.AlertStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Key == gone.Key {
			t.Errorf("the orphan's state is still stored: %+v", s)
		}
	}
}
