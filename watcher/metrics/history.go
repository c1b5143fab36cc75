package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"sync"
	"time"
)

// DefaultHistoryCapacity is the capacity of a zero EquityHistory: enough for
// a weekly drawdown window.
const DefaultHistoryCapacity = 7 * 24 * time.Hour

// maxHistoryCapacity bounds a decoded capacity so that corrupt input cannot
// ask for an absurd window.
const maxHistoryCapacity = 400 * 24 * time.Hour

// historyBucket is the resolution of EquityHistory: at most one peak is kept
// per minute, which bounds memory at capacity/1min entries.
const historyBucket = time.Minute

// historyVersion is the first byte of MarshalBinary's output.
const historyVersion = 1

// EquityHistory remembers enough of an account's equity to answer "what was
// the peak within the last W" for any window W up to its capacity. It is
// persisted with MarshalBinary/UnmarshalBinary so drawdown survives restarts.
// It is safe for concurrent use; the zero value is ready with
// DefaultHistoryCapacity.
//
// It is a monotonic deque: times ascending, equities strictly decreasing.
// An observation evicts every older entry it equals or beats (those can never
// again be the peak of a window that ends later), so the first entry at or
// after now−W is the peak of [now−W, now]. Observations in one minute share
// one entry holding the minute's peak, stamped with the time of its latest
// observation: a peak may thus outlive its window by less than a minute,
// which errs towards reporting a drawdown rather than missing one.
type EquityHistory struct {
	mu       sync.Mutex
	capacity time.Duration
	pts      []equityPoint
}

type equityPoint struct {
	ms int64 // Unix milliseconds
	eq float64
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

// Observe records the equity at t. Non-finite equities are ignored. An
// observation older than the latest one is taken as made at the latest time
// (polls are sequential; a clock step back must not corrupt the order).
func (h *EquityHistory) Observe(t time.Time, equity float64) {
	if math.IsNaN(equity) || math.IsInf(equity, 0) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.capacity = normCapacity(h.capacity)

	ms := t.UnixMilli()
	if n := len(h.pts); n > 0 && ms < h.pts[n-1].ms {
		ms = h.pts[n-1].ms
	}
	for len(h.pts) > 0 && h.pts[len(h.pts)-1].eq <= equity {
		h.pts = h.pts[:len(h.pts)-1]
	}
	bucket := historyBucket.Milliseconds()
	if n := len(h.pts); n > 0 && floorDiv(h.pts[n-1].ms, bucket) == floorDiv(ms, bucket) {
		// The minute's peak is already higher: keep it, but as of now.
		h.pts[n-1].ms = ms
	} else {
		h.pts = append(h.pts, equityPoint{ms: ms, eq: equity})
	}
	h.trim(ms)
}

// trim drops the entries too old to matter for any window ending at or after
// latest. Re-slicing from the front is cheap; append later copies only the
// live entries when it grows the array.
func (h *EquityHistory) trim(latest int64) {
	oldest := latest - h.capacity.Milliseconds()
	i := sort.Search(len(h.pts), func(i int) bool { return h.pts[i].ms >= oldest })
	if i > 0 {
		h.pts = h.pts[i:]
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Drawdown returns (peak − equity) / peak × 100 with the peak the highest
// equity observed within [now−window, now] and equity itself (so 0 when
// equity is the peak), and false when that peak is not positive or equity is
// not finite. A window longer than the capacity is cut to the capacity.
func (h *EquityHistory) Drawdown(now time.Time, window time.Duration, equity float64) (float64, bool) {
	if math.IsNaN(equity) || math.IsInf(equity, 0) {
		return 0, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	window = min(max(window, 0), normCapacity(h.capacity))
	from := now.UnixMilli() - window.Milliseconds()
	peak := equity
	i := sort.Search(len(h.pts), func(i int) bool { return h.pts[i].ms >= from })
	if i < len(h.pts) && h.pts[i].eq > peak {
		peak = h.pts[i].eq
	}
	if peak <= 0 {
		return 0, false
	}
	return (peak - equity) / peak * 100, true
}

// len is the number of entries kept (for tests).
func (h *EquityHistory) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pts)
}

// MarshalBinary encodes the history (encoding.BinaryMarshaler). Format,
// version 1, all integers varints:
//
//	version byte (1)
//	uvarint capacity in seconds
//	uvarint n, the number of entries
//	n × (time, equity): the first time as a varint of Unix milliseconds, each
//	    later one as a uvarint delta (> 0); equity as 8 bytes IEEE 754, little endian
//	4 bytes CRC-32 (IEEE) of everything before, little endian
func (h *EquityHistory) MarshalBinary() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	buf := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(h.pts)*(binary.MaxVarintLen64+8)+4)
	buf = append(buf, historyVersion)
	buf = binary.AppendUvarint(buf, uint64(normCapacity(h.capacity)/time.Second))
	buf = binary.AppendUvarint(buf, uint64(len(h.pts)))
	for i, p := range h.pts {
		if i == 0 {
			buf = binary.AppendVarint(buf, p.ms)
		} else {
			buf = binary.AppendUvarint(buf, uint64(p.ms-h.pts[i-1].ms))
		}
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(p.eq))
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf)), nil
}

// errCorrupt is wrapped by every UnmarshalBinary error about the data itself.
var errCorrupt = errors.New("corrupt equity history")

// UnmarshalBinary replaces the history with one encoded by MarshalBinary
// (encoding.BinaryUnmarshaler). The receiver keeps its own capacity when it
// has one (the configured window wins over the stored one) and takes the
// stored capacity otherwise. Corrupt input — bad checksum, unknown version,
// truncated, times out of order, equities not strictly decreasing or not
// finite, trailing bytes — returns an error and leaves the history unchanged.
func (h *EquityHistory) UnmarshalBinary(data []byte) error {
	capacity, pts, err := decodeHistory(data)
	if err != nil {
		return fmt.Errorf("decode equity history: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.capacity <= 0 {
		h.capacity = capacity
	}
	h.capacity = normCapacity(h.capacity)
	h.pts = pts
	if len(pts) > 0 {
		h.trim(pts[len(pts)-1].ms)
	}
	return nil
}

func decodeHistory(data []byte) (time.Duration, []equityPoint, error) {
	if len(data) < 1+4 {
		return 0, nil, fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if body[0] != historyVersion {
		return 0, nil, fmt.Errorf("%w: unknown version %d", errCorrupt, body[0])
	}
	r := body[1:]
	capSec, k := binary.Uvarint(r)
	if k <= 0 || capSec == 0 || capSec > uint64(maxHistoryCapacity/time.Second) {
		return 0, nil, fmt.Errorf("%w: bad capacity", errCorrupt)
	}
	r = r[k:]
	n, k := binary.Uvarint(r)
	// Every entry takes at least 9 bytes: refuse counts the input cannot hold
	// before allocating for them.
	if k <= 0 || n > uint64(len(r)-k)/9 {
		return 0, nil, fmt.Errorf("%w: bad entry count", errCorrupt)
	}
	r = r[k:]
	pts := make([]equityPoint, 0, n)
	for i := uint64(0); i < n; i++ {
		var ms int64
		if i == 0 {
			v, k := binary.Varint(r)
			if k <= 0 {
				return 0, nil, fmt.Errorf("%w: entry %d: bad time", errCorrupt, i)
			}
			ms, r = v, r[k:]
		} else {
			d, k := binary.Uvarint(r)
			prev := pts[len(pts)-1].ms
			// d > 0, so the sum wrapped around exactly when it is not above prev.
			if k <= 0 || d == 0 || d > math.MaxInt64 || prev+int64(d) <= prev {
				return 0, nil, fmt.Errorf("%w: entry %d: bad time", errCorrupt, i)
			}
			ms, r = prev+int64(d), r[k:]
		}
		if len(r) < 8 {
			return 0, nil, fmt.Errorf("%w: entry %d: truncated", errCorrupt, i)
		}
		eq := math.Float64frombits(binary.LittleEndian.Uint64(r))
		r = r[8:]
		if math.IsNaN(eq) || math.IsInf(eq, 0) || (len(pts) > 0 && eq >= pts[len(pts)-1].eq) {
			return 0, nil, fmt.Errorf("%w: entry %d: equities not strictly decreasing", errCorrupt, i)
		}
		pts = append(pts, equityPoint{ms: ms, eq: eq})
	}
	if len(r) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r))
	}
	return time.Duration(capSec) * time.Second, pts, nil
}
