package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// TestStatusJSONInfinity: equity below zero makes leverage infinite. The
// document still encodes, shows the infinities as null (SPEC) and lists the
// above-rule that fires on them; the table prints them.
func TestStatusJSONInfinity(t *testing.T) {
	compiled, err := rules.Compile(&config.Config{
		Accounts: []config.Account{{Name: "main", StaleAfter: time.Minute}},
		Rules: []config.Rule{{
			Name: "eff-leverage", Scope: "account", Metric: "effective_leverage",
			Above: map[string]float64{"critical": 10}, Repeat: map[string]time.Duration{"critical": time.Hour},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	snap := &exchanges.Snapshot{
		Time:      now,
		Balances:  []exchanges.Balance{{Asset: "USDT", MarginBalance: -100}},
		Positions: []exchanges.Position{{Symbol: "BTCUSDT", Side: exchanges.Long, Notional: 5000, Leverage: 20}},
	}
	aj := accountJSON{Name: "main", Exchange: "x"}
	fillAccount(&aj, metrics.Compute("main", "x", nil, snap, nil, now), compiled, now)
	doc := statusJSON{Accounts: []accountJSON{aj}}

	var out bytes.Buffer
	if err := json.NewEncoder(&out).Encode(doc); err != nil {
		t.Fatalf("status -json cannot encode: %v", err)
	}
	var back statusJSON
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("status -json does not decode: %v\n%s", err, out.String())
	}
	a := back.Accounts[0]
	if v, ok := a.Metrics["effective_leverage"]; !ok || v != nil {
		t.Errorf("effective_leverage %v (present %v), want null", v, ok)
	}
	if v := a.Metrics["equity"]; v == nil || *v != -100 {
		t.Errorf("equity %v, want -100", v)
	}
	p := a.Positions[0].Metrics
	if v, ok := p["size_pct_equity"]; !ok || v != nil {
		t.Errorf("size_pct_equity %v, want null", v)
	}
	if v := p["leverage"]; v == nil || *v != 20 {
		t.Errorf("leverage %v, want the setting 20", v)
	}
	if len(a.Firing) != 1 || a.Firing[0].Rule != "eff-leverage" || !strings.Contains(out.String(), `"value":null`) {
		t.Errorf("firing %+v, want eff-leverage with value null", a.Firing)
	}

	var table bytes.Buffer
	printStatus(&table, doc)
	if !strings.Contains(table.String(), "+Inf") || !strings.Contains(table.String(), "eff-leverage") {
		t.Errorf("table lacks +Inf or the firing rule:\n%s", table.String())
	}
}
