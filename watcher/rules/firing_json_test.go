package rules

import (
	"encoding/json"
	"math"
	"testing"
)

// A non-finite hit value travels as null (status -json) and comes back as
// NaN, never as a zero that reads like a figure.
func TestHitJSONNonFinite(t *testing.T) {
	b, err := json.Marshal(Hit{Rule: "account-leverage", Metric: "effective_leverage", Value: math.Inf(1), Threshold: 10})
	if err != nil {
		t.Fatal(err)
	}
	var h Hit
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(h.Value) || h.Threshold != 10 || h.Rule != "account-leverage" {
		t.Errorf("%s decoded as %+v, want a NaN value, threshold 10", b, h)
	}
}
