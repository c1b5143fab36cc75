package binance

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

// liveView is the account as the streams keep it between Snapshots. Every
// successful Snapshot seeds it (a deep copy: the Snapshot's caller keeps
// its own); user-data events and mark-price ticks change it in place. One
// lock, held for a few hundred nanoseconds, never across I/O.
type liveView struct {
	mu sync.Mutex

	seeded  bool
	inverse bool
	multi   bool // USDⓈ-M multi-assets mode: one "USD" pool
	bs      []exchanges.Balance
	base    []poolBase // parallel to bs
	hs      []held
	aux     []posAux           // parallel to hs
	orders  map[string][]order // open orders of each held symbol (with ids)
	// contracts is COIN-M's contract sizes as last read: the cache's map,
	// which a refresh replaces and never changes, so it is shared.
	contracts map[string]contract

	// incomplete counts positions an update left that only a Snapshot can
	// finish (leverage, liquidation price, brackets); stale is an update
	// the view cannot apply at all. Either makes Live not ok.
	incomplete int
	stale      bool
	// gen counts applied account and order updates, so that a Snapshot
	// whose reads raced one is not taken as the last word (see seed).
	gen uint64

	// reading counts the reads under way; journal holds the updates
	// applied meanwhile (journalLost: not all of them), for replay;
	// gapGen is the gen of the last connection opened (reconnected).
	reading     int
	journal     []journaled
	journalLost bool
	gapGen      uint64
	// staleGen is the gen of the last update the view could not apply
	// (invalidate): a read that began before it is read again.
	staleGen uint64
	// readStart is when the oldest read under way began: a mark tick
	// received after it is newer than what the read brings.
	readStart time.Time

	seedAt   time.Time // the seeding Snapshot's time
	lastData time.Time // newest user-data message or mark tick received
	lastTick time.Time // receipt of the newest change

	userUp     bool
	userReason string
	// userEpoch numbers the user-data stream's connected periods: it moves
	// on every time the stream comes up after being down (a forced
	// reconnect, made before the old connection closes, keeps it).
	userEpoch  uint64
	marksErr   error
	reconnects uint64

	events    []exchanges.Event
	transfers []exchanges.Transfer
	// money is the funding and transfers between income reads (ledger.go).
	money ledger
	// orderDirty: held symbols with an order update the view could not
	// apply (a trailing algo stop, a number it could not read): their
	// open orders are read again rather than taken from the view.
	orderDirty map[string]bool
	// liqSeen: liquidation event IDs reported (by stream or REST), so that
	// each forced order is reported once; pruned after liqWindow.
	liqSeen map[string]time.Time
	// liqPos: positions (posKey) whose liquidation fill the stream
	// reported, when; their ACCOUNT_UPDATE to zero within liqPosWindow is
	// that liquidation, told already, not a close to check. A position
	// that lives on (a partial liquidation, a reopening) forgets it.
	liqPos map[string]time.Time
	mcSeen [8]string // the last margin-call IDs, against the overlap of a forced reconnect
	mcNext int

	symbols []string // held symbols, sorted, as last computed
	changed func()
	kick    chan struct{} // asks the reseeder for a Snapshot (cap 1)
}

// liqPosWindow is how long after a liquidation fill the position's
// ACCOUNT_UPDATE to zero counts as that liquidation: Binance pushes both
// within milliseconds.
const liqPosWindow = time.Minute

// poolBase is what a pool's figures hold beyond its positions' sums at the
// seeding Snapshot: Binance's totals minus the positions'. A pool's figure
// is its base plus its positions' current sum, so a tick at the seeding
// marks gives back Binance's own totals (a row that lags its positions,
// multi-assets haircuts and all) and moves exactly as the positions move.
type poolBase struct{ u, m, cu, cm, mbOff float64 }

// posAux is what the view needs of a position beyond exchanges.Position.
type posAux struct {
	brackets   []bracket // read-only, shared with the cache
	incomplete bool
	// tickAt is the receipt of the position's last mark tick.
	tickAt time.Time
}

// seedData is what a successful read hands the live view.
type seedData struct {
	snap      *exchanges.Snapshot
	hs        []held
	multi     bool
	orders    map[string][]order
	brackets  map[string][]bracket
	contracts map[string]contract
	gen       uint64 // the view's gen when the read began
	// fresh: the symbols whose open orders the read asked Binance for
	// (the others it took from the view).
	fresh map[string]bool
}

// seedLocked replaces the view with a Snapshot's data. Updates applied
// while the read was under way (gen moved) may postdate it: replay
// applies them again on top. Callers hold mu.
func (v *liveView) seedLocked(d seedData) {
	s := d.snap
	// Mark ticks received while the read was under way are newer than
	// the marks it brings: they are applied again on top.
	type tick struct {
		mark, funding float64
		next, at      time.Time
	}
	var newer map[string]tick
	for i := range v.hs {
		if at := v.aux[i].tickAt; v.reading > 0 && !at.IsZero() && !at.Before(v.readStart) {
			if newer == nil {
				newer = map[string]tick{}
			}
			h := &v.hs[i]
			newer[h.Symbol] = tick{h.MarkPrice, h.FundingRate, h.NextFundingTime, at}
		}
	}
	defer func() {
		if newer == nil {
			return
		}
		for i := range v.hs {
			if t, ok := newer[v.hs[i].Symbol]; ok {
				h := &v.hs[i]
				h.MarkPrice, h.FundingRate, h.NextFundingTime = t.mark, t.funding, t.next
				v.aux[i].tickAt = t.at
				v.reprice(i)
			}
		}
		v.sumPools()
	}()
	v.seeded, v.inverse, v.multi, v.stale = true, s.Inverse, d.multi, false
	v.bs = append(v.bs[:0], s.Balances...)
	v.hs = append(v.hs[:0], d.hs...)
	v.aux = slices.Grow(v.aux[:0], len(v.hs))[:len(v.hs)]
	for i := range v.hs {
		v.aux[i] = posAux{brackets: d.brackets[v.hs[i].Symbol]}
	}
	v.incomplete = 0
	// The orders a read did not ask Binance for it took from the view:
	// the view's own list is as new or newer (an update may have come in
	// since). Those it asked for replace the view's; updates that came in
	// meanwhile are replayed on top (replay).
	orders := make(map[string][]order, len(d.orders))
	for s, os := range d.orders {
		if cur, ok := v.orders[s]; ok && !d.fresh[s] && !v.orderDirty[s] {
			os = cur
		}
		orders[s] = os
	}
	for s := range d.fresh {
		// Read again: the view holds REST's list now, and replay applies
		// the order updates that raced the read on top of it.
		delete(v.orderDirty, s)
	}
	v.orders = orders
	v.contracts = d.contracts
	v.base = slices.Grow(v.base[:0], len(v.bs))[:len(v.bs)]
	for i := range v.bs {
		b := &v.bs[i]
		u, m, cu, cm := v.positionSums(b.Asset)
		v.base[i] = poolBase{u: b.UnrealizedPnL - u, m: b.MaintMargin - m, cu: b.CrossUnPnL - cu, cm: b.CrossMaintMargin - cm,
			mbOff: b.MarginBalance - b.WalletBalance - b.UnrealizedPnL}
	}
	v.seedAt = s.Time
	if v.lastData.Before(s.Time) {
		v.lastData = s.Time
	}
	v.lastTick = s.Time
	v.symbols = heldSymbols(v.symbols[:0:0], v.hs)
	v.fundPools(s.Time)
}

// replay applies again, after a seed from a read that began at gen, the
// updates that arrived while it was under way; when they were not all
// kept (or a connection opened meanwhile: invalidate), the view waits for
// another read. It ends the read. Callers hold mu.
func (e *Exchange) replay(gen uint64) {
	v := &e.live
	v.reading--
	if gen != v.gen {
		if v.journalLost || v.gapSince(gen) || v.staleGen > gen {
			v.stale = true
			v.ask()
		} else {
			for _, j := range v.journal {
				if j.gen <= gen {
					continue
				}
				switch {
				case j.order != nil:
					v.applyOrderLocked(*j.order, j.received)
				case j.lev != nil:
					v.setLeverageLocked(j.lev.symbol, j.lev.leverage, j.received)
				default:
					e.applyAccountLocked(j.bals, j.poss, j.received)
				}
			}
			v.symbols = heldSymbols(v.symbols[:0:0], v.hs)
		}
	}
	if v.reading <= 0 {
		v.reading = 0
		v.journal, v.journalLost = v.journal[:0], false
	}
}

// gapSince reports whether a connection opened after gen (reconnected):
// what was pushed before it is unknown, so no replay can complete a read
// that began before it. Callers hold mu.
func (v *liveView) gapSince(gen uint64) bool { return v.gapGen > gen }

// heldSymbols appends the distinct symbols of hs, sorted, to dst.
func heldSymbols(dst []string, hs []held) []string {
	for i := range hs {
		if !slices.Contains(dst, hs[i].Symbol) {
			dst = append(dst, hs[i].Symbol)
		}
	}
	sort.Strings(dst)
	return dst
}

// ask asks the reseeder for a Snapshot (coalesced). Callers hold mu.
func (v *liveView) ask() {
	if v.kick == nil {
		return
	}
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// journaled is an update applied while a read was under way, kept to be
// applied again on top of that read: Binance's updates carry absolute
// values (wallets, sizes, order states), so the view seeded by a read
// that raced them is brought up to date by replaying them, instead of
// being read again (an account that trades all the time would never get
// a read that no update raced).
type journaled struct {
	gen      uint64
	bals     []balanceUpd
	poss     []positionUpd
	order    *orderUpd
	lev      *levUpd
	received time.Time
}

// maxJournal bounds the updates kept while reads are under way; beyond it
// a raced read is simply read again.
const maxJournal = 512

// record journals an applied update while a read is under way. Callers
// hold mu.
func (v *liveView) record(j journaled) {
	if v.reading == 0 {
		v.journal, v.journalLost = v.journal[:0], false
		return
	}
	if len(v.journal) >= maxJournal {
		v.journalLost = true
		return
	}
	v.journal = append(v.journal, j)
}

// reads counts a read starting (+1) at now or ending without a seed (-1),
// and returns the view's gen when it starts.
func (v *liveView) reads(delta int, now time.Time) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if delta > 0 && v.reading == 0 {
		v.readStart = now
	}
	v.reading += delta
	if v.reading == 0 {
		v.journal, v.journalLost = v.journal[:0], false
	}
	return v.gen
}

// reconnected makes the view wait for the next Snapshot and asks the
// reseeder for one (a user-data connection opened: what was pushed before
// it is unknown).
func (v *liveView) reconnected() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++ // a read in flight may predate the connection
	v.gapGen = v.gen
	if v.seeded {
		v.stale = true
	}
	v.ask()
}

// needsSeed reports whether a Snapshot is wanted to complete the view.
func (v *liveView) needsSeed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.incomplete > 0 || v.stale
}

// reprice recomputes position i's mark-dependent figures from its mark:
// notional, unrealized PnL and, from the cached brackets, maintenance
// margin, the way Binance defines them (see doc.go).
func (v *liveView) reprice(i int) {
	h := &v.hs[i]
	mark := h.MarkPrice
	if mark <= 0 {
		return
	}
	sign := h.Side.Sign()
	if v.inverse {
		h.Notional = h.Size * h.ContractSize / mark
		if h.EntryPrice > 0 {
			h.UnrealizedPnL = sign * h.Size * h.ContractSize * (1/h.EntryPrice - 1/mark)
		}
	} else {
		h.Notional = h.Size * mark
		h.UnrealizedPnL = sign * h.Size * (mark - h.EntryPrice)
	}
	if m, ok := maintFor(v.aux[i].brackets, h.Notional); ok {
		h.MaintMargin = m
	}
}

// sumPools recomputes every pool from its base and its positions.
func (v *liveView) sumPools() {
	for i := range v.bs {
		b, bb := &v.bs[i], &v.base[i]
		u, m, cu, cm := v.positionSums(b.Asset)
		u, m, cu, cm = u+bb.u, m+bb.m, cu+bb.cu, cm+bb.cm
		b.UnrealizedPnL, b.MaintMargin, b.CrossUnPnL, b.CrossMaintMargin = u, m, cu, max(cm, 0)
		b.MarginBalance = b.WalletBalance + u + bb.mbOff
	}
}

// positionSums sums the unrealized PnL and maintenance margin of pool's
// positions, all and cross only. Callers hold mu.
func (v *liveView) positionSums(pool string) (u, m, cu, cm float64) {
	for j := range v.hs {
		h := &v.hs[j]
		if h.Pool != pool {
			continue
		}
		u += h.UnrealizedPnL
		m += h.MaintMargin
		if h.MarginType == exchanges.Cross {
			cu += h.UnrealizedPnL
			cm += h.MaintMargin
		}
	}
	return u, m, cu, cm
}

// markTick applies one mark-price update of symbol, received at received.
// It updates every position on symbol: mark, notional, unrealized PnL,
// maintenance margin from the cached brackets, funding rate and time; then
// the pools. LiquidationPrice stays as last read: exact for an isolated
// position or a pool's only cross position (Binance's price does not move
// with the mark then), and corrected by the next Snapshot otherwise. It
// neither blocks on I/O nor allocates.
func (e *Exchange) markTick(symbol string, mark, fundingRate float64, nextFunding, received time.Time) {
	v := &e.live
	v.mu.Lock()
	hit := false
	for i := range v.hs {
		h := &v.hs[i]
		if h.Symbol != symbol {
			continue
		}
		hit = true
		h.MarkPrice, h.FundingRate, h.NextFundingTime = mark, fundingRate, nextFunding
		v.aux[i].tickAt = received
		v.reprice(i)
	}
	var cb func()
	if hit {
		v.sumPools()
		if received.After(v.lastData) {
			v.lastData = received
		}
		v.lastTick = received
		cb = v.changed
	}
	v.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// marksDown says the mark-price stream is lost (err != nil; the view is
// not ok until it is back) or back (nil).
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

// Live copies the live view into snap; see exchanges.Streamer. snap.Time
// is the newest of the seeding Snapshot, the last user-data message and
// the last mark tick; an account that holds no position gets no ticks, so
// while its user stream is up its view is current as of now (go-binance
// closes a connection whose server pings stop: see userstream.go).
func (e *Exchange) Live(snap *exchanges.Snapshot) (tick time.Time, ok bool) {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	ok = v.seeded && v.userUp && v.marksErr == nil && v.incomplete == 0 && !v.stale
	now := e.now()
	if x := v.money.expiry; !x.IsZero() && !now.Before(x) {
		v.fundPools(now) // funding older than 24h leaves the sums
	}
	v.copyInto(snap)
	if len(v.hs) == 0 && v.userUp {
		snap.Time = now
	}
	if ok {
		// Events move only when the caller will use snap; otherwise the
		// Snapshot it polls with takes them.
		snap.Events = append(snap.Events[:0], v.events...)
		snap.Transfers = append(snap.Transfers[:0], v.transfers...)
		clear(v.events)
		v.events, v.transfers = v.events[:0], v.transfers[:0]
	} else {
		snap.Events, snap.Transfers = snap.Events[:0], snap.Transfers[:0]
	}
	return v.lastTick, ok
}

// copyInto copies balances and positions into snap, reusing its arrays.
// Callers hold mu.
func (v *liveView) copyInto(snap *exchanges.Snapshot) {
	snap.Time = v.lastData
	snap.Inverse = v.inverse
	snap.Balances = append(snap.Balances[:0], v.bs...)
	if cap(snap.Positions) < len(v.hs) {
		snap.Positions = make([]exchanges.Position, len(v.hs))
	}
	snap.Positions = snap.Positions[:len(v.hs)]
	for i := range v.hs {
		snap.Positions[i] = v.hs[i].Position
	}
}

// drain moves the events and transfers the view holds (stream events, a
// reseed's) into snap, after its own.
func (v *liveView) drain(snap *exchanges.Snapshot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	snap.Events = append(snap.Events, v.events...)
	snap.Transfers = append(snap.Transfers, v.transfers...)
	clear(v.events)
	v.events, v.transfers = v.events[:0], v.transfers[:0]
}

// keep holds a reseed's events and transfers for the next Live or
// Snapshot.
func (v *liveView) keep(evs []exchanges.Event, trs []exchanges.Transfer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, evs...)
	v.transfers = append(v.transfers, trs...)
}

// liqKnown reports whether the forced orders of rows that closed p were
// reported already (by the stream, or by an earlier Snapshot), and
// remembers them as reported: each forced order makes one event.
func (v *liveView) liqKnown(account string, p seenPos, rows []forceOrder, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	known := false
	for i := range rows {
		o := &rows[i]
		if (o.Symbol != "" && o.Symbol != p.symbol) || o.closes() != p.side {
			continue
		}
		id := liqID(account, p.symbol, p.side, o.OrderID)
		if _, ok := v.liqSeen[id]; ok {
			known = true
		}
		v.noteLiq(id, now)
	}
	return known
}

// noteLiq remembers a reported liquidation ID. Callers hold mu.
func (v *liveView) noteLiq(id string, now time.Time) {
	remember(&v.liqSeen, id, now, liqWindow)
}

// remember stamps key with now in *m (made when nil) and forgets the keys
// stamped more than keep before now.
func remember(m *map[string]time.Time, key string, now time.Time, keep time.Duration) {
	if *m == nil {
		*m = map[string]time.Time{}
	}
	for k, t := range *m {
		if now.Sub(t) > keep {
			delete(*m, k)
		}
	}
	(*m)[key] = now
}

// liqID is the ID of the liquidation event of forced order orderID, the
// same from the stream and from forceOrders (liquidationEvent).
func liqID(account, symbol string, side exchanges.Side, orderID int64) string {
	return fmt.Sprintf("%s/liquidation/%s/%s/%d", account, symbol, side, orderID)
}

// The user-data events, as both go-binance packages decode them.

// balanceUpd is an ACCOUNT_UPDATE balance row: wb, cw and bc.
type balanceUpd struct{ asset, wallet, cross, change string }

// positionUpd is an ACCOUNT_UPDATE position row.
type positionUpd struct {
	symbol, positionSide, amount, entry, upnl, marginType, isoWallet string
}

// applyAccount applies an ACCOUNT_UPDATE. Balances: a pool's wallet and
// cross wallet are Binance's (wb, cw); in multi-assets mode the "USD" pool
// cannot be priced from one asset's wallet without inventing haircuts, so
// the view waits for a Snapshot. Positions: size, entry, unrealized PnL,
// margin type and isolated wallet as given, notional and maintenance
// margin at the current mark; "pa" 0 removes the position. A new position,
// or a size, margin-type or isolated-wallet change, moves the liquidation
// price (and a new one has no leverage or brackets yet): the view keeps
// what the update gave and asks for a Snapshot, not ok until then. It
// reports whether the held symbols changed.
//
// The balance changes (bc) of funding and transfers go to the ledger
// first, seeded view or not (applyMoney).
func (e *Exchange) applyAccount(m moneyUpd, poss []positionUpd, received time.Time) bool {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	e.applyMoney(m, received)
	bals := m.bals
	// Journaled even before the first seed: the read under way may
	// predate it (the stream connects before the seeding read).
	v.gen++
	v.record(journaled{gen: v.gen, bals: bals, poss: poss, received: received})
	if !v.seeded {
		return false
	}
	return e.applyAccountLocked(bals, poss, received)
}

// applyAccountLocked is applyAccount's work. Callers hold mu.
func (e *Exchange) applyAccountLocked(bals []balanceUpd, poss []positionUpd, received time.Time) bool {
	v := &e.live
	p := parser{op: "user-data ACCOUNT_UPDATE"}
	for _, b := range bals {
		wb, cw := p.f("wb", b.wallet), p.f("cw", b.cross)
		if p.err != nil {
			break
		}
		if v.multi {
			v.stale = true
			continue
		}
		i := slices.IndexFunc(v.bs, func(x exchanges.Balance) bool { return x.Asset == b.asset })
		if i < 0 {
			if wb == 0 {
				continue
			}
			// A pool the Snapshot did not show (no money then).
			i = sort.Search(len(v.bs), func(j int) bool { return v.bs[j].Asset >= b.asset })
			v.bs = slices.Insert(v.bs, i, exchanges.Balance{Asset: b.asset, FundingPaid24h: v.money.paid(b.asset, received)})
			v.base = slices.Insert(v.base, i, poolBase{})
		}
		v.bs[i].WalletBalance, v.bs[i].CrossWalletBalance = wb, cw
	}
	changedSyms := false
	for _, u := range poss {
		if p.err != nil {
			break
		}
		amt, entry, upnl, iw := p.f("pa", u.amount), p.f("ep", u.entry), p.f("up", u.upnl), p.f("iw", u.isoWallet)
		if p.err != nil {
			break
		}
		ps := u.positionSide
		if ps == "" {
			ps = "BOTH"
		}
		mt := exchanges.Cross
		if strings.EqualFold(u.marginType, "isolated") {
			mt = exchanges.Isolated
		}
		i := slices.IndexFunc(v.hs, func(h held) bool { return h.Symbol == u.symbol && h.positionSide == ps })
		if amt == 0 {
			if i < 0 {
				continue
			}
			k := posKey(u.symbol, v.hs[i].Side)
			if t, ok := v.liqPos[k]; ok && received.Sub(t) < liqPosWindow {
				// Kept (a replay after a read applies this row again);
				// a row that keeps the position open forgets it.
				v.remove(i) // its liquidation event is told already
				changedSyms = true
				continue
			}
			// Closed, liquidated or auto-deleveraged: only the forced-order
			// history tells, and a liquidation told as an ordinary close
			// is the one lie marginwatch must not tell. The position stays
			// as it was, the view waits for the Snapshot that asks (and
			// brings the stream's own liquidation event, if it comes
			// meanwhile, with the position's disappearance).
			v.markIncomplete(i)
			continue
		}
		side, size := sideOf(ps, amt), math.Abs(amt)
		delete(v.liqPos, posKey(u.symbol, side)) // it lives on: a partial liquidation
		if i < 0 {
			v.hs = append(v.hs, held{positionSide: ps})
			v.aux = append(v.aux, posAux{})
			i = len(v.hs) - 1
			h := &v.hs[i]
			h.Symbol, h.Side = u.symbol, side
			e.placeNew(i)
			changedSyms = true
			v.markIncomplete(i)
		} else {
			h := &v.hs[i]
			if h.Size != size || h.Side != side || h.MarginType != mt || (mt == exchanges.Isolated && h.IsolatedWallet != iw) {
				v.markIncomplete(i)
			}
		}
		h := &v.hs[i]
		h.Side, h.Size, h.EntryPrice, h.MarginType = side, size, entry, mt
		h.IsolatedWallet = 0
		if mt == exchanges.Isolated {
			h.IsolatedWallet = iw
		}
		v.reprice(i) // notional and maintenance margin at the current mark
		h.UnrealizedPnL = upnl
	}
	if p.err != nil {
		// A number the view cannot read: it waits for a Snapshot.
		v.stale = true
		e.log.Warn("user-data stream: an account update could not be read; waiting for a REST snapshot", "err", p.err)
	}
	if v.stale {
		v.ask()
	}
	v.sumPools()
	v.note(received)
	if changedSyms {
		v.symbols = heldSymbols(v.symbols[:0:0], v.hs)
	}
	return changedSyms
}

// placeNew fills in what the view knows of a new position i: its margin
// asset and pool (COIN-M: from the contract; USDⓈ-M: the pool whose asset
// ends the symbol, USDT else, "USD" in multi-assets mode), contract size,
// and the mark, brackets and funding of another position on its symbol.
// Callers hold mu.
func (e *Exchange) placeNew(i int) {
	v := &e.live
	h := &v.hs[i]
	if v.inverse {
		if c, ok := v.contracts[h.Symbol]; ok {
			h.ContractSize, h.MarginAsset = c.size, c.marginAsset
		}
	} else {
		best := ""
		for _, b := range v.bs {
			if strings.HasSuffix(h.Symbol, b.Asset) && len(b.Asset) > len(best) {
				best = b.Asset
			}
		}
		if best == "" {
			best = "USDT"
		}
		h.MarginAsset = best
	}
	h.Pool = h.MarginAsset
	if v.multi {
		h.Pool = "USD"
	}
	h.FundingInterval = defaultFundingInterval
	for j := range v.hs {
		o := &v.hs[j]
		if j != i && o.Symbol == h.Symbol {
			h.MarkPrice, h.FundingRate, h.NextFundingTime, h.FundingInterval, h.Candles = o.MarkPrice, o.FundingRate, o.NextFundingTime, o.FundingInterval, o.Candles
			h.Leverage = o.Leverage
			v.aux[i].brackets = v.aux[j].brackets
			break
		}
	}
	v.restop(h.Symbol)
}

// markIncomplete notes that position i waits for a Snapshot. Callers hold mu.
func (v *liveView) markIncomplete(i int) {
	if !v.aux[i].incomplete {
		v.aux[i].incomplete = true
		v.incomplete++
	}
	v.ask()
}

// remove drops position i. Callers hold mu.
func (v *liveView) remove(i int) {
	if v.aux[i].incomplete {
		v.incomplete--
	}
	v.hs = slices.Delete(v.hs, i, i+1)
	v.aux = slices.Delete(v.aux, i, i+1)
}

// note records the receipt of an applied change. Callers hold mu.
func (v *liveView) note(received time.Time) {
	if received.After(v.lastData) {
		v.lastData = received
	}
	v.lastTick = received
}

// orderUpd is an open-order change: an ORDER_TRADE_UPDATE or ALGO_UPDATE.
type orderUpd struct {
	order
	symbol string
	open   bool // still resting (NEW, PARTIALLY_FILLED; algo NEW)
}

// applyOrder applies an order change to the stops of its symbol's
// positions, through the REST path's own rules (protects, stopOf,
// addStops). Orders of symbols not held are left to the Snapshot that
// seeds a new position. It reports whether the view changed.
func (e *Exchange) applyOrder(u orderUpd, received time.Time) bool {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	v.record(journaled{gen: v.gen, order: &u, received: received})
	if !v.seeded {
		return false
	}
	return v.applyOrderLocked(u, received)
}

// applyOrderLocked is applyOrder's work. Callers hold mu.
func (v *liveView) applyOrderLocked(u orderUpd, received time.Time) bool {
	if !slices.ContainsFunc(v.hs, func(h held) bool { return h.Symbol == u.symbol }) {
		return false
	}
	os := v.orders[u.symbol]
	i := slices.IndexFunc(os, func(o order) bool { return o.id == u.id && o.algo == u.algo })
	switch {
	case u.open && isStop(u.typ) && i >= 0:
		os = slices.Clone(os)
		os[i] = u.order
	case u.open && isStop(u.typ):
		os = append(slices.Clone(os), u.order)
	case i >= 0:
		os = slices.Delete(slices.Clone(os), i, i+1)
	default:
		return false // not a stop, and not one the view held
	}
	if v.orders == nil {
		v.orders = map[string][]order{}
	}
	v.orders[u.symbol] = os
	v.restop(u.symbol)
	v.note(received)
	return true
}

// restop rebuilds the Stops of symbol's positions from its open orders.
// The old Stops slices may be shared with a Live or Snapshot caller: they
// are replaced, never written. Callers hold mu.
func (v *liveView) restop(symbol string) {
	for i := range v.hs {
		if v.hs[i].Symbol == symbol {
			v.hs[i].Stops = nil
		}
	}
	addStops(v.hs, symbol, v.orders[symbol])
}

// setLeverage applies an ACCOUNT_CONFIG_UPDATE's leverage of symbol.
func (e *Exchange) setLeverage(symbol string, leverage float64, received time.Time) bool {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	v.record(journaled{gen: v.gen, lev: &levUpd{symbol, leverage}, received: received})
	return v.setLeverageLocked(symbol, leverage, received)
}

// levUpd is an ACCOUNT_CONFIG_UPDATE's leverage of a symbol.
type levUpd struct {
	symbol   string
	leverage float64
}

// setLeverageLocked is setLeverage's work. Callers hold mu.
func (v *liveView) setLeverageLocked(symbol string, leverage float64, received time.Time) bool {
	hit := false
	for i := range v.hs {
		if v.hs[i].Symbol == symbol {
			v.hs[i].Leverage, hit = leverage, true
		}
	}
	if hit {
		v.note(received)
	}
	return hit
}

// invalidate makes the view wait for a Snapshot (an update it cannot
// apply, such as a switch of multi-assets mode). symbol, when set, names
// the symbol of an order update the view could not apply: that Snapshot
// reads its open orders rather than take them from the view.
func (e *Exchange) invalidate(symbol string, received time.Time) {
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	if symbol != "" {
		if v.orderDirty == nil {
			v.orderDirty = map[string]bool{}
		}
		v.orderDirty[symbol] = true
	}
	v.gen++ // a read under way may predate the update: it is read again
	v.staleGen = v.gen
	v.stale = true
	v.ask()
	v.note(received)
}

// ordersFor returns the view's open orders of those of symbols it holds
// and can vouch for (no order update it could not apply since they were
// read), for a Snapshot that takes them from the stream.
func (v *liveView) ordersFor(symbols []string) map[string][]order {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.seeded {
		return nil
	}
	m := make(map[string][]order, len(symbols))
	for _, s := range symbols {
		if os, ok := v.orders[s]; ok && !v.orderDirty[s] {
			m[s] = os // never written: updates replace the slice
		}
	}
	return m
}

// liqFill is an ORDER_TRADE_UPDATE of a forced order.
type liqFill struct {
	symbol, side, positionSide, clientOrderID, typ string
	orderID                                        int64
	qty, price                                     string
	at                                             time.Time
}

// liquidation queues the liquidation event of a forced order's fill, once
// per forced order, with the ID liquidationEvent gives it from
// forceOrders. It reports whether it queued one.
func (e *Exchange) liquidation(f liqFill, received time.Time) bool {
	fo := forceOrder{Side: f.side, PositionSide: f.positionSide, ClientOrderID: f.clientOrderID}
	side := fo.closes()
	id := liqID(e.name, f.symbol, side, f.orderID)
	what := "liquidated by Binance"
	if fo.adl() || f.typ == "ADL" {
		what = "closed by Binance's auto-deleveraging (ADL)"
	}
	ev := exchanges.Event{
		ID: id, Kind: exchanges.Liquidation, Time: f.at, Symbol: f.symbol, Side: side,
		Message: fmt.Sprintf("%s %s %s: %s filled at an average %s (order %d at %s)",
			f.symbol, side, what, f.qty, f.price, f.orderID, f.at.UTC().Format(time.RFC3339)),
	}
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.liqSeen[id]; ok {
		return false
	}
	v.noteLiq(id, received)
	remember(&v.liqPos, posKey(f.symbol, side), received, liqPosWindow)
	v.events = append(v.events, ev)
	v.note(received)
	return true
}

// mcPos is a MARGIN_CALL position row.
type mcPos struct {
	symbol, positionSide, amount, marginType, mark, upnl, maint string
}

// marginCall queues the margin_call event of one MARGIN_CALL message.
func (e *Exchange) marginCall(eventTime int64, crossWallet string, ps []mcPos, received time.Time) bool {
	id := fmt.Sprintf("%s/margin_call/%d", e.name, eventTime)
	var b strings.Builder
	fmt.Fprintf(&b, "Binance margin call (cross wallet balance %s):", crossWallet)
	ev := exchanges.Event{ID: id, Kind: exchanges.MarginCall, Time: ms(eventTime)}
	if ev.Time.IsZero() {
		ev.Time = received
	}
	p := parser{op: "user-data MARGIN_CALL"}
	for i, r := range ps {
		side := sideOf(r.positionSide, p.f("pa", r.amount))
		if i == 0 {
			ev.Symbol, ev.Side = r.symbol, side
		} else {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s %s %s, %s, mark %s, unrealized PnL %s, maintenance margin %s",
			r.symbol, side, strings.TrimPrefix(r.amount, "-"), strings.ToLower(r.marginType), r.mark, r.upnl, r.maint)
	}
	ev.Message = b.String()
	v := &e.live
	v.mu.Lock()
	defer v.mu.Unlock()
	if slices.Contains(v.mcSeen[:], id) {
		return false
	}
	v.mcSeen[v.mcNext] = id
	v.mcNext = (v.mcNext + 1) % len(v.mcSeen)
	v.events = append(v.events, ev)
	v.note(received)
	return true
}

// heard records a message that changed nothing (it still proves the
// stream current).
func (v *liveView) heard(received time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if received.After(v.lastData) {
		v.lastData = received
	}
}
