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
// when not nil, Compute records the equity into it (Observe, at snap.Time)
// and sets drawdown_pct over DefaultDrawdownWindow ending at now. now is the
// evaluation time: data_age_seconds = now − snap.Time (0 when snap.Time is
// zero or in the future).
//
// USDⓈ-M (the snapshot's first and only Balance): every account metric is in
// Metrics and Assets is empty. COIN-M (snap.Inverse): Assets holds one entry
// per Balance with the money metrics over that asset's positions; Metrics
// holds margin_ratio (the highest per-asset ratio), position_count,
// data_age_seconds and — only when the account has a single margin asset,
// because equities in different coins cannot be added — drawdown_pct.
//
// margin_ratio is maintenance margin / margin balance (cross figures on the
// account, the position's own for an isolated position). It is 0 when no
// maintenance margin is required (no positions) and 1 — liquidation — when
// margin is required but the margin balance is zero or negative, where the
// quotient would be meaningless.
//
// An equity (margin balance of the pool) of zero or below counts as
// infinitely leveraged (SPEC): effective_leverage and each position's
// size_pct_equity are +Inf and net_exposure_ratio is ±Inf by the sign of the
// net exposure. Where there is nothing to lever — no exposure, a zero net
// exposure, a position of zero notional — the ratio is 0 instead, so an
// empty account at zero equity does not page. A position's leverage is its
// setting and does not depend on equity.
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
	a := &Account{
		Name:     name,
		Exchange: exchange,
		Labels:   labels,
		Time:     snap.Time,
		Events:   snap.Events,
		history:  hist,
	}
	at := snap.Time
	if at.IsZero() {
		at = now // an adapter that forgot the time: treat the data as fresh
	}

	a.Positions = make([]Position, len(snap.Positions))
	var memo atrMemo
	for i := range snap.Positions {
		p := &snap.Positions[i]
		eq, eqOK := positionEquity(snap, p)
		a.Positions[i] = Position{Symbol: p.Symbol, Side: p.Side, Raw: p}
		positionMetrics(&a.Positions[i].Metrics, p, snap.Inverse, eq, eqOK, &memo)
	}

	if snap.Inverse {
		a.Assets = make([]Asset, len(snap.Balances))
		worst, haveWorst := 0.0, false
		for i := range snap.Balances {
			b := &snap.Balances[i]
			s := &a.Assets[i].Metrics
			a.Assets[i].Asset = b.Asset
			moneyMetrics(s, b, a.Positions, b.Asset, false)
			if r, ok := s.Get(MarginRatio); ok && (!haveWorst || r > worst) {
				worst, haveWorst = r, true
			}
		}
		if haveWorst {
			a.Metrics.Put(MarginRatio, worst)
		}
		if len(snap.Balances) == 1 {
			drawdown(&a.Metrics, hist, &snap.Balances[0], at, now)
		}
	} else if len(snap.Balances) > 0 {
		b := &snap.Balances[0]
		moneyMetrics(&a.Metrics, b, a.Positions, "", true)
		drawdown(&a.Metrics, hist, b, at, now)
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

// positionEquity is the equity of the position's margin asset: the single
// account balance on USDⓈ-M (in multi-asset mode the account equity is in
// USD whatever the margin asset), the matching balance on COIN-M.
func positionEquity(snap *exchanges.Snapshot, p *exchanges.Position) (float64, bool) {
	if !snap.Inverse {
		if len(snap.Balances) == 0 {
			return 0, false
		}
		return snap.Balances[0].MarginBalance, true
	}
	for i := range snap.Balances {
		if snap.Balances[i].Asset == p.MarginAsset {
			return snap.Balances[i].MarginBalance, true
		}
	}
	return 0, false
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

// moneyMetrics sets the account money metrics of one balance. Exposure and
// funding sum over the positions in asset (every position when all is set).
func moneyMetrics(s *Set, b *exchanges.Balance, positions []Position, asset string, all bool) {
	eq := b.MarginBalance
	putFinite(s, Equity, eq)
	putFinite(s, AvailableBalance, b.AvailableBalance)
	putFinite(s, UnrealizedPnL, b.UnrealizedPnL)
	putFinite(s, MarginRatio, marginRatio(b.CrossMaintMargin, b.CrossWalletBalance+b.CrossUnPnL))

	var gross, net, funding float64
	for i := range positions {
		p := positions[i].Raw
		if !all && p.MarginAsset != asset {
			continue
		}
		n := math.Abs(p.Notional)
		gross += n
		net += p.Side.Sign() * n
		if v, ok := positions[i].Metrics.Get(FundingNextCost); ok {
			funding += v
		}
	}
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

// drawdown records b's equity in hist and sets drawdown_pct on s.
func drawdown(s *Set, hist *EquityHistory, b *exchanges.Balance, at, now time.Time) {
	if hist == nil {
		return
	}
	eq := b.MarginBalance
	hist.Observe(at, eq)
	if dd, ok := hist.Drawdown(now, DefaultDrawdownWindow, eq); ok {
		putFinite(s, DrawdownPct, dd)
	}
}

// positionMetrics sets the position-scope metrics of p. eq is the equity of
// p's margin asset (eqOK false when unknown).
func positionMetrics(s *Set, p *exchanges.Position, inverse bool, eq float64, eqOK bool, memo *atrMemo) {
	sign := p.Side.Sign()
	notional := math.Abs(p.Notional)

	if p.LiquidationPrice > 0 && p.MarkPrice > 0 {
		dist := math.Abs(p.MarkPrice - p.LiquidationPrice)
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
	if interval <= 0 {
		interval = defaultFundingInterval
	}
	putFinite(s, FundingRate, p.FundingRate)
	putFinite(s, FundingAPRPct, p.FundingRate*(float64(year)/float64(interval))*100*sign)
	putFinite(s, FundingNextCost, notional*p.FundingRate*sign)

	if im := initialMargin(p, inverse); im > 0 {
		putFinite(s, UnrealizedPnLPct, p.UnrealizedPnL/im*100)
	}
	stop := 0.0
	if p.HasStopLoss {
		stop = 1
	}
	s.Put(HasStopLoss, stop)
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
