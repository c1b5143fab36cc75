package watcher

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
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
