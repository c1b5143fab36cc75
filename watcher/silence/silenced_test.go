package silence

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestSeverityNameChecked: a severity matcher naming no severity
// (typo, capitals) silences nothing; it must be refused, not stored.
func TestSeverityNameChecked(t *testing.T) {
	for _, s := range []string{"severity=crit", "severity=Critical", "severity=warn"} {
		if _, err := ParseMatcher(s); err == nil {
			t.Errorf("ParseMatcher(%q) accepted a matcher that can never match an alert", s)
		}
	}
}

// TestWindowSilencedAllocatesNothing: Set.Silenced with a window in force
// must not allocate (the engine asks it on every streamed tick of a muted
// alert).
func TestWindowSilencedAllocatesNothing(t *testing.T) {
	sch, err := cron.ParseStandard("0 0 * * *")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := ParseMatchers([]string{"rule=x"})
	s := NewSet(nil, []Window{{Name: "w", Schedule: sch, Duration: 24 * time.Hour, Matchers: ms}})
	now := time.Now()
	tg := Target{Rule: "x"}
	if a := testing.AllocsPerRun(100, func() { s.Silenced(&tg, now) }); a != 0 {
		t.Errorf("Silenced with an open window: %v allocations, want 0", a)
	}
}
