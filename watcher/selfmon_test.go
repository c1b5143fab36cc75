package watcher

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// storedSelf returns the stored state of a self alert, if any.
func storedSelf(t *testing.T, st *store.Store, k rules.Key) (rules.State, bool) {
	t.Helper()
	states, err := st.AlertStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Key == k {
			return s, true
		}
	}
	return rules.State{}, false
}

// TestNotifierFailingSurvivesRestart: notifier-failing is a persisted alert
// state: after a restart, the failing notifier's first delivery sends the
// resolution (once, same incident) and the state is deleted.
func TestNotifierFailingSurvivesRestart(t *testing.T) {
	text := strings.Replace(testConfig, "  - {name: term, type: console}\n", "  - {name: term, type: console}\n  - {name: chat, type: console}\n", 1)
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, text)
		out := &lockedBuffer{}
		chat := &flaky{}
		chat.down.Store(true)
		opts := Options{
			Stdout:      out,
			NewExchange: scriptedExchange(&scripted{liq: 95000}),
			NewTarget: func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
				if n.Name == "chat" {
					return delivery.Target{Name: n.Name, Notifier: chat}, nil
				}
				return NewTarget(n, env)
			},
		}
		w1, st := loadWatcher(t, path, nil, opts)
		stop := runWatcher(t, w1)
		time.Sleep(3 * time.Minute) // chat keeps failing for over a minute
		synctest.Wait()
		stop()
		w1.Close()
		fired, ok := storedSelf(t, st, notifierKey("chat"))
		if !ok || fired.Phase != rules.Active {
			t.Fatalf("notifier-failing about chat not stored as firing: %+v %v", fired, ok)
		}
		if n := out.lines("notifier-failing", "notifier chat has been failing"); n != 1 {
			t.Fatalf("notifier-failing about chat printed %d times before the restart, want 1:\n%s", n, out)
		}

		chat.down.Store(false)
		w2, _ := loadWatcher(t, path, st, opts)
		if ok, detail := w2.Health(); !ok { // term delivers: not every notifier fails
			t.Errorf("Health after restart = %q, want ok", detail)
		}
		stop = runWatcher(t, w2)
		time.Sleep(10 * time.Minute) // chat's held entries come due and go out
		synctest.Wait()
		stop()
		if n := out.lines("notifier-failing", "resolved", "notifier chat delivers again"); n != 1 {
			t.Errorf("notifier-failing about chat resolved %d times after the restart, want 1:\n%s", n, out)
		}
		if n := out.lines("notifier-failing", "notifier chat has been failing"); n != 1 {
			t.Errorf("notifier-failing about chat fired %d times across the restart, want 1:\n%s", n, out)
		}
		if s, ok := storedSelf(t, st, notifierKey("chat")); ok {
			t.Errorf("resolved notifier-failing still stored: %+v", s)
		}
	})
}

// TestReloadFailedResolvesAtRestart: a config-reload-failed alert firing
// when the daemon stops resolves at the next start (the configuration that
// started is valid), once.
func TestReloadFailedResolvesAtRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		out := &lockedBuffer{}
		opts := Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 50000})}
		w1, st := loadWatcher(t, path, nil, opts)
		stop := runWatcher(t, w1)
		if err := os.WriteFile(path, []byte(testConfig+"  - {bogus: 1}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		w1.RequestReload()
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
		w1.Close()
		if n := out.lines(ConfigReloadFailed, "firing"); n != 1 {
			t.Fatalf("config-reload-failed fired %d times, want 1:\n%s", n, out)
		}
		fired, ok := storedSelf(t, st, reloadKey)
		if !ok {
			t.Fatal("config-reload-failed not stored")
		}
		if err := os.WriteFile(path, []byte(testConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		w2, _ := loadWatcher(t, path, st, opts)
		stop = runWatcher(t, w2)
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
		if n := out.lines(ConfigReloadFailed, "resolved", "started with a valid configuration"); n != 1 {
			t.Errorf("config-reload-failed resolved %d times at restart, want 1:\n%s", n, out)
		}
		if _, ok := storedSelf(t, st, reloadKey); ok {
			t.Error("config-reload-failed still stored after the restart resolved it")
		}
		if fired.ID != rules.IncidentID(reloadKey, "", fired.Since) {
			t.Errorf("config-reload-failed ID %q is not rules.IncidentID's", fired.ID)
		}
	})
}

// toggled is a notifier that refuses for good (a revoked token) while down.
type toggled struct {
	down  atomic.Bool
	calls atomic.Int32
}

func (n *toggled) Notify(context.Context, ...notifiers.Alert) (bool, error) {
	n.calls.Add(1)
	if n.down.Load() {
		return false, errors.New("401 Unauthorized")
	}
	return false, nil
}

// TestOnlyNotifierRecoversWithoutNewAlerts: the only notifier refuses for
// good (its entries are dropped), so /healthz names it and the heartbeat
// stops; once it accepts again, a probe finds out without waiting for the
// next alert, and both recover.
func TestOnlyNotifierRecoversWithoutNewAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &toggled{}
		n.down.Store(true)
		var beats atomic.Int32
		w, _ := newTestWatcher(t, testConfig, Options{
			NewExchange: scriptedExchange(&scripted{liq: 95000}),
			NewTarget: func(c config.Notifier, _ NotifierEnv) (delivery.Target, error) {
				return delivery.Target{Name: c.Name, Notifier: n}, nil
			},
			Hooks: Hooks{Heartbeat: func() { beats.Add(1) }},
		})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if ok, detail := w.Health(); ok || !strings.Contains(detail, "notifier term: failing (401 Unauthorized)") {
			t.Fatalf("Health with the only notifier refusing = %v %q, want 503 naming it", ok, detail)
		}
		n.down.Store(false)
		before := beats.Load()
		time.Sleep(time.Minute)
		synctest.Wait()
		if ok, detail := w.Health(); !ok {
			t.Errorf("Health a minute after the notifier recovered = %q, want ok", detail)
		}
		if beats.Load() == before {
			t.Error("no heartbeat a minute after the only notifier recovered")
		}
	})
}

// recordingNotifier keeps what it is sent, or fails while down.
type recordingNotifier struct {
	down atomic.Bool
	mu   sync.Mutex
	got  []notifiers.Alert
}

func (r *recordingNotifier) Notify(_ context.Context, as ...notifiers.Alert) (bool, error) {
	if r.down.Load() {
		return false, errors.New("401 Unauthorized")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, as...)
	return false, nil
}

// TestProbedNotifierGetsItsResolution: the probe sends the failing notifier
// its own notifier-failing notice (firing, as a repeat); once it delivers
// again it must get the resolution too, or on that channel the incident
// stays open forever.
func TestProbedNotifierGetsItsResolution(t *testing.T) {
	text := strings.Replace(testConfig, "  - {name: term, type: console}\n", "  - {name: term, type: console}\n  - {name: chat, type: console}\n", 1)
	synctest.Test(t, func(t *testing.T) {
		chat := &recordingNotifier{}
		chat.down.Store(true)
		w, _ := newTestWatcher(t, text, Options{
			Stdout:      &lockedBuffer{},
			NewExchange: scriptedExchange(&scripted{liq: 95000}),
			NewTarget: func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
				if n.Name == "chat" {
					return delivery.Target{Name: n.Name, Notifier: chat}, nil
				}
				return NewTarget(n, env)
			},
		})
		stop := runWatcher(t, w)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		chat.down.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		open := map[string]bool{}
		for _, a := range chat.got {
			if a.Rule != NotifierFailing {
				continue
			}
			open[a.ID] = a.Status == notifiers.Firing
			t.Logf("chat got %s %s %s: %s", a.Rule, a.Status, a.Kind, a.Summary)
		}
		if len(open) == 0 {
			t.Fatal("chat was never probed; the test no longer covers the probe")
		}
		for id, o := range open {
			if o {
				t.Errorf("chat was told notifier-failing %s is firing and never that it resolved", id)
			}
		}
	})
}
