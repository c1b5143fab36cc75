package silence

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func mustMatcher(t *testing.T, s string) Matcher {
	t.Helper()
	m, err := ParseMatcher(s)
	if err != nil {
		t.Fatalf("ParseMatcher(%q): %v", s, err)
	}
	return m
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in      string
		label   string
		op      Op
		value   string
		match   []string // symbol values the matcher must hold for (label symbol only)
		nomatch []string
		err     string // substring of the error; "" for none
	}{
		{in: "rule=liquidation-near", label: "rule", op: Equal, value: "liquidation-near"},
		{in: " account = main ", label: "account", op: Equal, value: "main"},
		{in: "side!=short", label: "side", op: NotEqual, value: "short"},
		{in: `symbol!=""`, label: "symbol", op: NotEqual, value: ""},
		{in: "symbol=~BTC.*", label: "symbol", op: Regexp, value: "BTC.*",
			match: []string{"BTCUSDT", "BTC"}, nomatch: []string{"XBTCUSDT", "ETHUSDT", ""}},
		// Anchored like Alertmanager: a bare prefix is not a match.
		{in: "symbol=~BTC", label: "symbol", op: Regexp, value: "BTC",
			match: []string{"BTC"}, nomatch: []string{"BTCUSDT", "WBTC"}},
		{in: "symbol=~BTCUSDT|ETHUSDT", label: "symbol", op: Regexp, value: "BTCUSDT|ETHUSDT",
			match: []string{"BTCUSDT", "ETHUSDT"}, nomatch: []string{"BTCUSDTX", "XETHUSDT"}},
		{in: `symbol=~""`, label: "symbol", op: Regexp, value: "",
			match: []string{""}, nomatch: []string{"BTCUSDT"}},
		{in: `symbol="BTC USDT"`, label: "symbol", op: Equal, value: "BTC USDT",
			match: []string{"BTC USDT"}, nomatch: []string{"BTCUSDT"}},
		{in: `symbol="a\"b"`, label: "symbol", op: Equal, value: `a"b`, match: []string{`a"b`}},
		// A backslash that escapes nothing is kept, so regexps read the same
		// quoted or not.
		{in: `symbol=~"BTC\d+"`, label: "symbol", op: Regexp, value: `BTC\d+`,
			match: []string{"BTC1"}, nomatch: []string{"BTCX", `BTC\1`}},
		{in: `symbol=~BTC\d+`, label: "symbol", op: Regexp, value: `BTC\d+`, match: []string{"BTC42"}},
		{in: `symbol="BTC`, label: "symbol", op: Equal, value: `"BTC`}, // one quote is a character
		{in: "symbol=a=b", label: "symbol", op: Equal, value: "a=b"},
		{in: "", err: "want label=value"},
		{in: "rule", err: "want label=value"},
		{in: "=x", err: "want label=value"},
		{in: "rule!x", err: "want label=value"},
		{in: "rule!~x", err: "want label=value"},
		{in: "desk=alpha", err: `unknown label "desk": use one of account, rule, symbol, side, severity`},
		{in: "rule=", err: "empty value"},
		{in: `rule=""`, err: "empty value"},
		{in: "symbol=~BTC(", err: "bad regexp"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMatcher(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseMatcher(%q) = %+v, %v; want error containing %q", tt.in, m, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMatcher(%q): %v", tt.in, err)
			}
			if m.Label != tt.label || m.Op != tt.op || m.Value != tt.value {
				t.Errorf("ParseMatcher(%q) = %s %s %q; want %s %s %q", tt.in, m.Label, m.Op, m.Value, tt.label, tt.op, tt.value)
			}
			for _, v := range tt.match {
				if !m.Matches(&Target{Symbol: v}) {
					t.Errorf("%s does not match symbol %q", tt.in, v)
				}
			}
			for _, v := range tt.nomatch {
				if m.Matches(&Target{Symbol: v}) {
					t.Errorf("%s matches symbol %q", tt.in, v)
				}
			}
			// What String writes parses back to the same matcher.
			back, err := ParseMatcher(m.String())
			if err != nil {
				t.Fatalf("ParseMatcher(String() = %q): %v", m.String(), err)
			}
			if back.Label != m.Label || back.Op != m.Op || back.Value != m.Value {
				t.Errorf("String() = %q parses as %s %s %q; want %s %s %q", m.String(), back.Label, back.Op, back.Value, m.Label, m.Op, m.Value)
			}
		})
	}
}

func TestParseMatchers(t *testing.T) {
	if _, err := ParseMatchers(nil); err == nil || !strings.Contains(err.Error(), "no matcher") {
		t.Errorf("ParseMatchers(nil) = %v; want a no-matcher error", err)
	}
	if _, err := ParseMatchers([]string{"rule=a", "bogus=b"}); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("ParseMatchers with a bad one = %v; want its error", err)
	}
	ms, err := ParseMatchers([]string{"rule=a", "side!=short"})
	if err != nil || len(ms) != 2 || ms[1].Op != NotEqual {
		t.Errorf("ParseMatchers = %+v, %v", ms, err)
	}
}

func TestMatcherLabels(t *testing.T) {
	target := Target{Account: "main", Rule: "liq", Symbol: "BTCUSDT", Side: "long", Severity: "critical"}
	tests := []struct {
		m    string
		want bool
	}{
		{"account=main", true},
		{"account=alt", false},
		{"rule=liq", true},
		{"symbol=BTCUSDT", true},
		{"side=long", true},
		{"side!=long", false},
		{"severity=~warning|critical", true},
		{"severity=~warn.*", false},
	}
	for _, tt := range tests {
		m := mustMatcher(t, tt.m)
		if got := m.Matches(&target); got != tt.want {
			t.Errorf("%s on %+v = %v, want %v", tt.m, target, got, tt.want)
		}
	}
	// An account-scope alert has no symbol: != holds, = does not.
	acct := Target{Account: "main", Rule: "margin", Severity: "warning"}
	if m := mustMatcher(t, "symbol!=BTCUSDT"); !m.Matches(&acct) {
		t.Error("symbol!=BTCUSDT does not match an alert without a symbol")
	}
	if m := mustMatcher(t, "symbol=~BTC.*"); m.Matches(&acct) {
		t.Error("symbol=~BTC.* matches an alert without a symbol")
	}
	var zero Matcher
	if zero.Matches(&acct) {
		t.Error("the zero Matcher matches")
	}
}

func TestSilenceMatches(t *testing.T) {
	ms := func(ss ...string) []Matcher {
		out := make([]Matcher, len(ss))
		for i, s := range ss {
			out[i] = mustMatcher(t, s)
		}
		return out
	}
	btc := Target{Account: "main", Rule: "liq", Symbol: "BTCUSDT", Side: "long", Severity: "critical"}
	eth := Target{Account: "main", Rule: "liq", Symbol: "ETHUSDT", Side: "long", Severity: "critical"}
	tests := []struct {
		name     string
		matchers []Matcher
		btc, eth bool
	}{
		{"no matchers matches nothing", nil, false, false},
		{"one", ms("rule=liq"), true, true},
		{"all must hold", ms("rule=liq", "symbol=BTCUSDT"), true, false},
		{"one fails", ms("rule=liq", "account=alt"), false, false},
		{"regexp and not-equal", ms("symbol=~.*USDT", "symbol!=ETHUSDT"), true, false},
		{"an unparsed matcher holds for nothing", []Matcher{{Label: "rule", Value: "liq"}}, false, false},
	}
	for _, tt := range tests {
		s := Silence{ID: "s1", Matchers: tt.matchers}
		if got := s.Matches(&btc); got != tt.btc {
			t.Errorf("%s: Matches(BTC) = %v, want %v", tt.name, got, tt.btc)
		}
		if got := s.Matches(&eth); got != tt.eth {
			t.Errorf("%s: Matches(ETH) = %v, want %v", tt.name, got, tt.eth)
		}
	}
}

var t0 = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC) // a Friday

func TestSilenceActive(t *testing.T) {
	s := Silence{StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	tests := []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-time.Nanosecond), false},
		{t0, true}, // the start is in
		{t0.Add(30 * time.Minute), true},
		{t0.Add(time.Hour - time.Nanosecond), true},
		{t0.Add(time.Hour), false}, // the end is out
		{t0.Add(2 * time.Hour), false},
	}
	for _, tt := range tests {
		if got := s.Active(tt.at); got != tt.want {
			t.Errorf("Active(%s) = %v, want %v", tt.at.Format(time.RFC3339Nano), got, tt.want)
		}
	}
}

func TestSilenceValidate(t *testing.T) {
	good := Silence{ID: "a", Matchers: []Matcher{mustMatcher(t, "rule=liq")}, StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	tests := []struct {
		name string
		edit func(*Silence)
		err  string
	}{
		{"good", func(*Silence) {}, ""},
		{"no matchers", func(s *Silence) { s.Matchers = nil }, "without matchers"},
		{"unparsed matcher", func(s *Silence) { s.Matchers = []Matcher{{Label: "rule", Value: "x"}} }, "not parsed"},
		{"no start", func(s *Silence) { s.StartsAt = time.Time{} }, "needs a start and an end"},
		{"no end", func(s *Silence) { s.EndsAt = time.Time{} }, "needs a start and an end"},
		{"ends at start", func(s *Silence) { s.EndsAt = s.StartsAt }, "ends"},
		{"ends before start", func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Minute) }, "before it starts"},
	}
	for _, tt := range tests {
		s := good
		s.Matchers = append([]Matcher(nil), good.Matchers...)
		tt.edit(&s)
		err := s.Validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.err)
		}
	}
}

// TestSilenceJSON: matchers travel as strings (the store, the API) and come
// back working, regexps included.
func TestSilenceJSON(t *testing.T) {
	in := Silence{
		ID: "01JAB",
		Matchers: []Matcher{
			mustMatcher(t, "rule=liquidation-near"),
			mustMatcher(t, "symbol=~BTC.*"),
			mustMatcher(t, "side!=short"),
			mustMatcher(t, `symbol=~"BTC\d+ X"`),
			mustMatcher(t, `account="a \"quoted\" \\ name"`),
		},
		StartsAt:  t0,
		EndsAt:    t0.Add(time.Hour),
		CreatedAt: t0.Add(-time.Minute),
		Author:    "ann",
		Comment:   "handling it",
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"matchers":["rule=liquidation-near","symbol=~BTC.*","side!=short",`) {
		t.Errorf("matchers are not written as strings: %s", b)
	}
	var out Silence
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if out.ID != in.ID || !out.StartsAt.Equal(in.StartsAt) || !out.EndsAt.Equal(in.EndsAt) ||
		!out.CreatedAt.Equal(in.CreatedAt) || out.Author != in.Author || out.Comment != in.Comment {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	if len(out.Matchers) != len(in.Matchers) {
		t.Fatalf("round trip has %d matchers, want %d", len(out.Matchers), len(in.Matchers))
	}
	for i := range in.Matchers {
		a, b := in.Matchers[i], out.Matchers[i]
		if a.Label != b.Label || a.Op != b.Op || a.Value != b.Value {
			t.Errorf("matcher %d: %s %s %q after the round trip, want %s %s %q", i, b.Label, b.Op, b.Value, a.Label, a.Op, a.Value)
		}
	}
	if m := out.Matchers[3]; !m.Matches(&Target{Symbol: "BTC1 X"}) || m.Matches(&Target{Symbol: `BTC\1 X`}) {
		t.Errorf("regexp %q changed meaning in the round trip", m.Value)
	}
	if m := out.Matchers[1]; !m.Matches(&Target{Symbol: "BTCUSDT"}) {
		t.Error("a decoded =~ matcher does not match: its regexp was not compiled")
	}

	var bad Silence
	err = json.Unmarshal([]byte(`{"id":"x","matchers":["desk=alpha"]}`), &bad)
	if err == nil || !strings.Contains(err.Error(), "unknown label") {
		t.Errorf("Unmarshal of a bad matcher = %v; want the matcher's error", err)
	}
}

// FuzzParseMatcher: whatever parses, String writes back so that it parses
// to the same matcher (the store and the API rely on it).
func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{"rule=x", `symbol=~"BTC\d+ X"`, `account="a \"b\" \\ c"`, `side!=""`, "symbol=\"a\nb\"", `symbol="x\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMatcher(s)
		if err != nil {
			return
		}
		back, err := ParseMatcher(m.String())
		if err != nil {
			t.Fatalf("ParseMatcher(%q) = %q, which does not parse: %v", s, m.String(), err)
		}
		if back.Label != m.Label || back.Op != m.Op || back.Value != m.Value {
			t.Fatalf("ParseMatcher(%q): %s %s %q, written %q, reads back as %s %s %q", s, m.Label, m.Op, m.Value, m.String(), back.Label, back.Op, back.Value)
		}
	})
}
