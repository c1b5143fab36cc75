package ruletest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// DefaultStart is the clock at "0s" when a file gives no start: a Monday
// noon UTC, far from a daily drawdown reset at midnight.
var DefaultStart = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// Summary counts what Run did.
type Summary struct {
	Passed, Failed int
	// Broken counts files that could not be read, or whose rules did not
	// load: none of their tests ran.
	Broken int
}

// OK reports whether everything that ran passed and every file loaded.
func (s Summary) OK() bool { return s.Failed == 0 && s.Broken == 0 }

// Options select tests and how much Run writes.
type Options struct {
	// Run selects the tests whose name it matches; nil runs all.
	Run *regexp.Regexp
	// Verbose writes every notice of every evaluation and each passed
	// test: what to copy into expect while writing a test.
	Verbose bool
}

// Run runs the selected tests of every file in paths and writes one line
// per difference of a failed test, the errors of each broken file, and a
// summary line to w.
func Run(w io.Writer, paths []string, opt Options) Summary {
	var sum Summary
	run := opt.Run
	for _, p := range paths {
		f, err := ReadFile(p)
		if err == nil {
			err = f.run(w, opt, &sum)
		}
		if err != nil {
			fmt.Fprintln(w, err)
			fmt.Fprintf(w, "BROKEN %s\n", p)
			sum.Broken++
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed", sum.Passed, sum.Failed)
	if sum.Broken > 0 {
		fmt.Fprintf(w, ", %d broken (not run)", sum.Broken)
	}
	if sum.Passed+sum.Failed == 0 && sum.Broken == 0 && run != nil {
		fmt.Fprintf(w, " (no test matches -run %q)", run.String())
	}
	fmt.Fprintln(w)
	return sum
}

// run loads f's rules and runs its selected tests.
func (f *File) run(w io.Writer, opt Options, sum *Summary) error {
	cfg, err := f.load()
	if err != nil {
		return err
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		return err
	}
	start := f.Start
	if start.IsZero() {
		start = DefaultStart
	}
	for i := range f.Tests {
		t := &f.Tests[i]
		if opt.Run != nil && !opt.Run.MatchString(t.Name) {
			continue
		}
		acct, ok := accountOf(cfg, t)
		if !ok {
			return fmt.Errorf("%s:%d: %s: account %q is not in %s; name one of its accounts", f.Path, t.line, t.Name, t.Account.Name, f.Config)
		}
		var trace func(time.Duration, got)
		if opt.Verbose {
			trace = func(d time.Duration, g got) {
				fmt.Fprintf(w, "     %s: %s: at %s: %s%s\n", f.Path, t.Name, Dur(d), g, inAccount(g, acct.Name))
			}
		}
		diffs := t.run(compiled, acct, start, trace)
		if len(diffs) == 0 {
			sum.Passed++
			if opt.Verbose {
				fmt.Fprintf(w, "ok   %s: %s\n", f.Path, t.Name)
			}
			continue
		}
		sum.Failed++
		for _, d := range diffs {
			fmt.Fprintf(w, "FAIL %s: %s: %s\n", f.Path, t.Name, d)
		}
	}
	return nil
}

// load returns the config the rules are compiled from: the named config,
// or one made of the rule files and the tests' accounts, read by the same
// loader as the daemon's config (so a rule file's errors are the ones
// `check` gives).
func (f *File) load() (*config.Config, error) {
	dir := filepath.Dir(f.Path)
	if f.Config != "" {
		p := f.Config
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		f.Config = p
		return config.Load(p)
	}
	// Rules may name notifiers and accounts: the made-up config holds a
	// console notifier of each name, and each account, so they resolve.
	var notify, accounts []string
	for _, pat := range f.RuleFiles {
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(dir, pat)
		}
		matches, _ := filepath.Glob(pat) // a bad or empty pattern: Parse says so below
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				continue // Parse says so below
			}
			rs, _ := config.ParseRules(m, data, nil) // its errors: Parse says so below
			for _, r := range rs {
				notify = append(notify, r.Notify...)
				accounts = append(accounts, r.Accounts...)
			}
		}
	}
	for _, t := range f.Tests {
		accounts = append(accounts, t.Account.Name)
	}
	type acct struct {
		Name     string `yaml:"name"`
		Exchange string `yaml:"exchange"`
		Scenario string `yaml:"scenario"`
	}
	type notifier struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	doc := struct {
		RuleFiles []string   `yaml:"rule_files"`
		Accounts  []acct     `yaml:"accounts"`
		Notifiers []notifier `yaml:"notifiers"`
	}{RuleFiles: f.RuleFiles}
	slices.Sort(accounts)
	for _, a := range slices.Compact(accounts) {
		if a != "" {
			doc.Accounts = append(doc.Accounts, acct{a, "simulated", "calm"})
		}
	}
	slices.Sort(notify)
	for _, n := range slices.Compact(notify) {
		doc.Notifiers = append(doc.Notifiers, notifier{n, "console"})
	}
	if len(doc.Notifiers) == 0 {
		doc.Notifiers = append(doc.Notifiers, notifier{"test", "console"})
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", f.Path, err)
	}
	// Named as the test file, so that relative rule_files resolve from its
	// directory and an error in the made-up part names the test file.
	return config.Parse(f.Path, data, nil)
}

// accountOf returns the test's account with the config's exchange and
// labels where the test leaves them out.
func accountOf(cfg *config.Config, t *Test) (Account, bool) {
	a := t.Account
	i := slices.IndexFunc(cfg.Accounts, func(c config.Account) bool { return c.Name == a.Name })
	if i < 0 {
		return a, false
	}
	if a.Exchange == "" {
		a.Exchange = cfg.Accounts[i].Exchange
	}
	if a.Labels == nil {
		a.Labels = cfg.Accounts[i].Labels
	}
	return a, true
}

// got is one notice as a test compares it.
type got struct {
	Rule, Severity, Account, Symbol, Side, Kind, Reason string
}

func (g got) String() string {
	s := g.Kind + " " + g.Rule + " " + g.Severity
	if g.Symbol != "" {
		s += " " + g.Symbol
	}
	if g.Side != "" {
		s += " " + g.Side
	}
	if g.Reason != "" {
		s += " (" + g.Reason + ")"
	}
	return s
}

// subject is what pairs a missing notice with an unexpected one.
func (g got) subject() got {
	return got{Rule: g.Rule, Account: g.Account, Symbol: g.Symbol, Side: g.Side}
}

// run evaluates t and returns its differences, one "at T: …" each.
func (t *Test) run(compiled []*rules.Rule, acct Account, start time.Time, trace func(time.Duration, got)) []string {
	engine := rules.NewEngine(compiled, nil)
	hist := metrics.NewEquityHistory(metrics.DefaultHistoryCapacity)

	// The evaluation times: every interval tick up to the last step or
	// expectation, and each step and expectation time.
	stepAt := make([]time.Duration, len(t.Steps))
	var at, end time.Duration
	for i := range t.Steps {
		if i > 0 {
			at += t.Interval
		}
		if t.Steps[i].At != nil {
			at = *t.Steps[i].At
		}
		stepAt[i] = at
	}
	end = at
	want := make(map[time.Duration][]Want)
	var checkAt []time.Duration
	for _, e := range t.Expect {
		if _, dup := want[e.At]; !dup {
			checkAt = append(checkAt, e.At)
		}
		want[e.At] = append(want[e.At], e.Alerts...)
		end = max(end, e.At)
	}
	times := slices.Clone(stepAt)
	times = append(times, checkAt...)
	for d := time.Duration(0); d <= end; d += t.Interval {
		times = append(times, d)
	}
	slices.Sort(times)
	times = slices.Compact(times)

	var (
		state       account
		next        int
		seq         int
		stale       bool
		lastSuccess = start
		seen        = make(map[time.Duration][]got)
	)
	for _, d := range times {
		if next == 0 && d < stepAt[0] {
			continue // no data yet
		}
		now := start.Add(d)
		var step *Step
		if next < len(t.Steps) && stepAt[next] == d {
			step = &t.Steps[next]
			state.apply(step)
			if step.Stale != nil {
				stale = *step.Stale
			}
			next++
		}
		var m *metrics.Account
		if stale {
			m = metrics.Stale(acct.Name, acct.Exchange, acct.Labels, lastSuccess, now)
			if step != nil {
				m.Events = state.snapshot(step, now, &seq).Events
			}
		} else {
			m = metrics.Compute(acct.Name, acct.Exchange, acct.Labels, state.snapshot(step, now, &seq), hist, now)
			lastSuccess = now
		}
		res := engine.Evaluate(m, now)
		_, check := want[d]
		for _, n := range res.Notices {
			a := n.Alert
			g := got{a.Rule, a.Severity.String(), a.Account, a.Symbol, a.Side, string(a.Kind), a.Reason}
			if trace != nil {
				trace(d, g)
			}
			if check {
				seen[d] = append(seen[d], g)
			}
		}
	}

	var diffs []string
	for _, d := range checkAt {
		for _, msg := range compare(acct.Name, want[d], seen[d]) {
			diffs = append(diffs, fmt.Sprintf("at %s: %s", Dur(d), msg))
		}
	}
	return diffs
}

// compare matches wanted against got in any order and describes what
// differs: a wrong kind or severity on the same subject, else a missing or
// an unexpected notice.
func compare(account string, wanted []Want, seen []got) []string {
	var missing []got
	rest := slices.Clone(seen)
	for _, w := range wanted {
		g := got(w)
		if g.Account == "" {
			g.Account = account
		}
		i := slices.IndexFunc(rest, func(s got) bool {
			if g.Reason == "" {
				s.Reason = ""
			}
			return s == g
		})
		if i < 0 {
			missing = append(missing, g)
			continue
		}
		rest = slices.Delete(rest, i, i+1)
	}
	var out []string
	for _, m := range missing {
		i := slices.IndexFunc(rest, func(s got) bool { return s.subject() == m.subject() })
		if i < 0 {
			out = append(out, "missing "+m.String()+inAccount(m, account))
			continue
		}
		out = append(out, fmt.Sprintf("want %s, got %s%s", m, rest[i], inAccount(m, account)))
		rest = slices.Delete(rest, i, i+1)
	}
	for _, g := range rest {
		out = append(out, "unexpected "+g.String()+inAccount(g, account))
	}
	if len(out) > 0 && len(seen) == 0 {
		out = append(out, "(no notice at all at this evaluation)")
	}
	return out
}

func inAccount(g got, account string) string {
	if g.Account == account {
		return ""
	}
	return " on account " + g.Account
}
