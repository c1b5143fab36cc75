package notifiers

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAlertJSONNonFinite(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 3, 14, 0, 0, time.UTC)
	a := Alert{
		ID: "i1", Status: Firing, Kind: KindEscalated, Severity: Critical, Rule: "over-leveraged", Account: "main",
		Metric: "effective_leverage", Value: math.Inf(1), Threshold: 20, Op: "above", StartsAt: t0, At: t0,
		Context: map[string]float64{"effective_leverage": math.Inf(1), "net_exposure_ratio": math.Inf(-1), "odd": math.NaN(), "equity": -12.5},
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	for _, want := range []string{`"value":"+Inf"`, `"threshold":20`, `"effective_leverage":"+Inf"`, `"net_exposure_ratio":"-Inf"`, `"odd":"NaN"`, `"equity":-12.5`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var got Alert
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if !math.IsInf(got.Value, 1) || got.Threshold != 20 || !math.IsInf(got.Context["effective_leverage"], 1) ||
		!math.IsInf(got.Context["net_exposure_ratio"], -1) || !math.IsNaN(got.Context["odd"]) || got.Context["equity"] != -12.5 {
		t.Errorf("round trip lost a figure: %+v", got)
	}
	// Everything else survives as it is.
	got.Value, a.Value = 0, 0
	got.Context, a.Context = nil, nil
	if !reflect.DeepEqual(got, a) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, a)
	}

	ta := Alert{ID: "kept"}
	if err := json.Unmarshal([]byte(`null`), &ta); err != nil || ta.ID != "kept" {
		t.Errorf("Unmarshal(null) = %v and left %+v; want a no-op", err, ta)
	}
	if err := json.Unmarshal([]byte(`{"value":-Inf}`), &ta); err == nil {
		t.Error("a bare -Inf is not JSON; Unmarshal should fail")
	}
	if err := json.Unmarshal([]byte(`{"value":"lots"}`), &ta); err == nil || !strings.Contains(err.Error(), "lots") {
		t.Errorf("Unmarshal of a bad string: %v; want an error naming it", err)
	}
}

// Finite alerts encode as a plain struct would (the same keys and values;
// only their order differs), so outbox entries written before MarshalJSON
// existed decode, and new ones read the same.
func TestAlertJSONFiniteUnchanged(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 3, 14, 0, 0, time.UTC)
	a := Alert{
		ID: "i1", Status: Resolved, Kind: KindClosed, Reason: ReasonLiquidated, Severity: Warning, Rule: "r",
		Account: "main", Symbol: "BTCUSDT", Side: "long", Metric: "liq_distance_pct", Value: 0.000125, Threshold: 7,
		Op: "below", StartsAt: t0, At: t0.Add(time.Minute), Summary: "s", Runbook: "rb",
		Labels: map[string]string{"desk": "a"}, Context: map[string]float64{"mark_price": 91234.5},
	}
	type plain Alert
	want, err := json.Marshal(plain(a))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var gotM, wantM map[string]any
	if err := json.Unmarshal(got, &gotM); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantM); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotM, wantM) {
		t.Errorf("encoding changed:\n got %s\nwant %s", got, want)
	}
	var back Alert
	if err := json.Unmarshal(want, &back); err != nil || !reflect.DeepEqual(back, a) {
		t.Errorf("decode of the plain form: %v\n got %+v\nwant %+v", err, back, a)
	}
	// Without a context, none appears (omitempty as before).
	a.Context = nil
	if b, _ := json.Marshal(a); strings.Contains(string(b), "context") {
		t.Errorf("nil context encoded: %s", b)
	}
	// Through a pointer and inside a slice too (the outbox stores []Alert).
	b, err := json.Marshal([]*Alert{{Value: math.Inf(1)}})
	if err != nil || !strings.Contains(string(b), `"+Inf"`) {
		t.Errorf("Marshal([]*Alert) = %s, %v", b, err)
	}
}
