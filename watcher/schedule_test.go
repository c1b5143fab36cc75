package watcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/watcher/config"
)

// binanceConfig is n USD-M accounts (no network: check and PlanConfig only
// estimate their costs) with the given extra settings.
func binanceConfig(t *testing.T, n int, extra string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("state_dir: state\nlisten: \"\"\naccounts:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: a%03d, exchange: binance-usdm, api_key: k, api_secret: s%s}\n", i, extra)
	}
	b.WriteString("notifiers:\n  - {name: term, type: console}\n")
	cfg, err := config.Load(writeConfig(t, b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPlanConfigIgnoresTheSecond: what check shows of the plan does not
// depend on the second of the clock minute it runs at.
func TestPlanConfigIgnoresTheSecond(t *testing.T) {
	for _, n := range []int{20, 60} {
		cfg := binanceConfig(t, n, "")
		minute := time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC)
		want := PlanConfig(cfg, minute).Budgets[0].String()
		for _, s := range []time.Duration{time.Second, 20 * time.Second, 47*time.Second + 300*time.Millisecond, 59 * time.Second} {
			if got := PlanConfig(cfg, minute.Add(s)).Budgets[0].String(); got != want {
				t.Errorf("%d accounts, %s into the minute:\n%s\nwant, as at :00:\n%s", n, s, got, want)
			}
		}
	}
}
