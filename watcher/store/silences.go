package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/marginwatch/marginwatch/watcher/silence"
)

// The "silences" bucket maps a silence's ID to its JSON silence.Silence
// (matchers as the strings ParseMatcher reads). Like "threads", it is
// created on first write and readers treat a missing bucket as empty. Mute
// windows come from the config and are never stored.
var bucketSilences = []byte("silences")

// ErrSkipped is wrapped by the error of a read that skipped records it
// could not decode and returned the rest.
var ErrSkipped = errors.New("undecodable records skipped")

// PutSilence stores x, replacing any silence with the same ID. It does not
// judge the times (an expired silence is stored with its new end); it
// refuses, wrapping ErrBadBatch, what could not be read back: an empty ID
// and a matcher not built by silence.ParseMatcher.
func (s *Store) PutSilence(x silence.Silence) error {
	if x.ID == "" {
		return fmt.Errorf("store silence: %w: empty ID (give every silence an ID before storing it)", ErrBadBatch)
	}
	for _, m := range x.Matchers {
		if m.Op == "" {
			return fmt.Errorf("store silence %s: %w: matcher on %q is not parsed (build matchers with silence.ParseMatcher)", x.ID, ErrBadBatch, m.Label)
		}
	}
	v, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("store silence %s: %w: %w", x.ID, ErrBadBatch, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSilences)
		if err != nil {
			return err
		}
		return b.Put([]byte(x.ID), v)
	})
	if err != nil {
		if isBad(err) {
			return fmt.Errorf("store silence %s: %w: %w", x.ID, ErrBadBatch, err)
		}
		return fmt.Errorf("store silence %s: %w", x.ID, err)
	}
	return nil
}

// Silences returns every stored silence, ended ones included, ordered by
// ID. A record that cannot be decoded (damaged, or written by a newer
// marginwatch with a matcher this one does not know) is skipped: the others
// are returned all the same, with an error wrapping ErrSkipped that names
// each skipped ID, for the caller to log and go on. Any other error means
// nothing could be read. PruneSilences removes undecodable records.
func (s *Store) Silences() ([]silence.Silence, error) {
	var (
		out     []silence.Silence
		skipped []error
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilences)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var x silence.Silence
			// json.Unmarshal copies, so nothing escapes the transaction.
			if err := json.Unmarshal(v, &x); err != nil {
				skipped = append(skipped, fmt.Errorf("silence %q: %w", k, err))
				return nil
			}
			x.ID = string(k) // the key is the ID, whatever the value says
			out = append(out, x)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	if len(skipped) > 0 {
		return out, fmt.Errorf("read silences: %w (add them again if they matter; the next prune deletes them): %w", ErrSkipped, errors.Join(skipped...))
	}
	return out, nil
}

// PruneSilences deletes the silences that ended before endedBefore, and
// any record that cannot be decoded, and returns how many it deleted. The
// maintenance loop calls it so that expired silences do not pile up.
func (s *Store) PruneSilences(endedBefore time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilences)
		if b == nil {
			return nil
		}
		var err error
		n, err = deleteWhere(b, func(_, v []byte) bool {
			var x silence.Silence
			return json.Unmarshal(v, &x) != nil || x.EndsAt.Before(endedBefore)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune silences: %w", err)
	}
	return n, nil
}
