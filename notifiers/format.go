package notifiers

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// FormatNumber shows two decimals for ordinary magnitudes and three
// significant digits for small ones (0.000125, 0.0000123), without trailing
// zeros and never in exponent notation. It is UnitPlain's format, for
// figures without a unit; a metric's value goes through its Unit. ±Inf is
// "∞" or "-∞" (see InfiniteNote), NaN is "NaN".
func FormatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	}
	if v == 0 || math.Abs(v) >= 1 {
		s := strconv.FormatFloat(v, 'f', 2, 64)
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
		if s == "-0" {
			s = "0"
		}
		return s
	}
	// Round to three significant digits first: 0.0009996 is "0.001".
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return zeroSign(strconv.FormatFloat(r, 'f', -1, 64))
}

// InfiniteNote follows an infinite figure wherever a channel shows one:
// only equity at or below zero makes a figure infinite (effective_leverage,
// size_pct_equity, net_exposure_ratio), and a bare "∞" would read as a bug.
const InfiniteNote = " (equity ≤ 0)"

// Liquidated reports whether a is the closing notice (KindClosed) of a
// position the exchange liquidated: the loudest notice there is, never a
// quiet one.
func (a Alert) Liquidated() bool {
	return a.Kind == KindClosed && a.Reason == ReasonLiquidated
}

// ClosedReason is how a KindClosed alert ended, ReasonLiquidated or
// ReasonClosed; an empty or unknown Reason reads as ReasonClosed, which
// claims nothing the exchange did not report. It is "" for other kinds.
func (a Alert) ClosedReason() string {
	switch {
	case a.Kind != KindClosed:
		return ""
	case a.Reason == ReasonLiquidated:
		return ReasonLiquidated
	default:
		return ReasonClosed
	}
}

// OneLine replaces every control character (C0 and DEL) with a space. A
// newline in a rule name, runbook or header value would otherwise split a
// line and could forge a fake alert line or mail header. Invalid UTF-8
// comes out as U+FFFD.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// ContextField is one Alert.Context figure a notifier shows, in its
// key's unit (UnitOf).
type ContextField struct {
	Key string // the Alert.Context key, e.g. "liq_distance_pct"
	// Label names the figure inline, before its value ("liq distance 6.2%").
	Label string
	// Title names it as a heading above its value ("Liq. distance").
	Title string
}

// ContextFields are the Alert.Context figures a trader reads at a glance,
// in the order they read them: where the price is, how far liquidation is,
// then the account. Each notifier decides what to do with the keys not
// listed.
var ContextFields = []ContextField{
	{"mark_price", "mark", "Mark price"},
	{"entry_price", "entry", "Entry price"},
	{"liq_price", "liq", "Liq. price"},
	{"liq_distance_pct", "liq distance", "Liq. distance"},
	{"leverage", "leverage", "Leverage"},
	{"margin_ratio", "margin ratio", "Margin ratio"},
	{"account_margin_ratio", "account margin ratio", "Account margin ratio"},
	{"equity", "equity", "Equity"},
	{"effective_leverage", "effective leverage", "Effective leverage"},
}

// ContextText is the Context figures of ContextFields that a holds, as
// "label value" in reading order ("mark 52200 · liq 49799.2 · …"), each
// in its unit (Figure); sep joins them. Other keys are left out.
func (a Alert) ContextText(sep string) string {
	var parts []string
	for _, f := range ContextFields {
		if v, ok := a.Context[f.Key]; ok {
			parts = append(parts, f.Label+" "+a.Figure(f.Key, v))
		}
	}
	return strings.Join(parts, sep)
}

// FormatLabels lists labels as "k=v, k=v", sorted by key; "" when there
// are none.
func FormatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ", ")
}

// DigestRulePrefix starts the Rule of a digest (KindDigest): "digest:morning".
// It is defined here, not in watcher/digest, so that notifiers need not
// import the engine.
const DigestRulePrefix = "digest:"

// DigestName is the name of digest a, the part of its Rule after
// DigestRulePrefix. A Rule without the prefix, or with nothing after it, is
// returned whole, so a digest always has a name to show.
func (a Alert) DigestName() string {
	if name, ok := strings.CutPrefix(a.Rule, DigestRulePrefix); ok && name != "" {
		return name
	}
	return a.Rule
}
