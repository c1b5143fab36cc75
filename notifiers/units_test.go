package notifiers

import (
	"math"
	"strings"
	"testing"
)

func TestUnitFormat(t *testing.T) {
	tests := []struct {
		u    Unit
		v    float64
		want string
	}{
		// margin_ratio: a 0–1 fraction, shown as the Binance app shows it.
		{UnitFraction, 0.08, "8%"},
		{UnitFraction, 0.0008, "0.08%"},
		{UnitFraction, 0.8523, "85.23%"},
		{UnitFraction, 1, "100%"},
		{UnitFraction, 0.000012, "0.0012%"},
		{UnitFraction, 0, "0%"},
		{UnitPercent, 6.2134, "6.21%"},
		{UnitPercent, -3.2, "-3.2%"},
		{UnitPercent, 15, "15%"},
		{UnitPercent, 2500, "2500%"},
		{UnitPercent, -0.001, "-0.001%"},
		{UnitPercent, -0.00001, "-0.00001%"},
		// Funding rates as exchanges show them, never 2.5458e-05.
		{UnitRate, 0.0001, "0.0100%"},
		{UnitRate, 2.5458e-05, "0.0025%"},
		{UnitRate, -0.00075, "-0.0750%"},
		{UnitRate, 1e-8, "0.000001%"},
		{UnitRate, 0, "0.0000%"},
		{UnitMoney, 10234.129, "10234.13"},
		{UnitMoney, 50000, "50000.00"},
		{UnitMoney, -100, "-100.00"},
		{UnitMoney, 828.1434, "828.14"},
		{UnitMoney, 0.5, "0.50"},
		{UnitMoney, 0.0047123, "0.004712"},
		{UnitMoney, -0.001, "-0.001"},
		{UnitMoney, -0.001, "-0.001"},
		{UnitMoney, 0, "0.00"},
		{UnitPrice, 64123.456, "64123.5"},
		{UnitPrice, 62000, "62000"},
		{UnitPrice, 3012.456, "3012.46"},
		{UnitPrice, 0.000012345, "0.000012345"},
		{UnitMultiple, 20, "20x"},
		{UnitMultiple, 2.456, "2.46x"},
		{UnitMultiple, -1.5, "-1.5x"},
		{UnitATR, 2.345, "2.35 ATR"},
		{UnitSeconds, 2.5, "2.5s"},
		{UnitSeconds, 42, "42s"},
		{UnitSeconds, 200, "3m20s"},
		{UnitSeconds, 3900, "1h05m"},
		{UnitCount, 3, "3"},
		{UnitBool, 1, "1 (yes)"},
		{UnitBool, 0, "0 (no)"},
		{UnitBool, 0.5, "0.5"},
		{UnitPlain, 0.0000123456, "0.0000123"},
		// Whatever the unit: infinite only when equity is gone, NaN absent.
		{UnitMultiple, math.Inf(1), "∞ (equity ≤ 0)"},
		{UnitPercent, math.Inf(-1), "-∞ (equity ≤ 0)"},
		{UnitMoney, math.NaN(), "n/a"},
	}
	for _, tt := range tests {
		if got := tt.u.Format(tt.v); got != tt.want {
			t.Errorf("%s.Format(%v) = %q, want %q", tt.u, tt.v, got, tt.want)
		}
	}
}

// TestFormatNeverExponent: no unit writes Go's exponent notation for any
// magnitude a metric can take.
func TestFormatNeverExponent(t *testing.T) {
	for u := UnitPlain; u <= UnitBool; u++ {
		for _, v := range []float64{1e-12, -3.3e-9, 2.5458e-05, 1e9, 123456789.123} {
			if got := u.Format(v); strings.Contains(got, "e-") || strings.Contains(got, "e+") {
				t.Errorf("%s.Format(%v) = %q: exponent notation", u, v, got)
			}
		}
	}
}

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		v     float64
		asset string
		want  string
	}{
		{828.1434, "USDT", "828.14"},
		{1.414875, "", "1.41"},
		{0.471626, "USDC", "0.4716"},
		{1.23456789, "BTC", "1.23457"}, // a COIN-M pool
		{0.0123456789, "BTC", "0.0123457"},
		{2, "ETH", "2.00"},
		{-0.00001, "BTC", "-0.00001"},
	}
	for _, tt := range tests {
		if got := FormatMoney(tt.v, tt.asset); got != tt.want {
			t.Errorf("FormatMoney(%v, %q) = %q, want %q", tt.v, tt.asset, got, tt.want)
		}
	}
	a := Alert{Labels: map[string]string{"asset": "BTC"}}
	if got := a.Figure("equity", 1.23456789); got != "1.23457" {
		t.Errorf("Figure of a BTC pool's equity = %q, want 1.23457", got)
	}
	if got := a.Figure("margin_ratio", 0.5); got != "50%" {
		t.Errorf("Figure(margin_ratio 0.5) = %q, want 50%%", got)
	}
}

func TestUnitOf(t *testing.T) {
	tests := map[string]Unit{
		"margin_ratio":     UnitFraction,
		"liq_distance_pct": UnitPercent,
		"funding_rate":     UnitRate,
		"leverage":         UnitMultiple,
		"has_stop_loss":    UnitBool,
		"mark_price":       UnitPrice,
		"margin_call":      UnitPlain, // an event's name
	}
	for name, want := range tests {
		if got := UnitOf(name); got != want {
			t.Errorf("UnitOf(%q) = %s, want %s", name, got, want)
		}
	}
	if got := FormatMetric("margin_ratio", 0.08); got != "8%" {
		t.Errorf(`FormatMetric("margin_ratio", 0.08) = %q, want "8%%"`, got)
	}
}

func TestContextText(t *testing.T) {
	a := Alert{Context: map[string]float64{"equity": 10234.12, "mark_price": 52200, "liq_price": 49799.2, "margin_ratio": 0.41, "other": 1}}
	want := "mark 52200 · liq 49799.2 · margin ratio 41% · equity 10234.12"
	if got := a.ContextText(" · "); got != want {
		t.Errorf("ContextText = %q, want %q", got, want)
	}
	if got := (Alert{}).ContextText(" · "); got != "" {
		t.Errorf("ContextText of no context = %q, want empty", got)
	}
}
