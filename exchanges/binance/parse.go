package binance

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// parser reads Binance's decimal strings, remembering the first bad one so
// that a whole response is checked before the adapter gives up on it.
type parser struct {
	op  string
	err error
}

// f parses s; "" (a field Binance left empty) is 0.
func (p *parser) f(field, s string) float64 {
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		if p.err == nil {
			p.err = fmt.Errorf("%s: malformed response from Binance: %s is %q, not a number", p.op, field, s)
		}
		return 0
	}
	return v
}

// sideOf maps Binance's positionSide and signed amount to a side. In
// one-way mode (BOTH) the sign tells; in hedge mode the position side does.
func sideOf(positionSide string, amt float64) exchanges.Side {
	switch positionSide {
	case "LONG":
		return exchanges.Long
	case "SHORT":
		return exchanges.Short
	}
	if amt < 0 {
		return exchanges.Short
	}
	return exchanges.Long
}

// order is the part of an open order (regular or algo) that decides whether
// and how it stops a loss.
type order struct {
	typ           string
	side          string // BUY | SELL
	positionSide  string // BOTH | LONG | SHORT
	reduceOnly    bool
	closePosition bool
	// trigger is stopPrice (regular) or triggerPrice (algo); activate and
	// rate (callback, in percent) are a trailing stop's.
	trigger, activate, rate float64
	// qty is what is left to fill: origQty − executedQty (regular) or
	// quantity (algo), in the position's size unit.
	qty float64
	// id is the orderId (regular) or algoId (algo, with algo set): the
	// user-data stream's updates name orders by it (live.go).
	id   int64
	algo bool
}

// isStop: the order types that stop a loss. TAKE_PROFIT and plain limit
// orders close positions too, but at a profit or at a price the market may
// never trade through.
func isStop(t string) bool {
	return t == "STOP" || t == "STOP_MARKET" || t == "TRAILING_STOP_MARKET"
}

// protects reports whether o is a stop on the closing side of the position
// (side, positionSide). One-way mode (BOTH): the order must be reduce-only or
// close-position, or it could open a position the other way. Hedge mode:
// Binance takes no reduce-only flag there; a SELL on the LONG side (BUY on
// the SHORT side) can only close.
func protects(o order, side exchanges.Side, positionSide string) bool {
	if !isStop(o.typ) {
		return false
	}
	closing := "SELL"
	if side == exchanges.Short {
		closing = "BUY"
	}
	if o.side != closing {
		return false
	}
	if positionSide == "LONG" || positionSide == "SHORT" {
		return o.positionSide == positionSide
	}
	return (o.positionSide == "BOTH" || o.positionSide == "") && (o.reduceOnly || o.closePosition)
}

// stopOf is o as a Stop of a position on side at mark, and false when it
// protects nothing yet. A trailing stop with an activation price arms only
// once the market reaches it (a long's sells above the market when placed):
// until the mark has, it guards nothing on the way to liquidation; past it
// it fires rate% against the position from the best price since, which is
// at least the activation price, so that price less rate% is where it fires
// at the latest. Without an activation price it is armed at once and would
// fire rate% against the position from the mark (below it for a long, above
// it for a short). Its stopPrice, when Binance shows one, moves with the
// market and is not used.
func stopOf(o order, side exchanges.Side, mark float64) (exchanges.Stop, bool) {
	s := exchanges.Stop{Trigger: o.trigger, Quantity: o.qty, ClosePosition: o.closePosition}
	if o.typ == "TRAILING_STOP_MARKET" {
		s.Trailing = true
		switch {
		case o.activate > 0:
			if mark > 0 && side.Sign()*(mark-o.activate) < 0 {
				return s, false // not armed: the market has not reached it
			}
			s.Trigger = o.activate * (1 - side.Sign()*o.rate/100)
		case mark > 0:
			s.Trigger = mark * (1 - side.Sign()*o.rate/100)
		}
	}
	return s, true
}

// held is one position being built, with what protects needs.
type held struct {
	exchanges.Position
	positionSide string
}

// addStops appends to the positions of symbol the stops of os that protect them.
func addStops(hs []held, symbol string, os []order) {
	for i := range hs {
		h := &hs[i]
		if h.Symbol != symbol {
			continue
		}
		for _, o := range os {
			if !protects(o, h.Side, h.positionSide) {
				continue
			}
			if s, ok := stopOf(o, h.Side, h.MarkPrice); ok {
				h.Stops = append(h.Stops, s)
			}
		}
	}
}

// symbolsOf returns the distinct symbols of hs in first-seen order.
func symbolsOf(hs []held) []string {
	var out []string
	seen := map[string]bool{}
	for i := range hs {
		if !seen[hs[i].Symbol] {
			seen[hs[i].Symbol] = true
			out = append(out, hs[i].Symbol)
		}
	}
	return out
}

// ms converts Binance milliseconds to a time (zero for 0).
func ms(v int64) time.Time {
	if v <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
