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
// Retries are paced for paging, not batch mail. After the n-th failed
// attempt of an entry the worker waits 1 s, 2 s, 4 s, 8 s, then 8 s each
// time, each ±20% jitter: never more than 9.6 s, so held notices go out
// within 10 s of a receiver's recovery however long it was down. A wait the
// receiver asks for (HTTP Retry-After, Telegram's retry_after) is honoured
// when longer, up to MaxRetryAfter (1 h). While the queue's head waits out a
// backoff, a notice queued for the same notifier makes the worker try again
// at once, head first, so order is kept and everything flows if it works;
// only notices newer than the last attempt count, early tries are at least
// 1 s apart, and a receiver's own Retry-After is never cut short.
//
// A notifier that implements notifiers.Splitter gets each entry as the
// parts Split returns, one Notify call each (each with its own timeout, and
// paced by MinInterval). The outbox records how many parts went out, so a
// retry or a restart resumes at the first part not yet delivered; the
// entry is removed, and counted once in Stats, when its last part is out.
//
// Delivery is at-least-once. An entry (or part) is deleted (or recorded
// as sent) only after the notifier reported success (or a permanent
// failure), so no alert is lost to a crash; but a crash (or a failed store
// write) between a successful Notify and that record sends that message
// again after the restart. Receivers that must not see duplicates
// deduplicate on the message's identity (the webhook-id header).
//
// Stats are plain atomic counters: reading them (/metrics) never waits on a
// send or on the store's fsync.
package delivery
