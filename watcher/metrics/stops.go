package metrics

import (
	"math"

	"github.com/marginwatch/marginwatch/exchanges"
)

// stopMetrics sets has_stop_loss, stop_coverage_pct and stop_distance_pct
// from p's effective stops (see effectiveStop). liqSide is the sign of the
// side p's liquidation price guards (see liqSides).
//
// Coverage is Σ quantity of the effective stops / |size| × 100, 100 as soon
// as one closes the whole position, capped at 100 (stops that overlap
// cannot close more than there is); 0 without any. Distance is from the
// mark to the nearest effective trigger, absent without one.
func stopMetrics(s *Set, p *exchanges.Position, liqSide float64) {
	var covered float64
	closeAll, found := false, false
	nearest := math.Inf(1)
	for i := range p.Stops {
		st := &p.Stops[i]
		if !effectiveStop(st.Trigger, p, liqSide) {
			continue
		}
		found = true
		switch {
		case st.ClosePosition:
			closeAll = true
		case st.Quantity > 0 && !math.IsInf(st.Quantity, 0):
			covered += math.Abs(st.Quantity)
		}
		nearest = min(nearest, math.Abs(p.MarkPrice-st.Trigger))
	}
	if !found {
		s.Put(HasStopLoss, 0)
		s.Put(StopCoveragePct, 0)
		s.Delete(StopDistancePct)
		return
	}
	s.Put(HasStopLoss, 1)
	size := math.Abs(p.Size)
	switch {
	case closeAll:
		s.Put(StopCoveragePct, 100)
	case size > 0:
		putFinite(s, StopCoveragePct, min(covered/size*100, 100))
	default:
		s.Delete(StopCoveragePct) // an unknown size: coverage cannot be told
	}
	if p.MarkPrice > 0 {
		putFinite(s, StopDistancePct, nearest/p.MarkPrice*100)
	}
}

// effectiveStop reports whether a stop triggering at trigger can fire
// before p is liquidated (SPEC has_stop_loss): a long's stop above the
// liquidation price, a short's below; a stop beyond the liquidation price
// never fires. Without a liquidation price every stop counts. A hedge-mode
// leg whose symbol is net the other way (liqSide ≠ its side) is liquidated
// by the opposite move, which its own stop never races, so its stops count.
// A trigger that is no price (zero, negative, NaN, infinite) does not count:
// an unreadable stop must not pass for protection.
func effectiveStop(trigger float64, p *exchanges.Position, liqSide float64) bool {
	if !(trigger > 0) || math.IsInf(trigger, 0) {
		return false
	}
	liq := p.LiquidationPrice
	if !(liq > 0) || math.IsInf(liq, 0) {
		return true
	}
	if side := p.Side.Sign(); side != liqSide {
		return true
	}
	if p.Side == exchanges.Short {
		return trigger < liq
	}
	return trigger > liq
}
