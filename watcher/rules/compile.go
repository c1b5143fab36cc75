package rules

import (
	"errors"
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
// User rules cannot take this name.
const DataStale = "data-stale"

// Rule scopes, as written in the config.
const (
	ScopeAccount  = "account"
	ScopePosition = "position"
	ScopeEvent    = "event"
)

// Defaults of the built-in data-stale rule.
const (
	dataStaleRepeat  = 30 * time.Minute
	defaultStale     = 60 * time.Second
	defaultWindow    = 24 * time.Hour
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
// time (metric ID, thresholds indexed by severity, filters) so evaluating a
// rule against a target allocates nothing. A Rule is immutable after Compile
// and safe to share between engines and goroutines.
type Rule struct {
	// Name is the rule's name. User rules have unique names; the built-in
	// data-stale rule exists once per account under the name DataStale.
	Name string
	// Scope is ScopeAccount, ScopePosition or ScopeEvent.
	Scope string
	// Metric is the metric a threshold rule watches ("" for event rules).
	Metric string
	// Event is the event kind an event rule fires on ("" otherwise).
	Event exchanges.EventKind

	scope    scope
	metric   metrics.ID
	above    bool
	thr      [numSeverities]float64
	has      uint8 // bit s set: severity s has a threshold
	eventSev notifiers.Severity
	hyst     float64
	forDur   time.Duration
	repeat   [numSeverities]time.Duration
	// window is non-zero for a drawdown_pct rule with another window than the
	// 24h the metric is computed over: its value comes from Account.Drawdown.
	window       time.Duration
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

// Threshold returns the rule's threshold for severity s and whether the rule
// has one.
func (r *Rule) Threshold(s notifiers.Severity) (float64, bool) {
	if s <= notifiers.None || int(s) >= numSeverities || r.has&(1<<s) == 0 {
		return 0, false
	}
	return r.thr[s], true
}

// Op is "above" or "below" for threshold rules and "" for event rules.
func (r *Rule) Op() string {
	switch {
	case r.scope == scopeEventID:
		return ""
	case r.above:
		return "above"
	default:
		return "below"
	}
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
func (r *Rule) severity(v float64) notifiers.Severity {
	for s := notifiers.Critical; s > notifiers.None; s-- {
		if r.has&(1<<s) == 0 {
			continue
		}
		if r.above && v > r.thr[s] || !r.above && v < r.thr[s] {
			return s
		}
	}
	return notifiers.None
}

// held is the most severe level up to cur that v still matches once
// hysteresis is taken into account: a level is only left when the value has
// moved hyst back past its threshold.
func (r *Rule) held(v float64, cur notifiers.Severity) notifiers.Severity {
	if int(cur) >= numSeverities {
		cur = notifiers.Critical
	}
	for s := cur; s > notifiers.None; s-- {
		if r.has&(1<<s) == 0 {
			continue
		}
		if r.above && v > r.thr[s]-r.hyst || !r.above && v < r.thr[s]+r.hyst {
			return s
		}
	}
	return notifiers.None
}

// Compile compiles every rule of cfg plus one built-in data-stale rule per
// account. Problems (unknown metric or severity, a metric the scope lacks, a
// summary or runbook template that does not parse or execute) are returned
// together as config.Errors, each positioned at the offending key.
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
		r, es := compileRule(&cfg.Rules[i], known)
		errs = append(errs, es...)
		if r != nil {
			out = append(out, r)
		}
	}
	for i := range cfg.Accounts {
		r, es := dataStaleRule(&cfg.Accounts[i], known)
		errs = append(errs, es...)
		if r != nil {
			out = append(out, r)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func compileRule(cr *config.Rule, known []string) (*Rule, config.Errors) {
	var errs config.Errors
	at := cr.At
	r := &Rule{
		Name:         cr.Name,
		hyst:         cr.Hysteresis,
		forDur:       cr.For,
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
	switch {
	case cr.Name == "":
		errs = append(errs, at.Errorf("name", "required"))
	case cr.Name == DataStale:
		errs = append(errs, at.Errorf("name", "%q is the built-in rule that watches for stale data; choose another name", DataStale))
	}
	if cr.Hysteresis < 0 {
		errs = append(errs, at.Errorf("hysteresis", "must not be negative"))
	}
	if cr.For < 0 {
		errs = append(errs, at.Errorf("for", "must not be negative"))
	}

	scopeName := cr.Scope
	if scopeName == "" {
		scopeName = inferScope(cr)
	}
	switch scopeName {
	case ScopeEvent:
		r.scope = scopeEventID
		errs = append(errs, compileEvent(r, cr)...)
	case ScopeAccount, ScopePosition:
		r.scope = scopeAccountID
		if scopeName == ScopePosition {
			r.scope = scopePositionID
		}
		errs = append(errs, compileThresholds(r, cr, scopeName)...)
	default:
		errs = append(errs, at.Errorf("scope", "unknown scope %q (want account, position or event)", cr.Scope))
	}
	r.Scope = scopeName

	for name, d := range cr.Repeat {
		s, ok := notifiers.ParseSeverity(name)
		if !ok {
			errs = append(errs, at.Errorf("repeat", "unknown severity %q (want info, warning or critical)", name))
			continue
		}
		if d < 0 {
			errs = append(errs, at.Errorf("repeat", "%s: must not be negative", name))
			continue
		}
		r.repeat[s] = d
	}

	var err *config.Error
	if r.summary, err = compileTemplate(at, "summary", cr.Summary); err != nil {
		errs = append(errs, err)
	}
	if r.runbook, err = compileTemplate(at, "runbook", cr.Runbook); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Map iteration above makes the order of repeat errors random;
		// report in a stable order.
		slices.SortStableFunc(errs, func(a, b *config.Error) int {
			return cmpPos(a.Pos, b.Pos)
		})
		return nil, errs
	}
	return r, nil
}

func cmpPos(a, b config.Pos) int {
	if a.Line != b.Line {
		return a.Line - b.Line
	}
	return a.Col - b.Col
}

// inferScope mirrors the loader's default for a rule compiled without it:
// event rules by their event, position-only metrics on positions, the rest on
// the account.
func inferScope(cr *config.Rule) string {
	if cr.Event != "" {
		return ScopeEvent
	}
	if id, ok := metrics.Lookup(cr.Metric); ok && id.Info().Scopes&metrics.AccountScope == 0 {
		return ScopePosition
	}
	return ScopeAccount
}

func compileEvent(r *Rule, cr *config.Rule) config.Errors {
	var errs config.Errors
	at := cr.At
	switch k := exchanges.EventKind(cr.Event); k {
	case exchanges.MarginCall, exchanges.Liquidation, exchanges.KeyProblem:
		r.Event = k
	case "":
		errs = append(errs, at.Errorf("event", "required for an event rule"))
	default:
		errs = append(errs, at.Errorf("event", "unknown event %q (want margin_call, liquidation or key_problem)", cr.Event))
	}
	if s, ok := notifiers.ParseSeverity(cr.Severity); ok {
		r.eventSev = s
	} else {
		errs = append(errs, at.Errorf("severity", "unknown severity %q (want info, warning or critical)", cr.Severity))
	}
	if cr.Metric != "" || len(cr.Above) > 0 || len(cr.Below) > 0 {
		errs = append(errs, at.Errorf("", "an event rule takes no metric or thresholds"))
	}
	return errs
}

func compileThresholds(r *Rule, cr *config.Rule, scopeName string) config.Errors {
	var errs config.Errors
	at := cr.At
	id, ok := metrics.Lookup(cr.Metric)
	if !ok {
		errs = append(errs, at.Errorf("metric", "unknown metric %q", cr.Metric))
	} else {
		want := metrics.AccountScope
		if r.scope == scopePositionID {
			want = metrics.PositionScope
		}
		if id.Info().Scopes&want == 0 {
			errs = append(errs, at.Errorf("metric", "%s is not defined at %s scope", cr.Metric, scopeName))
		}
		r.metric = id
		r.Metric = cr.Metric
		if id == metrics.DrawdownPct && cr.Window > 0 && cr.Window != defaultWindow {
			r.window = cr.Window
		}
	}
	field, thr := "above", cr.Above
	r.above = true
	switch {
	case len(cr.Above) > 0 && len(cr.Below) > 0:
		errs = append(errs, at.Errorf("below", "a rule has either above or below, not both"))
	case len(cr.Below) > 0:
		field, thr, r.above = "below", cr.Below, false
	case len(cr.Above) == 0:
		errs = append(errs, at.Errorf("", "a %s rule needs above or below thresholds", scopeName))
	}
	for name, v := range thr {
		s, ok := notifiers.ParseSeverity(name)
		if !ok {
			errs = append(errs, at.Errorf(field, "unknown severity %q (want info, warning or critical)", name))
			continue
		}
		r.thr[s] = v
		r.has |= 1 << s
	}
	return errs
}

// dataStaleRule is the built-in "monitoring is blind" rule of one account.
func dataStaleRule(a *config.Account, known []string) (*Rule, config.Errors) {
	stale := a.StaleAfter
	if stale <= 0 {
		stale = defaultStale
	}
	r := &Rule{
		Name:         DataStale,
		Scope:        ScopeAccount,
		Metric:       metrics.DataAgeSeconds.String(),
		scope:        scopeAccountID,
		metric:       metrics.DataAgeSeconds,
		above:        true,
		has:          1 << notifiers.Critical,
		accounts:     []string{a.Name},
		known:        known,
		sendResolved: true,
	}
	r.thr[notifiers.Critical] = stale.Seconds()
	r.repeat[notifiers.Critical] = dataStaleRepeat
	var errs config.Errors
	var err *config.Error
	if r.summary, err = compileTemplate(a.At, "summary",
		`monitoring of account {{.Account}} is blind: no fresh data for {{printf "%.0f" .Value}} s`); err != nil {
		errs = append(errs, err)
	}
	if r.runbook, err = compileTemplate(a.At, "runbook",
		`No other alert on this account can fire until data returns. Check the host's network and DNS, `+
			`the exchange API status page and the marginwatch logs (rate limits, key problems); `+
			`meanwhile watch your positions in the exchange app.`); err != nil {
		errs = append(errs, err)
	}
	return r, errs
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
const templateFields = "Account, Rule, Symbol, Side, Metric, Value, Threshold, Op, Severity, Status, Event, Message, Labels, Metrics"

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
		Account:   "main",
		Rule:      "rule",
		Symbol:    "BTCUSDT",
		Side:      "long",
		Metric:    "liq_distance_pct",
		Value:     1,
		Threshold: 1,
		Op:        "below",
		Severity:  "warning",
		Status:    string(notifiers.Firing),
		Labels:    map[string]string{},
		Metrics:   m,
	}
}

var funcMap = template.FuncMap{"num": formatNum}
