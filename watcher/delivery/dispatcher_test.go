package delivery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// result is one scripted Notify outcome.
type result struct {
	retry bool
	err   error
}

// fake records calls and answers from a script; once the script is used up
// every call succeeds. block makes Notify wait for its ctx instead.
type fake struct {
	mu     sync.Mutex
	script []result
	block  bool
	delay  time.Duration // each call takes this long (or until ctx ends)
	calls  []call
}

type call struct {
	at  time.Time
	ids []string // alert IDs of the message
}

func (f *fake) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	f.mu.Lock()
	c := call{at: time.Now()}
	for _, a := range alerts {
		c.ids = append(c.ids, a.ID)
	}
	f.calls = append(f.calls, c)
	block := f.block
	var r result
	if len(f.script) > 0 {
		r, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return true, ctx.Err()
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	return r.retry, r.err
}

func (f *fake) get() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// offsets gives each call's time as an offset from start.
func offsets(cs []call, start time.Time) []time.Duration {
	out := []time.Duration{}
	for _, c := range cs {
		out = append(out, c.at.Sub(start))
	}
	return out
}

func callIDs(cs []call) [][]string {
	out := [][]string{}
	for _, c := range cs {
		out = append(out, c.ids)
	}
	return out
}

var errDown = errors.New("503 service unavailable")

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// enqueue commits one entry per id for notifier, created now.
func enqueue(t *testing.T, st *store.Store, notifier string, ids ...string) {
	t.Helper()
	var b store.Batch
	now := time.Now()
	for _, id := range ids {
		b.Enqueue = append(b.Enqueue, store.Entry{
			Notifier: notifier, Created: now, NextAttempt: now,
			Alerts: []notifiers.Alert{{ID: id, Severity: notifiers.Critical, Status: notifiers.Firing}},
		})
	}
	if err := st.Commit(&b); err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, st *store.Store, notifier string) []store.Entry {
	t.Helper()
	es, err := st.Pending(notifier, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// running starts d.Run and returns a stop function that cancels it and
// reports whether Run returned without any time passing.
func running(t *testing.T, d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() {
		start := time.Now()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		default:
			t.Fatal("Run did not return after cancel")
		}
		if el := time.Since(start); el != 0 {
			t.Errorf("Run took %v (fake time) to stop", el)
		}
	}
}

func newDispatcher(st *store.Store, logs *bytes.Buffer, targets ...Target) *Dispatcher {
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	d := New(st, targets, logger)
	d.Rand = func() float64 { return 0.5 } // no jitter: exact backoff
	return d
}

func TestRetryThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		f := &fake{script: []result{{true, errDown}, {true, errDown}}}
		d := newDispatcher(st, nil, Target{Name: "ops", Notifier: f})
		start := time.Now()
		enqueue(t, st, "ops", "a", "b")
		stop := running(t, d)

		// After the first failure the entry records it.
		synctest.Wait()
		es := pending(t, st, "ops")
		if len(es) != 2 || es[0].Attempts != 1 || !es[0].NextAttempt.Equal(start.Add(time.Second)) || es[0].LastError != errDown.Error() {
			t.Fatalf("after first failure: %+v", es)
		}

		time.Sleep(time.Minute)
		stop()
		// a fails at 0 and 1s (backoff 1s, then 2s), succeeds at 3s; b waits
		// behind it (order is kept) and goes out right after.
		if got, want := offsets(f.get(), start), []time.Duration{0, time.Second, 3 * time.Second, 3 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("call times = %v, want %v", got, want)
		}
		if got, want := callIDs(f.get()), [][]string{{"a"}, {"a"}, {"a"}, {"b"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("calls = %v, want %v", got, want)
		}
		if es := pending(t, st, "ops"); len(es) != 0 {
			t.Errorf("outbox not empty: %+v", es)
		}
		if got, want := d.Stats(), map[string]Stats{"ops": {Sent: 2, Failed: 2}}; !reflect.DeepEqual(got, want) {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
}

func TestPermanentFailureDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		var logs bytes.Buffer
		f := &fake{script: []result{{false, errors.New("400 invalid_payload")}}}
		d := newDispatcher(st, &logs, Target{Name: "ops", Notifier: f})
		enqueue(t, st, "ops", "a", "b")
		stop := running(t, d)
		synctest.Wait()
		stop()
		if got, want := callIDs(f.get()), [][]string{{"a"}, {"b"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("calls = %v, want %v", got, want)
		}
		if es := pending(t, st, "ops"); len(es) != 0 {
			t.Errorf("outbox not empty: %+v", es)
		}
		if got, want := d.Stats()["ops"], (Stats{Sent: 1, Failed: 1, Dropped: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		for _, want := range []string{"dropping undeliverable notification", "notifier=ops", "reason=\"permanent failure\"", "400 invalid_payload"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}
	})
}

// TestRetryAfter: a receiver's requested wait is honoured when longer than
// the backoff, up to MaxRetryAfter, and a new notice does not cut it short.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  []time.Duration
	}{
		// Longer than the 1s backoff: honoured.
		{"longer than backoff", 30 * time.Second, []time.Duration{0, 30 * time.Second, 30 * time.Second}},
		// Shorter: the backoff wins.
		{"shorter than backoff", 100 * time.Millisecond, []time.Duration{0, time.Second, time.Second}},
		// Longer than MaxRetryAfter: cut to it.
		{"longer than the cap", 2 * time.Hour, []time.Duration{0, MaxRetryAfter, MaxRetryAfter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := openStore(t, t.TempDir())
				f := &fake{script: []result{{true, &notifiers.RetryAfterError{After: tt.after, Err: errors.New("429")}}}}
				d := newDispatcher(st, nil, Target{Name: "phone", Notifier: f, MaxAge: 3 * time.Hour})
				start := time.Now()
				enqueue(t, st, "phone", "a")
				stop := running(t, d)
				time.Sleep(500 * time.Millisecond)
				enqueue(t, st, "phone", "b")
				d.Kick()
				time.Sleep(2*time.Hour - time.Second)
				stop()
				if got := offsets(f.get(), start); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("call times = %v, want %v", got, tt.want)
				}
				if got, want := callIDs(f.get()), [][]string{{"a"}, {"a"}, {"b"}}; !reflect.DeepEqual(got, want) {
					t.Errorf("calls = %v, want %v", got, want)
				}
			})
		})
	}
}

func TestMaxAgeDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		var logs bytes.Buffer
		var script []result
		for range 10 {
			script = append(script, result{true, errDown})
		}
		f := &fake{script: script}
		d := newDispatcher(st, &logs, Target{Name: "ops", Notifier: f, MaxAge: 10 * time.Second})
		start := time.Now()
		enqueue(t, st, "ops", "a")
		stop := running(t, d)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if es := pending(t, st, "ops"); len(es) != 1 {
			t.Fatalf("entry dropped before max_age: %+v", es)
		}
		time.Sleep(time.Minute)
		stop()
		// Attempts at 0, 1s, 3s, 7s; the next would be 15s, past max_age, so
		// the worker wakes at 10s and drops it.
		if got, want := offsets(f.get(), start), []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("call times = %v, want %v", got, want)
		}
		if es := pending(t, st, "ops"); len(es) != 0 {
			t.Errorf("outbox not empty: %+v", es)
		}
		if got, want := d.Stats()["ops"], (Stats{Failed: 4, Dropped: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		for _, want := range []string{"older than max_age", " age=10s ", "last_error=\"503 service unavailable\""} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}
	})
}

func TestExpiredEntryNeverSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		enqueue(t, st, "ops", "old")
		time.Sleep(2 * time.Hour) // the daemon was down
		enqueue(t, st, "ops", "new")
		f := &fake{}
		d := newDispatcher(st, nil, Target{Name: "ops", Notifier: f})
		stop := running(t, d)
		synctest.Wait()
		stop()
		if got, want := callIDs(f.get()), [][]string{{"new"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("calls = %v, want %v", got, want)
		}
		if got, want := d.Stats()["ops"], (Stats{Sent: 1, Dropped: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
}

func TestRestartDeliversExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		down := &fake{script: []result{{true, errDown}}}
		d1 := newDispatcher(st, nil, Target{Name: "ops", Notifier: down}, Target{Name: "term", Notifier: &fake{block: true}, Timeout: 2 * time.Second})
		enqueue(t, st, "ops", "a", "b")
		enqueue(t, st, "term", "t")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d1.Run(ctx) }()
		time.Sleep(500 * time.Millisecond)
		// Stop: a is rescheduled to 1s, b never tried; t's send, in flight,
		// runs out its own 2s timeout, fails and is rescheduled to 3s.
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		st2 := openStore(t, dir)
		ops, term := &fake{}, &fake{}
		d2 := newDispatcher(st2, nil, Target{Name: "ops", Notifier: ops}, Target{Name: "term", Notifier: term})
		stop := running(t, d2)
		time.Sleep(time.Minute)
		stop()

		// The new dispatcher (from 2s) sends a, whose backoff has passed, then
		// b; t waits for its stored backoff (3s). Each goes out once.
		if got, want := callIDs(ops.get()), [][]string{{"a"}, {"b"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("ops calls = %v, want %v", got, want)
		}
		if got, want := offsets(ops.get(), start), []time.Duration{2 * time.Second, 2 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("ops call times = %v, want %v", got, want)
		}
		if got, want := callIDs(term.get()), [][]string{{"t"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("term calls = %v, want %v", got, want)
		}
		if got, want := offsets(term.get(), start), []time.Duration{3 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("term call times = %v, want %v", got, want)
		}
		depth, err := st2.OutboxDepth()
		if err != nil || len(depth) != 0 {
			t.Errorf("OutboxDepth = %v, %v; want empty", depth, err)
		}
	})
}

// TestCancelLetsInFlightSendFinish: cancelling Run stops idle and backing-off
// workers at once, but a send in flight runs to completion, bounded by its
// own timeout, so a message the peer got is never retried as a failure.
func TestCancelLetsInFlightSendFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		slow := &fake{delay: 3 * time.Second}
		hung := &fake{block: true}
		backing := &fake{script: []result{{true, &notifiers.RetryAfterError{After: time.Hour, Err: errDown}}}}
		d := newDispatcher(st, nil,
			Target{Name: "slow", Notifier: slow, Timeout: 10 * time.Second},
			Target{Name: "hung", Notifier: hung, Timeout: 5 * time.Second},
			Target{Name: "backing", Notifier: backing},
			Target{Name: "idle", Notifier: &fake{}},
		)
		enqueue(t, st, "slow", "a")
		enqueue(t, st, "hung", "h")
		enqueue(t, st, "backing", "b")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		synctest.Wait() // every worker is mid-send, backing off or idle
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if el := time.Since(start); el != 5*time.Second {
			t.Errorf("Run returned %v after cancel, want 5s (the hung send's own timeout)", el)
		}
		if es := pending(t, st, "slow"); len(es) != 0 {
			t.Errorf("the send in flight at cancel did not complete: %+v", es)
		}
		if es := pending(t, st, "hung"); len(es) != 1 || es[0].Attempts != 1 {
			t.Errorf("hung entry = %+v, want one failed attempt recorded", es)
		}
		if got := len(backing.get()); got != 1 {
			t.Errorf("backing notifier called %d times, want 1", got)
		}
	})
}

func TestPerAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		f := &fake{block: true}
		d := newDispatcher(st, nil, Target{Name: "ops", Notifier: f, Timeout: 2 * time.Second})
		start := time.Now()
		enqueue(t, st, "ops", "a")
		stop := running(t, d)
		time.Sleep(6 * time.Second)
		stop()
		// 0: times out at 2s, backoff 1s -> 3s: times out at 5s, backoff 2s -> 7s.
		if got, want := offsets(f.get(), start), []time.Duration{0, 3 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("call times = %v, want %v", got, want)
		}
		es := pending(t, st, "ops")
		if len(es) != 1 || es[0].Attempts != 2 || !strings.Contains(es[0].LastError, "deadline exceeded") {
			t.Errorf("entry = %+v", es)
		}
	})
}

func TestKickWakesIdleWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		f := &fake{}
		d := newDispatcher(st, nil, Target{Name: "ops", Notifier: f})
		stop := running(t, d)
		synctest.Wait() // idle: the empty outbox was read, no timer set
		time.Sleep(time.Minute)
		start := time.Now()
		enqueue(t, st, "ops", "a")
		synctest.Wait()
		if n := len(f.get()); n != 0 {
			t.Fatalf("sent %d before Kick; an idle worker should be asleep", n)
		}
		d.Kick()
		synctest.Wait()
		if got, want := offsets(f.get(), start), []time.Duration{0}; !reflect.DeepEqual(got, want) {
			t.Errorf("call times after Kick = %v, want %v", got, want)
		}
		stop()
	})
}

func TestKickNeverBlocks(t *testing.T) {
	st := openStore(t, t.TempDir())
	d := New(st, []Target{{Name: "a", Notifier: &fake{}}, {Name: "b", Notifier: &fake{}}}, nil)
	for range 100 { // nobody is running: every Kick after the first must fall through
		d.Kick()
	}
}

type panicky struct{}

func (panicky) Notify(context.Context, ...notifiers.Alert) (bool, error) { panic("boom") }

func TestNotifierPanicIsRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		enqueue(t, st, "p", "a")
		d := newDispatcher(st, nil, Target{Name: "p", Notifier: panicky{}})
		stop := running(t, d)
		synctest.Wait()
		stop()
		es := pending(t, st, "p")
		if len(es) != 1 || es[0].Attempts != 1 || !strings.Contains(es[0].LastError, "notifier panicked: boom") {
			t.Errorf("entry = %+v", es)
		}
	})
}

func TestRunWarnsAboutOrphanedEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		enqueue(t, st, "removed", "a", "b")
		var logs bytes.Buffer
		d := newDispatcher(st, &logs, Target{Name: "ops", Notifier: &fake{}})
		stop := running(t, d)
		synctest.Wait()
		stop()
		for _, want := range []string{"not configured", "notifier=removed", "entries=2"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}
	})
}

func TestPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		f := &fake{}
		d := newDispatcher(st, nil, Target{Name: "chat", Notifier: f, MinInterval: time.Second})
		start := time.Now()
		enqueue(t, st, "chat", "a", "b", "c")
		stop := running(t, d)
		time.Sleep(10 * time.Second)
		stop()
		if got, want := offsets(f.get(), start), []time.Duration{0, time.Second, 2 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("paced call times = %v, want %v", got, want)
		}
	})
}

// TestHealth: a notifier that keeps failing for FailingAfter is reported
// failing once, and healthy again once it delivers; a permanent failure is
// reported at once.
func TestHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		var script []result
		for range 11 { // failures at 0, 1, 3, 7, 15, 23 … 63 s: the last passes FailingAfter
			script = append(script, result{true, errDown})
		}
		f := &fake{script: script}
		perm := &fake{script: []result{{false, errors.New("401 invalid_auth")}}}
		d := newDispatcher(st, nil, Target{Name: "ops", Notifier: f}, Target{Name: "mail", Notifier: perm})
		var mu sync.Mutex
		var got []Health
		d.OnHealth = func(h Health) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, h)
		}
		start := time.Now()
		enqueue(t, st, "ops", "a")
		enqueue(t, st, "mail", "m1", "m2")
		stop := running(t, d)
		time.Sleep(10 * time.Minute)
		stop()
		want := []Health{
			{Notifier: "mail", Failing: true, Since: start, LastError: "401 invalid_auth"},
			{Notifier: "mail", Since: start},
			{Notifier: "ops", Failing: true, Since: start, LastError: errDown.Error()},
			{Notifier: "ops", Since: start},
		}
		mu.Lock()
		defer mu.Unlock()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("health reports\n%+v\nwant\n%+v", got, want)
		}
	})
}
