package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
)

// Version is the payload format version, the body's "version".
const Version = "1"

// testPrefix marks the summary of a notify-test alert, so that a receiver
// that forwards only the summary (to a pager, say) still shows it is a test.
const testPrefix = "[TEST] "

// Payload is the JSON body of one webhook request.
type Payload struct {
	Version string         `json:"version"`
	Alerts  []PayloadAlert `json:"alerts"`
}

// PayloadAlert is one alert in a Payload. Every key is always present so a
// receiver can rely on the shape: Symbol and Side are "" for account-scope
// alerts, Reason is "" except for kind closed, Labels is {} when there are
// none, Context is {} when there are none, and Value, Threshold and
// StartsAt are null when they do not apply
// (an event has no threshold) or cannot be represented: JSON has no NaN or
// infinity, and the engine makes a figure +Inf when equity is zero or below.
type PayloadAlert struct {
	ID     string `json:"id"`
	Status string `json:"status"` // firing | resolved
	// Kind says why this notification was sent: firing, escalated, eased,
	// repeat, resolved, closed, event, test or digest (a scheduled
	// summary). A closed alert has status resolved but did not recover: its
	// position went away while it fired (Reason says how).
	Kind string `json:"kind"`
	// Reason is, for kind closed, "liquidated" (the exchange reported a
	// liquidation or ADL) or "closed" (any other end); "" otherwise.
	Reason   string   `json:"reason"`
	Severity string   `json:"severity"` // info | warning | critical
	Rule     string   `json:"rule"`
	Account  string   `json:"account"`
	Symbol   string   `json:"symbol"`
	Side     string   `json:"side"`
	Metric   string   `json:"metric"`
	Value    *float64 `json:"value"`
	// Op is how Value compares with Threshold while firing: "above" or
	// "below"; "" for events.
	Op        string     `json:"op"`
	Threshold *float64   `json:"threshold"`
	StartsAt  *time.Time `json:"starts_at"`
	// At is when this notification was produced.
	At time.Time `json:"at"`
	// Summary is the rule's rendered summary; a notify-test alert's starts
	// with "[TEST] "; a digest's is the whole digest, several lines.
	Summary string            `json:"summary"`
	Runbook string            `json:"runbook"`
	Labels  map[string]string `json:"labels"`
	// Context is the trader's figures at the time, as raw numbers by name
	// (mark_price, entry_price, liq_price, liq_distance_pct, leverage,
	// margin_ratio, equity, …; margin_ratio a 0–1 fraction as in rules),
	// {} when there are none. Figures JSON cannot carry are left out. It
	// comes after SPEC's keys: a receiver that knows only those is
	// unaffected.
	Context map[string]float64 `json:"context"`
}

// payloadAlert converts an alert to its wire form. Times are UTC so the
// body does not depend on the daemon's zone.
func payloadAlert(a notifiers.Alert) PayloadAlert {
	p := PayloadAlert{
		ID:       a.ID,
		Status:   string(a.Status),
		Kind:     string(a.Kind),
		Reason:   a.ClosedReason(),
		Severity: a.Severity.String(),
		Rule:     a.Rule,
		Account:  a.Account,
		Symbol:   a.Symbol,
		Side:     a.Side,
		Metric:   a.Metric,
		Value:    finite(a.Value),
		Op:       a.Op,
		At:       a.At.UTC(),
		Summary:  a.Summary,
		Runbook:  a.Runbook,
		Labels:   a.Labels,
	}
	if a.Op != "" {
		p.Threshold = finite(a.Threshold)
	}
	if !a.StartsAt.IsZero() {
		t := a.StartsAt.UTC()
		p.StartsAt = &t
	}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Context = make(map[string]float64, len(a.Context))
	for k, v := range a.Context {
		if finite(v) != nil {
			p.Context[k] = v
		}
	}
	if a.Kind == notifiers.KindTest && !strings.HasPrefix(p.Summary, testPrefix) {
		p.Summary = testPrefix + p.Summary
	}
	return p
}

// finite returns a pointer to v, or nil for NaN and ±Inf, which JSON cannot
// carry (json.Marshal would fail the whole notification over one number).
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// body encodes alerts as the request body. The encoding is deterministic
// (struct field order, sorted label keys), so a retry sends the same bytes.
// HTML escaping is off: the receiver is a program, not a browser, and
// "\u003c" in a summary only hurts whoever reads the raw body.
func body(alerts []notifiers.Alert) ([]byte, error) {
	p := Payload{Version: Version, Alerts: make([]PayloadAlert, len(alerts))}
	for i, a := range alerts {
		p.Alerts[i] = payloadAlert(a)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// messageID derives the webhook-id from what identifies one notification:
// each alert's incident ID, kind, status, severity and production time. The
// outbox retries an entry with the same alerts, so every retry carries the
// same id; the next repeat of the incident has a later At and a new id.
// Fields are length-prefixed so no two different alert lists hash alike.
func messageID(alerts []notifiers.Alert) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, a := range alerts {
		field(a.ID)
		field(string(a.Kind))
		field(string(a.Status))
		field(a.Severity.String())
		field(strconv.FormatInt(a.At.UnixNano(), 10))
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// sign returns the webhook-signature header value for one attempt.
func sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// errSecretBase64 is returned for a whsec_ secret whose rest is not base64.
var errSecretBase64 = errors.New("starts with whsec_ but the rest is not valid base64 (a whsec_ secret is base64 after the prefix; any other secret is used as raw bytes)")

// signingKey turns the configured secret into the HMAC key, per Standard
// Webhooks: "whsec_" + base64, or else the raw bytes. The error never
// contains the secret.
func signingKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []byte(secret), nil
	}
	// Standard Webhooks secrets are padded standard base64; accept an
	// unpadded one too, since people trim "=" when copying.
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(rest)
	}
	if err != nil {
		return nil, errSecretBase64
	}
	if len(key) == 0 {
		return nil, errors.New("is whsec_ with nothing after it: the key is missing")
	}
	return key, nil
}
