package bybit

import (
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// ipLimitPerMinute is Bybit's per-IP limit (600 requests / 5 s) per minute:
// Bybit counts requests, not weights, so one request costs 1.
const ipLimitPerMinute = ipLimit * int(time.Minute/ipWindow)

const estimateSymbols = 3

// Cost is this account's draw on its host's request budget (requests per
// minute; see Estimate).
func (e *Exchange) Cost() exchanges.Cost {
	n := int(e.heldSymbols.Load())
	if n < 0 {
		n = estimateSymbols
	}
	return estimate(hostOf(e.base), e.every, n)
}

// Estimate is the cost of account a holding n symbols (n < 0: 3), from its
// configuration alone.
func Estimate(a config.Account, n int) exchanges.Cost {
	if n < 0 {
		n = estimateSymbols
	}
	base := MainnetURL
	if a.Testnet {
		base = TestnetURL
	}
	if a.Endpoint != "" {
		base = a.Endpoint
	}
	return estimate(hostOf(base), snapshotEvery(a), n)
}

// snapshotEvery is how often the daemon reads account a over REST: every
// poll_interval, or every reconcile_interval when it streams (the
// streams then keep the view, and those reads reseed it).
func snapshotEvery(a config.Account) time.Duration {
	if a.Stream && a.ReconcileInterval > 0 {
		return a.ReconcileInterval
	}
	return a.PollInterval
}

// estimate counts requests (what read sends), N held symbols in one settle
// coin. Every poll: wallet-balance 1 + position/list 2 (USDT, USDC) +
// order/realtime 1 per settle coin held (1) + tickers N = 4 + N. Every 5
// minutes account/info 1 and transaction-log 1; every hour instruments-info
// N and kline N; every permission_check_interval (1 h) query-api 1. The
// first poll reads all of them: query-api 1 + 4 + N + 2 + 2N = 7 + 3N.
// Poll is the average per poll with the slower reads spread over the polls
// of their period (rounded up).
func estimate(host string, every time.Duration, n int) exchanges.Cost {
	if every <= 0 {
		every = config.DefaultPollInterval
	}
	per := func(period time.Duration) float64 { return float64(every) / float64(period) }
	steady := float64(4+n) + 2*per(5*time.Minute) + float64(2*n+1)*per(time.Hour)
	poll := int(steady)
	if float64(poll) < steady {
		poll++
	}
	return exchanges.Cost{Budget: "bybit " + host, Limit: ipLimitPerMinute, Poll: poll, First: 7 + 3*n}
}
