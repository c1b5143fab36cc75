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
	// minBackoff is the first wait after a failure, and the least time
	// between two attempts when a new notice cuts a backoff short.
	minBackoff = time.Second
	// maxBackoff caps the wait between attempts. With jitter the longest
	// wait is 9.6 s, so held notices go out within 10 s of a receiver's
	// recovery however long it was down (SPEC "Delivery").
	maxBackoff = 8 * time.Second
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
	// MaxRetryAfter is the longest receiver-requested wait (Retry-After,
	// Telegram's retry_after) that is honoured; a longer one is cut to it.
	// The notifiers already cap what they parse at a day; an hour is the
	// default max_age, past which the entry would be dropped anyway.
	MaxRetryAfter = time.Hour
)

// Target is one configured notifier.
type Target struct {
	Name string
	// Notifier sends the messages. When it also implements
	// notifiers.Splitter, each entry goes out as the parts it splits into.
	Notifier notifiers.Notifier
	// Timeout bounds one attempt (one part); zero means DefaultTimeout.
	Timeout time.Duration
	// MaxAge is how long an entry may wait in the outbox before it is
	// dropped; zero means DefaultMaxAge.
	MaxAge time.Duration
	// MinInterval paces sends: the next attempt (or part) starts no sooner
	// than this after the previous one began (Slack and Telegram allow
	// about one message a second per channel or chat). Zero: no pacing.
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

// Stats counts what a notifier's worker did since the process started:
// Adopt carries the counts over a reload, so they suit Prometheus counters.
type Stats struct {
	// Sent counts entries delivered (an entry split into parts counts once).
	Sent uint64
	// Failed counts failed attempts (retryable or not).
	Failed uint64
	// Dropped counts entries given up on: permanent failures and entries
	// older than MaxAge.
	Dropped uint64
}

// counters back Stats. Workers share them by pointer across Adopt, and
// Stats reads them without any lock, so /metrics never waits on a send or
// an fsync.
type counters struct {
	sent, failed, dropped atomic.Uint64
}

// Dispatcher delivers outbox entries, one worker per target.
type Dispatcher struct {
	// Now is the clock; it must agree with the time package's timers (tests
	// use testing/synctest, which fakes both). Set before Run.
	Now func() time.Time
	// Rand returns a number in [0, 1) for backoff jitter. Set before Run.
	Rand func() float64
	// OnHealth, when set, is called from the notifier's worker each time a
	// notifier turns failing or healthy (the daemon raises notifier-failing
	// on the other notifiers). It must not block for long. Set before Run.
	OnHealth func(Health)

	st      *store.Store
	log     *slog.Logger
	workers []*worker
	// retired keeps the counters of notifiers a reload removed, so that
	// they continue where they were if a later reload brings them back.
	retired map[string]*counters
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
	c    *counters

	// Owned by the worker's goroutine once Run starts (Adopt sets them
	// before).
	lastAttempt time.Time // when the last attempt began, for pacing
	failStart   time.Time // first failure of the current run; zero when healthy
	failing     bool      // reported failing through OnHealth
	// tried is the newest entry ID that was waiting when the last attempt
	// began. A newer entry is a notice the receiver has not been tried
	// with yet, so it cuts the head's backoff short (see pass). triedSet is
	// false until Run (or Adopt) has set it.
	tried    uint64
	triedSet bool
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
			c:    new(counters),
		})
	}
	return d
}

// Run starts one worker per target and blocks until ctx is done; it then
// returns nil once every worker has stopped (a send in flight is finished
// first, bounded by the target's Timeout, unless Abort cuts it short).
// Each worker delivers its pending entries in order, as the package doc
// describes. Workers sleep until the earliest NextAttempt or a Kick, and
// always select on ctx.Done(). Call Run once.
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

// Adopt carries over, from old, each same-named notifier's state: its
// Stats counters (so Prometheus counters reset only when the process
// restarts, not on a reload; a notifier removed and later re-added
// continues its counts too), its pacing, which notices it was already tried
// with, and its failure run (so a notifier reported failing before a reload
// is reported healthy when it delivers again, and not reported failing a
// second time). old must not be running (its Run has returned). Call before
// Run and before Stats is read.
func (d *Dispatcher) Adopt(old *Dispatcher) {
	if old == nil {
		return
	}
	for _, w := range d.workers {
		if o := old.worker(w.t.Name); o != nil {
			w.c = o.c
			w.lastAttempt, w.failStart, w.failing = o.lastAttempt, o.failStart, o.failing
			w.tried, w.triedSet = o.tried, o.triedSet
		} else if c := old.retired[w.t.Name]; c != nil {
			w.c = c
		}
	}
	d.retired = make(map[string]*counters)
	for name, c := range old.retired {
		if d.worker(name) == nil {
			d.retired[name] = c
		}
	}
	for _, o := range old.workers {
		if d.worker(o.t.Name) == nil {
			d.retired[o.t.Name] = o.c
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

// Stats returns sent, failed attempts and dropped entries per configured
// notifier. It takes no lock.
func (d *Dispatcher) Stats() map[string]Stats {
	out := make(map[string]Stats, len(d.workers))
	for _, w := range d.workers {
		out[w.t.Name] = Stats{Sent: w.c.sent.Load(), Failed: w.c.failed.Load(), Dropped: w.c.dropped.Load()}
	}
	return out
}

// work is one target's loop.
func (d *Dispatcher) work(ctx context.Context, w *worker) {
	if !w.triedSet {
		// What waits at start was tried before the restart (or is due
		// anyway): only notices queued from now on cut a backoff short.
		id, err := d.st.LastID(w.t.Name)
		if err != nil {
			w.log.Error("read outbox", "err", err)
		}
		w.tried, w.triedSet = id, true
	}
	for ctx.Err() == nil {
		next, err := d.pass(ctx, w)
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
// due or expires, whichever is first), or on a store error.
func (d *Dispatcher) pass(ctx context.Context, w *worker) (time.Time, error) {
	for ctx.Err() == nil && d.aborted.Err() == nil {
		entries, err := d.st.Pending(w.t.Name, batchSize)
		if err != nil {
			return time.Time{}, err
		}
		if len(entries) == 0 {
			return time.Time{}, nil
		}
		for i := 0; i < len(entries); {
			if ctx.Err() != nil || d.aborted.Err() != nil {
				return time.Time{}, nil
			}
			e := &entries[i]
			// An entry without a creation time never expires: dropping
			// it at once would lose an alert over a caller's slip.
			var expires time.Time
			if !e.Created.IsZero() {
				expires = e.Created.Add(w.t.MaxAge)
			}
			now := d.Now()
			if !expires.IsZero() && !now.Before(expires) {
				if err := d.drop(w, *e, "older than max_age", "age", now.Sub(e.Created).Round(time.Second), "max_age", w.t.MaxAge); err != nil {
					return time.Time{}, err
				}
				i++
				continue
			}
			if now.Before(e.NextAttempt) {
				until, err := d.hold(w, *e, now)
				if err != nil {
					return time.Time{}, err
				}
				if !until.IsZero() {
					return earliest(until, expires), nil
				}
			}
			if paced := w.lastAttempt.Add(w.t.MinInterval); w.t.MinInterval > 0 && now.Before(paced) {
				return earliest(paced, expires), nil
			}
			done, next, err := d.attempt(ctx, w, e)
			if err != nil {
				return time.Time{}, err
			}
			if !next.IsZero() {
				return earliest(next, expires), nil
			}
			if done {
				i++
			}
		}
	}
	return time.Time{}, nil
}

// hold decides about a head entry in backoff: it returns when to look
// again, or the zero time to try it now. A notice queued since the last
// attempt is tried at once (SPEC: a new notice is not queued behind the old
// wait), the head first so order is kept; if that succeeds everything
// flows. Only notices newer than the last attempt count, so kicks from
// commits that queued nothing for this notifier change nothing, and such
// early attempts are at least minBackoff apart. A wait the receiver asked
// for (Retry-After) is never cut short.
func (d *Dispatcher) hold(w *worker, e store.Entry, now time.Time) (time.Time, error) {
	if e.ServerWait {
		return e.NextAttempt, nil
	}
	last, err := d.st.LastID(w.t.Name)
	if err != nil {
		return time.Time{}, err
	}
	if last <= w.tried {
		return e.NextAttempt, nil
	}
	if gap := w.lastAttempt.Add(minBackoff); now.Before(gap) {
		return earliest(gap, e.NextAttempt), nil
	}
	w.log.Debug("new notice: trying now instead of waiting out the backoff", "entry", e.ID, "newest", last, "due", e.NextAttempt)
	return time.Time{}, nil
}

// attempt sends the next undelivered part of e (the whole entry unless the
// notifier splits it). done reports that the entry left the outbox
// (delivered or dropped); a zero next with done false means its next part
// may go now; a non-zero next is when the entry may be tried again.
func (d *Dispatcher) attempt(ctx context.Context, w *worker, e *store.Entry) (done bool, next time.Time, err error) {
	parts, from := d.parts(w, e)
	w.lastAttempt = d.Now()
	if id, err := d.st.LastID(w.t.Name); err == nil {
		w.tried = max(w.tried, id)
	} else {
		w.log.Warn("read outbox", "err", err)
	}
	// A send in flight when ctx ends (shutdown, reload) runs to completion,
	// bounded by its own timeout: cutting a request off midway can leave the
	// peer with the message while we believe it failed.
	// Only Abort (a shutdown out of time) cuts it short.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.t.Timeout)
	stopAbort := context.AfterFunc(d.aborted, cancel)
	retry, err := notify(actx, w.t.Notifier, parts[from])
	stopAbort()
	cancel()
	if err != nil && d.aborted.Err() != nil {
		w.log.Warn("send cut short at shutdown; it stays in the outbox and goes out after the next start", "entry", e.ID, "err", err)
		return false, time.Time{}, nil
	}
	if err == nil {
		d.health(w, nil, false)
		// The rest of a split entry is due at once, whatever the backoff.
		e.Sent, e.NextAttempt, e.ServerWait = from+1, time.Time{}, false
		if e.Sent < len(parts) {
			if err := d.st.MarkSent(w.t.Name, e.ID, e.Sent); err != nil {
				// Sent but not recorded: that part will go out again.
				return false, time.Time{}, fmt.Errorf("delivered part %d of %d of entry %d but could not record it (it will be sent again): %w", e.Sent, len(parts), e.ID, err)
			}
			w.log.Debug("delivered part", "entry", e.ID, "part", e.Sent, "parts", len(parts))
			return false, time.Time{}, nil
		}
		w.c.sent.Add(1)
		if err := d.st.Ack(w.t.Name, e.ID); err != nil {
			// Sent but still in the outbox: it will go out again.
			return false, time.Time{}, fmt.Errorf("delivered entry %d but could not remove it (it will be sent again): %w", e.ID, err)
		}
		w.log.Debug("delivered", "entry", e.ID, "alerts", len(e.Alerts), "parts", len(parts), "attempts", e.Attempts+1)
		return true, time.Time{}, nil
	}
	w.c.failed.Add(1)
	d.health(w, err, !retry)
	if !retry {
		return true, time.Time{}, d.drop(w, *e, "permanent failure", "err", err, "attempts", e.Attempts+1, "parts_sent", from, "parts", len(parts))
	}
	e.Attempts++
	wait := backoff(e.Attempts, d.Rand())
	ra, asked := notifiers.RetryAfter(err)
	if asked {
		wait = max(wait, min(ra, MaxRetryAfter))
	}
	e.NextAttempt, e.ServerWait = d.Now().Add(wait), asked
	e.LastError = truncate(err.Error(), maxErrorLen)
	w.log.Warn("delivery failed, will retry", "entry", e.ID, "attempts", e.Attempts, "retry_in", wait.Round(time.Millisecond), "part", from+1, "parts", len(parts), "err", err)
	if err := d.st.Reschedule(*e); err != nil {
		return false, time.Time{}, err
	}
	return false, e.NextAttempt, nil
}

// parts returns the messages e goes out as and the index of the first one
// not yet delivered. A notifier that is no Splitter, or whose Split breaks
// its contract, gets the whole entry as one message.
func (d *Dispatcher) parts(w *worker, e *store.Entry) ([][]notifiers.Alert, int) {
	whole := [][]notifiers.Alert{e.Alerts}
	sp, ok := w.t.Notifier.(notifiers.Splitter)
	if !ok {
		return whole, 0
	}
	parts, err := split(sp, e.Alerts)
	if err != nil {
		w.log.Error("notifier split a notification wrongly; sending it as one message (parts already sent may arrive again)", "entry", e.ID, "err", err)
		return whole, 0
	}
	if e.Sent >= len(parts) {
		// All parts but the last had gone out, under a Split that gave
		// more parts than this one: which alerts remain is unknown.
		w.log.Warn("notification now splits into fewer parts than were sent; sending every part again", "entry", e.ID, "sent", e.Sent, "parts", len(parts))
		return parts, 0
	}
	return parts, e.Sent
}

// split calls sp.Split and checks its contract: non-empty parts that add
// up to all the alerts. A panic is an error too.
func split(sp notifiers.Splitter, alerts []notifiers.Alert) (parts [][]notifiers.Alert, err error) {
	defer func() {
		if r := recover(); r != nil {
			parts, err = nil, fmt.Errorf("split panicked: %v", r)
		}
	}()
	parts = sp.Split(alerts)
	if len(parts) == 0 {
		return nil, errors.New("split gave no parts")
	}
	n := 0
	for i, p := range parts {
		if len(p) == 0 {
			return nil, fmt.Errorf("split gave an empty part %d", i+1)
		}
		n += len(p)
	}
	if n != len(alerts) {
		return nil, fmt.Errorf("split gave %d alerts in its parts for %d", n, len(alerts))
	}
	return parts, nil
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
	w.c.dropped.Add(1)
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
// 4s, 8s, then 8s each time, times a jitter factor in [0.8, 1.2) from r in
// [0, 1): never more than 9.6 s.
func backoff(attempts int, r float64) time.Duration {
	b := maxBackoff
	// 1s << 4 = 16s is past the cap, so larger shifts (which would
	// overflow) are never computed.
	if attempts >= 1 && attempts <= 4 {
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
