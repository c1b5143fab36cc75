package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// DataStale is the name of the built-in rule that fires when an account has
// had no fresh data for longer than its stale_after ("monitoring is blind").
// User rules cannot take this name; config validation rejects it.
const DataStale = config.DataStaleRule

// Rule scopes, as written in the config.
const (
	ScopeAccount  = "account"
	ScopePosition = "position"
	ScopeEvent    = "event"
)

const (
	dataStaleRepeat  = 30 * time.Minute // how often data-stale repeats while firing
	numSeverities    = int(notifiers.Critical) + 1
	manySymbolsLimit = 8 // above this a symbols filter uses a map
)

type scope uint8

const (
	scopeAccountID scope = iota + 1
	scopePositionID
	scopeEventID
)

// Rule is a compiled rule. Everything Evaluate needs is resolved ahead of
// time (metric IDs, thresholds and hysteresis indexed by severity, filters)
// so evaluating a rule against a target allocates nothing. A Rule is
// immutable after Compile and safe to share between engines and goroutines.
type Rule struct {
	// Name is the rule's name. User rules have unique names; the built-in
	// data-stale rule exists once per account under the name DataStale.
	Name string
	// Scope is ScopeAccount, ScopePosition or ScopeEvent.
	Scope string
	// Metric is the metric a threshold rule watches ("" for event rules);
	// with any:, its first condition's.
	Metric string
	// Event is the event kind an event rule fires on ("" otherwise).
	Event exchanges.EventKind

	scope scope
	// conds are the rule's conditions: one, or its any: list. The alert
	// fires at the highest severity any of them gives.
	conds    []cond
	eventSev notifiers.Severity
	forDur   time.Duration
	repeat   [numSeverities]time.Duration
	// keepFor is keep_firing_for: a firing alert keeps each severity this
	// long after the condition last held it.
	keepFor time.Duration
	// daily is set by window: day: the drawdown is taken since the last
	// reset (resetAt after midnight in loc), and the alert keeps each
	// severity it reached until the next reset.
	daily   bool
	resetAt time.Duration
	loc     *time.Location
	// staleOK: every condition watches data_age_seconds, which a stale
	// evaluation judges too.
	staleOK      bool
	notify       []string
	accounts     []string // nil: every account
	known        []string // the config's accounts; states of others are dropped
	symbols      []string // nil: every symbol
	symbolSet    map[string]struct{}
	sendResolved bool
	labels       map[string]string
	summary      *template.Template
	runbook      *template.Template
}

// cond is one compiled condition: a metric and its thresholds.
type cond struct {
	name   string
	metric metrics.ID
	above  bool
	thr    [numSeverities]float64
	hyst   [numSeverities]float64
	has    uint8 // bit s set: severity s has a threshold
	// window is non-zero for a drawdown_pct condition with another rolling
	// window than the 24h the metric is computed over; daily for window:
	// day. Either way its value comes from Account.Drawdown.
	window time.Duration
	daily  bool
}

// Threshold returns the rule's threshold for severity s and whether the rule
// has one (with any:, its first condition's).
func (r *Rule) Threshold(s notifiers.Severity) (float64, bool) {
	if len(r.conds) == 0 {
		return 0, false
	}
	c := &r.conds[0]
	if s <= notifiers.None || int(s) >= numSeverities || c.has&(1<<s) == 0 {
		return 0, false
	}
	return c.thr[s], true
}

// Op is "above" or "below" for threshold rules and "" for event rules (with
// any:, its first condition's).
func (r *Rule) Op() string {
	if r.scope == scopeEventID || len(r.conds) == 0 {
		return ""
	}
	return r.conds[0].op()
}

func (c *cond) op() string {
	if c.above {
		return "above"
	}
	return "below"
}

// AppliesTo reports whether the rule watches the named account.
func (r *Rule) AppliesTo(account string) bool {
	return r.accounts == nil || slices.Contains(r.accounts, account)
}

func (r *Rule) symbolOK(sym string) bool {
	switch {
	case r.symbols == nil:
		return true
	case r.symbolSet != nil:
		_, ok := r.symbolSet[sym]
		return ok
	default:
		return slices.Contains(r.symbols, sym)
	}
}

// severity is the most severe level whose plain threshold v crosses.
func (c *cond) severity(v float64) notifiers.Severity {
	for s := notifiers.Critical; s > notifiers.None; s-- {
		if c.has&(1<<s) == 0 {
			continue
		}
		if c.above && v > c.thr[s] || !c.above && v < c.thr[s] {
			return s
		}
	}
	return notifiers.None
}

// held is the most severe level up to cur that v still matches once
// hysteresis is taken into account: a level is only left when the value has
// moved that level's hysteresis back past its threshold.
func (c *cond) held(v float64, cur notifiers.Severity) notifiers.Severity {
	if int(cur) >= numSeverities {
		cur = notifiers.Critical
	}
	for s := cur; s > notifiers.None; s-- {
		if c.has&(1<<s) == 0 {
			continue
		}
		if c.above && v > c.thr[s]-c.hyst[s] || !c.above && v < c.thr[s]+c.hyst[s] {
			return s
		}
	}
	return notifiers.None
}

// condIndex is the index of the condition a state's last notice was about
// (its Metric and Op), 0 when none matches (a state from before any:).
func (r *Rule) condIndex(metric, op string) int {
	for i := range r.conds {
		if r.conds[i].name == metric && r.conds[i].op() == op {
			return i
		}
	}
	return 0
}

// lastReset is the latest daily reset of a window: day rule at or before now.
func (r *Rule) lastReset(now time.Time) time.Time {
	t := now.In(r.loc)
	y, m, d := t.Date()
	h, min := int(r.resetAt/time.Hour), int(r.resetAt%time.Hour/time.Minute)
	reset := time.Date(y, m, d, h, min, 0, 0, r.loc)
	if reset.After(now) {
		reset = time.Date(y, m, d-1, h, min, 0, 0, r.loc)
	}
	return reset
}

// Compile compiles every rule of cfg plus one built-in data-stale rule per
// account.
//
// cfg must come from config.Load or config.Parse: Compile relies on their
// validation and defaults (each rule's Scope set, its metric, event and
// severity names known, its Repeat filled; each account's StaleAfter set)
// and does not check them again. Its user-facing errors are the ones the
// loader cannot see: summary and runbook templates that do not parse or
// execute, returned together as config.Errors, each positioned at the
// offending key. A config that breaks the loader's guarantees is an internal
// error, returned as a plain error naming the rule.
func Compile(cfg *config.Config) ([]*Rule, error) {
	if cfg == nil {
		return nil, errors.New("compile rules: no config")
	}
	known := make([]string, 0, len(cfg.Accounts))
	for i := range cfg.Accounts {
		known = append(known, cfg.Accounts[i].Name)
	}
	var errs config.Errors
	out := make([]*Rule, 0, len(cfg.Rules)+len(cfg.Accounts))
	for i := range cfg.Rules {
		cr := &cfg.Rules[i]
		r, err := compileRule(cr, known)
		if err != nil {
			return nil, fmt.Errorf("compile rule %q: %w (config not validated?)", cr.Name, err)
		}
		errs = append(errs, r.compileTemplates(cr.At, cr.Summary, cr.Runbook)...)
		out = append(out, r)
	}
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		r, err := dataStaleRule(a, known)
		if err != nil {
			return nil, fmt.Errorf("compile rule %q of account %q: %w (config not validated?)", DataStale, a.Name, err)
		}
		errs = append(errs, r.compileTemplates(a.At, dataStaleSummary, dataStaleRunbook)...)
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// compileRule resolves a validated rule, templates aside. An error means cr
// breaks a guarantee of config validation.
func compileRule(cr *config.Rule, known []string) (*Rule, error) {
	r := &Rule{
		Name:         cr.Name,
		Scope:        cr.Scope,
		forDur:       cr.For,
		keepFor:      cr.KeepFiringFor,
		notify:       cloneStrings(cr.Notify),
		accounts:     cloneStrings(cr.Accounts),
		known:        known,
		symbols:      cloneStrings(cr.Symbols),
		sendResolved: cr.SendResolved,
		labels:       cr.Labels,
	}
	if len(r.symbols) > manySymbolsLimit {
		r.symbolSet = make(map[string]struct{}, len(r.symbols))
		for _, s := range r.symbols {
			r.symbolSet[s] = struct{}{}
		}
	}
	var err error
	switch cr.Scope {
	case ScopeEvent:
		r.scope = scopeEventID
		err = compileEvent(r, cr)
	case ScopeAccount:
		r.scope = scopeAccountID
		err = compileConditions(r, cr)
	case ScopePosition:
		r.scope = scopePositionID
		err = compileConditions(r, cr)
	default:
		err = fmt.Errorf("unknown scope %q", cr.Scope)
	}
	if err != nil {
		return nil, err
	}
	for name, d := range cr.Repeat {
		s, ok := notifiers.ParseSeverity(name)
		if !ok {
			return nil, fmt.Errorf("unknown repeat severity %q", name)
		}
		r.repeat[s] = d
	}
	return r, nil
}

func compileEvent(r *Rule, cr *config.Rule) error {
	switch k := exchanges.EventKind(cr.Event); k {
	case exchanges.MarginCall, exchanges.Liquidation, exchanges.KeyProblem:
		r.Event = k
	default:
		return fmt.Errorf("unknown event %q", cr.Event)
	}
	s, ok := notifiers.ParseSeverity(cr.Severity)
	if !ok {
		return fmt.Errorf("unknown severity %q", cr.Severity)
	}
	r.eventSev = s
	return nil
}

func compileConditions(r *Rule, cr *config.Rule) error {
	conds := cr.Conditions()
	switch {
	case len(conds) == 0:
		return errors.New("needs a metric with thresholds, or conditions under any")
	case len(conds) > config.MaxConditions:
		return fmt.Errorf("has %d conditions, more than %d", len(conds), config.MaxConditions)
	}
	if cr.Daily {
		at, err := config.ParseResetAt(cr.ResetAt)
		if err != nil {
			return err
		}
		loc, err := config.LoadTimezone(cr.Timezone)
		if err != nil {
			return err
		}
		r.daily, r.resetAt, r.loc = true, at, loc
	}
	r.staleOK = true
	for i := range conds {
		c, err := compileCondition(r, cr, &conds[i])
		if err != nil {
			return err
		}
		r.conds = append(r.conds, c)
		r.staleOK = r.staleOK && c.metric == metrics.DataAgeSeconds
	}
	r.Metric = r.conds[0].name
	return nil
}

func compileCondition(r *Rule, cr *config.Rule, cd *config.Condition) (cond, error) {
	var c cond
	id, ok := metrics.Lookup(cd.Metric)
	if !ok {
		return c, fmt.Errorf("unknown metric %q", cd.Metric)
	}
	want := metrics.AccountScope
	if r.scope == scopePositionID {
		want = metrics.PositionScope
	}
	if id.Info().Scopes&want == 0 {
		return c, fmt.Errorf("metric %s is not defined at %s scope", cd.Metric, cr.Scope)
	}
	c.metric, c.name = id, cd.Metric
	if id == metrics.DrawdownPct {
		switch {
		case r.daily:
			c.daily = true
		case cr.Window != metrics.DefaultDrawdownWindow:
			c.window = cr.Window
		}
	}
	if len(cd.Above) > 0 == (len(cd.Below) > 0) {
		return c, errors.New("needs thresholds in exactly one of above and below")
	}
	thr := cd.Above
	c.above = len(cd.Above) > 0
	if !c.above {
		thr = cd.Below
	}
	for name, v := range thr {
		s, ok := notifiers.ParseSeverity(name)
		if !ok {
			return c, fmt.Errorf("unknown severity %q", name)
		}
		c.thr[s] = v
		c.hyst[s] = cd.HysteresisFor(name)
		c.has |= 1 << s
	}
	return c, nil
}

// Texts of the built-in data-stale rule.
const (
	dataStaleSummary = `monitoring of account {{.Account}} is blind: no fresh data for {{printf "%.0f" .Value}} s`
	dataStaleRunbook = `No other alert on this account can fire until data returns. Check the host's network and DNS, ` +
		`the exchange API status page and the marginwatch logs (rate limits, key problems); ` +
		`meanwhile watch your positions in the exchange app.`
)

// dataStaleRule is the built-in "monitoring is blind" rule of one account,
// templates aside.
func dataStaleRule(a *config.Account, known []string) (*Rule, error) {
	if a.StaleAfter <= 0 {
		return nil, fmt.Errorf("stale_after %v is not positive", a.StaleAfter)
	}
	c := cond{name: metrics.DataAgeSeconds.String(), metric: metrics.DataAgeSeconds, above: true, has: 1 << notifiers.Critical}
	c.thr[notifiers.Critical] = a.StaleAfter.Seconds()
	r := &Rule{
		Name:         DataStale,
		Scope:        ScopeAccount,
		Metric:       c.name,
		scope:        scopeAccountID,
		conds:        []cond{c},
		staleOK:      true,
		accounts:     []string{a.Name},
		known:        known,
		sendResolved: true,
	}
	r.repeat[notifiers.Critical] = dataStaleRepeat
	return r, nil
}

// compileTemplates sets r's summary and runbook templates. Their errors are
// positioned at the keys in at, in file order.
func (r *Rule) compileTemplates(at config.Location, summary, runbook string) config.Errors {
	var errs config.Errors
	var err *config.Error
	if r.summary, err = compileTemplate(at, "summary", summary); err != nil {
		errs = append(errs, err)
	}
	if r.runbook, err = compileTemplate(at, "runbook", runbook); err != nil {
		errs = append(errs, err)
	}
	slices.SortStableFunc(errs, func(a, b *config.Error) int { return cmpPos(a.Pos, b.Pos) })
	return errs
}

func cmpPos(a, b config.Pos) int {
	if a.Line != b.Line {
		return a.Line - b.Line
	}
	return a.Col - b.Col
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s)
}

// compileTemplate parses text and executes it once against sample data, so
// that an unknown field or a misused function is a config error now rather
// than a broken alert at 3 a.m. An empty text yields a nil template (the
// default summary, no runbook).
func compileTemplate(at config.Location, field, text string) (*template.Template, *config.Error) {
	if text == "" {
		return nil, nil
	}
	t, err := template.New(field).Funcs(funcMap).Parse(text)
	if err != nil {
		return nil, at.Errorf(field, "invalid template: %s", templateError(field, err))
	}
	var sb strings.Builder
	if err := t.Execute(&sb, sampleData()); err != nil {
		return nil, at.Errorf(field, "invalid template: %s", templateError(field, err))
	}
	return t, nil
}

// templateFields lists TemplateData's fields for the unknown-field hint.
const templateFields = "Account, Rule, Symbol, Side, Metric, Value, Threshold, ValueText, ThresholdText, Op, Severity, Status, Reason, Event, Message, Labels, Metrics"

// templateError rewords a text/template error for a rule author: the
// template's name and Go type names say nothing to them, the position inside
// the template does.
//
//	template: summary:1: unclosed action
//	  → line 1: unclosed action
//	template: summary:1:2: executing "summary" at <.Foo>: can't evaluate field Foo in type *rules.TemplateData
//	  → line 1 col 2: <.Foo>: no field Foo (fields: Account, …)
func templateError(name string, err error) string {
	msg, ok := strings.CutPrefix(err.Error(), "template: "+name+":")
	if !ok {
		return err.Error()
	}
	var line, col string
	line, msg, _ = strings.Cut(msg, ": ")
	if l, c, ok := strings.Cut(line, ":"); ok {
		line, col = l, c
	}
	if !digits(line) || !digits(col) && col != "" {
		return strings.TrimPrefix(err.Error(), "template: ")
	}
	msg = strings.TrimPrefix(msg, `executing "`+name+`" at `)
	const noField = "can't evaluate field "
	if i := strings.Index(msg, noField); i >= 0 {
		f, _, _ := strings.Cut(msg[i+len(noField):], " ")
		if strings.HasSuffix(msg, "in type *rules.TemplateData") {
			msg = msg[:i] + "no field " + f + " (fields: " + templateFields + ")"
		} else {
			msg = msg[:i] + "no field " + f + " in " + msg[strings.LastIndex(msg, "in type ")+len("in type "):]
		}
	}
	if col != "" {
		return "line " + line + " col " + col + ": " + msg
	}
	return "line " + line + ": " + msg
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func sampleData() *TemplateData {
	m := make(map[string]float64)
	for _, id := range metrics.All() {
		m[id.String()] = 1
	}
	return &TemplateData{
		Account:       "main",
		Rule:          "rule",
		Symbol:        "BTCUSDT",
		Side:          "long",
		Metric:        "liq_distance_pct",
		Value:         1,
		Threshold:     1,
		ValueText:     "1%",
		ThresholdText: "1%",
		Op:            "below",
		Severity:      "warning",
		Status:        string(notifiers.Firing),
		Labels:        map[string]string{},
		Metrics:       m,
	}
}

var funcMap = template.FuncMap{"num": formatNum}
