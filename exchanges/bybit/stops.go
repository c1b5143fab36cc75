package bybit

import (
	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
)

// stopsFor picks the conditional orders (order/realtime orderFilter=
// StopOrder) that are stop-losses of p: on its closing side (a Sell closes a
// long, a Buy a short; in hedge mode the order's positionIdx names the leg,
// 1 long and 2 short), and either of a stop-loss type (StopLoss,
// PartialStopLoss, TrailingStop) or a reduce-only / close-on-trigger
// conditional that fires as the price moves against p (triggerDirection 2
// falling for a long, 1 rising for a short). Take-profits are not stops.
// Only StopLoss and TrailingStop close the whole position; a partial or
// generic stop without a quantity counts 0. Whether they fire before
// liquidation is the metrics' business.
func stopsFor(p *exchanges.Position, orders []bybitapi.V5GetOrder) []exchanges.Stop {
	var out []exchanges.Stop
	closing, idx, against := bybitapi.SideSell, 1, 2
	if p.Side == exchanges.Short {
		closing, idx, against = bybitapi.SideBuy, 2, 1
	}
	for i := range orders {
		o := &orders[i]
		if string(o.Symbol) != p.Symbol || o.Side != closing {
			continue
		}
		if o.PositionIdx != 0 && o.PositionIdx != idx {
			continue // the other hedge leg's order
		}
		trigger := parse(o.TriggerPrice)
		if !(trigger > 0) {
			continue
		}
		var typed, trailing, full bool
		switch o.StopOrderType {
		case "StopLoss":
			typed, full = true, true
		case "PartialStopLoss":
			typed = true
		case "TrailingStop":
			typed, trailing, full = true, true, true
		case "TakeProfit", "PartialTakeProfit":
			continue
		}
		if !typed && !((o.ReduceOnly || o.CloseOnTrigger) && o.TriggerDirection == against) {
			continue
		}
		// Only StopLoss and TrailingStop close the whole position; any
		// other stop without a quantity covers nothing.
		qty := parse(o.Qty)
		if full || !(qty > 0) {
			qty = 0
		}
		out = append(out, exchanges.Stop{Trigger: trigger, Quantity: qty, ClosePosition: full, Trailing: trailing})
	}
	return out
}
