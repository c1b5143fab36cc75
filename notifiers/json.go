package notifiers

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// MarshalJSON encodes a as its struct tags say, except that a non-finite
// Value, Threshold or Context figure is written as the string "+Inf",
// "-Inf" or "NaN". JSON has no such numbers and encoding/json refuses them,
// yet the engine makes figures infinite (equity at or below zero), and the
// outbox stores alerts as JSON: one refused number would lose the alert.
// Finite numbers encode exactly as before, so old outbox entries still
// decode.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert // the fields without the methods: no recursion
	w := struct {
		plain
		Value     Float            `json:"value"`
		Threshold Float            `json:"threshold"`
		Context   map[string]Float `json:"context,omitempty"`
	}{plain: plain(a), Value: Float(a.Value), Threshold: Float(a.Threshold)}
	if a.Context != nil {
		w.Context = make(map[string]Float, len(a.Context))
		for k, v := range a.Context {
			w.Context[k] = Float(v)
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON encodes: numbers, and the strings
// "+Inf", "-Inf" and "NaN" for Value, Threshold and Context figures.
func (a *Alert) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does for a struct
	}
	type plain Alert
	var w struct {
		plain
		Value     Float            `json:"value"`
		Threshold Float            `json:"threshold"`
		Context   map[string]Float `json:"context,omitempty"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Alert(w.plain)
	a.Value, a.Threshold = float64(w.Value), float64(w.Threshold)
	a.Context = nil
	if w.Context != nil {
		a.Context = make(map[string]float64, len(w.Context))
		for k, v := range w.Context {
			a.Context[k] = float64(v)
		}
	}
	return nil
}

// Float is a float64 whose JSON form may also be "+Inf", "-Inf" or
// "NaN" (JSON has no such numbers): for figures stored as JSON that can be
// infinite, such as leverage at zero equity. null decodes as 0.
type Float float64

func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does for a float64
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "+Inf", "Inf":
			*f = Float(math.Inf(1))
		case "-Inf":
			*f = Float(math.Inf(-1))
		case "NaN":
			*f = Float(math.NaN())
		default:
			return fmt.Errorf("number %q: want a number, \"+Inf\", \"-Inf\" or \"NaN\"", s)
		}
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("number %s: %w", b, err)
	}
	*f = Float(v)
	return nil
}
