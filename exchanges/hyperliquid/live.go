package hyperliquid

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// liveView is the account as the websocket keeps it between Snapshots.
// Every successful Snapshot seeds it; a clearinghouseState push replaces
// its balance and positions (Hyperliquid pushes the whole state), keeping
// the stops, funding paid, max leverages and candles of the last Snapshot;
// an activeAssetCtx tick reprices the positions of its coin. One lock,
// never held across I/O.
type liveView struct {
	mu sync.Mutex

	seeded bool
	// stale: the view waits for a Snapshot (a connection opened since
	// the last one, a coin the last Snapshot did not hold, a push it
	// could not read).
	stale bool
	m     mapper
	// orders are the open orders of the last Snapshot (stops).
	orders []order
	// stateTime is the `time` (ms) of the state the view holds; an older
	// push is not applied over it.
	stateTime int64

	bal exchanges.Balance
	hs  []exchanges.Position
	mmr []float64 // parallel to hs: maintenance margin / notional
	// crossBase is the served crossMaintenanceMarginUsed minus the cross
	// positions' own maintenance margins at the last state, so that a tick
	// at the state's marks gives Hyperliquid's figure back.
	crossBase float64
	coins     []string // held coins, sorted

	// epoch numbers the gaps: websocket connections opened and pushes
	// that make the view wait for a Snapshot (unreadable, an order
	// change); gapEpoch is the last one's: a read that began before it
	// cannot make the view current (what it missed is unknown).
	epoch, gapEpoch uint64
	// reading counts the reads under way; readEpoch and readStart are the
	// epoch and time when the oldest began. pending is the newest push
	// received meanwhile and ticks the newest tick per coin: applied again
	// on top of the read when newer than it.
	reading   int
	readEpoch uint64
	readStart time.Time
	pending   *clearinghouseState
	pendingAt time.Time
	ticks     map[string]tick

	up         bool
	reason     string
	reconnects uint64
	lastHeard  time.Time // newest frame of any kind (pong included)
	lastData   time.Time // when the view was last known current
	lastTick   time.Time // receipt of the newest change

	events  []exchanges.Event
	liqSeen map[string]time.Time

	changed func()
	kick    chan struct{} // asks the reseeder for a Snapshot (cap 1)
	subs    chan struct{} // tells the connection the held coins changed (cap 1)
}

// tick is one activeAssetCtx of a coin.
type tick struct {
	mark, funding float64
	fundingSet    bool
	at            time.Time
}

// poke sends on a cap-1 channel without blocking.
func poke(c chan struct{}) {
	if c == nil {
		return
	}
	select {
	case c <- struct{}{}:
	default:
	}
}

// beginRead counts a read starting at now and returns the epoch it began
// in.
func (v *liveView) beginRead(now time.Time) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.reading == 0 {
		v.readStart, v.readEpoch = now, v.epoch
	}
	v.reading++
	return v.epoch
}

// endRead counts a read ending. Callers hold mu.
func (v *liveView) endRead() {
	v.reading--
	if v.reading <= 0 {
		v.reading = 0
		v.pending, v.ticks = nil, nil
	}
}

// abortRead ends a read that failed.
func (v *liveView) abortRead() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.endRead()
}

// seed replaces the view with a Snapshot's data (snap is not kept: the
// view copies it), then applies again the push and ticks that arrived
// while the read was under way and are newer than it (ticks: than the
// push too). A read that began before the last gap (a connection opened,
// an invalidating push) leaves the view stale. It reports
// whether the held coins changed.
func (v *liveView) seed(snap *exchanges.Snapshot, m mapper, orders []order, stateTime int64, epoch uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.endRead()
	v.seeded, v.m, v.orders, v.stateTime = true, m, orders, stateTime
	v.stale = epoch < v.gapEpoch
	if v.stale {
		poke(v.kick)
	}
	if len(snap.Balances) > 0 {
		v.bal = snap.Balances[0]
	}
	v.hs = append(v.hs[:0], snap.Positions...)
	v.derive()
	if v.lastData.Before(snap.Time) {
		v.lastData = snap.Time
	}
	v.lastTick = snap.Time
	changed := v.recoin()
	// A tick is applied again when it came after the read began and after
	// the push applied again: a push's marks are those of its own moment.
	after := v.readStart
	if p := v.pending; p != nil && (p.Time == 0 || stateTime == 0 || p.Time >= stateTime) {
		v.applyLocked(p, v.pendingAt)
		if v.pendingAt.After(after) {
			after = v.pendingAt
		}
	}
	for coin, t := range v.ticks {
		if !t.at.Before(after) {
			v.tickLocked(coin, t)
		}
	}
	return v.recoin() || changed
}

// derive computes what ticks need from the positions as built: each
// position's maintenance-margin rate and the pool's cross base. Callers
// hold mu.
func (v *liveView) derive() {
	v.mmr = slices.Grow(v.mmr[:0], len(v.hs))[:len(v.hs)]
	cross := 0.0
	for i := range v.hs {
		h := &v.hs[i]
		v.mmr[i] = math.NaN()
		if h.Notional > 0 {
			v.mmr[i] = h.MaintMargin / h.Notional
		}
		if h.MarginType == exchanges.Cross && !math.IsNaN(h.MaintMargin) {
			cross += h.MaintMargin
		}
	}
	v.crossBase = v.bal.CrossMaintMargin - cross
}

// recoin recomputes the held coins and reports whether they changed (the
// connection then subscribes to the new coins' ticks). Callers hold mu.
func (v *liveView) recoin() bool {
	var cs []string
	for i := range v.hs {
		if !slices.Contains(cs, v.hs[i].Symbol) {
			cs = append(cs, v.hs[i].Symbol)
		}
	}
	sort.Strings(cs)
	if slices.Equal(cs, v.coins) {
		return false
	}
	v.coins = cs
	poke(v.subs)
	return true
}

// heldCoins is a copy of the held coins.
func (v *liveView) heldCoins() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.coins)
}

// applyState applies a clearinghouseState push received at received: the
// whole balance and every position, mapped as a Snapshot maps them with
// the last Snapshot's orders, contexts and candles. A position gone from
// it is gone from the view (closed or liquidated, as a Snapshot would
// find it); a coin the last Snapshot did not hold waits for a Snapshot
// (its stops and candles), as does a push that does not map. It reports
// whether the view changed.
func (e *Exchange) applyState(st *clearinghouseState, received time.Time) bool {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.reading > 0 {
		v.pending, v.pendingAt = st, received
	}
	if !v.seeded {
		return false
	}
	if !v.applyLocked(st, received) {
		e.log.Warn("hyperliquid websocket: an account update could not be read; waiting for a REST snapshot")
	}
	return true
}

// applyLocked is applyState's work; false when the push does not map.
// Callers hold mu.
func (v *liveView) applyLocked(st *clearinghouseState, received time.Time) bool {
	if st.Time != 0 && st.Time < v.stateTime {
		return true // older than what the view holds
	}
	snap, err := v.m.build(st, v.orders, received)
	if err != nil {
		v.gap()
		v.note(received)
		return false
	}
	if st.Time != 0 {
		v.stateTime = st.Time
	}
	for i := range snap.Positions {
		if !slices.Contains(v.coins, snap.Positions[i].Symbol) {
			v.stale = true // a new coin: its stops and candles come with a Snapshot
			poke(v.kick)
		}
	}
	v.bal = snap.Balances[0]
	v.hs = append(v.hs[:0], snap.Positions...)
	v.derive()
	// The state's marks are those of its own moment; a tick received
	// since is not newer than it, so the state's stand.
	v.note(received)
	v.recoin()
	return true
}

// applyTick applies an activeAssetCtx of coin received at received.
// It reports whether a held position moved.
func (v *liveView) applyTick(coin string, t tick) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.reading > 0 {
		if v.ticks == nil {
			v.ticks = map[string]tick{}
		}
		v.ticks[coin] = t
	}
	return v.tickLocked(coin, t)
}

// tickLocked reprices every position of coin at t's mark: notional,
// unrealized PnL (szi × (mark − entryPx)), maintenance margin (the same
// rate of the notional), funding; then the pool. liquidationPx stays as
// served until the next push (Hyperliquid's own, never recomputed), and an
// isolated position's wallet (rawUsd + szi × entryPx) does not move with
// the mark. It allocates nothing. Callers hold mu.
func (v *liveView) tickLocked(coin string, t tick) bool {
	if t.mark <= 0 {
		return false
	}
	hit := false
	for i := range v.hs {
		h := &v.hs[i]
		if h.Symbol != coin {
			continue
		}
		hit = true
		h.MarkPrice = t.mark
		h.Notional = h.Size * t.mark
		h.UnrealizedPnL = h.Side.Sign() * h.Size * (t.mark - h.EntryPrice)
		if !math.IsNaN(v.mmr[i]) {
			h.MaintMargin = h.Notional * v.mmr[i]
		}
		if t.fundingSet {
			h.FundingRate = t.funding
		}
		h.NextFundingTime = t.at.Truncate(time.Hour).Add(time.Hour)
	}
	if !hit {
		return false
	}
	v.sumPool()
	v.note(t.at)
	return true
}

// sumPool recomputes the pool from its positions: the wallet and cross
// wallet do not move with marks. Callers hold mu.
func (v *liveView) sumPool() {
	b := &v.bal
	var u, cu, cm, im float64
	for i := range v.hs {
		h := &v.hs[i]
		u += h.UnrealizedPnL
		if h.MarginType == exchanges.Isolated {
			im += h.MaintMargin
		} else {
			cu += h.UnrealizedPnL
			cm += h.MaintMargin
		}
	}
	b.UnrealizedPnL, b.CrossUnPnL = u, cu
	b.MarginBalance = b.WalletBalance + u
	b.CrossMaintMargin = max(v.crossBase+cm, 0)
	b.MaintMargin = b.CrossMaintMargin + im
}

// note records the receipt of an applied change. Callers hold mu.
func (v *liveView) note(received time.Time) {
	if received.After(v.lastData) {
		v.lastData = received
	}
	v.lastTick = received
}

// heard records a frame (any: a pong proves the connection alive).
func (v *liveView) heard(received time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastHeard = received
	if v.up && received.After(v.lastData) {
		v.lastData = received
	}
}

// liquidation queues the liquidation event of a userEvents liquidation of
// this account, once per liquidation id. Hyperliquid's event names no
// coin: the event is the account's.
func (e *Exchange) liquidation(l *liqEvent, received time.Time) bool {
	id := fmt.Sprintf("%s/liquidation/%d", e.name, l.Lid)
	ev := exchanges.Event{
		ID: id, Kind: exchanges.Liquidation, Time: received,
		Message: fmt.Sprintf("Hyperliquid liquidated the account's positions (liquidation %d): notional %s, account value %s left",
			l.Lid, l.NtlPos, l.AccountValue),
	}
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.liqSeen[id]; ok {
		return false
	}
	if v.liqSeen == nil {
		v.liqSeen = map[string]time.Time{}
	}
	for k, t := range v.liqSeen {
		if received.Sub(t) > 24*time.Hour {
			delete(v.liqSeen, k)
		}
	}
	v.liqSeen[id] = received
	v.events = append(v.events, ev)
	v.note(received)
	return true
}

// takeEvents moves the queued events out (for a Snapshot).
func (v *liveView) takeEvents() []exchanges.Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	evs := slices.Clone(v.events)
	clear(v.events)
	v.events = v.events[:0]
	return evs
}

// needsSeed reports whether a Snapshot is wanted to make a seeded view
// current again. The first seed is the daemon's own Snapshot: a read of
// the reseeder's beside it would cost the weight twice.
func (v *liveView) needsSeed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seeded && v.stale
}

// Live copies the live view into snap; see exchanges.Streamer. It is not
// ok before a Snapshot seeded the view, while the websocket is down or
// silent for longer than silenceMax (a ping every 20 s gets a pong), or
// while the view waits for a Snapshot. snap.Time is the newest frame of a
// connection that is up. Steady state allocates nothing.
func (e *Exchange) Live(snap *exchanges.Snapshot) (tickAt time.Time, ok bool) {
	v := &e.live
	now := e.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	quiet := now.Sub(v.lastHeard) > e.sc.silence
	ok = v.seeded && !v.stale && v.up && !quiet
	snap.Time, snap.Inverse = v.lastData, false
	snap.Balances = append(snap.Balances[:0], v.bal)
	snap.Positions = append(snap.Positions[:0], v.hs...)
	snap.Transfers = snap.Transfers[:0]
	if ok && len(v.hs) == 0 {
		// Nothing held, so no ticks: a connection that answers its pings
		// would have pushed any change, so the view is current now.
		snap.Time = now
	}
	if ok {
		snap.Events = append(snap.Events[:0], v.events...)
		clear(v.events)
		v.events = v.events[:0]
	} else {
		snap.Events = snap.Events[:0]
	}
	return v.lastTick, ok
}

// StreamStatus reports the websocket's health; see exchanges.Streamer.
func (e *Exchange) StreamStatus() exchanges.StreamStatus {
	v := &e.live
	now := e.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	s := exchanges.StreamStatus{Up: v.up, Reconnects: v.reconnects}
	switch {
	case !v.up && v.reason != "":
		s.Reason = v.reason
	case !v.up:
		s.Reason = "websocket not connected"
	case now.Sub(v.lastHeard) > e.sc.silence:
		s.Up = false
		s.Reason = fmt.Sprintf("websocket silent for %s (no pong to the ping every %s)", now.Sub(v.lastHeard).Round(time.Second), e.sc.ping)
	}
	return s
}

// setUp records the websocket going up or down and tells the daemon.
func (e *Exchange) setUp(up bool, reason string, reconnect bool) {
	v := &e.live
	v.mu.Lock()
	flip := v.up != up
	v.up, v.reason = up, reason
	if up {
		v.lastHeard = e.now()
	}
	if reconnect {
		v.reconnects++
	}
	cb := v.changed
	v.mu.Unlock()
	if (flip || reconnect) && cb != nil {
		cb()
	}
}

// gap makes the view wait for a Snapshot that begins after now: a read
// under way cannot make it current. Callers hold mu.
func (v *liveView) gap() {
	v.epoch++
	v.gapEpoch = v.epoch
	v.stale = true
	poke(v.kick)
}

// connected notes a new connection: what was pushed before it is
// unknown, so the view waits for a Snapshot that began after it.
func (v *liveView) connected() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.epoch++
	v.gapEpoch = v.epoch
	if v.seeded {
		v.stale = true
	}
	poke(v.kick)
}

// sameAddress compares two addresses regardless of hex case.
func sameAddress(a, b string) bool { return strings.EqualFold(a, b) }
