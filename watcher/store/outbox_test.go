package store

import (
	"reflect"
	"testing"
	"time"
)

// TestMarkSentAndServerWait: the parts-sent count and the server-wait flag
// survive a reopen, each written by its own method and left alone by the
// other.
func TestMarkSentAndServerWait(t *testing.T) {
	s, dir := openTemp(t)
	b := Batch{Enqueue: []Entry{entry("tg", "a", 1), entry("tg", "b", 2)}}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	id := b.Enqueue[0].ID
	upd := b.Enqueue[0]
	upd.Attempts, upd.NextAttempt, upd.ServerWait, upd.LastError = 1, t0.Add(time.Hour), true, "503"
	if err := s.Reschedule(upd); err != nil {
		t.Fatal(err)
	}
	// Parts went out: the rest is due at once.
	if err := s.MarkSent("tg", id, 11); err != nil {
		t.Fatal(err)
	}
	pend, err := s.Pending("tg", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := b.Enqueue[0]
	want.Sent, want.Attempts, want.NextAttempt, want.ServerWait, want.LastError = 11, 1, time.Time{}, false, "503"
	if !reflect.DeepEqual(pend, []Entry{want}) {
		t.Fatalf("after MarkSent Pending = %+v\nwant %+v", pend, want)
	}

	upd.Attempts, upd.NextAttempt, upd.ServerWait, upd.LastError = 1, t0.Add(30*time.Second), true, "429"
	upd.Sent = 99 // not Reschedule's to write
	if err := s.Reschedule(upd); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		n  string
		id uint64
	}{{"tg", 1234}, {"nobody", 1}} {
		if err := s.MarkSent(k.n, k.id, 3); err != nil {
			t.Errorf("MarkSent(%s, %d) = %v, want nil", k.n, k.id, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	pend, err = s2.Pending("tg", 0)
	if err != nil {
		t.Fatal(err)
	}
	want.Sent, want.Attempts, want.NextAttempt, want.ServerWait, want.LastError = 11, 1, t0.Add(30*time.Second), true, "429"
	if len(pend) != 2 || !reflect.DeepEqual(pend[0], want) {
		t.Fatalf("Pending = %+v\nwant [%+v, _]", pend, want)
	}
	if !reflect.DeepEqual(pend[1], b.Enqueue[1]) {
		t.Errorf("the other entry changed: %+v", pend[1])
	}
}

func TestLastID(t *testing.T) {
	s, _ := openTemp(t)
	last := func(n string) uint64 {
		t.Helper()
		id, err := s.LastID(n)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if got := last("ops"); got != 0 {
		t.Errorf("LastID of an empty outbox = %d, want 0", got)
	}
	b := Batch{Enqueue: []Entry{entry("ops", "a", 1), entry("phone", "a", 1), entry("ops", "b", 2), entry("phone", "b", 2)}}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	if got, want := last("ops"), b.Enqueue[2].ID; got != want {
		t.Errorf("LastID(ops) = %d, want %d", got, want)
	}
	if got, want := last("phone"), b.Enqueue[3].ID; got != want {
		t.Errorf("LastID(phone) = %d, want %d", got, want)
	}
	if err := s.Ack("ops", b.Enqueue[2].ID); err != nil {
		t.Fatal(err)
	}
	if got, want := last("ops"), b.Enqueue[0].ID; got != want {
		t.Errorf("LastID(ops) after acking the newest = %d, want %d", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LastID("ops"); err == nil {
		t.Error("LastID on a closed store succeeded")
	}
}
