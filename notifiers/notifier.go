// Package notifiers defines what a notification is and the Notifier
// interface every delivery channel (console, Slack, Telegram, email, webhook)
// implements. A notifier never imports an exchange.
package notifiers

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Notifier delivers alerts to one destination.
//
// Notify sends all alerts as one message (they come from one evaluation,
// most severe first). On success it returns (false, nil). On failure retry
// reports whether the same call may succeed later (network errors, timeouts,
// HTTP 5xx, 408, 429) or never will (other 4xx, a rejected token): the outbox
// retries only when retry is true. To ask for a minimum wait before the next
// attempt (HTTP Retry-After, Telegram's retry_after) return an error that
// wraps *RetryAfterError.
//
// Notify must honour ctx and may be called again with the same alerts after a
// failure; error strings never contain tokens, passwords or webhook URLs.
type Notifier interface {
	Notify(ctx context.Context, alerts ...Alert) (retry bool, err error)
}

// RetryAfterError is a retryable failure with the server's requested wait.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait an error asks for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// Severity orders alerts. The zero value means "not firing".
type Severity int8

// Severities, least to most severe.
const (
	None Severity = iota
	Info
	Warning
	Critical
)

var severityNames = [...]string{None: "none", Info: "info", Warning: "warning", Critical: "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", s)
	}
	return severityNames[s]
}

// ParseSeverity parses "info", "warning" or "critical".
func ParseSeverity(name string) (Severity, bool) {
	for i, n := range severityNames {
		if i > 0 && n == name {
			return Severity(i), true
		}
	}
	return None, false
}

// MarshalText encodes a severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity name ("none" included).
func (s *Severity) UnmarshalText(b []byte) error {
	if string(b) == "none" {
		*s = None
		return nil
	}
	v, ok := ParseSeverity(string(b))
	if !ok {
		return fmt.Errorf("unknown severity %q", b)
	}
	*s = v
	return nil
}

// Status is the state an alert notification reports.
type Status string

// Statuses, as in the webhook body.
const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// Kind says why a notification was sent.
type Kind string

// Notification kinds. All but KindResolved and KindClosed have Status
// Firing.
const (
	KindFiring    Kind = "firing"    // the incident started
	KindEscalated Kind = "escalated" // severity stepped up
	KindEased     Kind = "eased"     // severity stepped down, still firing
	KindRepeat    Kind = "repeat"    // still firing, repeat interval passed
	KindResolved  Kind = "resolved"  // the condition cleared
	// KindClosed ends an incident whose subject went away while it fired:
	// the position closed or was liquidated (Reason says which), or the
	// rule or account left the configuration. Its Status is Resolved, but it
	// is no recovery: channels render it as "closed", never in green.
	KindClosed Kind = "closed"
	KindEvent  Kind = "event"  // a one-off account event
	KindTest   Kind = "test"   // notify-test
	KindDigest Kind = "digest" // a scheduled summary; Summary holds the whole text
)

// Reasons a KindClosed alert gives.
const (
	// ReasonClosed: the position (or the rule or account watching it) went
	// away without the exchange reporting a liquidation.
	ReasonClosed = "closed"
	// ReasonLiquidated: the exchange reported a liquidation or ADL of the
	// position.
	ReasonLiquidated = "liquidated"
)

// Alert is one alert notification, self-contained so it can sit in the
// outbox and be rendered by any notifier.
type Alert struct {
	// ID identifies the incident (stable across repeats, escalation and
	// resolution of one incident).
	ID     string `json:"id"`
	Status Status `json:"status"`
	Kind   Kind   `json:"kind"`
	// Reason says why a KindClosed alert ended (ReasonClosed or
	// ReasonLiquidated); empty for every other kind.
	Reason    string   `json:"reason,omitempty"`
	Severity  Severity `json:"severity"`
	Rule      string   `json:"rule"`
	Account   string   `json:"account"`
	Symbol    string   `json:"symbol,omitempty"`
	Side      string   `json:"side,omitempty"`
	Metric    string   `json:"metric,omitempty"`
	Value     float64  `json:"value"`
	Threshold float64  `json:"threshold"`
	// Op is how Value is compared with Threshold: "above", "below", or ""
	// for events.
	Op       string    `json:"op,omitempty"`
	StartsAt time.Time `json:"starts_at"`
	// At is when this notification was produced.
	At      time.Time         `json:"at"`
	Summary string            `json:"summary"`
	Runbook string            `json:"runbook,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Context is what a trader wants at a glance, by metric name
	// (mark_price, liq_price, liq_distance_pct, leverage, margin_ratio, equity…).
	Context map[string]float64 `json:"context,omitempty"`
}

// Splitter is implemented by notifiers whose channel caps the size of one
// message (Telegram: 4096 characters), so that one outbox entry may need
// several messages. Split groups alerts, in order, into the parts that each
// go out as one message; every part is a non-empty run of consecutive
// alerts and together they are all of them. The dispatcher sends the parts
// one Notify call each (each with its own timeout and pacing) and records
// in the outbox how many went out, so that a retry resumes at the first
// part not yet delivered instead of sending the earlier ones again. Split
// must be deterministic: the same alerts give the same parts after a
// restart.
type Splitter interface {
	Split(alerts []Alert) [][]Alert
}

// Threads remembers, per notifier and incident (Alert.ID), the
// channel's reference to the incident's first message (a Slack ts, a Telegram
// message id), so that repeats and the resolution can reply in the same
// thread — across restarts, since the daemon's store implements it.
type Threads interface {
	// Thread returns the reference stored for the incident, if any.
	Thread(notifier, incident string) (ref string, ok bool)
	// SetThread stores ref for the incident.
	SetThread(notifier, incident, ref string) error
}

// Threaded reports whether a belongs to an incident thread (see Threads).
// A test alert stands alone, since notify-test may reuse an incident ID and
// a test should be seen on its own; a digest is no incident; an alert
// without an ID has nothing to key a thread on.
func (a Alert) Threaded() bool {
	return a.ID != "" && a.Kind != KindTest && a.Kind != KindDigest
}
