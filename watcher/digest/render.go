package digest

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// Window is how far back a digest lists alerts.
const Window = 24 * time.Hour

// MaxAlerts is how many alerts a digest lists per account; the rest are
// counted ("… and N more"), so a noisy day cannot make the message too long
// for the chat services.
const MaxAlerts = 20

// MaxSummary is how many characters of an alert's summary a digest line
// keeps; a longer one ends in "…". Summaries are templates the user wrote,
// and the digest is one message that must stay readable.
const MaxSummary = 120

// RulePrefix starts the Rule of every digest notification ("digest:morning").
const RulePrefix = notifiers.DigestRulePrefix

// Render builds digest name as one notification: Kind KindDigest, Severity
// Info, Status Firing, Rule "digest:"+name, At and StartsAt now, and the
// whole plain-text digest in Summary. Its ID names the digest and the
// minute it was made, so each digest is a message of its own (not a thread
// reply to yesterday's) and a retry of one digest keeps its ID.
//
// For each account, in the given order (nil entries are skipped): the
// equity (per margin pool when there are several), margin ratio, effective
// leverage, funding paid in 24h and drawdown, each in its metric's unit; the positions, nearest to
// liquidation first and those without a liquidation price last; then the
// account's alerts with At in (now−24h, now], newest first, at most
// MaxAlerts, each summary on one line and clipped to MaxSummary characters.
// An account whose last poll failed (Stale) shows when its data
// was last fresh instead of figures. recent may hold other accounts' alerts
// and any order; digests and test notifications in it are ignored. Times
// are shown in loc (UTC when nil).
func Render(name string, accts []*metrics.Account, recent []notifiers.Alert, now time.Time, loc *time.Location) notifiers.Alert {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	fmt.Fprintf(&b, "marginwatch digest %s — %s\n", name, now.In(loc).Format("Mon 2006-01-02 15:04 MST"))
	n := 0
	for _, a := range accts {
		if a == nil {
			continue
		}
		n++
		b.WriteByte('\n')
		writeAccount(&b, a, recent, now, loc)
	}
	if n == 0 {
		b.WriteString("\nno accounts\n")
	}
	return notifiers.Alert{
		ID:       RulePrefix + name + ":" + now.UTC().Format("20060102T1504Z"),
		Status:   notifiers.Firing,
		Kind:     notifiers.KindDigest,
		Severity: notifiers.Info,
		Rule:     RulePrefix + name,
		StartsAt: now,
		At:       now,
		Summary:  strings.TrimSuffix(b.String(), "\n"),
	}
}

// writeAccount writes one account's section.
func writeAccount(b *strings.Builder, a *metrics.Account, recent []notifiers.Alert, now time.Time, loc *time.Location) {
	if a.Exchange != "" {
		fmt.Fprintf(b, "%s (%s)\n", a.Name, a.Exchange)
	} else {
		fmt.Fprintf(b, "%s\n", a.Name)
	}
	if a.Stale {
		if a.Time.IsZero() {
			b.WriteString("  no data received yet: the exchange has not answered\n")
		} else {
			fmt.Fprintf(b, "  no fresh data since %s: the last poll failed\n", a.Time.In(loc).Format("2006-01-02 15:04 MST"))
		}
	} else {
		writeMoney(b, a)
		writePositions(b, a.Positions, len(a.Assets) > 0)
	}
	writeAlerts(b, a.Name, recent, now, loc)
}

// writeMoney writes the account figures: one line for an account with one
// margin pool, else the account's margin ratio and one line per pool, whose
// money figures are in different assets and cannot be added up.
func writeMoney(b *strings.Builder, a *metrics.Account) {
	if len(a.Assets) == 0 {
		fmt.Fprintf(b, "  %s\n", moneyLine(&a.Metrics, a.Pool))
		return
	}
	fmt.Fprintf(b, "  margin ratio %s (highest pool)\n", fig(&a.Metrics, metrics.MarginRatio))
	for i := range a.Assets {
		fmt.Fprintf(b, "  %s: %s\n", a.Assets[i].Asset, moneyLine(&a.Assets[i].Metrics, a.Assets[i].Asset))
	}
}

// moneyLine is equity, margin ratio, leverage, funding and drawdown, money
// in asset (notifiers.FormatMoney: a coin keeps six significant digits).
func moneyLine(m *metrics.Set, asset string) string {
	money := func(id metrics.ID) string {
		v, ok := m.Get(id)
		if !ok {
			return na
		}
		return notifiers.FormatMetricIn(id.String(), v, asset)
	}
	return fmt.Sprintf("equity %s · margin ratio %s · leverage %s · funding paid 24h %s · drawdown %s",
		money(metrics.Equity), fig(m, metrics.MarginRatio), fig(m, metrics.EffectiveLeverage),
		money(metrics.FundingPaid24h), fig(m, metrics.DrawdownPct))
}

// writePositions lists positions nearest to liquidation first.
func writePositions(b *strings.Builder, ps []metrics.Position, inverse bool) {
	if len(ps) == 0 {
		b.WriteString("  no open positions\n")
		return
	}
	sorted := make([]*metrics.Position, len(ps))
	for i := range ps {
		sorted[i] = &ps[i]
	}
	// Stable, so positions equally far (or all without a liquidation
	// price) keep the exchange's order.
	slices.SortStableFunc(sorted, metrics.CompareRisk)
	if len(ps) == 1 {
		b.WriteString("  1 position:\n")
	} else {
		fmt.Fprintf(b, "  %d positions, nearest to liquidation first:\n", len(ps))
	}
	equity := "equity"
	if inverse {
		equity = "asset equity"
	}
	for _, p := range sorted {
		m := &p.Metrics
		liq := "no liquidation price"
		if d, ok := m.Get(metrics.LiqDistancePct); ok {
			if d < 0 {
				liq = "PAST liquidation by " + metrics.LiqDistancePct.Info().Unit.Format(-d)
			} else {
				liq = "liquidation " + fig(m, metrics.LiqDistancePct) + " away"
			}
		}
		// Only effective stops count (they trigger before liquidation).
		stop := "no stop-loss"
		if v, ok := m.Get(metrics.HasStopLoss); ok && v == 1 {
			stop = "stop-loss set"
			if c, ok := m.Get(metrics.StopCoveragePct); ok && c < 100 {
				stop = "stop-loss on " + fig(m, metrics.StopCoveragePct) + " of it"
			}
		}
		fmt.Fprintf(b, "    %s %s: size %s of %s · leverage %s · %s · %s\n",
			p.Symbol, p.Side, fig(m, metrics.SizePctEquity), equity, fig(m, metrics.Leverage), liq, stop)
	}
}

// writeAlerts lists the account's alerts of the window, newest first.
func writeAlerts(b *strings.Builder, account string, recent []notifiers.Alert, now time.Time, loc *time.Location) {
	from := now.Add(-Window)
	var list []*notifiers.Alert
	for i := range recent {
		a := &recent[i]
		if a.Account != account || a.Kind == notifiers.KindDigest || a.Kind == notifiers.KindTest {
			continue
		}
		if !a.At.After(from) || a.At.After(now) {
			continue
		}
		list = append(list, a)
	}
	if len(list) == 0 {
		b.WriteString("  no alerts in the last 24h\n")
		return
	}
	// Stable, so alerts of one instant keep the order they were recorded in.
	slices.SortStableFunc(list, func(x, y *notifiers.Alert) int { return y.At.Compare(x.At) })
	fmt.Fprintf(b, "  alerts in the last 24h (%d), newest first:\n", len(list))
	for _, a := range list[:min(len(list), MaxAlerts)] {
		fields := []string{a.At.In(loc).Format("15:04"), a.Severity.String(), string(a.Kind), a.Rule}
		for _, f := range []string{a.Symbol, a.Side} {
			if f != "" {
				fields = append(fields, f)
			}
		}
		line := strings.Join(fields, " ")
		// A summary template may span lines; a digest line must not.
		if s := strings.Join(strings.Fields(a.Summary), " "); s != "" {
			line += " — " + clip(s, MaxSummary)
		}
		fmt.Fprintf(b, "    %s\n", line)
	}
	if more := len(list) - MaxAlerts; more > 0 {
		fmt.Fprintf(b, "    … and %d more\n", more)
	}
}

// clip shortens s to at most n characters (runes), the last one "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// na marks a figure the exchange did not give or that has no meaning
// (leverage of an account without equity).
const na = "n/a"

// fig is metric id of m in its unit, the way every channel and status
// show it (notifiers.Unit.Format), or na.
func fig(m *metrics.Set, id metrics.ID) string {
	v, ok := m.Get(id)
	if !ok {
		return na
	}
	return id.Info().Unit.Format(v)
}
