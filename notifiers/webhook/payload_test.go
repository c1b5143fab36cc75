package webhook

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

// TestBody pins the exact bytes a receiver gets. The expected JSON is
// written by hand from SPEC.md's Delivery section.
func TestBody(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	event := notifiers.Alert{
		ID: "e1", Status: notifiers.Firing, Kind: notifiers.KindEvent, Severity: notifiers.Critical,
		Rule: "margin-call", Account: "main", Metric: "margin_call",
		// An event has no threshold and no separate start.
		At:      time.Date(2026, 11, 28, 4, 0, 0, 0, berlin),
		Summary: "exchange sent MARGIN_CALL",
	}
	test := notifiers.Alert{
		ID: "notify-test", Status: notifiers.Firing, Kind: notifiers.KindTest, Severity: notifiers.Info,
		Rule: "notify-test", Account: "", Value: math.NaN(), Threshold: math.Inf(1), Op: "above",
		StartsAt: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC),
		At:       time.Date(2026, 11, 28, 3, 0, 0, 500_000_000, time.UTC),
		Summary:  "marginwatch can reach this notifier",
		Labels:   map[string]string{"z": "1", "a": "2"},
	}
	liquidated := notifiers.Alert{
		ID: "l1", Status: notifiers.Resolved, Kind: notifiers.KindClosed, Reason: notifiers.ReasonLiquidated,
		Severity: notifiers.Critical, Rule: "liquidation-near", Account: "main", Symbol: "BTCUSDT", Side: "long",
		Metric: "liq_distance_pct", Value: 0.8, Threshold: 7, Op: "below",
		StartsAt: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC), At: time.Date(2026, 11, 28, 3, 5, 0, 0, time.UTC),
	}
	closed := liquidated
	closed.ID, closed.Reason = "c1", "" // no reason given: closed, never liquidated by guess
	infinite := notifiers.Alert{
		ID: "i1", Status: notifiers.Firing, Kind: notifiers.KindFiring, Severity: notifiers.Critical,
		Rule: "over-leveraged", Account: "main", Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20, Op: "above",
		At: time.Date(2026, 11, 28, 3, 5, 0, 0, time.UTC), Context: map[string]float64{"leverage": math.Inf(1)},
	}
	tests := []struct {
		name   string
		alerts []notifiers.Alert
		want   string
	}{
		{
			name:   "liquidated, closed, and an infinite value",
			alerts: []notifiers.Alert{liquidated, closed, infinite},
			want: `{"version":"1","alerts":[` +
				`{"id":"l1","status":"resolved","kind":"closed","reason":"liquidated","severity":"critical",` +
				`"rule":"liquidation-near","account":"main","symbol":"BTCUSDT","side":"long",` +
				`"metric":"liq_distance_pct","value":0.8,"op":"below","threshold":7,` +
				`"starts_at":"2026-11-28T03:00:00Z","at":"2026-11-28T03:05:00Z","summary":"","runbook":"","labels":{},"context":{}},` +
				`{"id":"c1","status":"resolved","kind":"closed","reason":"closed","severity":"critical",` +
				`"rule":"liquidation-near","account":"main","symbol":"BTCUSDT","side":"long",` +
				`"metric":"liq_distance_pct","value":0.8,"op":"below","threshold":7,` +
				`"starts_at":"2026-11-28T03:00:00Z","at":"2026-11-28T03:05:00Z","summary":"","runbook":"","labels":{},"context":{}},` +
				`{"id":"i1","status":"firing","kind":"firing","reason":"","severity":"critical",` +
				`"rule":"over-leveraged","account":"main","symbol":"","side":"",` +
				`"metric":"effective_leverage","value":null,"op":"above","threshold":20,` +
				`"starts_at":null,"at":"2026-11-28T03:05:00Z","summary":"","runbook":"","labels":{},"context":{}}]}`,
		},
		{
			name:   "position alert and resolved account alert",
			alerts: notifiertest.Alerts(),
			want: `{"version":"1","alerts":[` +
				`{"id":"a1b2c3d4e5f60718","status":"firing","kind":"escalated","reason":"","severity":"critical",` +
				`"rule":"liquidation-near","account":"main","symbol":"BTCUSDT","side":"long",` +
				`"metric":"liq_distance_pct","value":6.21,"op":"below","threshold":7,` +
				`"starts_at":"2026-11-28T03:14:00Z","at":"2026-11-28T03:16:00Z",` +
				`"summary":"BTCUSDT long is 6.2% from liquidation <now>","runbook":"Add margin or cut size & breathe",` +
				`"labels":{"desk":"alpha"},` +
				`"context":{"entry_price":95000,"equity":10234.12,"leverage":5,"liq_distance_pct":6.21,"liq_price":85570.1,"margin_ratio":0.41,"mark_price":91234.5}},` +
				`{"id":"0f1e2d3c4b5a6978","status":"resolved","kind":"resolved","reason":"","severity":"warning",` +
				`"rule":"margin-ratio","account":"main","symbol":"","side":"",` +
				`"metric":"margin_ratio","value":0.31,"op":"above","threshold":0.5,` +
				`"starts_at":"2026-11-28T02:14:00Z","at":"2026-11-28T03:16:00Z",` +
				`"summary":"account margin ratio is 0.31 (1.00 = liquidation)","runbook":"",` +
				`"labels":{},"context":{}}]}`,
		},
		{
			name:   "event in another zone, and a test with unrepresentable numbers",
			alerts: []notifiers.Alert{event, test},
			want: `{"version":"1","alerts":[` +
				`{"id":"e1","status":"firing","kind":"event","reason":"","severity":"critical",` +
				`"rule":"margin-call","account":"main","symbol":"","side":"",` +
				`"metric":"margin_call","value":0,"op":"","threshold":null,` +
				`"starts_at":null,"at":"2026-11-28T03:00:00Z",` +
				`"summary":"exchange sent MARGIN_CALL","runbook":"","labels":{},"context":{}},` +
				`{"id":"notify-test","status":"firing","kind":"test","reason":"","severity":"info",` +
				`"rule":"notify-test","account":"","symbol":"","side":"",` +
				`"metric":"","value":null,"op":"above","threshold":null,` +
				`"starts_at":"2026-11-28T03:00:00Z","at":"2026-11-28T03:00:00.5Z",` +
				`"summary":"[TEST] marginwatch can reach this notifier","runbook":"",` +
				`"labels":{"a":"2","z":"1"},"context":{}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := body(tt.alerts)
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("body:\n got %s\nwant %s", got, tt.want)
			}
			// The key set is the contract: decode into the exported type
			// with unknown fields rejected, and back.
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			var p Payload
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("decode into Payload: %v", err)
			}
			if p.Version != Version || len(p.Alerts) != len(tt.alerts) {
				t.Errorf("decoded version %q with %d alerts", p.Version, len(p.Alerts))
			}
		})
	}
}

// TestTestPrefixOnce: a summary that already says [TEST] is not marked twice.
func TestTestPrefixOnce(t *testing.T) {
	a := notifiers.Alert{Kind: notifiers.KindTest, Summary: "[TEST] hello"}
	if got := payloadAlert(a).Summary; got != "[TEST] hello" {
		t.Errorf("summary = %q", got)
	}
	a.Kind = notifiers.KindFiring
	a.Summary = "hello"
	if got := payloadAlert(a).Summary; got != "hello" {
		t.Errorf("a firing alert's summary = %q", got)
	}
}

// TestBodyDoesNotAlias: the payload owns its labels map, so later changes
// to an alert cannot change a body being retried, and the nil case does
// not write into the caller's alert.
func TestBodyDoesNotAlias(t *testing.T) {
	a := notifiertest.Alerts()
	first, err := body(a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := body(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Errorf("body not deterministic:\n%s\n%s", first, second)
	}
	if a[1].Labels != nil {
		t.Errorf("body wrote labels into the caller's alert: %v", a[1].Labels)
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 11, 28, 3, 16, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"5", 5 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"0", 0, false}, // "now": the backoff decides
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"Sat, 28 Nov 2026 03:17:00 GMT", time.Minute, true},
		{"Saturday, 28-Nov-26 03:16:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sat Nov 28 03:16:10 2026", 10 * time.Second, true},         // asctime
		{"Sat, 28 Nov 2026 03:16:00 GMT", 0, false},                  // now
		{"Sat, 28 Nov 2026 03:00:00 GMT", 0, false},                  // past
		{"Sun, 28 Nov 2027 03:16:00 GMT", 24 * time.Hour, true},      // capped
		{"9223372036854775807", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.header, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
