// Package hyperliquid watches a Hyperliquid perps account (main dex) by
// its public address: no key, so read-only by construction. It polls, or
// with stream: true keeps a live view from the websocket (see Streams).
//
// # No client library
//
// github.com/sonirico/go-hyperliquid (v0.44.1) was considered and not
// taken. Its REST info types lack fields the metrics need: UserState has
// no crossMaintenanceMarginUsed (only its websocket type has it) and
// Position no maxLeverage. And it pulls go-ethereum with gnark-crypto,
// c-kzg and blst (cgo) for the signing we never do, plus zerolog, easyjson,
// msgpack and an APM agent: a large cold build on CI's 2 cores for five
// unsigned POST requests. The adapter has one small /info client on
// net/http instead (transport.go): POST endpoint+"/info", a JSON body,
// a bounded answer (8 MiB), ctx honoured, every request through the
// weight gate. It is this venue's only HTTP stack.
//
// # What is read
//
// Every poll: clearinghouseState (weight 2) and frontendOpenOrders (20).
// Cached: metaAndAssetCtxs (20) every 5 minutes, for the hourly funding
// rate and max leverage; userFunding (20, +1 per 20 rows) once after each
// full hour, for funding_paid_24h; candleSnapshot (20, +1 per 60 candles)
// per held coin when a newer 1h candle has closed, for ATR(14). The hourly
// reads come a fixed phase per account (and coin) late — funding 2 to 12
// minutes after the hour, candles up to 30 — so that the accounts of one
// IP do not all read at the full hour. A failure of either per-poll read
// fails the Snapshot; a cached read never does: one that fails, would wait
// on the gate (below) or outlasts the poll's time keeps its last data and
// is tried again on a later poll.
//
// # Mapping (SPEC "Margin pools", Hyperliquid)
//
// One pool, "USDC". equity = marginSummary.accountValue (cross account
// value + the isolated positions' marginUsed); available_balance =
// withdrawable; CrossMaintMargin = crossMaintenanceMarginUsed (older
// answers lack it: the cross positions' own maintenance margins stand in),
// and CrossWalletBalance + CrossUnPnL = crossMarginSummary.accountValue, so
// margin_ratio = crossMaintenanceMarginUsed / crossMarginSummary.accountValue.
//
// A position is named by its coin ("BTC"); its side is the sign of szi.
// positionValue is |szi| × mark at the moment of the same answer (checked:
// 100.02765 / 0.0335 = 2985.9, and unrealizedPnl = szi × (mark − entryPx)),
// so the mark is positionValue / |szi| and agrees with the served
// liquidationPx and unrealizedPnl; metaAndAssetCtxs' markPx stands in only
// without a positionValue. That keeps metaAndAssetCtxs (20 weight) off the
// per-poll path. liquidationPx is used as served (null: no liquidation
// price; the docs' formula differs by rounding). Maintenance margin =
// positionValue / (2 × maxLeverage), the position's maxLeverage or, in older
// answers, the universe's (the first margin tier: above the tier's bound
// the true figure is higher). An isolated position's wallet is marginUsed −
// unrealizedPnl, so its own margin_ratio is maintenance margin /
// marginUsed. Funding is hourly, the next at the next full hour.
//
// Stops are top-level frontendOpenOrders that are triggers (isTrigger) of
// type "Stop Market" or "Stop Limit", reduce-only or a position TP/SL, on
// the closing side ("A" sells: closes a long; "B" a short). Take-profits
// are not stops; TP/SL children of an entry order that has not filled
// (children) protect nothing yet and do not count until they rest on
// their own.
//
// # Limits
//
// Hyperliquid counts 1,200 weight a minute per IP. Every account of the
// process that talks to one host shares a gate that holds the per-poll
// reads above 80% until the next minute. A cached read is never held: it
// is sent only while the minute's weight is under the minute's pace (80%
// × the part of the minute gone, at least 150), else skipped, so that
// cached reads early in a minute leave the per-poll reads later in it
// their room. A 429 documents no reset time: the host gets
// a ban of 10 s, doubled while 429s recur after it (up to 5 minutes; the
// other 429s of one burst do not double it; a Retry-After, seconds or an
// HTTP date, if ever sent, is honoured up to an hour), during which
// nothing is sent; the ban is an exchanges.Ban, persisted by the daemon
// and restored in full after a restart.
//
// # Streams (stream: true)
//
// One websocket per account (endpoint with http→ws, or stream_endpoint,
// + /ws; github.com/coder/websocket) subscribes clearinghouseState,
// userEvents and orderUpdates of the address (one user: one of the 10
// slots below) and activeAssetCtx of every held coin.
// clearinghouseState is the whole state on every push: it replaces the
// view's balance and positions, mapped as a Snapshot maps them, with the
// stops, max leverages, funding paid and candles of the last Snapshot; a
// position gone from it is gone from the view, as a Snapshot reports it;
// a coin the last Snapshot did not hold waits for one (its stops and
// candles). activeAssetCtx gives markPx and the hourly funding: a tick
// reprices its coin's positions (notional, szi × (mark − entryPx), the
// maintenance margin at the same rate) and the pool; liquidationPx stays
// as served until the next clearinghouseState. A userEvents liquidation of
// the address is one liquidation event (it names no coin, so it is the
// account's, and a position it closed ends as "closed").
//
// Stops change without a clearinghouseState push. An orderUpdates frame
// (an order opened, cancelled, triggered, filled…) makes the view wait
// for a Snapshot at once, and the reseeder reads one (its
// frontendOpenOrders classified as every poll's): until then Live is not
// ok and the daemon polls, so a stop placed is never reported missing and
// a stop cancelled never counted from a trusted view. The frame is not
// applied itself: its orders (the official SDKs' WsBasicOrder: coin, side,
// limitPx, sz, oid, timestamp, origSz) carry no isTrigger, orderType,
// triggerPx or reduceOnly, so a stop cannot be told from a limit order or
// a take-profit. The price: 22 weight per order change, coalesced to one
// read per 5 s (an account whose bot churns orders costs up to 264 a
// minute, polled-like).
//
// Marks come from activeAssetCtx per held coin, not from allMids shared
// by every account: allMids are mid prices, and liquidation and the
// metrics run on the mark (markPx); activeAssetCtx also brings the
// funding rate; and one connection per account keeps each account's
// health its own, well inside the 100 connections and 1,000 subscriptions
// per IP (at most 10 streamed accounts, below).
//
// The client pings every 20 s (Hyperliquid closes a connection idle for a
// minute; the SDK pings every 50 s; 3 messages a minute is far under the
// 2,000 a minute per IP): a quiet account's view is current as
// of its last pong, so its data age stays near 20 s, well under the
// default stale_after of 60 s. A connection that brings no frame for 45 s
// (two pings missed) is half-open: it is closed, Live is not ok at once
// and the daemon polls until a new one is up. Connection attempts are paced
// process-wide (a burst of 10, then one a second) and retried after a
// jittered backoff (1 s doubling to a minute). What a new connection has
// missed is unknown, so the view is trusted again only after a Snapshot
// that began after it (the adapter asks for one itself; the first seed is
// the daemon's own Snapshot); an order change or an unreadable push during
// a read likewise. A push that races a Snapshot is applied on top of the
// read when its `time` is not older than the read's answer; ticks received
// during the read likewise when they are newer than that push.
//
// Hyperliquid serves user subscriptions for 10 unique addresses per IP:
// the first 10 addresses that stream from a host take them; the 11th
// account's Stream fails at once (ErrPermanent, naming the limit) and it
// is polled. A streamed account's Cost is one Snapshot per
// reconcile_interval (about 50 weight with 3 coins at 5 minutes, 10 a
// minute, against 96 a minute polled every 15 s).
package hyperliquid
