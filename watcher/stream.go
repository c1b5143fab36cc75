package watcher

import (
	"context"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// live is what a streamed account's loop reuses from tick to tick, so that
// a quiet tick allocates nothing. Written by the account's stream loop
// under account.mu; acct.Positions[i].Raw point into snap.
type live struct {
	snap exchanges.Snapshot
	acct metrics.Account
}

// heartbeatEvery bounds how often a streamed account's ticks offer the
// heartbeat (polls offer it after every cycle).
const heartbeatEvery = time.Second

// watch runs one account: streamed when its config asks for it and its
// exchange can, else polled.
func (w *Watcher) watch(ctx context.Context, a *account) {
	if s, ok := a.ex.(exchanges.Streamer); ok && a.cfg.Stream {
		w.stream(ctx, a, s)
		return
	}
	w.poll(ctx, a)
}

// streaming is a streamed account's connection to its exchange's streams.
// It belongs to the account, not to a generation: a reload that keeps the
// account keeps its streams (reconnecting hundreds of accounts would take
// minutes at Binance's connection-attempt limit). closeAccounts stops it.
type streaming struct {
	mu      sync.Mutex
	changed chan struct{} // a change waits to be read with Live
	done    chan struct{} // closed when Stream has returned
	stop    context.CancelFunc
}

// startStream starts a's streams unless they run already, and returns the
// channel that signals changes and the one closed when the streams end.
func (a *account) startStream(s exchanges.Streamer) (changed, done <-chan struct{}) {
	st := &a.streams
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		st.changed, st.done, st.stop = make(chan struct{}, 1), make(chan struct{}), cancel
		dn := st.done
		go func() {
			defer close(dn)
			if err := s.Stream(ctx, st.poke); err != nil && ctx.Err() == nil {
				a.log.Warn("cannot stream this account; polling it instead", "err", err, "poll_interval", a.cfg.PollInterval)
			}
		}()
	}
	return st.changed, st.done
}

// poke notes that a change waits to be read with Live. It never blocks:
// changes coalesce. Only valid once startStream has run.
func (st *streaming) poke() {
	select {
	case st.changed <- struct{}{}:
	default:
	}
}

// stopStream ends a's streams, if any, and waits for them.
func (a *account) stopStream() {
	st := &a.streams
	st.mu.Lock()
	stop, done := st.stop, st.done
	st.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// stream runs a streamed account. The exchange's streams keep a live view
// of the account, and every change of it is evaluated at once; a full
// Snapshot seeds the view when it is not trustworthy at the start and
// reconciles it every reconcile_interval. While the view cannot be trusted
// (a stream down, reconnecting or lagging) the account is polled every
// poll_interval, the same Snapshot that reseeds the view, until the streams
// are back: the switch each way is an info line, never an alert
// (data-stale speaks if the polls fail too).
func (w *Watcher) stream(ctx context.Context, a *account, s exchanges.Streamer) {
	changed, done := a.startStream(s)
	// The budget plan's intervals: reconcile_interval and poll_interval,
	// stretched when the venue's budget is oversubscribed.
	reconcile, every := a.interval(), a.fallbackInterval()
	// REST reads run beside the loop, one at a time, so that a slow read
	// (an API struggling in a crash, requests held by the weight gate)
	// never holds back the evaluation of what the streams bring.
	fetched := make(chan *polled, 1) // nil: cancelled by the shutdown
	fetching := false
	fetch := func() {
		if fetching {
			return
		}
		fetching = true
		go func() {
			if r, ok := w.fetch(ctx, a, every); ok {
				fetched <- &r
				return
			}
			fetched <- nil
		}()
	}
	defer func() {
		if fetching { // a read in flight at shutdown: its events count
			if r := <-fetched; r != nil {
				w.absorbStreamed(a, s, *r)
			}
		}
	}()
	// streaming: the last Live was trustworthy; up: the streams are, as
	// last logged.
	streaming, up := false, false
	if _, ok, _ := w.liveCycle(a, s); ok {
		streaming, up = true, true // a reload: the streams ran on
	} else {
		if !sleep(ctx, a.startAfter) { // the plan spreads the seeds
			return
		}
		// Binance's order: the streams first, then the read that seeds
		// the view (an adapter reads again what it read before its
		// connection opened). Waiting is bounded: a stream that cannot
		// connect leaves the account polled.
		if !awaitStream(ctx, s, changed, done, every) {
			return
		}
		fetch() // seeds the live view
	}
	nextReconcile := time.NewTimer(reconcile)
	defer nextReconcile.Stop()
	poll := time.NewTicker(every)
	defer poll.Stop()
	var (
		lastBeat  time.Time
		lastState = exchanges.StreamStatus{Reason: "never reported"}
	)
	// evalLive evaluates the live view and notes whether it can be
	// trusted; change says a change arrived (else the view's freshness is
	// refreshed), whose latency is reported.
	evalLive := func(change bool) {
		tick, ok, committed := w.liveCycle(a, s)
		streaming = ok
		if change && ok && w.opts.Hooks.Streamed != nil {
			w.opts.Hooks.Streamed(a.cfg.Name, time.Since(tick))
		}
		if committed && time.Since(lastBeat) >= heartbeatEvery {
			lastBeat = time.Now()
			w.beat()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			evalLive(true)
		case <-nextReconcile.C:
			fetch()
			nextReconcile.Reset(reconcile)
		case r := <-fetched:
			fetching = false
			if r != nil {
				w.absorbStreamed(a, s, *r)
			}
			a.streams.poke() // the reseeded view may be trustworthy again
		case <-poll.C:
			w.cycled() // the loop is alive, streamed or not
			if streaming {
				// A quiet account (no position, no update) sends nothing:
				// the streams being up is what keeps its data fresh.
				evalLive(false)
			}
			if !streaming {
				fetch()
				nextReconcile.Reset(reconcile)
			}
		case <-done:
			done, streaming, up = nil, false, false // polled from now on
		}
		if ctx.Err() != nil {
			return
		}
		// Only the streams' own health is worth a line: a view waiting
		// for the REST read that completes it (a new or closed position)
		// is routine.
		st := s.StreamStatus()
		switch {
		case streaming && !up:
			up = true
			a.log.Info("streaming: evaluating every change as it arrives")
		case !st.Up && up:
			up = false
			a.log.Info("stream interrupted; polling until it is back", "reason", st.Reason, "every", every)
		}
		if st != lastState && w.opts.Hooks.StreamState != nil {
			lastState = st
			w.opts.Hooks.StreamState(a.cfg.Name, st)
		}
	}
}

// absorbStreamed evaluates a REST read of a streamed account. The read
// has reseeded the live view, which may since have moved on (ticks and
// updates that arrived during the read are applied on top of it): when the
// view is trustworthy, it is what is evaluated, with the read's events and
// transfers, which exist nowhere else. Evaluating the read's own figures
// after a newer live evaluation would step an alert back and forth (a
// resolution and a second firing within a second). A failed read, or one
// that leaves the view untrustworthy, is evaluated as a poll.
func (w *Watcher) absorbStreamed(a *account, s exchanges.Streamer, r polled) {
	w.noteRead(a, r)
	if r.err == nil {
		a.carry = r.snap
		_, ok, committed := w.liveCycle(a, s)
		a.carry = nil
		if ok {
			if committed {
				w.beat()
			}
			return
		}
	}
	w.judgeRead(a, r)
}

// fallbackInterval is how often a streamed account is polled while its
// streams are down: poll_interval, stretched like its reconciliations when
// the budget plan stretched them.
func (a *account) fallbackInterval() time.Duration {
	if a.pollEvery > 0 {
		return a.pollEvery
	}
	return a.cfg.PollInterval
}

// awaitStream waits until s's streams are up, at most max or until they
// end (done), and reports false when ctx ended first. The changes it
// consumes meanwhile need no evaluation: nothing is seeded yet.
func awaitStream(ctx context.Context, s exchanges.Streamer, changed, done <-chan struct{}, max time.Duration) bool {
	t := time.NewTimer(max)
	defer t.Stop()
	for !s.StreamStatus().Up {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-done:
			return true
		case <-changed:
		}
	}
	return true
}

// sleep waits d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// liveCycle evaluates a streamed account's live view. It reports when the
// newest change in it arrived, whether the view could be trusted (an
// untrusted one is not evaluated) and whether the outcome is committed.
func (w *Watcher) liveCycle(a *account, s exchanges.Streamer) (tick time.Time, ok, committed bool) {
	now := w.now()
	a.mu.Lock()
	tick, ok = s.Live(&a.live.snap)
	if ok && a.carry != nil { // a REST read's events and transfers
		a.live.snap.Events = append(a.live.snap.Events, a.carry.Events...)
		a.live.snap.Transfers = append(a.live.snap.Transfers, a.carry.Transfers...)
	}
	if ok {
		metrics.ComputeInto(&a.live.acct, a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, &a.live.snap, a.hist, now)
		a.latest = &a.live.acct
		a.lastSuccess = now
	}
	a.mu.Unlock()
	if !ok {
		return tick, false, false
	}
	a.batch = store.Batch{}
	if now.Sub(a.savedAt) >= historyEvery {
		if st, ok := a.persist(true, now); ok {
			a.batch.Accounts = map[string]store.AccountState{a.cfg.Name: st}
		}
	}
	w.commitMu.Lock()
	committed = w.judge(&a.live.acct, &a.batch, now, true)
	w.commitMu.Unlock()
	w.cycled()
	return tick, true, committed
}

// beat offers the heartbeat after a committed fresh evaluation.
func (w *Watcher) beat() {
	if w.opts.Hooks.Heartbeat == nil {
		return
	}
	if s, _, _ := w.running(); w.health.heartbeatDue(s.names) {
		w.opts.Hooks.Heartbeat()
	}
}
