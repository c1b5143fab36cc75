package silence

import (
	"slices"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustSchedule(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatalf("cron.ParseStandard(%q): %v", spec, err)
	}
	return s
}

// weekend is the SPEC's example window: Saturday 00:00 UTC for 48h.
func weekend(t *testing.T) Window {
	return Window{
		Name:     "weekend-funding",
		Schedule: mustSchedule(t, "CRON_TZ=UTC 0 0 * * SAT"),
		Duration: 48 * time.Hour,
		Matchers: []Matcher{mustMatcher(t, "rule=funding-cost")},
	}
}

var (
	sat = time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)
	mon = sat.Add(48 * time.Hour)
)

func TestWindowOccurrence(t *testing.T) {
	if t0.Weekday() != time.Friday || sat.Weekday() != time.Saturday {
		t.Fatalf("test dates are off: t0 is a %s, sat a %s", t0.Weekday(), sat.Weekday())
	}
	w := weekend(t)
	tests := []struct {
		at     time.Time
		active bool
		start  time.Time
	}{
		{t0, false, time.Time{}},
		{sat.Add(-time.Nanosecond), false, time.Time{}},
		{sat, true, sat},
		{sat.Add(30 * time.Hour), true, sat},
		{mon.Add(-time.Nanosecond), true, sat},
		{mon, false, time.Time{}},
		{sat.Add(7 * 24 * time.Hour), true, sat.Add(7 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		o, ok := w.Occurrence(tt.at)
		if ok != tt.active {
			t.Errorf("Occurrence(%s) active = %v, want %v", tt.at.Format(time.RFC3339Nano), ok, tt.active)
			continue
		}
		if !ok {
			continue
		}
		if !o.StartsAt.Equal(tt.start) || !o.EndsAt.Equal(tt.start.Add(48*time.Hour)) {
			t.Errorf("Occurrence(%s) = %s..%s, want from %s for 48h", tt.at.Format(time.RFC3339), o.StartsAt, o.EndsAt, tt.start)
		}
		if o.ID != "window:weekend-funding" || o.Window != "weekend-funding" || !o.Active(tt.at) {
			t.Errorf("Occurrence(%s) = %+v", tt.at.Format(time.RFC3339), o)
		}
		if !o.Matches(&Target{Rule: "funding-cost"}) || o.Matches(&Target{Rule: "liquidation-near"}) {
			t.Errorf("Occurrence(%s) does not carry the window's matchers", tt.at.Format(time.RFC3339))
		}
	}

	// A window longer than its period is always on.
	hourly := Window{Name: "h", Schedule: mustSchedule(t, "0 * * * *"), Duration: 90 * time.Minute, Matchers: w.Matchers}
	for _, at := range []time.Time{t0, t0.Add(15 * time.Minute), t0.Add(59 * time.Minute)} {
		if _, ok := hourly.Occurrence(at); !ok {
			t.Errorf("90m every hour: not in force at %s", at.Format(time.RFC3339))
		}
	}
	for _, bad := range []Window{{Name: "no schedule", Duration: time.Hour}, {Name: "no duration", Schedule: w.Schedule}} {
		if _, ok := bad.Occurrence(sat.Add(time.Minute)); ok {
			t.Errorf("%s: an occurrence", bad.Name)
		}
	}
}

func TestSet(t *testing.T) {
	liq := []Matcher{mustMatcher(t, "rule=liquidation-near"), mustMatcher(t, "symbol=~BTC.*")}
	stored := []Silence{
		{ID: "past", Matchers: liq, StartsAt: t0.Add(-2 * time.Hour), EndsAt: t0.Add(-time.Hour)},
		{ID: "now", Matchers: liq, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(3 * time.Hour)},
		{ID: "later", Matchers: []Matcher{mustMatcher(t, "account=main")}, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)},
	}
	s := NewSet(stored, []Window{weekend(t)})

	btc := Target{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long", Severity: "critical"}
	eth := Target{Account: "main", Rule: "liquidation-near", Symbol: "ETHUSDT", Side: "long", Severity: "critical"}
	funding := Target{Account: "alt", Rule: "funding-cost", Symbol: "ETHUSDT", Side: "short", Severity: "warning"}
	silenced := []struct {
		name string
		t    Target
		at   time.Time
		id   string
	}{
		{"stored silence in force", btc, t0, "now"},
		{"its neighbour", eth, t0, ""},
		{"not yet started", eth, t0.Add(30 * time.Minute), ""},
		{"started", eth, t0.Add(time.Hour), "later"},
		{"ended", eth, t0.Add(2 * time.Hour), ""},
		{"after its end", btc, t0.Add(3 * time.Hour), ""},
		{"window outside", funding, t0, ""},
		{"window inside", funding, sat.Add(time.Hour), "window:weekend-funding"},
		{"window not matching", btc, sat.Add(time.Hour), ""},
	}
	for _, tt := range silenced {
		id, ok := s.Silenced(&tt.t, tt.at)
		if id != tt.id || ok != (tt.id != "") {
			t.Errorf("%s: Silenced = %q, %v; want %q", tt.name, id, ok, tt.id)
		}
	}
	var nilSet *Set
	if id, ok := nilSet.Silenced(&btc, t0); ok || id != "" {
		t.Errorf("nil set: Silenced = %q, %v", id, ok)
	}

	ids := func(ss []Silence) []string {
		var out []string
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	lists := []struct {
		at   time.Time
		want []string
	}{
		// Ordered by end; the ended one is left out, the future one in.
		{t0, []string{"later", "now"}},
		{t0.Add(150 * time.Minute), []string{"now"}},
		{sat.Add(time.Hour), []string{"window:weekend-funding"}},
	}
	for _, tt := range lists {
		if got := ids(s.List(tt.at)); !slices.Equal(got, tt.want) {
			t.Errorf("List(%s) = %v, want %v", tt.at.Format(time.RFC3339), got, tt.want)
		}
	}
	if got := nilSet.List(t0); got != nil {
		t.Errorf("nil set: List = %v", got)
	}

	if x, ok := s.Get("past"); !ok || x.ID != "past" {
		t.Errorf("Get(past) = %+v, %v; an ended silence is still there to be shown", x, ok)
	}
	if _, ok := s.Get("window:weekend-funding"); ok {
		t.Error("Get found a window: windows are not stored silences")
	}
	if _, ok := s.Get("nope"); ok {
		t.Error("Get(nope) found something")
	}
	if _, ok := nilSet.Get("now"); ok {
		t.Error("nil set: Get found something")
	}
}

func TestSetNextChange(t *testing.T) {
	m := []Matcher{mustMatcher(t, "rule=liquidation-near")}
	tests := []struct {
		name     string
		silences []Silence
		windows  []Window
		at       time.Time
		want     time.Time
	}{
		{"empty", nil, nil, t0, time.Time{}},
		{"a start", []Silence{{ID: "a", Matchers: m, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)}}, nil, t0, t0.Add(time.Hour)},
		{"an end", []Silence{{ID: "a", Matchers: m, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(2 * time.Hour)}}, nil, t0, t0.Add(2 * time.Hour)},
		{"the earliest of several", []Silence{
			{ID: "a", Matchers: m, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(5 * time.Hour)},
			{ID: "b", Matchers: m, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(4 * time.Hour)},
		}, nil, t0, t0.Add(4 * time.Hour)},
		{"now itself is no change", []Silence{{ID: "a", Matchers: m, StartsAt: t0, EndsAt: t0.Add(time.Hour)}}, nil, t0, t0.Add(time.Hour)},
		{"all in the past", []Silence{{ID: "a", Matchers: m, StartsAt: t0.Add(-2 * time.Hour), EndsAt: t0.Add(-time.Hour)}}, nil, t0, time.Time{}},
		{"more than a week away", []Silence{{ID: "a", Matchers: m, StartsAt: t0.Add(8 * 24 * time.Hour), EndsAt: t0.Add(9 * 24 * time.Hour)}}, nil, t0, time.Time{}},
		{"a window's next start", nil, []Window{weekend(t)}, t0, sat},
		{"a window's end", nil, []Window{weekend(t)}, sat.Add(time.Hour), mon},
		{"a silence ending inside a window", []Silence{{ID: "a", Matchers: m, StartsAt: sat, EndsAt: sat.Add(3 * time.Hour)}}, []Window{weekend(t)}, sat.Add(time.Hour), sat.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		got := NewSet(tt.silences, tt.windows).NextChange(tt.at)
		if !got.Equal(tt.want) {
			t.Errorf("%s: NextChange(%s) = %s, want %s", tt.name, tt.at.Format(time.RFC3339), got, tt.want)
		}
	}
	var nilSet *Set
	if got := nilSet.NextChange(t0); !got.IsZero() {
		t.Errorf("nil set: NextChange = %s", got)
	}
}
