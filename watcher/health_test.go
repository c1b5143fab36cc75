package watcher

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/marginwatch/marginwatch/watcher/store"
)

// TestHealthDoesNotWaitOnTheDisk: /healthz and the watchdog answer while a
// commit is stuck in its fsync (a slow or failing disk).
func TestHealthDoesNotWaitOnTheDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, st := newTestWatcher(t, testConfig, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		stuck, release := make(chan struct{}), make(chan struct{})
		w.commit = func(b *store.Batch) error {
			select {
			case stuck <- struct{}{}:
			default:
			}
			<-release
			return st.Commit(b)
		}
		stop := runWatcher(t, w)
		<-stuck // the first cycle's commit hangs
		answered := make(chan struct{})
		go func() {
			w.Health()
			w.Alive()
			close(answered)
		}()
		synctest.Wait()
		select {
		case <-answered:
		default:
			t.Error("Health or Alive waits for a commit in flight")
		}
		close(release)
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
	})
}

// keyTrouble is an exchange whose key the exchange reports bad (KeyHealth)
// or whose polls fail for good (a revoked key).
type keyTrouble struct {
	scripted
	problem error
	poll    error
}

func (k *keyTrouble) KeyProblem() error { return k.problem }

func (k *keyTrouble) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	if k.poll != nil {
		return nil, k.poll
	}
	return k.scripted.Snapshot(ctx)
}

// TestHealthNamesEveryReason: /healthz is 503 with one line per reason,
// naming the account or notifier and the fix, and 200 when all is well.
func TestHealthNamesEveryReason(t *testing.T) {
	revoked := fmt.Errorf("GET /fapi/v3/account: 401: API key rejected: check api_key: %w", exchanges.ErrPermanent)
	tests := []struct {
		name     string
		ex       exchanges.Exchange
		refuse   bool // the only notifier rejects every message
		diskFull bool
		wait     time.Duration
		want     []string // lines of the detail; none: healthy
	}{
		{name: "healthy", ex: &scripted{liq: 50000}, wait: 2 * time.Second},
		{name: "stale", ex: &scripted{down: true}, wait: 40 * time.Second,
			want: []string{"account main: no fresh data for 40s"}},
		{name: "key problem reported", ex: &keyTrouble{scripted: scripted{liq: 50000}, problem: errors.New("API key can withdraw: remove the permission")}, wait: 2 * time.Second,
			want: []string{"account main: API key problem: API key can withdraw: remove the permission"}},
		{name: "key rejected", ex: &keyTrouble{poll: revoked}, wait: 2 * time.Second,
			want: []string{"account main: API key problem: GET /fapi/v3/account: 401: API key rejected: check api_key"}},
		{name: "store unwritable", ex: &scripted{liq: 95000}, diskFull: true, wait: 2 * time.Second,
			want: []string{"cannot be written (write marginwatch.db: no space left on device); alerts are held in memory: free disk space or fix the state_dir"}},
		{name: "every notifier failing", ex: &scripted{liq: 95000}, refuse: true, wait: 2 * time.Second,
			want: []string{"every notifier is failing", "notifier term: failing (401 invalid_auth)", "notify-test -notifier term"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(tt.ex)}
				if tt.refuse {
					opts.NewTarget = func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
						return delivery.Target{Name: n.Name, Notifier: refusing{}}, nil
					}
				}
				w, st := newTestWatcher(t, testConfig, opts)
				if tt.diskFull {
					w.commit = func(*store.Batch) error { return errors.New("write marginwatch.db: no space left on device") }
				}
				stop := runWatcher(t, w)
				time.Sleep(tt.wait)
				synctest.Wait()
				ok, detail := w.Health()
				stop()
				if ok != (len(tt.want) == 0) {
					t.Errorf("Health() ok = %v, want %v; detail:\n%s", ok, len(tt.want) == 0, detail)
				}
				for _, want := range tt.want {
					if !strings.Contains(detail, want) {
						t.Errorf("Health() detail lacks %q:\n%s", want, detail)
					}
				}
				if strings.Contains(detail, st.Path()) != tt.diskFull {
					t.Errorf("Health() detail names the state database %v, want %v:\n%s", !tt.diskFull, tt.diskFull, detail)
				}
			})
		})
	}
}

// TestHeartbeatOnlyWhileTrustworthy: the heartbeat hook is called after
// committed cycles with fresh data while a notifier delivers, and never on a
// full disk, with the only notifier refusing, or while the exchange is down.
func TestHeartbeatOnlyWhileTrustworthy(t *testing.T) {
	tests := []struct {
		name     string
		ex       exchanges.Exchange
		refuse   bool
		diskFull bool
		want     bool
	}{
		{name: "healthy", ex: &scripted{liq: 95000}, want: true},
		{name: "disk full", ex: &scripted{liq: 95000}, diskFull: true},
		{name: "only notifier refuses", ex: &scripted{liq: 95000}, refuse: true},
		{name: "exchange down", ex: &scripted{down: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var beats atomic.Int32
				opts := Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(tt.ex), Hooks: Hooks{Heartbeat: func() { beats.Add(1) }}}
				if tt.refuse {
					opts.NewTarget = func(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
						return delivery.Target{Name: n.Name, Notifier: refusing{}}, nil
					}
				}
				w, _ := newTestWatcher(t, testConfig, opts)
				if tt.diskFull {
					w.commit = func(*store.Batch) error { return errors.New("write marginwatch.db: no space left on device") }
				}
				stop := runWatcher(t, w)
				time.Sleep(time.Second) // the first alert is sent (or refused)
				synctest.Wait()
				before := beats.Load()
				time.Sleep(30 * time.Second)
				synctest.Wait()
				stop()
				if got := beats.Load() - before; (got > 0) != tt.want {
					t.Errorf("%d heartbeats in 30 s, want some: %v", got, tt.want)
				}
			})
		})
	}
}

// TestHealthStateFolderDeleted: the state folder deleted under the running
// daemon (bbolt keeps writing to the unlinked file, every commit
// "succeeds") turns /healthz 503 with the fix and is logged once; a
// database replaced at its path is noticed too.
func TestHealthStateFolderDeleted(t *testing.T) {
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replaced=%v", replace), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &lockedBuffer{}
				w, st := newTestWatcher(t, testConfig, Options{Stdout: &lockedBuffer{}, Logger: slog.New(slog.NewTextHandler(logs, nil)), NewExchange: scriptedExchange(&scripted{liq: 50000})})
				stop := runWatcher(t, w)
				time.Sleep(2 * time.Second)
				synctest.Wait()
				if ok, detail := w.Health(); !ok {
					t.Fatalf("healthy daemon: Health() = false:\n%s", detail)
				}
				dir := filepath.Dir(st.Path())
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				want := "is gone (no such file or directory)"
				if replace {
					if err := os.MkdirAll(dir, 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(st.Path(), []byte("not the open database"), 0o600); err != nil {
						t.Fatal(err)
					}
					want = "was replaced by another file"
				}
				time.Sleep(5 * time.Second)
				synctest.Wait()
				ok, detail := w.Health()
				stop()
				if ok {
					t.Fatal("Health() ok after the state folder was deleted")
				}
				for _, s := range []string{"state database " + st.Path(), want, "restart marginwatch"} {
					if !strings.Contains(detail, s) {
						t.Errorf("Health() detail lacks %q:\n%s", s, detail)
					}
				}
				if n := strings.Count(logs.String(), "deleted or replaced under the running daemon"); n != 1 {
					t.Errorf("logged %d times, want once:\n%s", n, logs.String())
				}
			})
		})
	}
}

// TestHeartbeatSilentWhileStateDatabaseDeleted: once /healthz reports the
// state database deleted (its state is lost at the next restart), the
// heartbeat stops saying "state committed", so the dead-man's switch
// outside notices.
func TestHeartbeatSilentWhileStateDatabaseDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var beats atomic.Int32
		w, st := newTestWatcher(t, testConfig, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(&scripted{liq: 50000}),
			Hooks: Hooks{Heartbeat: func() { beats.Add(1) }}})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if beats.Load() == 0 {
			t.Fatal("setup: no heartbeat from a healthy daemon")
		}
		if err := os.RemoveAll(filepath.Dir(st.Path())); err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if ok, _ := w.Health(); ok {
			t.Fatal("setup: /healthz did not notice the state database deleted")
		}
		before := beats.Load()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := beats.Load() - before; got > 0 {
			t.Errorf("%d heartbeats in 30 s while /healthz reports the state database deleted", got)
		}
	})
}
