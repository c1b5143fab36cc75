package binance

import (
	"math"
	"time"

	"github.com/adshao/go-binance/v2/delivery"
	"github.com/adshao/go-binance/v2/futures"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

var _ exchanges.Coster = (*Exchange)(nil)

// estimateSymbols is the number of held symbols assumed before the first
// Snapshot has said (and by Estimate's callers without an adapter): the
// scenario the weight tests measure.
const estimateSymbols = 3

// Cost is this account's draw on its host's request weight, for the
// daemon's plan (watcher/budget): Budget is the exchange and host
// ("binance-usdm fapi.binance.com"), Limit 2,400 a minute, Poll and First
// as Estimate says for the symbols the last Snapshot held (3 before any).
func (e *Exchange) Cost() exchanges.Cost {
	n := int(e.heldSymbols.Load())
	if n < 0 {
		n = estimateSymbols
	}
	return estimate(e.kind, hostOf(e.base), e.spotBase != "" && hostOf(e.spotBase) == hostOf(e.base), e.every, n, e.streamed)
}

// Estimate is the cost of account a holding n distinct symbols (n < 0:
// the default assumption, 3), computed from its configuration alone (no
// network), for `marginwatch check`. It is what Cost reports.
func Estimate(a config.Account, n int) exchanges.Cost {
	if n < 0 {
		n = estimateSymbols
	}
	base := endpointOf(a)
	same := a.Endpoint != "" // one fake or proxy serves the key check too
	return estimate(a.Exchange, hostOf(base), same, snapshotEvery(a), n, a.Stream)
}

// snapshotEvery is how often the daemon takes a Snapshot of a: every
// poll_interval, or every reconcile_interval when it streams.
func snapshotEvery(a config.Account) time.Duration {
	if a.Stream && a.ReconcileInterval > 0 {
		return a.ReconcileInterval
	}
	return a.PollInterval
}

// estimate is the weight formula, derived from what snapshotUSDM and
// snapshotCOINM read (weight_test.go measures it):
//
// USDⓈ-M, N held symbols. Every poll: account 5 + positionRisk 5 + one of
// premiumIndex, openOrders, openAlgoOrders per symbol (1) = 10 + N. The
// first poll reads all three per symbol (premiumIndex for all at once, 10,
// from 10 symbols), fundingInfo 1, klines N, leverage brackets N and
// income 30: 10 + 30 + 1 + 3N + N + N + premium = 41 + 5N below 10
// symbols (56 for N = 3).
//
// COIN-M: account 5 + positionRisk 1 + openOrders N every poll, and
// premiumIndex (10) every third: 6 + N + 10/3 on average. The first poll
// adds exchangeInfo 1, premiumIndex 10, fundingInfo 1, klines N, brackets
// N and income 20: 26 + (12 + 3N with symbols) = 47 for N = 3.
//
// Poll is the average over steady polls every `every`, with the
// time-driven refreshes spread over them: income every 5 minutes (30;
// COIN-M 20), and hourly fundingInfo, klines and brackets (1 + 2N; COIN-M
// exchangeInfo 1 more). First adds 1 for the key check when it goes to the
// same host (a fake or proxy endpoint; in production it goes to the spot
// API, another budget). forceOrders (20 per vanished position) is left
// out: the gate covers it.
//
// Streamed (stream: true), Poll is one reconciliation every `every`
// (reconcile_interval) while the user-data stream keeps open orders,
// funding and transfers: USDⓈ-M account 5 + positionRisk 5 + premiumIndex
// per symbol (1; 10 for all from 10 symbols), no open orders; COIN-M
// account 5 + positionRisk 1 + premiumIndex (10) every third, no open
// orders; income (30; COIN-M 20) hourly instead of every 5 minutes, the
// hourly caches as above, and the listen key's keepalive (1 every 30
// minutes). First adds the listen key (1). Left out: the read after a gap
// in the stream (income and every symbol's orders again, as a first
// poll's), and the Snapshots the live view asks for itself when a
// position opens, closes or changes size (10 + N each).
func estimate(kind, host string, keySameHost bool, every time.Duration, n int, stream bool) exchanges.Cost {
	c := exchanges.Cost{Budget: kind + " " + host, Limit: weightLimit}
	share := func(period time.Duration) float64 {
		if every <= 0 {
			return 1
		}
		return min(1, float64(every)/float64(period))
	}
	var poll float64
	switch kind {
	case COINM:
		if stream {
			poll = 6 + 10.0/3 + 20*share(incomeDrift) + float64(2+2*n)*share(time.Hour)
		} else {
			poll = 6 + float64(n) + 10.0/3 + 20*share(incomeTTL) + float64(2+2*n)*share(time.Hour)
		}
		c.First = 5 + 1 + 20
		if n > 0 {
			c.First += 1 + 10 + n + 1 + n + n
		}
	default:
		premium := min(n, premiumAllWeight)
		if stream {
			poll = 10 + float64(premium) + 30*share(incomeDrift) + float64(1+2*n)*share(time.Hour)
		} else {
			poll = 10 + float64(n) + 30*share(incomeTTL) + float64(1+2*n)*share(time.Hour)
		}
		c.First = 5 + 5 + 30
		if n > 0 {
			c.First += premium + 2*n + 1 + n + n
		}
	}
	if stream {
		poll += share(keepaliveEvery) // PUT listenKey
		c.First++                     // POST listenKey
	}
	c.Poll = int(math.Ceil(poll - 1e-9))
	if keySameHost {
		c.First++
	}
	return c
}

// endpointOf is the futures REST base URL of a, as New chooses it.
func endpointOf(a config.Account) string {
	switch {
	case a.Endpoint != "":
		return a.Endpoint
	case a.Exchange == COINM && a.Testnet:
		return delivery.BaseApiTestnetUrl
	case a.Exchange == COINM:
		return delivery.BaseApiMainUrl
	case a.Testnet:
		return futures.BaseApiTestnetUrl
	default:
		return futures.BaseApiMainUrl
	}
}

// countSymbols is the number of distinct symbols of ps.
func countSymbols(ps []exchanges.Position) int {
	n := 0
	for i := range ps {
		seen := false
		for j := range i {
			if ps[j].Symbol == ps[i].Symbol {
				seen = true
				break
			}
		}
		if !seen {
			n++
		}
	}
	return n
}

// HostWeight is the request weight Binance last reported as used on this
// account's futures host this minute (-1 before any report), for /metrics.
func (e *Exchange) HostWeight() (host string, used int) {
	host = hostOf(e.base)
	l := limitFor(host)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.usedAt.IsZero() {
		return host, -1
	}
	return host, l.used
}
