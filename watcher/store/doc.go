// Package store keeps marginwatch's durable state in one bbolt file,
// marginwatch.db, inside the configured state directory.
//
// It holds what must survive a restart or kill -9: the lifecycle of every
// alert (so a restart neither re-sends a firing alert early nor forgets its
// resolution), per-account bookkeeping (last successful poll, equity history
// for drawdown), the delivery outbox, the alert history digests list and
// the users' silences. One evaluation's changes are written by Commit in a
// single transaction, so alert state, the outbox and the history never
// disagree: either the new state, its notifications and their history
// lines are all on disk, or none is.
//
// Layout (schema version 1, recorded in the "meta" bucket):
//
//	meta      "schema" -> "1"
//	alerts    encoded rules.Key -> JSON rules.State
//	accounts  account name -> JSON AccountState
//	outbox    one sub-bucket per notifier; big-endian entry ID -> JSON Entry.
//	          Entry IDs come from the outbox bucket's sequence, so they are
//	          unique across notifiers and increase with time.
//	history   see history.go; written by Commit for every enqueued alert.
//	threads   see threads.go.
//	silences  silence ID -> JSON silence.Silence; see silences.go.
//
// Only one process may open the database for writing; bbolt's file lock
// enforces it and Open reports a held lock as ErrLocked.
package store
