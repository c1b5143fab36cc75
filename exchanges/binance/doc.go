// Package binance is the Binance futures adapter: `exchange: binance-usdm`
// (USDⓈ-M, go-binance's futures package) and `exchange: binance-coinm`
// (COIN-M, its delivery package). Each Snapshot is one normalized account
// read whose numbers follow Binance's own definitions, so that the metrics
// match the Binance app.
//
// # What one poll reads
//
// USDⓈ-M, every poll: GET /fapi/v2/account (weight 5: totals, per-asset
// rows, multi-assets mode, each position's leverage and margin type) and /fapi/v3/positionRisk
// (5: mark and liquidation price as Binance reports them, maintenance
// margin, isolated wallet, margin asset), so the numbers that matter most
// are fresh on every poll. Each held symbol also needs three reads of weight
// 1: /fapi/v1/premiumIndex (funding rate, next funding time),
// /fapi/v1/openOrders and /fapi/v1/openAlgoOrders (where Binance keeps
// conditional orders since December 2025); unfiltered they would cost 10,
// 40 and 40. A steady poll re-reads only one of the three per symbol, in
// turn, and serves the other two from the last read: stop orders and
// funding rates are at most 3 polls old (45 s at the default 15 s interval;
// a failed poll adds its interval). A symbol seen for the first time gets
// all three on that poll, so its stops and funding are never unknown; a
// symbol whose funding time has passed since its last premiumIndex gets it
// again out of turn. From 10 symbols due at once, one premiumIndex for all
// (10) replaces the per-symbol ones.
//
// Cached, on the polls that refresh them: /fapi/v1/fundingInfo (1, hourly;
// unlisted symbols fund every 8h), /fapi/v1/leverageBracket (1 per symbol,
// hourly), /fapi/v1/klines 1h (1 per symbol, once per closed candle, 99
// candles) and /fapi/v1/income (30 a page, at most every 5 minutes, or at
// once when a wallet moved while the positions did not: see Transfers).
//
// Weight with N held symbols, measured by binancetest (weight_test.go): a
// steady poll costs 10 + N; the first poll, and a poll where symbols are
// new, costs 2 more per new symbol plus its candles and brackets (first
// poll with 3 symbols: 56); over an hour of 15 s polls the caches add about
// 1.6 a poll, for an average of 14.6 with 3 symbols (budget: 12 + N).
//
// COIN-M reads /dapi/v1/account (5), /dapi/v1/positionRisk (1) and
// /dapi/v1/openOrders per symbol (1) every poll: 6 + N. /dapi/v1/premiumIndex
// weighs 10 with or without a symbol, so it is read on every third poll
// (funding rate and time at most 3 polls old, as on USDⓈ-M), and at once
// for a new symbol or a passed funding time; exchangeInfo (contract sizes),
// fundingInfo, leverage brackets, klines and income are cached the same
// way as on USDⓈ-M. Measured with 3 symbols: steady poll 9, first poll 47,
// hour average 13.4 (budget 12 + N). go-binance's delivery package has no
// premiumIndex, leverage-bracket or income service, so those are sent here,
// signed by go-binance's own signer.
//
// # Liquidations
//
// A poll cannot see a liquidation, only a position that is gone. When a
// position of the previous successful Snapshot is missing, the adapter
// asks GET /fapi/v1/forceOrders (or /dapi/v1/forceOrders; signed, weight
// 20 with a symbol) for that symbol since the poll that last saw it, and
// adds one liquidation event per position Binance closed by force
// (liquidation or ADL), in the same Snapshot in which the position
// disappears. Its ID ends with the closing order's orderId, so it is
// reported once. If that request fails, the Snapshot fails (transient) and
// the next poll looks again. A restarted daemon or a reloaded account has
// no memory of the positions before.
//
// Leverage brackets stand in for a maintenance margin Binance does not
// report: a position with a size whose maintMargin is missing or zero (v2
// positionRisk has none; a COIN-M position opened between the account and
// positionRisk reads) gets notional × maintMarginRatio − cum, the bracket
// chosen by notional on USDⓈ-M and by quantity in the coin (qtylFloor,
// qtyCap) on COIN-M. Account totals are always Binance's.
//
// # Income and transfers
//
// Income of every type is read incrementally: the first read covers 24h,
// each later one starts 2 minutes before the newest row read (rows read
// twice are recognised by type, asset and tranId, which Binance keeps
// unique per type only), in pages of 1,000 rows, at most 10 a read (a
// warning says when the 24h funding sum is partial; the next read goes on
// from there). FUNDING_FEE rows of the last 24h give funding_paid_24h.
// TRANSFER, INTERNAL_TRANSFER, CROSS_COLLATERAL_TRANSFER,
// STRATEGY_UMFUTURES_TRANSFER, COIN_SWAP_DEPOSIT, COIN_SWAP_WITHDRAW,
// AUTO_EXCHANGE, WELCOME_BONUS, CONTEST_REWARD and BFUSD_REWARD rows become
// Snapshot.Transfers, each once, handed out by the first Snapshot that
// succeeds after the read; trading income (realized PnL, funding,
// commission, rebates, insurance clearance, settlement) never does. The
// first Snapshot reports those of the last 24h too, made while the daemon
// was down among them (the equity history applies each ID once). In
// multi-assets mode a transfer counts in the USD pool: stablecoins one to
// one, other assets at the mark price of their USDT perpetual (premiumIndex,
// weight 1). A wallet that moves while the positions stay as they were
// brings the read forward (at most once a minute), so that a withdrawal and
// its transfer arrive in the same poll.
//
// # Numbers
//
// Balances are margin pools. USDⓈ-M single-asset mode: one per margin asset
// (USDT, USDC, …) from the account's per-asset rows, since Binance's total*
// fields count USDT only; an asset with neither money nor positions is left
// out. Multi-assets mode: one pool "USD" from the totals. COIN-M: one per
// margin coin. Position.Pool names each position's. A pool's cross
// maintenance margin is its maintMargin minus its isolated positions'; the
// asset rows are served as Binance reports them, even when they lag the
// positions (the metrics floor a pool at its positions' maintenance
// margin). An isolated position's ratio uses its own maintenance margin
// over its isolated wallet + unrealized PnL. COIN-M notional is contracts ×
// contract size / mark, in the coin, and PnL is Binance's. A position whose
// margin asset has no asset row fails the Snapshot.
//
// funding_paid_24h (USDⓈ-M) sums the FUNDING_FEE income of every asset: in
// multi-assets mode USDT and USDC funding are added one to one, each taken
// as 1 USD rather than converted at a market rate, which stays within the
// stablecoins' fraction-of-a-percent spread. COIN-M keeps one sum per coin.
//
// Position.Stops: every STOP, STOP_MARKET or TRAILING_STOP_MARKET, regular
// or algo, on the closing side of the position; in one-way mode it must be
// reduce-only or close-position (or it could open the other way), in hedge
// mode a SELL on the LONG side or a BUY on the SHORT side. Take-profits are
// not stops. Trigger is the stop or trigger price; a trailing stop with an
// activation price counts only once the mark has reached it (before, it
// guards nothing on the way to liquidation), at the activation price ∓
// callbackRate%; without one it fires the mark ∓ callbackRate% (below the
// mark for a long); Quantity is what is left to fill. Stops beyond the
// liquidation price are reported too: which stops are effective is the
// metrics' call.
//
// # Rate limits and failures
//
// Every request goes through a RoundTripper that reads
// X-MBX-USED-WEIGHT-1M (UsedWeight), and on 429 or 418 sends nothing more to
// that host until Retry-After has passed (shared by every account on the
// host, as Binance limits per IP); polls meanwhile fail with a
// *RateLimitError and the data-stale rule tells the user. Above 80% of the
// 2,400 weight a minute, fundingInfo, leverage brackets, candles and income
// are not refreshed until the next minute; the per-symbol reads go on in
// turn, so the staleness bound above holds.
// A -1021 (clock drift) re-syncs the time offset and retries once. A
// rejected key (-2014, -2015, -2008, -1022, HTTP 401) fails Snapshot with a
// *KeyError wrapping exchanges.ErrPermanent and queues one key_problem event
// per occurrence (PendingEvents); KeyProblem reports it until a Snapshot
// succeeds. Bans can be handed out (Bans) and restored after a restart
// (RestoreBans).
//
// # Keys
//
// CheckKey refuses keys that can withdraw, or trade or transfer funds
// (permitsUniversalTransfer, enableInternalTransfer) without
// allow_trading_key. Until a check has succeeded (the daemon starts when
// Binance could not be asked), Snapshot checks first and fails as
// permanent on a refused key. Every permission_check_interval (1h) a
// Snapshot reads the permissions again (one request, on the spot API): a
// change raises a key_problem event saying what changed, and a key that
// now has refused permissions is reported by KeyProblem while polling
// goes on. HMAC, Ed25519 and RSA keys work: a PEM (PKCS#8) private key as
// api_secret selects Ed25519 or RSA, and every request, go-binance's and
// the adapter's own, is signed by go-binance's signer. endpoint may be
// plain http only to a loopback address. Keys and secrets never appear in
// errors or logs.
//
// # Mark-price streams
//
// In real-time mode (stream: true) every account of a process that uses
// the same market and stream endpoint shares one mark-price hub
// (markhub.go): the union of the symbols they hold, resubscribed as
// holdings change (changes coalesce for 500 ms; the new connection opens
// before the old one closes, which happens at its first frame or after
// 10 s, so symbols kept see no gap).
//
// USDⓈ-M: one combined stream, <symbol>@markPrice@1s (a tick a second),
// /market/stream?streams=… on fstream (go-binance v2.8.12's routed
// endpoint), at most 200 symbols a connection (Binance allows 1024; the
// limit keeps the URL short); more symbols open more connections. COIN-M:
// dstream serves the mark price every 3 s only (no @1s), and go-binance's
// delivery package has no combined mark-price stream (its pair stream,
// markPrice@arr, is not per symbol), so each symbol has a connection of
// its own (/ws/<symbol>@markPrice).
//
// go-binance never reconnects; the hub does: jittered exponential backoff
// from 1 s to 30 s (back to 1 s after a connection that lived a minute), a
// reconnect after 5 periods without a frame (5 s USDⓈ-M, 15 s COIN-M), and
// a make-before-break reconnect at 23 h 30 min, before Binance's forced
// disconnect at 24 h. Each connection attempt goes through the pacing of
// wsdial.go. The accounts watching a lost connection's symbols hear it once
// (and again when it is back); frames that cannot be decoded or carry no
// valid price are logged (at most once per 10 s) and skipped, and the
// connection is kept.
//
// Routing a tick to the accounts allocates nothing (about 0.1 µs for one
// account, 1.6 µs for 100: BenchmarkMarkRoute). Decoding a frame does
// allocate: about 0.5 KB in 13 allocations for a combined USDⓈ-M frame,
// 0.4 KB in 10 for a raw COIN-M one (BenchmarkMarkDecode; go-binance's own
// combined handler took 3 KB in 61), and a whole frame over loopback,
// websocket read included, about 1.1 KB in 19 (BenchmarkMarkStreamLoopback)
// — per symbol and tick, not per account.
//
// # Connections
//
// The streams use go-binance's URLs, dialer (WsGetReadWriteConnection)
// and event types, but not its Ws…Serve functions (wsconn.go): those read
// the endpoint from package variables, which accounts on different
// endpoints would race on, and stopping one of their connections is a data
// race of go-binance's own (its "silent" flag). serveWS is the same read
// loop without either, and finds a half-open connection by a read deadline
// that every message and every server ping moves (Binance pings every 3
// minutes; 10 minutes of silence close it). Connection attempts are paced
// process-wide (wsdial.go): a burst of 10, then one every 1.2 s, inside
// Binance's 300 per 5 minutes per IP.
//
// # Real-time mode
//
// Exchange implements exchanges.Streamer. Stream keeps the account's
// user-data stream: a listen key (POST /fapi/v1/listenKey or
// /dapi/v1/listenKey, weight 1, through the adapter's client, so bans and
// weight apply), kept alive every 30 minutes (a -1125 answer, or a
// listenKeyExpired event, gets a new key and connection), closed on the
// way out; the connection (USDⓈ-M /private/ws?listenKey=…, COIN-M
// dstream /ws/<listenKey>; stream_endpoint replaces scheme and host) goes
// through wsDial. go-binance never reconnects: the adapter does, with
// jittered exponential backoff from 1 s to 60 s (reset by a connection
// that lived a minute), and replaces each connection after 23 hours, the
// new one opened before the old one is closed. A frame that cannot be
// decoded (malformed JSON, an event type go-binance does not know) is
// skipped and logged, at most one warning a minute; the connection stays.
//
// Every successful Snapshot seeds the live view (a copy); Live reads it.
// ACCOUNT_UPDATE sets wallets and positions; ORDER_TRADE_UPDATE and
// ALGO_UPDATE (USDⓈ-M only: COIN-M stops are regular orders) add and
// remove stops by the REST rules; MARGIN_CALL queues a margin_call event;
// the fill of a forced order (LIQUIDATION or ADL, "autoclose-…",
// "adl_autoclose", execution type CALCULATED) queues a liquidation event
// with the ID the forced-order history gives it, and the Snapshot that
// later sees the position gone does not report it again. Mark ticks come
// from the process-wide hub (markTick, marksDown; COIN-M marks tick every
// 3 s, USDⓈ-M every second): notional, PnL and maintenance margin (from
// the cached brackets) are recomputed, the liquidation price stays as last
// read (exact for isolated positions and a pool's only cross position;
// corrected by the next Snapshot otherwise). A pool's figures are
// Binance's totals of the seeding Snapshot moved by its positions' changes
// since, so a tick at the seeding marks gives Binance's own numbers back.
// What the view cannot complete by itself (a new position, a size, margin
// type or isolated wallet change, any wallet change in multi-assets mode,
// whose USD pool would need prices and haircuts, a trailing algo stop,
// whose ALGO_UPDATE lacks its callback) makes Live not ok and runs a
// Snapshot from the stream, at most one per 5 seconds; its events and
// transfers wait for the next Live or Snapshot. Live's snap.Time is the
// newest of the seeding Snapshot, the last user-data message and the last
// tick; an account without positions gets no ticks, so while its user
// stream is up its view is current as of now.
//
// Funding and transfers come through the stream too (ledger.go): an
// ACCOUNT_UPDATE with reason FUNDING_FEE adds each asset's balance change
// (bc) to the pool's funding_paid_24h, a rolling 24h sum seeded by the
// last income read; a transfer reason (DEPOSIT, WITHDRAW, WITHDRAW_REJECT,
// ADMIN_DEPOSIT, ADMIN_WITHDRAW, ASSET_TRANSFER, MARGIN_TRANSFER,
// COIN_SWAP_DEPOSIT, COIN_SWAP_WITHDRAW, AUTO_EXCHANGE: the table of
// income.go, shared with the income types) makes each bc one Transfer,
// ID account/stream/reason/asset/event time, applied once across the
// overlap of a forced reconnect. An income read does not hand out again a
// transfer the stream did (same asset and amount, times within 10
// minutes, paired one to one), and its FUNDING_FEE rows replace the
// stream's entries of the same asset within 5 minutes. In multi-assets
// mode a transfer of an asset the USD pool takes at a price is left to
// the next income read, which the Snapshot then makes.
//
// # Reconciliation
//
// A Snapshot notes the user-data stream's connected period before its
// first request. While the stream has been up since the reads it would
// repeat, a reconciliation reads only what the stream does not keep:
// USDⓈ-M account (5), positionRisk (5) and premiumIndex per symbol (1; 10
// for all from 10 symbols), so that liquidation prices, maintenance
// margins and funding rates are Binance's own; COIN-M account (5),
// positionRisk (1) and premiumIndex (10) every third. Open orders (and
// USDⓈ-M algo orders) come from the live view, which applied every
// ORDER_TRADE_UPDATE and ALGO_UPDATE since they were read: a stop the
// stream cancelled never comes back from an older REST read. Income is
// read hourly as a drift check. The caches (fundingInfo, brackets,
// candles, exchangeInfo) refresh as when polled. After a gap in the
// stream (down at any time since, a new listen key, a restart), and at
// the first Snapshot, the next reconciliation reads income and every
// symbol's orders again; a symbol with an order update the view could not
// apply (a trailing algo stop, a number it could not read) has its orders
// read again by the Snapshot the view asks for. While the stream is down
// the account is polled as above.
//
// Weight per reconciliation, N = 3 symbols, every 5 minutes, measured by
// binancetest (TestReconcileWeight): USDⓈ-M 13 steady, 16.2 on average
// over two hours (Cost 17 with the listen key's keepalive); COIN-M 6 or 16
// steady, 11.8 on average (Cost 12). Start-up: the first Snapshot as when
// polled (USDⓈ-M 56, COIN-M 47 with 3 symbols) and the listen key (1); a
// first reconciliation after a gap (or after a seed made before the
// stream was up) reads income and every symbol's orders again (USDⓈ-M 49
// with 3 symbols). The Snapshots the view asks for itself (a position
// opened, closed or resized: 10 + N) come on top.
//
// Package binancetest is a fake Binance for tests of this package and of
// the daemon.
package binance
