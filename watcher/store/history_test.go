package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// sent is a recorded notification of incident id at t0+offset.
func histAlert(id string, kind notifiers.Kind, offset time.Duration) notifiers.Alert {
	status := notifiers.Firing
	if kind == notifiers.KindResolved {
		status = notifiers.Resolved
	}
	return notifiers.Alert{
		ID: id, Status: status, Kind: kind, Severity: notifiers.Warning,
		Rule: "rule-" + id, Account: "main", Symbol: "BTCUSDT", Side: "long",
		Metric: "liq_distance_pct", Value: 12.5, Threshold: 15, Op: "below",
		StartsAt: t0, At: t0.Add(offset), Summary: "summary of " + id,
		Labels:  map[string]string{"desk": "alpha"},
		Context: map[string]float64{"mark_price": 100},
	}
}

// tags names alerts by ID and kind, so failures read well.
func histTags(as []notifiers.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID + "/" + string(a.Kind)
	}
	return out
}

func TestRecentAlerts(t *testing.T) {
	s, _ := openTemp(t)
	// Recorded out of order, with repeats, as commits and notifiers would.
	batches := [][]notifiers.Alert{
		{histAlert("c", notifiers.KindFiring, 3*time.Hour), histAlert("a", notifiers.KindFiring, 0)},
		{histAlert("b", notifiers.KindFiring, time.Hour), histAlert("a", notifiers.KindRepeat, 2*time.Hour)},
		// The same notification again (a second notifier): no duplicate.
		{histAlert("c", notifiers.KindFiring, 3*time.Hour)},
		// Two notifications of one instant: ordered by ID.
		{histAlert("e", notifiers.KindResolved, 4*time.Hour), histAlert("d", notifiers.KindEscalated, 4*time.Hour)},
		// Digests and tests are not account alerts: skipped.
		{histAlert("digest:morning", notifiers.KindDigest, 5*time.Hour), histAlert("t", notifiers.KindTest, 5*time.Hour)},
		// One incident, two kinds at one instant (eased, then a new kind): both kept.
		{histAlert("a", notifiers.KindEased, 2*time.Hour)},
		nil,
	}
	for i, b := range batches {
		if err := record(s, b); err != nil {
			t.Fatalf("record batch %d: %v", i, err)
		}
	}
	tests := []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"everything", t0.Add(-time.Hour), []string{"a/firing", "b/firing", "a/eased", "a/repeat", "c/firing", "d/escalated", "e/resolved"}},
		{"since is inclusive", t0.Add(2 * time.Hour), []string{"a/eased", "a/repeat", "c/firing", "d/escalated", "e/resolved"}},
		{"one nanosecond later", t0.Add(2*time.Hour + 1), []string{"c/firing", "d/escalated", "e/resolved"}},
		{"after the last", t0.Add(4*time.Hour + 1), nil},
		{"zero time", time.Time{}, []string{"a/firing", "b/firing", "a/eased", "a/repeat", "c/firing", "d/escalated", "e/resolved"}},
		{"beyond 2262", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RecentAlerts(tt.since)
			if err != nil {
				t.Fatalf("RecentAlerts: %v", err)
			}
			if g := histTags(got); !slices.Equal(g, tt.want) {
				t.Errorf("RecentAlerts(%s) = %v, want %v", tt.since, g, tt.want)
			}
		})
	}
}

func TestRecentAlertsRoundTrip(t *testing.T) {
	s, dir := openTemp(t)
	want := histAlert("a", notifiers.KindFiring, time.Minute)
	if err := record(s, []notifiers.Alert{want}); err != nil {
		t.Fatalf("record: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	got, err := s2.RecentAlerts(t0)
	if err != nil || len(got) != 1 {
		t.Fatalf("RecentAlerts after reopen = %v, %v; want one alert", histTags(got), err)
	}
	if !got[0].At.Equal(want.At) || !got[0].StartsAt.Equal(want.StartsAt) {
		t.Errorf("times = %s, %s; want %s, %s", got[0].At, got[0].StartsAt, want.At, want.StartsAt)
	}
	got[0].At, got[0].StartsAt = want.At, want.StartsAt
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("alert after reopen = %+v, want %+v", got[0], want)
	}
}

func TestPruneHistory(t *testing.T) {
	tests := []struct {
		name      string
		before    time.Time
		wantN     int
		wantAfter []string
	}{
		{"nothing old", t0, 1, []string{"a/firing", "b/firing", "c/firing"}}, // only the damaged record
		{"exclusive bound", t0.Add(time.Hour), 2, []string{"b/firing", "c/firing"}},
		{"some", t0.Add(time.Hour + 1), 3, []string{"c/firing"}},
		{"all", t0.Add(48 * time.Hour), 4, nil},
		{"zero time", time.Time{}, 1, []string{"a/firing", "b/firing", "c/firing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			err := record(s, []notifiers.Alert{
				histAlert("a", notifiers.KindFiring, 0),
				histAlert("b", notifiers.KindFiring, time.Hour),
				histAlert("c", notifiers.KindFiring, 24*time.Hour),
			})
			if err != nil {
				t.Fatalf("record: %v", err)
			}
			// A damaged record in the future: RecentAlerts skips it and
			// PruneHistory removes it whatever its time.
			err = s.db.Update(func(tx *bolt.Tx) error {
				k := historyTimeKey(t0.Add(30 * time.Hour))
				return tx.Bucket(bucketHistory).Put(append(k, "z\x00firing"...), []byte("{not json"))
			})
			if err != nil {
				t.Fatalf("plant damaged record: %v", err)
			}
			if got, err := s.RecentAlerts(time.Time{}); err != nil || len(got) != 3 {
				t.Fatalf("RecentAlerts with a damaged record = %v, %v; want the 3 good ones", histTags(got), err)
			}
			n, err := s.PruneHistory(tt.before)
			if err != nil || n != tt.wantN {
				t.Fatalf("PruneHistory(%s) = %d, %v; want %d, nil", tt.before, n, err, tt.wantN)
			}
			got, err := s.RecentAlerts(time.Time{})
			if err != nil {
				t.Fatalf("RecentAlerts: %v", err)
			}
			if g := histTags(got); !slices.Equal(g, tt.wantAfter) {
				t.Errorf("left after PruneHistory = %v, want %v", g, tt.wantAfter)
			}
			var left int
			_ = s.db.View(func(tx *bolt.Tx) error {
				left = tx.Bucket(bucketHistory).Stats().KeyN
				return nil
			})
			if left != len(tt.wantAfter) {
				t.Errorf("%d records left in the bucket, want %d", left, len(tt.wantAfter))
			}
		})
	}
}

func TestHistoryEmptyDatabase(t *testing.T) {
	s, _ := openTemp(t)
	if got, err := s.RecentAlerts(time.Time{}); err != nil || got != nil {
		t.Errorf("RecentAlerts on a fresh database = %v, %v; want nil, nil", got, err)
	}
	if n, err := s.PruneHistory(t0); err != nil || n != 0 {
		t.Errorf("PruneHistory on a fresh database = %d, %v; want 0, nil", n, err)
	}
	// Only skipped kinds: nothing is written, not even the bucket.
	if err := record(s, []notifiers.Alert{histAlert("d", notifiers.KindDigest, 0)}); err != nil {
		t.Fatalf("record of a digest: %v", err)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketHistory) != nil {
			t.Error("recording a digest created the history bucket")
		}
		return nil
	})
}

func TestCommitFailsOnClosedStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err = record(s, []notifiers.Alert{histAlert("a", notifiers.KindFiring, 0)})
	if err == nil || errors.Is(err, ErrBadBatch) {
		t.Errorf("Commit on a closed store = %v, want a non-ErrBadBatch error", err)
	}
}

// TestCommitRecordsHistory: the alerts a Commit enqueues are in the history
// as soon as Commit returns (same transaction, so a crash cannot leave a
// queued notice missing from the next digest), each once even when it goes
// to several notifiers; digests and tests are not.
func TestCommitRecordsHistory(t *testing.T) {
	s, dir := openTemp(t)
	a := histAlert("a", notifiers.KindFiring, 0)
	b := histAlert("b", notifiers.KindResolved, time.Minute)
	dg := histAlert("digest:morning", notifiers.KindDigest, time.Minute)
	tst := histAlert("t", notifiers.KindTest, time.Minute)
	batch := Batch{Enqueue: []Entry{
		{Notifier: "slack", Created: t0, Alerts: []notifiers.Alert{a, b}},
		{Notifier: "tg", Created: t0, Alerts: []notifiers.Alert{a, b, tst}},
		{Notifier: "mail", Created: t0, Alerts: []notifiers.Alert{dg}},
	}}
	if err := s.Commit(&batch); err != nil {
		t.Fatal(err)
	}
	if batch.HistoryErr != nil {
		t.Errorf("HistoryErr = %v, want nil", batch.HistoryErr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	got, err := s2.RecentAlerts(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if g, want := histTags(got), []string{"a/firing", "b/resolved"}; !slices.Equal(g, want) {
		t.Errorf("history after Commit = %v, want %v", g, want)
	}
	var n int
	_ = s2.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketHistory).Stats().KeyN
		return nil
	})
	if n != 2 {
		t.Errorf("%d history records, want 2", n)
	}
}

// TestCommitKeepsNoticeHistoryCannotHold: an alert the history cannot hold
// (no ID, a time outside 1970..2262) is still enqueued; only its digest line
// is skipped, and HistoryErr says which alert.
func TestCommitKeepsNoticeHistoryCannotHold(t *testing.T) {
	tests := []struct {
		name string
		bad  func(*notifiers.Alert)
		want string
	}{
		{"zero time", func(a *notifiers.Alert) { a.At = time.Time{} }, "outside 1970..2262"},
		{"after 2262", func(a *notifiers.Alert) { a.At = time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside 1970..2262"},
		{"no ID", func(a *notifiers.Alert) { a.ID = "" }, "has no ID"},
		{"NUL in ID", func(a *notifiers.Alert) { a.ID = "x\x00y" }, "NUL byte"},
		{"before 1970", func(a *notifiers.Alert) { a.At = time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC) }, "outside 1970..2262"},
		{"NUL in kind", func(a *notifiers.Alert) { a.Kind = "firing\x00x" }, "NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			good := histAlert("good", notifiers.KindFiring, 0)
			bad := histAlert("bad", notifiers.KindFiring, time.Minute)
			tt.bad(&bad)
			batch := Batch{
				Put:     []rules.State{state("main", "r", "", "", notifiers.Critical, 1)},
				Enqueue: []Entry{{Notifier: "ops", Created: t0, Alerts: []notifiers.Alert{bad, good}}},
			}
			if err := s.Commit(&batch); err != nil {
				t.Fatalf("Commit = %v, want the notice queued", err)
			}
			if batch.HistoryErr == nil || !strings.Contains(batch.HistoryErr.Error(), tt.want) {
				t.Errorf("HistoryErr = %v, want it to mention %q", batch.HistoryErr, tt.want)
			}
			pend, err := s.Pending("ops", 0)
			if err != nil || len(pend) != 1 || len(pend[0].Alerts) != 2 {
				t.Fatalf("Pending = %+v, %v; want the entry with both alerts", pend, err)
			}
			got, err := s.RecentAlerts(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if g, want := histTags(got), []string{"good/firing"}; !slices.Equal(g, want) {
				t.Errorf("history = %v, want %v", g, want)
			}
			// A later commit without trouble clears HistoryErr.
			batch.Enqueue = []Entry{{Notifier: "ops", Created: t0, Alerts: []notifiers.Alert{good}}}
			if err := s.Commit(&batch); err != nil || batch.HistoryErr != nil {
				t.Errorf("second Commit = %v, HistoryErr %v; want nil, nil", err, batch.HistoryErr)
			}
		})
	}
}

// TestCommitHistoryRollsBack: a batch that fails records no history.
func TestCommitHistoryRollsBack(t *testing.T) {
	s, _ := openTemp(t)
	batch := Batch{Enqueue: []Entry{
		{Notifier: "ops", Created: t0, Alerts: []notifiers.Alert{histAlert("a", notifiers.KindFiring, 0)}},
		{Notifier: "", Created: t0, Alerts: []notifiers.Alert{histAlert("b", notifiers.KindFiring, 0)}},
	}}
	if err := s.Commit(&batch); !errors.Is(err, ErrBadBatch) {
		t.Fatalf("Commit = %v, want ErrBadBatch", err)
	}
	if got, err := s.RecentAlerts(time.Time{}); err != nil || len(got) != 0 {
		t.Errorf("history after a failed Commit = %v, %v; want none", histTags(got), err)
	}
}

// record commits alerts as one outbox entry, the way the daemon records
// them for digests, and returns what Commit or the history reported.
func record(s *Store, alerts []notifiers.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	b := Batch{Enqueue: []Entry{{Notifier: "ops", Created: t0, Alerts: alerts}}}
	if err := s.Commit(&b); err != nil {
		return err
	}
	return b.HistoryErr
}
