package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// Defaults for zero Target fields.
const (
	// DefaultTimeout bounds one Notify call.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAge is how long an entry may wait before it is dropped
	// (the config's max_age default).
	DefaultMaxAge = time.Hour
)

const (
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
	// jitter is the ± fraction applied to each backoff, so that notifiers
	// failing together do not retry in lockstep.
	jitter = 0.2
	// storeRetry is how long a worker waits after the store itself failed
	// (a full disk), so it does not spin.
	storeRetry = 5 * time.Second
	// batchSize is how many entries one store read returns.
	batchSize = 64
	// maxErrorLen bounds the LastError kept in the outbox.
	maxErrorLen = 512
	// FailingAfter is how long a notifier must keep failing before it is
	// reported as failing (see Dispatcher.OnHealth); a permanent failure
	// reports it at once.
	FailingAfter = time.Minute
)

// Target is one configured notifier.
type Target struct {
	Name     string
	Notifier notifiers.Notifier
	// Timeout bounds one attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxAge is how long an entry may wait in the outbox before it is
	// dropped; zero means DefaultMaxAge.
	MaxAge time.Duration
	// MinInterval paces sends: the next attempt starts no sooner than this
	// after the previous one began (Slack and Telegram allow about one
	// message a second per channel or chat). Zero: no pacing.
	MinInterval time.Duration
}

// Health reports a notifier turning failing or healthy again.
type Health struct {
	Notifier string
	// Failing is true when the notifier has kept failing for FailingAfter
	// or has just refused a notification for good; false when it has
	// delivered again.
	Failing bool
	// Since is when the current run of failures began.
	Since time.Time
	// LastError is the last failure (notifiers keep secrets out of it).
	LastError string
}

// Stats counts what a notifier's worker did since the Dispatcher was created.
type Stats struct {
	// Sent counts entries delivered.
	Sent uint64
	// Failed counts failed attempts (retryable or not).
	Failed uint64
	// Dropped counts entries given up on: permanent failures and entries
	// older than MaxAge.
	Dropped uint64
}

// Dispatcher delivers outbox entries, one worker per target.
type Dispatcher struct {
	// Now is the clock; it must agree with the time package's timers (tests
	// use testing/synctest, which fakes both). Set before Run or Flush.
	Now func() time.Time
	// Rand returns a number in [0, 1) for backoff jitter. Set before Run or
	// Flush.
	Rand func() float64
	// OnHealth, when set, is called from the notifier's worker each time a
	// notifier turns failing or healthy (the daemon raises notifier-failing
	// on the other notifiers). It must not block for long. Set before Run.
	OnHealth func(Health)

	st      *store.Store
	log     *slog.Logger
	workers []*worker
	// aborted ends when Abort is called: it cuts sends in flight short.
	aborted context.Context
	abort   context.CancelFunc
}

type worker struct {
	t   Target
	log *slog.Logger
	// kick wakes the worker; capacity 1 so Kick never blocks and several
	// kicks while busy collapse into one.
	kick chan struct{}
	// turn is held while a worker or Flush delivers this target's entries,
	// so the two never send the same entry twice. A channel rather than a
	// mutex so waiting for it can give up when ctx ends.
	turn chan struct{}

	// Guarded by turn.
	lastAttempt time.Time // when the last attempt began, for pacing
	failStart   time.Time // first failure of the current run; zero when healthy
	failing     bool      // reported failing through OnHealth

	sent, failed, dropped atomic.Uint64
}

// New returns a Dispatcher for targets. A nil logger discards logs.
func New(st *store.Store, targets []Target, logger *slog.Logger) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{Now: time.Now, Rand: rand.Float64, st: st, log: logger}
	d.aborted, d.abort = context.WithCancel(context.Background())
	for _, t := range targets {
		if t.Timeout <= 0 {
			t.Timeout = DefaultTimeout
		}
		if t.MaxAge <= 0 {
			t.MaxAge = DefaultMaxAge
		}
		d.workers = append(d.workers, &worker{
			t:    t,
			log:  logger.With("notifier", t.Name),
			kick: make(chan struct{}, 1),
			turn: make(chan struct{}, 1),
		})
	}
	return d
}

// Run starts one worker per target and blocks until ctx is done; it then
// returns nil once every worker has stopped (a send in flight is finished
// first, bounded by the target's Timeout, unless Abort cuts it short). Each
// worker delivers its
// pending entries in order: Notify with a per-attempt timeout; success ->
// Ack; retry=false -> log + Ack (dropped, counted); retry=true ->
// Reschedule with exponential backoff (1s, 2s, 4s … capped at 5m, with ±20%
// jitter) or the RetryAfterError wait if longer; an entry older than MaxAge
// is dropped with a log line (counted). Workers sleep until the earliest
// NextAttempt or a Kick, and always select on ctx.Done(). Call Run once.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.warnOrphans()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.aborted, cancel)()
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { d.work(wctx, w) })
	}
	wg.Wait()
	<-wctx.Done()
	return nil
}

// Abort cuts every send in flight short (its context is cancelled) and
// stops Run's workers: for a shutdown that cannot wait for a hung notifier
// any longer. A send cut short is neither counted as a failure nor
// rescheduled; it stays in the outbox and goes out after the next start
// (the peer may have got it already, so it may arrive twice). Abort is
// final: the Dispatcher sends nothing more.
func (d *Dispatcher) Abort() { d.abort() }

// Adopt carries over, from old, the failure run of each notifier of the
// same name, so that a notifier reported failing before a reload is
// reported healthy when it delivers again (and not reported failing a second
// time). old must not be running (its Run has returned). Call before Run.
func (d *Dispatcher) Adopt(old *Dispatcher) {
	if old == nil {
		return
	}
	for _, w := range d.workers {
		if o := old.worker(w.t.Name); o != nil {
			w.lastAttempt, w.failStart, w.failing = o.lastAttempt, o.failStart, o.failing
		}
	}
}

// Resume marks notifier as failing since since, as the daemon's persisted
// notifier-failing alert says after a restart: its next delivery reports it
// healthy through OnHealth, and it is not reported failing again meanwhile.
// Call before Run.
func (d *Dispatcher) Resume(notifier string, since time.Time) {
	if w := d.worker(notifier); w != nil {
		w.failStart, w.failing = since, true
	}
}

// warnOrphans logs outbox entries of notifiers that are no longer
// configured: no worker will ever send them.
func (d *Dispatcher) warnOrphans() {
	depth, err := d.st.OutboxDepth()
	if err != nil {
		d.log.Error("read outbox depth", "err", err)
		return
	}
	for name, n := range depth {
		if d.worker(name) == nil {
			d.log.Warn("outbox holds entries for a notifier that is not configured; they will not be sent", "notifier", name, "entries", n)
		}
	}
}

func (d *Dispatcher) worker(name string) *worker {
	for _, w := range d.workers {
		if w.t.Name == name {
			return w
		}
	}
	return nil
}

// Kick wakes the workers after a Commit that enqueued entries. Never blocks.
func (d *Dispatcher) Kick() {
	for _, w := range d.workers {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Flush delivers what is pending now (one pass, no waiting for backoff)
// until ctx is done; used at shutdown and by tests. A target whose attempt
// fails with a retryable error keeps its remaining entries (order is kept)
// for the next run. Flush returns store errors and ctx's error if ctx ended
// first.
func (d *Dispatcher) Flush(ctx context.Context) error {
	errs := make([]error, len(d.workers))
	var wg sync.WaitGroup
	for i, w := range d.workers {
		wg.Go(func() {
			if _, err := d.pass(ctx, w, true); err != nil {
				errs[i] = fmt.Errorf("flush %s: %w", w.t.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// Stats returns sent, failed attempts and dropped entries per notifier.
func (d *Dispatcher) Stats() map[string]Stats {
	out := make(map[string]Stats, len(d.workers))
	for _, w := range d.workers {
		out[w.t.Name] = Stats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load()}
	}
	return out
}

// work is one target's loop.
func (d *Dispatcher) work(ctx context.Context, w *worker) {
	for ctx.Err() == nil {
		next, err := d.pass(ctx, w, false)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.log.Error("outbox store failed; retrying", "err", err, "retry_in", storeRetry)
			next = d.Now().Add(storeRetry)
		}
		// A zero next means nothing is waiting: sleep until kicked.
		var (
			wake  <-chan time.Time
			timer *time.Timer
		)
		if !next.IsZero() {
			wait := next.Sub(d.Now())
			if wait <= 0 {
				continue
			}
			timer = time.NewTimer(wait)
			wake = timer.C
		}
		select {
		case <-ctx.Done():
		case <-w.kick:
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// pass delivers w's due entries in order. It returns when the queue is
// empty (zero time), when the head entry must wait (the time it becomes
// due or expires, whichever is first), or on a store error. force ignores
// NextAttempt (Flush).
func (d *Dispatcher) pass(ctx context.Context, w *worker, force bool) (time.Time, error) {
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, nil
	}
	defer func() { <-w.turn }()

	for ctx.Err() == nil && d.aborted.Err() == nil {
		entries, err := d.st.Pending(w.t.Name, batchSize)
		if err != nil {
			return time.Time{}, err
		}
		if len(entries) == 0 {
			return time.Time{}, nil
		}
		for _, e := range entries {
			if ctx.Err() != nil || d.aborted.Err() != nil {
				return time.Time{}, nil
			}
			// An entry without a creation time never expires: dropping
			// it at once would lose an alert over a caller's slip.
			var expires time.Time
			if !e.Created.IsZero() {
				expires = e.Created.Add(w.t.MaxAge)
			}
			now := d.Now()
			if !expires.IsZero() && !now.Before(expires) {
				if err := d.drop(w, e, "older than max_age", "age", now.Sub(e.Created).Round(time.Second), "max_age", w.t.MaxAge); err != nil {
					return time.Time{}, err
				}
				continue
			}
			if !force && now.Before(e.NextAttempt) {
				return earliest(e.NextAttempt, expires), nil
			}
			if paced := w.lastAttempt.Add(w.t.MinInterval); !force && w.t.MinInterval > 0 && now.Before(paced) {
				return paced, nil
			}
			next, err := d.attempt(ctx, w, e)
			if err != nil {
				return time.Time{}, err
			}
			if !next.IsZero() {
				return earliest(next, expires), nil
			}
		}
	}
	return time.Time{}, nil
}

// attempt sends one entry. It returns the zero time when the queue may go
// on (delivered or dropped), or the entry's next attempt time when the
// queue must wait for it.
func (d *Dispatcher) attempt(ctx context.Context, w *worker, e store.Entry) (time.Time, error) {
	w.lastAttempt = d.Now()
	// A send in flight when ctx ends (shutdown, reload) runs to completion,
	// bounded by its own timeout: cutting a request off midway can leave the
	// peer with the message while we believe it failed.
	// Only Abort (a shutdown out of time) cuts it short.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.t.Timeout)
	stopAbort := context.AfterFunc(d.aborted, cancel)
	retry, err := notify(actx, w.t.Notifier, e.Alerts)
	stopAbort()
	cancel()
	if err != nil && d.aborted.Err() != nil {
		w.log.Warn("send cut short at shutdown; it stays in the outbox and goes out after the next start", "entry", e.ID, "err", err)
		return time.Time{}, nil
	}
	if err == nil {
		w.sent.Add(1)
		d.health(w, nil, false)
		if err := d.st.Ack(w.t.Name, e.ID); err != nil {
			// Sent but still in the outbox: it will go out again.
			return time.Time{}, fmt.Errorf("delivered entry %d but could not remove it (it will be sent again): %w", e.ID, err)
		}
		w.log.Debug("delivered", "entry", e.ID, "alerts", len(e.Alerts), "attempts", e.Attempts+1)
		return time.Time{}, nil
	}
	w.failed.Add(1)
	d.health(w, err, !retry)
	if !retry {
		return time.Time{}, d.drop(w, e, "permanent failure", "err", err, "attempts", e.Attempts+1)
	}
	e.Attempts++
	wait := backoff(e.Attempts, d.Rand())
	if ra, ok := notifiers.RetryAfter(err); ok && ra > wait {
		wait = ra
	}
	e.NextAttempt = d.Now().Add(wait)
	e.LastError = truncate(err.Error(), maxErrorLen)
	w.log.Warn("delivery failed, will retry", "entry", e.ID, "attempts", e.Attempts, "retry_in", wait.Round(time.Millisecond), "err", err)
	if err := d.st.Reschedule(e); err != nil {
		return time.Time{}, err
	}
	return e.NextAttempt, nil
}

// health tracks runs of failures and reports a notifier turning failing
// (after FailingAfter, or at once on a permanent failure) or healthy again.
func (d *Dispatcher) health(w *worker, err error, permanent bool) {
	now := d.Now()
	if err == nil {
		if w.failing && d.OnHealth != nil {
			d.OnHealth(Health{Notifier: w.t.Name, Since: w.failStart})
		}
		w.failStart, w.failing = time.Time{}, false
		return
	}
	if w.failStart.IsZero() {
		w.failStart = now
	}
	if !w.failing && (permanent || now.Sub(w.failStart) >= FailingAfter) {
		w.failing = true
		w.log.Error("notifier is failing", "since", w.failStart, "err", err)
		if d.OnHealth != nil {
			d.OnHealth(Health{Notifier: w.t.Name, Failing: true, Since: w.failStart, LastError: truncate(err.Error(), maxErrorLen)})
		}
	}
}

// notify calls the notifier, turning a panic into a retryable error: one
// broken channel must not take the daemon (and every other channel) down.
func notify(ctx context.Context, n notifiers.Notifier, alerts []notifiers.Alert) (retry bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			retry, err = true, fmt.Errorf("notifier panicked: %v", r)
		}
	}()
	return n.Notify(ctx, alerts...)
}

// drop gives up on an entry: logged at error level, because an alert the
// trader never sees is exactly what this daemon exists to prevent.
func (d *Dispatcher) drop(w *worker, e store.Entry, reason string, attrs ...any) error {
	w.dropped.Add(1)
	args := append([]any{"entry", e.ID, "alerts", len(e.Alerts), "created", e.Created, "reason", reason}, attrs...)
	if e.LastError != "" {
		args = append(args, "last_error", e.LastError)
	}
	w.log.Error("dropping undeliverable notification", args...)
	if err := d.st.Ack(w.t.Name, e.ID); err != nil {
		return fmt.Errorf("drop entry %d: %w", e.ID, err)
	}
	return nil
}

// backoff is the wait after the given number of failed attempts: 1s, 2s,
// 4s … capped at 5m, times a jitter factor in [0.8, 1.2) from r in [0, 1).
func backoff(attempts int, r float64) time.Duration {
	b := maxBackoff
	// 1s << 9 = 512s is past the cap, so larger shifts (which would
	// overflow) are never computed.
	if attempts >= 1 && attempts <= 9 {
		b = min(minBackoff<<(attempts-1), maxBackoff)
	} else if attempts < 1 {
		b = minBackoff
	}
	if r < 0 || r >= 1 {
		r = 0.5
	}
	return time.Duration(float64(b) * (1 - jitter + 2*jitter*r))
}

// earliest returns the earlier of two times, ignoring a zero one.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
