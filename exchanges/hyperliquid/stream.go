package hyperliquid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
	"github.com/marginwatch/marginwatch/watcher/config"
)

var _ exchanges.Streamer = (*Exchange)(nil)

// Stream timing; the fields of streamConf, which tests shorten.
const (
	// pingEvery: Hyperliquid closes a connection that sends nothing for a
	// minute (the official SDK pings every 50 s). A pong is what keeps a
	// quiet account's data current, so its data age runs up to this: 20 s
	// keeps it well under the default stale_after of 60 s.
	pingEvery = 20 * time.Second
	// silenceMax: a connection that brings no frame for this long (two
	// pings and 5 s for the pong) is dead or half-open; it is replaced
	// before a quiet account's data reach the default stale_after.
	silenceMax = 2*pingEvery + 5*time.Second
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

// maxStreamedUsers is Hyperliquid's limit of unique users in websocket
// user subscriptions per IP.
const maxStreamedUsers = config.HyperliquidStreamUsers

// streamConf is the timing of one Exchange's stream.
type streamConf struct {
	ping, silence, reseedGap             time.Duration
	backoffMin, backoffMax, backoffReset time.Duration
}

func defaultStreamConf() streamConf {
	return streamConf{pingEvery, silenceMax, reseedGap, backoffMin, backoffMax, backoffReset}
}

// streamState is the running Stream of an Exchange.
type streamState struct {
	mu      sync.Mutex
	running bool
}

// Slots of the 10 unique users per IP: every account of the process that
// streams from one host holds its address's slot while Stream runs.
var (
	slotsMu sync.Mutex
	slots   = map[string]map[string]int{} // host → address → Streams holding it
)

// takeSlot takes address's slot on host; false when 10 other addresses
// hold them all. n is the number of addresses streamed from host.
func takeSlot(host, address string) (ok bool, n int) {
	slotsMu.Lock()
	defer slotsMu.Unlock()
	m := slots[host]
	if m == nil {
		m = map[string]int{}
		slots[host] = m
	}
	if m[address] == 0 && len(m) >= maxStreamedUsers {
		return false, len(m)
	}
	m[address]++
	return true, len(m)
}

func dropSlot(host, address string) {
	slotsMu.Lock()
	defer slotsMu.Unlock()
	m := slots[host]
	if m[address]--; m[address] <= 0 {
		delete(m, address)
	}
}

// Stream keeps the account's websocket (clearinghouseState, userEvents
// and orderUpdates of the address, activeAssetCtx of each held coin)
// connected and the
// live view current until ctx is done; see exchanges.Streamer. Hyperliquid
// serves user subscriptions for 10 unique addresses per IP: past them,
// Stream returns an error wrapping ErrPermanent at once and the account is
// polled. A second Stream while one runs is an error.
func (e *Exchange) Stream(ctx context.Context, changed func()) error {
	e.st.mu.Lock()
	if e.st.running {
		e.st.mu.Unlock()
		return fmt.Errorf("account %s: Stream is already running", e.name)
	}
	e.st.running = true
	e.st.mu.Unlock()
	defer func() {
		e.st.mu.Lock()
		e.st.running = false
		e.st.mu.Unlock()
	}()
	ok, n := takeSlot(e.host, e.address)
	if !ok {
		e.streamed.Store(false)
		return fmt.Errorf("account %s (address %s): Hyperliquid serves websocket user subscriptions for %d unique addresses per IP and %d addresses of this daemon's accounts stream from %s already, so this one is polled every poll_interval (its REST weight counts against the same 1,200 a minute): %w",
			e.name, e.address, maxStreamedUsers, n, e.host, exchanges.ErrPermanent)
	}
	defer dropSlot(e.host, e.address)
	e.streamed.Store(true)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kick, subs := make(chan struct{}, 1), make(chan struct{}, 1)
	e.live.mu.Lock()
	e.live.changed, e.live.kick, e.live.subs = changed, kick, subs
	e.live.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { e.reseeder(ctx, kick) })
	e.connect(ctx, subs)
	cancel()
	wg.Wait()

	e.live.mu.Lock()
	e.live.changed, e.live.kick, e.live.subs = nil, nil, nil
	e.live.up, e.live.reason = false, "websocket stopped"
	e.live.mu.Unlock()
	return nil
}

// notify tells the daemon the view changed.
func (e *Exchange) notify() {
	e.live.mu.Lock()
	cb := e.live.changed
	e.live.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// reseeder runs the Snapshots a seeded view asks for (a new connection, a
// coin the last Snapshot did not hold, a push it could not read, an order
// change), at most once per reseedGap, coalesced, until the view no longer
// needs one. An unseeded view waits for the daemon's first Snapshot (whose
// seed pokes again if it began before the connection). Its reads leave the
// queued events for the next Live or Snapshot.
func (e *Exchange) reseeder(ctx context.Context, kick chan struct{}) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		if wait := e.sc.reseedGap - time.Since(last); !last.IsZero() && wait > 0 && !pace.Sleep(ctx, wait) {
			return
		}
		if !e.live.needsSeed() {
			continue // a Snapshot of the daemon's did it meanwhile
		}
		last = time.Now()
		if _, err := e.read(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("live view: the REST snapshot that makes it current failed; trying again", "err", err)
			poke(kick)
			continue
		}
		e.notify()
	}
}

// backoff is the jittered wait before connection attempt failures+1.
func (e *Exchange) backoff(failures int) time.Duration {
	d := e.sc.backoffMin
	for range min(failures, 16) {
		d *= 2
		if d >= e.sc.backoffMax {
			d = e.sc.backoffMax
			break
		}
	}
	return d/2 + rand.N(d/2+1)
}

// wsURL is the websocket of the account: stream_endpoint, else the REST
// base with http→ws, and Hyperliquid's path /ws.
func wsURL(base, streamEndpoint string) string {
	if streamEndpoint != "" {
		return strings.TrimRight(streamEndpoint, "/") + "/ws"
	}
	return "ws" + strings.TrimPrefix(base, "http") + "/ws"
}

// connect keeps the websocket connected until ctx is done: a connection
// attempt paced process-wide (wsPace), subscriptions, pings, and after a
// failure a new attempt after a jittered backoff.
func (e *Exchange) connect(ctx context.Context, subs chan struct{}) {
	failures, first := 0, true
	for ctx.Err() == nil {
		if wsPace.Wait(ctx) != nil {
			return
		}
		c, err := e.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.setUp(false, "websocket reconnecting after: "+err.Error(), false)
			e.log.Info("hyperliquid websocket: connection failed; polling meanwhile and trying again", "err", err)
			if !pace.Sleep(ctx, e.backoff(failures)) {
				return
			}
			failures++
			continue
		}
		// What Hyperliquid pushed before this connection is lost: the
		// view waits for a Snapshot that began after it.
		e.live.connected()
		e.setUp(true, "", !first)
		if !first {
			e.log.Info("hyperliquid websocket connected again")
		}
		first = false
		start := time.Now()
		err = e.serve(ctx, c, subs)
		c.close()
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= e.sc.backoffReset {
			failures = 0
		}
		e.setUp(false, "websocket reconnecting after: "+err.Error(), false)
		e.log.Info("hyperliquid websocket lost; polling meanwhile and reconnecting", "err", err)
		if !pace.Sleep(ctx, e.backoff(failures)) {
			return
		}
		failures++
	}
}

// serve runs one connection until it fails or ctx ends: it subscribes,
// pings every sc.ping, follows the held coins and hands every frame to
// frame. A connection silent for sc.silence has failed.
func (e *Exchange) serve(ctx context.Context, c *wsConn, subs chan struct{}) error {
	for _, typ := range []string{"clearinghouseState", "userEvents", "orderUpdates"} {
		if err := c.send(ctx, wsMessage{Method: "subscribe", Subscription: &subscription{Type: typ, User: e.address}}); err != nil {
			return err
		}
	}
	var coins []string
	follow := func() error {
		want := e.live.heldCoins()
		for _, coin := range coins {
			if !slices.Contains(want, coin) {
				if err := c.send(ctx, wsMessage{Method: "unsubscribe", Subscription: &subscription{Type: "activeAssetCtx", Coin: coin}}); err != nil {
					return err
				}
			}
		}
		for _, coin := range want {
			if !slices.Contains(coins, coin) {
				if err := c.send(ctx, wsMessage{Method: "subscribe", Subscription: &subscription{Type: "activeAssetCtx", Coin: coin}}); err != nil {
					return err
				}
			}
		}
		coins = want
		return nil
	}
	if err := follow(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- c.readLoop(ctx, e.sc.silence, e.frame) }()
	ping := time.NewTicker(e.sc.ping)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			c.close()
			<-errc
			return nil
		case err := <-errc:
			return err
		case <-ping.C:
			if err := c.send(ctx, wsMessage{Method: "ping"}); err != nil {
				c.close()
				<-errc
				return err
			}
		case <-subs:
			if err := follow(); err != nil {
				c.close()
				<-errc
				return err
			}
		}
	}
}
