// Package delivery moves notifications from the bbolt outbox to the
// notifiers.
//
// The engine turns one evaluation's notices into outbox entries with
// Entries and writes them, together with the new alert state, in one
// store.Commit. A Dispatcher then runs one worker per notifier. Each worker
// sends its entries strictly in order (a resolution never overtakes its
// firing notice): a retryable failure blocks the notifier's queue until the
// backoff has passed, a permanent failure drops the entry with a log line,
// and an entry older than the target's MaxAge is dropped with a log line.
//
// Delivery is at-least-once. An entry is deleted only after the notifier
// reported success (or a permanent failure), so no alert is lost to a crash;
// but a crash (or a failed Ack) between a successful Notify and the Ack sends
// that entry again after the restart. Tightening this to exactly-once
// needs an idempotency key carried to the receiver (planned).
package delivery
