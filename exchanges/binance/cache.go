package binance

import (
	"context"
	"math"
	"net/url"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Cache lifetimes. Binance changes funding intervals and brackets rarely;
// a closed 1h candle never changes; funding is paid every few hours, so a
// 24h sum read every 5 minutes is exact enough and saves 30 weight a poll.
const (
	fundingInfoTTL = time.Hour
	contractTTL    = time.Hour
	incomeTTL      = 5 * time.Minute
	bracketTTL     = time.Hour
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
	income   map[string]float64 // funding paid over 24h per asset; nil = unknown

	contractAt time.Time
	contracts  map[string]contract // COIN-M exchangeInfo

	brackets map[string]*bracketSet // leverage brackets per held symbol

	symbols map[string]*symbolState // USDⓈ-M per-symbol reads, refreshed in turn

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

// refreshIncome re-reads the FUNDING_FEE income of the last 24h every
// 5 minutes. A failure keeps the last sums (or none: funding_paid_24h absent).
//
// Binance returns at most 1,000 rows a request, oldest first, so the window
// is read page by page, each starting at the time of the previous page's
// last row. Funding is booked for every symbol at the same instant, so that
// row's millisecond may continue on the next page: the next page starts at
// it (not after it) and rows already counted are recognised by tranId. At
// most incomeMaxPages pages are read (30 weight each); beyond that the sum
// covers only the oldest part of the window and a warning says so.
func (e *Exchange) refreshIncome(ctx context.Context, now time.Time, hot bool) error {
	if hot || (e.cache.income != nil && now.Sub(e.cache.incomeAt) < incomeTTL) {
		return nil
	}
	start := now.Add(-24 * time.Hour).UnixMilli()
	seen := map[string]bool{}
	var rows []incomeRow
	for page := 1; ; page++ {
		got, err := e.incomePage(ctx, start)
		if err != nil {
			if isKeyOrCtx(ctx, err) {
				return err
			}
			e.log.Warn("funding income not refreshed; funding_paid_24h uses the last known", "err", err)
			return nil
		}
		fresh := 0
		last := start
		for _, r := range got {
			last = max(last, r.time)
			if seen[r.id] {
				continue
			}
			seen[r.id] = true
			fresh++
			if r.typ == "FUNDING_FEE" {
				rows = append(rows, r)
			}
		}
		if len(got) < incomePageLimit {
			break
		}
		if page == incomeMaxPages {
			e.log.Warn("funding income has more rows than the adapter reads; funding_paid_24h covers only part of the last 24h",
				"pages", page, "rows", len(seen), "covered_until", ms(last).Format(time.RFC3339))
			break
		}
		start = last
		if fresh == 0 {
			// A whole page within one millisecond: step past it rather than
			// read it forever.
			start = last + 1
		}
	}
	p := parser{op: "GET income"}
	sums := map[string]float64{}
	for _, r := range rows {
		// Income is what the account received: a paid fee is negative.
		sums[r.asset] -= p.f("income", r.income)
	}
	if p.err != nil {
		e.log.Warn("funding income not refreshed", "err", p.err)
		return nil
	}
	e.cache.income, e.cache.incomeAt = sums, now
	return nil
}

// incomeRow is one row of the income history.
type incomeRow struct {
	id, typ, asset, income string
	time                   int64
}

// incomePage reads up to incomePageLimit FUNDING_FEE rows from start (ms,
// inclusive), oldest first.
func (e *Exchange) incomePage(ctx context.Context, start int64) ([]incomeRow, error) {
	var rows []incomeRow
	if e.fc != nil {
		err := e.do(ctx, "GET /fapi/v1/income", func(ctx context.Context) error {
			res, err := e.fc.NewGetIncomeHistoryService().IncomeType("FUNDING_FEE").StartTime(start).Limit(incomePageLimit).Do(ctx)
			for _, r := range res {
				if r != nil {
					rows = append(rows, incomeRow{id: itoa(r.TranID), typ: r.IncomeType, asset: r.Asset, income: r.Income, time: r.Time})
				}
			}
			return err
		})
		return rows, err
	}
	// go-binance's delivery package has no income service, and the futures
	// one mis-reads COIN-M's string tranId: read it here.
	var res []struct {
		Asset      string `json:"asset"`
		Income     string `json:"income"`
		IncomeType string `json:"incomeType"`
		Time       int64  `json:"time"`
		TranID     string `json:"tranId"`
	}
	q := url.Values{"incomeType": {"FUNDING_FEE"}, "startTime": {itoa(start)}, "limit": {itoa(incomePageLimit)}}
	err := e.do(ctx, "GET /dapi/v1/income", func(ctx context.Context) error {
		return e.get(ctx, e.base, "/dapi/v1/income", q, true, &res)
	})
	for _, r := range res {
		rows = append(rows, incomeRow{id: r.TranID, typ: r.IncomeType, asset: r.Asset, income: r.Income, time: r.Time})
	}
	return rows, err
}

// fundingPaid is the cached 24h funding of asset ("" sums every asset), NaN
// when unknown.
func (c *cache) fundingPaid(asset string) float64 {
	if c.income == nil {
		return math.NaN()
	}
	if asset != "" {
		return c.income[asset]
	}
	var sum float64
	for _, v := range c.income {
		sum += v
	}
	return sum
}
