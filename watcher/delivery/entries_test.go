package delivery

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

var t0 = time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)

func al(id string, sev notifiers.Severity, st notifiers.Status, rule, account, symbol, side string) notifiers.Alert {
	return notifiers.Alert{ID: id, Severity: sev, Status: st, Rule: rule, Account: account, Symbol: symbol, Side: side}
}

const (
	crit = notifiers.Critical
	warn = notifiers.Warning
	info = notifiers.Info
	fir  = notifiers.Firing
	res  = notifiers.Resolved
)

// sorted is twenty alerts in the order one message must list them, written
// by hand: severity down, firing before resolved, then rule, account,
// symbol, side.
var sorted = []notifiers.Alert{
	al("01", crit, fir, "a", "main", "BTCUSDT", "long"),
	al("02", crit, fir, "a", "main", "BTCUSDT", "short"),
	al("03", crit, fir, "a", "main", "ETHUSDT", "long"),
	al("04", crit, fir, "a", "zeta", "", ""),
	al("05", crit, fir, "b", "alt", "", ""), // rule before account
	al("06", crit, res, "a", "main", "BTCUSDT", "long"),
	al("07", warn, fir, "a", "main", "", ""),
	al("08", warn, fir, "data-stale", "main", "", ""),
	al("09", warn, fir, "liq", "main", "SOLUSDT", "long"),
	al("10", warn, res, "a", "main", "", ""),
	al("11", warn, res, "z", "main", "", ""),
	al("12", info, fir, "a", "main", "", ""),
	al("13", info, fir, "b", "main", "", ""),
	al("14", info, fir, "b", "main", "X", "long"),
	al("15", info, res, "a", "main", "", ""),
	al("16", info, res, "c", "main", "", ""),
	al("17", info, res, "c", "main", "A", "long"),
	al("18", info, res, "c", "main", "A", "short"),
	al("19", info, res, "c", "main", "B", "long"),
	al("20", info, res, "d", "alt", "", ""),
}

func without(ids ...string) []notifiers.Alert {
	skip := map[string]bool{}
	for _, id := range ids {
		skip[id] = true
	}
	var out []notifiers.Alert
	for _, a := range sorted {
		if !skip[a.ID] {
			out = append(out, a)
		}
	}
	return out
}

func TestEntriesGroupsAndOrders(t *testing.T) {
	// Feed the alerts scrambled: position i holds sorted[(7*i) mod 20].
	notices := make([]rules.Notice, len(sorted))
	for i := range notices {
		a := sorted[(7*i)%len(sorted)]
		n := rules.Notice{Alert: a}
		switch a.ID {
		case "05":
			n.Notify = []string{"phone"}
		case "08":
			n.Notify = []string{"ops", "ops", "no-such-notifier"}
		case "12":
			n.Notify = []string{} // explicitly nowhere
		}
		notices[i] = n
	}
	all := []string{"term", "ops", "phone"}
	got := Entries(notices, all, t0)
	want := []store.Entry{
		{Notifier: "term", Created: t0, NextAttempt: t0, Alerts: without("05", "08", "12")},
		{Notifier: "ops", Created: t0, NextAttempt: t0, Alerts: without("05", "12")},
		{Notifier: "phone", Created: t0, NextAttempt: t0, Alerts: without("08", "12")},
	}
	if !reflect.DeepEqual(got, want) {
		for _, e := range got {
			var ids []string
			for _, a := range e.Alerts {
				ids = append(ids, a.ID)
			}
			t.Logf("%s: %v", e.Notifier, ids)
		}
		t.Fatal("Entries did not group/order as expected")
	}
}

func TestEntriesEdgeCases(t *testing.T) {
	a := al("x", warn, fir, "r", "main", "", "")
	tests := []struct {
		name    string
		notices []rules.Notice
		all     []string
		want    []store.Entry
	}{
		{"no notices", nil, []string{"ops"}, nil},
		{"no targets", []rules.Notice{{Alert: a}}, nil, nil},
		{"only to unknown", []rules.Notice{{Alert: a, Notify: []string{"gone"}}}, []string{"ops"}, nil},
		{
			"duplicate target name counts once",
			[]rules.Notice{{Alert: a}},
			[]string{"ops", "ops"},
			[]store.Entry{{Notifier: "ops", Created: t0, NextAttempt: t0, Alerts: []notifiers.Alert{a}}},
		},
	}
	for _, tt := range tests {
		if got := Entries(tt.notices, tt.all, t0); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Entries = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestBackoff: 1, 2, 4, 8 s, then 8 s each time, ±20%: the longest wait,
// jitter included, stays under the 10 s in which held notices must arrive
// after a receiver recovers, however long it was down.
func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		r        float64
		want     time.Duration
	}{
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{4, 0.5, 8 * time.Second},
		{5, 0.5, 8 * time.Second},
		{10, 0.5, 8 * time.Second},
		{64, 0.5, 8 * time.Second}, // no shift overflow
		{math.MaxInt, 0.5, 8 * time.Second},
		{0, 0.5, time.Second},
		{-1, 0.5, time.Second},
		{1, 0, 800 * time.Millisecond},
		{10, 0, 6400 * time.Millisecond},
		{1, 0.75, 1100 * time.Millisecond},
		{3, 2, 4 * time.Second}, // out-of-range r: no jitter
	}
	for _, tt := range tests {
		if got := backoff(tt.attempts, tt.r); got != tt.want {
			t.Errorf("backoff(%d, %v) = %v, want %v", tt.attempts, tt.r, got, tt.want)
		}
	}
	for attempts := range 100 {
		if got := backoff(attempts, math.Nextafter(1, 0)); got >= 9600*time.Millisecond+time.Microsecond || got > 10*time.Second {
			t.Errorf("backoff(%d, ~1) = %v, want under 9.6s", attempts, got)
		}
	}
}
