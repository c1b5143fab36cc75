package exchanges

import (
	"context"
	"time"
)

// Streamer is implemented by exchanges that keep an account current from
// the venue's push streams (config `stream: true`): a user-data stream for
// balances, positions, orders and events, and mark-price ticks for the
// symbols held. The daemon then evaluates on every change instead of every
// poll, and calls Snapshot only to seed and reconcile the live view (every
// reconcile_interval) and to poll while the streams are down.
//
// Snapshot keeps its meaning (one full REST read); a successful Snapshot
// also reseeds the live view, and Live reports changes on top of it.
type Streamer interface {
	// Stream connects the account's streams and keeps its live view
	// current until ctx is done, then returns nil. It reconnects by itself
	// (jittered backoff, the venue's forced reconnects and key renewals)
	// and does not return for a transient failure. It returns an error
	// wrapping ErrPermanent when streaming cannot work for this account
	// (the key may not open a user stream); the daemon keeps polling then.
	//
	// changed is called after every change of the live view (a mark-price
	// tick of a held symbol, an account or order update, an event, the
	// streams going down or coming back). It must return at once: the
	// daemon only notes that a change is waiting and reads it with Live,
	// so bursts coalesce.
	Stream(ctx context.Context, changed func()) error

	// Live copies the current live view into snap. It reuses snap's
	// Balances and Positions arrays (grown only when the account holds
	// more than before), so that steady state allocates nothing; a
	// Position's Stops and Candles are shared and must be treated as
	// read-only. Events and Transfers that arrived since the last Live or
	// Snapshot move into snap (each reported once, by either).
	//
	// snap.Time is when the view was last known current: the newest
	// message of a stream that is up. tick is when the newest change in
	// the view arrived (the receipt of the tick or update behind it), for
	// the tick-to-evaluation latency.
	//
	// ok is false while the view cannot be trusted: before a Snapshot has
	// seeded it, while a stream it needs is down or silent for longer than
	// its heartbeat, or after an update it cannot apply (it then waits for
	// the next Snapshot). The daemon polls with Snapshot meanwhile; snap
	// is left in an unspecified state.
	Live(snap *Snapshot) (tick time.Time, ok bool)

	// StreamStatus reports the streams' health for /metrics and logs.
	StreamStatus() StreamStatus
}

// StreamStatus is the health of an account's streams.
type StreamStatus struct {
	// Up is true while every stream the live view needs is connected and
	// current.
	Up bool
	// Reason says why not, in words for a log line ("user-data stream
	// reconnecting after: EOF"); empty while Up.
	Reason string
	// Reconnects counts the connections re-established since the start
	// (forced 24 h reconnects and resubscriptions included).
	Reconnects uint64
}

// Coster is implemented by exchanges whose requests draw on a budget
// shared by every account on the same venue and IP (Binance: request
// weight, 2,400 a minute per IP). The daemon plans the accounts' polls and
// reconciliations from it so that together they stay under 80% of the
// budget (see watcher/budget).
type Coster interface {
	Cost() Cost
}

// Cost is what one account spends from its venue's shared budget.
type Cost struct {
	// Budget names the shared budget (venue and host): accounts with the
	// same Budget share Limit.
	Budget string
	// Limit is the budget per minute.
	Limit int
	// Poll is the weight of one steady-state Snapshot; First the weight of
	// the first one (cache fills).
	Poll, First int
}
