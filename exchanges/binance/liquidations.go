package binance

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Polling cannot see a liquidation, only a position that is gone. When one
// disappears, Binance's forced-order history (GET /fapi/v1/forceOrders or
// /dapi/v1/forceOrders, signed, weight 20 with a symbol) tells whether
// Binance closed it: a liquidation (clientOrderId "autoclose-…") or
// auto-deleveraging ("adl_autoclose"). Both come in one request when
// autoCloseType is left out. go-binance's futures service always sends
// autoCloseType (empty when unset) and its delivery package has none, so
// the adapter sends the request itself.
const (
	// liqSlack reaches back before the last poll that saw the position, for
	// the difference between our clock and Binance's.
	liqSlack = 10 * time.Second
	// liqWindow is the longest span forceOrders answers for (7 days).
	liqWindow = 7*24*time.Hour - time.Hour
	// liqGiveUp is how long a disappearance may keep the polls failing
	// while forceOrders cannot be asked: past it, the position counts as
	// closed (a warning says the liquidation check failed), so that one
	// unanswerable question does not leave the account blind for good.
	liqGiveUp = 2 * time.Minute
	// forceOrdersLimit is the most rows one request returns.
	forceOrdersLimit = 100
)

// seenPos is a position of the last successful Snapshot.
type seenPos struct {
	symbol string
	side   exchanges.Side
	at     time.Time // the poll that last saw it
}

func posKey(symbol string, side exchanges.Side) string { return symbol + "/" + string(side) }

// forceOrder is one row of forceOrders (USDⓈ-M and COIN-M alike for the
// fields read here).
type forceOrder struct {
	OrderID       int64  `json:"orderId"`
	Symbol        string `json:"symbol"`
	ClientOrderID string `json:"clientOrderId"`
	AvgPrice      string `json:"avgPrice"`
	ExecutedQty   string `json:"executedQty"`
	Side          string `json:"side"`
	PositionSide  string `json:"positionSide"`
	Time          int64  `json:"time"`
	UpdateTime    int64  `json:"updateTime"`
}

// closes is the side of the position the order closed: the positionSide in
// hedge mode; in one-way mode (BOTH) a SELL closes a long, a BUY a short.
func (o *forceOrder) closes() exchanges.Side {
	switch strings.ToUpper(o.PositionSide) {
	case "LONG":
		return exchanges.Long
	case "SHORT":
		return exchanges.Short
	}
	if strings.EqualFold(o.Side, "SELL") {
		return exchanges.Long
	}
	return exchanges.Short
}

// adl reports whether the order is auto-deleveraging rather than a
// liquidation.
func (o *forceOrder) adl() bool { return strings.HasPrefix(o.ClientOrderID, "adl_") }

// liquidations adds a liquidation event to snap for every position of the
// previous successful Snapshot that is gone from snap and that Binance
// closed by force since it was last seen. It asks only on a disappearance.
// When it cannot ask, the Snapshot fails (transient) and remembers the
// positions as they were, so the next poll examines the disappearance
// again rather than letting it pass as an ordinary close: the rules close a
// position's alerts as liquidated only when the event comes with the
// disappearance.
func (e *Exchange) liquidations(ctx context.Context, snap *exchanges.Snapshot) error {
	now := snap.Time
	held := make(map[string]seenPos, len(snap.Positions))
	for _, p := range snap.Positions {
		held[posKey(p.Symbol, p.Side)] = seenPos{symbol: p.Symbol, side: p.Side, at: now}
	}
	gone := map[string][]seenPos{}
	for k, s := range e.lastHeld {
		if _, ok := held[k]; !ok {
			gone[s.symbol] = append(gone[s.symbol], s)
		}
	}
	symbols := make([]string, 0, len(gone))
	for s := range gone {
		symbols = append(symbols, s)
	}
	sort.Strings(symbols)
	var events []exchanges.Event
	for _, sym := range symbols {
		ps := gone[sym]
		since := ps[0].at
		for _, p := range ps[1:] {
			if p.at.Before(since) {
				since = p.at
			}
		}
		since = since.Add(-liqSlack)
		if oldest := now.Add(-liqWindow); since.Before(oldest) {
			since = oldest
		}
		rows, err := e.forceOrders(ctx, sym, since)
		var ae *APIError
		switch {
		case err == nil:
			delete(e.liqFailing, sym)
		case errors.As(err, &ae) && ae.Code == codeInvalidSymbol:
			// A delivered quarterly or a delisted symbol: Binance no longer
			// lists it, so it has no forced orders to show.
			e.log.Info("a position disappeared with its symbol, which Binance no longer lists; counting it as closed", "symbol", sym)
		case isKeyOrCtx(ctx, err):
			return err
		default:
			if e.liqFailing == nil {
				e.liqFailing = map[string]time.Time{}
			}
			first, ok := e.liqFailing[sym]
			if !ok {
				first = now
				e.liqFailing[sym] = now
			}
			if now.Sub(first) < liqGiveUp {
				return fmt.Errorf("%w (a %s position disappeared; asked whether Binance liquidated it)", err, sym)
			}
			delete(e.liqFailing, sym)
			e.log.Warn("could not ask Binance whether a position that disappeared was liquidated; counting it as closed", "symbol", sym, "asking_since", first, "err", err)
			rows = nil
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].side < ps[j].side })
		for _, p := range ps {
			// liqKnown: the user-data stream may have reported it already.
			if ev, ok := e.liquidationEvent(p, rows, since); ok && !e.live.liqKnown(e.name, p, rows, now) {
				events = append(events, ev)
			}
		}
	}
	e.lastHeld = held
	snap.Events = append(snap.Events, events...)
	return nil
}

// forceOrders reads the forced orders of symbol from since, oldest first.
func (e *Exchange) forceOrders(ctx context.Context, symbol string, since time.Time) ([]forceOrder, error) {
	path := "/fapi/v1/forceOrders"
	if e.kind == COINM {
		path = "/dapi/v1/forceOrders"
	}
	q := url.Values{"symbol": {symbol}, "startTime": {itoa(since.UnixMilli())}, "limit": {strconv.Itoa(forceOrdersLimit)}}
	var rows []forceOrder
	err := e.do(ctx, "GET "+path, func(ctx context.Context) error {
		rows = nil
		return e.get(ctx, e.base, path, q, true, &rows)
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Time < rows[j].Time })
	return rows, nil
}

// liquidationEvent is the event of position p if rows hold forced orders
// that closed it. Its ID is the last such order's, so that one liquidation
// is reported once however often it is asked about.
func (e *Exchange) liquidationEvent(p seenPos, rows []forceOrder, since time.Time) (exchanges.Event, bool) {
	var (
		mine      []forceOrder
		qty       float64
		liq, adl  bool
		parseFail bool
	)
	for _, o := range rows {
		if (o.Symbol != "" && o.Symbol != p.symbol) || o.closes() != p.side || o.Time < since.UnixMilli() {
			continue
		}
		q, err := strconv.ParseFloat(o.ExecutedQty, 64)
		if err != nil {
			parseFail = true
		} else if q == 0 {
			continue // nothing filled
		}
		qty += q
		mine = append(mine, o)
		if o.adl() {
			adl = true
		} else {
			liq = true
		}
	}
	if len(mine) == 0 {
		return exchanges.Event{}, false
	}
	last := mine[len(mine)-1]
	what := "liquidated by Binance"
	switch {
	case adl && liq:
		what = "liquidated by Binance and auto-deleveraged (ADL)"
	case adl:
		what = "closed by Binance's auto-deleveraging (ADL)"
	}
	at := ms(last.Time)
	if last.UpdateTime > 0 {
		at = ms(last.UpdateTime)
	}
	var msg string
	if len(mine) == 1 {
		msg = fmt.Sprintf("%s %s %s: %s filled at an average %s (order %d at %s)",
			p.symbol, p.side, what, last.ExecutedQty, last.AvgPrice, last.OrderID, at.UTC().Format(time.RFC3339))
	} else {
		filled := strconv.FormatFloat(qty, 'f', -1, 64)
		if parseFail {
			filled = "an unknown quantity"
		}
		msg = fmt.Sprintf("%s %s %s in %d forced orders, %s filled in all; the last at an average %s (order %d at %s)",
			p.symbol, p.side, what, len(mine), filled, last.AvgPrice, last.OrderID, at.UTC().Format(time.RFC3339))
	}
	return exchanges.Event{
		ID:      fmt.Sprintf("%s/liquidation/%s/%s/%d", e.name, p.symbol, p.side, last.OrderID),
		Kind:    exchanges.Liquidation,
		Time:    at,
		Symbol:  p.symbol,
		Side:    p.side,
		Message: msg,
	}, true
}
