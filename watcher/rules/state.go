package rules

import (
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
)

// Key is an alert's identity. Account-scope alerts have empty Symbol and Side.
type Key struct {
	Account string `json:"account"`
	Rule    string `json:"rule"`
	Symbol  string `json:"symbol,omitempty"`
	Side    string `json:"side,omitempty"`
}

// Phase of an alert that is not inactive.
type Phase string

// Phases. An inactive alert has no State at all.
const (
	Pending Phase = "pending" // condition true, waiting for `for`
	Active  Phase = "firing"  // notified
)

// State is the persisted lifecycle of one alert. It survives restarts so that
// a restart neither re-sends a firing alert early nor forgets its resolution.
type State struct {
	Key   Key   `json:"key"`
	Phase Phase `json:"phase"`
	// ID identifies the incident in every notification about it.
	ID string `json:"id"`
	// Severity is the severity the alert currently fires with (or would fire
	// with, while pending).
	Severity notifiers.Severity `json:"severity"`
	// Since is when the condition became true (start of pending);
	// StartsAt is when the alert started firing.
	Since    time.Time `json:"since"`
	StartsAt time.Time `json:"starts_at,omitzero"`
	// LastSent is when the last notice went out; the repeat timer runs from it.
	LastSent  time.Time `json:"last_sent,omitzero"`
	Value     float64   `json:"value"`
	Threshold float64   `json:"threshold"`
}

// Notice is one notification the engine decided to send, with the notifiers
// its rule names (nil: every notifier).
type Notice struct {
	Alert  notifiers.Alert
	Notify []string
}

// Closed returns the notice that ends st's incident because its subject went
// away while it fired: reason is notifiers.ReasonLiquidated or
// notifiers.ReasonClosed (a closed position, or a rule or account that left
// the configuration), summary says what happened. It needs nothing but the
// persisted state, so the daemon can close an incident whose rule no longer
// exists, after a reload or a restart alike.
func Closed(st State, reason, summary string, now time.Time) notifiers.Alert {
	return notifiers.Alert{
		ID:        st.ID,
		Status:    notifiers.Resolved,
		Kind:      notifiers.KindClosed,
		Reason:    reason,
		Severity:  st.Severity,
		Rule:      st.Key.Rule,
		Account:   st.Key.Account,
		Symbol:    st.Key.Symbol,
		Side:      st.Key.Side,
		Value:     st.Value,
		Threshold: st.Threshold,
		StartsAt:  st.StartsAt,
		At:        now,
		Summary:   summary,
	}
}
