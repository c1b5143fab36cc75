// Package hyperliquid watches a Hyperliquid perps account (main dex) by
// its public address: no key, so read-only by construction. It polls;
// streams are a later step (stream: true polls too, with a warning).
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
// per held coin when a newer 1h candle has closed, for ATR(14). A cached
// read that fails keeps its last data (and is logged); a failure of either
// per-poll read fails the Snapshot.
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
// process that talks to one host shares a gate that holds requests above
// 80% until the next minute. A 429 documents no reset time: the host gets
// a ban of 10 s, doubled while 429s recur (up to 5 minutes; a Retry-After,
// if ever sent, is honoured), during which nothing is sent; the ban is an
// exchanges.Ban, persisted by the daemon and restored after a restart.
package hyperliquid
