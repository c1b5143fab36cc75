package notifiertest

import (
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/digest"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// Digest is what the daemon sends for digest "morning" at 07:00 UTC on
// 2026-11-28: account main (binance-usdm: equity 10000, margin ratio 2.5%,
// leverage 3x, funding paid 1.5; BTCUSDT long at 300% of equity, 10x, 10%
// from liquidation, no stop) with one critical liquidation-near alert an
// hour earlier whose summary is alertSummary (a channel's escaping test
// puts markup there), and account sub, never polled.
func Digest(alertSummary string) notifiers.Alert {
	now := time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)
	a := &metrics.Account{Name: "main", Exchange: "binance-usdm", Time: now}
	a.Metrics.Put(metrics.Equity, 10000)
	a.Metrics.Put(metrics.MarginRatio, 0.025)
	a.Metrics.Put(metrics.EffectiveLeverage, 3)
	a.Metrics.Put(metrics.FundingPaid24h, 1.5)
	p := metrics.Position{Symbol: "BTCUSDT", Side: "long"}
	p.Metrics.Put(metrics.SizePctEquity, 300)
	p.Metrics.Put(metrics.Leverage, 10)
	p.Metrics.Put(metrics.LiqDistancePct, 10)
	a.Positions = []metrics.Position{p}
	recent := []notifiers.Alert{{
		Account: "main", Kind: notifiers.KindFiring, Severity: notifiers.Critical, Rule: "liquidation-near",
		Symbol: "BTCUSDT", Side: "long", At: now.Add(-time.Hour), Summary: alertSummary,
	}}
	never := metrics.Stale("sub", "", nil, time.Time{}, now)
	return digest.Render("morning", []*metrics.Account{a, never}, recent, now, nil)
}
