package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/webhook"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// TestNewNoticeCutsBackoffShort: while the head entry waits out a backoff,
// a notice queued for the same notifier makes the worker try at once (the
// head first, so order is kept) instead of queueing behind the old wait.
// Kicks after commits that queued nothing new for it change nothing, and
// such early attempts are at least a second apart.
func TestNewNoticeCutsBackoffShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		var script []result
		for range 5 {
			script = append(script, result{true, errDown})
		}
		f := &fake{script: script}
		other := &fake{}
		d := newDispatcher(st, nil, Target{Name: "ops", Notifier: f}, Target{Name: "other", Notifier: other})
		start := time.Now()
		enqueue(t, st, "ops", "a")
		stop := running(t, d)
		// Failures at 0, 1, 3 and 7 s; the next attempt is due at 15 s.
		time.Sleep(8 * time.Second)
		for i := range 50 {
			enqueue(t, st, "other", fmt.Sprint("x", i))
			d.Kick()
			synctest.Wait()
		}
		if got, want := offsets(f.get(), start), []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after kicks for another notifier: call times = %v, want %v", got, want)
		}
		// At 8 s a new notice: a is tried at once (and fails again, so the
		// next is due at 16 s).
		enqueue(t, st, "ops", "b")
		d.Kick()
		synctest.Wait()
		for range 50 { // nothing new: no attempt
			d.Kick()
			synctest.Wait()
		}
		time.Sleep(500 * time.Millisecond)
		// At 8.5 s another: tried at 9 s, a second after the last attempt;
		// it succeeds and everything flows.
		enqueue(t, st, "ops", "c")
		d.Kick()
		time.Sleep(time.Minute)
		stop()
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 8 * time.Second, 9 * time.Second, 9 * time.Second, 9 * time.Second}
		if got := offsets(f.get(), start); !reflect.DeepEqual(got, want) {
			t.Errorf("call times = %v, want %v", got, want)
		}
		if got, want := callIDs(f.get()), [][]string{{"a"}, {"a"}, {"a"}, {"a"}, {"a"}, {"a"}, {"b"}, {"c"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("calls = %v, want %v", got, want)
		}
		if got, want := d.Stats()["ops"], (Stats{Sent: 3, Failed: 5}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
}

// hookReceiver is a webhook endpoint that answers 503 while down and
// records what it accepted otherwise.
type hookReceiver struct {
	down     atomic.Bool
	mu       sync.Mutex
	accepted map[string]int // webhook-id -> times accepted
	order    []string       // alert IDs in the order accepted
	refused  int
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down.Load() {
		r.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.accepted[req.Header.Get("webhook-id")]++
	for _, a := range p.Alerts {
		r.order = append(r.order, a.ID)
	}
}

// timed records when each successful Notify returned, in the bubble's time.
type timed struct {
	n  notifiers.Notifier
	mu sync.Mutex
	at []time.Time
}

func (t *timed) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	retry, err := t.n.Notify(ctx, alerts...)
	if err == nil {
		t.mu.Lock()
		t.at = append(t.at, time.Now())
		t.mu.Unlock()
	}
	return retry, err
}

// TestHeldNoticesArriveWithin10sOfRecovery: a webhook receiver answers 503
// for a while, during which notices keep being queued; once it answers 200
// again, every held notice is delivered within 10 s, each exactly once
// (counted by webhook-id), in order — however long the outage and whatever
// the jitter.
func TestHeldNoticesArriveWithin10sOfRecovery(t *testing.T) {
	tests := []struct {
		name   string
		outage time.Duration
		rand   float64
	}{
		{"20s, longest jitter", 20 * time.Second, 0.9999},
		{"20s, shortest jitter", 20 * time.Second, 0},
		{"10m, longest jitter", 10 * time.Minute, 0.9999},
		{"10m, mid jitter", 10*time.Minute + 3*time.Second, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server runs outside the bubble: its goroutines wait on
			// the real network. Without keep-alive no client goroutine is
			// left waiting on it either, so the bubble's clock can move.
			recv := &hookReceiver{accepted: map[string]int{}}
			recv.down.Store(true)
			srv := httptest.NewServer(recv)
			defer srv.Close()
			synctest.Test(t, func(t *testing.T) {
				n, err := webhook.New(config.Notifier{
					Name: "hook", Type: "webhook", URL: config.Secret(srv.URL + "/hook"), Timeout: 2 * time.Second,
				}, webhook.Options{HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
				if err != nil {
					t.Fatal(err)
				}
				hook := &timed{n: n}
				st := openStore(t, t.TempDir())
				d := newDispatcher(st, nil, Target{Name: "hook", Notifier: hook})
				d.Rand = func() float64 { return tt.rand }
				stop := running(t, d)

				// Notices queued during the outage, as evaluations would.
				var want []string
				start := time.Now()
				for i := 0; ; i++ {
					at := time.Duration(i) * 3700 * time.Millisecond
					if at >= tt.outage {
						break
					}
					time.Sleep(time.Until(start.Add(at)))
					id := fmt.Sprint("n", i)
					enqueueAt(t, st, "hook", id)
					want = append(want, id)
					d.Kick()
				}
				time.Sleep(time.Until(start.Add(tt.outage)))
				synctest.Wait()
				recovered := time.Now()
				recv.down.Store(false)

				time.Sleep(10 * time.Second)
				synctest.Wait()
				stop()

				recv.mu.Lock()
				defer recv.mu.Unlock()
				if recv.refused == 0 {
					t.Fatal("the receiver refused nothing: the outage was not exercised")
				}
				if !slices.Equal(recv.order, want) {
					t.Errorf("accepted %v, want %v (each once, in order)", recv.order, want)
				}
				if len(recv.accepted) != len(want) {
					t.Errorf("%d distinct webhook-ids accepted, want %d", len(recv.accepted), len(want))
				}
				for id, n := range recv.accepted {
					if n != 1 {
						t.Errorf("webhook-id %s accepted %d times, want once", id, n)
					}
				}
				hook.mu.Lock()
				defer hook.mu.Unlock()
				for i, at := range hook.at {
					if lag := at.Sub(recovered); lag > 10*time.Second {
						t.Errorf("notice %d delivered %v after recovery, want within 10s", i, lag)
					}
				}
				if es := pending(t, st, "hook"); len(es) != 0 {
					t.Errorf("outbox still holds %d entries", len(es))
				}
			})
		})
	}
}

// enqueueAt commits one entry for notifier whose alert carries the current
// time, so every notice has its own webhook-id.
func enqueueAt(t *testing.T, st *store.Store, notifier, id string) {
	t.Helper()
	now := time.Now()
	b := store.Batch{Enqueue: []store.Entry{{
		Notifier: notifier, Created: now, NextAttempt: now,
		Alerts: []notifiers.Alert{{ID: id, Kind: notifiers.KindFiring, Severity: notifiers.Critical, Status: notifiers.Firing, At: now, StartsAt: now}},
	}}}
	if err := st.Commit(&b); err != nil {
		t.Fatal(err)
	}
}

// splitFake is a fake notifier that sends one alert per message.
type splitFake struct{ fake }

func (*splitFake) Split(alerts []notifiers.Alert) [][]notifiers.Alert {
	parts := make([][]notifiers.Alert, len(alerts))
	for i := range alerts {
		parts[i] = alerts[i : i+1]
	}
	return parts
}

// enqueueParts commits one entry for notifier with n alerts p1..pn.
func enqueueParts(t *testing.T, st *store.Store, notifier string, n int) {
	t.Helper()
	now := time.Now()
	e := store.Entry{Notifier: notifier, Created: now, NextAttempt: now}
	for i := range n {
		e.Alerts = append(e.Alerts, notifiers.Alert{ID: fmt.Sprint("p", i+1), Severity: notifiers.Critical, Status: notifiers.Firing})
	}
	if err := st.Commit(&store.Batch{Enqueue: []store.Entry{e}}); err != nil {
		t.Fatal(err)
	}
}

// partIDs names the parts p<from>..p<to>, one call each.
func partIDs(from, to int) [][]string {
	var out [][]string
	for i := from; i <= to; i++ {
		out = append(out, []string{fmt.Sprint("p", i)})
	}
	return out
}

// failOn is a script whose call n (1-based) fails and the others succeed.
func failOn(n int) []result {
	s := make([]result, n)
	s[n-1] = result{true, errDown}
	return s
}

// TestSplitResumesAtFailedPart: an entry split into 15 parts whose part 12
// fails: parts 1–11 go out once, 12–15 after the retry, paced, nothing
// twice, and the entry counts once.
func TestSplitResumesAtFailedPart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		f := &splitFake{fake{script: failOn(12)}}
		d := newDispatcher(st, nil, Target{Name: "tg", Notifier: f, MinInterval: time.Second})
		start := time.Now()
		enqueueParts(t, st, "tg", 15)
		stop := running(t, d)
		time.Sleep(time.Minute)
		stop()
		want := append(partIDs(1, 12), partIDs(12, 15)...)
		if got := callIDs(f.get()); !reflect.DeepEqual(got, want) {
			t.Errorf("calls = %v, want %v", got, want)
		}
		// One a second; part 12 fails at 11 s and is retried a second later.
		var times []time.Duration
		for i := range 16 {
			times = append(times, time.Duration(i)*time.Second)
		}
		times[12], times[13], times[14], times[15] = 12*time.Second, 13*time.Second, 14*time.Second, 15*time.Second
		if got := offsets(f.get(), start); !reflect.DeepEqual(got, times) {
			t.Errorf("call times = %v, want %v", got, times)
		}
		if got, want := d.Stats()["tg"], (Stats{Sent: 1, Failed: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		if es := pending(t, st, "tg"); len(es) != 0 {
			t.Errorf("outbox not empty: %+v", es)
		}
	})
}

// TestSplitResumesAfterRestart: the parts delivered before a restart are
// not sent again by the next Dispatcher on the same database file.
func TestSplitResumesAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f1 := &splitFake{fake{script: failOn(12)}}
		d1 := newDispatcher(st, nil, Target{Name: "tg", Notifier: f1})
		enqueueParts(t, st, "tg", 15)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d1.Run(ctx) }()
		synctest.Wait() // parts 1–11 out, 12 failed, waiting 1 s
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := callIDs(f1.get()), partIDs(1, 12); !reflect.DeepEqual(got, want) {
			t.Fatalf("first run calls = %v, want %v", got, want)
		}
		es := pending(t, st, "tg")
		if len(es) != 1 || es[0].Sent != 11 || es[0].Attempts != 1 {
			t.Fatalf("stored entry = %+v, want Sent 11, Attempts 1", es)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		st2 := openStore(t, dir)
		f2 := &splitFake{}
		d2 := newDispatcher(st2, nil, Target{Name: "tg", Notifier: f2})
		stop := running(t, d2)
		time.Sleep(time.Minute)
		stop()
		if got, want := callIDs(f2.get()), partIDs(12, 15); !reflect.DeepEqual(got, want) {
			t.Errorf("after restart calls = %v, want %v", got, want)
		}
		if got, want := d2.Stats()["tg"], (Stats{Sent: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		if es := pending(t, st2, "tg"); len(es) != 0 {
			t.Errorf("outbox not empty: %+v", es)
		}
	})
}

// badSplit breaks the Splitter contract in the given way.
type badSplit struct {
	fake
	split func([]notifiers.Alert) [][]notifiers.Alert
}

func (b *badSplit) Split(alerts []notifiers.Alert) [][]notifiers.Alert { return b.split(alerts) }

// TestBadSplitSendsWhole: a Split that loses alerts, gives an empty part or
// panics does not lose the notice: it goes out as one message.
func TestBadSplitSendsWhole(t *testing.T) {
	tests := []struct {
		name  string
		split func([]notifiers.Alert) [][]notifiers.Alert
	}{
		{"no parts", func([]notifiers.Alert) [][]notifiers.Alert { return nil }},
		{"loses an alert", func(a []notifiers.Alert) [][]notifiers.Alert { return [][]notifiers.Alert{a[:1], a[2:]} }},
		{"empty part", func(a []notifiers.Alert) [][]notifiers.Alert { return [][]notifiers.Alert{a, {}} }},
		{"panics", func([]notifiers.Alert) [][]notifiers.Alert { panic("boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := openStore(t, t.TempDir())
				f := &badSplit{split: tt.split}
				d := newDispatcher(st, nil, Target{Name: "tg", Notifier: f})
				enqueueParts(t, st, "tg", 3)
				stop := running(t, d)
				synctest.Wait()
				stop()
				if got, want := callIDs(f.get()), [][]string{{"p1", "p2", "p3"}}; !reflect.DeepEqual(got, want) {
					t.Errorf("calls = %v, want %v", got, want)
				}
			})
		})
	}
}

// TestAdoptKeepsCounters: a reload's new Dispatcher continues the counters
// of each same-named notifier, including one a previous reload removed.
func TestAdoptKeepsCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir())
		ops := &fake{script: []result{{}, {false, errors.New("400 bad")}}}
		mail := &fake{}
		d1 := newDispatcher(st, nil, Target{Name: "ops", Notifier: ops}, Target{Name: "mail", Notifier: mail})
		enqueue(t, st, "ops", "a", "b")
		enqueue(t, st, "mail", "m")
		stop := running(t, d1)
		synctest.Wait()
		stop()
		want := map[string]Stats{"ops": {Sent: 1, Failed: 1, Dropped: 1}, "mail": {Sent: 1}}
		if got := d1.Stats(); !reflect.DeepEqual(got, want) {
			t.Fatalf("first Stats = %+v, want %+v", got, want)
		}

		// Reload without mail: ops keeps counting from where it was.
		d2 := newDispatcher(st, nil, Target{Name: "ops", Notifier: ops}, Target{Name: "new", Notifier: &fake{}})
		d2.Adopt(d1)
		if got, want := d2.Stats(), map[string]Stats{"ops": {Sent: 1, Failed: 1, Dropped: 1}, "new": {}}; !reflect.DeepEqual(got, want) {
			t.Errorf("after Adopt Stats = %+v, want %+v", got, want)
		}
		enqueue(t, st, "ops", "c")
		stop = running(t, d2)
		synctest.Wait()
		stop()
		if got, want := d2.Stats()["ops"], (Stats{Sent: 2, Failed: 1, Dropped: 1}); got != want {
			t.Errorf("ops after another send = %+v, want %+v", got, want)
		}

		// mail comes back: its counts continue too.
		d3 := newDispatcher(st, nil, Target{Name: "mail", Notifier: mail}, Target{Name: "ops", Notifier: ops})
		d3.Adopt(d2)
		if got, want := d3.Stats(), map[string]Stats{"ops": {Sent: 2, Failed: 1, Dropped: 1}, "mail": {Sent: 1}}; !reflect.DeepEqual(got, want) {
			t.Errorf("after the second reload Stats = %+v, want %+v", got, want)
		}
	})
}
