package binance

import (
	"context"
	"net/url"
	"sort"
	"time"
)

// bracket is one maintenance-margin tier of a symbol: a position whose size
// lies in [floor, cap) needs size × mmr − cum of maintenance margin. The size
// is the notional in the quote asset on USDⓈ-M (notionalFloor/notionalCap)
// and the quantity in the coin on COIN-M (qtylFloor/qtyCap, so spelt by
// Binance), where cum is in the coin too.
type bracket struct{ floor, cap, mmr, cum float64 }

// bracketSet is the cached brackets of one symbol, ascending.
type bracketSet struct {
	at   time.Time
	list []bracket
}

// maintFor is the maintenance margin of a position of size x under bs, as
// Binance computes it; ok is false without brackets.
func maintFor(bs []bracket, x float64) (m float64, ok bool) {
	if len(bs) == 0 || x <= 0 {
		return 0, false
	}
	b := bs[len(bs)-1] // above the last cap Binance would not have let it grow
	for _, c := range bs {
		if x >= c.floor && x < c.cap {
			b = c
			break
		}
	}
	return max(x*b.mmr-b.cum, 0), true
}

// refreshBrackets reads the leverage brackets of every held symbol that has
// none or whose are older than an hour (weight 1 per symbol), and forgets
// symbols no longer held. A failure keeps the old brackets (or none) and is
// logged: they only stand in for a maintenance margin Binance left out.
func (e *Exchange) refreshBrackets(ctx context.Context, symbols []string, now time.Time, hot bool) error {
	if e.cache.brackets == nil {
		e.cache.brackets = map[string]*bracketSet{}
	}
	keep := map[string]bool{}
	for _, s := range symbols {
		keep[s] = true
	}
	for s := range e.cache.brackets {
		if !keep[s] {
			delete(e.cache.brackets, s)
		}
	}
	for _, s := range symbols {
		if c := e.cache.brackets[s]; hot || (c != nil && now.Sub(c.at) < bracketTTL) {
			continue
		}
		list, err := e.fetchBrackets(ctx, s)
		if err != nil {
			if isKeyOrCtx(ctx, err) {
				return err
			}
			e.log.Warn("leverage brackets not refreshed; using the last known", "symbol", s, "err", err)
			continue
		}
		e.cache.brackets[s] = &bracketSet{at: now, list: list}
	}
	return nil
}

// fetchBrackets reads the brackets of one symbol: go-binance's service on
// USDⓈ-M; on COIN-M, which go-binance lacks, the signed
// GET /dapi/v2/leverageBracket.
func (e *Exchange) fetchBrackets(ctx context.Context, symbol string) ([]bracket, error) {
	var list []bracket
	if e.fc != nil {
		err := e.do(ctx, "GET /fapi/v1/leverageBracket", func(ctx context.Context) error {
			res, err := e.fc.NewGetLeverageBracketService().Symbol(symbol).Do(ctx)
			for _, lb := range res {
				if lb == nil || lb.Symbol != symbol {
					continue
				}
				for _, b := range lb.Brackets {
					list = append(list, bracket{b.NotionalFloor, b.NotionalCap, b.MaintMarginRatio, b.Cum})
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	} else {
		var res []struct {
			Symbol   string `json:"symbol"`
			Brackets []struct {
				QtyCap           float64 `json:"qtyCap"`
				QtyFloor         float64 `json:"qtylFloor"`
				MaintMarginRatio float64 `json:"maintMarginRatio"`
				Cum              float64 `json:"cum"`
			} `json:"brackets"`
		}
		err := e.do(ctx, "GET /dapi/v2/leverageBracket", func(ctx context.Context) error {
			return e.get(ctx, e.base, "/dapi/v2/leverageBracket", url.Values{"symbol": {symbol}}, true, &res)
		})
		if err != nil {
			return nil, err
		}
		for _, lb := range res {
			if lb.Symbol != symbol {
				continue
			}
			for _, b := range lb.Brackets {
				list = append(list, bracket{b.QtyFloor, b.QtyCap, b.MaintMarginRatio, b.Cum})
			}
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].floor < list[j].floor })
	return list, nil
}

// fillMaint sets the maintenance margin of every position Binance reported
// none for (a zero or missing maintMargin with a size, as on v2 positionRisk
// or a COIN-M position the account read did not see yet) from its brackets:
// by notional on USDⓈ-M, by quantity in the coin on COIN-M (Notional is that
// quantity there). Without brackets it stays 0 and a warning says so.
func (e *Exchange) fillMaint(hs []held) {
	for i := range hs {
		h := &hs[i]
		if h.MaintMargin != 0 || h.Size == 0 {
			continue
		}
		x := h.Notional
		if x == 0 && h.ContractSize == 0 {
			x = h.Size * h.MarkPrice
		}
		var bs []bracket
		if c := e.cache.brackets[h.Symbol]; c != nil {
			bs = c.list
		}
		m, ok := maintFor(bs, x)
		if !ok {
			e.log.Warn("maintenance margin unknown: Binance reported none and the leverage brackets are missing", "symbol", h.Symbol)
			continue
		}
		h.MaintMargin = m
	}
}
