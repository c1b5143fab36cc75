package binance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

var _ exchanges.Streamer = (*Exchange)(nil)

// Stream timing; the fields of streamConf, which tests shorten.
const (
	// keepaliveEvery: a listen key lives 60 minutes from its last
	// keepalive; Binance asks for one every 30 minutes at most.
	keepaliveEvery = 30 * time.Minute
	// keepaliveRetry is the next try after a keepalive failed for a reason
	// other than a lost key.
	keepaliveRetry = time.Minute
	// forceEvery: Binance closes a connection after 24 hours; a new one is
	// opened before, and the old closed once it is up.
	forceEvery = 23 * time.Hour
	// reseedGap: a Snapshot the stream asks for itself runs at most once
	// per this, coalesced.
	reseedGap = 5 * time.Second
	// backoffMin and backoffMax bound the jittered exponential backoff
	// between connection attempts; a connection that lived longer than
	// backoffReset starts it over.
	backoffMin   = time.Second
	backoffMax   = time.Minute
	backoffReset = time.Minute
)

// streamConf is the timing of one Exchange's streams.
type streamConf struct {
	keepEvery, keepRetry, forceEvery, reseedGap time.Duration
	backoffMin, backoffMax, backoffReset        time.Duration
}

func defaultStreamConf() streamConf {
	return streamConf{keepaliveEvery, keepaliveRetry, forceEvery, reseedGap, backoffMin, backoffMax, backoffReset}
}

// streamState is the running Stream of an Exchange.
type streamState struct {
	mu      sync.Mutex
	running bool
	cancel  context.CancelFunc // stops the running Stream (Close)

	// watchMu serializes watchMarks calls, so that the hub always ends up
	// with the latest symbol set; published is the last set it got.
	watchMu   sync.Mutex
	published []string
}

// Stream connects the account's user-data stream and keeps the live view
// current until ctx is done or Close; see exchanges.Streamer. The
// mark-price ticks come from the process-wide hub through markTick and
// marksDown. A second Stream while one runs is an error.
func (e *Exchange) Stream(ctx context.Context, changed func()) error {
	e.st.mu.Lock()
	if e.st.running {
		e.st.mu.Unlock()
		return fmt.Errorf("account %s: Stream is already running", e.name)
	}
	ctx, cancel := context.WithCancel(ctx)
	e.st.running, e.st.cancel = true, cancel
	e.st.mu.Unlock()
	kick := make(chan struct{}, 1)
	e.live.mu.Lock()
	e.live.changed, e.live.kick = changed, kick
	e.live.mu.Unlock()

	marks := e.watchHub()
	defer e.unwatchHub(marks)
	var wg sync.WaitGroup
	wg.Go(func() { e.reseeder(ctx, kick) })
	err := e.userStream(ctx)
	cancel()
	wg.Wait()

	e.live.mu.Lock()
	e.live.changed, e.live.kick = nil, nil
	e.live.userUp, e.live.userReason = false, "user-data stream stopped"
	e.live.mu.Unlock()
	e.st.mu.Lock()
	e.st.running, e.st.cancel = false, nil
	e.st.mu.Unlock()
	if err != nil {
		return fmt.Errorf("account %s: user-data stream: %w", e.name, err)
	}
	return nil
}

// stopStream stops a running Stream (from Close).
func (e *Exchange) stopStream() {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if e.st.cancel != nil {
		e.st.cancel()
	}
}

// StreamStatus reports the user-data stream's health and the mark-price
// stream's as the hub last said; see exchanges.Streamer.
func (e *Exchange) StreamStatus() exchanges.StreamStatus {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	s := exchanges.StreamStatus{Up: v.userUp && v.marksErr == nil, Reconnects: v.reconnects}
	switch {
	case !v.userUp && v.userReason != "":
		s.Reason = v.userReason
	case !v.userUp:
		s.Reason = "user-data stream not connected"
	case v.marksErr != nil:
		s.Reason = "mark-price stream down: " + v.marksErr.Error()
	}
	return s
}

// userState records the user-data stream going up or down and tells the
// daemon.
func (e *Exchange) userState(up bool, reason string, reconnect bool) {
	v := &e.live
	v.mu.Lock()
	flip := v.userUp != up
	if flip && up {
		v.userEpoch++
	}
	v.userUp, v.userReason = up, reason
	if reconnect {
		v.reconnects++
	}
	cb := v.changed
	v.mu.Unlock()
	if (flip || reconnect) && cb != nil {
		cb()
	}
}

// changedView tells the daemon the view changed, and the hub when the held
// symbols did.
func (e *Exchange) changedView(symbols bool) {
	if symbols {
		e.publishSymbols()
	}
	e.live.mu.Lock()
	cb := e.live.changed
	e.live.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// watchHub connects the account to its market's mark-price hub for the
// time Stream runs: the held symbols now, and whenever they change.
func (e *Exchange) watchHub() *markHub {
	hub := marksFor(e.kind, e.streamEndpoint, e.testnet, e.log)
	e.live.mu.Lock()
	e.live.marksErr = nil
	e.live.mu.Unlock()
	e.st.watchMu.Lock()
	e.watchMarks = func(symbols []string) { hub.watch(e, symbols) }
	e.st.published = nil // hand the current set over afresh
	e.st.watchMu.Unlock()
	e.publishSymbols()
	return hub
}

// unwatchHub ends what watchHub began.
func (e *Exchange) unwatchHub(hub *markHub) {
	e.st.watchMu.Lock()
	e.watchMarks, e.st.published = nil, nil
	e.st.watchMu.Unlock()
	hub.forget(e)
}

// publishSymbols hands the held symbols to the hub (watchMarks) when they
// differ from what it last got.
func (e *Exchange) publishSymbols() {
	e.st.watchMu.Lock()
	defer e.st.watchMu.Unlock()
	e.live.mu.Lock()
	same := slices.Equal(e.live.symbols, e.st.published)
	syms := slices.Clone(e.live.symbols)
	e.live.mu.Unlock()
	if same {
		return
	}
	e.st.published = syms
	if w := e.watchMarks; w != nil {
		w(slices.Clone(syms))
	}
}

// reseeder runs the Snapshots the view asks for (a position it cannot
// complete, an update it cannot apply), at most once per reseedGap,
// coalesced, until the view no longer needs one. Their events and
// transfers wait in the view for the next Live or Snapshot.
func (e *Exchange) reseeder(ctx context.Context, kick chan struct{}) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		if wait := e.sc.reseedGap - time.Since(last); wait > 0 && !last.IsZero() && !pace.Sleep(ctx, wait) {
			return
		}
		if !e.live.needsSeed() {
			continue // a Snapshot of the daemon's did it meanwhile
		}
		last = time.Now()
		snap, err := e.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("live view: the REST snapshot that completes it failed; trying again", "err", err)
			select {
			case kick <- struct{}{}:
			default:
			}
			continue
		}
		e.live.keep(snap.Events, snap.Transfers)
	}
}

// read is one Snapshot that also seeds the live view; Snapshot adds what
// the view holds for its caller.
func (e *Exchange) read(ctx context.Context) (*exchanges.Snapshot, error) {
	snap, err := e.readLocked(ctx)
	if err != nil {
		return nil, err
	}
	e.changedView(true) // outside e.mu: the hub and the daemon may call back
	return snap, nil
}

func (e *Exchange) readLocked(ctx context.Context) (*exchanges.Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	gen := e.live.reads(+1, e.now())
	snap, err := e.snapshot(ctx)
	if err != nil {
		e.live.reads(-1, e.now())
		return nil, fmt.Errorf("account %s: %w", e.name, err)
	}
	e.heldSymbols.Store(int32(countSymbols(snap.Positions)))
	e.evMu.Lock()
	e.keyBad, e.keyErr = false, nil
	snap.Events = append(e.pending, snap.Events...)
	e.pending = nil
	e.evMu.Unlock()
	e.seed(snap, gen)
	return snap, nil
}

// seed hands a successful read to the live view: a deep copy of the
// positions as the read built them (with their position sides), the open
// orders behind their stops, the brackets and contract sizes. Callers
// hold e.mu.
func (e *Exchange) seed(snap *exchanges.Snapshot, gen uint64) {
	d := seedData{snap: snap, hs: e.seedHeld, multi: e.seedMulti, gen: gen, fresh: e.seedFresh,
		orders: map[string][]order{}, brackets: map[string][]bracket{}, contracts: e.cache.contracts}
	for _, h := range e.seedHeld {
		s := h.Symbol
		if c := e.cache.brackets[s]; c != nil {
			d.brackets[s] = c.list
		}
		if st := e.cache.symbols[s]; st != nil {
			d.orders[s] = slices.Concat(st.orders, st.algo)
		} else if os, ok := e.seedOrders[s]; ok {
			d.orders[s] = os
		}
	}
	e.live.mu.Lock()
	e.live.seedLocked(d)
	e.replay(gen)
	e.live.mu.Unlock()
	e.seedHeld, e.seedOrders, e.seedFresh = nil, nil, nil
}
