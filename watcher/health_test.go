package watcher

import (
	"testing"
	"testing/synctest"
	"time"

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
