package hyperliquid

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// What the adapter does not read every poll. metaAndAssetCtxs (20 weight)
// gives the funding rate and max leverage, which move slowly: every
// metaTTL. userFunding (20+) books once an hour: read after every full
// hour, fundingSettle late. A closed 1h candle never changes: a coin's
// candles are read again once a newer one has closed. The hourly reads of
// an account (and coin) come a fixed phase late (phase), so that the
// accounts of one IP do not all read at the full hour.
//
// A cached read never waits on the gate (infoIfRoom) and never fails the
// Snapshot: when the gate is near full, the poll's ctx has ended or the
// read fails, the last data stay and the read is tried again later.
const (
	metaTTL       = 5 * time.Minute
	fundingSettle = 2 * time.Minute
	// fundingSpread and candleSpread bound the phases of the hourly reads:
	// funding_paid_24h books an hour's funding at most 12 minutes after
	// it, and ATR's newest candle is at most half an hour late (a 14-hour
	// average barely moves).
	fundingSpread = 10 * time.Minute
	candleSpread  = 30 * time.Minute
	// candleHours of 1h candles are asked for (one still forming): 99
	// closed ones feed Wilder's ATR(14) as on Binance, for 20 + 1 weight.
	candleHours = 100
	// fundingPageRows: an answer this long may have more after it.
	fundingPageRows = 500
	fundingMaxPages = 5
)

type cache struct {
	metaAt  time.Time
	metaOK  bool
	ctxs    map[string]assetCtx
	metaFor map[string]bool // coins asked about when meta was last read

	fundingNext time.Time // when userFunding is due again
	fundingOK   bool
	funding     []fundingRow // the last 24 h of rows, oldest first

	candles map[string]*candleCache
}

type assetCtx struct {
	mark, funding, maxLeverage float64
	fundingSet                 bool
}

type candleCache struct {
	list []exchanges.Candle
	next time.Time // when a newer candle has closed, plus the coin's phase
}

// phase is the fixed delay, in [0, spread), of this account's hourly read
// of key (a coin, or "" for the account's own): a hash of the account's
// name and address and key, so that it stays put across restarts.
func (e *Exchange) phase(key string, spread time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(e.name + "\x00" + e.address + "\x00" + key))
	return time.Duration(h.Sum64() % uint64(spread))
}

// skipped logs a cached read that failed or was not sent: at debug when
// the gate was near full or the poll's time was over (the next poll tries
// again), else as a warning. It reports whether it was the gate.
func (e *Exchange) skipped(ctx context.Context, msg string, err error, args ...any) (gate bool) {
	args = append(args, "account", e.name, "err", err)
	switch {
	case errors.Is(err, errGateFull):
		e.log.Debug(msg+" (the gate is near full; trying again on a later poll)", args...)
		return true
	case ctx.Err() != nil:
		e.log.Debug(msg+" (the poll's time was over; trying again on the next)", args...)
	default:
		e.log.Warn(msg, args...)
	}
	return false
}

// refreshMeta re-reads metaAndAssetCtxs every metaTTL, or at once for a
// coin held that the last read did not cover. A failure keeps what was
// known (funding_rate absent without it).
func (e *Exchange) refreshMeta(ctx context.Context, now time.Time, coins []string) {
	due := !e.cache.metaOK || now.Sub(e.cache.metaAt) >= metaTTL
	for _, c := range coins {
		if _, ok := e.cache.ctxs[c]; !ok && !e.cache.metaFor[c] {
			due = true
		}
	}
	if !due || ctx.Err() != nil {
		return
	}
	var m metaAndAssetCtxs
	if err := e.infoIfRoom(ctx, infoRequest{Type: "metaAndAssetCtxs"}, &m, nil); err != nil {
		e.skipped(ctx, "funding rates and max leverages not refreshed; using the last known", err)
		return
	}
	ctxs := make(map[string]assetCtx, len(m.Universe))
	for i, u := range m.Universe {
		c := m.Ctxs[i]
		ctxs[u.Name] = assetCtx{mark: c.MarkPx.or(0), funding: c.Funding.V, fundingSet: c.Funding.Set, maxLeverage: u.MaxLeverage.or(0)}
	}
	asked := make(map[string]bool, len(coins))
	for _, c := range coins {
		asked[c] = true
	}
	e.cache.ctxs, e.cache.metaAt, e.cache.metaOK, e.cache.metaFor = ctxs, now, true, asked
}

// refreshFunding reads the last 24 h of userFunding once after every full
// hour (funding is booked hourly), fundingSettle and the account's phase
// late. A failure keeps the last rows, or leaves funding_paid_24h unknown
// before any read.
func (e *Exchange) refreshFunding(ctx context.Context, now time.Time) {
	if e.cache.fundingOK && now.Before(e.cache.fundingNext) || ctx.Err() != nil {
		return
	}
	start := now.Add(-24 * time.Hour).UnixMilli()
	var all []fundingRow
	// Many rows share one hourly timestamp (one per coin), so a page may
	// end inside a timestamp: the next page starts at it again, and the
	// rows already seen are dropped.
	type rowKey struct {
		time       int64
		coin, hash string
	}
	seen := map[rowKey]bool{}
	for range fundingMaxPages {
		var rows []fundingRow
		err := e.infoIfRoom(ctx, infoRequest{Type: "userFunding", User: e.address, StartTime: start}, &rows, func() int { return len(rows) })
		if err != nil {
			if !e.skipped(ctx, "funding history not refreshed; funding_paid_24h uses the last known", err) && ctx.Err() == nil {
				e.cache.fundingNext = now.Add(time.Minute) // try again soon, not every poll
			}
			return
		}
		fresh := 0
		for _, r := range rows {
			k := rowKey{r.Time, r.Delta.Coin, r.Hash}
			if !seen[k] {
				seen[k] = true
				all = append(all, r)
				fresh++
			}
		}
		if len(rows) < fundingPageRows {
			break
		}
		if fresh == 0 {
			e.log.Warn("a userFunding page brought no new rows (a full page of one timestamp?): funding_paid_24h may lack the rows after it", "time", rows[len(rows)-1].Time)
			break
		}
		start = rows[len(rows)-1].Time
	}
	e.cache.funding, e.cache.fundingOK = all, true
	e.cache.fundingNext = now.Truncate(time.Hour).Add(time.Hour + fundingSettle + e.phase("", fundingSpread))
}

// fundingPaid is −Σ usdc of the funding rows of the 24 h before now
// (usdc > 0 is received), NaN before any read.
func (e *Exchange) fundingPaid(now time.Time) float64 {
	if !e.cache.fundingOK {
		return math.NaN()
	}
	from := now.Add(-24 * time.Hour).UnixMilli()
	paid := 0.0
	for _, r := range e.cache.funding {
		if r.Time >= from && (r.Delta.Type == "funding" || r.Delta.Type == "") {
			paid -= r.Delta.Usdc.V
		}
	}
	return paid
}

// refreshCandles reads a held coin's 1h candles when a newer one has
// closed (the coin's phase late), and forgets coins no longer held. A
// failure leaves the coin with its last candles (liq_distance_atr absent
// without).
func (e *Exchange) refreshCandles(ctx context.Context, now time.Time, coins []string) {
	if e.cache.candles == nil {
		e.cache.candles = map[string]*candleCache{}
	}
	keep := map[string]bool{}
	for _, c := range coins {
		keep[c] = true
	}
	for c := range e.cache.candles {
		if !keep[c] {
			delete(e.cache.candles, c)
		}
	}
	for _, coin := range coins {
		if cc := e.cache.candles[coin]; cc != nil && now.Before(cc.next) {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		list, err := e.fetchCandles(ctx, coin, now)
		if err != nil {
			if e.skipped(ctx, "1h candles not refreshed; liq_distance_atr uses the last known", err, "coin", coin) {
				return // the gate is full for the other coins too
			}
			continue
		}
		next := now.Truncate(time.Hour).Add(time.Hour)
		if n := len(list); n > 0 && list[n-1].OpenTime.Add(2*time.Hour).After(now) {
			next = list[n-1].OpenTime.Add(2 * time.Hour)
		}
		e.cache.candles[coin] = &candleCache{list: list, next: next.Add(e.phase(coin, candleSpread))}
	}
}

// fetchCandles reads coin's last candleHours 1h candles and keeps the
// closed ones, oldest first.
func (e *Exchange) fetchCandles(ctx context.Context, coin string, now time.Time) ([]exchanges.Candle, error) {
	end := now.UnixMilli()
	r := infoRequest{Type: "candleSnapshot", Req: &candlesReq{
		Coin: coin, Interval: "1h", StartTime: now.Add(-candleHours * time.Hour).UnixMilli(), EndTime: end,
	}}
	var rows []candle
	if err := e.infoIfRoom(ctx, r, &rows, func() int { return len(rows) }); err != nil {
		return nil, err
	}
	list := make([]exchanges.Candle, 0, len(rows))
	for _, k := range rows {
		if k.Close >= end || (k.Coin != "" && k.Coin != coin) {
			continue // still forming, or not this coin's
		}
		if !k.H.Set || !k.L.Set || !k.C.Set {
			continue
		}
		list = append(list, exchanges.Candle{OpenTime: time.UnixMilli(k.Open), High: k.H.V, Low: k.L.V, Close: k.C.V})
	}
	return list, nil
}
