package hyperliquid

import (
	"math"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// estimateCoins is the number of held coins assumed before the first
// Snapshot has said.
const estimateCoins = 3

// Cost is this account's draw on its host's weight (1,200 a minute per IP)
// for the daemon's plan (watcher/budget); Budget is "hyperliquid <host>".
// A streamed account's Poll is one reconciliation (a Snapshot every
// reconcile_interval); an account past the 10 streamed addresses per IP
// is polled, and costs a poll every poll_interval.
func (e *Exchange) Cost() exchanges.Cost {
	n := int(e.held.Load())
	if n < 0 {
		n = estimateCoins
	}
	every := e.every
	if e.streamed.Load() && e.reconcile > 0 {
		every = e.reconcile // streamed: a Snapshot per reconciliation
	}
	return estimate(e.host, every, n)
}

// Estimate is the cost of account a holding n coins (n < 0: 3), from its
// configuration alone, for `marginwatch check`. It is what Cost reports
// (config.Load turns stream: true off for accounts past the 10 streamed
// addresses per IP).
func Estimate(a config.Account, n int) exchanges.Cost {
	if n < 0 {
		n = estimateCoins
	}
	host := config.HyperliquidHost(a)
	every := a.PollInterval
	if a.Stream && a.ReconcileInterval > 0 {
		every = a.ReconcileInterval
	}
	return estimate(host, every, n)
}

// estimate is the weight formula, from what Snapshot reads
// (weight_test.go measures it). Every poll: clearinghouseState 2 +
// frontendOpenOrders 20 = 22. Spread over the polls: metaAndAssetCtxs 20
// every 5 minutes; userFunding 20 (+1 per 20 rows: 24 × n rows a day)
// hourly; candleSnapshot 21 (100 candles: +1 per 60) per coin hourly.
// First = 22 + 20 + 20 + n/… + 21n.
func estimate(host string, every time.Duration, n int) exchanges.Cost {
	share := func(period time.Duration) float64 {
		if every <= 0 {
			return 1
		}
		return min(1, float64(every)/float64(period))
	}
	funding := float64(20 + 24*n/20)
	poll := 22 + 20*share(metaTTL) + funding*share(time.Hour) + float64(21*n)*share(time.Hour)
	return exchanges.Cost{
		Budget: Name + " " + host,
		Limit:  weightLimit,
		Poll:   int(math.Ceil(poll - 1e-9)),
		First:  22 + 20 + int(funding) + 21*n,
	}
}
