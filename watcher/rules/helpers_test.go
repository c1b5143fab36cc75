package rules

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// t0 is the start of every scenario; steps are offsets from it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// absent marks a metric value that is not there.
var absent = math.NaN()

// testConfig builds a config by hand, as config.Load would leave it: its
// accounts have stale_after set, and rules passed in must have Scope and
// Repeat set (mustCompile checks), since Compile relies on the loader's
// defaults.
func testConfig(rules ...config.Rule) *config.Config {
	return &config.Config{
		Accounts: []config.Account{
			{Name: "main", StaleAfter: 60 * time.Second, Labels: map[string]string{"desk": "alpha"}},
			{Name: "other", StaleAfter: 120 * time.Second},
		},
		Rules: rules,
	}
}

func mustCompile(t testing.TB, rules ...config.Rule) []*Rule {
	t.Helper()
	for _, r := range rules {
		if r.Scope == "" || r.Repeat == nil {
			t.Fatalf("rule %q: set Scope and Repeat, as config.Load would", r.Name)
		}
	}
	rs, err := Compile(testConfig(rules...))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rs
}

// pos is a position with one metric set (NaN: absent).
type pos struct {
	sym, side string
	id        metrics.ID
	v         float64
}

func position(p pos) metrics.Position {
	mp := metrics.Position{Symbol: p.sym, Side: exchanges.Side(p.side)}
	mp.Metrics.Put(p.id, p.v)
	return mp
}

func positionsAcct(name string, ps ...pos) *metrics.Account {
	a := &metrics.Account{Name: name, Labels: map[string]string{"desk": "alpha"}}
	a.Metrics.Put(metrics.DataAgeSeconds, 1)
	for _, p := range ps {
		a.Positions = append(a.Positions, position(p))
	}
	return a
}

func accountAcct(name string, id metrics.ID, v float64) *metrics.Account {
	a := &metrics.Account{Name: name}
	a.Metrics.Put(metrics.DataAgeSeconds, 1)
	a.Metrics.Put(id, v)
	return a
}

// summarize renders notices as "kind:severity" joined by spaces, for compact
// expectations; summarizeSym adds ":symbol".
func summarize(r Result) string { return notices(r, false) }

func summarizeSym(r Result) string { return notices(r, true) }

func notices(r Result, sym bool) string {
	var parts []string
	for _, n := range r.Notices {
		s := fmt.Sprintf("%s:%s", n.Alert.Kind, n.Alert.Severity)
		if sym {
			s += ":" + n.Alert.Symbol
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// describeStates renders the engine's states as "phase:severity" joined by
// spaces.
func describeStates(e *Engine) string {
	var parts []string
	for _, st := range e.States() {
		parts = append(parts, fmt.Sprintf("%s:%s", st.Phase, st.Severity))
	}
	return strings.Join(parts, " ")
}
