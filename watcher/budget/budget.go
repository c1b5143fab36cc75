// Package budget plans the polls of accounts that share a venue's request
// budget (Binance: 2,400 weight a minute per IP) so that together they stay
// under 80% of it: it stretches the intervals of a budget whose accounts ask
// for more (a polled account's no further than half its stale_after: past
// that the gate holds polls back and data-stale says so), spreads their first polls (cache fills, the heaviest) over as
// many minutes as they need, and spreads their steady polls over the
// interval. The exchange adapters' own gate (exchanges/binance governor.go)
// enforces the limit at run time; the plan keeps that gate from having to
// hold anything back.
package budget

import (
	"fmt"
	"math"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// shareNum/shareDen is the part of a budget the plan fills: 80%, the rest
// is left for what the plan cannot see (other processes on the IP, cache
// refreshes out of turn, positions appearing).
const shareNum, shareDen = 8, 10

// Demand is what one account asks of its budget.
type Demand struct {
	// Account is the account's name, for logs and metrics.
	Account string
	// Cost is the account's cost; a zero Budget means it shares nothing
	// (the simulated exchange): it keeps Every and starts at once.
	Cost exchanges.Cost
	// Every is the configured interval of its Snapshots: poll_interval, or
	// reconcile_interval with stream: true.
	Every time.Duration
	// Cap is the longest interval Every may be stretched to (0: no cap):
	// half the account's stale_after when it is polled, so that its data
	// are always fresh well within stale_after; stretched further,
	// data-stale would fire and resolve every cycle while every poll
	// succeeds. A streamed account's reconciliations have none: its
	// streams keep it fresh.
	Cap time.Duration
	// Kept says the account runs already (kept over a reload): its next
	// Snapshot is due Next after the plan's start (0: at once), or one
	// effective interval after it at the latest, and the plan leaves it
	// there instead of looking for a place: it has its caches (its First
	// is its Poll) and it is watched, so it must not wait. The fresh
	// accounts are placed around it.
	Kept bool
	Next time.Duration
}

// Schedule is when one account polls.
type Schedule struct {
	Account string
	Budget  string // "" for an account outside every budget
	// Every is the effective interval: the configured one, stretched when
	// the budget is oversubscribed.
	Every time.Duration
	// StartAfter is how long after the start the first poll waits; a kept
	// account's is its Next.
	StartAfter time.Duration
}

// Summary is the plan of one budget.
type Summary struct {
	Budget   string
	Accounts int
	// Limit is the budget a minute; Allowed the 80% the plan fills;
	// Target what steady polls may take of it: Allowed less the heaviest
	// first poll, kept free for starts.
	Limit, Allowed, Target int
	// Asked is the weight a minute the configured intervals ask for;
	// Planned what the effective ones spend.
	Asked, Planned float64
	// Stretch is the factor the budget's intervals were multiplied by
	// (before rounding up: see stretch), but those held at their Cap; 1
	// when not stretched.
	Stretch float64
	// Capped is how many accounts are held at their Cap; Over says that
	// even so they need more than Target: the exchange's gate will hold
	// polls back to the next minute, and data-stale speaks for the
	// accounts that wait too long.
	Capped int
	Over   bool
	// Configured and Effective are the interval of the budget's first
	// account before and after stretching, for messages.
	Configured, Effective time.Duration
	// StartUp is when the last first poll is due.
	StartUp time.Duration
	// StartUpWeight is the weight of every account's first poll together.
	StartUpWeight int
	// Message explains a stretched budget in one line; "" when not stretched.
	Message string
}

// Plan is the schedule of every account (in Demand order) and the summary
// of every budget (in order of first appearance).
type Plan struct {
	Schedules []Schedule
	Budgets   []Summary
}

// Make plans demands.
//
// Per budget: when the accounts ask for more than Allowed (80% of Limit)
// less the heaviest first poll, every interval is stretched by the same
// factor (rounded up as stretch says; those reaching their Cap held there,
// the others stretched further, see fit) so that together they fit; the
// heaviest first poll is kept free so that a start or restart always has
// room beside the steady polls. First polls are then placed in Demand
// order, each no sooner than the one before it and than i × Every / N (the
// steady polls of N accounts spread evenly over the interval), at the
// first time where it and the steady polls after it fit every clock minute
// (the venue's window; start is when the plan begins) under Allowed. Kept
// accounts are not placed: they poll at their Next; N counts the others.
// A budget Over even at the Caps starts its accounts within one interval:
// no place fits, and an account is not watched before its first poll.
func Make(demands []Demand, start time.Time) Plan {
	p := Plan{Schedules: make([]Schedule, len(demands))}
	groups := map[string][]int{}
	var order []string
	for i, d := range demands {
		p.Schedules[i] = Schedule{Account: d.Account, Budget: d.Cost.Budget, Every: d.Every}
		if d.Cost.Budget == "" || d.Every <= 0 {
			continue
		}
		if _, ok := groups[d.Cost.Budget]; !ok {
			order = append(order, d.Cost.Budget)
		}
		groups[d.Cost.Budget] = append(groups[d.Cost.Budget], i)
	}
	for _, b := range order {
		p.Budgets = append(p.Budgets, plan(demands, groups[b], p.Schedules, start.Sub(start.Truncate(time.Minute))))
	}
	return p
}

// Budget returns the summary of budget b.
func (p Plan) Budget(b string) (Summary, bool) {
	for _, s := range p.Budgets {
		if s.Budget == b {
			return s, true
		}
	}
	return Summary{}, false
}

// Stretched lists the messages of the stretched budgets.
func (p Plan) Stretched() []string {
	var out []string
	for _, s := range p.Budgets {
		if s.Message != "" {
			out = append(out, s.Message)
		}
	}
	return out
}

// perMinute is the weight a minute of polls of weight w every d.
func perMinute(w int, d time.Duration) float64 {
	return float64(w) * float64(time.Minute) / float64(d)
}

// plan fills the schedules of the accounts idx of one budget.
func plan(demands []Demand, idx []int, out []Schedule, offset time.Duration) Summary {
	first := demands[idx[0]]
	s := Summary{
		Budget:     first.Cost.Budget,
		Accounts:   len(idx),
		Limit:      first.Cost.Limit,
		Stretch:    1,
		Configured: first.Every,
	}
	for _, i := range idx {
		s.Limit = max(s.Limit, demands[i].Cost.Limit)
	}
	s.Allowed = s.Limit * shareNum / shareDen
	maxFirst := 0
	for _, i := range idx {
		d := demands[i]
		s.Asked += perMinute(d.Cost.Poll, d.Every)
		maxFirst = max(maxFirst, d.Cost.First, d.Cost.Poll)
		s.StartUpWeight += d.Cost.First
	}
	s.Target = s.Allowed - maxFirst
	if s.Target <= 0 {
		s.Target = s.Allowed / 2 // a budget too small for one first poll: the gate copes
	}
	same := true
	for _, i := range idx {
		same = same && demands[i].Every == first.Every
	}
	if s.Asked > float64(s.Target) {
		s.Stretch = fit(demands, idx, float64(s.Target))
	}
	for _, i := range idx {
		d := demands[i]
		out[i].Every = stretch(d.Every, s.Stretch)
		if c := capOf(d); out[i].Every > c {
			out[i].Every = c
			s.Capped++
		}
		s.Planned += perMinute(d.Cost.Poll, out[i].Every)
	}
	s.Effective = out[idx[0]].Every
	s.Over = s.Capped > 0 && s.Planned > float64(s.Target)

	search := searchFor
	if s.Over {
		// No place fits: waiting for one would only leave the accounts
		// unwatched longer. They start spread over one interval and the
		// gate holds back what does not fit.
		search = 0
	}
	place(demands, idx, out, s.Allowed, offset, search)
	for _, i := range idx {
		s.StartUp = max(s.StartUp, out[i].StartAfter)
	}
	if s.Stretch > 1 || s.Over {
		s.Message = message(s, same)
	}
	return s
}

// fit is the factor by which the intervals of the accounts idx must be
// stretched for their polls to ask for no more than target a minute,
// those that reach their cap held there: their share is fixed, and the
// others stretch further to make up for it. When the capped accounts
// alone ask for target or more, it is the factor that fits the budget as
// if none had a cap: the others are stretched no further than that.
func fit(demands []Demand, idx []int, target float64) float64 {
	var asked float64
	for _, i := range idx {
		asked += perMinute(demands[i].Cost.Poll, demands[i].Every)
	}
	f := asked / target
	for range idx { // each round caps at least one more account, or ends
		var capped, free float64
		for _, i := range idx {
			d := demands[i]
			if c := capOf(d); stretch(d.Every, f) >= c {
				capped += perMinute(d.Cost.Poll, c)
			} else {
				free += perMinute(d.Cost.Poll, d.Every)
			}
		}
		if free == 0 || capped >= target {
			return f
		}
		next := free / (target - capped)
		if next <= f {
			return f
		}
		f = next
	}
	return f
}

// capOf is the longest interval d may be stretched to: the longest
// interval within its Cap that falls evenly into the clock minutes (see
// stretch), but never shorter than d.Every; no limit without a Cap.
func capOf(d Demand) time.Duration {
	if d.Cap <= 0 {
		return math.MaxInt64
	}
	c := d.Cap
	if c >= time.Minute {
		c = c / (30 * time.Second) * (30 * time.Second)
	} else {
		for _, s := range []int{60, 40, 30, 24, 20, 15, 12, 10, 8, 6, 5, 4, 3, 2, 1} {
			if e := time.Duration(s) * time.Second; e <= c {
				c = e
				break
			}
		}
	}
	return max(c, d.Every)
}

// stretch multiplies d by f and rounds the result up to an interval that
// falls evenly into the venue's clock minutes: a divisor of two minutes
// below one (…, 20s, 24s, 30s, 40s, 60s), a multiple of 30 s above. Such an
// interval repeats its pattern over the minutes within two intervals, so
// the plan can check every minute it will ever load; 29 s would spread
// its polls 2 or 3 to a minute in a pattern 29 minutes long.
func stretch(d time.Duration, f float64) time.Duration {
	if f <= 1 {
		return d
	}
	x := time.Duration(math.Ceil(float64(d) * f))
	if x > time.Minute {
		return (x + 30*time.Second - 1) / (30 * time.Second) * (30 * time.Second)
	}
	for _, s := range []int{1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 40, 60} {
		if c := time.Duration(s) * time.Second; c >= x {
			return c
		}
	}
	return time.Minute
}

// message is the one-line explanation of a stretched budget.
func message(s Summary, same bool) string {
	if s.Over {
		what := fmt.Sprintf("even polled every %s (half of stale_after)", s.Effective)
		if !same {
			what = fmt.Sprintf("even with %d of them polled at half their stale_after (the first account every %s)", s.Capped, s.Effective)
		}
		return fmt.Sprintf("%d %s accounts ask for %s weight/min; %s they need %s weight/min, more than the %s one IP may use (80%% of %s, less %s kept free for a first poll): some polls will wait for the next minute and data-stale will say so; use stream: true, raise stale_after, or split the accounts across IPs",
			s.Accounts, s.Budget, thousands(int(math.Round(s.Asked))), what, thousands(int(math.Round(s.Planned))),
			thousands(s.Target), thousands(s.Limit), thousands(s.Allowed-s.Target))
	}
	what := fmt.Sprintf("polling every %s instead of %s", s.Effective, s.Configured)
	switch {
	case s.Capped > 0 && s.Capped < s.Accounts:
		what = fmt.Sprintf("%d accounts polled at half their stale_after, every other interval stretched %.1f×", s.Capped, s.Stretch)
	case !same:
		what = fmt.Sprintf("every interval stretched %.1f× (the first account: every %s instead of %s)", s.Stretch, s.Effective, s.Configured)
	}
	return fmt.Sprintf("%d %s accounts ask for %s weight/min, %.1f× the %s one IP may use (80%% of %s, less %s kept free for a first poll): %s; use stream: true, or fewer accounts per IP",
		s.Accounts, s.Budget, thousands(int(math.Round(s.Asked))), s.Asked/float64(s.Target),
		thousands(s.Target), thousands(s.Limit), thousands(s.Allowed-s.Target), what)
}

// thousands formats n with commas: 5,200.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// searchFor bounds how far past its earliest time an account's first poll
// is looked for a place; past it, the place overloading the fewest minutes
// is taken and the exchange's gate holds the excess back.
const searchFor = 30 * time.Minute

// place sets the StartAfter of the accounts idx (whose Every are final),
// filling a load per clock minute; offset is how far into its minute the
// plan starts. Kept accounts stay where they are; the fresh ones are
// placed around them, spread over their interval and searched for a place
// up to search past it.
func place(demands []Demand, idx []int, out []Schedule, allowed int, offset, search time.Duration) {
	var load []int // weight per clock minute, minute 0 holding the start
	minute := func(t time.Duration) int { return int((offset + t) / time.Minute) }
	at := func(m int) *int {
		for m >= len(load) {
			load = append(load, 0)
		}
		return &load[m]
	}
	// Each placed account's steady polls are entered up to horizon, which
	// grows as accounts start later.
	type placed struct {
		next  time.Duration
		every time.Duration
		poll  int
	}
	var ps []placed
	var horizon time.Duration
	extend := func(h time.Duration) {
		h = time.Duration(minute(h)+1)*time.Minute - offset // whole minutes only
		if h <= horizon {
			return
		}
		for k := range ps {
			for ; ps[k].next < h; ps[k].next += ps[k].every {
				*at(minute(ps[k].next)) += ps[k].poll
			}
		}
		horizon = h
	}
	// cost is by how much adding the account's polls from t overloads the
	// minutes (0: it fits).
	cost := func(d Demand, every, t time.Duration) int {
		add := map[int]int{} // the account's own polls may share a minute
		w := d.Cost.First
		for u := t; u < horizon; u += every {
			add[minute(u)] += w
			w = d.Cost.Poll
		}
		over := 0
		for m, w := range add {
			if l := *at(m) + w; l > allowed {
				over += l - allowed
			}
		}
		return over
	}
	// put places account i's first poll at t.
	put := func(i int, t time.Duration) {
		d, every := demands[i], out[i].Every
		out[i].StartAfter = t
		w := d.Cost.First
		u := t
		for ; u < horizon; u += every {
			*at(minute(u)) += w
			w = d.Cost.Poll
		}
		ps = append(ps, placed{next: u, every: every, poll: d.Cost.Poll})
	}
	var fresh []int
	for _, i := range idx {
		if demands[i].Kept {
			put(i, min(max(demands[i].Next, 0), out[i].Every))
		} else {
			fresh = append(fresh, i)
		}
	}
	n := time.Duration(len(fresh))
	var prev time.Duration
	for k, i := range fresh {
		d, every := demands[i], out[i].Every
		lb := time.Duration(0)
		if k > 0 {
			lb = prev + every/n
		}
		// Candidates: lb, then the start of each following minute.
		best, bestOver := lb, -1
		for t := lb; t <= lb+search; {
			extend(t + 2*every + 2*time.Minute)
			over := cost(d, every, t)
			if bestOver < 0 || over < bestOver {
				best, bestOver = t, over
			}
			if over == 0 {
				break
			}
			t = time.Duration(minute(t)+1)*time.Minute - offset
		}
		put(i, best)
		prev = best
	}
}

// String is the summary in one line, for `marginwatch check`.
func (s Summary) String() string {
	line := fmt.Sprintf("budget %s: %d accounts ask for %s weight/min of the %s allowed (80%% of %s)",
		s.Budget, s.Accounts, thousands(int(math.Round(s.Asked))), thousands(s.Allowed), thousands(s.Limit))
	switch {
	case s.Over:
		line += fmt.Sprintf("; held at half of stale_after: %s weight/min at every %s instead of %s, over the %s the polls may use",
			thousands(int(math.Round(s.Planned))), s.Effective, s.Configured, thousands(s.Target))
	case s.Stretch > 1:
		line += fmt.Sprintf("; stretched %.2f×: %s weight/min at every %s instead of %s", s.Stretch, thousands(int(math.Round(s.Planned))), s.Effective, s.Configured)
		if s.Capped > 0 {
			line += fmt.Sprintf(" (%d held at half of stale_after)", s.Capped)
		}
	}
	if s.StartUp > 0 {
		line += fmt.Sprintf("; first polls %s weight over %s", thousands(s.StartUpWeight), s.StartUp.Round(time.Second))
	}
	return line
}
