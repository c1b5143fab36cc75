package bybit

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
)

// seedExtra is what a REST read hands the live view beyond the Snapshot.
type seedExtra struct {
	orders   []bybitapi.V5GetOrder // open conditional orders read
	coins    []string              // the settle coins whose orders were read
	coinOf   map[string]string     // symbol → the settle coin REST listed it under
	idx      []int                 // positionIdx, parallel to the positions
	sl       []float64             // each position's own stopLoss (0 none), parallel
	isolated bool                  // account marginMode ISOLATED_MARGIN
}

// liveView is the account as the streams keep it between Snapshots. Every
// successful read seeds it (a deep copy); the private stream's wallet,
// position and order rows and the public stream's ticks change it in
// place. One lock, never held across I/O.
type liveView struct {
	mu sync.Mutex

	seeded   bool
	stale    bool // waits for a REST read (a reconnect, a new symbol, a row it cannot read)
	isolated bool
	bal      exchanges.Balance
	base     poolBase
	ps       []exchanges.Position
	aux      []posAux // parallel to ps
	orders   map[string]bybitapi.V5GetOrder
	ticks    map[string]tick   // newest mark tick per symbol
	coins    map[string]string // symbol → settle coin, as REST listed it

	// gen counts applied private updates; a read that began at gen
	// replays the journal of those that raced it. gapGen is the gen of
	// the last connection opened: a read that began before it is not
	// trusted (what was pushed before the connection is unknown).
	gen         uint64
	gapGen      uint64
	reading     int
	readStart   time.Time
	journal     []journaled
	journalLost bool

	privUp     bool
	privReason string
	privLast   time.Time // newest private message (pongs included)
	marksErr   error
	lastData   time.Time
	lastTick   time.Time
	reconnects uint64

	symbols []string // held symbols, sorted
	changed func()
	kick    chan struct{} // asks the reseeder for a read (cap 1)
}

// poolBase is what the USD pool's figures hold beyond the positions'
// unrealized PnL at the last wallet row or seed: a mark tick moves the
// pool's PnL and equity by exactly what it moves the positions'.
type poolBase struct{ u, mb, cu float64 }

type posAux struct {
	idx int     // positionIdx: 0 one-way, 1/2 hedge long/short
	sl  float64 // the position's own stopLoss (0 none)
}

type tick struct {
	mark, rate float64
	next, at   time.Time
}

// journaled is a private update applied while a read was under way, kept
// to be applied again on top of that read: Bybit's rows carry absolute
// values (totals, sizes, order states).
type journaled struct {
	gen      uint64
	wallet   *bybitapi.V5WalletBalanceList
	pos      []bybitapi.V5GetPositionInfoItem
	orders   []bybitapi.V5GetOrder
	received time.Time
}

// maxJournal bounds the updates kept while reads are under way; beyond it
// the raced read is simply read again.
const maxJournal = 512

// read is one REST read that also seeds the live view.
func (e *Exchange) read(ctx context.Context) (*exchanges.Snapshot, error) {
	gen := e.live.reads(+1, e.now())
	snap, x, err := e.readREST(ctx)
	if err != nil {
		e.live.reads(-1, e.now())
		return nil, err
	}
	e.live.seed(e, snap, x, gen)
	e.publishSymbols()
	e.live.notify()
	return snap, nil
}

// reads counts a read starting (+1) or ending without a seed (-1) and
// returns the view's gen.
func (v *liveView) reads(delta int, now time.Time) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if delta > 0 && v.reading == 0 {
		v.readStart = now
	}
	v.reading += delta
	if v.reading <= 0 {
		v.reading = 0
		v.journal, v.journalLost = v.journal[:0], false
	}
	return v.gen
}

// seed replaces the view with a read that began at gen, then applies again
// what raced it: private updates from the journal, and mark ticks received
// after the read began.
func (v *liveView) seed(e *Exchange, s *exchanges.Snapshot, x seedExtra, gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seeded, v.stale, v.isolated = true, false, x.isolated
	if len(s.Balances) > 0 {
		v.bal = s.Balances[0]
	}
	v.ps = v.ps[:0]
	v.aux = v.aux[:0]
	for i, p := range s.Positions {
		p.Stops = slices.Clone(p.Stops)
		v.ps = append(v.ps, p)
		a := posAux{}
		if i < len(x.idx) {
			a.idx = x.idx[i]
		}
		if i < len(x.sl) {
			a.sl = x.sl[i]
		}
		v.aux = append(v.aux, a)
	}
	if v.coins == nil {
		v.coins = map[string]string{}
	}
	maps.Copy(v.coins, x.coinOf)
	// Orders of the coins read are REST's; the others stay as streamed.
	if v.orders == nil {
		v.orders = map[string]bybitapi.V5GetOrder{}
	}
	for id, o := range v.orders {
		if slices.Contains(x.coins, v.coin(string(o.Symbol))) {
			delete(v.orders, id)
		}
	}
	for _, o := range x.orders {
		v.orders[o.OrderID] = o
	}
	v.rebase()
	if v.lastData.Before(s.Time) {
		v.lastData = s.Time
	}
	v.lastTick = s.Time
	v.reading--
	switch {
	case gen == v.gen:
	case v.journalLost || v.gapGen > gen:
		v.stale = true
		v.ask()
	default:
		for _, j := range v.journal {
			if j.gen > gen {
				e.applyLocked(j)
			}
		}
	}
	if v.reading <= 0 {
		v.reading = 0
		v.journal, v.journalLost = v.journal[:0], false
	}
	for i := range v.ps {
		if t, ok := v.ticks[v.ps[i].Symbol]; ok && !t.at.Before(v.readStart) {
			v.setMark(i, t)
		}
	}
	v.sumPool()
	v.symbols = heldSymbols(v.symbols[:0:0], v.ps)
}

// rebase records the pool's figures beyond its positions' PnL. Callers
// hold mu.
func (v *liveView) rebase() {
	u, cu := v.pnl()
	v.base = poolBase{u: v.bal.UnrealizedPnL - u, mb: v.bal.MarginBalance - u, cu: v.bal.CrossUnPnL - cu}
}

func (v *liveView) pnl() (u, cu float64) {
	for i := range v.ps {
		u += v.ps[i].UnrealizedPnL
		if v.ps[i].MarginType == exchanges.Cross {
			cu += v.ps[i].UnrealizedPnL
		}
	}
	return u, cu
}

// sumPool recomputes the pool's PnL and equity from its base and its
// positions. Callers hold mu.
func (v *liveView) sumPool() {
	u, cu := v.pnl()
	v.bal.UnrealizedPnL, v.bal.MarginBalance, v.bal.CrossUnPnL = v.base.u+u, v.base.mb+u, v.base.cu+cu
}

// setMark applies tick t to position i: mark, notional, unrealized PnL
// (size × (mark − entry), signed), funding. Callers hold mu.
func (v *liveView) setMark(i int, t tick) {
	p := &v.ps[i]
	p.MarkPrice = t.mark
	p.Notional = p.Size * t.mark
	if p.EntryPrice > 0 {
		p.UnrealizedPnL = p.Side.Sign() * p.Size * (t.mark - p.EntryPrice)
	}
	if !math.IsNaN(t.rate) {
		p.FundingRate = t.rate
	}
	if !t.next.IsZero() {
		p.NextFundingTime = t.next
	}
}

// markTick applies one ticker of symbol (rate NaN, next zero: not known).
// It neither blocks nor allocates once the symbol has ticked before.
func (e *Exchange) markTick(symbol string, mark, rate float64, next, received time.Time) {
	v := &e.live
	v.mu.Lock()
	if v.ticks == nil {
		v.ticks = map[string]tick{}
	}
	t := tick{mark, rate, next, received}
	v.ticks[symbol] = t
	hit := false
	for i := range v.ps {
		if v.ps[i].Symbol == symbol {
			hit = true
			v.setMark(i, t)
		}
	}
	var cb func()
	if hit {
		v.sumPool()
		v.note(received)
		cb = v.changed
	}
	v.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// marksDown says the public stream is lost (err) or back (nil).
func (e *Exchange) marksDown(err error) {
	v := &e.live
	v.mu.Lock()
	flip := (v.marksErr == nil) != (err == nil)
	v.marksErr = err
	cb := v.changed
	v.mu.Unlock()
	if flip && cb != nil {
		cb()
	}
}

// note records the receipt of an applied change. Callers hold mu.
func (v *liveView) note(received time.Time) {
	if received.After(v.lastData) {
		v.lastData = received
	}
	v.lastTick = received
}

// ask asks the reseeder for a read (coalesced). Callers hold mu.
func (v *liveView) ask() {
	if v.kick == nil {
		return
	}
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// notify tells the daemon the view changed.
func (v *liveView) notify() {
	v.mu.Lock()
	cb := v.changed
	v.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// apply applies one private update (journaled while a read is under way)
// and reports whether the held symbols changed.
func (e *Exchange) apply(j journaled) bool {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	j.gen = v.gen
	if v.reading > 0 {
		if len(v.journal) >= maxJournal {
			v.journalLost = true
		} else {
			v.journal = append(v.journal, j)
		}
	}
	if !v.seeded {
		return false
	}
	before := len(v.symbols)
	e.applyLocked(j)
	v.symbols = heldSymbols(v.symbols[:0], v.ps)
	return len(v.symbols) != before
}

// applyLocked is apply's work. Callers hold mu.
func (e *Exchange) applyLocked(j journaled) {
	v := &e.live
	if j.wallet != nil {
		b, err := balanceOf(j.wallet)
		if err != nil {
			e.log.Warn("private stream: a wallet row could not be read; waiting for a REST snapshot", "err", err)
			v.stale = true
			v.ask()
		} else {
			b.FundingPaid24h = v.bal.FundingPaid24h
			v.bal = b
			v.rebase()
		}
	}
	for k := range j.pos {
		e.applyPosition(&j.pos[k])
	}
	for _, o := range j.orders {
		if openOrder(o.OrderStatus) {
			v.orders[o.OrderID] = o
		} else {
			delete(v.orders, o.OrderID)
		}
		v.restop(string(o.Symbol))
	}
	v.sumPool()
	v.note(j.received)
}

// openOrder reports whether a conditional order still rests.
func openOrder(s bybitapi.OrderStatus) bool {
	switch s {
	case "Untriggered", "New", "PartiallyFilled", "Active":
		return true
	}
	return false
}

// applyPosition applies one position row through the REST mapping
// (positionOf): size 0 closes the position (positionIdx tells hedge legs
// apart). A symbol the view did not hold has no funding interval or
// candles yet: the view waits for a REST read then. Callers hold mu.
func (e *Exchange) applyPosition(r *bybitapi.V5GetPositionInfoItem) {
	v := &e.live
	sym := string(r.Symbol)
	i := -1
	for k := range v.ps {
		if v.ps[k].Symbol == sym && v.aux[k].idx == r.PositionIdx {
			i = k
			break
		}
	}
	p, ok, err := positionOf(r, v.coin(sym), v.isolated)
	if err != nil {
		e.log.Warn("private stream: a position row could not be read; waiting for a REST snapshot", "err", err)
		v.stale = true
		v.ask()
		return
	}
	if !ok {
		if i >= 0 {
			v.ps = slices.Delete(v.ps, i, i+1)
			v.aux = slices.Delete(v.aux, i, i+1)
		}
		return
	}
	a := posAux{idx: r.PositionIdx, sl: ownStopLoss(r)}
	// What only a read or a tick brings: funding and candles, from a
	// position on the same symbol; the newest tick's mark.
	known := false
	for k := range v.ps {
		if o := &v.ps[k]; o.Symbol == sym {
			p.FundingRate, p.NextFundingTime, p.FundingInterval, p.Candles = o.FundingRate, o.NextFundingTime, o.FundingInterval, o.Candles
			known = true
			break
		}
	}
	if i >= 0 {
		v.ps[i], v.aux[i] = p, a
	} else {
		v.ps = append(v.ps, p)
		v.aux = append(v.aux, a)
		i = len(v.ps) - 1
	}
	if t, ok := v.ticks[sym]; ok && v.marksErr == nil {
		v.setMark(i, t)
	}
	v.restop(sym)
	if !known {
		v.stale = true
		v.ask()
	}
}

// restop rebuilds the stops of symbol's positions: their own stopLoss and
// the conditional orders that are stop-losses of them (stopsFor). The old
// Stops slices may be shared with a Live caller: they are replaced, never
// written. Callers hold mu.
func (v *liveView) restop(symbol string) {
	var os []bybitapi.V5GetOrder
	for _, o := range v.orders {
		if string(o.Symbol) == symbol {
			os = append(os, o)
		}
	}
	slices.SortFunc(os, func(a, b bybitapi.V5GetOrder) int { return strings.Compare(a.OrderID, b.OrderID) })
	for i := range v.ps {
		p := &v.ps[i]
		if p.Symbol != symbol {
			continue
		}
		var st []exchanges.Stop
		if v.aux[i].sl > 0 {
			st = append(st, exchanges.Stop{Trigger: v.aux[i].sl, ClosePosition: true})
		}
		p.Stops = append(st, stopsFor(p, os)...)
	}
}

// coin is symbol's settle coin: as REST listed it, else by its name (a
// symbol REST has not listed yet makes the view wait for a read anyway).
// Callers hold mu.
func (v *liveView) coin(symbol string) string {
	if c, ok := v.coins[symbol]; ok {
		return c
	}
	return coinOf(symbol)
}

// heldSymbols appends the distinct symbols of ps, sorted, to dst.
func heldSymbols(dst []string, ps []exchanges.Position) []string {
	for i := range ps {
		if !slices.Contains(dst, ps[i].Symbol) {
			dst = append(dst, ps[i].Symbol)
		}
	}
	slices.Sort(dst)
	return dst
}

// Live copies the live view into snap; see exchanges.Streamer. snap.Time
// is the newest message of the streams (the private stream's pongs every
// 20 s included), or the seeding read's time.
func (e *Exchange) Live(snap *exchanges.Snapshot) (tick time.Time, ok bool) {
	v := &e.live
	now := e.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	silent := now.Sub(v.privLast) > e.sc.silence
	ok = v.seeded && !v.stale && v.privUp && !silent && (v.marksErr == nil || len(v.ps) == 0)
	snap.Time = v.lastData
	snap.Inverse = false
	snap.Balances = append(snap.Balances[:0], v.bal)
	snap.Positions = append(snap.Positions[:0], v.ps...)
	snap.Events, snap.Transfers = snap.Events[:0], snap.Transfers[:0]
	return v.lastTick, ok
}

// heard records a private message that changed nothing (a pong, an
// acknowledgement): it still proves the stream current.
func (v *liveView) heard(received time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.privLast = received
	if received.After(v.lastData) && v.privUp {
		v.lastData = received
	}
}
