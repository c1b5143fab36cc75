package binance

import (
	"context"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Cache lifetimes. Binance changes funding intervals and brackets rarely;
// a closed 1h candle never changes; funding is paid every few hours, so
// income read every 5 minutes is exact enough and saves 30 weight a poll
// (a wallet that moves while the positions stay put brings it forward:
// see income.go).
const (
	fundingInfoTTL = time.Hour
	contractTTL    = time.Hour
	incomeTTL      = 5 * time.Minute
	// incomeOverlap: each income read starts this long before the newest
	// row already read, in case Binance books a row late; rows read twice
	// are recognised by type, asset and tranId.
	incomeOverlap = 2 * time.Minute
	// incomeMinGap bounds the income reads a moved wallet brings forward.
	incomeMinGap = time.Minute
	bracketTTL   = time.Hour
	// incomePageLimit is the most rows one income request returns;
	// incomeMaxPages bounds the pages read per refresh (30 weight each).
	incomePageLimit = 1000
	incomeMaxPages  = 10
	// klineLimit closed 1h candles feed Wilder's ATR(14); below 100 a
	// klines request costs weight 1 (2 from 100). One is the open candle.
	klineLimit = 99
)

// defaultFundingInterval applies to symbols fundingInfo does not list.
const defaultFundingInterval = 8 * time.Hour

// cache holds what the adapter does not re-read every poll.
type cache struct {
	fundingAt time.Time
	funding   map[string]time.Duration // symbols with a non-default interval

	klines map[string]*candles

	incomeAt time.Time
	incomeOK bool        // an income read has succeeded
	inc      incomeState // the incremental income read (income.go)

	contractAt time.Time
	contracts  map[string]contract // COIN-M exchangeInfo

	brackets map[string]*bracketSet // leverage brackets per held symbol

	symbols map[string]*symbolState // USDⓈ-M per-symbol reads, refreshed in turn

	// ordersPeriod is the user-data stream's period when each COIN-M
	// symbol's open orders were last read (0: the stream was down).
	ordersPeriod map[string]uint64

	premium      map[string]premiumRow // COIN-M premiumIndex by symbol
	premiumAt    time.Time             // when premium was read
	premiumPolls int                   // polls served from premium since
	premiumAsked map[string]bool       // held symbols when premium was read
}

// premiumKnown reports whether symbol was held when premiumIndex was last
// read (listed or not).
func (c *cache) premiumKnown(symbol string) bool { return c.premiumAsked[symbol] }

// premiumRow is what a COIN-M poll needs of premiumIndex.
type premiumRow struct {
	rate        float64
	nextFunding time.Time
	mark        float64
}

// candles is the cached closed 1h candles of one symbol.
type candles struct {
	list []exchanges.Candle
	// next is when the candle after the newest cached one closes: the cache
	// is fresh until then.
	next time.Time
}

// contract is the part of COIN-M exchangeInfo the adapter needs.
type contract struct {
	size        float64
	marginAsset string
}

// fundingInterval is the funding interval of symbol.
func (c *cache) fundingInterval(symbol string) time.Duration {
	if d, ok := c.funding[symbol]; ok && d > 0 {
		return d
	}
	return defaultFundingInterval
}

// refreshFunding re-reads the funding intervals when they are older than an
// hour. A failure keeps the old ones (or the 8h default) and is logged: the
// interval only scales funding_apr_pct.
func (e *Exchange) refreshFunding(ctx context.Context, now time.Time, hot bool) error {
	if hot || (e.cache.funding != nil && now.Sub(e.cache.fundingAt) < fundingInfoTTL) {
		return nil
	}
	m := map[string]time.Duration{}
	var err error
	if e.fc != nil {
		err = e.do(ctx, "GET /fapi/v1/fundingInfo", func(ctx context.Context) error {
			res, err := e.fc.NewFundingRateInfoService().Do(ctx)
			for _, r := range res {
				if r != nil && r.FundingIntervalHours > 0 {
					m[r.Symbol] = time.Duration(r.FundingIntervalHours) * time.Hour
				}
			}
			return err
		})
	} else {
		err = e.do(ctx, "GET /dapi/v1/fundingInfo", func(ctx context.Context) error {
			res, err := e.dc.NewGetFundingInfoService().Do(ctx)
			for _, r := range res {
				if r != nil && r.FundingIntervalHours > 0 {
					m[r.Symbol] = time.Duration(r.FundingIntervalHours) * time.Hour
				}
			}
			return err
		})
	}
	if err != nil {
		if isKeyOrCtx(ctx, err) {
			return err
		}
		e.log.Warn("funding intervals not refreshed; using the last known (8h by default)", "err", err)
		return nil
	}
	e.cache.funding, e.cache.fundingAt = m, now
	return nil
}

// refreshCandles makes sure every symbol has its closed 1h candles, fetching
// a symbol again only once a newer candle has closed, and forgets symbols no
// longer held so the cache does not grow. A failure leaves the symbol
// without candles (liq_distance_atr absent) until the next poll.
func (e *Exchange) refreshCandles(ctx context.Context, symbols []string, now time.Time, hot bool) error {
	if e.cache.klines == nil {
		e.cache.klines = map[string]*candles{}
	}
	keep := map[string]bool{}
	for _, s := range symbols {
		keep[s] = true
	}
	for s := range e.cache.klines {
		if !keep[s] {
			delete(e.cache.klines, s)
		}
	}
	for _, s := range symbols {
		c := e.cache.klines[s]
		if hot || (c != nil && now.Before(c.next)) {
			continue
		}
		list, err := e.fetchCandles(ctx, s, now)
		if err != nil {
			if isKeyOrCtx(ctx, err) {
				return err
			}
			e.log.Warn("1h candles not refreshed; liq_distance_atr uses the last known", "symbol", s, "err", err)
			continue
		}
		next := now.Truncate(time.Hour).Add(time.Hour)
		if n := len(list); n > 0 {
			next = list[n-1].OpenTime.Add(2 * time.Hour)
		}
		e.cache.klines[s] = &candles{list: list, next: next}
	}
	return nil
}

// fetchCandles reads the latest 1h candles of symbol and keeps the closed ones.
func (e *Exchange) fetchCandles(ctx context.Context, symbol string, now time.Time) ([]exchanges.Candle, error) {
	type kline struct {
		open, closeT     int64
		high, low, close string
	}
	var ks []kline
	var err error
	if e.fc != nil {
		err = e.do(ctx, "GET /fapi/v1/klines", func(ctx context.Context) error {
			res, err := e.fc.NewKlinesService().Symbol(symbol).Interval("1h").Limit(klineLimit).Do(ctx)
			for _, k := range res {
				if k != nil {
					ks = append(ks, kline{k.OpenTime, k.CloseTime, k.High, k.Low, k.Close})
				}
			}
			return err
		})
	} else {
		err = e.do(ctx, "GET /dapi/v1/klines", func(ctx context.Context) error {
			res, err := e.dc.NewKlinesService().Symbol(symbol).Interval("1h").Limit(klineLimit).Do(ctx)
			for _, k := range res {
				if k != nil {
					ks = append(ks, kline{k.OpenTime, k.CloseTime, k.High, k.Low, k.Close})
				}
			}
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	p := parser{op: "GET klines " + symbol}
	list := make([]exchanges.Candle, 0, len(ks))
	nowMs := now.UnixMilli()
	for _, k := range ks {
		if k.closeT >= nowMs {
			continue // the candle still forming
		}
		list = append(list, exchanges.Candle{OpenTime: ms(k.open), High: p.f("high", k.high), Low: p.f("low", k.low), Close: p.f("close", k.close)})
	}
	if p.err != nil {
		return nil, p.err
	}
	return list, nil
}
