package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/marginwatch/marginwatch/notifiers"
)

// The "history" bucket remembers the alert notifications that were sent, so
// a digest can list the alerts of the last 24 hours. Keys are the big-endian
// Alert.At in Unix nanoseconds, then Alert.ID, a NUL byte and Alert.Kind;
// values are the JSON Alert. Keys therefore sort by time, and recording the
// same notification twice (it went to two notifiers, or a commit is retried)
// writes the same key with the same value. Like "threads", the bucket is
// created on first write and readers treat a missing bucket as empty.
var bucketHistory = []byte("history")

// historyTimeLen is the length of the time prefix of a history key.
const historyTimeLen = 8

// errBadHistory marks an alert that cannot be recorded.
var errBadHistory = errors.New("alert cannot be recorded in the history")

// historyRecord is one alert's key and value in the history bucket.
type historyRecord struct{ k, v []byte }

// historyRecords encodes the alerts the history keeps (every kind but
// digests and tests), each once. It returns the alerts it cannot encode as
// one joined error, alongside the records of the others.
func historyRecords(alerts []notifiers.Alert) ([]historyRecord, error) {
	var (
		recs []historyRecord
		errs []error
		seen = make(map[string]bool, len(alerts))
	)
	for i := range alerts {
		a := &alerts[i]
		if a.Kind == notifiers.KindDigest || a.Kind == notifiers.KindTest {
			continue
		}
		k, err := historyKey(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		v, err := json.Marshal(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: alert %s of rule %q: %w", errBadHistory, a.ID, a.Rule, err))
			continue
		}
		recs = append(recs, historyRecord{k, v})
	}
	return recs, errors.Join(errs...)
}

// putHistory writes records into the history bucket, creating it if needed.
func putHistory(tx *bolt.Tx, recs []historyRecord) error {
	if len(recs) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketHistory)
	if err != nil {
		return fmt.Errorf("create history bucket: %w", err)
	}
	for _, r := range recs {
		if err := b.Put(r.k, r.v); err != nil {
			return fmt.Errorf("record alert history: %w", err)
		}
	}
	return nil
}

// RecentAlerts returns the recorded notifications whose At is at or after
// since, oldest first (notifications of one instant in ID order). A record
// that cannot be decoded is skipped rather than failing the whole read: a
// digest with one alert missing is better than no digest. PruneHistory
// removes such records.
func (s *Store) RecentAlerts(since time.Time) ([]notifiers.Alert, error) {
	var out []notifiers.Alert
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(historyTimeKey(since)); k != nil; k, v = c.Next() {
			// json.Unmarshal copies, so nothing escapes the transaction.
			if a, ok := decodeHistory(k, v); ok {
				out = append(out, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	return out, nil
}

// PruneHistory deletes the notifications recorded with an At before
// before, and any record whose value cannot be decoded, and returns how
// many it deleted. The maintenance loop calls it so the history holds only
// what digests can still show.
func (s *Store) PruneHistory(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		if b == nil {
			return nil
		}
		limit := historyTimeKey(before)
		var err error
		n, err = deleteWhere(b, func(k, v []byte) bool {
			return bytes.Compare(k[:min(len(k), historyTimeLen)], limit) < 0 || !decodable(k, v)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune alert history: %w", err)
	}
	return n, nil
}

// decodeHistory decodes one history record; ok is false for a damaged one.
func decodeHistory(k, v []byte) (a notifiers.Alert, ok bool) {
	if len(k) <= historyTimeLen {
		return a, false
	}
	if err := json.Unmarshal(v, &a); err != nil {
		return a, false
	}
	return a, true
}

// decodable reports whether decodeHistory accepts a record.
func decodable(k, v []byte) bool {
	_, ok := decodeHistory(k, v)
	return ok
}

// historyKey is an alert's key in the history bucket.
func historyKey(a *notifiers.Alert) ([]byte, error) {
	if a.ID == "" {
		return nil, fmt.Errorf("%w: alert of rule %q has no ID", errBadHistory, a.Rule)
	}
	if strings.IndexByte(a.ID, 0) >= 0 || strings.IndexByte(string(a.Kind), 0) >= 0 {
		return nil, fmt.Errorf("%w: alert of rule %q has a NUL byte in its ID or kind", errBadHistory, a.Rule)
	}
	if a.At.Before(time.Unix(0, 0)) || a.At.After(time.Unix(0, math.MaxInt64)) {
		return nil, fmt.Errorf("%w: alert %s of rule %q has time %s outside 1970..2262", errBadHistory, a.ID, a.Rule, a.At.Format(time.RFC3339))
	}
	k := make([]byte, 0, historyTimeLen+len(a.ID)+1+len(a.Kind))
	k = binary.BigEndian.AppendUint64(k, uint64(a.At.UnixNano()))
	k = append(k, a.ID...)
	k = append(k, 0)
	k = append(k, a.Kind...)
	return k, nil
}

// historyTimeKey is the time prefix of the history keys at t, clamped to the
// range of the keys: every key is at or after the key of a time before
// 1970, and before the key of a time after 2262.
func historyTimeKey(t time.Time) []byte {
	var ns uint64
	switch {
	case t.Before(time.Unix(0, 0)):
		ns = 0
	case t.After(time.Unix(0, math.MaxInt64)):
		ns = math.MaxUint64
	default:
		ns = uint64(t.UnixNano())
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, historyTimeLen), ns)
}
