package watcher

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
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
	loadedAt := time.Now()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a file system with coarse timestamps
	if err := os.WriteFile(path, []byte(testConfig+"  - {name: missing-stop, metric: has_stop_loss, below: {warning: 1}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan bool, 1)
	w, _ := loadWatcher(t, path, nil, Options{
		NewExchange: scriptedExchange(&scripted{liq: 50000}),
		WatchFiles:  true,
		LoadedAt:    loadedAt,
		Hooks:       Hooks{Reloaded: func(ok bool, _ time.Time) { reloaded <- ok }},
	})
	if cfg.Path != w.Config().Path {
		t.Fatal("unexpected config path")
	}
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
