// Package bybit is the adapter of `exchange: bybit`: a Bybit V5 unified
// trading account (UTA), linear USDT and USDC perpetuals, polled over REST
// (no websocket yet).
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
// retCode as *ErrorResponse (10006 as *RateLimitV5Error). It pulls only
// go-querystring besides modules we already have (uuid, gorilla/websocket).
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
// X-Bapi-Limit-Reset-Timestamp. retCode 10006 (with HTTP 200) stops every
// request to the host until the reset time; HTTP 403 for 10 minutes; both
// are bans the daemon persists (BanKeeper). The gate holds requests above
// 80% of 600 per 5 s until the next window.
package bybit
