package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// History encodings: version 1 held one pool (before margin pools) and is
// still read; MarshalBinary writes version 2.
const (
	historyVersion1 = 1
	historyVersion  = 2
)

// maxNameLen bounds a decoded pool name or transfer ID.
const maxNameLen = 256

// MarshalBinary encodes the history (encoding.BinaryMarshaler). Format,
// version 2, all integers varints, floats 8 bytes IEEE 754 little endian:
//
//	version byte (2)
//	uvarint capacity in seconds
//	uvarint number of pools, then per pool:
//	    uvarint length + the pool's name
//	    float offset (the sum of its applied transfers)
//	    varint floor in Unix milliseconds (transfers dated before are ignored)
//	    uvarint n, then n × (time, net equity): the first time as a varint of
//	        Unix milliseconds, each later one as a uvarint delta (> 0); net
//	        equities strictly decreasing (the deque)
//	    the same for the recent observations (not yet in the deque), whose
//	        net equities may be in any order
//	    uvarint m, then m × (uvarint length + ID, varint Unix milliseconds,
//	        float amount): the remembered transfers, oldest first
//	4 bytes CRC-32 (IEEE) of everything before, little endian
//
// Version 1 is version 2's capacity and one pool's n entries, without name,
// offset, floor or transfers.
func (h *EquityHistory) MarshalBinary() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	size := 1 + 2*binary.MaxVarintLen64 + 4
	for _, p := range h.pools {
		size += 5*binary.MaxVarintLen64 + len(p.name) + 8 + (len(p.pts)+len(p.recent))*(binary.MaxVarintLen64+8)
		for _, t := range p.transfers {
			size += 2*binary.MaxVarintLen64 + len(t.id) + 8
		}
	}
	buf := make([]byte, 0, size)
	buf = append(buf, historyVersion)
	buf = binary.AppendUvarint(buf, uint64(normCapacity(h.capacity)/time.Second))
	buf = binary.AppendUvarint(buf, uint64(len(h.pools)))
	for _, p := range h.pools {
		buf = binary.AppendUvarint(buf, uint64(len(p.name)))
		buf = append(buf, p.name...)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(p.offset))
		buf = binary.AppendVarint(buf, p.floorMS)
		buf = appendPoints(buf, p.pts)
		buf = appendPoints(buf, p.recent)
		buf = binary.AppendUvarint(buf, uint64(len(p.transfers)))
		for _, t := range p.transfers {
			buf = binary.AppendUvarint(buf, uint64(len(t.id)))
			buf = append(buf, t.id...)
			buf = binary.AppendVarint(buf, t.ms)
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(t.amount))
		}
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf)), nil
}

func appendPoints(buf []byte, pts []equityPoint) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(pts)))
	for i, p := range pts {
		if i == 0 {
			buf = binary.AppendVarint(buf, p.ms)
		} else {
			buf = binary.AppendUvarint(buf, uint64(p.ms-pts[i-1].ms))
		}
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(p.eq))
	}
	return buf
}

// errCorrupt is wrapped by every UnmarshalBinary error about the data itself.
var errCorrupt = errors.New("corrupt equity history")

// UnmarshalBinary replaces the history with one encoded by MarshalBinary
// (encoding.BinaryUnmarshaler), of this version or version 1, whose single
// pool goes to the account's only pool, or its USDT or USD pool, at the
// next Compute. The receiver keeps its own capacity when it has one (the
// configured window wins over the stored one) and takes the stored capacity
// otherwise. Corrupt input — bad checksum, unknown version, truncated, times
// out of order, equities not strictly decreasing or not finite, a pool named
// twice, transfers out of order, trailing bytes — returns an error and
// leaves the history unchanged.
func (h *EquityHistory) UnmarshalBinary(data []byte) error {
	capacity, pools, err := decodeHistory(data)
	if err != nil {
		return fmt.Errorf("decode equity history: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.capacity <= 0 {
		h.capacity = capacity
	}
	h.capacity = normCapacity(h.capacity)
	h.pools = pools
	for _, p := range pools {
		latest := max(p.floorMS, p.latest())
		if n := len(p.transfers); n > 0 && latest == math.MinInt64 {
			latest = p.transfers[n-1].ms
		}
		if latest != math.MinInt64 {
			p.trim(latest, h.capacity)
		}
	}
	return nil
}

// reader decodes one history encoding; the first error sticks.
type reader struct {
	r   []byte
	err error
}

func (d *reader) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errCorrupt}, a...)...)
	}
}

func (d *reader) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.r)
	if k <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.r = d.r[k:]
	return v
}

func (d *reader) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.r)
	if k <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.r = d.r[k:]
	return v
}

func (d *reader) float(what string) float64 {
	if d.err != nil {
		return 0
	}
	if len(d.r) < 8 {
		d.fail("%s: truncated", what)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.r))
	d.r = d.r[8:]
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.fail("%s: not finite", what)
		return 0
	}
	return v
}

func (d *reader) str(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > maxNameLen || n > uint64(len(d.r)) {
		d.fail("bad %s", what)
		return ""
	}
	s := string(d.r[:n])
	d.r = d.r[n:]
	return s
}

// count reads a count of items of at least min bytes each, refusing counts
// the input cannot hold before anything is allocated for them.
func (d *reader) count(what string, min int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(len(d.r)/min) {
		d.fail("bad %s", what)
		return 0
	}
	return int(n)
}

// points reads a list of entries, times strictly ascending; decreasing
// requires the equities to be strictly decreasing too (the deque).
func (d *reader) points(decreasing bool) []equityPoint {
	n := d.count("entry count", 9)
	pts := make([]equityPoint, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var ms int64
		if i == 0 {
			ms = d.varint(fmt.Sprintf("entry %d: time", i))
		} else {
			dt := d.uvarint(fmt.Sprintf("entry %d: time", i))
			prev := pts[len(pts)-1].ms
			// dt > 0, so the sum wrapped around exactly when it is not above prev.
			if d.err == nil && (dt == 0 || dt > math.MaxInt64 || prev+int64(dt) <= prev) {
				d.fail("entry %d: bad time", i)
			}
			ms = prev + int64(dt)
		}
		eq := d.float(fmt.Sprintf("entry %d", i))
		if d.err == nil && decreasing && len(pts) > 0 && eq >= pts[len(pts)-1].eq {
			d.fail("entry %d: equities not strictly decreasing", i)
		}
		pts = append(pts, equityPoint{ms: ms, eq: eq})
	}
	return pts
}

func decodeHistory(data []byte) (time.Duration, []*poolHistory, error) {
	if len(data) < 1+4 {
		return 0, nil, fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	version := body[0]
	if version != historyVersion1 && version != historyVersion {
		return 0, nil, fmt.Errorf("%w: unknown version %d", errCorrupt, version)
	}
	d := &reader{r: body[1:]}
	capSec := d.uvarint("capacity")
	if d.err == nil && (capSec == 0 || capSec > uint64(maxHistoryCapacity/time.Second)) {
		d.fail("bad capacity")
	}
	var pools []*poolHistory
	if version == historyVersion1 {
		pts := d.points(true)
		pools = []*poolHistory{{pts: pts, floorMS: math.MinInt64}}
	} else {
		n := d.count("pool count", 1+8+1+1+1+1)
		for i := 0; i < n && d.err == nil; i++ {
			p := &poolHistory{name: d.str("pool name")}
			for _, q := range pools {
				if d.err == nil && q.name == p.name {
					d.fail("pool %q twice", p.name)
				}
			}
			p.offset = d.float("pool offset")
			p.floorMS = d.varint("pool floor")
			p.pts = d.points(true)
			p.recent = d.points(false)
			if d.err == nil && len(p.pts) > 0 && len(p.recent) > 0 && p.recent[0].ms <= p.pts[len(p.pts)-1].ms {
				d.fail("pool %q: recent entries before the deque's", p.name)
			}
			m := d.count("transfer count", 1+1+8)
			p.transfers = make([]transferRecord, 0, m)
			for j := 0; j < m && d.err == nil; j++ {
				t := transferRecord{id: d.str("transfer id"), ms: d.varint("transfer time"), amount: d.float("transfer amount")}
				if d.err == nil && (t.id == "" || len(p.transfers) > 0 && t.ms < p.transfers[len(p.transfers)-1].ms) {
					d.fail("transfer %d: empty ID or out of order", j)
				}
				p.transfers = append(p.transfers, t)
			}
			pools = append(pools, p)
		}
	}
	if d.err == nil && len(d.r) != 0 {
		d.fail("%d trailing bytes", len(d.r))
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	return time.Duration(capSec) * time.Second, pools, nil
}
