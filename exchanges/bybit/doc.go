// Package bybit is the adapter of `exchange: bybit`: a Bybit V5 unified
// trading account (UTA), linear USDT and USDC perpetuals, polled over REST
// or, with `stream: true`, kept current by Bybit's websockets.
//
// # Library
//
// github.com/hirokisan/bybit/v2 (v2.39.0, tagged) rather than the official
// github.com/bybit-exchange/bybit.go.api (untagged): it has typed V5
// services for every endpoint we read (account/wallet-balance, account/info,
// account/transaction-log, position/list, order/realtime with orderFilter,
// market/tickers, market/instruments-info with fundingInterval,
// market/kline, user/query-api with readOnly), signs with HMAC and RSA
// keys, takes a base URL and an *http.Client, and surfaces a non-zero
// retCode as *ErrorResponse (10006 and 10018 as *RateLimitV5Error). It
// pulls only go-querystring besides modules we already have (uuid,
// gorilla/websocket). Its gaps and how the adapter closes them: a decoder
// that panics on odd rows (kline), recovered in Exchange.do as a transient
// "malformed response"; query values it encodes, so Bybit's
// already-encoded nextPageCursor is handed over decoded (nextCursor); and
// net/http's redirects, which would carry X-BAPI-API-KEY elsewhere: none
// is followed, a 30x is a transient error.
// The official client returns untyped maps, has no RSA signing and adds
// json-iterator. The library's one gap, requests without a context, is
// closed by giving each call a client whose RoundTripper attaches it
// (client, ctxTransport); its other gap, dropped headers and status codes,
// by the same RoundTripper (transport.go), which reads the rate-limit
// headers, the HTTP status and the retCode before the library does.
//
// # Mapping (SPEC "Margin pools", Bybit)
//
// One pool "USD" from wallet-balance (accountType UNIFIED): equity
// (MarginBalance) = totalEquity; CrossWalletBalance = totalWalletBalance and
// CrossUnPnL = totalMarginBalance − totalWalletBalance, CrossMaintMargin =
// totalMaintenanceMargin, so that the metrics' margin_ratio is
// totalMaintenanceMargin / totalMarginBalance: accountMMRate, which Bybit
// serves truncated to 4 decimals, unrounded. available_balance =
// totalAvailableBalance, unrealized_pnl = totalPerpUPL.
//
// Positions from position/list (category linear, settleCoin USDT and USDC,
// cursor pages): positionIdx 1/2 are the hedge-mode long/short legs, 0 is
// one-way (side Buy long, Sell short); notional = size × markPrice
// (positionValue is at the entry price); liqPrice "" (none, or outside the
// price band) is 0; margin type is isolated when account/info says
// ISOLATED_MARGIN (tradeMode is deprecated, always 0; 1 is still read as
// isolated), and then the position's own ratio is positionMM /
// (positionIM + unrealisedPnl). Funding: tickers fundingRate and
// nextFundingTime, interval from instruments-info fundingInterval
// (minutes). Stops: the position's stopLoss (close-position), and
// conditional orders on the closing side (stops.go). funding_paid_24h is
// −Σ `funding` of transaction-log SETTLEMENT rows over 24 h (Bybit: funding
// positive when received). Candles: market/kline interval 60, newest
// first, the open candle dropped.
//
// # Limits
//
// Bybit counts requests, not weights: 600 per 5 s per IP (then HTTP 403
// and a ban of at least 10 minutes), and per UID and endpoint per second
// (position/list, wallet-balance, order/realtime 50/s; transaction-log
// 25/s; query-api 10/s), reported in X-Bapi-Limit-Status and
// X-Bapi-Limit-Reset-Timestamp. retCode 10006 or 10018 (with HTTP 200)
// stops every request to the host until the reset time, HTTP 403 for 10
// minutes; all are bans the daemon persists (BanKeeper). The gate holds requests above
// 80% of 600 per 5 s until the next window.
//
// # Streams (stream: true)
//
// The private stream (stream_endpoint + /v5/private; wss://stream.bybit.com,
// testnet wss://stream-testnet.bybit.com) is authenticated with
// {"op":"auth","args":[key, expires, signature]} (hex HMAC-SHA256 of
// "GET/realtime"+expires, base64 RSA-SHA256 for an RSA key) and subscribes
// position, wallet and order; the rows go through the REST mapping
// (balanceOf, positionOf, stopsFor). A refused auth ends Stream with an
// *AuthError (ErrPermanent): the daemon polls. The public stream
// (/v5/public/linear) carries tickers.{SYMBOL} of the held symbols on one
// connection per host for every bybit account of the process (tickerhub.go),
// open while some account holds a position, logging to SetHubLogger's
// logger; deltas carry only changed fields and are merged into the last
// snapshot.
// A tick reprices the symbol's positions (notional = size × mark, PnL =
// size × (mark − entry), funding) and moves the USD pool's PnL and equity
// by the same amount; maintenance margin and liqPrice stay as last pushed
// or read. Both streams send {"op":"ping"} every 20 s and a connection
// silent for 30 s (no pong) is closed; the view is then not trusted
// (Live ok false) and the daemon polls. Connection attempts are paced
// process-wide (10, then one a second) and retried with jittered backoff.
// A new private connection (and a position on a symbol the view did not
// hold, or a row it cannot read) makes the view wait for a REST read,
// which the adapter runs itself; private rows that raced a read are
// journaled and applied again on top of it.
//
// Websocket library: github.com/coder/websocket rather than
// hirokisan/bybit's client. The library's V5 websocket services install a
// SIGINT handler (signal.NotifyContext), ping and close from a second
// goroutine on a gorilla connection that allows one writer (a data race
// on stop), fix the read deadline at 60 s, fail the whole connection on a
// topic they do not know, and leave no room for our reconnect and pacing.
// coder/websocket (already ours for the fakes) has concurrent-safe writes,
// context-bound reads (our silence deadline) and CloseNow.
//
// Requests: a streamed account reads REST only to reconcile
// (reconcile_interval, the same requests as a poll: 4 + N every time,
// account/info and transaction-log every 5 minutes, instruments-info and
// kline hourly; 10 per reconciliation at N = 3 and 5 minutes), plus the
// reads the view asks for after a reconnect or a new symbol.
package bybit
