package store

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

var t0 = time.Date(2026, 11, 28, 14, 3, 42, 0, time.UTC)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func state(account, rule, symbol, side string, sev notifiers.Severity, v float64) rules.State {
	return rules.State{
		Key:       rules.Key{Account: account, Rule: rule, Symbol: symbol, Side: side},
		Phase:     rules.Active,
		ID:        account + rule + symbol + side,
		Severity:  sev,
		Since:     t0,
		StartsAt:  t0.Add(time.Minute),
		LastSent:  t0.Add(2 * time.Minute),
		Value:     v,
		Threshold: 7,
	}
}

func entry(notifier string, rule string, v float64) Entry {
	return Entry{
		Notifier:    notifier,
		Created:     t0,
		NextAttempt: t0,
		Alerts: []notifiers.Alert{{
			ID: "id-" + rule, Status: notifiers.Firing, Kind: notifiers.KindFiring,
			Severity: notifiers.Critical, Rule: rule, Account: "main", Symbol: "BTCUSDT",
			Side: "long", Metric: "liq_distance_pct", Value: v, Threshold: 7, Op: "below",
			StartsAt: t0, At: t0, Summary: "near", Labels: map[string]string{"desk": "alpha"},
			Context: map[string]float64{"mark_price": 100},
		}},
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	s, dir := openTemp(t)
	if want := filepath.Join(dir, FileName); s.Path() != want {
		t.Errorf("Path() = %q, want %q", s.Path(), want)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.Path(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask can only remove bits, so "no group/other bits" is the
		// property that matters.
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s mode = %v, want at most %v", path, got, want)
		}
	}
}

func TestAlertStatesRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	// The first two keys collide under naive NUL-joined concatenation.
	a := state("a", "b\x00c", "", "", notifiers.Warning, 12.5)
	b := state("a\x00b", "c", "", "", notifiers.Critical, 3)
	c := state("main", "liquidation-near", "BTCUSDT", "long", notifiers.Critical, 6.21)
	d := state("main", "liquidation-near", "BTCUSDT", "short", notifiers.Info, 20)
	if err := s.Commit(&Batch{Put: []rules.State{d, c, b, a}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AlertStates()
	if err != nil {
		t.Fatal(err)
	}
	// Ordered by length-prefixed account first: "a" (len 1) < "a\x00b" (len 3) < "main".
	if want := []rules.State{a, b, c, d}; !reflect.DeepEqual(got, want) {
		t.Fatalf("AlertStates = %+v\nwant %+v", got, want)
	}

	c.Severity, c.Value = notifiers.Warning, 10
	if err := s.Commit(&Batch{Put: []rules.State{c}, Delete: []rules.Key{a.Key, d.Key, {Account: "nope", Rule: "x"}}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.AlertStates()
	if err != nil {
		t.Fatal(err)
	}
	if want := []rules.State{b, c}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after update AlertStates = %+v\nwant %+v", got, want)
	}
}

func TestAccountRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	if _, ok, err := s.Account("main"); ok || err != nil {
		t.Fatalf("Account on empty store = ok %v, err %v; want false, nil", ok, err)
	}
	want := AccountState{LastSuccess: t0, History: []byte{0, 1, 2, 0xff}}
	if err := s.Commit(&Batch{Accounts: map[string]AccountState{"main": want, "alt": {LastSuccess: t0.Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Account("main")
	if err != nil || !ok {
		t.Fatalf("Account: ok %v, err %v", ok, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Account = %+v, want %+v", got, want)
	}
	got, _, _ = s.Account("alt")
	if !got.LastSuccess.Equal(t0.Add(time.Hour)) || got.History != nil {
		t.Errorf("Account(alt) = %+v", got)
	}
}

// snapshot is everything a test can observe about a store.
type snapshot struct {
	alerts  []rules.State
	account AccountState
	pending []Entry
}

func observe(t *testing.T, s *Store) snapshot {
	t.Helper()
	var snap snapshot
	var err error
	if snap.alerts, err = s.AlertStates(); err != nil {
		t.Fatal(err)
	}
	if snap.account, _, err = s.Account("main"); err != nil {
		t.Fatal(err)
	}
	if snap.pending, err = s.Pending("ops", 0); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestCommitKeepsInfiniteValues: an account whose equity fell to zero or
// below has infinite leverage, and the alert about it must be stored, not
// rejected as unencodable (which would lose its notice).
func TestCommitKeepsInfiniteValues(t *testing.T) {
	s, _ := openTemp(t)
	st := state("main", "leverage", "", "", notifiers.Critical, math.Inf(1))
	b := Batch{Put: []rules.State{st}, Enqueue: []Entry{entry("ops", "leverage", math.Inf(1))}}
	if err := s.Commit(&b); err != nil {
		t.Fatalf("Commit with +Inf: %v", err)
	}
	got, err := s.AlertStates()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !math.IsInf(got[0].Value, 1) {
		t.Fatalf("stored states %+v, want one with value +Inf", got)
	}
	pending, err := s.Pending("ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || !math.IsInf(pending[0].Alerts[0].Value, 1) {
		t.Fatalf("outbox %+v, want one alert with value +Inf", pending)
	}
}

func TestCommitIsAtomic(t *testing.T) {
	good := state("main", "r1", "BTCUSDT", "long", notifiers.Critical, 5)
	tests := []struct {
		name  string
		batch Batch
		want  string
	}{
		{
			name: "entry without notifier",
			batch: Batch{
				Put:     []rules.State{state("main", "r2", "", "", notifiers.Warning, 1)},
				Enqueue: []Entry{entry("ops", "ok", 1), entry("", "x", 1)},
			},
			want: "entry without notifier",
		},
		{
			name: "key too large",
			batch: Batch{
				Enqueue: []Entry{entry("ops", "ok", 1)},
				Put:     []rules.State{state(strings.Repeat("a", bolt.MaxKeySize), "r", "", "", notifiers.Warning, 1)},
			},
			want: "key too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			seed := Batch{
				Put:      []rules.State{good},
				Accounts: map[string]AccountState{"main": {LastSuccess: t0, History: []byte("h")}},
				Enqueue:  []Entry{entry("ops", "seed", 5)},
			}
			if err := s.Commit(&seed); err != nil {
				t.Fatal(err)
			}
			before := observe(t, s)

			err := s.Commit(&tt.batch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Commit error = %v, want one containing %q", err, tt.want)
			}
			// Every case here is the batch's fault: retrying cannot help.
			if !errors.Is(err, ErrBadBatch) {
				t.Errorf("Commit error %v does not wrap ErrBadBatch", err)
			}
			for i, e := range tt.batch.Enqueue {
				if e.ID != 0 {
					t.Errorf("Enqueue[%d].ID = %d after failed commit, want 0", i, e.ID)
				}
			}
			if after := observe(t, s); !reflect.DeepEqual(after, before) {
				t.Fatalf("failed commit changed the store:\nbefore %+v\nafter  %+v", before, after)
			}
			// The sequence rolled back too: the next ID follows the seed's.
			next := Batch{Enqueue: []Entry{entry("ops", "next", 1)}}
			if err := s.Commit(&next); err != nil {
				t.Fatal(err)
			}
			if next.Enqueue[0].ID != seed.Enqueue[0].ID+1 {
				t.Errorf("next ID = %d, want %d", next.Enqueue[0].ID, seed.Enqueue[0].ID+1)
			}
		})
	}
}

func TestReopenAfterClose(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := state("main", "r", "ETHUSDT", "short", notifiers.Warning, 9)
	b1 := Batch{Put: []rules.State{st}, Enqueue: []Entry{entry("ops", "a", 1), entry("phone", "a", 1)}}
	if err := s.Commit(&b1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.AlertStates()
	if err != nil || !reflect.DeepEqual(got, []rules.State{st}) {
		t.Fatalf("AlertStates after reopen = %+v, %v", got, err)
	}
	b2 := Batch{Enqueue: []Entry{entry("ops", "b", 1)}}
	if err := s.Commit(&b2); err != nil {
		t.Fatal(err)
	}
	// IDs 1 and 2 went to the first batch; the sequence survives the reopen.
	if b1.Enqueue[0].ID != 1 || b1.Enqueue[1].ID != 2 || b2.Enqueue[0].ID != 3 {
		t.Errorf("IDs = %d, %d, %d; want 1, 2, 3", b1.Enqueue[0].ID, b1.Enqueue[1].ID, b2.Enqueue[0].ID)
	}
	pend, err := s.Pending("ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{b1.Enqueue[0], b2.Enqueue[0]}
	if !reflect.DeepEqual(pend, want) {
		t.Errorf("Pending after reopen = %+v\nwant %+v", pend, want)
	}
}

func TestSecondOpenFailsWithErrLocked(t *testing.T) {
	s, dir := openTemp(t)
	const timeout = 100 * time.Millisecond
	start := time.Now()
	s2, err := Open(dir, Options{LockTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("error %v does not wrap ErrLocked", err)
	}
	wantText := "state dir " + dir + " is in use by another marginwatch process (stop it, or give this one another state_dir)"
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error = %q, want it to contain %q", err, wantText)
	}
	// bbolt polls the lock every 50ms; a few seconds of slack covers a slow
	// CI machine while still catching "waits forever".
	if elapsed > timeout+3*time.Second {
		t.Errorf("second Open took %v with LockTimeout %v", elapsed, timeout)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(dir, Options{LockTimeout: timeout})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestOpenRejectsGarbage(t *testing.T) {
	random := make([]byte, 64<<10)
	x := uint32(2463534242)
	for i := range random {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		random[i] = byte(x)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"short text", []byte("hello, this is not a database\n")},
		{"one page of x", []byte(strings.Repeat("x", 4096))},
		{"64KiB random", random},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open of garbage succeeded")
			}
			if errors.Is(err, ErrLocked) {
				t.Fatalf("garbage reported as locked: %v", err)
			}
			for _, want := range []string{path, "is not a valid marginwatch database", "move it aside"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchema, []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer marginwatch") {
		t.Errorf("error = %v", err)
	}
}

func ids(es []Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestPendingOrder(t *testing.T) {
	s, _ := openTemp(t)
	// IDs: 1 ops, 2 phone, 3 ops | 4 ops, 5 phone | ... up to 300 entries for
	// ops so big-endian keys must order past one byte (255 -> 256).
	if err := s.Commit(&Batch{Enqueue: []Entry{entry("ops", "a", 1), entry("phone", "a", 1), entry("ops", "b", 1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(&Batch{Enqueue: []Entry{entry("ops", "c", 1), entry("phone", "c", 1)}}); err != nil {
		t.Fatal(err)
	}
	var many []Entry
	for range 300 {
		many = append(many, entry("bulk", "x", 1))
	}
	if err := s.Commit(&Batch{Enqueue: many}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		notifier string
		limit    int
		want     []uint64
	}{
		{"ops", 0, []uint64{1, 3, 4}},
		{"ops", 2, []uint64{1, 3}},
		{"phone", -1, []uint64{2, 5}},
		{"unknown", 0, []uint64{}},
	}
	for _, tt := range tests {
		got, err := s.Pending(tt.notifier, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids(got), tt.want) {
			t.Errorf("Pending(%q, %d) IDs = %v, want %v", tt.notifier, tt.limit, ids(got), tt.want)
		}
	}
	bulk, err := s.Pending("bulk", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range bulk {
		if want := uint64(6 + i); e.ID != want {
			t.Fatalf("bulk[%d].ID = %d, want %d", i, e.ID, want)
		}
	}
	if len(bulk) != 300 {
		t.Fatalf("len(bulk) = %d, want 300", len(bulk))
	}
	depth, err := s.OutboxDepth()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"ops": 3, "phone": 2, "bulk": 300}; !reflect.DeepEqual(depth, want) {
		t.Errorf("OutboxDepth = %v, want %v", depth, want)
	}
}

func TestAckAndReschedule(t *testing.T) {
	s, _ := openTemp(t)
	b := Batch{Enqueue: []Entry{entry("ops", "a", 1), entry("ops", "b", 2), entry("phone", "a", 1)}}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	orig := b.Enqueue[1]

	// Reschedule changes only the retry bookkeeping, whatever else the
	// caller's copy holds.
	upd := orig
	upd.Attempts = 3
	upd.NextAttempt = t0.Add(4 * time.Second)
	upd.LastError = "slack: 503"
	upd.Alerts = nil
	upd.Created = t0.Add(time.Hour)
	if err := s.Reschedule(upd); err != nil {
		t.Fatal(err)
	}
	// Missing entries and notifiers are fine.
	for _, e := range []Entry{{Notifier: "ops", ID: 99}, {Notifier: "nobody", ID: 1}} {
		if err := s.Reschedule(e); err != nil {
			t.Errorf("Reschedule(%s/%d) = %v, want nil", e.Notifier, e.ID, err)
		}
	}
	pend, err := s.Pending("ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := orig
	want.Attempts, want.NextAttempt, want.LastError = 3, t0.Add(4*time.Second), "slack: 503"
	if len(pend) != 2 || !reflect.DeepEqual(pend[1], want) {
		t.Fatalf("after Reschedule Pending = %+v\nwant [_, %+v]", pend, want)
	}

	if err := s.Ack("ops", b.Enqueue[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		n  string
		id uint64
	}{{"ops", b.Enqueue[0].ID}, {"ops", 1234}, {"nobody", 1}} {
		if err := s.Ack(k.n, k.id); err != nil {
			t.Errorf("Ack(%s, %d) = %v, want nil", k.n, k.id, err)
		}
	}
	pend, err = s.Pending("ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pend, []Entry{want}) {
		t.Fatalf("after Ack Pending = %+v", pend)
	}
	if err := s.Ack("ops", want.ID); err != nil {
		t.Fatal(err)
	}
	depth, err := s.OutboxDepth()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"phone": 1}; !reflect.DeepEqual(depth, want) {
		t.Errorf("OutboxDepth = %v, want %v", depth, want)
	}
}
