package rules

import (
	"encoding/json"
	"maps"
	"math"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
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
//
// Its JSON form (MarshalJSON) writes an infinite Value or Threshold as the
// string "+Inf" or "-Inf": equity at or below zero makes leverage infinite,
// and plain encoding/json would refuse the whole state.
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
	LastSent time.Time `json:"last_sent,omitzero"`
	// Value is the metric's last known value (a gap in the data keeps it);
	// Threshold is the threshold of Severity.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`

	// Held[s] is when the condition last held at severity s (hysteresis
	// included), kept for rules with keep_firing_for or window: day, whose
	// alert keeps a severity for a while after it no longer holds; zero
	// otherwise and in states written before it existed.
	Held [numSeverities]time.Time `json:"held,omitzero"`

	// Reported has bit i set once the rule's condition i had a value for
	// this alert (any: rules): a value missing after that is a gap, which
	// never resolves, while a condition that never had one (an ATR without
	// candles yet) cannot hold the alert open. Zero in states written
	// before it existed; NewEngine then assumes the reported condition.
	Reported uint8 `json:"reported,omitempty"`

	// What the last notice told, recorded whenever one goes out (firing,
	// escalated, eased, repeat), so that Closed can end the incident with a
	// complete notice when its rule or account is gone. Empty while pending
	// and in states written before these fields existed. Labels are the
	// account's merged with the rule's; treat the map as read-only.
	Metric  string            `json:"metric,omitempty"`
	Op      string            `json:"op,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Runbook string            `json:"runbook,omitempty"`

	// Control (silences and acks). Muted: the last notice due was withheld
	// by a silence, so the next evaluation once no silence matches sends
	// one at once. Unsent: no firing-status notice of this incident went
	// out (every one was silenced), so its resolution or closing notice is
	// not sent either. Acked: when a user acknowledged the incident (by
	// AckedBy, with AckComment); its repeats stop until the severity rises
	// (which clears it) or it ends.
	Muted      bool      `json:"muted,omitempty"`
	Unsent     bool      `json:"unsent,omitempty"`
	Acked      time.Time `json:"acked,omitzero"`
	AckedBy    string    `json:"acked_by,omitempty"`
	AckComment string    `json:"ack_comment,omitempty"`
}

// stateFields is State without its JSON methods.
type stateFields State

// MarshalJSON encodes s with non-finite Value and Threshold as strings.
func (s State) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		stateFields
		Value     notifiers.Float `json:"value"`
		Threshold notifiers.Float `json:"threshold"`
	}{stateFields(s), notifiers.Float(s.Value), notifiers.Float(s.Threshold)})
}

// UnmarshalJSON decodes what MarshalJSON wrote, and plain numbers.
func (s *State) UnmarshalJSON(b []byte) error {
	v := struct {
		*stateFields
		Value     notifiers.Float `json:"value"`
		Threshold notifiers.Float `json:"threshold"`
	}{stateFields: (*stateFields)(s)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.Value, s.Threshold = float64(v.Value), float64(v.Threshold)
	return nil
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
// the configuration), summary says what happened; an empty summary gets a
// built-in one from st and reason ("BTCUSDT long was liquidated while
// liquidation-near was critical (2.1% from liquidation)"). A rule's own
// summary template is never used: it was written for a firing alert. The
// notice carries the metric, op, threshold, last value, labels and runbook
// the last notice carried (see State). It needs nothing but the persisted
// state, so the daemon can close an incident whose rule no longer exists,
// after a reload or a restart alike; the engine closes a gone position's
// alerts with it too.
func Closed(st State, reason, summary string, now time.Time) notifiers.Alert {
	if summary == "" {
		summary = closedSummary(&st, reason)
	}
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
		Metric:    st.Metric,
		Value:     st.Value,
		Threshold: st.Threshold,
		Op:        st.Op,
		StartsAt:  st.StartsAt,
		At:        now,
		Summary:   summary,
		Runbook:   st.Runbook,
		Labels:    maps.Clone(st.Labels),
	}
}

// closedSummary says what ended st's incident and what it was about.
func closedSummary(st *State, reason string) string {
	k := st.Key
	verb := "was closed"
	if reason == notifiers.ReasonLiquidated {
		verb = "was liquidated"
	}
	var b strings.Builder
	switch {
	case k.Side != "": // a position
		b.WriteString(k.Symbol + " " + k.Side + " " + verb + " while " + k.Rule + " was ")
	case k.Symbol != "" && reason == notifiers.ReasonClosed: // a margin pool
		b.WriteString(k.Account + " " + k.Symbol + " margin asset is gone while " + k.Rule + " was ")
	case k.Symbol != "":
		b.WriteString(k.Account + " " + k.Symbol + " " + verb + " while " + k.Rule + " was ")
	default:
		b.WriteString(k.Rule + " on " + k.Account + " " + verb + " while ")
	}
	b.WriteString(st.Severity.String())
	if st.Metric == "" {
		return b.String()
	}
	b.WriteString(" (")
	if st.Metric == metrics.LiqDistancePct.String() && !math.IsInf(st.Value, 0) {
		b.WriteString(notifiers.FormatMetric(st.Metric, st.Value) + " from liquidation)")
		return b.String()
	}
	op := " > "
	if st.Op == "below" {
		op = " < "
	}
	b.WriteString(st.Metric + " " + notifiers.FormatMetricIn(st.Metric, st.Value, st.Labels["asset"]) + op + notifiers.FormatMetricIn(st.Metric, st.Threshold, st.Labels["asset"]) + ")")
	return b.String()
}
