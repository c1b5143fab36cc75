package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/marginwatch/marginwatch/watcher/silence"
)

func mkSilence(t *testing.T, id string, ends time.Time, matchers ...string) silence.Silence {
	t.Helper()
	ms, err := silence.ParseMatchers(matchers)
	if err != nil {
		t.Fatal(err)
	}
	return silence.Silence{
		ID: id, Matchers: ms,
		StartsAt: ends.Add(-time.Hour), EndsAt: ends, CreatedAt: ends.Add(-2 * time.Hour),
		Author: "ann", Comment: "on it",
	}
}

// silenceIDs lists the IDs of ss in order.
func silenceIDs(ss []silence.Silence) []string {
	out := []string{}
	for _, x := range ss {
		out = append(out, x.ID)
	}
	return out
}

func TestSilencesEmptyDatabase(t *testing.T) {
	s, _ := openTemp(t)
	got, err := s.Silences()
	if err != nil || len(got) != 0 {
		t.Errorf("Silences on a new database = %v, %v; want none", got, err)
	}
	if n, err := s.PruneSilences(t0); err != nil || n != 0 {
		t.Errorf("PruneSilences on a new database = %d, %v", n, err)
	}
}

func TestSilencesRoundTrip(t *testing.T) {
	s, dir := openTemp(t)
	in := []silence.Silence{
		mkSilence(t, "b", t0.Add(time.Hour), "rule=liquidation-near", "symbol=~BTC.*"),
		mkSilence(t, "a", t0.Add(2*time.Hour), "account=main", "side!=short", `severity=~"warning|critical"`),
	}
	for _, x := range in {
		if err := s.PutSilence(x); err != nil {
			t.Fatalf("PutSilence(%s): %v", x.ID, err)
		}
	}
	check := func(s *Store, when string) {
		t.Helper()
		got, err := s.Silences()
		if err != nil {
			t.Fatalf("%s: Silences: %v", when, err)
		}
		if ids := silenceIDs(got); !slices.Equal(ids, []string{"a", "b"}) {
			t.Fatalf("%s: Silences = %v, want [a b] (by ID)", when, ids)
		}
		for i, want := range []silence.Silence{in[1], in[0]} {
			x := got[i]
			if !x.StartsAt.Equal(want.StartsAt) || !x.EndsAt.Equal(want.EndsAt) || !x.CreatedAt.Equal(want.CreatedAt) ||
				x.Author != want.Author || x.Comment != want.Comment || len(x.Matchers) != len(want.Matchers) {
				t.Errorf("%s: %s = %+v, want %+v", when, x.ID, x, want)
				continue
			}
			for j := range want.Matchers {
				if x.Matchers[j].String() != want.Matchers[j].String() {
					t.Errorf("%s: %s matcher %d = %s, want %s", when, x.ID, j, x.Matchers[j], want.Matchers[j])
				}
			}
		}
		// The =~ matchers come back compiled, anchored as written.
		btc := silence.Target{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long", Severity: "critical"}
		if !got[1].Matches(&btc) || !got[0].Matches(&btc) {
			t.Errorf("%s: a decoded silence does not match %+v", when, btc)
		}
		if eth := (silence.Target{Rule: "liquidation-near", Symbol: "XBTCUSDT"}); got[1].Matches(&eth) {
			t.Errorf("%s: symbol=~BTC.* matches XBTCUSDT after decoding", when)
		}
	}
	check(s, "before reopen")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	check(s2, "after reopen")
}

func TestPutSilenceReplaces(t *testing.T) {
	s, _ := openTemp(t)
	x := mkSilence(t, "a", t0.Add(time.Hour), "rule=liquidation-near")
	if err := s.PutSilence(x); err != nil {
		t.Fatal(err)
	}
	// Expiring is storing it again with an earlier end.
	x.EndsAt = t0
	x.Comment = "expired by bob"
	if err := s.PutSilence(x); err != nil {
		t.Fatal(err)
	}
	got, err := s.Silences()
	if err != nil || len(got) != 1 {
		t.Fatalf("Silences = %v, %v; want one", got, err)
	}
	if !got[0].EndsAt.Equal(t0) || got[0].Comment != "expired by bob" {
		t.Errorf("after replace = %+v", got[0])
	}
}

func TestPutSilenceRefuses(t *testing.T) {
	good := mkSilence(t, "a", t0, "rule=x")
	tests := []struct {
		name string
		edit func(*silence.Silence)
		want string
	}{
		{"empty ID", func(x *silence.Silence) { x.ID = "" }, "empty ID"},
		{"unparsed matcher", func(x *silence.Silence) { x.Matchers = []silence.Matcher{{Label: "rule", Value: "x"}} }, "not parsed"},
		{"ID too long for a key", func(x *silence.Silence) { x.ID = strings.Repeat("x", bolt.MaxKeySize+1) }, "key too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			x := good
			tt.edit(&x)
			err := s.PutSilence(x)
			if !errors.Is(err, ErrBadBatch) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PutSilence = %v; want ErrBadBatch saying %q", err, tt.want)
			}
			if got, _ := s.Silences(); len(got) != 0 {
				t.Errorf("a refused silence was stored: %v", silenceIDs(got))
			}
		})
	}
}

func TestPruneSilences(t *testing.T) {
	tests := []struct {
		name       string
		before     time.Time
		corrupt    bool
		wantPruned int
		wantKept   []string
	}{
		{"nothing ended", t0.Add(-48 * time.Hour), false, 0, []string{"edge", "live", "old"}},
		{"the old one", t0.Add(-time.Hour), false, 1, []string{"edge", "live"}},
		{"ending exactly at the cut-off is kept", t0, false, 1, []string{"edge", "live"}},
		{"just after", t0.Add(time.Nanosecond), false, 2, []string{"live"}},
		{"everything", t0.Add(48 * time.Hour), false, 3, []string{}},
		{"a corrupt record goes too", t0.Add(-48 * time.Hour), true, 1, []string{"edge", "live", "old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for _, x := range []silence.Silence{
				mkSilence(t, "old", t0.Add(-24*time.Hour), "rule=a"),
				mkSilence(t, "edge", t0, "rule=b"),
				mkSilence(t, "live", t0.Add(24*time.Hour), "rule=c"),
			} {
				if err := s.PutSilence(x); err != nil {
					t.Fatal(err)
				}
			}
			if tt.corrupt {
				putRaw(t, s, "bad", "{not json")
			}
			n, err := s.PruneSilences(tt.before)
			if err != nil || n != tt.wantPruned {
				t.Errorf("PruneSilences = %d, %v; want %d", n, err, tt.wantPruned)
			}
			got, err := s.Silences()
			if err != nil {
				t.Fatalf("Silences after prune: %v", err)
			}
			if ids := silenceIDs(got); !slices.Equal(ids, tt.wantKept) {
				t.Errorf("kept %v, want %v", ids, tt.wantKept)
			}
			if n, err := s.PruneSilences(tt.before); err != nil || n != 0 {
				t.Errorf("second PruneSilences = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// putRaw writes a record into the silences bucket as it is.
func putRaw(t *testing.T, s *Store, id, v string) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSilences)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), []byte(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSilencesSkipsCorrupt: one damaged record must not hide the silences
// next to it (they would stop silencing after a restart).
func TestSilencesSkipsCorrupt(t *testing.T) {
	s, _ := openTemp(t)
	for _, id := range []string{"a", "c"} {
		if err := s.PutSilence(mkSilence(t, id, t0, "rule=x")); err != nil {
			t.Fatal(err)
		}
	}
	putRaw(t, s, "b", "{not json")
	putRaw(t, s, "d", `{"id":"d","matchers":["desk=alpha"]}`) // a label this version does not know

	got, err := s.Silences()
	if ids := silenceIDs(got); !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("Silences = %v, want [a c]", ids)
	}
	if !errors.Is(err, ErrSkipped) {
		t.Fatalf("Silences error = %v; want ErrSkipped", err)
	}
	for _, want := range []string{`silence "b"`, `silence "d"`, "unknown label"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestSilencesClosedStore(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSilence(mkSilence(t, "a", t0, "rule=x")); !errors.Is(err, berrors.ErrDatabaseNotOpen) || errors.Is(err, ErrBadBatch) {
		t.Errorf("PutSilence on a closed store = %v; want ErrDatabaseNotOpen, not ErrBadBatch", err)
	}
	if got, err := s.Silences(); !errors.Is(err, berrors.ErrDatabaseNotOpen) || errors.Is(err, ErrSkipped) || got != nil {
		t.Errorf("Silences on a closed store = %v, %v; want ErrDatabaseNotOpen", got, err)
	}
	if _, err := s.PruneSilences(t0); !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Errorf("PruneSilences on a closed store = %v", err)
	}
}
