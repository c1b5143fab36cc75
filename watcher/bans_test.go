package watcher

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// banning is an exchange that keeps bans: the test sets what Bans returns
// and records what RestoreBans was given, and whether that came before the
// first Snapshot.
type banning struct {
	scripted
	mu       sync.Mutex
	bans     []exchanges.Ban
	restored []exchanges.Ban
	polled   bool
	early    bool // RestoreBans came before the first Snapshot
}

func (b *banning) Bans() []exchanges.Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bans
}

func (b *banning) RestoreBans(bans []exchanges.Ban) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restored, b.early = bans, !b.polled
}

func (b *banning) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	b.mu.Lock()
	b.polled = true
	b.mu.Unlock()
	return b.scripted.Snapshot(ctx)
}

// TestBansSurviveRestart: a ban the exchange imposed is stored after the
// poll that got it, and handed back to the exchange after a restart before
// its first request.
func TestBansSurviveRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		ban := exchanges.Ban{Host: "fapi.binance.com", Status: 418, Until: time.Now().Add(time.Hour)}
		first := &banning{scripted: scripted{down: true}}
		w1, st := loadWatcher(t, path, nil, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(first)})
		stop := runWatcher(t, w1)
		time.Sleep(time.Second)
		synctest.Wait()
		first.mu.Lock()
		first.bans = []exchanges.Ban{ban} // a 418 on this poll
		first.mu.Unlock()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		w1.Close()
		saved, ok, err := st.Account("main")
		if err != nil || !ok || len(saved.Bans) != 1 || !saved.Bans[0].Until.Equal(ban.Until) {
			t.Fatalf("stored account state = %+v %v %v, want the ban", saved, ok, err)
		}

		second := &banning{scripted: scripted{liq: 50000}}
		w2, _ := loadWatcher(t, path, st, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(second)})
		stop = runWatcher(t, w2)
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
		second.mu.Lock()
		defer second.mu.Unlock()
		if len(second.restored) != 1 || second.restored[0].Status != 418 || !second.early {
			t.Errorf("after a restart RestoreBans got %+v (before the first poll: %v), want the stored ban before polling", second.restored, second.early)
		}
	})
}
