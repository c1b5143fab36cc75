package metrics

import (
	"math"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// DefaultDrawdownWindow is the window of drawdown_pct when a rule names none.
const DefaultDrawdownWindow = 24 * time.Hour

// defaultFundingInterval is Binance's usual funding interval, assumed when a
// position does not say.
const defaultFundingInterval = 8 * time.Hour

// year is the funding annualisation base (365 days, as exchanges quote APR).
const year = 365 * 24 * time.Hour

// Compute turns one snapshot into metrics. hist may be nil (no drawdown);
// when not nil, Compute applies the snapshot's transfers to it, records each
// pool's equity (Observe, at snap.Time) and sets drawdown_pct over
// DefaultDrawdownWindow ending at now. now is the evaluation time:
// data_age_seconds = now − snap.Time (0 when snap.Time is zero or in the
// future).
//
// Margin pools (snap.Balances, one per pool): with exactly one, every account
// metric is in Metrics, Pool names it and Assets is nil. With several, Assets
// holds one entry per pool with the money metrics over that pool's positions
// (drawdown_pct included, each pool its own history); Metrics holds
// margin_ratio (the highest pool's), position_count and data_age_seconds. A
// position belongs to the pool its Pool names (MarginAsset when Pool is
// empty); with a single pool every position does.
//
// margin_ratio is maintenance margin / margin balance (cross figures on a
// pool, the position's own for an isolated position). A pool's cross
// maintenance margin is never taken below the sum of its cross positions'
// maintenance margins: Binance's COIN-M account body can report 0 while a
// position is close to liquidation. The ratio is 0 when no maintenance
// margin is required (no positions) and 1 — liquidation — when margin is
// required but the margin balance is zero or negative, where the quotient
// would be meaningless.
//
// An equity (margin balance of the pool) of zero or below counts as
// infinitely leveraged (SPEC): effective_leverage and each position's
// size_pct_equity are +Inf and net_exposure_ratio is ±Inf by the sign of the
// net exposure. Where there is nothing to lever — no exposure, a zero net
// exposure, a position of zero notional — the ratio is 0 instead, so an
// empty account at zero equity does not page. A position's size_pct_equity
// is over its own pool's equity; its leverage is its setting and does not
// depend on equity.
//
// Compute allocates the Account, its Positions slice, one scratch index over
// the positions (hedge-mode legs, see liqSides) and, with several pools, the
// Assets slice — nothing per position.
//
// The returned Account shares labels, snap.Events and snap.Positions (through
// Position.Raw) with the caller; treat them as read-only. A nil snap yields a
// stale Account. Compute never panics on odd numbers: NaN and infinite
// results of odd exchange figures simply leave the metric absent; the
// infinities above are the only ones Compute stores.
func Compute(name, exchange string, labels map[string]string, snap *exchanges.Snapshot, hist *EquityHistory, now time.Time) *Account {
	if snap == nil {
		return Stale(name, exchange, labels, time.Time{}, now)
	}
	return ComputeInto(new(Account), name, exchange, labels, snap, hist, now)
}

// ComputeInto is Compute into a, reusing a's Positions and Assets arrays
// and its scratch, so that an account evaluated on every mark-price tick
// allocates nothing once its arrays have grown to size. Everything a held
// before is overwritten. It returns a. snap must not be nil.
func ComputeInto(a *Account, name, exchange string, labels map[string]string, snap *exchanges.Snapshot, hist *EquityHistory, now time.Time) *Account {
	*a = Account{
		Name:      name,
		Exchange:  exchange,
		Labels:    labels,
		Time:      snap.Time,
		Events:    snap.Events,
		history:   hist,
		Positions: a.Positions[:0],
		spare:     spareAssets(a),
		table:     a.table,
	}
	at := snap.Time
	if at.IsZero() {
		at = now // an adapter that forgot the time: treat the data as fresh
	}
	a.at = at
	if len(snap.Balances) == 1 {
		a.Pool = snap.Balances[0].Asset
	}

	a.Positions = resize(a.Positions, len(snap.Positions))
	for i := range snap.Positions {
		p := &snap.Positions[i]
		a.Positions[i] = Position{Symbol: p.Symbol, Side: p.Side, Raw: p, pool: poolIndex(snap, p)}
	}
	a.table = liqSides(a.Positions, a.table)
	var memo atrMemo
	for i := range a.Positions {
		mp := &a.Positions[i]
		eq, eqOK := 0.0, mp.pool >= 0
		if eqOK {
			eq = snap.Balances[mp.pool].MarginBalance
		}
		positionMetrics(&mp.Metrics, mp.Raw, snap.Inverse, mp.liqSide, eq, eqOK, &memo)
	}

	if hist != nil {
		hist.claimLegacy(snap.Balances)
		for _, tr := range snap.Transfers {
			if tr.Time.IsZero() {
				tr.Time = at // the snapshot's balances show it
			}
			if tr.Pool == "" && len(snap.Balances) == 1 {
				tr.Pool = a.Pool
			}
			hist.Transfer(tr)
		}
	}

	switch {
	case len(snap.Balances) > 1:
		a.Assets = resize(a.spare, len(snap.Balances))
		clear(a.Assets)
		worst, haveWorst := 0.0, false
		for i := range snap.Balances {
			b := &snap.Balances[i]
			s := &a.Assets[i].Metrics
			a.Assets[i].Asset = b.Asset
			moneyMetrics(s, b, i, a.Positions)
			drawdown(s, hist, b.Asset, b.MarginBalance, at, now)
			if r, ok := s.Get(MarginRatio); ok && (!haveWorst || r > worst) {
				worst, haveWorst = r, true
			}
		}
		if haveWorst {
			a.Metrics.Put(MarginRatio, worst)
		}
	case len(snap.Balances) == 1:
		b := &snap.Balances[0]
		moneyMetrics(&a.Metrics, b, 0, a.Positions)
		drawdown(&a.Metrics, hist, b.Asset, b.MarginBalance, at, now)
	}
	a.Metrics.Put(PositionCount, float64(len(snap.Positions)))
	a.Metrics.Put(DataAgeSeconds, age(at, now))
	return a
}

// Stale returns the Account for a failed poll: Stale is true and Metrics
// holds only data_age_seconds = now − lastSuccess. A caller that never had a
// successful poll passes the time monitoring started as lastSuccess. A zero
// lastSuccess (nothing better known) reports the largest representable age
// (about 9.2e9 s) so that any staleness threshold fires: monitoring is blind,
// and saying so loudly beats saying nothing.
func Stale(name, exchange string, labels map[string]string, lastSuccess time.Time, now time.Time) *Account {
	a := &Account{
		Name:     name,
		Exchange: exchange,
		Labels:   labels,
		Time:     lastSuccess,
		Stale:    true,
	}
	a.Metrics.Put(DataAgeSeconds, age(lastSuccess, now))
	return a
}

// age is now − since in seconds, never negative (clock skew between the
// exchange and us must not produce a negative age). time.Time.Sub saturates,
// so a zero since gives the largest Duration.
func age(since, now time.Time) float64 {
	d := now.Sub(since)
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

// resize returns s with length n, in s's array when it is large enough
// (its old contents left as they were), else in a new one.
func resize[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// spareAssets is the Assets array a holds, in use or spare.
func spareAssets(a *Account) []Asset {
	if a.Assets != nil {
		return a.Assets[:0]
	}
	return a.spare
}

// poolIndex is the index in snap.Balances of p's pool: the only one when
// there is one, else the one its Pool (or, when empty, MarginAsset) names;
// -1 when none does.
func poolIndex(snap *exchanges.Snapshot, p *exchanges.Position) int {
	if len(snap.Balances) == 1 {
		return 0
	}
	name := p.Pool
	if name == "" {
		name = p.MarginAsset
	}
	for i := range snap.Balances {
		if snap.Balances[i].Asset == name {
			return i
		}
	}
	return -1
}

// liqSides sets each position's liqSide: its own side's sign, except for
// hedge-mode cross legs. Those share one liquidation price (SPEC), so the
// side of the symbol's net cross position decides for all of them; a net of
// zero — the symbol's price cannot move the margin — reads the mark as on
// the safe side.
//
// The legs of a symbol (and pool) are found through one open-addressing
// table of position indices: O(n), in table's array when it is large
// enough (else one allocation); liqSides returns the table for reuse.
func liqSides(ps []Position, table []int32) []int32 {
	for i := range ps {
		ps[i].liqSide = ps[i].Side.Sign()
		ps[i].leader, ps[i].legs, ps[i].net = int32(i), 0, 0
	}
	if len(ps) < 2 {
		return table
	}
	size := 1
	for size < 2*len(ps) {
		size <<= 1
	}
	table = resize(table, size) // index+1 of a symbol's first cross leg; 0 empty
	clear(table)
	mask := uint64(size - 1)
	for i := range ps {
		p := &ps[i]
		if p.Raw.MarginType == exchanges.Isolated {
			continue
		}
		for h := symbolHash(p.Symbol, p.pool) & mask; ; h = (h + 1) & mask {
			j := table[h] - 1
			if j < 0 {
				table[h] = int32(i) + 1
				break
			}
			if q := &ps[j]; q.Symbol == p.Symbol && q.pool == p.pool {
				p.leader = j
				break
			}
		}
		l := &ps[p.leader]
		l.legs++
		l.net += p.Side.Sign() * math.Abs(p.Raw.Size)
	}
	for i := range ps {
		p := &ps[i]
		l := &ps[p.leader]
		if p.Raw.MarginType == exchanges.Isolated || l.legs < 2 {
			continue
		}
		switch {
		case l.net > 0:
			p.liqSide = 1
		case l.net < 0:
			p.liqSide = -1
		case p.Raw.LiquidationPrice > 0 && p.Raw.MarkPrice < p.Raw.LiquidationPrice:
			p.liqSide = -1
		default:
			p.liqSide = 1
		}
	}
	return table
}

// symbolHash is FNV-1a over a symbol and a pool index.
func symbolHash(sym string, pool int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(sym); i++ {
		h ^= uint64(sym[i])
		h *= 1099511628211
	}
	h ^= uint64(pool)
	h *= 1099511628211
	return h
}

// marginRatio is maint / marginBalance with the edge cases of Compute's doc.
func marginRatio(maint, marginBalance float64) float64 {
	switch {
	case maint <= 0:
		return 0 // nothing to maintain
	case marginBalance <= 0:
		return 1 // margin is gone: at or past liquidation
	default:
		return maint / marginBalance
	}
}

// moneyMetrics sets the account money metrics of pool k, whose balance is
// b: exposure, funding and the maintenance-margin floor sum over the
// positions of that pool.
func moneyMetrics(s *Set, b *exchanges.Balance, k int, positions []Position) {
	eq := b.MarginBalance
	putFinite(s, Equity, eq)
	putFinite(s, AvailableBalance, b.AvailableBalance)
	putFinite(s, UnrealizedPnL, b.UnrealizedPnL)

	var gross, net, funding, crossMaint float64
	for i := range positions {
		if positions[i].pool != k {
			continue
		}
		p := positions[i].Raw
		n := math.Abs(p.Notional)
		gross += n
		net += p.Side.Sign() * n
		// One position's unknown cost makes the pool's unknown, not
		// smaller than it is.
		if v, ok := positions[i].Metrics.Get(FundingNextCost); ok {
			funding += v
		} else {
			funding = math.NaN()
		}
		if p.MarginType != exchanges.Isolated && p.MaintMargin > 0 && !math.IsInf(p.MaintMargin, 0) {
			crossMaint += p.MaintMargin
		}
	}
	// The pool's own figure when it is at least its positions' sum; a NaN
	// (unknown) stays unknown.
	maint := b.CrossMaintMargin
	if crossMaint > maint {
		maint = crossMaint
	}
	putFinite(s, MarginRatio, marginRatio(maint, b.CrossWalletBalance+b.CrossUnPnL))
	s.Put(EffectiveLeverage, perEquity(gross, eq))
	s.Put(NetExposureRatio, perEquity(net, eq))
	putFinite(s, FundingNextCost, funding)
	putFinite(s, FundingPaid24h, b.FundingPaid24h) // NaN (unknown) is dropped
}

// perEquity is x / eq, with an equity at or below zero counting as
// infinitely leveraged: ±Inf by the sign of x, 0 when x is 0. NaN (unknown
// equity or exposure) leaves the metric absent.
func perEquity(x, eq float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(eq) || math.IsInf(x, 0) || math.IsInf(eq, 0):
		return math.NaN()
	case eq > 0:
		return x / eq
	case x == 0:
		return 0
	default:
		return math.Inf(int(math.Copysign(1, x)))
	}
}

// putFinite stores v only when it is finite: an infinite result of odd
// exchange figures is no measurement. The deliberate infinities of an
// equity at or below zero come from perEquity and pass.
func putFinite(s *Set, id ID, v float64) {
	if math.IsInf(v, 0) {
		s.Delete(id)
		return
	}
	s.Put(id, v)
}

// drawdown records pool's equity in hist and sets drawdown_pct on s.
func drawdown(s *Set, hist *EquityHistory, pool string, eq float64, at, now time.Time) {
	if hist == nil {
		return
	}
	hist.Observe(pool, at, eq)
	if dd, ok := hist.drawdownAt(pool, at, now, DefaultDrawdownWindow, eq); ok {
		putFinite(s, DrawdownPct, dd)
	}
}

// positionMetrics sets the position-scope metrics of p. liqSide is the sign
// of the side the liquidation price guards (see liqSides); eq is the equity
// of p's pool (eqOK false when unknown).
func positionMetrics(s *Set, p *exchanges.Position, inverse bool, liqSide, eq float64, eqOK bool, memo *atrMemo) {
	sign := p.Side.Sign()
	notional := math.Abs(p.Notional)

	if p.LiquidationPrice > 0 && p.MarkPrice > 0 {
		// Positive on the safe side, negative once the mark is past it, so
		// that below-rules keep firing rather than bounce.
		dist := (p.MarkPrice - p.LiquidationPrice) * liqSide
		putFinite(s, LiqDistancePct, dist/p.MarkPrice*100)
		if atr, ok := memo.atr(p.Candles); ok && atr > 0 {
			putFinite(s, LiqDistanceATR, dist/atr)
		}
	}
	if p.Leverage > 0 {
		putFinite(s, Leverage, p.Leverage)
	}
	if eqOK {
		s.Put(SizePctEquity, perEquity(notional*100, eq))
	}

	// A positive rate means longs pay shorts: a cost to a long, income to a short.
	interval := p.FundingInterval
	if interval == 0 {
		interval = defaultFundingInterval
	}
	putFinite(s, FundingRate, p.FundingRate)
	if interval > 0 { // else unknown: no APR
		putFinite(s, FundingAPRPct, p.FundingRate*(float64(year)/float64(interval))*100*sign)
	}
	putFinite(s, FundingNextCost, notional*p.FundingRate*sign)

	if im := initialMargin(p, inverse); im > 0 {
		putFinite(s, UnrealizedPnLPct, p.UnrealizedPnL/im*100)
	}
	stopMetrics(s, p, liqSide)
	if p.MarginType == exchanges.Isolated {
		putFinite(s, MarginRatio, marginRatio(p.MaintMargin, p.IsolatedWallet+p.UnrealizedPnL))
	}
}

// initialMargin is the margin Binance's ROE divides by: the entry notional
// over the leverage, in the margin asset. 0 when it cannot be known.
func initialMargin(p *exchanges.Position, inverse bool) float64 {
	if p.Leverage <= 0 || p.EntryPrice <= 0 {
		return 0
	}
	size := math.Abs(p.Size)
	if inverse {
		return size * p.ContractSize / p.EntryPrice / p.Leverage
	}
	return size * p.EntryPrice / p.Leverage
}

// atrMemo remembers the ATR of the last candle slice: positions on one symbol
// (hedge mode, or adapters that list positions by symbol) share the slice, so
// the ATR is computed once for them.
type atrMemo struct {
	first *exchanges.Candle
	n     int
	v     float64
	ok    bool
}

func (m *atrMemo) atr(c []exchanges.Candle) (float64, bool) {
	if len(c) == 0 {
		return 0, false
	}
	if m.first == &c[0] && m.n == len(c) {
		return m.v, m.ok
	}
	m.first, m.n = &c[0], len(c)
	m.v, m.ok = ATR(c)
	return m.v, m.ok
}

// atrPeriod is the period of Wilder's ATR used by liq_distance_atr.
const atrPeriod = 14

// ATR returns Wilder's ATR(14) over closed candles (oldest first), and false
// when there are fewer than 15 candles or a candle holds a non-finite price.
//
// The true range of candle i needs the previous close, so 15 candles give the
// first 14 true ranges, whose mean is the first ATR; every later candle
// smooths it: ATR = (ATR × 13 + TR) / 14.
func ATR(c []exchanges.Candle) (float64, bool) {
	if len(c) < atrPeriod+1 {
		return 0, false
	}
	var atr float64
	for i := 1; i < len(c); i++ {
		prev := c[i-1].Close
		tr := max(c[i].High-c[i].Low, math.Abs(c[i].High-prev), math.Abs(c[i].Low-prev))
		if i <= atrPeriod {
			atr += tr / atrPeriod
		} else {
			atr = (atr*(atrPeriod-1) + tr) / atrPeriod
		}
	}
	if math.IsNaN(atr) || math.IsInf(atr, 0) {
		return 0, false
	}
	return atr, true
}
