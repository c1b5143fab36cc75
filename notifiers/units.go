package notifiers

import (
	"math"
	"strconv"
	"strings"
)

// Unit is what a figure measures, and so how a person reads it. Every
// metric has one (watcher/metrics' catalogue; UnitOf here), and every
// human-facing output — status, console, Slack, Telegram, email, digests —
// formats a figure with its unit's Format, so that one value reads the
// same everywhere. Machine output (status -json, the webhook body) keeps the
// raw numbers.
type Unit uint8

// Units. The zero Unit is a plain number.
const (
	// UnitPlain is a number without a unit.
	UnitPlain Unit = iota
	// UnitFraction is a 0–1 fraction where 1 means 100%, written so in
	// rules (margin_ratio: 1.0 = liquidation) and shown as a percent, as
	// the Binance app shows the margin ratio: 0.085 → "8.5%".
	UnitFraction
	// UnitPercent is a figure already in percent (liq_distance_pct 6.21 →
	// "6.21%").
	UnitPercent
	// UnitRate is a funding rate per funding interval, a fraction shown as
	// a percent with four decimals, as exchanges show it: 0.0001 →
	// "0.0100%".
	UnitRate
	// UnitMoney is an amount in the margin pool's asset: cents for dollars
	// and stablecoins ("10234.13", four significant digits below 1), six
	// significant digits for a coin (a COIN-M pool: "1.23457"), see
	// FormatMoney. Format alone assumes dollars.
	UnitMoney
	// UnitPrice is a price: six significant digits, trailing zeros dropped
	// ("64123.5", "0.000012345").
	UnitPrice
	// UnitMultiple is a multiple of equity: leverage "20x", "2.46x".
	UnitMultiple
	// UnitATR is a distance in units of ATR(14): "2.35 ATR".
	UnitATR
	// UnitSeconds is a duration in seconds: "42s", "3m20s", "1h05m".
	UnitSeconds
	// UnitCount is a whole number: "3".
	UnitCount
	// UnitBool is 1 (yes) or 0 (no), the form rules compare: "0 (no)".
	UnitBool
)

var unitNames = [...]string{
	UnitPlain: "number", UnitFraction: "fraction", UnitPercent: "percent", UnitRate: "rate",
	UnitMoney: "money", UnitPrice: "price", UnitMultiple: "multiple", UnitATR: "ATR",
	UnitSeconds: "seconds", UnitCount: "count", UnitBool: "boolean",
}

// String names the unit ("fraction", "percent", …).
func (u Unit) String() string {
	if int(u) >= len(unitNames) {
		return "unit(" + strconv.Itoa(int(u)) + ")"
	}
	return unitNames[u]
}

// Format writes v in unit u, never in exponent notation. An infinite v
// (only equity at or below zero makes a figure infinite) is "∞ (equity ≤
// 0)": a unit after ∞ says nothing. NaN is "n/a".
func (u Unit) Format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0):
		return FormatNumber(v) + InfiniteNote
	}
	switch u {
	case UnitFraction:
		return percent(v * 100)
	case UnitPercent:
		return percent(v)
	case UnitRate:
		p := v * 100
		if p != 0 && math.Abs(p) < 0.00005 {
			return significant(p, 2) + "%" // a tiny rate is not zero
		}
		return zeroSign(strconv.FormatFloat(p, 'f', 4, 64)) + "%"
	case UnitMoney:
		return FormatMoney(v, "")
	case UnitPrice:
		return trimZeros(strconv.FormatFloat(v, 'f', decimalsFor(v, 6, 0), 64))
	case UnitMultiple:
		return fixed(v, 2) + "x"
	case UnitATR:
		return fixed(v, 2) + " ATR"
	case UnitSeconds:
		return seconds(v)
	case UnitCount:
		if v == math.Trunc(v) {
			return fixed(v, 0)
		}
		return fixed(v, 2)
	case UnitBool:
		switch v {
		case 1:
			return "1 (yes)"
		case 0:
			return "0 (no)"
		}
	}
	return FormatNumber(v)
}

// unitOf is the unit of each metric (SPEC "Metrics") and of each
// Alert.Context key that is no metric. watcher/metrics' catalogue holds the
// same units (a test there keeps the two equal); this copy exists because a
// notifier must not import the engine's packages.
var unitOf = map[string]Unit{
	"margin_ratio":         UnitFraction,
	"account_margin_ratio": UnitFraction,
	"equity":               UnitMoney,
	"available_balance":    UnitMoney,
	"unrealized_pnl":       UnitMoney,
	"effective_leverage":   UnitMultiple,
	"net_exposure_ratio":   UnitMultiple,
	"drawdown_pct":         UnitPercent,
	"funding_next_cost":    UnitMoney,
	"funding_paid_24h":     UnitMoney,
	"position_count":       UnitCount,
	"data_age_seconds":     UnitSeconds,
	"liq_distance_pct":     UnitPercent,
	"liq_distance_atr":     UnitATR,
	"leverage":             UnitMultiple,
	"size_pct_equity":      UnitPercent,
	"funding_rate":         UnitRate,
	"funding_apr_pct":      UnitPercent,
	"unrealized_pnl_pct":   UnitPercent,
	"has_stop_loss":        UnitBool,
	"stop_coverage_pct":    UnitPercent,
	"stop_distance_pct":    UnitPercent,
	"mark_price":           UnitPrice,
	"entry_price":          UnitPrice,
	"liq_price":            UnitPrice,
}

// UnitOf is the unit of a metric or Alert.Context key; UnitPlain for a name
// it does not know (an event's name, a future metric).
func UnitOf(name string) Unit { return unitOf[name] }

// FormatMetric is v formatted in the unit of metric name: the one way a
// person sees a metric's value or threshold, in every channel (money as
// dollars; see FormatMetricIn).
func FormatMetric(name string, v float64) string { return UnitOf(name).Format(v) }

// percent is p (already in percent) with two decimals, or two significant
// digits when those would show a non-zero value as 0, and "%".
func percent(p float64) string {
	if p != 0 && math.Abs(p) < 0.005 {
		return significant(p, 2) + "%"
	}
	return fixed(p, 2) + "%"
}

// FormatMetricIn is FormatMetric for a figure of a margin pool in asset
// ("" when unknown): money in a coin keeps the digits a coin needs.
func FormatMetricIn(name string, v float64, asset string) string {
	if u := UnitOf(name); u != UnitMoney || math.IsNaN(v) || math.IsInf(v, 0) {
		return u.Format(v)
	}
	return FormatMoney(v, asset)
}

// Figure is metric (or Context key) name at value v for this alert, in its
// unit, money in the alert's margin pool (the "asset" label) when it has
// one: how every channel writes the alert's value, threshold and context.
func (a Alert) Figure(name string, v float64) string {
	return FormatMetricIn(name, v, a.Labels["asset"])
}

// FormatMoney writes an amount of asset: for dollars and stablecoins (and
// "", an asset not known) two decimals, or four significant digits below 1
// ("10234.13", "0.004712"); for any other asset, a coin, at least two
// decimals and six significant digits ("1.23457", "0.0123457"), since a
// hundredth of a bitcoin is no rounding error.
func FormatMoney(v float64, asset string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return UnitPlain.Format(v)
	}
	sig := 6
	switch asset {
	case "", "USD", "USDT", "USDC", "FDUSD", "BFUSD", "BUSD", "USDE", "DAI":
		if math.Abs(v) >= 1 {
			return zeroSign(strconv.FormatFloat(v, 'f', 2, 64))
		}
		sig = 4
	}
	s := strconv.FormatFloat(v, 'f', decimalsFor(v, sig, 2), 64)
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		keep := dot + 3 // two decimals stay
		for len(s) > keep && s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
	}
	return zeroSign(s)
}

// seconds writes a duration: "2.5s" and "42s" below a minute, "3m20s"
// below an hour, then "1h05m".
func seconds(v float64) string {
	switch {
	case math.Abs(v) < 59.95:
		return fixed(v, 1) + "s"
	case v < 0:
		return "-" + seconds(-v)
	}
	s := int64(math.Round(v))
	if s < 3600 {
		return strconv.FormatInt(s/60, 10) + "m" + pad2(s%60) + "s"
	}
	m := (s + 30) / 60
	return strconv.FormatInt(m/60, 10) + "h" + pad2(m%60) + "m"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// decimalsFor is how many decimals show sig significant digits of v, at
// least lo and at most 12.
func decimalsFor(v float64, sig, lo int) int {
	a := math.Abs(v)
	if a == 0 {
		return lo
	}
	d := sig - 1 - int(math.Floor(math.Log10(a)))
	return min(max(lo, d), 12)
}

// significant writes v with n significant digits and no exponent.
func significant(v float64, n int) string {
	return trimZeros(strconv.FormatFloat(v, 'f', decimalsFor(v, n, 0), 64))
}

// fixed writes v with at most prec decimals, trailing zeros dropped.
func fixed(v float64, prec int) string {
	return trimZeros(strconv.FormatFloat(v, 'f', prec, 64))
}

// trimZeros drops trailing decimal zeros (and a bare point) and the sign
// of a zero.
func trimZeros(s string) string {
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return zeroSign(s)
}

// zeroSign drops the "-" of a value that rounds to zero ("-0.00").
func zeroSign(s string) string {
	if strings.HasPrefix(s, "-") && strings.Trim(s[1:], "0.") == "" {
		return s[1:]
	}
	return s
}
