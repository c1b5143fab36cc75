// Package simulated is an exchange that needs no network and no key: a
// USDⓈ-M-like account with a fixed book of four positions whose prices and
// funding rates follow a built-in, deterministic scenario. It lets the demo
// configuration (examples/demo.yaml) run the whole pipeline — metrics, rules,
// alerts, notifiers — on a fresh machine, and it gives tests a realistic
// account at any chosen moment.
//
// The book (wallet balance 50,000 USDT):
//
//	BTCUSDT long  isolated 5x 0.075 @ 62,000  stop 49,000 (beyond liquidation: none)  MMR 0.4%
//	ETHUSDT short cross    3x 1.5   @ 3,000   close-position stop 3,300               MMR 0.5%
//	SOLUSDT long  isolated 3x 20    @ 150     reduce-only stop of 20 at 135           MMR 1%
//	BNBUSDT long  cross    2x 5     @ 600     trailing stop of 5 from 570             MMR 0.5%
//
// Scenario time 0 is the moment New is called. Prices and funding rates are
// piecewise-linear functions of scenario time that end after 60 s and then
// hold their final values — a scenario plays once and never loops, so a
// demo shows one incident, not a new one every minute. The first snapshot
// past the end logs, once, that the scenario is over (Exchange.End says
// when), so that a demo user is not left waiting for more.
//
//   - crash: BTC falls from 61,800 to 52,200 and recovers to 61,300. Its
//     liquidation distance starts at 19.4%, passes below 15% at about 10 s and
//     below 7% at about 22.5 s, bottoms at 4.6% (28 s), climbs back above 9%
//     at about 39 s and above 17% at about 47 s, and ends at 18.8%. The other
//     positions move mildly and stay far from liquidation.
//   - funding-spike: calm prices; SOLUSDT's funding rate jumps from 0.01% to
//     0.3% per 8h between 10 s and 15 s, holds until 40 s and is back at 0.01%
//     by 50 s. funding_paid_24h grows with it.
//   - calm: small moves, nothing to alert on except the BTC position's missing
//     stop (its stop rests below the liquidation price, so has_stop_loss is 0).
//
// The account is one USDT margin pool and reports no transfers.
//
// Figures are computed as Binance computes them: unrealized PnL = size ×
// (mark − entry) × side; maintenance margin = notional × MMR − maintenance
// amount; the liquidation price by Binance's one-way-mode formula (see
// liquidationPrice). Candles are 30 closed hourly candles: synthetic but
// deterministic history before scenario time 0, the scenario's own path
// after it.
package simulated
