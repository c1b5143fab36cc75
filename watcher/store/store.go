package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// FileName is the database file inside the state directory.
const FileName = "marginwatch.db"

// schemaVersion is the key layout this code reads and writes. Bump it (and
// migrate in Open) whenever a bucket's key or value encoding changes.
const schemaVersion = 1

// DefaultLockTimeout is how long Open waits for another process's lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// ErrLocked is returned by Open when another marginwatch holds the state database.
var ErrLocked = errors.New("state database is locked")

// ErrBadBatch is returned (wrapped) by Commit when the batch itself can never
// be stored, and by PutSilence for such a silence: a NaN or infinite number (JSON has no encoding for them), an
// entry without a notifier, an empty or oversized key or value. Retrying
// such a batch is pointless, unlike an I/O error or a full disk.
var ErrBadBatch = errors.New("batch cannot be stored")

var (
	bucketMeta     = []byte("meta")
	bucketAlerts   = []byte("alerts")
	bucketAccounts = []byte("accounts")
	bucketOutbox   = []byte("outbox")

	keySchema = []byte("schema")
)

// Options tune Open.
type Options struct {
	// LockTimeout is how long to wait for the file lock held by another
	// process before failing with ErrLocked. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Store is the open state database. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens (creating if needed) dir/marginwatch.db. dir is created with
// mode 0700 and the file with 0600: the outbox holds alert text that may
// reveal positions.
//
// A lock held by another process for longer than opts.LockTimeout gives an
// error wrapping ErrLocked. A file that is not a marginwatch database gives
// an error naming the file and telling the user to move it aside.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	// bbolt reports some damage with ad-hoc errors ("file size too small"),
	// so any non-I/O failure to open an existing, non-empty file counts as
	// a damaged file.
	fi, statErr := os.Stat(path)
	existed := statErr == nil && fi.Mode().IsRegular() && fi.Size() > 0
	db, err := openBolt(path, timeout)
	if err != nil {
		var pathErr *fs.PathError
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("state dir %s is in use by another marginwatch process (stop it, or give this one another state_dir): %w", dir, ErrLocked)
		case isCorrupt(err) || (existed && !errors.As(err, &pathErr)):
			return nil, corruptError(path, err)
		default:
			return nil, fmt.Errorf("open state database %s: %w", path, err)
		}
	}
	s := &Store{db: db, path: path}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens the bbolt file and turns a panic on a damaged file into an
// error: a bad file on disk must not crash the daemon with a stack trace.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %v", berrors.ErrInvalid, r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
}

func isCorrupt(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) ||
		errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

func corruptError(path string, err error) error {
	return fmt.Errorf("state database %s is not a valid marginwatch database (%w); move it aside (mv %s %s.bad) and restart to begin with empty state", path, err, path, path)
}

// init creates the buckets and checks the schema version.
func (s *Store) init() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("%w: bad schema version %q", berrors.ErrInvalid, v)
			}
			if n > schemaVersion {
				return fmt.Errorf("schema version %d was written by a newer marginwatch (this one reads %d); upgrade marginwatch", n, schemaVersion)
			}
		} else if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketAlerts, bucketAccounts, bucketOutbox} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if isCorrupt(err) || errors.Is(err, berrors.ErrIncompatibleValue) {
		return corruptError(s.path, err)
	}
	return fmt.Errorf("initialise state database %s: %w", s.path, err)
}

// Close releases the database and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state database: %w", err)
	}
	return nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// AlertStates returns every persisted alert state, ordered by account, rule,
// symbol and side.
func (s *Store) AlertStates() ([]rules.State, error) {
	var out []rules.State
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
			var st rules.State
			// json.Unmarshal copies, so nothing escapes the transaction.
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("decode alert state %q: %w", k, err)
			}
			out = append(out, st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read alert states: %w", err)
	}
	return out, nil
}

// AccountState is what the engine remembers about one account between runs.
type AccountState struct {
	// LastSuccess is when the last poll succeeded; it keeps data-stale
	// detection honest across restarts.
	LastSuccess time.Time `json:"last_success"`
	// History is metrics.EquityHistory's MarshalBinary output.
	History []byte `json:"history,omitempty"`
	// Bans are the exchange's rate-limit bans in force at the last poll
	// (exchanges.BanKeeper), honoured again after a restart.
	Bans []exchanges.Ban `json:"bans,omitempty"`
}

// Account returns an account's state, and false when none is stored.
func (s *Store) Account(name string) (AccountState, bool, error) {
	var (
		st    AccountState
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAccounts).Get([]byte(name))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &st)
	})
	if err != nil {
		return AccountState{}, false, fmt.Errorf("read account %s state: %w", name, err)
	}
	return st, found, nil
}

// Batch is one evaluation's changes, committed in ONE transaction (so alert
// state and the outbox never disagree after kill -9).
type Batch struct {
	// Put stores (replaces) alert states by Key.
	Put []rules.State
	// Delete removes the states of alerts that became inactive.
	Delete []rules.Key
	// Accounts replaces account states by name.
	Accounts map[string]AccountState
	// Enqueue adds outbox entries; Commit sets their ID and records their
	// alerts in the history for digests.
	Enqueue []Entry

	// HistoryErr is set by Commit: the alerts of Enqueue that the history
	// cannot hold (no ID, a NUL byte in ID or kind, an At outside
	// 1970..2262), nil when there were none. They were enqueued all the
	// same: a digest line is worth less than the notice. Callers log it.
	HistoryErr error
}

// Commit writes b atomically. On success each b.Enqueue[i].ID holds its new,
// monotonically increasing outbox ID, and every enqueued alert is in the
// history (see RecentAlerts) once, even if it goes to several notifiers;
// digests and test notifications are not recorded, and alerts the history
// cannot hold are skipped and reported in b.HistoryErr. On any error (a
// value that cannot be encoded, a full disk) nothing is written and the IDs
// are left zero; errors that retrying cannot fix wrap ErrBadBatch.
func (s *Store) Commit(b *Batch) error {
	if b == nil {
		return nil
	}
	b.HistoryErr = nil
	var alerts []notifiers.Alert
	for _, e := range b.Enqueue {
		alerts = append(alerts, e.Alerts...)
	}
	history, historyErr := historyRecords(alerts)
	err := s.db.Update(func(tx *bolt.Tx) error {
		alerts := tx.Bucket(bucketAlerts)
		for _, k := range b.Delete {
			if err := alerts.Delete(encodeKey(k)); err != nil {
				return fmt.Errorf("delete alert %s: %w", keyString(k), err)
			}
		}
		for _, st := range b.Put {
			v, err := json.Marshal(st)
			if err != nil {
				return fmt.Errorf("encode alert %s: %w", keyString(st.Key), err)
			}
			if err := alerts.Put(encodeKey(st.Key), v); err != nil {
				return fmt.Errorf("put alert %s: %w", keyString(st.Key), err)
			}
		}
		accounts := tx.Bucket(bucketAccounts)
		for name, st := range b.Accounts {
			v, err := json.Marshal(st)
			if err != nil {
				return fmt.Errorf("encode account %s state: %w", name, err)
			}
			if err := accounts.Put([]byte(name), v); err != nil {
				return fmt.Errorf("put account %s state: %w", name, err)
			}
		}
		outbox := tx.Bucket(bucketOutbox)
		for i := range b.Enqueue {
			e := &b.Enqueue[i]
			if e.Notifier == "" {
				return errNoNotifier
			}
			nb, err := outbox.CreateBucketIfNotExists([]byte(e.Notifier))
			if err != nil {
				return fmt.Errorf("enqueue for %s: %w", e.Notifier, err)
			}
			id, err := outbox.NextSequence()
			if err != nil {
				return fmt.Errorf("enqueue for %s: %w", e.Notifier, err)
			}
			e.ID = id
			v, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode outbox entry for %s: %w", e.Notifier, err)
			}
			if err := nb.Put(idKey(id), v); err != nil {
				return fmt.Errorf("enqueue for %s: %w", e.Notifier, err)
			}
		}
		return putHistory(tx, history)
	})
	if err != nil {
		// The transaction rolled back, so the IDs handed out never existed.
		for i := range b.Enqueue {
			b.Enqueue[i].ID = 0
		}
		if isBad(err) {
			return fmt.Errorf("commit: %w: %w", ErrBadBatch, err)
		}
		return fmt.Errorf("commit: %w", err)
	}
	if historyErr != nil {
		b.HistoryErr = fmt.Errorf("commit: not recorded for digests (the notices were queued): %w", historyErr)
	}
	return nil
}

// errNoNotifier marks an outbox entry without a notifier name.
var errNoNotifier = errors.New("enqueue: entry without notifier")

// isBad reports whether a Commit failure comes from the batch's content
// rather than from the disk.
func isBad(err error) bool {
	var (
		unsupported *json.UnsupportedValueError
		marshaler   *json.MarshalerError
	)
	return errors.As(err, &unsupported) || errors.As(err, &marshaler) ||
		errors.Is(err, errNoNotifier) ||
		errors.Is(err, berrors.ErrKeyRequired) ||
		errors.Is(err, berrors.ErrKeyTooLarge) ||
		errors.Is(err, berrors.ErrValueTooLarge) ||
		errors.Is(err, berrors.ErrBucketNameRequired)
}

// encodeKey encodes an alert key as length-prefixed fields, so no choice of
// names (a rule called "a\x00b", an empty symbol) can make two keys collide.
// Account comes first so one account's alerts sort together.
func encodeKey(k rules.Key) []byte {
	fields := [...]string{k.Account, k.Rule, k.Symbol, k.Side}
	n := 0
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// keyString names an alert in error messages.
func keyString(k rules.Key) string {
	s := k.Account + "/" + k.Rule
	if k.Symbol != "" || k.Side != "" {
		s += "/" + k.Symbol + "/" + k.Side
	}
	return s
}

func idKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id)
}

// deleteWhere deletes the records of b for which drop is true and counts
// them. It collects keys first: bbolt forbids changing a bucket while a
// cursor walks it.
func deleteWhere(b *bolt.Bucket, drop func(k, v []byte) bool) (int, error) {
	var doomed [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if drop(k, v) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}
