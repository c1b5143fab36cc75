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
// hysteresis, no repeat timers and no events. It answers "which rules would
// fire now, at which severity", for `marginwatch status`. Hits are ordered
// most severe first. A stale account is judged on data_age_seconds only, as
// Evaluate does.
func FiringNow(rules []*Rule, acct *metrics.Account, now time.Time) []Hit {
	if acct == nil {
		return nil
	}
	var hits []Hit
	hit := func(r *Rule, t target, v float64, ok bool) {
		if !ok {
			return
		}
		sev := r.severity(v)
		if sev == notifiers.None {
			return
		}
		st := &State{
			Key:       Key{Account: acct.Name, Rule: r.Name, Symbol: t.sym, Side: t.side},
			Phase:     Active,
			Severity:  sev,
			StartsAt:  now,
			Value:     v,
			Threshold: r.thr[sev],
		}
		a := alert(r, acct, t, st, notifiers.KindFiring, now)
		hits = append(hits, Hit{
			Rule:      r.Name,
			Symbol:    t.sym,
			Side:      t.side,
			Severity:  sev,
			Metric:    r.Metric,
			Value:     v,
			Threshold: r.thr[sev],
			Summary:   a.Summary,
		})
	}
	for _, r := range rules {
		if r == nil || !r.AppliesTo(acct.Name) || r.scope == scopeEventID {
			continue
		}
		if acct.Stale && r.metric != metrics.DataAgeSeconds {
			continue
		}
		switch r.scope {
		case scopeAccountID:
			if !perPool(r, acct) {
				v, ok := accountValue(r, acct, now)
				hit(r, target{set: &acct.Metrics}, v, ok)
				continue
			}
			for i := range acct.Assets {
				t, v, ok := poolTarget(r, acct, i, now)
				hit(r, t, v, ok)
			}
		case scopePositionID:
			for i := range acct.Positions {
				p := &acct.Positions[i]
				if !r.symbolOK(p.Symbol) {
					continue
				}
				v, ok := p.Metrics.Get(r.metric)
				hit(r, target{sym: p.Symbol, side: string(p.Side), set: &p.Metrics, pos: p}, v, ok)
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

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
