package binance

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// The ledger: funding and transfers from two sources, the income history
// (REST) and the user-data stream's ACCOUNT_UPDATE balance changes ("bc"),
// each money movement counted once. While the user-data stream has been up
// since the last income read, the stream brings them and a reconciliation
// does not read income (see incomeKept); an income read (the first
// Snapshot, after a gap in the stream, hourly as a drift check) brings
// what the stream missed.
const (
	// incomeDrift: while the stream keeps funding and transfers, income is
	// still read this often, for what the stream may have missed.
	incomeDrift = time.Hour
	// fundingCover: a stream funding entry within this of an income
	// FUNDING_FEE row of its asset is that row's (the stream may push one
	// event per position or one per asset; funding instants are an hour
	// apart at least), so the row replaces it.
	fundingCover = 5 * time.Minute
	// transferMatch: a transfer both sources report (same asset and
	// amount) has times this close at most.
	transferMatch = 10 * time.Minute
	// ledgerKeep is how long the ledger remembers what it counted: an
	// income read goes back 24 hours at most.
	ledgerKeep = 24*time.Hour + transferMatch
)

// ledger is the account's funding and transfers between income reads.
// Guarded by liveView.mu; it outlives the view's seeds.
type ledger struct {
	// known: an income read has succeeded, so the 24h funding is known.
	known bool
	// multi: the last income read found the account in multi-assets mode
	// (every transfer goes to the USD pool).
	multi bool
	// rest is the FUNDING_FEE rows of the last 24h as the income reads
	// found them (shared with incomeState, never written); stream is the
	// stream's funding that no income row covers yet.
	rest, stream []fundingRow
	// sent is the transfers handed out, from either source, so that the
	// other one does not hand them out again.
	sent []sentMoney
	// ids is the stream balance changes applied (ID → time ms): the two
	// connections of a forced reconnect deliver the same frame.
	ids map[string]int64
	// wantRead: the stream saw a transfer it cannot hand out itself (no
	// income read yet, or an asset the multi-assets USD pool must price):
	// the next Snapshot reads income.
	wantRead bool
	// expiry is when the oldest funding entry leaves the 24h window.
	expiry time.Time
}

// sentMoney is a transfer handed out: by the stream or by an income read.
type sentMoney struct {
	stream  bool
	asset   string
	amount  float64
	at      int64 // ms
	matched bool  // the other source reported it too
}

// pair reports whether the other source handed out this transfer already
// (and pairs the two), else records it as handed out by this one. Equal
// transfers are paired one to one, so the count handed out is the larger
// of the two sources' counts.
func (l *ledger) pair(stream bool, asset string, amount float64, at int64) bool {
	win := transferMatch.Milliseconds()
	for i := range l.sent {
		s := &l.sent[i]
		if s.stream != stream && !s.matched && s.asset == asset && sameAmount(s.amount, amount) && abs64(s.at-at) <= win {
			s.matched = true
			return true
		}
	}
	l.sent = append(l.sent, sentMoney{stream: stream, asset: asset, amount: amount, at: at})
	return false
}

// covered reports whether an income FUNDING_FEE row of asset lies within
// fundingCover of at.
func (l *ledger) covered(asset string, at int64) bool {
	win := fundingCover.Milliseconds()
	for _, r := range l.rest {
		if r.asset == asset && abs64(r.at-at) <= win {
			return true
		}
	}
	return false
}

// setRest takes an income read's 24h funding rows; the stream entries they
// cover go.
func (l *ledger) setRest(rows []fundingRow, multi bool) {
	l.rest, l.known, l.multi, l.wantRead = rows, true, multi, false
	l.stream = slices.DeleteFunc(l.stream, func(f fundingRow) bool { return l.covered(f.asset, f.at) })
	l.stream = slices.Clip(l.stream)
}

// prune forgets what can no longer come back.
func (l *ledger) prune(now time.Time) {
	old := now.Add(-ledgerKeep).UnixMilli()
	l.sent = slices.DeleteFunc(l.sent, func(s sentMoney) bool { return s.at < old })
	l.stream = slices.DeleteFunc(l.stream, func(f fundingRow) bool { return f.at < old })
	for id, at := range l.ids {
		if at < old {
			delete(l.ids, id)
		}
	}
}

// paid is the funding paid over the 24 hours before now by asset ("": every
// asset, the multi-assets USD pool), positive when paid; NaN before the
// first income read.
func (l *ledger) paid(asset string, now time.Time) float64 {
	if !l.known {
		return math.NaN()
	}
	dayAgo := now.Add(-24 * time.Hour).UnixMilli()
	var sum float64
	for _, rows := range [2][]fundingRow{l.rest, l.stream} {
		for _, r := range rows {
			if r.at >= dayAgo && (asset == "" || r.asset == asset) {
				sum -= r.amount // income: a paid fee is negative
			}
		}
	}
	return sum
}

// nextExpiry is when the oldest funding entry leaves the 24h window (zero
// when there is none).
func (l *ledger) nextExpiry() time.Time {
	oldest := int64(math.MaxInt64)
	for _, rows := range [2][]fundingRow{l.rest, l.stream} {
		for _, r := range rows {
			oldest = min(oldest, r.at)
		}
	}
	if oldest == math.MaxInt64 {
		return time.Time{}
	}
	return ms(oldest).Add(24 * time.Hour)
}

// fundPools sets each pool's FundingPaid24h from the ledger. Callers hold
// mu.
func (v *liveView) fundPools(now time.Time) {
	for i := range v.bs {
		asset := v.bs[i].Asset
		if v.multi {
			asset = "" // the USD pool: every asset's, stablecoins one to one
		}
		v.bs[i].FundingPaid24h = v.money.paid(asset, now)
	}
	v.money.expiry = v.money.nextExpiry()
}

// fundingPaid is the 24h funding of asset ("" every asset) for a Snapshot.
func (v *liveView) fundingPaid(asset string, now time.Time) float64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.money.paid(asset, now)
}

// restTransfer is a transfer row of an income read, its amount converted
// to its pool's unit.
type restTransfer struct {
	row    incomeRow
	raw    float64 // in the row's asset
	amount float64 // in the pool's unit
	pool   string
}

// takeIncome commits an income read to the ledger: its 24h funding rows,
// and its new transfer rows less those the stream handed out already. It
// returns the transfers to hand out.
func (v *liveView) takeIncome(account string, funding []fundingRow, multi bool, rows []restTransfer, now time.Time) []exchanges.Transfer {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := &v.money
	l.prune(now)
	l.setRest(funding, multi)
	var out []exchanges.Transfer
	for _, t := range rows {
		if l.pair(false, t.row.asset, t.raw, t.row.time) {
			continue // the stream handed it out
		}
		out = append(out, exchanges.Transfer{
			ID:     fmt.Sprintf("%s/%s/%s/%s", account, t.row.typ, t.row.asset, t.row.id),
			Pool:   t.pool,
			Amount: t.amount,
			Time:   ms(t.row.time),
		})
	}
	if v.seeded {
		v.fundPools(now)
	}
	return out
}

// moneyUpd is the money side of one ACCOUNT_UPDATE.
type moneyUpd struct {
	reason          string
	eventTime, txMs int64 // E and T
	bals            []balanceUpd
}

// applyMoney applies an ACCOUNT_UPDATE's balance changes: reason
// FUNDING_FEE adds each asset's bc to the 24h funding (unless an income
// row has it already), a transfer reason (transferTypes) makes each bc one
// Transfer (unless an income read handed it out already). Each balance
// change counts once, by its ID (account, reason, asset, event time),
// across the overlap of a forced reconnect. It reports whether the view
// changed. Callers hold mu.
func (e *Exchange) applyMoney(u moneyUpd, received time.Time) bool {
	v := &e.live
	l := &v.money
	isFunding, isTransfer := u.reason == "FUNDING_FEE", transferTypes[u.reason]
	if !isFunding && !isTransfer {
		return false
	}
	at := u.txMs
	if at == 0 {
		at = u.eventTime
	}
	if at == 0 {
		at = received.UnixMilli()
	}
	changed := false
	for _, b := range u.bals {
		p := parser{op: "user-data ACCOUNT_UPDATE " + u.reason}
		bc := p.f("bc", b.change)
		if p.err != nil {
			// The income read will tell: the next Snapshot reads it.
			l.wantRead = true
			e.log.Warn("user-data stream: a balance change could not be read; income will be read at the next REST snapshot", "err", p.err)
			continue
		}
		if bc == 0 {
			continue
		}
		id := fmt.Sprintf("%s/stream/%s/%s/%d", e.name, u.reason, b.asset, u.eventTime)
		if _, ok := l.ids[id]; ok {
			continue // the other connection of a forced reconnect delivered it
		}
		if l.ids == nil {
			l.ids = map[string]int64{}
		}
		l.ids[id] = at
		if isFunding {
			if !l.covered(b.asset, at) {
				l.stream = append(l.stream, fundingRow{asset: b.asset, amount: bc, at: at})
				changed = true
			}
			continue
		}
		pool, amount := b.asset, bc
		if !l.known || (l.multi && !usdStable[b.asset]) {
			// No income read yet (the pool mode is unknown), or an asset
			// the USD pool takes at a price: the income read hands it out.
			l.wantRead = true
			v.ask()
			continue
		}
		if l.multi {
			pool = "USD"
		}
		if l.pair(true, b.asset, bc, at) {
			continue // an income read handed it out
		}
		v.transfers = append(v.transfers, exchanges.Transfer{ID: id, Pool: pool, Amount: amount, Time: ms(at)})
		changed = true
	}
	if changed && v.seeded {
		v.fundPools(received)
	}
	return changed
}

// incomeKept reports whether the stream has kept funding and transfers
// since the last income read: the user-data stream was up when that read
// began (period, see userPeriod) and has not been down since (this read
// began in the same period), and it saw nothing it left to an income read.
func (v *liveView) incomeKept(lastRead, period uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return period != 0 && lastRead == period && !v.money.wantRead
}

// userPeriod is the number of the user-data stream's current connected
// period, 0 while it is down. A Snapshot notes it before its first request:
// when it is still the same later, every change since that Snapshot's
// reads came through the stream.
func (v *liveView) userPeriod() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.userUp {
		return 0
	}
	return v.userEpoch
}

func sameAmount(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
