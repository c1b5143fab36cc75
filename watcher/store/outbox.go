package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/marginwatch/marginwatch/notifiers"
)

// Entry is one message waiting in the outbox: the alerts of one evaluation
// for one notifier.
type Entry struct {
	// ID is assigned by Commit; it orders entries oldest first.
	ID       uint64    `json:"id"`
	Notifier string    `json:"notifier"`
	Created  time.Time `json:"created"`
	// Attempts counts failed deliveries so far.
	Attempts int `json:"attempts"`
	// NextAttempt is the earliest time to try again.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// ServerWait is true when NextAttempt is the wait the receiver asked
	// for (Retry-After), which a newer notice must not cut short.
	ServerWait bool `json:"server_wait,omitempty"`
	// Sent counts the parts already delivered when the notifier splits the
	// entry into several messages (notifiers.Splitter), so that a retry or
	// a restart resumes at the first part not yet delivered.
	Sent int `json:"sent,omitempty"`
	// LastError is the last failure's text (notifier errors carry no secrets).
	LastError string            `json:"last_error,omitempty"`
	Alerts    []notifiers.Alert `json:"alerts"`
}

// Pending returns up to limit entries for notifier, oldest first. limit <= 0
// means no limit.
func (s *Store) Pending(notifier string, limit int) ([]Entry, error) {
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketOutbox).Bucket([]byte(notifier))
		if nb == nil {
			return nil
		}
		c := nb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode entry %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox of %s: %w", notifier, err)
	}
	return out, nil
}

// Reschedule stores e's Attempts, NextAttempt, ServerWait and LastError on
// the entry (e.Notifier, e.ID). The alerts themselves are never rewritten.
// An entry that no longer exists (acknowledged meanwhile) is not an error.
func (s *Store) Reschedule(e Entry) error {
	err := s.update(e.Notifier, e.ID, func(cur *Entry) {
		cur.Attempts, cur.NextAttempt, cur.ServerWait, cur.LastError = e.Attempts, e.NextAttempt, e.ServerWait, e.LastError
	})
	if err != nil {
		return fmt.Errorf("reschedule outbox entry %d of %s: %w", e.ID, e.Notifier, err)
	}
	return nil
}

// MarkSent records that the first sent parts of an entry (see Entry.Sent)
// were delivered. The receiver took them, so the rest is due at once:
// NextAttempt and ServerWait are cleared. An entry that no longer exists is
// not an error.
func (s *Store) MarkSent(notifier string, id uint64, sent int) error {
	err := s.update(notifier, id, func(cur *Entry) {
		cur.Sent, cur.NextAttempt, cur.ServerWait = sent, time.Time{}, false
	})
	if err != nil {
		return fmt.Errorf("record parts sent of outbox entry %d of %s: %w", id, notifier, err)
	}
	return nil
}

// update rewrites one outbox entry in its own transaction; a missing entry
// is left alone.
func (s *Store) update(notifier string, id uint64, change func(*Entry)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketOutbox).Bucket([]byte(notifier))
		if nb == nil {
			return nil
		}
		k := idKey(id)
		v := nb.Get(k)
		if v == nil {
			return nil
		}
		var cur Entry
		if err := json.Unmarshal(v, &cur); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		change(&cur)
		nv, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		return nb.Put(k, nv)
	})
}

// LastID returns the ID of notifier's newest waiting entry, 0 when none is
// waiting. IDs only grow, so a larger LastID means something new arrived.
func (s *Store) LastID(notifier string) (uint64, error) {
	var id uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketOutbox).Bucket([]byte(notifier))
		if nb == nil {
			return nil
		}
		if k, _ := nb.Cursor().Last(); len(k) == 8 {
			id = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read outbox of %s: %w", notifier, err)
	}
	return id, nil
}

// Ack removes an entry after delivery (or after giving up on it). A missing
// entry is not an error.
func (s *Store) Ack(notifier string, id uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketOutbox).Bucket([]byte(notifier))
		if nb == nil {
			return nil
		}
		return nb.Delete(idKey(id))
	})
	if err != nil {
		return fmt.Errorf("ack outbox entry %d of %s: %w", id, notifier, err)
	}
	return nil
}

// OutboxDepth returns the number of waiting entries per notifier, including
// notifiers no longer configured. Notifiers with nothing waiting are absent.
func (s *Store) OutboxDepth() (map[string]int, error) {
	depth := make(map[string]int)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEachBucket(func(name []byte) error {
			nb := tx.Bucket(bucketOutbox).Bucket(name)
			n := 0
			c := nb.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				n++
			}
			if n > 0 {
				depth[string(name)] = n
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox depth: %w", err)
	}
	return depth, nil
}
