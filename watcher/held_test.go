package watcher

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// TestFullDiskHoldsBoundedMemory: 1,000 cycles with the state database
// unwritable hold one merged batch (one state, one account, one entry with
// the firing notice and the latest repeat), not one batch per cycle; when
// the disk recovers everything is written once, in order.
func TestFullDiskHoldsBoundedMemory(t *testing.T) {
	// Polls every second: the held notices stay younger than max_age (1h).
	text := strings.Replace(testConfig, "    hysteresis: 2\n", "    hysteresis: 2\n    repeat: 1m\n", 1)
	text = strings.Replace(text, "poll_interval: 5s", "poll_interval: 1s", 1)
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		w, st := newTestWatcher(t, text, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		var diskFull atomic.Bool
		diskFull.Store(true)
		var written atomic.Int32
		w.commit = func(b *store.Batch) error {
			if diskFull.Load() {
				return errors.New("write marginwatch.db: no space left on device")
			}
			written.Add(1)
			return st.Commit(b)
		}
		stop := runWatcher(t, w)
		for range 10 {
			time.Sleep(100 * time.Second) // 100 cycles
			synctest.Wait()
			w.commitMu.Lock()
			states, accounts, entries, alerts := heldSize(w.held)
			w.commitMu.Unlock()
			if states > 1 || accounts > 1 || entries > 1 || alerts > 2 {
				t.Fatalf("held after a full disk: %d states, %d accounts, %d entries, %d alerts; want at most 1, 1, 1, 2", states, accounts, entries, alerts)
			}
		}
		if n := out.lines("liquidation-near"); n != 0 {
			t.Fatalf("a notice went out before it was stored:\n%s", out)
		}
		diskFull.Store(false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		if written.Load() == 0 {
			t.Fatal("nothing written after the disk recovered")
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "firing") || !strings.Contains(lines[1], "repeat") {
			t.Errorf("after the disk recovered, want the firing notice then one repeat; got:\n%s", out)
		}
		states, err := st.AlertStates()
		if err != nil {
			t.Fatal(err)
		}
		if len(states) != 1 || states[0].Key.Rule != "liquidation-near" || states[0].Phase != rules.Active {
			t.Errorf("stored states after recovery = %+v, want liquidation-near firing", states)
		}
		acct, ok, err := st.Account("main")
		if err != nil || !ok || time.Since(acct.LastSuccess) > time.Minute || len(acct.History) == 0 {
			t.Errorf("stored account after recovery = %+v %v %v, want its last success and history", acct, ok, err)
		}
	})
}

// TestFullDiskEscalationNotDroppedAsOld: a warning fires while the disk is
// full; two hours later (disk still full) it escalates to critical and the
// disk recovers. The escalation was made seconds ago: it must be delivered,
// not dropped as "older than max_age" because it was merged into the entry
// held since the first failure.
func TestFullDiskEscalationNotDroppedAsOld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		logs := &lockedBuffer{}
		ex := &scripted{liq: 90000} // 10%: warning
		w, st := newTestWatcher(t, testConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex), Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))})
		var diskFull atomic.Bool
		diskFull.Store(true)
		w.commit = func(b *store.Batch) error {
			if diskFull.Load() {
				return errors.New("write marginwatch.db: no space left on device")
			}
			return st.Commit(b)
		}
		stop := runWatcher(t, w)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		ex.set(95000, false) // 5%: critical
		time.Sleep(5 * time.Second)
		synctest.Wait()
		diskFull.Store(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		if n := out.lines("CRITICAL", "liquidation-near"); n == 0 {
			t.Errorf("the critical escalation made seconds ago was never delivered; console:\n%s\nerror logs (last):\n%s", out, lastLines(logs.String(), 2))
		}
	})
}

// lastLines returns s's last n lines.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestMergeLastWins: held batches merge by key, last wins, and entries
// coalesce per notifier without losing an incident's opening or closing.
func TestMergeLastWins(t *testing.T) {
	k1 := rules.Key{Account: "main", Rule: "r", Symbol: "BTCUSDT", Side: "long"}
	k2 := rules.Key{Account: "main", Rule: "r", Symbol: "ETHUSDT", Side: "long"}
	a := func(id string, kind notifiers.Kind) notifiers.Alert { return notifiers.Alert{ID: id, Kind: kind} }
	b1 := &store.Batch{
		Put:      []rules.State{{Key: k1, ID: "1"}, {Key: k2, ID: "2"}},
		Accounts: map[string]store.AccountState{"main": {History: []byte{1}}},
		Enqueue:  []store.Entry{{Notifier: "term", Alerts: []notifiers.Alert{a("1", notifiers.KindFiring), a("2", notifiers.KindFiring)}}},
	}
	b2 := &store.Batch{
		Put:      []rules.State{{Key: k1, ID: "1", Value: 9}},
		Delete:   []rules.Key{k2},
		Accounts: map[string]store.AccountState{"main": {History: []byte{2}}},
		Enqueue: []store.Entry{
			{Notifier: "term", Alerts: []notifiers.Alert{a("1", notifiers.KindRepeat), a("2", notifiers.KindResolved)}},
			{Notifier: "chat", Alerts: []notifiers.Alert{a("1", notifiers.KindRepeat)}},
		},
	}
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	b1.Enqueue[0].Created = t0
	b2.Enqueue[0].Created = t0.Add(time.Hour)
	b3 := &store.Batch{Enqueue: []store.Entry{{Notifier: "term", Created: t0.Add(2 * time.Hour), Alerts: []notifiers.Alert{a("1", notifiers.KindRepeat)}}}}
	m, _ := merge(nil, b1)
	m, _ = merge(m, b2)
	m, dropped := merge(m, b3)
	if len(dropped) != 0 {
		t.Errorf("dropped %v", dropped)
	}
	if len(m.Put) != 1 || m.Put[0].Value != 9 || len(m.Delete) != 1 || m.Delete[0] != k2 {
		t.Errorf("merged states: put %+v delete %+v; want k1 with value 9, k2 deleted", m.Put, m.Delete)
	}
	if h := m.Accounts["main"].History; len(h) != 1 || h[0] != 2 {
		t.Errorf("merged account history %v, want the last", h)
	}
	var got []string
	for _, e := range m.Enqueue {
		for _, x := range e.Alerts {
			got = append(got, e.Notifier+":"+x.ID+":"+string(x.Kind))
		}
	}
	want := "term:1:firing term:2:firing term:2:resolved term:1:repeat chat:1:repeat"
	if strings.Join(got, " ") != want {
		t.Errorf("merged entries %q, want %q", strings.Join(got, " "), want)
	}
	if c := m.Enqueue[0].Created; !c.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("merged entry created %v, want the newest part's %v (max_age must not count from the first)", c, t0.Add(2*time.Hour))
	}
	if len(b1.Enqueue[0].Alerts) != 2 || !b1.Enqueue[0].Created.Equal(t0) {
		t.Error("merge modified its input")
	}
}

// TestHistoryWrittenOnlyWhenDue: the account's equity history is not
// rewritten on every poll, only when it changed and historyEvery passed.
func TestHistoryWrittenOnlyWhenDue(t *testing.T) {
	text := strings.Replace(testConfig, "poll_interval: 5s", "poll_interval: 1s", 1)
	synctest.Test(t, func(t *testing.T) {
		w, st := newTestWatcher(t, text, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(&scripted{liq: 50000})})
		var writes atomic.Int32
		w.commit = func(b *store.Batch) error {
			if len(b.Accounts) > 0 {
				writes.Add(1)
			}
			return st.Commit(b)
		}
		stop := runWatcher(t, w)
		time.Sleep(150 * time.Second) // 150 polls
		synctest.Wait()
		stop()
		if n := writes.Load(); n < 1 || n > 3 {
			t.Errorf("account state written %d times in 150 one-second polls, want 1 to 3 (at start, then once a minute)", n)
		}
	})
}
