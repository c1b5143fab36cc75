package budget

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

const usdm = "binance-usdm fapi.binance.com"

// usdmCost is the adapter's estimate for a USDⓈ-M account with 3 symbols
// polled every 15 s (see binance.Estimate).
var usdmCost = exchanges.Cost{Budget: usdm, Limit: 2400, Poll: 15, First: 56}

func demands(n int, c exchanges.Cost, every time.Duration) []Demand {
	ds := make([]Demand, n)
	for i := range ds {
		ds[i] = Demand{Account: fmt.Sprintf("a%03d", i), Cost: c, Every: every}
	}
	return ds
}

// start is 20 s into a clock minute.
var start = time.Date(2026, 1, 1, 4, 30, 20, 0, time.UTC)

// minutePeak is the most weight the plan puts into one clock minute over
// horizon, first polls at StartAfter and steady ones every Every after.
func minutePeak(ds []Demand, p Plan, horizon time.Duration) int {
	load := map[int64]int{}
	for i, s := range p.Schedules {
		if s.Budget == "" {
			continue
		}
		w := ds[i].Cost.First
		for at := s.StartAfter; at < horizon; at += s.Every {
			load[start.Add(at).Unix()/60] += w
			w = ds[i].Cost.Poll
		}
	}
	peak := 0
	for _, l := range load {
		peak = max(peak, l)
	}
	return peak
}

func TestMakeNoStretch(t *testing.T) {
	ds := demands(10, usdmCost, 15*time.Second)
	ds = append(ds, Demand{Account: "sim", Every: 5 * time.Second}) // no budget
	p := Make(ds, start)
	if len(p.Budgets) != 1 {
		t.Fatalf("budgets %+v", p.Budgets)
	}
	s := p.Budgets[0]
	if s.Stretch != 1 || s.Message != "" || s.Asked != 600 || s.Planned != 600 || s.Allowed != 1920 || s.Target != 1920-56 {
		t.Errorf("summary %+v", s)
	}
	for i, sc := range p.Schedules[:10] {
		if sc.Every != 15*time.Second {
			t.Errorf("%s every %s", sc.Account, sc.Every)
		}
		// Ten first polls of 56 fit a minute: spread i × 15 s / 10.
		if want := time.Duration(i) * 1500 * time.Millisecond; sc.StartAfter != want {
			t.Errorf("%s starts after %s, want %s", sc.Account, sc.StartAfter, want)
		}
	}
	if sim := p.Schedules[10]; sim.Every != 5*time.Second || sim.StartAfter != 0 || sim.Budget != "" {
		t.Errorf("simulated account %+v", sim)
	}
	if len(p.Stretched()) != 0 {
		t.Errorf("stretched %v", p.Stretched())
	}
}

func TestMakeStretch(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     int
		cost  exchanges.Cost
		every time.Duration
		want  time.Duration
	}{
		// 60 × 15 × 4 = 3,600 a minute against 1,920 − 56 = 1,864: 1.93×,
		// 15 s × 1.9313 = 28.97 s, rounded up to 30 s.
		{"60 polled", 60, usdmCost, 15 * time.Second, 30 * time.Second},
		// 45 × 15 × 4 = 2,700: 1.45×, 21.7 s → 24 s.
		{"45 polled", 45, usdmCost, 15 * time.Second, 24 * time.Second},
		// 500 × 15 × 4 = 30,000: 16.09×, 241.4 s → 4m30s.
		{"500 polled", 500, usdmCost, 15 * time.Second, 270 * time.Second},
		// Reconciliation every 5 min at 44 a read (income every time, as
		// before the stream carried funding; today's streamed USDⓈ-M read
		// costs 17, and 500 of them fit unstretched): 500 × 8.8 = 4,400:
		// 2.36×, 708.2 s → 12 min.
		{"500 streamed, heavy reads", 500, exchanges.Cost{Budget: usdm, Limit: 2400, Poll: 44, First: 56}, 5 * time.Minute, 12 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds := demands(c.n, c.cost, c.every)
			p := Make(ds, start)
			s := p.Budgets[0]
			asked := float64(c.n) * float64(c.cost.Poll) * float64(time.Minute) / float64(c.every)
			if math.Abs(s.Asked-asked) > 1e-6 || math.Abs(s.Stretch-asked/1864) > 1e-9 {
				t.Errorf("asked %v stretch %v, want %v and %v", s.Asked, s.Stretch, asked, asked/1864)
			}
			for _, sc := range p.Schedules {
				if sc.Every != c.want {
					t.Fatalf("%s every %s, want %s", sc.Account, sc.Every, c.want)
				}
			}
			if s.Planned > float64(s.Target) {
				t.Errorf("planned %v > target %d", s.Planned, s.Target)
			}
			if !strings.Contains(s.Message, fmt.Sprintf("%d binance-usdm fapi.binance.com accounts ask for", c.n)) ||
				!strings.Contains(s.Message, fmt.Sprintf("instead of %s; use stream: true", c.every)) {
				t.Errorf("message %q", s.Message)
			}
			t.Logf("%s", s.Message)
			t.Logf("start-up: %s weight over %s", thousands(s.StartUpWeight), s.StartUp.Round(time.Second))
			if peak := minutePeak(ds, p, s.StartUp+30*time.Minute); peak > s.Allowed {
				t.Errorf("peak minute %d > %d", peak, s.Allowed)
			}
		})
	}
}

// TestMakeStartUp: first polls too heavy for one minute are spread over
// several, in config order, no 60 s window above 80%.
func TestMakeStartUp(t *testing.T) {
	c := exchanges.Cost{Budget: usdm, Limit: 2400, Poll: 13, First: 300}
	ds := demands(20, c, time.Minute) // 20 × 300 = 6,000 of first polls; steady 260 a minute
	p := Make(ds, start)
	s := p.Budgets[0]
	if s.Stretch != 1 {
		t.Fatalf("stretched %v", s.Stretch)
	}
	prev := time.Duration(-1)
	for _, sc := range p.Schedules {
		if sc.StartAfter <= prev {
			t.Errorf("%s starts after %s, not after the account before it (%s)", sc.Account, sc.StartAfter, prev)
		}
		prev = sc.StartAfter
	}
	// 6 first polls a minute at most (1,920 / 300), fewer beside the
	// steady polls of the accounts started: 4 minutes at least.
	if s.StartUp < 2*time.Minute || s.StartUp > 5*time.Minute {
		t.Errorf("start-up over %s, want 2 to 5 minutes", s.StartUp)
	}
	if peak := minutePeak(ds, p, time.Hour); peak > s.Allowed {
		t.Errorf("peak minute %d > %d", peak, s.Allowed)
	}
}

func TestStretch(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		f    float64
		want time.Duration
	}{
		{15 * time.Second, 1, 15 * time.Second},
		{15 * time.Second, 0.5, 15 * time.Second},
		{15 * time.Second, 1.01, 20 * time.Second},
		{15 * time.Second, 2, 30 * time.Second},
		{15 * time.Second, 2.01, 40 * time.Second},
		{15 * time.Second, 3, time.Minute}, // 45 s: a pattern of 3 minutes
		{15 * time.Second, 4.1, 90 * time.Second},
		{5 * time.Minute, 2.36, 12 * time.Minute},
		{500 * time.Millisecond, 1.5, time.Second},
	} {
		if got := stretch(c.d, c.f); got != c.want {
			t.Errorf("stretch(%s, %v) = %s, want %s", c.d, c.f, got, c.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 5200: "5,200", 1234567: "1,234,567", -2400: "-2,400"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestMakeCap: an interval is never stretched beyond its Cap (half the
// account's stale_after), or data-stale would fire and resolve every
// cycle while every poll succeeds. A budget that cannot fit even at the
// caps is planned at them, and its message says so loudly.
func TestMakeCap(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
		cap  time.Duration
		want time.Duration
		over bool
	}{
		// 45 × 15 × 4 = 2,700 → 24 s, under the cap: as without one.
		{"under the cap", 45, 30 * time.Second, 24 * time.Second, false},
		// 60 → 30 s, the cap exactly: fits (1,800 ≤ 1,864).
		{"at the cap", 60, 30 * time.Second, 30 * time.Second, false},
		// 100 would get 60 s, 130 90 s: held at 30 s, they need 3,000
		// and 3,900 a minute.
		{"100 over", 100, 30 * time.Second, 30 * time.Second, true},
		{"130 over", 130, 30 * time.Second, 30 * time.Second, true},
		// Half of a stale_after of 45 s is 22.5 s: the interval below it
		// that falls evenly into the minutes, 20 s.
		{"uneven cap", 130, 22500 * time.Millisecond, 20 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds := demands(c.n, usdmCost, 15*time.Second)
			for i := range ds {
				ds[i].Cap = c.cap
			}
			p := Make(ds, start)
			s := p.Budgets[0]
			for _, sc := range p.Schedules {
				if sc.Every != c.want {
					t.Fatalf("%s every %s, want %s", sc.Account, sc.Every, c.want)
				}
			}
			if s.Over != c.over {
				t.Errorf("over %v, want %v (planned %v, target %d)", s.Over, c.over, s.Planned, s.Target)
			}
			if c.over {
				want := fmt.Sprintf("%d binance-usdm fapi.binance.com accounts ask for %s weight/min; even polled every %s (half of stale_after) they need %s weight/min, more than the 1,864 one IP may use (80%% of 2,400, less 56 kept free for a first poll): some polls will wait for the next minute and data-stale will say so; use stream: true, raise stale_after, or split the accounts across IPs",
					c.n, thousands(c.n*60), c.want, thousands(int(math.Round(float64(c.n)*15*float64(time.Minute)/float64(c.want)))))
				if s.Message != want {
					t.Errorf("message\n%s\nwant\n%s", s.Message, want)
				}
				if !strings.Contains(s.String(), "held at half of stale_after") {
					t.Errorf("summary %q does not say the intervals are held at their cap", s)
				}
				// Nothing to wait for: the polls are over the budget
				// whenever they start, and an account is not watched
				// before its first poll.
				if s.StartUp >= c.want {
					t.Errorf("first polls spread over %s, want within one interval, %s", s.StartUp, c.want)
				}
			} else if s.Planned > float64(s.Target) {
				t.Errorf("planned %v > target %d", s.Planned, s.Target)
			}
			t.Logf("%s", s)
			t.Logf("%s", s.Message)
		})
	}
}

// TestMakeCapMixed: accounts held at their cap leave the rest of the
// budget to the others (streamed accounts' reconciliations, which
// stale_after does not bound), which stretch further so that all fit.
func TestMakeCapMixed(t *testing.T) {
	ds := demands(60, usdmCost, 15*time.Second)
	for i := range ds {
		ds[i].Cap = 30 * time.Second
	}
	streamedCost := exchanges.Cost{Budget: usdm, Limit: 2400, Poll: 44, First: 56}
	ds = append(ds, demands(100, streamedCost, 5*time.Minute)...)
	p := Make(ds, start)
	s := p.Budgets[0]
	if s.Over || s.Planned > float64(s.Target) {
		t.Errorf("over %v: planned %v, target %d", s.Over, s.Planned, s.Target)
	}
	for _, sc := range p.Schedules[:60] {
		if sc.Every != 30*time.Second {
			t.Fatalf("polled %s every %s, want the cap, 30s", sc.Account, sc.Every)
		}
	}
	// 1,864 − 60 × 15 × 2 = 64 a minute left for 100 × 44 per reconciliation:
	// every 68.75 min at least, rounded up to 69 min.
	for _, sc := range p.Schedules[60:] {
		if sc.Every != 69*time.Minute {
			t.Fatalf("streamed %s every %s, want 1h9m0s", sc.Account, sc.Every)
		}
	}
	if !strings.Contains(s.Message, "60 accounts polled at half their stale_after, every other interval stretched 13.7×") {
		t.Errorf("message %q", s.Message)
	}
	t.Logf("%s", s)
	t.Logf("%s", s.Message)
}

// TestMakeKept: an account kept over a reload polls when its next poll
// is due (within its interval), whatever fresh accounts come before it;
// the fresh ones are placed around it.
func TestMakeKept(t *testing.T) {
	heavy := exchanges.Cost{Budget: usdm, Limit: 2400, Poll: 1, First: 1500} // one first poll a minute
	ds := demands(5, heavy, 15*time.Second)
	kept := heavy
	kept.First = kept.Poll
	ds = append(ds,
		Demand{Account: "kept", Cost: kept, Every: 15 * time.Second, Kept: true, Next: 4 * time.Second},
		Demand{Account: "overdue", Cost: kept, Every: 15 * time.Second, Kept: true, Next: -time.Second},
		Demand{Account: "longer", Cost: kept, Every: 15 * time.Second, Kept: true, Next: time.Minute})
	p := Make(ds, start)
	for _, c := range []struct {
		i    int
		want time.Duration
	}{{5, 4 * time.Second}, {6, 0}, {7, 15 * time.Second}} {
		if got := p.Schedules[c.i].StartAfter; got != c.want {
			t.Errorf("%s starts after %s, want %s", p.Schedules[c.i].Account, got, c.want)
		}
	}
	// The fresh ones: one first poll a minute, in order.
	prev := time.Duration(-1)
	for _, sc := range p.Schedules[:5] {
		if sc.StartAfter <= prev {
			t.Errorf("%s starts after %s, not after the account before it (%s)", sc.Account, sc.StartAfter, prev)
		}
		prev = sc.StartAfter
	}
	if s := p.Budgets[0]; prev < 3*time.Minute {
		t.Errorf("the fifth fresh account starts after %s, want 4 minutes or so (%s)", prev, s)
	}
	if peak := minutePeak(ds, p, time.Hour); peak > p.Budgets[0].Allowed {
		t.Errorf("peak minute %d > %d", peak, p.Budgets[0].Allowed)
	}
}
