package telegramctl

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// timeLayout is how a reply writes a time: UTC, saying so, like every
// other channel.
const timeLayout = "2006-01-02 15:04 UTC"

// riskiest is how many positions /status shows.
const riskiest = 5

func renderStatus(accts []watcher.AccountStatus, now time.Time) []string {
	lines := []string{"<b>marginwatch status</b> · " + esc(now.UTC().Format(timeLayout))}
	if len(accts) == 0 {
		return append(lines, "No accounts configured.")
	}
	for _, a := range accts {
		lines = append(lines, accountLine(a, now))
	}
	lines = append(lines, alertCounts(accts))
	ps := positionsByRisk(accts)
	if len(ps) == 0 {
		return append(lines, "No open positions.")
	}
	lines = append(lines, "<b>Riskiest positions</b> (nearest to liquidation first)")
	for _, p := range ps[:min(len(ps), riskiest)] {
		lines = append(lines, "<b>"+esc(p.account)+"</b> "+positionLine(p.pos, false))
	}
	if n := len(ps) - riskiest; n > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more: /positions", n))
	}
	return lines
}

// accountLine is one account: equity, margin ratio and the data's age, or
// why they are not known.
func accountLine(a watcher.AccountStatus, now time.Time) string {
	head := "<b>" + esc(a.Name) + "</b> (" + esc(a.Exchange) + ")"
	l := a.Latest
	switch {
	case l == nil && a.LastSuccess.IsZero():
		return head + ": no data yet"
	case l == nil:
		return head + ": no data yet since the last reload"
	case l.Stale && a.LastSuccess.IsZero():
		return head + ": ⚠️ <b>no data</b>: every read since the start failed"
	case l.Stale:
		return head + ": ⚠️ <b>no fresh data for " + esc(ago(now.Sub(a.LastSuccess))) + "</b> (the last read failed)"
	}
	var parts []string
	if len(l.Assets) == 0 {
		if v, ok := l.Metrics.Get(metrics.Equity); ok {
			parts = append(parts, "equity "+esc(strings.TrimSpace(notifiers.FormatMetricIn("equity", v, l.Pool)+" "+l.Pool)))
		}
	} else {
		var eq []string
		for _, as := range l.Assets {
			if v, ok := as.Metrics.Get(metrics.Equity); ok {
				eq = append(eq, notifiers.FormatMetricIn("equity", v, as.Asset)+" "+as.Asset)
			}
		}
		if len(eq) > 0 {
			parts = append(parts, "equity "+esc(strings.Join(eq, ", ")))
		}
	}
	if v, ok := l.Metrics.Get(metrics.MarginRatio); ok {
		parts = append(parts, "margin ratio "+esc(notifiers.FormatMetric("margin_ratio", v)))
	}
	seen := a.LastSuccess
	if seen.IsZero() {
		seen = l.Time
	}
	if !seen.IsZero() {
		parts = append(parts, "data "+esc(ago(now.Sub(seen)))+" old")
	}
	return head + ": " + strings.Join(parts, " · ")
}

// alertCounts sums up the alerts of every account by lifecycle state.
func alertCounts(accts []watcher.AccountStatus) string {
	counts := map[string]int{}
	total := 0
	for _, a := range accts {
		for _, st := range a.Alerts {
			counts[alertState(st, a.Silenced[st.Key])]++
			total++
		}
	}
	if total == 0 {
		return "No alert pending or firing."
	}
	var parts []string
	for _, s := range []string{"firing", "acked", "silenced", "pending"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return "Alerts: " + strings.Join(parts, ", ") + " — /alerts"
}

type accountPosition struct {
	account string
	pos     *metrics.Position
}

// positionsByRisk returns every position, nearest to liquidation first
// (past it first of all), those without a liquidation price last.
func positionsByRisk(accts []watcher.AccountStatus) []accountPosition {
	var out []accountPosition
	for _, a := range accts {
		if a.Latest == nil || a.Latest.Stale {
			continue
		}
		for i := range a.Latest.Positions {
			out = append(out, accountPosition{a.Name, &a.Latest.Positions[i]})
		}
	}
	slices.SortStableFunc(out, func(x, y accountPosition) int { return metrics.CompareRisk(x.pos, y.pos) })
	return out
}

// positionLine is one position: symbol and side, then its risk figures;
// full adds size, PnL, stop and funding.
func positionLine(p *metrics.Position, full bool) string {
	parts := []string{esc(strings.TrimSpace(p.Symbol + " " + string(p.Side)))}
	if full && p.Raw != nil {
		parts = append(parts, "size "+esc(notifiers.FormatNumber(p.Raw.Size)))
	}
	if d, ok := p.Metrics.Get(metrics.LiqDistancePct); ok {
		s := "liq " + esc(notifiers.FormatMetric("liq_distance_pct", d)) + " away"
		if d < 0 {
			s = "⚠️ <b>past liquidation</b> by " + esc(notifiers.FormatMetric("liq_distance_pct", -d))
		} else if d < 10 {
			s = "<b>" + s + "</b>"
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, "no liq price")
	}
	if v, ok := p.Metrics.Get(metrics.Leverage); ok {
		parts = append(parts, "lev "+esc(notifiers.FormatMetric("leverage", v)))
	}
	if v, ok := p.Metrics.Get(metrics.UnrealizedPnLPct); ok {
		parts = append(parts, "PnL "+esc(notifiers.FormatMetric("unrealized_pnl_pct", v)))
	}
	if !full {
		return strings.Join(parts, " · ")
	}
	if p.Raw != nil && p.Raw.MarkPrice > 0 {
		s := "mark " + notifiers.FormatMetric("mark_price", p.Raw.MarkPrice)
		if p.Raw.LiquidationPrice > 0 {
			s += ", liq " + notifiers.FormatMetric("liq_price", p.Raw.LiquidationPrice)
		}
		parts = append(parts, esc(s))
	}
	if v, ok := p.Metrics.Get(metrics.HasStopLoss); ok {
		s := "no stop"
		if v == 1 {
			s = "stop"
			if c, ok := p.Metrics.Get(metrics.StopCoveragePct); ok {
				s += " " + notifiers.FormatMetric("stop_coverage_pct", c)
			}
			if d, ok := p.Metrics.Get(metrics.StopDistancePct); ok {
				s += " at " + notifiers.FormatMetric("stop_distance_pct", d)
			}
		}
		parts = append(parts, esc(s))
	}
	if v, ok := p.Metrics.Get(metrics.FundingAPRPct); ok {
		parts = append(parts, "funding APR "+esc(notifiers.FormatMetric("funding_apr_pct", v)))
	}
	return strings.Join(parts, " · ")
}

func renderPositions(accts []watcher.AccountStatus, now time.Time) []string {
	lines := []string{"<b>Positions</b> · " + esc(now.UTC().Format(timeLayout))}
	if len(accts) == 0 {
		return append(lines, "No accounts configured.")
	}
	for _, a := range accts {
		if a.Latest == nil || a.Latest.Stale {
			lines = append(lines, accountLine(a, now))
			continue
		}
		ps := make([]*metrics.Position, len(a.Latest.Positions))
		for i := range ps {
			ps[i] = &a.Latest.Positions[i]
		}
		slices.SortStableFunc(ps, metrics.CompareRisk)
		lines = append(lines, "<b>"+esc(a.Name)+"</b> ("+esc(a.Exchange)+"): "+plural(len(ps), "position"))
		for _, p := range ps {
			lines = append(lines, "  "+positionLine(p, true))
		}
	}
	return lines
}

func renderAlerts(accts []watcher.AccountStatus, silences []silence.Silence, now time.Time) []string {
	lines := []string{"<b>Alerts</b> · " + esc(now.UTC().Format(timeLayout))}
	type entry struct {
		st       rules.State
		silenced string
	}
	var all []entry
	for _, a := range accts {
		for _, st := range a.Alerts {
			all = append(all, entry{st, a.Silenced[st.Key]})
		}
	}
	slices.SortStableFunc(all, func(x, y entry) int {
		return cmp.Or(cmp.Compare(pendingRank(x.st), pendingRank(y.st)), cmp.Compare(y.st.Severity, x.st.Severity))
	})
	if len(all) == 0 {
		lines = append(lines, "No alert pending or firing.")
	}
	for _, e := range all {
		lines = append(lines, alertLine(e.st, e.silenced))
	}
	if len(silences) == 0 {
		return append(lines, "No silences.")
	}
	lines = append(lines, "<b>Silences</b>")
	for _, s := range silences {
		l := code(s.ID) + " " + matchersHTML(s.Matchers)
		if s.StartsAt.After(now) {
			l += " · from " + esc(s.StartsAt.UTC().Format(timeLayout))
		}
		l += " · until " + esc(s.EndsAt.UTC().Format(timeLayout))
		switch {
		case s.Window != "":
			l += " · mute window " + esc(s.Window)
		case s.Author != "":
			l += " · by " + esc(s.Author)
		}
		if s.Comment != "" {
			l += " · <i>" + esc(clip(s.Comment, 200)) + "</i>"
		}
		lines = append(lines, l)
	}
	return lines
}

func pendingRank(st rules.State) int {
	if st.Phase == rules.Pending {
		return 1
	}
	return 0
}

// alertState is an alert's lifecycle state as `status` names it.
func alertState(st rules.State, silencedBy string) string {
	switch {
	case st.Phase == rules.Pending:
		return "pending"
	case silencedBy != "":
		return "silenced"
	case !st.Acked.IsZero():
		return "acked"
	}
	return "firing"
}

var severityMark = map[notifiers.Severity]string{notifiers.Critical: "🔴", notifiers.Warning: "🟠", notifiers.Info: "🔵"}

func alertLine(st rules.State, silencedBy string) string {
	state := alertState(st, silencedBy)
	mark := severityMark[st.Severity]
	if state == "pending" {
		mark = "⏳"
	}
	parts := []string{strings.TrimSpace(mark + " <b>" + strings.ToUpper(state) + "</b> " + esc(st.Severity.String())), alertTarget(st)}
	if st.Metric != "" {
		v := st.Metric + " " + notifiers.FormatMetric(st.Metric, st.Value)
		if st.Threshold != 0 || st.Op != "" {
			v += " (threshold " + notifiers.FormatMetric(st.Metric, st.Threshold) + ")"
		}
		parts = append(parts, esc(v))
	}
	since := st.StartsAt
	if since.IsZero() {
		since = st.Since
	}
	if !since.IsZero() {
		parts = append(parts, "since "+esc(since.UTC().Format(timeLayout)))
	}
	parts = append(parts, "id "+code(st.ID))
	switch state {
	case "silenced":
		parts = append(parts, "silenced by "+code(silencedBy))
	case "acked":
		s := "acked"
		if st.AckedBy != "" {
			s += " by " + st.AckedBy
		}
		parts = append(parts, esc(s))
	}
	return strings.Join(parts, " · ")
}

// alertTarget is "rule on account symbol side".
func alertTarget(st rules.State) string {
	t := st.Key.Rule + " on " + st.Key.Account
	if st.Key.Symbol != "" {
		t += " " + strings.TrimSpace(st.Key.Symbol+" "+st.Key.Side)
	}
	return "<b>" + esc(t) + "</b>"
}

func matchersHTML(ms []silence.Matcher) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = code(m.String())
	}
	return strings.Join(out, " ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// ago writes a duration for a person: "4s", "3m20s", "2h05m".
func ago(d time.Duration) string {
	return notifiers.UnitSeconds.Format(math.Max(d.Round(time.Second).Seconds(), 0))
}
