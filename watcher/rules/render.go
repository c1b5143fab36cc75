package rules

import (
	"math"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// TemplateData is what a rule's summary and runbook templates are executed
// with. Field names are part of the rule-file contract.
type TemplateData struct {
	// Account is the account name, Rule the rule name.
	Account string
	Rule    string
	// Symbol and Side identify the position ("BTCUSDT", "long" or "short").
	// Account alerts have both empty, except the per-pool alerts of an
	// account with several margin pools, whose Symbol is the pool's asset
	// ("BTC", "USDC"; also Labels["asset"]).
	Symbol string
	Side   string
	// Metric is the watched metric's name ("" for events).
	Metric string
	// Value is the metric's value; Threshold is the threshold of Severity.
	Value     float64
	Threshold float64
	// ValueText and ThresholdText are Value and Threshold in the metric's
	// unit, as every channel shows them ("41%" for a margin_ratio of 0.41,
	// "5x", "0.0100%").
	ValueText, ThresholdText string
	// Op is "above" or "below" ("" for events).
	Op string
	// Severity is "info", "warning" or "critical".
	Severity string
	// Status is "firing" or "resolved".
	Status string
	// Reason says why a closed alert ended: "closed" or "liquidated" (its
	// position went away); "" otherwise. Only a runbook sees it: a closed
	// alert's summary is built in, since a summary written for a firing
	// alert ("is 3% from liquidation") would mislead.
	Reason string
	// Event and Message describe the occurrence for event rules
	// (Event is margin_call, liquidation or key_problem).
	Event   string
	Message string
	// Labels are the account's labels merged with the rule's (the rule wins).
	Labels map[string]string
	// Metrics holds every metric present on the target by name, e.g.
	// {{index .Metrics "leverage"}}; position alerts see the position's
	// metrics, account alerts the account's.
	Metrics map[string]float64
}

// target is what one evaluation of a rule looks at: the account itself, one
// of its margin pools (asset set), or one position. set is nil when the
// target is gone (a closed position).
type target struct {
	sym, side string
	asset     string
	set       *metrics.Set
	pos       *metrics.Position
}

// alert builds the notification for st about r's condition c (the one
// that decided its severity). It runs only when a notice is due, so it may
// allocate freely.
func alert(r *Rule, c *cond, acct *metrics.Account, t target, st *State, kind notifiers.Kind, now time.Time) notifiers.Alert {
	status := notifiers.Firing
	if kind == notifiers.KindResolved {
		status = notifiers.Resolved
	}
	a := notifiers.Alert{
		ID:        st.ID,
		Status:    status,
		Kind:      kind,
		Severity:  st.Severity,
		Rule:      r.Name,
		Account:   acct.Name,
		Symbol:    st.Key.Symbol,
		Side:      st.Key.Side,
		Metric:    c.name,
		Value:     st.Value,
		Threshold: c.thr[clampSev(st.Severity)],
		Op:        c.op(),
		StartsAt:  st.StartsAt,
		At:        now,
		Labels:    alertLabels(acct, r, t.asset),
		Context:   alertContext(r, acct, t),
	}
	var m map[string]float64
	if t.set != nil {
		m = t.set.Map()
	} else {
		m = map[string]float64{}
	}
	d := &TemplateData{
		Account:       a.Account,
		Rule:          a.Rule,
		Symbol:        a.Symbol,
		Side:          a.Side,
		Metric:        a.Metric,
		Value:         a.Value,
		Threshold:     a.Threshold,
		ValueText:     a.Figure(a.Metric, a.Value),
		ThresholdText: a.Figure(a.Metric, a.Threshold),
		Op:            a.Op,
		Severity:      a.Severity.String(),
		Status:        string(a.Status),
		Labels:        a.Labels,
		Metrics:       m,
	}
	a.Summary = render(r.summary, d, defaultSummary)
	a.Runbook = render(r.runbook, d, nil)
	return a
}

// closing builds the KindClosed notice of st, whose target is gone, with
// Closed. The rule at hand says what the notice tells (labels and runbook as
// the rule has them now; the runbook sees .Reason); the context is what is
// left of the account.
func closing(r *Rule, acct *metrics.Account, st State, reason string, now time.Time) notifiers.Alert {
	c := &r.conds[r.condIndex(st.Metric, st.Op)]
	st.Metric, st.Op = c.name, c.op()
	st.Threshold = c.thr[clampSev(st.Severity)]
	asset := ""
	if r.scope == scopeAccountID {
		asset = st.Key.Symbol // a pool's alert
	}
	st.Labels = alertLabels(acct, r, asset)
	st.Runbook = render(r.runbook, &TemplateData{
		Account:       st.Key.Account,
		Rule:          r.Name,
		Symbol:        st.Key.Symbol,
		Side:          st.Key.Side,
		Metric:        st.Metric,
		Value:         st.Value,
		Threshold:     st.Threshold,
		ValueText:     notifiers.FormatMetricIn(st.Metric, st.Value, st.Labels["asset"]),
		ThresholdText: notifiers.FormatMetricIn(st.Metric, st.Threshold, st.Labels["asset"]),
		Op:            st.Op,
		Severity:      st.Severity.String(),
		Status:        string(notifiers.Resolved),
		Reason:        reason,
		Labels:        st.Labels,
		Metrics:       map[string]float64{},
	}, nil)
	a := Closed(st, reason, "", now)
	a.Context = alertContext(r, acct, target{sym: st.Key.Symbol, side: st.Key.Side, asset: asset})
	return a
}

// alertLabels are the account's labels merged with the rule's (the rule
// wins), and for a pool's alert "asset", the pool's, which nothing overrides.
func alertLabels(acct *metrics.Account, r *Rule, asset string) map[string]string {
	m := mergeLabels(acct.Labels, r.labels)
	if asset == "" {
		return m
	}
	if m == nil {
		m = make(map[string]string, 1)
	}
	m["asset"] = asset
	return m
}

// eventAlert builds the notification for one account event.
func eventAlert(r *Rule, acct *metrics.Account, ev *exchanges.Event, now time.Time) notifiers.Alert {
	starts := ev.Time
	if starts.IsZero() {
		starts = now
	}
	k := Key{Account: acct.Name, Rule: r.Name, Symbol: ev.Symbol, Side: string(ev.Side)}
	id := ev.ID
	if id == "" {
		id = strconv.FormatInt(starts.UnixNano(), 10)
	}
	a := notifiers.Alert{
		ID:       IncidentID(k, id, starts),
		Status:   notifiers.Firing,
		Kind:     notifiers.KindEvent,
		Severity: r.eventSev,
		Rule:     r.Name,
		Account:  acct.Name,
		Symbol:   ev.Symbol,
		Side:     string(ev.Side),
		StartsAt: starts,
		At:       now,
		Labels:   mergeLabels(acct.Labels, r.labels),
		Context:  alertContext(r, acct, target{set: &acct.Metrics}),
	}
	d := &TemplateData{
		Account:  a.Account,
		Rule:     a.Rule,
		Symbol:   a.Symbol,
		Side:     a.Side,
		Severity: a.Severity.String(),
		Status:   string(a.Status),
		Event:    string(ev.Kind),
		Message:  ev.Message,
		Labels:   a.Labels,
		Metrics:  acct.Metrics.Map(),
	}
	a.Summary = render(r.summary, d, defaultSummary)
	a.Runbook = render(r.runbook, d, nil)
	return a
}

func clampSev(s notifiers.Severity) notifiers.Severity {
	if s < notifiers.None || int(s) >= numSeverities {
		return notifiers.None
	}
	return s
}

// render executes t, falling back to def (or "") when there is no template
// or it fails on this data: a broken summary must not cost the alert.
func render(t *template.Template, d *TemplateData, def func(*TemplateData) string) string {
	if t != nil {
		var sb strings.Builder
		if err := t.Execute(&sb, d); err == nil {
			return sb.String()
		}
	}
	if def == nil {
		return ""
	}
	return def(d)
}

// defaultSummary reads like "BTCUSDT long liq_distance_pct 6.2 < 7 (critical)".
func defaultSummary(d *TemplateData) string {
	var b strings.Builder
	if d.Event != "" {
		b.WriteString(d.Event)
		b.WriteString(" on ")
		b.WriteString(d.Account)
		if d.Symbol != "" {
			b.WriteString(" ")
			b.WriteString(d.Symbol)
		}
		if d.Side != "" {
			b.WriteString(" ")
			b.WriteString(d.Side)
		}
		if d.Message != "" {
			b.WriteString(": ")
			b.WriteString(d.Message)
		}
		return b.String()
	}
	if d.Status == string(notifiers.Resolved) {
		b.WriteString("resolved: ")
	}
	if d.Side == "" {
		// Account alert (Symbol may name a margin pool's asset).
		b.WriteString(d.Account)
		b.WriteString(" ")
	}
	if d.Symbol != "" {
		b.WriteString(d.Symbol)
		b.WriteString(" ")
	}
	if d.Side != "" {
		b.WriteString(d.Side)
		b.WriteString(" ")
	}
	b.WriteString(d.Metric)
	b.WriteString(" ")
	b.WriteString(notifiers.FormatMetricIn(d.Metric, d.Value, d.Labels["asset"]))
	op := " > "
	if d.Op == "below" {
		op = " < "
	}
	if d.Status == string(notifiers.Resolved) {
		b.WriteString(" (was ")
		b.WriteString(d.Severity)
		b.WriteString(":")
		b.WriteString(op)
		b.WriteString(notifiers.FormatMetricIn(d.Metric, d.Threshold, d.Labels["asset"]))
		b.WriteString(")")
		return b.String()
	}
	if past := d.Op == "below" && d.Value < d.Threshold || d.Op != "below" && d.Value > d.Threshold; !past {
		// Held by hysteresis, keep_firing_for or a window: day latch: the
		// value alone would not fire, and must not read as if it did.
		b.WriteString(" (")
		b.WriteString(d.Severity)
		b.WriteString(", fired at")
		b.WriteString(op)
		b.WriteString(notifiers.FormatMetricIn(d.Metric, d.Threshold, d.Labels["asset"]))
		b.WriteString(", still firing)")
		return b.String()
	}
	b.WriteString(op)
	b.WriteString(notifiers.FormatMetricIn(d.Metric, d.Threshold, d.Labels["asset"]))
	b.WriteString(" (")
	b.WriteString(d.Severity)
	b.WriteString(")")
	return b.String()
}

// formatNum prints v with about four significant digits, never in exponent
// form and never dropping integer digits: 6.2, 0.8512, 64231, 0.0001235.
func formatNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	dec := 3
	if a := math.Abs(v); a > 0 {
		dec = 3 - int(math.Floor(math.Log10(a)))
	}
	dec = max(0, min(dec, 12))
	p := math.Pow(10, float64(dec))
	return strconv.FormatFloat(math.Round(v*p)/p, 'f', -1, 64)
}

func mergeLabels(acct, rule map[string]string) map[string]string {
	if len(acct) == 0 && len(rule) == 0 {
		return nil
	}
	m := make(map[string]string, len(acct)+len(rule))
	for k, v := range acct {
		m[k] = v
	}
	for k, v := range rule {
		m[k] = v
	}
	return m
}

// alertContext is what a trader wants to see at a glance next to the alert.
func alertContext(r *Rule, acct *metrics.Account, t target) map[string]float64 {
	c := make(map[string]float64, 8)
	put := func(name string, s *metrics.Set, id metrics.ID) bool {
		if s == nil {
			return false
		}
		v, ok := s.Get(id)
		// An infinite metric (equity at or below zero) is left out: the
		// alert's Value carries it where it matters, and a Context that
		// JSON cannot hold would cost the outbox the whole alert.
		if ok && !math.IsInf(v, 0) {
			c[name] = v
		}
		return ok
	}
	// acctSet holds the account money metrics relevant to this target: the
	// account's, or with several margin pools the target's pool's.
	acctSet := &acct.Metrics
	if len(acct.Assets) > 0 {
		asset := t.asset
		if t.pos != nil && t.pos.Raw != nil {
			asset = t.pos.Raw.Pool
			if asset == "" {
				asset = t.pos.Raw.MarginAsset
			}
		}
		if s := poolSet(acct, asset); s != nil {
			acctSet = s
		}
	}

	if r.scope == scopePositionID {
		if t.pos != nil && t.pos.Raw != nil {
			raw := t.pos.Raw
			// Exchange figures, unlike metrics, may be NaN or infinite; JSON
			// (the outbox) cannot hold those, so they are left out.
			finite := func(name string, v float64) {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					c[name] = v
				}
			}
			finite("mark_price", raw.MarkPrice)
			finite("entry_price", raw.EntryPrice)
			if raw.LiquidationPrice > 0 {
				finite("liq_price", raw.LiquidationPrice)
			}
			if raw.Leverage > 0 {
				finite("leverage", raw.Leverage)
			}
		}
		put("liq_distance_pct", t.set, metrics.LiqDistancePct)
		put("leverage", t.set, metrics.Leverage)
		put("equity", acctSet, metrics.Equity)
		// An isolated position has its own margin ratio; a cross position
		// lives or dies with its pool's (with several, not the account's
		// highest, which may be another pool's).
		name := "margin_ratio"
		if put(name, t.set, metrics.MarginRatio) {
			name = "account_margin_ratio"
		}
		if !put(name, acctSet, metrics.MarginRatio) {
			put(name, &acct.Metrics, metrics.MarginRatio)
		}
		return c
	}
	put("equity", acctSet, metrics.Equity)
	if !put("margin_ratio", acctSet, metrics.MarginRatio) {
		put("margin_ratio", &acct.Metrics, metrics.MarginRatio)
	}
	if !put("effective_leverage", acctSet, metrics.EffectiveLeverage) {
		put("effective_leverage", &acct.Metrics, metrics.EffectiveLeverage)
	}
	return c
}

// IncidentID names an incident: FNV-1a over its key, a discriminator and its
// start, so every notice about one incident carries the same ID and the next
// incident of the same key gets a new one. It is the one incident-id scheme
// of the daemon: rule alerts, events and the daemon's own alerts
// (notifier-failing, config-reload-failed) all use it.
func IncidentID(k Key, extra string, t time.Time) string {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		// Hash a zero byte between fields so ("ab","c") and ("a","bc") differ.
		h *= prime
	}
	add(k.Account)
	add(k.Rule)
	add(k.Symbol)
	add(k.Side)
	add(extra)
	n := uint64(t.UnixNano())
	for i := 0; i < 8; i++ {
		h ^= n & 0xff
		h *= prime
		n >>= 8
	}
	s := strconv.FormatUint(h, 16)
	return strings.Repeat("0", 16-len(s)) + s
}
