package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/marginwatch/marginwatch/notifiers"
)

// The "threads" bucket maps notifier + "\x00" + incident (Alert.ID) to a
// JSON threadRecord. It is created on first write rather than in Open, so a
// database that never threaded anything has no such bucket and readers treat
// a missing bucket as empty.
var bucketThreads = []byte("threads")

// threadRecord is one remembered thread: the channel's reference to the
// incident's first message and when it was stored (for PruneThreads).
type threadRecord struct {
	Ref     string    `json:"ref"`
	Created time.Time `json:"created"`
}

var _ notifiers.Threads = (*Store)(nil)

// errBadThreadKey is returned by SetThread for names that cannot form a key.
var errBadThreadKey = errors.New("notifier and incident must be non-empty and free of NUL bytes")

// threadKey joins notifier and incident with a NUL byte. Notifier names come
// from the config and incident IDs are hex hashes, so neither holds a NUL;
// SetThread refuses names that do, so two pairs can never share a key.
func threadKey(notifier, incident string) ([]byte, bool) {
	if notifier == "" || incident == "" || strings.IndexByte(notifier, 0) >= 0 || strings.IndexByte(incident, 0) >= 0 {
		return nil, false
	}
	k := make([]byte, 0, len(notifier)+1+len(incident))
	k = append(k, notifier...)
	k = append(k, 0)
	k = append(k, incident...)
	return k, true
}

// Thread returns the thread reference stored for an incident of a notifier.
//
// The notifiers.Threads contract has no error result: a read failure or an
// undecodable record reports ok=false, and the notifier then starts a new
// thread, which is the safe degradation (the message still goes out).
func (s *Store) Thread(notifier, incident string) (ref string, ok bool) {
	k, valid := threadKey(notifier, incident)
	if !valid {
		return "", false
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketThreads)
		if b == nil {
			return nil
		}
		v := b.Get(k)
		if v == nil {
			return nil
		}
		var rec threadRecord
		// json.Unmarshal copies, so nothing escapes the transaction.
		if err := json.Unmarshal(v, &rec); err != nil || rec.Ref == "" {
			return nil
		}
		ref, ok = rec.Ref, true
		return nil
	})
	return ref, ok
}

// SetThread stores ref as the thread of an incident of a notifier,
// replacing any earlier one, stamped with the current time.
func (s *Store) SetThread(notifier, incident, ref string) error {
	return s.setThreadAt(notifier, incident, ref, time.Now())
}

// setThreadAt is SetThread with an explicit creation time, for tests of
// PruneThreads.
func (s *Store) setThreadAt(notifier, incident, ref string, created time.Time) error {
	k, ok := threadKey(notifier, incident)
	if !ok {
		return fmt.Errorf("store thread of %q: %w", notifier, errBadThreadKey)
	}
	if ref == "" {
		return fmt.Errorf("store thread of %q: empty reference", notifier)
	}
	v, err := json.Marshal(threadRecord{Ref: ref, Created: created.UTC()})
	if err != nil {
		return fmt.Errorf("store thread of %q: encode: %w", notifier, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketThreads)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("store thread of %q: %w", notifier, err)
	}
	return nil
}

// PruneThreads deletes the threads stored before olderThan, and any record
// that cannot be decoded, and returns how many it deleted. The maintenance
// loop calls it so the bucket does not grow with every incident ever seen;
// an incident that outlives its record only loses threading (its next
// message starts a new thread).
func (s *Store) PruneThreads(olderThan time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketThreads)
		if b == nil {
			return nil
		}
		var err error
		n, err = deleteWhere(b, func(_, v []byte) bool {
			var rec threadRecord
			return json.Unmarshal(v, &rec) != nil || rec.Created.Before(olderThan)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune threads: %w", err)
	}
	return n, nil
}
