package config

import (
	"math"
	"testing"
	"time"
	_ "time/tzdata" // timezone: checks must not depend on the host's zoneinfo
)

// TestRuleSemanticsErrors: combined conditions, keep_firing_for and calendar
// windows are checked with positioned errors that say the fix.
func TestRuleSemanticsErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"day window ok", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: day, reset_at: \"08:30\", timezone: Europe/Berlin}]\n", ``},
		{"bad reset_at", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: day, reset_at: \"24:00\"}]\n",
			`c.yaml:1:85: rules[0].reset_at: "24:00" is not a time of day as "HH:MM" on a 24-hour clock (e.g. "00:00" or "08:30"; quote it)`},
		{"reset_at as sexagesimal", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: day, reset_at: 8:30}]\n",
			`c.yaml:1:85: rules[0].reset_at: "8:30" is not a time of day as "HH:MM" on a 24-hour clock (e.g. "00:00" or "08:30"; quote it)`},
		{"unknown timezone", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: day, timezone: Europe/Berln}]\n",
			`c.yaml:1:85: rules[0].timezone: unknown time zone "Europe/Berln" (use an IANA name such as UTC, Europe/Berlin or America/New_York; names are case-sensitive)`},
		{"local timezone", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: day, timezone: Local}]\n",
			`c.yaml:1:85: rules[0].timezone: "Local" is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)`},
		{"day window on another metric", "rules: [{name: r, metric: equity, below: {warning: 2}, window: day}]\n",
			`c.yaml:1:64: rules[0].window: only drawdown_pct takes a window; remove it`},
		{"reset_at without day", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: 12h, reset_at: \"00:00\", timezone: UTC}]\n",
			`c.yaml:1:85: rules[0].reset_at: only a calendar-day drawdown (window: day) takes reset_at; add window: day, or remove reset_at
c.yaml:1:104: rules[0].timezone: only a calendar-day drawdown (window: day) takes timezone; add window: day, or remove timezone`},
		{"window beyond the history kept", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: 720h}]\n",
			`c.yaml:1:70: rules[0].window: 720h is longer than the 168h of equity history kept (7 days); use at most 168h`},
		{"window as long as the history kept", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: 168h}]\n", ``},
		{"window in days", "rules: [{name: r, metric: drawdown_pct, above: {warning: 2}, window: 1d}]\n",
			`c.yaml:1:70: rules[0].window: "1d" is not a duration (use e.g. 15s, 1m30s; days are written in hours, e.g. 24h, or window: day for the calendar day)`},
		{"hysteresis past the metric's range", "rules: [{name: r, metric: stop_coverage_pct, below: {warning: 100}, hysteresis: 1}]\n",
			`c.yaml:1:81: rules[0].hysteresis: 1 would make below.warning (100) resolve only at or above 101, which stop_coverage_pct never reaches (a percentage, 0 to 100, capped at 100); use a hysteresis of at most 0`},
		{"hysteresis up to the metric's range", "rules: [{name: r, metric: stop_coverage_pct, below: {warning: 99}, hysteresis: 1}]\n", ``},
		{"keep_firing_for negative", "rules: [{name: r, metric: leverage, above: {warning: 5}, keep_firing_for: -1h}]\n",
			`c.yaml:1:75: rules[0].keep_firing_for: "-1h" is negative; durations must be 0 or more`},
		{"keep_firing_for on an event rule", "rules: [{name: r, scope: event, event: liquidation, severity: critical, keep_firing_for: 1h}]\n",
			`c.yaml:1:90: rules[0].keep_firing_for: an event rule has no keep_firing_for (events fire once per occurrence); remove it`},
		{"any ok", "rules: [{name: r, any: [{metric: liq_distance_pct, below: {warning: 10, critical: 5}}, {metric: liq_distance_atr, below: {warning: 3}}]}]\n", ``},
		{"any with metric", "rules: [{name: r, metric: leverage, above: {warning: 5}, any: [{metric: leverage, above: {warning: 5}}]}]\n",
			`c.yaml:1:27: rules[0].metric: a rule with any: names its metrics, thresholds and hysteresis in each condition; move metric into the conditions, or remove any:
c.yaml:1:44: rules[0].above: a rule with any: names its metrics, thresholds and hysteresis in each condition; move above into the conditions, or remove any:`},
		{"any empty", "rules: [{name: r, any: []}]\n",
			`c.yaml:1:24: rules[0].any: needs at least one condition, e.g. any: [{metric: liq_distance_pct, below: {warning: 10}}, {metric: liq_distance_atr, below: {warning: 3}}]`},
		{"any bad conditions", "rules: [{name: r, any: [{metric: liq_distance_pc, below: {warning: 10}}, {metric: liq_distance_atr, above: {warning: 3}, below: {warning: 1}}, {metric: leverage, below: {warning: 3, critical: 4}}]}]\n",
			`c.yaml:1:34: rules[0].any[0].metric: unknown metric "liq_distance_pc" (did you mean "liq_distance_pct"?)
c.yaml:1:129: rules[0].any[1].below: a condition has either above or below, not both; split it into two conditions
c.yaml:1:193: rules[0].any[2].below.critical: must be below warning (3) for a "below" rule`},
		{"any across scopes", "rules: [{name: r, any: [{metric: liq_distance_pct, below: {warning: 10}}, {metric: equity, below: {warning: 3}}]}]\n",
			`c.yaml:1:75: rules[0].any[1].scope: equity is an account metric; use scope: account (or leave scope out)`},
		{"any hysteresis too big", "rules: [{name: r, any: [{metric: liq_distance_pct, below: {warning: 10, critical: 9}, hysteresis: 1}]}]\n",
			`c.yaml:1:99: rules[0].any[0].hysteresis: 1 must be smaller than the gap between warning (10) and critical (9), or the alert could not step down between them; lower hysteresis or move the thresholds apart`},
		{"any unknown key", "rules: [{name: r, any: [{metric: leverage, abvoe: {warning: 3}}]}]\n",
			`c.yaml:1:25: rules[0].any[0]: needs thresholds: above or below, e.g. below: {warning: 15, critical: 7}
c.yaml:1:44: rules[0].any[0]: unknown key "abvoe" (did you mean "above"?)`},
	}
	env := envOf(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(tt.src, env); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRuleSemanticsDefaults(t *testing.T) {
	src := `rules:
  - {name: day, metric: drawdown_pct, above: {warning: 2}, window: day}
  - {name: rolling, metric: drawdown_pct, above: {warning: 2}}
  - {name: combined, any: [{metric: liq_distance_pct, below: {warning: 10, critical: 5}}, {metric: liq_distance_atr, below: {critical: 1}}], repeat: 1h, keep_firing_for: 12h}
`
	cfg, err := Parse("c.yaml", []byte(src), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	day, rolling, combined := cfg.Rules[0], cfg.Rules[1], cfg.Rules[2]
	if !day.Daily || day.Window != 0 || day.ResetAt != "00:00" || day.Timezone != "UTC" {
		t.Errorf("window: day = %+v, want Daily at 00:00 UTC", day)
	}
	if rolling.Daily || rolling.Window != 24*time.Hour {
		t.Errorf("no window = daily %v window %v, want 24h rolling", rolling.Daily, rolling.Window)
	}
	if combined.Scope != "position" || combined.KeepFiringFor != 12*time.Hour || len(combined.Conditions()) != 2 {
		t.Errorf("combined = scope %q keep %v conditions %d", combined.Scope, combined.KeepFiringFor, len(combined.Conditions()))
	}
	if got := combined.Repeat; got["warning"] != time.Hour || got["critical"] != time.Hour || len(got) != 2 {
		t.Errorf("combined repeat = %v, want warning and critical (the union of its conditions' severities)", got)
	}
}

func TestHysteresisFor(t *testing.T) {
	at := func(keys ...string) Location {
		l := Location{Keys: map[string]Pos{}}
		for _, k := range keys {
			l.Keys[k] = Pos{Line: 1}
		}
		return l
	}
	tests := []struct {
		name string
		cd   Condition
		sev  string
		want float64
	}{
		{"unset: 2% of the threshold", Condition{Metric: "effective_leverage", Above: map[string]float64{"warning": 9}}, "warning", 0.18},
		{"unset: of a negative threshold's magnitude", Condition{Metric: "unrealized_pnl_pct", Below: map[string]float64{"warning": -50}}, "warning", 1},
		{"unset: at most half the gap", Condition{Metric: "margin_ratio", Above: map[string]float64{"warning": 0.8, "critical": 0.81}}, "critical", 0.005},
		{"unset: resolution kept inside the range (stop_coverage_pct ≤ 100)", Condition{Metric: "stop_coverage_pct", Below: map[string]float64{"warning": 100}}, "warning", 0},
		{"unset: clamped to the room left in the range", Condition{Metric: "stop_coverage_pct", Below: map[string]float64{"warning": 99}}, "warning", 1},
		{"unset: unbounded side unclamped", Condition{Metric: "stop_coverage_pct", Above: map[string]float64{"warning": 99}}, "warning", 1.98},
		{"unset: boolean metric", Condition{Metric: "has_stop_loss", Below: map[string]float64{"warning": 1}}, "warning", 0},
		{"written 0", Condition{Metric: "leverage", Above: map[string]float64{"warning": 9}, At: at("hysteresis")}, "warning", 0},
		{"written", Condition{Metric: "leverage", Above: map[string]float64{"warning": 9}, Hysteresis: 1, At: at("hysteresis")}, "warning", 1},
		{"set in code", Condition{Metric: "leverage", Above: map[string]float64{"warning": 9}, Hysteresis: 1}, "warning", 1},
		{"no such severity", Condition{Metric: "leverage", Above: map[string]float64{"warning": 9}}, "critical", 0},
	}
	for _, tt := range tests {
		if got := tt.cd.HysteresisFor(tt.sev); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: HysteresisFor(%s) = %v, want %v", tt.name, tt.sev, got, tt.want)
		}
	}
}

// TestShippedRulesSetHysteresis: the example files set hysteresis on every
// threshold condition, so a reader sees what each rule does without knowing
// the default; and they use the calendar day and combined conditions.
func TestShippedRulesSetHysteresis(t *testing.T) {
	for _, p := range []string{"../../examples/demo.yaml", "../../rules.example.yaml"} {
		cfg, err := Load(p)
		if err != nil {
			t.Fatalf("Load(%s): %v", p, err)
		}
		for _, r := range cfg.Rules {
			for i, cd := range r.Conditions() {
				if !cd.At.written("hysteresis") {
					t.Errorf("%s: rule %s condition %d (%s) does not set hysteresis", p, r.Name, i, cd.Metric)
				}
			}
		}
	}
	cfg, err := Load("../../rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var day, combined bool
	for _, r := range cfg.Rules {
		day = day || r.Daily
		combined = combined || len(r.Any) > 1
	}
	if !day || !combined {
		t.Errorf("rules.example.yaml: window: day used %v, any: used %v; want both shown", day, combined)
	}
}
