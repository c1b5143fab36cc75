package metrics

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// DefaultHistoryCapacity is the capacity of a zero EquityHistory: enough for
// a weekly drawdown window. Config refuses a longer window, so the daemon's
// histories must hold at least this much.
const DefaultHistoryCapacity = 7 * 24 * time.Hour

// maxHistoryCapacity bounds a decoded capacity so that corrupt input cannot
// ask for an absurd window.
const maxHistoryCapacity = 400 * 24 * time.Hour

// historyBucket is the resolution of EquityHistory: at most one peak is kept
// per minute, which bounds memory at capacity/1min entries per pool.
const historyBucket = time.Minute

// transferGrace is how long observations are kept whole before they join
// the deque, which forgets every entry a later one beats: a deposit reported
// up to this late still finds the peak it must be measured against.
const transferGrace = 15 * time.Minute

// depositSkew is how long before its time a deposit is applied. A snapshot
// is stamped when its poll starts, before the balance request: a deposit
// credited while that request is in flight is dated after the snapshot that
// already shows it, and left in that observation's net equity it would be a
// peak (a pure deposit read as a drawdown for a whole window). An
// observation this close before a transfer may or may not show it, so it
// takes the lower reading: net of a deposit, but not of a withdrawal (netting
// one it does not show yet would raise it into a false peak). The cost is
// that a real peak in the half minute before a deposit is read low. 30 s
// covers the requests of a poll (the exchange adapter bounds each at 10 s).
const depositSkew = 30 * time.Second

// maxTransfers bounds the transfers a pool remembers (by ID, so that one
// reported again is not applied twice). Beyond it the oldest are forgotten
// and transfers dated no later than them are ignored (see Transfer).
const maxTransfers = 1024

// EquityHistory remembers enough of each margin pool's equity to answer
// "what was the peak within the last W" for any window W up to its
// capacity, net of the pool's transfers: deposits, withdrawals and transfers
// shift the peak, so drawdown measures trading losses only. It is persisted
// with MarshalBinary/UnmarshalBinary so drawdown survives restarts. It is
// safe for concurrent use; the zero value is ready with
// DefaultHistoryCapacity.
//
// Each pool keeps its equities net of transfers: the equity observed at t
// minus every transfer dated at or before t. Its drawdown is then the fall
// of that net equity from its peak, over the peak shifted by the transfers
// since (see drawdownAt). A transfer reported after the balances that show
// it is applied to the observations since its time too, so a late report
// corrects the history (an alert it caused meanwhile resolves).
//
// Per pool it is a monotonic deque: times ascending, net equities strictly
// decreasing. An observation evicts every older entry it equals or beats
// (those can never again be the peak of a window that ends later), so the
// first entry at or after now−W is the peak of [now−W, now]. Observations
// in one minute share one entry holding the minute's peak, stamped with the
// time of its latest observation: a peak may thus outlive its window by less
// than a minute, which errs towards reporting a drawdown rather than missing
// one. The last transferGrace of observations are kept aside, every minute's
// peak, and join the deque only then: a deposit reported late lowers the
// observations since it, and a peak they had evicted would be lost.
type EquityHistory struct {
	mu       sync.Mutex
	capacity time.Duration
	pools    []*poolHistory
}

// poolHistory is one pool's history. The pool named "" read from a
// version-1 encoding (which knew one pool) is claimed by claimLegacy.
type poolHistory struct {
	name string
	pts  []equityPoint // net equities, the deque
	// recent are the net equities of the last transferGrace, one per
	// minute, times ascending, not yet in pts.
	recent []equityPoint
	// offset is the sum of every transfer applied.
	offset float64
	// transfers are the applied transfers still remembered, oldest first
	// (by time, then arrival).
	transfers []transferRecord
	// floorMS: transfers dated before it are ignored. It follows the oldest
	// time any entry can still hold, and the newest transfer forgotten.
	floorMS int64
}

type equityPoint struct {
	ms int64 // Unix milliseconds
	eq float64
}

type transferRecord struct {
	id     string
	ms     int64
	amount float64
}

// NewEquityHistory returns an empty history that can answer windows up to
// capacity (DefaultHistoryCapacity when capacity <= 0).
func NewEquityHistory(capacity time.Duration) *EquityHistory {
	return &EquityHistory{capacity: normCapacity(capacity)}
}

func normCapacity(c time.Duration) time.Duration {
	switch {
	case c <= 0:
		return DefaultHistoryCapacity
	case c > maxHistoryCapacity:
		return maxHistoryCapacity
	}
	return c
}

// pool returns the named pool's history, creating it when create is set
// (nil otherwise). The caller holds h.mu.
func (h *EquityHistory) pool(name string, create bool) *poolHistory {
	for _, p := range h.pools {
		if p.name == name {
			return p
		}
	}
	if !create {
		return nil
	}
	p := &poolHistory{name: name, floorMS: math.MinInt64}
	h.pools = append(h.pools, p)
	return p
}

// claimLegacy gives the history of a version-1 encoding (one pool, unnamed)
// to the pool it was recorded for: the only pool, or else the USDT or USD
// pool (the one the old single-pool metrics watched). Without either it is
// dropped: nothing else was recorded before pools.
func (h *EquityHistory) claimLegacy(balances []exchanges.Balance) {
	if len(balances) == 0 {
		return // no pools this time: nothing to judge by
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	at := slices.IndexFunc(h.pools, func(p *poolHistory) bool { return p.name == "" })
	if at < 0 {
		return
	}
	to := -1
	if len(balances) == 1 {
		to = 0
	} else {
		to = slices.IndexFunc(balances, func(b exchanges.Balance) bool { return b.Asset == "USDT" || b.Asset == "USD" })
	}
	switch {
	case to >= 0 && balances[to].Asset == "":
		// The only pool is unnamed: the legacy history is already its own.
	case to >= 0 && h.pool(balances[to].Asset, false) == nil:
		h.pools[at].name = balances[to].Asset
	default:
		h.pools = slices.Delete(h.pools, at, at+1)
	}
}

// Observe records pool's equity at t. Non-finite equities are ignored. An
// observation older than the pool's latest one is taken as made at the
// latest time (polls are sequential; a clock step back must not corrupt the
// order).
func (h *EquityHistory) Observe(pool string, t time.Time, equity float64) {
	if math.IsNaN(equity) || math.IsInf(equity, 0) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.capacity = normCapacity(h.capacity)
	p := h.pool(pool, true)
	ms := max(t.UnixMilli(), p.latest())
	eq := equity - p.offsetAt(ms)
	bucket := historyBucket.Milliseconds()
	if n := len(p.recent); n > 0 && floorDiv(p.recent[n-1].ms, bucket) == floorDiv(ms, bucket) {
		p.recent[n-1] = equityPoint{ms: ms, eq: max(p.recent[n-1].eq, eq)}
	} else {
		p.recent = append(p.recent, equityPoint{ms: ms, eq: eq})
	}
	grace := ms - transferGrace.Milliseconds()
	i := 0
	for ; i < len(p.recent) && p.recent[i].ms < grace; i++ {
		p.push(p.recent[i].ms, p.recent[i].eq)
	}
	if i > 0 {
		p.recent = append(p.recent[:0], p.recent[i:]...)
	}
	p.trim(ms, h.capacity)
	// A pool the account no longer has goes once nothing of it can matter.
	h.pools = slices.DeleteFunc(h.pools, func(q *poolHistory) bool {
		return q != p && q.name != "" && max(q.latest(), q.lastTransfer()) < ms-h.capacity.Milliseconds()
	})
}

// lastTransfer is the time of the newest transfer remembered (MinInt64: none).
func (p *poolHistory) lastTransfer() int64 {
	if n := len(p.transfers); n > 0 {
		return p.transfers[n-1].ms
	}
	return math.MinInt64
}

// latest is the time of the pool's newest observation (MinInt64: none).
func (p *poolHistory) latest() int64 {
	if n := len(p.recent); n > 0 {
		return p.recent[n-1].ms
	}
	if n := len(p.pts); n > 0 {
		return p.pts[n-1].ms
	}
	return math.MinInt64
}

// push appends net equity eq at ms, keeping the deque's order.
func (p *poolHistory) push(ms int64, eq float64) {
	for len(p.pts) > 0 && p.pts[len(p.pts)-1].eq <= eq {
		p.pts = p.pts[:len(p.pts)-1]
	}
	bucket := historyBucket.Milliseconds()
	if n := len(p.pts); n > 0 && floorDiv(p.pts[n-1].ms, bucket) == floorDiv(ms, bucket) {
		// The minute's peak is already higher: keep it, but as of now.
		p.pts[n-1].ms = max(p.pts[n-1].ms, ms)
		return
	}
	p.pts = append(p.pts, equityPoint{ms: ms, eq: eq})
}

// offsetAt is the sum of the transfers dated at or before ms: those dated
// later are remembered (they are the newest), so it is exact.
func (p *poolHistory) offsetAt(ms int64) float64 {
	off := p.offset
	for i := len(p.transfers) - 1; i >= 0 && p.transfers[i].ms > ms; i-- {
		off -= p.transfers[i].amount
	}
	return off
}

// trim drops the entries and transfer IDs too old to matter for any window
// ending at or after latest. Re-slicing from the front is cheap; append
// later copies only the live entries when it grows the array.
func (p *poolHistory) trim(latest int64, capacity time.Duration) {
	oldest := latest - capacity.Milliseconds()
	i := sort.Search(len(p.pts), func(i int) bool { return p.pts[i].ms >= oldest })
	if i > 0 {
		p.pts = p.pts[i:]
	}
	if i = sort.Search(len(p.recent), func(i int) bool { return p.recent[i].ms >= oldest }); i > 0 {
		// Only with a capacity shorter than transferGrace.
		p.recent = append(p.recent[:0], p.recent[i:]...)
	}
	// A transfer dated before every entry that can still be asked about
	// shifts all of them and the offset alike: applying it or not gives the
	// same drawdowns, so its ID need not be remembered.
	p.floorMS = max(p.floorMS, oldest)
	j := sort.Search(len(p.transfers), func(i int) bool { return p.transfers[i].ms >= p.floorMS })
	if j > 0 {
		p.transfers = p.transfers[j:]
	}
}

// Transfer applies one non-trading movement of tr.Pool's money, once per
// tr.ID: the pool's observations at or after tr.Time (a deposit: from
// depositSkew before it) are taken net of it and later ones will be. It returns whether it was applied. It is ignored (and
// false returned) when its ID is empty or already applied (a transfer cannot
// be told from one reported again without an ID), its amount is zero or not
// finite, or it is dated before anything the history still holds: such a
// transfer shifts every remembered equity and the peak alike and cannot
// change a drawdown.
func (h *EquityHistory) Transfer(tr exchanges.Transfer) bool {
	if tr.ID == "" || tr.Amount == 0 || math.IsNaN(tr.Amount) || math.IsInf(tr.Amount, 0) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.capacity = normCapacity(h.capacity)
	p := h.pool(tr.Pool, true)
	ms := tr.Time.UnixMilli()
	if tr.Amount > 0 {
		ms -= depositSkew.Milliseconds()
	}
	if ms < p.floorMS {
		return false
	}
	for i := range p.transfers {
		if p.transfers[i].id == tr.ID {
			return false
		}
	}
	// Remember it in time order (a late report may predate others).
	k := sort.Search(len(p.transfers), func(i int) bool { return p.transfers[i].ms > ms })
	p.transfers = append(p.transfers, transferRecord{})
	copy(p.transfers[k+1:], p.transfers[k:])
	p.transfers[k] = transferRecord{id: tr.ID, ms: ms, amount: tr.Amount}
	if n := len(p.transfers); n > maxTransfers {
		p.floorMS = max(p.floorMS, p.transfers[n-maxTransfers-1].ms+1)
		p.transfers = p.transfers[n-maxTransfers:]
	}
	p.offset += tr.Amount

	// Observations since it were recorded without it: take them net of it
	// too, and restore the deque's order (a withdrawal raises them).
	for j := range p.recent {
		if p.recent[j].ms >= ms {
			p.recent[j].eq -= tr.Amount
		}
	}
	i := sort.Search(len(p.pts), func(i int) bool { return p.pts[i].ms >= ms })
	if i == len(p.pts) {
		return true
	}
	for j := i; j < len(p.pts); j++ {
		p.pts[j].eq -= tr.Amount
	}
	if tr.Amount < 0 {
		pts := p.pts
		p.pts = p.pts[:0]
		for _, pt := range pts {
			for len(p.pts) > 0 && p.pts[len(p.pts)-1].eq <= pt.eq {
				p.pts = p.pts[:len(p.pts)-1]
			}
			p.pts = append(p.pts, pt)
		}
	}
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Drawdown returns pool's drawdown at now over window for its current
// equity: see drawdownAt, with the equity observed at now.
func (h *EquityHistory) Drawdown(pool string, now time.Time, window time.Duration, equity float64) (float64, bool) {
	return h.drawdownAt(pool, now, now, window, equity)
}

// drawdownAt returns (peak − equity) / peak × 100 for pool, where equity
// was observed at at and peak is the highest equity observed within
// [now−window, now], shifted by the transfers between it and at, and
// equity itself (so 0 when equity is the peak). False when that peak is not
// positive or equity is not finite. A window longer than the capacity is
// cut to the capacity.
func (h *EquityHistory) drawdownAt(pool string, at, now time.Time, window time.Duration, equity float64) (float64, bool) {
	if math.IsNaN(equity) || math.IsInf(equity, 0) {
		return 0, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	window = min(max(window, 0), normCapacity(h.capacity))
	off := 0.0
	net := equity
	peak := net
	if p := h.pool(pool, false); p != nil {
		off = p.offsetAt(at.UnixMilli())
		net = equity - off
		peak = net
		from := now.UnixMilli() - window.Milliseconds()
		i := sort.Search(len(p.pts), func(i int) bool { return p.pts[i].ms >= from })
		if i < len(p.pts) && p.pts[i].eq > peak {
			peak = p.pts[i].eq
		}
		for _, r := range p.recent {
			if r.ms >= from && r.eq > peak {
				peak = r.eq
			}
		}
	}
	shifted := peak + off
	if shifted <= 0 {
		return 0, false
	}
	return (peak - net) / shifted * 100, true
}

// len is the number of entries kept over all pools (for tests).
func (h *EquityHistory) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range h.pools {
		n += len(p.pts) + len(p.recent)
	}
	return n
}
