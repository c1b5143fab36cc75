package watcher

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// streamed is a scripted exchange that also streams: the test pushes
// changes of the liquidation price into its live view, takes its streams
// down and brings them back, and counts the REST Snapshots.
type streamed struct {
	scripted
	smu       sync.Mutex
	changed   func()
	liveLiq   float64
	up        bool
	seeded    bool
	snapshots int
	streams   int   // Stream calls
	permanent error // Stream returns it at once
}

func (s *streamed) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	snap, err := s.scripted.Snapshot(ctx)
	s.smu.Lock()
	defer s.smu.Unlock()
	s.snapshots++
	if err == nil {
		s.seeded, s.liveLiq = true, snap.Positions[0].LiquidationPrice
	}
	return snap, err
}

func (s *streamed) Stream(ctx context.Context, changed func()) error {
	s.smu.Lock()
	if s.permanent != nil {
		s.smu.Unlock()
		return s.permanent
	}
	s.changed = changed
	s.streams++
	s.smu.Unlock()
	<-ctx.Done()
	return nil
}

// Live fills snap in place, as a real adapter does: no allocation once
// its arrays exist.
func (s *streamed) Live(snap *exchanges.Snapshot) (time.Time, bool) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if !s.up || !s.seeded {
		return time.Time{}, false
	}
	now := time.Now()
	snap.Time = now
	if len(snap.Balances) != 1 {
		snap.Balances = make([]exchanges.Balance, 1)
		snap.Positions = make([]exchanges.Position, 1)
	}
	snap.Balances[0] = exchanges.Balance{Asset: "USDT", WalletBalance: 10000, MarginBalance: 10000, CrossWalletBalance: 10000, AvailableBalance: 9000}
	snap.Positions[0] = exchanges.Position{
		Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 0.1,
		EntryPrice: 100000, MarkPrice: 100000, LiquidationPrice: s.liveLiq, Leverage: 5, Notional: 10000,
		FundingInterval: 8 * time.Hour, Stops: stopAbove,
	}
	snap.Events = nil
	return now, true
}

var stopAbove = []exchanges.Stop{{Trigger: 99990, ClosePosition: true}}

func (s *streamed) StreamStatus() exchanges.StreamStatus {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.up {
		return exchanges.StreamStatus{Up: true}
	}
	return exchanges.StreamStatus{Reason: "test: stream down"}
}

// push sets the live liquidation price and says so.
func (s *streamed) push(liq float64) {
	s.smu.Lock()
	s.liveLiq = liq
	changed := s.changed
	s.smu.Unlock()
	if changed != nil {
		changed()
	}
}

// setUp takes the streams down or brings them back.
func (s *streamed) setUp(up bool) {
	s.smu.Lock()
	s.up = up
	changed := s.changed
	s.smu.Unlock()
	if changed != nil {
		changed()
	}
}

func (s *streamed) polls() int {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.snapshots
}

const streamConfig = `state_dir: state
listen: ""
defaults: {poll_interval: 5s, stale_after: 30s}
accounts:
  - {name: main, exchange: simulated, scenario: calm, stream: true, reconcile_interval: 1m}
notifiers:
  - {name: term, type: console}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
    hysteresis: 2
`

// TestStreamEvaluatesEveryChange: a streamed change is evaluated when it
// arrives, not at the next poll, and no REST poll runs while the streams
// are up but the reconciliation every reconcile_interval.
func TestStreamEvaluatesEveryChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &streamed{scripted: scripted{liq: 50000}, up: true}
		out := &lockedBuffer{}
		var latencies []time.Duration
		var mu sync.Mutex
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex), Hooks: Hooks{
			Streamed: func(_ string, d time.Duration) { mu.Lock(); latencies = append(latencies, d); mu.Unlock() },
		}})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(1200 * time.Millisecond) // between polls
		synctest.Wait()
		ex.push(95000) // 5% away: critical
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("critical alert printed %d times right after the streamed change, want 1:\n%s", n, out)
		}
		time.Sleep(50 * time.Second)
		synctest.Wait()
		if n := ex.polls(); n != 1 {
			t.Errorf("%d REST snapshots in 51 s of healthy streaming, want 1 (the seed)", n)
		}
		time.Sleep(10 * time.Second) // past reconcile_interval
		synctest.Wait()
		if n := ex.polls(); n != 2 {
			t.Errorf("%d REST snapshots after one reconcile_interval, want 2", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(latencies) == 0 {
			t.Error("no tick-to-evaluation latency reported")
		}
	})
}

// TestStreamDownFallsBackToPolling: while the streams are down the
// account is polled every poll_interval (and alerts follow the polls);
// when they are back polling stops. Each switch is one info line.
func TestStreamDownFallsBackToPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &streamed{scripted: scripted{liq: 50000}, up: true}
		out := &lockedBuffer{}
		logs := &lockedBuffer{}
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: out, Logger: slog.New(slog.NewTextHandler(logs, nil)), NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()

		ex.setUp(false)
		ex.set(95000, false) // the REST data moves; the streams cannot tell
		before := ex.polls()
		time.Sleep(5 * time.Second) // one poll interval
		synctest.Wait()
		if ex.polls() <= before {
			t.Fatalf("no REST poll within one poll_interval of the streams going down")
		}
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("the fallback poll did not raise the alert (%d):\n%s", n, out)
		}
		if n := logs.lines("stream interrupted"); n != 1 {
			t.Errorf("%d 'stream interrupted' lines, want 1:\n%s", n, logs)
		}

		ex.setUp(true)
		synctest.Wait()
		back := ex.polls()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if ex.polls() != back {
			t.Errorf("still polling with the streams back: %d REST snapshots in 30 s", ex.polls()-back)
		}
		if n := logs.lines("streaming: evaluating"); n != 2 {
			t.Errorf("%d 'streaming' lines, want 2 (start, recovery):\n%s", n, logs)
		}
		if strings.Contains(out.String(), "data-stale") {
			t.Errorf("a stream interruption with working polls raised data-stale:\n%s", out)
		}
	})
}

// TestStreamRefusedPolls: an exchange that cannot stream this account is
// polled every poll_interval.
func TestStreamRefusedPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &streamed{scripted: scripted{liq: 50000}, permanent: exchanges.ErrPermanent}
		logs := &lockedBuffer{}
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: &lockedBuffer{}, Logger: slog.New(slog.NewTextHandler(logs, nil)), NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(21 * time.Second)
		synctest.Wait()
		if n := ex.polls(); n < 5 {
			t.Errorf("%d REST snapshots in 21 s without streams, want 5 (every 5 s)", n)
		}
		if n := logs.lines("cannot stream this account"); n != 1 {
			t.Errorf("%d 'cannot stream' lines, want 1:\n%s", n, logs)
		}
	})
}

// TestLiveCycleAllocatesNothing: a quiet streamed change — live view,
// metrics, rules, no state change — allocates nothing.
func TestLiveCycleAllocatesNothing(t *testing.T) {
	ex := &streamed{scripted: scripted{liq: 50000}, up: true, seeded: true, liveLiq: 50000}
	w, _ := newTestWatcher(t, streamConfig, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(ex)})
	s, _, _ := w.running()
	a := s.accounts[0]
	if _, ok, _ := w.liveCycle(a, ex); !ok {
		t.Fatal("live view not trusted")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok, committed := w.liveCycle(a, ex); !ok || !committed {
			t.Fatal("live cycle failed")
		}
	})
	if allocs != 0 {
		t.Errorf("a quiet streamed change made %v allocations, want 0", allocs)
	}
}

// TestStreamsSurviveReload: a reload that keeps a streamed account keeps
// its streams running and its live view seeded: no reconnection, no REST
// re-seed, and changes keep being evaluated at once.
func TestStreamsSurviveReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &streamed{scripted: scripted{liq: 50000}, up: true}
		path := writeConfig(t, streamConfig)
		out := &lockedBuffer{}
		w, _ := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		edited := strings.Replace(streamConfig, "hysteresis: 2", "hysteresis: 3", 1)
		if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		ex.push(95000)
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("critical alert printed %d times right after a streamed change past the reload, want 1:\n%s", n, out)
		}
		ex.smu.Lock()
		defer ex.smu.Unlock()
		if ex.streams != 1 || ex.snapshots != 1 {
			t.Errorf("across a reload: %d Stream calls and %d REST snapshots, want 1 and 1 (no reconnection, no re-seed)", ex.streams, ex.snapshots)
		}
	})
}

// TestQuietStreamStaysFresh: a streamed account with nothing to report
// (no tick, no update) is not blind while its streams are up.
func TestQuietStreamStaysFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &streamed{scripted: scripted{liq: 50000}, up: true}
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(55 * time.Second) // stale_after 30s, reconcile_interval 1m
		synctest.Wait()
		if strings.Contains(out.String(), "data-stale") {
			t.Errorf("a quiet but healthy stream raised data-stale:\n%s", out)
		}
		if ok, detail := w.Health(); !ok {
			t.Errorf("Health of a quiet healthy stream = %q", detail)
		}
		if n := ex.polls(); n != 1 {
			t.Errorf("%d REST snapshots, want 1", n)
		}
	})
}

// hangingReconcile streams fine, but its REST reads after the seed hang
// until their context ends (a REST API slow in a crash, a gate holding).
type hangingReconcile struct{ streamed }

func (h *hangingReconcile) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	if h.polls() >= 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.streamed.Snapshot(ctx)
}

// TestSlowReconcileKeepsStreaming: while a reconciliation's REST read
// hangs, the streamed changes are still evaluated at once and the
// account is not blind.
func TestSlowReconcileKeepsStreaming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &hangingReconcile{streamed{scripted: scripted{liq: 50000}, up: true}}
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(61 * time.Second) // the reconciliation at 1 m hangs
		synctest.Wait()
		ex.push(95000) // 5% away: critical
		time.Sleep(time.Second)
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Errorf("critical alert printed %d times 1 s after the streamed change, want 1", n)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := out.lines("data-stale"); n != 0 {
			t.Errorf("data-stale with healthy streams:\n%s", out)
		}
	})
}

// slowRead: REST reads after the seed take their data when they begin and
// answer 3 s later (a read held by the weight gate, a slow API in a crash).
type slowRead struct{ streamed }

func (s *slowRead) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	first := s.polls() == 0
	snap, err := s.scripted.Snapshot(ctx) // the data as of the read's start
	if !first {
		select {
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.smu.Lock()
	s.snapshots++
	if first && err == nil {
		s.seeded, s.liveLiq = true, snap.Positions[0].LiquidationPrice
	}
	s.smu.Unlock()
	return snap, err
}

// TestOlderReadDoesNotFlipStreamedAlert: a reconciliation that began
// before a streamed change crossed the critical threshold answers after
// it; absorbing the older REST data must not resolve the alert the newer
// streamed data raised (and then raise it again).
func TestOlderReadDoesNotFlipStreamedAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &slowRead{streamed{scripted: scripted{liq: 50000}, up: true}}
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(60*time.Second + 500*time.Millisecond) // the reconciliation at 1 m has begun
		synctest.Wait()
		ex.push(95000) // the price crashed: 5% away, critical
		ex.set(95000, false)
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("critical printed %d times after the streamed change, want 1:\n%s", n, out)
		}
		time.Sleep(5 * time.Second) // the older read answers
		synctest.Wait()
		if n := out.lines("resolved"); n != 0 {
			t.Errorf("the older REST read resolved the alert the newer streamed data raised:\n%s", out)
		}
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Errorf("critical printed %d times, want 1:\n%s", n, out)
		}
	})
}

// liquidatedDuringRead: the live view loses the position to a liquidation
// (with its event) while a slow REST read that still shows it is under way.
type liquidatedDuringRead struct {
	slowRead
	gone, told bool
}

func (s *liquidatedDuringRead) Live(snap *exchanges.Snapshot) (time.Time, bool) {
	snap.Balances = nil // the fake reallocates its one position
	tick, ok := s.slowRead.Live(snap)
	s.smu.Lock()
	defer s.smu.Unlock()
	if ok && s.gone {
		snap.Positions = snap.Positions[:0]
		if !s.told {
			s.told = true
			snap.Events = []exchanges.Event{{ID: "main/liquidation/BTCUSDT/long/1", Kind: exchanges.Liquidation, Time: time.Now(), Symbol: "BTCUSDT", Side: exchanges.Long, Message: "liquidated"}}
		}
	}
	return tick, ok
}

// TestOlderReadDoesNotResurrectLiquidatedPosition: a liquidation closes
// the alert as liquidated; the reconciliation that began before it must
// not bring the liquidated position's alert back.
func TestOlderReadDoesNotResurrectLiquidatedPosition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &liquidatedDuringRead{slowRead: slowRead{streamed{scripted: scripted{liq: 95000}, up: true}}}
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, streamConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(60*time.Second + 500*time.Millisecond) // the reconciliation at 1 m has begun
		synctest.Wait()
		ex.smu.Lock()
		ex.gone = true
		ex.smu.Unlock()
		ex.push(95000)
		synctest.Wait()
		time.Sleep(5 * time.Second) // the older read answers
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Errorf("liquidation-near fired %d times, want 1 (before the liquidation):\n%s", n, out)
		}
	})
}

// TestStreamFullDisk: a streamed account's notice raised while the state
// database cannot be written is held, not sent and not lost, and no
// heartbeat goes out meanwhile; once the disk has room the notice goes
// out exactly once.
func TestStreamFullDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &streamed{scripted: scripted{liq: 50000}, up: true}
		out := &lockedBuffer{}
		var beats atomic.Int32
		w, st := newTestWatcher(t, streamConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex), Hooks: Hooks{Heartbeat: func() { beats.Add(1) }}})
		var diskFull atomic.Bool
		w.commit = func(b *store.Batch) error {
			if diskFull.Load() {
				return errors.New("write marginwatch.db: no space left on device")
			}
			return st.Commit(b)
		}
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		diskFull.Store(true)
		before := beats.Load()
		ex.push(95000) // 5% away: critical
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Fatalf("a notice went out before it was stored:\n%s", out)
		}
		if n := beats.Load() - before; n != 0 {
			t.Errorf("%d heartbeats while the state database could not be written", n)
		}
		diskFull.Store(false)
		time.Sleep(10 * time.Second) // the next poll tick re-reads the view and retries
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Errorf("critical printed %d times after the disk recovered, want 1:\n%s", n, out)
		}
	})
}
