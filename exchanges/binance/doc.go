// Package binance is the Binance futures adapter: `exchange: binance-usdm`
// (USDⓈ-M, go-binance's futures package) and `exchange: binance-coinm`
// (COIN-M, its delivery package). Each Snapshot is one normalized account
// read whose numbers follow Binance's own definitions, so that the metrics
// match the Binance app.
//
// # What one poll reads
//
// USDⓈ-M, every poll: GET /fapi/v2/account (weight 5: totals, multi-assets
// mode, each position's leverage and margin type), /fapi/v3/positionRisk
// (5: mark and liquidation price as Binance reports them, maintenance
// margin, isolated wallet, margin asset), /fapi/v1/premiumIndex for all
// symbols (1: funding rate and next funding time), and per held symbol
// /fapi/v1/openAlgoOrders (1; Binance moved conditional orders there in
// December 2025) plus /fapi/v1/openOrders (1) only when the algo orders leave
// a position of that symbol without a stop. Cached: /fapi/v1/fundingInfo
// (hourly; unlisted symbols fund every 8h), /fapi/v1/klines 1h (per symbol,
// refetched once per closed candle, 99 candles at weight 1) and FUNDING_FEE
// /fapi/v1/income over 24h (30, at most every 5 minutes). A steady poll
// costs 11 + 1 to 2 per held symbol; see the report in usdm_test.go.
//
// COIN-M reads /dapi/v1/account (5), /dapi/v1/positionRisk (1),
// /dapi/v1/premiumIndex (10) and /dapi/v1/openOrders per symbol (1), with
// exchangeInfo (contract sizes), fundingInfo, klines and income cached the
// same way. go-binance's delivery package has no premiumIndex or income
// service, so those are sent here, signed exactly as go-binance signs.
//
// Leverage brackets are not read: positionRisk (USDⓈ-M) and account
// (COIN-M) report each position's maintenance margin as Binance computes it,
// which is what the brackets would only reproduce.
//
// # Numbers
//
// The account margin_ratio is the cross margin ratio of the Binance app:
// maintenance margin of the cross positions (totalMaintMargin minus the
// isolated positions') over totalCrossWalletBalance + totalCrossUnPnl. An
// isolated position's ratio uses its own maintenance margin over its
// isolated wallet + unrealized PnL. In single-asset mode Binance's account
// totals are USDT's; in multi-assets mode they are in USD. COIN-M has one
// balance per margin coin; notional is contracts × contract size / mark, in
// the coin, and PnL is Binance's.
//
// has_stop_loss: a STOP, STOP_MARKET or TRAILING_STOP_MARKET on the closing
// side of the position; in one-way mode it must be reduce-only or
// close-position (or it could open the other way), in hedge mode a SELL on
// the LONG side or a BUY on the SHORT side.
//
// # Rate limits and failures
//
// Every request goes through a RoundTripper that reads
// X-MBX-USED-WEIGHT-1M (UsedWeight), and on 429 or 418 sends nothing more to
// that host until Retry-After has passed (shared by every account on the
// host, as Binance limits per IP); polls meanwhile fail with a
// *RateLimitError and the data-stale rule tells the user. Above 80% of the
// 2,400 weight a minute, caches are not refreshed until the next minute.
// A -1021 (clock drift) re-syncs the time offset and retries once. A
// rejected key (-2014, -2015, -2008, -1022, HTTP 401) fails Snapshot with a
// *KeyError wrapping exchanges.ErrPermanent and queues one key_problem event
// per occurrence (PendingEvents). CheckKey refuses keys that can withdraw,
// or trade without allow_trading_key. Keys and secrets never appear in
// errors or logs.
//
// Package binancetest is a fake Binance for tests of this package and of
// the daemon.
package binance
