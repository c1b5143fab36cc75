package notifiers

import (
	"math"
	"testing"
)

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		// These were the email notifier's own cases.
		{0, "0"}, {7, "7"}, {6.21, "6.21"}, {91234.5, "91234.5"}, {-0.001, "-0.001"},
		{0.000125, "0.000125"}, {0.41, "0.41"}, {-0.0001, "-0.0001"}, {1.005, "1"},

		{math.Copysign(0, -1), "0"},
		{-0.001234, "-0.00123"},
		{-0.004, "-0.004"},
		{10234.129, "10234.13"},
		{-3.456, "-3.46"},
		{0.9999, "1"},
		{0.0000123456, "0.0000123"}, // never %g's exponent ("1.23e-05")
		{-0.0009996, "-0.001"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "∞"},
		{math.Inf(-1), "-∞"},
	}
	for _, tt := range tests {
		if got := FormatNumber(tt.v); got != tt.want {
			t.Errorf("FormatNumber(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"liquidation-near", "liquidation-near"},
		{"a\nb", "a b"},
		{"a\r\nb", "a  b"},
		{"tab\there", "tab here"},
		{"del\x7f", "del "},
		{"nul\x00", "nul "},
		// Only C0 and DEL are blanked: printable Unicode and C1 controls
		// pass through; invalid UTF-8 becomes U+FFFD.
		{"≤ 6.2% · 🔴", "≤ 6.2% · 🔴"},
		{"c1\u0085", "c1\u0085"},
		{"bad\xff", "bad\ufffd"},
	}
	for _, tt := range tests {
		if got := OneLine(tt.in); got != tt.want {
			t.Errorf("OneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContextFields(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range ContextFields {
		if f.Key == "" || f.Label == "" || f.Title == "" {
			t.Errorf("incomplete field %+v", f)
		}
		if seen[f.Key] {
			t.Errorf("key %q listed twice", f.Key)
		}
		seen[f.Key] = true
		if UnitOf(f.Key) == UnitPlain {
			t.Errorf("%s: no unit", f.Key)
		}
	}
	// The order is the order a trader reads: where the price is, then how
	// far liquidation is.
	want := []string{"mark_price", "entry_price", "liq_price", "liq_distance_pct", "leverage", "margin_ratio", "account_margin_ratio", "equity", "effective_leverage"}
	if len(ContextFields) != len(want) {
		t.Fatalf("%d fields, want %d", len(ContextFields), len(want))
	}
	for i, k := range want {
		if ContextFields[i].Key != k {
			t.Errorf("field %d is %q, want %q", i, ContextFields[i].Key, k)
		}
	}
}

func TestFormatLabels(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{}, ""},
		{map[string]string{"team": "desk"}, "team=desk"},
		{map[string]string{"team": "desk", "env": "prod", "b": ""}, "b=, env=prod, team=desk"},
	}
	for _, tt := range tests {
		if got := FormatLabels(tt.in); got != tt.want {
			t.Errorf("FormatLabels(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDigestName(t *testing.T) {
	tests := []struct{ rule, want string }{
		{DigestRulePrefix + "morning", "morning"},
		{"digest:morning:extra", "morning:extra"},
		{"digest:", "digest:"}, // nothing after the prefix: the rule whole
		{"morning", "morning"},
		{"", ""},
		{"Digest:morning", "Digest:morning"},
	}
	for _, tt := range tests {
		if got := (Alert{Kind: KindDigest, Rule: tt.rule}).DigestName(); got != tt.want {
			t.Errorf("DigestName of rule %q = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

func TestThreaded(t *testing.T) {
	tests := []struct {
		a    Alert
		want bool
	}{
		{Alert{ID: "a1", Kind: KindFiring}, true},
		{Alert{ID: "a1", Kind: KindRepeat}, true},
		{Alert{ID: "a1", Kind: KindResolved, Status: Resolved}, true},
		{Alert{ID: "a1", Kind: KindEvent}, true},
		{Alert{ID: "a1"}, true},
		{Alert{Kind: KindFiring}, false},
		{Alert{ID: "a1", Kind: KindTest}, false},
		{Alert{ID: "digest:morning:20261128T0700Z", Kind: KindDigest}, false},
	}
	for _, tt := range tests {
		if got := tt.a.Threaded(); got != tt.want {
			t.Errorf("%+v.Threaded() = %v, want %v", tt.a, got, tt.want)
		}
	}
}

func TestClosedReason(t *testing.T) {
	tests := []struct {
		kind       Kind
		reason     string
		want       string
		liquidated bool
	}{
		{KindClosed, ReasonLiquidated, ReasonLiquidated, true},
		{KindClosed, ReasonClosed, ReasonClosed, false},
		{KindClosed, "", ReasonClosed, false},
		{KindClosed, "exploded", ReasonClosed, false},
		{KindResolved, ReasonLiquidated, "", false},
		{KindFiring, "", "", false},
	}
	for _, tt := range tests {
		a := Alert{Kind: tt.kind, Status: Resolved, Reason: tt.reason}
		if got := a.ClosedReason(); got != tt.want {
			t.Errorf("%s/%q: ClosedReason() = %q, want %q", tt.kind, tt.reason, got, tt.want)
		}
		if got := a.Liquidated(); got != tt.liquidated {
			t.Errorf("%s/%q: Liquidated() = %v, want %v", tt.kind, tt.reason, got, tt.liquidated)
		}
	}
}
