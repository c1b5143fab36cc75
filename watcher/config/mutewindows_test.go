package config

import (
	"testing"
	"time"
	_ "time/tzdata" // CRON_TZ=Europe/Berlin on hosts without a zoneinfo database

	"github.com/marginwatch/marginwatch/watcher/silence"
)

// TestMuteWindowValidation checks each mute_windows problem with its exact
// position and message, on inline configs named c.yaml.
func TestMuteWindowValidation(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"spec example", `mute_windows:
  - {name: weekend-funding, schedule: "CRON_TZ=UTC 0 0 * * SAT", duration: 48h, matchers: ["rule=funding-cost"]}
`, ``},
		{"block style, several matchers", `mute_windows:
  - name: asia-night
    schedule: "CRON_TZ=Asia/Tokyo 0 1 * * MON-FRI"
    duration: 6h
    matchers:
      - symbol=~".*USDT"
      - severity!=critical
`, ``},
		{"longer than its period is fine", `mute_windows: [{name: w, schedule: "@hourly", duration: 2h, matchers: [rule=r]}]
`, ``},
		{"name missing", `mute_windows: [{schedule: "@daily", duration: 1h, matchers: [rule=r]}]
`, `c.yaml:1:16: mute_windows[0].name: is required: a short unique name for this mute window, e.g. "weekend-funding"`},
		{"name with whitespace", `mute_windows: [{name: quiet time, schedule: "@daily", duration: 1h, matchers: [rule=r]}]
`, `c.yaml:1:23: mute_windows[0].name: "quiet time" contains whitespace; use e.g. "quiet-time"`},
		{"name duplicate", `mute_windows:
  - {name: w, schedule: "@daily", duration: 1h, matchers: [rule=r]}
  - {name: w, schedule: "@weekly", duration: 1h, matchers: [rule=s]}
`, `c.yaml:3:12: mute_windows[1].name: duplicate mute window name "w" (also mute_windows[0] at line 2); mute window names must be unique`},
		{"schedule missing", `mute_windows: [{name: w, duration: 1h, matchers: [rule=r]}]
`, `c.yaml:1:16: mute_windows[0].schedule: is required: a cron schedule of when the window opens, e.g. "CRON_TZ=UTC 0 0 * * SAT"`},
		{"schedule bad", `mute_windows: [{name: w, schedule: "0 0 * SAT", duration: 1h, matchers: [rule=r]}]
`, `c.yaml:1:36: mute_windows[0].schedule: "0 0 * SAT": expected exactly 5 fields, found 4: [0 0 * SAT] (use 5 fields "minute hour day-of-month month weekday", e.g. "0 0 * * SAT", optionally after CRON_TZ=UTC)`},
		{"schedule zone only", `mute_windows: [{name: w, schedule: "CRON_TZ=UTC", duration: 1h, matchers: [rule=r]}]
`, `c.yaml:1:36: mute_windows[0].schedule: "CRON_TZ=UTC": no schedule after the time zone (use 5 fields "minute hour day-of-month month weekday", e.g. "0 0 * * SAT", optionally after CRON_TZ=UTC)`},
		{"schedule @every", `mute_windows: [{name: w, schedule: "@every 1h", duration: 30m, matchers: [rule=r]}]
`, `c.yaml:1:36: mute_windows[0].schedule: "@every 1h": @every has no fixed times for a window to open at; use a cron time, e.g. "0 * * * *" for every hour`},
		{"duration missing", `mute_windows: [{name: w, schedule: "@daily", matchers: [rule=r]}]
`, `c.yaml:1:16: mute_windows[0].duration: must be more than 0 (e.g. 48h): how long the window stays open after each time the schedule fires`},
		{"duration zero", `mute_windows: [{name: w, schedule: "@daily", duration: 0s, matchers: [rule=r]}]
`, `c.yaml:1:56: mute_windows[0].duration: must be more than 0 (e.g. 48h): how long the window stays open after each time the schedule fires`},
		{"duration negative", `mute_windows: [{name: w, schedule: "@daily", duration: -1h, matchers: [rule=r]}]
`, `c.yaml:1:56: mute_windows[0].duration: "-1h" is negative; durations must be 0 or more`},
		{"duration in days", `mute_windows: [{name: w, schedule: "@daily", duration: 2d, matchers: [rule=r]}]
`, `c.yaml:1:56: mute_windows[0].duration: "2d" is not a duration (use e.g. 15s, 1m30s; days are written in hours, e.g. 24h)`},
		{"matchers missing", `mute_windows: [{name: w, schedule: "@daily", duration: 1h}]
`, `c.yaml:1:16: mute_windows[0].matchers: is required: at least one matcher, e.g. ["rule=funding-cost"]; a window matching everything would silence every alert, the daemon's own included`},
		{"matchers empty", `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: []}]
`, `c.yaml:1:70: mute_windows[0].matchers: is required: at least one matcher, e.g. ["rule=funding-cost"]; a window matching everything would silence every alert, the daemon's own included`},
		{"matcher bad", `mute_windows:
  - name: w
    schedule: "@daily"
    duration: 1h
    matchers:
      - rule=r
      - desk=alpha
      - symbol=~BTC(
`, `c.yaml:7:9: mute_windows[0].matchers[1]: matcher "desk=alpha": unknown label "desk": use one of account, rule, symbol, side, severity
c.yaml:8:9: mute_windows[0].matchers[2]: matcher "symbol=~BTC(": bad regexp: error parsing regexp: missing closing ): ` + "`^(?:BTC()$`"},
		{"matcher not a string", `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: [{rule: r}]}]
`, `c.yaml:1:71: mute_windows[0].matchers[0]: must be a single value, not a mapping`},
		{"matchers not a list", `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: rule=r}]
`, `c.yaml:1:70: mute_windows[0].matchers: must be a list (e.g. [a, b] or one "- item" per line), not "rule=r"`},
		{"unknown key", `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: [rule=r], notify: [ops]}]
`, `c.yaml:1:80: mute_windows[0]: unknown key "notify" (known keys: name, schedule, duration, matchers)`},
		{"typo in key", `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matcher: [rule=r]}]
`, `c.yaml:1:60: mute_windows[0]: unknown key "matcher" (did you mean "matchers"?)`},
		{"top-level typo", `mute_window: []
`, `c.yaml:1:1: unknown key "mute_window" (did you mean "mute_windows"?)`},
		{"not a list", `mute_windows: {name: w}
`, `c.yaml:1:15: mute_windows: must be a list (e.g. [a, b] or one "- item" per line), not a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(tt.src, nil); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestMuteWindowWarnings(t *testing.T) {
	const rules = "accounts: [{name: main, exchange: simulated, scenario: calm}]\nrules: [{name: funding-cost, metric: leverage, above: {warning: 5}}]\n"
	tests := []struct {
		name, src, want string
	}{
		{"known names", rules + `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: [rule=funding-cost, account=main]}]
`, ``},
		{"the daemon's own alerts are never silenced", rules + `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: [rule=data-stale, account=marginwatch]}]
`, `c.yaml:3:71: warning: mute_windows[0].matchers[0]: rule=data-stale names one of the daemon's alerts about itself (data-stale, notifier-failing, config-reload-failed), which are never silenced: they say marginwatch is blind or deaf; remove the matcher
c.yaml:3:88: warning: mute_windows[0].matchers[1]: account=marginwatch names one of the daemon's alerts about itself (data-stale, notifier-failing, config-reload-failed), which are never silenced: they say marginwatch is blind or deaf; remove the matcher`},
		{"other operators are not judged", rules + `mute_windows: [{name: w, schedule: "@daily", duration: 1h, matchers: [rule!=nope, "rule=~fund.*", symbol=NOPE]}]
`, ``},
		{"unknown rule and account", rules + `mute_windows:
  - {name: w, schedule: "@daily", duration: 1h, matchers: [rule=funding-costs, account=alt]}
`, `c.yaml:4:60: warning: mute_windows[0].matchers[0]: no rule is named "funding-costs" (did you mean "funding-cost"?), so this matcher silences nothing; fix the name or remove the window
c.yaml:4:80: warning: mute_windows[0].matchers[1]: no account is named "alt", so this matcher silences nothing; fix the name or remove the window`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.src), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if g := warningText(cfg); g != tt.want {
				t.Errorf("warnings:\n%s\nwant:\n%s", g, tt.want)
			}
		})
	}
}

// TestMuteWindows: a loaded window is in force from each activation of its
// schedule, in its time zone, for its duration, and silences what its
// matchers match.
func TestMuteWindows(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(`mute_windows:
  - {name: weekend-funding, schedule: "CRON_TZ=UTC 0 0 * * SAT", duration: 48h, matchers: ["rule=funding-cost"]}
  - name: berlin-open
    schedule: "CRON_TZ=Europe/Berlin 0 9 * * MON-FRI"
    duration: 30m
    matchers: ["symbol=~BTC.*", "side!=short"]
`), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ws := cfg.MuteWindows()
	if len(ws) != 2 || ws[0].Name != "weekend-funding" || ws[1].Name != "berlin-open" {
		t.Fatalf("MuteWindows = %+v", ws)
	}
	if ws[0].Duration != 48*time.Hour || len(ws[1].Matchers) != 2 || ws[1].Matchers[1].String() != "side!=short" {
		t.Errorf("MuteWindows = %+v", ws)
	}

	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	funding := silence.Target{Account: "main", Rule: "funding-cost", Symbol: "ETHUSDT", Side: "short", Severity: "warning"}
	btcLong := silence.Target{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long", Severity: "critical"}
	btcShort := btcLong
	btcShort.Side = "short"
	tests := []struct {
		window int
		at     string
		active bool
		start  string // of the occurrence, when active
	}{
		// 2026-03-07 is a Saturday.
		{0, "2026-03-06T23:59:59Z", false, ""},
		{0, "2026-03-07T00:00:00Z", true, "2026-03-07T00:00:00Z"},
		{0, "2026-03-08T23:59:59Z", true, "2026-03-07T00:00:00Z"},
		{0, "2026-03-09T00:00:00Z", false, ""},
		{0, "2026-03-11T12:00:00Z", false, ""},
		// Berlin is UTC+1 in winter, UTC+2 from the last Sunday of March.
		{1, "2026-03-09T07:59:00Z", false, ""},
		{1, "2026-03-09T08:00:00Z", true, "2026-03-09T08:00:00Z"},
		{1, "2026-03-09T08:29:59Z", true, "2026-03-09T08:00:00Z"},
		{1, "2026-03-09T08:30:00Z", false, ""},
		{1, "2026-03-09T09:10:00Z", false, ""}, // 9:00 UTC is 10:10 in Berlin
		{1, "2026-03-30T07:10:00Z", true, "2026-03-30T07:00:00Z"},
		{1, "2026-03-30T08:10:00Z", false, ""},
		{1, "2026-03-14T08:10:00Z", false, ""}, // Saturday
	}
	for _, tt := range tests {
		w := &ws[tt.window]
		at := utc(tt.at)
		o, ok := w.Occurrence(at)
		if ok != tt.active {
			t.Errorf("%s at %s: in force = %v, want %v", w.Name, tt.at, ok, tt.active)
			continue
		}
		if !ok {
			continue
		}
		if start := utc(tt.start); !o.StartsAt.Equal(start) || !o.EndsAt.Equal(start.Add(w.Duration)) {
			t.Errorf("%s at %s: occurrence %s..%s, want from %s for %s", w.Name, tt.at, o.StartsAt, o.EndsAt, tt.start, w.Duration)
		}
	}

	set := silence.NewSet(nil, ws)
	silenced := []struct {
		t  silence.Target
		at string
		id string
	}{
		{funding, "2026-03-07T10:00:00Z", "window:weekend-funding"},
		{funding, "2026-03-06T10:00:00Z", ""},
		{btcLong, "2026-03-07T10:00:00Z", ""},
		{btcLong, "2026-03-09T08:10:00Z", "window:berlin-open"},
		{btcShort, "2026-03-09T08:10:00Z", ""},
	}
	for _, tt := range silenced {
		id, _ := set.Silenced(&tt.t, utc(tt.at))
		if id != tt.id {
			t.Errorf("%s/%s/%s at %s: silenced by %q, want %q", tt.t.Rule, tt.t.Symbol, tt.t.Side, tt.at, id, tt.id)
		}
	}

	// A config without windows has none.
	empty, err := Parse("c.yaml", []byte("listen: \"\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws := empty.MuteWindows(); len(ws) != 0 {
		t.Errorf("MuteWindows of a config without = %+v", ws)
	}
}
