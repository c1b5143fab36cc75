package store

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func TestThreadsSetAndGet(t *testing.T) {
	s, _ := openTemp(t)
	// Writes happen in order; each case then reads one pair.
	writes := []struct {
		notifier, incident, ref string
		wantErr                 bool
	}{
		{"ops", "a1", "1700000000.000100", false},
		{"ops", "b2", "1700000001.000200", false},
		{"phone", "a1", "4711", false},               // same incident, another notifier
		{"ops", "b2", "1700000009.000900", false},    // replaced
		{"ops\x00x", "a1", "forged", true},           // NUL in notifier
		{"op", "s\x00a1", "forged", true},            // would collide with ("ops", "a1") if joined naively
		{"ops", "", "1700000000.000100", true},       // no incident
		{"", "a1", "1700000000.000100", true},        // no notifier
		{"ops", "c3", "", true},                      // empty reference
		{"ops", "a1\x00", "1700000000.000999", true}, // NUL in incident
		{"ops", "d4", "1700000002.000300", false},
		{"ops", "d4", "1700000002.000300", false}, // idempotent
		{"mail", "e5", "<msg-id@example.com>", false},
		{"phone", "a1", "4712", false}, // replaced
		{"phone", "zz", "1", false},
		{"ops", "zz", "1700000003.000400", false}, // independent of ("phone", "zz")
		{"ops", "e5", "1700000004.000500", false},
		{"mail", "e5", "<msg-id-2@example.com>", false}, // replaced
	}
	for i, w := range writes {
		err := s.SetThread(w.notifier, w.incident, w.ref)
		if (err != nil) != w.wantErr {
			t.Fatalf("write %d SetThread(%q, %q, %q) = %v, want error %v", i, w.notifier, w.incident, w.ref, err, w.wantErr)
		}
	}

	tests := []struct {
		notifier, incident string
		wantRef            string
		wantOK             bool
	}{
		{"ops", "a1", "1700000000.000100", true},
		{"ops", "b2", "1700000009.000900", true},
		{"phone", "a1", "4712", true},
		{"phone", "zz", "1", true},
		{"ops", "zz", "1700000003.000400", true},
		{"ops", "d4", "1700000002.000300", true},
		{"mail", "e5", "<msg-id-2@example.com>", true},
		{"ops", "e5", "1700000004.000500", true},
		{"ops", "c3", "", false},
		{"ops", "missing", "", false},
		{"telegram", "a1", "", false},
		{"ops\x00x", "a1", "", false},
		{"op", "s\x00a1", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		ref, ok := s.Thread(tt.notifier, tt.incident)
		if ref != tt.wantRef || ok != tt.wantOK {
			t.Errorf("Thread(%q, %q) = %q, %v; want %q, %v", tt.notifier, tt.incident, ref, ok, tt.wantRef, tt.wantOK)
		}
	}
}

func TestThreadsEmptyDatabase(t *testing.T) {
	s, _ := openTemp(t)
	if ref, ok := s.Thread("ops", "a1"); ok || ref != "" {
		t.Errorf("Thread on a fresh database = %q, %v; want none", ref, ok)
	}
	n, err := s.PruneThreads(t0)
	if err != nil || n != 0 {
		t.Errorf("PruneThreads on a fresh database = %d, %v; want 0, nil", n, err)
	}
}

func TestThreadsSurviveReopen(t *testing.T) {
	s, dir := openTemp(t)
	if err := s.SetThread("ops", "a1b2c3d4e5f60718", "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if ref, ok := s2.Thread("ops", "a1b2c3d4e5f60718"); !ok || ref != "1700000000.000100" {
		t.Errorf("after reopen Thread = %q, %v; want 1700000000.000100, true", ref, ok)
	}
}

func TestPruneThreads(t *testing.T) {
	records := []struct {
		incident string
		created  time.Time
	}{
		{"old", t0.Add(-48 * time.Hour)},
		{"edge", t0.Add(-24 * time.Hour)}, // exactly at the cut-off: kept (not before it)
		{"recent", t0.Add(-time.Hour)},
		{"new", t0},
	}
	tests := []struct {
		name       string
		olderThan  time.Time
		corrupt    bool
		wantPruned int
		wantKept   []string
		wantGone   []string
	}{
		{"nothing old enough", t0.Add(-72 * time.Hour), false, 0, []string{"old", "edge", "recent", "new"}, nil},
		{"one day", t0.Add(-24 * time.Hour), false, 1, []string{"edge", "recent", "new"}, []string{"old"}},
		{"just after edge", t0.Add(-24*time.Hour + time.Nanosecond), false, 2, []string{"recent", "new"}, []string{"old", "edge"}},
		{"everything", t0.Add(time.Second), false, 4, nil, []string{"old", "edge", "recent", "new"}},
		{"corrupt record goes too", t0.Add(-72 * time.Hour), true, 1, []string{"old", "edge", "recent", "new"}, []string{"bad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for _, r := range records {
				if err := s.setThreadAt("ops", r.incident, "ts-"+r.incident, r.created); err != nil {
					t.Fatal(err)
				}
			}
			if tt.corrupt {
				k, _ := threadKey("ops", "bad")
				err := s.db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket(bucketThreads).Put(k, []byte("{not json"))
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := s.Thread("ops", "bad"); ok {
					t.Error("an undecodable record was reported as a thread")
				}
			}
			n, err := s.PruneThreads(tt.olderThan)
			if err != nil {
				t.Fatalf("PruneThreads: %v", err)
			}
			if n != tt.wantPruned {
				t.Errorf("PruneThreads = %d, want %d", n, tt.wantPruned)
			}
			for _, inc := range tt.wantKept {
				if ref, ok := s.Thread("ops", inc); !ok || ref != "ts-"+inc {
					t.Errorf("%s: Thread = %q, %v; want kept", inc, ref, ok)
				}
			}
			for _, inc := range tt.wantGone {
				if _, ok := s.Thread("ops", inc); ok {
					t.Errorf("%s: still stored after prune", inc)
				}
			}
			// A second prune with the same cut-off finds nothing more.
			if n, err := s.PruneThreads(tt.olderThan); err != nil || n != 0 {
				t.Errorf("second PruneThreads = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

func TestSetThreadClosedStore(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.SetThread("ops", "a1", "1700000000.000100")
	if !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Errorf("SetThread on a closed store = %v, want ErrDatabaseNotOpen", err)
	}
	if _, ok := s.Thread("ops", "a1"); ok {
		t.Error("Thread on a closed store reported a thread")
	}
}
