package rules

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// Hit is one rule that fires now on one target, as FiringNow sees it.
type Hit struct {
	Rule      string             `json:"rule"`
	Symbol    string             `json:"symbol,omitempty"`
	Side      string             `json:"side,omitempty"`
	Severity  notifiers.Severity `json:"severity"`
	Metric    string             `json:"metric"`
	Value     float64            `json:"value"`
	Threshold float64            `json:"threshold"`
	Summary   string             `json:"summary"`
}

// FiringNow evaluates rules against acct without any state: no `for`, no
// hysteresis, no keep_firing_for or window: day latch, no repeat timers and
// no events. It answers "which rules would fire now, at which severity", for
// `marginwatch status`: a rule with any: conditions is one hit, at the
// highest severity they give, reporting the condition that gives it; a
// window: day drawdown is the drawdown since the last reset. Hits are ordered
// most severe first. A stale account is judged on data_age_seconds only, as
// Evaluate does.
func FiringNow(rules []*Rule, acct *metrics.Account, now time.Time) []Hit {
	if acct == nil {
		return nil
	}
	var hits []Hit
	hit := func(r *Rule, t target) {
		var rd reading
		r.read(&rd, acct, t, now, false)
		sev, dec := r.judge(&rd, notifiers.None)
		if sev == notifiers.None {
			return
		}
		c := &r.conds[dec]
		st := &State{
			Key:       Key{Account: acct.Name, Rule: r.Name, Symbol: t.sym, Side: t.side},
			Phase:     Active,
			Severity:  sev,
			StartsAt:  now,
			Value:     rd.v[dec],
			Threshold: c.thr[sev],
		}
		a := alert(r, c, acct, t, st, notifiers.KindFiring, now)
		hits = append(hits, Hit{
			Rule:      r.Name,
			Symbol:    t.sym,
			Side:      t.side,
			Severity:  sev,
			Metric:    c.name,
			Value:     st.Value,
			Threshold: st.Threshold,
			Summary:   a.Summary,
		})
	}
	for _, r := range rules {
		if r == nil || !r.AppliesTo(acct.Name) || r.scope == scopeEventID {
			continue
		}
		if acct.Stale && !r.staleOK {
			continue
		}
		switch r.scope {
		case scopeAccountID:
			if !perPool(r, acct) {
				hit(r, target{set: &acct.Metrics})
				continue
			}
			for i := range acct.Assets {
				hit(r, poolTarget(acct, i))
			}
		case scopePositionID:
			for i := range acct.Positions {
				p := &acct.Positions[i]
				if !r.symbolOK(p.Symbol) {
					continue
				}
				hit(r, target{sym: p.Symbol, side: string(p.Side), set: &p.Metrics, pos: p})
			}
		}
	}
	slices.SortStableFunc(hits, func(a, b Hit) int { return cmp.Compare(b.Severity, a.Severity) })
	return hits
}

// MarshalJSON writes a non-finite Value (equity at or below zero makes
// leverage infinite) as null, as status -json shows infinities (SPEC);
// encoding/json would refuse the whole document.
func (h Hit) MarshalJSON() ([]byte, error) {
	type fields Hit
	return json.Marshal(struct {
		fields
		Value     *float64 `json:"value"`
		Threshold *float64 `json:"threshold"`
	}{fields(h), finiteOrNil(h.Value), finiteOrNil(h.Threshold)})
}

// UnmarshalJSON reads what MarshalJSON wrote; a null Value or Threshold
// (not finite) becomes NaN, never a zero that reads like a figure.
func (h *Hit) UnmarshalJSON(b []byte) error {
	type fields Hit
	var v struct {
		fields
		Value     *float64 `json:"value"`
		Threshold *float64 `json:"threshold"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*h = Hit(v.fields)
	h.Value, h.Threshold = math.NaN(), math.NaN()
	if v.Value != nil {
		h.Value = *v.Value
	}
	if v.Threshold != nil {
		h.Threshold = *v.Threshold
	}
	return nil
}

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
