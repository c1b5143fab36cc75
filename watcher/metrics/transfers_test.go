package metrics

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// step is one event of a transfer scenario: an observation of the pool's
// equity, or (id set) a transfer.
type step struct {
	at     time.Duration
	eq     float64
	id     string
	amount float64
	dated  time.Duration // the transfer's own time (when it happened)
}

func run(h *EquityHistory, steps []step) {
	for _, s := range steps {
		if s.id != "" {
			h.Transfer(exchanges.Transfer{ID: s.id, Pool: testPool, Amount: s.amount, Time: t0.Add(s.dated)})
			continue
		}
		h.Observe(testPool, t0.Add(s.at), s.eq)
	}
}

// TestEquityHistoryTransfers: deposits, withdrawals and transfers shift the
// peak, so drawdown measures trading losses only, however the transfer is
// reported.
func TestEquityHistoryTransfers(t *testing.T) {
	m := time.Minute
	tests := []struct {
		name  string
		steps []step
		now   time.Duration
		eq    float64
		want  float64
	}{
		{"withdrawal of 10%: no drawdown", []step{{at: 0, eq: 10000}, {id: "w", amount: -1000, dated: m}, {at: 2 * m, eq: 9000}}, 2 * m, 9000, 0},
		// After it, a trading loss of 2.5% of what is left reads 2.5%.
		{"loss after a withdrawal", []step{{at: 0, eq: 10000}, {id: "w", amount: -1000, dated: m}, {at: 2 * m, eq: 9000}}, 3 * m, 8775, 2.5},
		{"deposit does not hide a loss", []step{{at: 0, eq: 10000}, {id: "d", amount: 5000, dated: m}, {at: 2 * m, eq: 14500}}, 2 * m, 14500, 100.0 / 30},
		{"without the transfer the withdrawal reads as a loss", []step{{at: 0, eq: 10000}, {at: 2 * m, eq: 9000}}, 2 * m, 9000, 10},
		// Reported only after the balances showed it: the observations since
		// its time are corrected.
		{"withdrawal reported late", []step{{at: 0, eq: 10000}, {at: 2 * m, eq: 9000}, {id: "w", amount: -1000, dated: m}}, 3 * m, 9000, 0},
		{"deposit reported late", []step{{at: 0, eq: 10000}, {at: 2 * m, eq: 14000}, {id: "d", amount: 5000, dated: m}}, 3 * m, 14000, 100.0 / 15},
		// Reported before the balances show it (dated after the
		// observation): that observation stays as it was.
		{"withdrawal reported early", []step{{at: 0, eq: 10000}, {id: "w", amount: -1000, dated: 30 * time.Second}, {at: 20 * time.Second, eq: 10000}, {at: 2 * m, eq: 9000}}, 2 * m, 9000, 0},
		// The snapshot is stamped before its balance request: a transfer
		// credited meanwhile is dated just after the snapshot showing it.
		{"deposit dated just after the snapshot showing it", []step{{at: 0, eq: 10000}, {at: 15 * time.Second, eq: 20000},
			{id: "d", amount: 10000, dated: 15*time.Second + 300*time.Millisecond}, {at: 30 * time.Second, eq: 20000}}, 30 * time.Second, 20000, 0},
		{"withdrawal dated just after the snapshot showing it", []step{{at: 0, eq: 20000}, {at: 15 * time.Second, eq: 10000},
			{id: "w", amount: -10000, dated: 15*time.Second + 300*time.Millisecond}, {at: 30 * time.Second, eq: 10000}}, 30 * time.Second, 10000, 0},
		// Just before a withdrawal, the balances may not show it yet: that
		// observation must not become a peak net of it.
		{"withdrawal just after a snapshot not showing it", []step{{at: 0, eq: 20000}, {at: 15 * time.Second, eq: 20000},
			{id: "w", amount: -10000, dated: 15*time.Second + 300*time.Millisecond}, {at: 30 * time.Second, eq: 10000}}, 30 * time.Second, 10000, 0},
		{"same ID twice is applied once", []step{{at: 0, eq: 10000}, {id: "w", amount: -1000, dated: m}, {id: "w", amount: -1000, dated: m}, {at: 2 * m, eq: 9000}}, 2 * m, 9000, 0},
		{"no ID: ignored", []step{{at: 0, eq: 10000}, {id: "", amount: -1000, dated: m}, {at: 2 * m, eq: 9000}}, 2 * m, 9000, 10},
		{"withdrawing everything", []step{{at: 0, eq: 10000}, {id: "w", amount: -10000, dated: m}, {at: 2 * m, eq: 0}}, 2 * m, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewEquityHistory(0)
			run(h, tt.steps)
			h.Observe(testPool, t0.Add(tt.now), tt.eq)
			got, ok := h.Drawdown(testPool, t0.Add(tt.now), 24*time.Hour, tt.eq)
			if tt.name == "withdrawing everything" {
				if ok {
					t.Errorf("Drawdown = %v, true; want no peak left", got)
				}
				return
			}
			if !ok || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Drawdown = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

// TestTransferIDsSurviveRestart: a transfer the exchange reports again after
// a restart is not applied a second time; transfers older than anything the
// history holds are ignored.
func TestTransferIDsSurviveRestart(t *testing.T) {
	h := NewEquityHistory(0)
	run(h, []step{{at: 0, eq: 10000}, {id: "w1", amount: -1000, dated: time.Minute}, {at: 2 * time.Minute, eq: 9000}})
	data, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := NewEquityHistory(0)
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if back.Transfer(exchanges.Transfer{ID: "w1", Pool: testPool, Amount: -1000, Time: t0.Add(time.Minute)}) {
		t.Error("a transfer reported again after the restart was applied")
	}
	if !back.Transfer(exchanges.Transfer{ID: "w2", Pool: testPool, Amount: -900, Time: t0.Add(3 * time.Minute)}) {
		t.Error("a new transfer was not applied")
	}
	back.Observe(testPool, t0.Add(4*time.Minute), 8100)
	if dd, ok := back.Drawdown(testPool, t0.Add(4*time.Minute), 24*time.Hour, 8100); !ok || math.Abs(dd) > 1e-9 {
		t.Errorf("after two withdrawals Drawdown = %v, %v; want 0", dd, ok)
	}
	// Eight days on, the first transfer predates the week the history keeps.
	back.Observe(testPool, t0.Add(8*24*time.Hour), 8100)
	if back.Transfer(exchanges.Transfer{ID: "old", Pool: testPool, Amount: 50, Time: t0}) {
		t.Error("a transfer older than the history was applied")
	}
	if p := back.pool(testPool, false); len(p.transfers) != 0 {
		t.Errorf("remembers %d transfers older than its capacity", len(p.transfers))
	}
}

// TestLegacyHistory: a version-1 blob (before margin pools) becomes the
// history of the account's pool.
func TestLegacyHistory(t *testing.T) {
	v1 := func() []byte { // capacity 1 week, one entry: 12,500 at t0
		b := []byte{1}
		b = binary.AppendUvarint(b, uint64(DefaultHistoryCapacity/time.Second))
		b = binary.AppendUvarint(b, 1)
		b = binary.AppendVarint(b, t0.UnixMilli())
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(12500))
		return withCRC(b)
	}()
	tests := []struct {
		name     string
		balances []exchanges.Balance
		pool     string // where the 12,500 peak goes; "" none
	}{
		{"single USDT pool", []exchanges.Balance{{Asset: "USDT", MarginBalance: 10000}}, "USDT"},
		{"single-coin COIN-M", []exchanges.Balance{{Asset: "BTC", MarginBalance: 10000}}, "BTC"},
		{"USDT among several", []exchanges.Balance{{Asset: "USDC", MarginBalance: 10000}, {Asset: "USDT", MarginBalance: 10000}}, "USDT"},
		{"no USDT among several", []exchanges.Balance{{Asset: "BTC", MarginBalance: 10000}, {Asset: "ETH", MarginBalance: 10000}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewEquityHistory(0)
			if err := h.UnmarshalBinary(v1); err != nil {
				t.Fatalf("version 1 unreadable: %v", err)
			}
			now := t0.Add(time.Hour)
			a := Compute("a", "x", nil, &exchanges.Snapshot{Time: now, Balances: tt.balances}, h, now)
			for _, b := range tt.balances {
				dd, _ := a.Drawdown(b.Asset, now, 24*time.Hour)
				if len(tt.balances) == 1 {
					dd, _ = a.Drawdown("", now, 24*time.Hour)
				}
				want := 0.0
				if b.Asset == tt.pool {
					want = 20 // (12,500 − 10,000) / 12,500
				}
				if math.Abs(dd-want) > 1e-9 {
					t.Errorf("%s drawdown = %v, want %v", b.Asset, dd, want)
				}
			}
			if h.pool("", false) != nil {
				t.Error("the unnamed legacy pool is still there")
			}
		})
	}
}

// TestGonePoolForgotten: the history of a pool the account no longer has is
// dropped once it is older than the capacity, so the persisted blob does not
// grow with every pool the account ever had.
func TestGonePoolForgotten(t *testing.T) {
	h := NewEquityHistory(24 * time.Hour)
	h.Observe("USDC", t0, 100)
	h.Observe("USDT", t0.Add(time.Hour), 100)
	if h.pool("USDC", false) == nil {
		t.Fatal("USDC dropped while recent")
	}
	h.Observe("USDT", t0.Add(25*time.Hour), 100)
	if h.pool("USDC", false) != nil {
		t.Error("USDC still kept a day after its last observation")
	}
}
