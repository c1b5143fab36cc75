package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// testPool is the pool the single-pool history tests observe.
const testPool = "USDT"

// pts returns the entries of h's pool (nil when it has none).
func pts(h *EquityHistory) []equityPoint {
	if p := h.pool(testPool, false); p != nil {
		return p.pts
	}
	return nil
}

type obs struct {
	at time.Duration // after t0
	eq float64
}

func observeAll(h *EquityHistory, o []obs) {
	for _, x := range o {
		h.Observe(testPool, t0.Add(x.at), x.eq)
	}
}

func TestEquityHistoryWindows(t *testing.T) {
	steps := []obs{{0, 100}, {time.Hour, 120}, {2 * time.Hour, 110}, {3 * time.Hour, 90}}
	tests := []struct {
		name     string
		capacity time.Duration
		obs      []obs
		now      time.Duration
		window   time.Duration
		equity   float64
		want     float64
		ok       bool
	}{
		{"24h: peak 120", 0, steps, 3 * time.Hour, 24 * time.Hour, 90, 25, true},           // (120−90)/120
		{"90m: peak 110", 0, steps, 3 * time.Hour, 90 * time.Minute, 90, 200.0 / 11, true}, // (110−90)/110
		{"30m: only now", 0, steps, 3 * time.Hour, 30 * time.Minute, 90, 0, true},
		{"zero window", 0, steps, 3 * time.Hour, 0, 90, 0, true},
		{"negative window", 0, steps, 3 * time.Hour, -time.Hour, 90, 0, true},
		{"equity is the peak", 0, steps, 3 * time.Hour, 24 * time.Hour, 130, 0, true},
		{"window starts on an entry", 0, steps, 3 * time.Hour, 2 * time.Hour, 90, 25, true}, // t0+1h included
		{"later now: 120 expired", 0, steps, 25*time.Hour + time.Second, 24 * time.Hour, 90, 200.0 / 11, true},
		{"capacity cuts window", 90 * time.Minute, steps, 3 * time.Hour, 24 * time.Hour, 90, 200.0 / 11, true},
		{"empty history", 0, nil, 0, 24 * time.Hour, 50, 0, true},
		{"negative equity, positive peak", 0, steps, 3 * time.Hour, 24 * time.Hour, -30, 125, true}, // (120+30)/120
		{"no positive peak", 0, []obs{{0, -5}}, 0, time.Hour, -10, 0, false},
		{"zero peak", 0, []obs{{0, 0}}, 0, time.Hour, 0, 0, false},
		{"NaN equity", 0, steps, 3 * time.Hour, time.Hour, math.NaN(), 0, false},
		{"NaN observation ignored", 0, []obs{{0, math.NaN()}, {time.Minute, 80}}, time.Minute, time.Hour, 60, 25, true},
		// Observations in one minute share an entry stamped with the latest:
		// 100 at :00 and 99 at :50 keep 100 until :50 leaves the window.
		{"bucket keeps peak to latest", 0, []obs{{0, 100}, {50 * time.Second, 99}}, time.Hour + 50*time.Second, time.Hour, 90, 10, true},
		{"bucket peak expires", 0, []obs{{0, 100}, {50 * time.Second, 99}}, time.Hour + 51*time.Second, time.Hour, 90, 0, true},
		// A clock step back: the 200 counts as observed at 1h.
		{"out of order", 0, []obs{{time.Hour, 100}, {0, 200}}, time.Hour + 30*time.Minute, time.Hour, 150, 25, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewEquityHistory(tt.capacity)
			observeAll(h, tt.obs)
			got, ok := h.Drawdown(testPool, t0.Add(tt.now), tt.window, tt.equity)
			if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Drawdown = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEquityHistoryZeroValue(t *testing.T) {
	var h EquityHistory
	h.Observe(testPool, t0, 200)
	if dd, ok := h.Drawdown(testPool, t0.Add(time.Hour), 24*time.Hour, 150); !ok || dd != 25 {
		t.Errorf("zero value Drawdown = %v, %v; want 25, true", dd, ok)
	}
}

// Months of 15-second polls with equity falling every time (the worst case:
// nothing is ever evicted by a higher value) stay within one entry per minute
// of capacity.
func TestEquityHistoryBounded(t *testing.T) {
	capacity := 24 * time.Hour
	h := NewEquityHistory(capacity)
	for i := range 3 * 24 * 60 * 4 { // three days
		h.Observe(testPool, t0.Add(time.Duration(i)*15*time.Second), 1e6-float64(i))
	}
	if n, limit := h.len(), int(capacity/time.Minute)+1; n > limit {
		t.Errorf("len = %d, want <= %d", n, limit)
	}
	// The peak of the last 24h is the value from 24h ago (falling equity);
	// bucketing may keep up to a minute more.
	last := t0.Add(time.Duration(3*24*60*4-1) * 15 * time.Second)
	eq := 1e6 - float64(3*24*60*4-1)
	dd, ok := h.Drawdown(testPool, last, capacity, eq)
	lo, hi := 24*60*4/(eq+24*60*4)*100, (24*60*4+4)/(eq+24*60*4+4)*100
	if !ok || dd < lo-1e-9 || dd > hi+1e-9 {
		t.Errorf("Drawdown = %v, %v; want within [%v, %v]", dd, ok, lo, hi)
	}
}

func TestEquityHistoryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		obs  []obs
	}{
		{"empty", nil},
		{"one", []obs{{0, 42}}},
		{"several", []obs{{0, 100}, {time.Hour, 120}, {2 * time.Hour, 110}, {3 * time.Hour, -5}}},
		{"before 1970", []obs{{-time.Duration(math.MaxInt64), 7}, {-time.Duration(math.MaxInt64) + time.Hour, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewEquityHistory(48 * time.Hour)
			observeAll(h, tt.obs)
			data, err := h.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back EquityHistory // zero: takes the stored capacity
			if err := back.UnmarshalBinary(data); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if back.capacity != 48*time.Hour {
				t.Errorf("capacity = %v, want 48h", back.capacity)
			}
			if len(pts(&back)) != len(pts(h)) {
				t.Fatalf("entries = %v, want %v", pts(&back), pts(h))
			}
			for i := range pts(h) {
				if pts(&back)[i] != pts(h)[i] {
					t.Errorf("entry %d = %v, want %v", i, pts(&back)[i], pts(h)[i])
				}
			}
			again, _ := back.MarshalBinary()
			if !bytes.Equal(again, data) {
				t.Error("re-encoding differs")
			}
		})
	}
}

// A daemon that restarts mid-way answers exactly like one that never stopped.
func TestEquityHistoryRestart(t *testing.T) {
	before := []obs{{0, 100}, {10 * time.Minute, 130}, {2 * time.Hour, 125}, {3 * time.Hour, 110}}
	after := []obs{{4 * time.Hour, 105}, {5 * time.Hour, 128}, {6 * time.Hour, 90}}

	steady := NewEquityHistory(0)
	observeAll(steady, before)
	data, err := steady.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restarted := NewEquityHistory(0)
	if err := restarted.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	observeAll(steady, after)
	observeAll(restarted, after)

	now := t0.Add(6 * time.Hour)
	for _, w := range []time.Duration{time.Hour, 90 * time.Minute, 5 * time.Hour, 24 * time.Hour} {
		a, aok := steady.Drawdown(testPool, now, w, 90)
		b, bok := restarted.Drawdown(testPool, now, w, 90)
		if a != b || aok != bok {
			t.Errorf("window %v: restarted %v, %v; steady %v, %v", w, b, bok, a, aok)
		}
	}
	// Hand-computed: 24h peak 130 → (130−90)/130; 90m peak 128 → (128−90)/128.
	if dd, _ := restarted.Drawdown(testPool, now, 24*time.Hour, 90); math.Abs(dd-4000.0/130) > 1e-9 {
		t.Errorf("24h drawdown = %v, want %v", dd, 4000.0/130)
	}
	if dd, _ := restarted.Drawdown(testPool, now, 90*time.Minute, 90); math.Abs(dd-3800.0/128) > 1e-9 {
		t.Errorf("90m drawdown = %v, want %v", dd, 3800.0/128)
	}
}

// The configured capacity wins over the stored one, and entries beyond it go.
func TestEquityHistoryUnmarshalKeepsCapacity(t *testing.T) {
	big := NewEquityHistory(48 * time.Hour)
	observeAll(big, []obs{{0, 200}, {30 * time.Hour, 100}})
	data, _ := big.MarshalBinary()
	small := NewEquityHistory(24 * time.Hour)
	if err := small.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if small.capacity != 24*time.Hour || small.len() != 1 {
		t.Errorf("capacity %v, %d entries; want 24h, 1", small.capacity, small.len())
	}
}

func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE(body))
}

func TestEquityHistoryUnmarshalCorrupt(t *testing.T) {
	good := NewEquityHistory(0)
	observeAll(good, []obs{{0, 100}, {time.Hour, 90}})
	valid, _ := good.MarshalBinary()
	body := valid[:len(valid)-4]

	flipped := bytes.Clone(valid)
	flipped[3] ^= 0x10

	eq := func(v float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)) }
	entries := func(parts ...[]byte) []byte { // version 1, capacity 1h, then parts
		b := []byte{1}
		b = binary.AppendUvarint(b, 3600)
		for _, p := range parts {
			b = append(b, p...)
		}
		return withCRC(b)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", []byte{1, 2, 3}},
		{"bit flip", flipped},
		{"truncated", valid[:len(valid)-1]},
		{"version 3", withCRC(append([]byte{3}, body[1:]...))},
		{"trailing bytes", withCRC(append(bytes.Clone(body), 0))},
		{"zero capacity", withCRC([]byte{1, 0, 0})},
		{"huge count", entries(binary.AppendUvarint(nil, 1<<40))},
		{"count beyond data", entries([]byte{2}, binary.AppendVarint(nil, 5), eq(10))},
		{"equal times", entries([]byte{2}, binary.AppendVarint(nil, 5), eq(10), []byte{0}, eq(9))},
		{"equities rising", entries([]byte{2}, binary.AppendVarint(nil, 5), eq(10), []byte{1}, eq(11))},
		{"NaN equity", entries([]byte{1}, binary.AppendVarint(nil, 5), eq(math.NaN()))},
		{"time overflow", entries([]byte{2}, binary.AppendVarint(nil, math.MaxInt64-1), eq(10), []byte{5}, eq(9))},
		{"bad varint", entries([]byte{1}, bytes.Repeat([]byte{0xff}, 11), eq(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewEquityHistory(0)
			observeAll(h, []obs{{0, 7}})
			err := h.UnmarshalBinary(tt.data)
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("err = %v, want corrupt", err)
			}
			if h.len() != 1 {
				t.Error("failed UnmarshalBinary changed the history")
			}
		})
	}
	// The hand-built encoder above agrees with MarshalBinary on valid input.
	if err := NewEquityHistory(0).UnmarshalBinary(entries([]byte{2}, binary.AppendVarint(nil, 5), eq(10), []byte{1}, eq(9))); err != nil {
		t.Errorf("valid hand-built input: %v", err)
	}
}

func FuzzEquityHistoryUnmarshal(f *testing.F) {
	h := NewEquityHistory(0)
	observeAll(h, []obs{{0, 100}, {time.Hour, 120}, {2 * time.Hour, 110}})
	seed, _ := h.MarshalBinary()
	f.Add(seed)
	f.Add([]byte{})
	f.Add(withCRC([]byte{1, 1, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h EquityHistory
		if err := h.UnmarshalBinary(data); err != nil {
			return
		}
		for _, p := range h.pools {
			for i := 1; i < len(p.pts); i++ {
				if p.pts[i].ms <= p.pts[i-1].ms || p.pts[i].eq >= p.pts[i-1].eq {
					t.Fatalf("decoded entries break the deque invariant: %v", p.pts)
				}
			}
		}
		out, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again EquityHistory
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("re-decoding own output: %v", err)
		}
		h.Observe(testPool, t0, 1)
		h.Transfer(exchanges.Transfer{ID: "x", Pool: testPool, Amount: -1, Time: t0})
		h.Drawdown(testPool, t0, time.Hour, 1)
	})
}
