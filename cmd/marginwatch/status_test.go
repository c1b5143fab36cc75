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
	cfg := &config.Config{
		Accounts: []config.Account{{Name: "main", StaleAfter: time.Minute}},
		Rules: []config.Rule{{
			Name: "eff-leverage", Scope: "account", Metric: "effective_leverage",
			Above: map[string]float64{"critical": 10}, Repeat: map[string]time.Duration{"critical": time.Hour},
		}},
	}
	compiled, err := rules.Compile(cfg)
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
	doc := statusJSON{Accounts: []accountJSON{aj}, restating: restating(cfg.Rules)}

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
	printStatus(&table, doc, now, false)
	if !strings.Contains(table.String(), "∞") || strings.Contains(table.String(), "+Inf") || !strings.Contains(table.String(), "eff-leverage") {
		t.Errorf("table lacks ∞ or the firing rule:\n%s", table.String())
	}
}

// TestStatusPools: an account with two margin pools lists them under
// "assets" with their money metrics; the account keeps margin_ratio (the
// highest pool's) and shows its money metrics as null. A single-pool
// account has no "assets" at all.
func TestStatusPools(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	two := &exchanges.Snapshot{
		Time: now,
		Balances: []exchanges.Balance{
			{Asset: "USDT", MarginBalance: 10000, CrossWalletBalance: 10000, CrossMaintMargin: 100},
			{Asset: "USDC", MarginBalance: 2000, CrossWalletBalance: 2000, CrossMaintMargin: 100},
		},
		Positions: []exchanges.Position{
			{Symbol: "BTCUSDT", Side: exchanges.Long, Pool: "USDT", MarginType: exchanges.Cross, Size: 0.1, MarkPrice: 60000, Notional: 6000, MaintMargin: 100},
			{Symbol: "ETHUSDC", Side: exchanges.Short, Pool: "USDC", MarginType: exchanges.Cross, Size: 1, MarkPrice: 3000, Notional: 3000, MaintMargin: 100},
		},
	}
	aj := accountJSON{Name: "main", Exchange: "binance-usdm"}
	fillAccount(&aj, metrics.Compute("main", "binance-usdm", nil, two, nil, now), nil, now)
	var out bytes.Buffer
	if err := json.NewEncoder(&out).Encode(statusJSON{Accounts: []accountJSON{aj}}); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Accounts []struct {
			Metrics map[string]*float64 `json:"metrics"`
			Assets  []struct {
				Asset   string              `json:"asset"`
				Metrics map[string]*float64 `json:"metrics"`
			} `json:"assets"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	a := back.Accounts[0]
	if len(a.Assets) != 2 || a.Assets[0].Asset != "USDT" || a.Assets[1].Asset != "USDC" {
		t.Fatalf("assets %+v, want USDT and USDC\n%s", a.Assets, out.String())
	}
	if v := a.Metrics["margin_ratio"]; v == nil || *v != 0.05 { // max(100/10,000, 100/2,000)
		t.Errorf("account margin_ratio %v, want 0.05", v)
	}
	if v, ok := a.Metrics["equity"]; !ok || v != nil {
		t.Errorf("account equity %v, want null (per pool)", v)
	}
	for i, want := range []map[string]float64{
		{"equity": 10000, "effective_leverage": 0.6, "margin_ratio": 0.01},
		{"equity": 2000, "effective_leverage": 1.5, "margin_ratio": 0.05},
	} {
		for name, w := range want {
			if v := a.Assets[i].Metrics[name]; v == nil || *v != w {
				t.Errorf("%s %s = %v, want %v", a.Assets[i].Asset, name, v, w)
			}
		}
		if _, ok := a.Assets[i].Metrics["position_count"]; ok {
			t.Errorf("%s lists position_count, an account metric", a.Assets[i].Asset)
		}
	}
	var table bytes.Buffer
	printStatus(&table, statusJSON{Accounts: []accountJSON{aj}}, now, false)
	if !strings.Contains(table.String(), "POOL") || !strings.Contains(table.String(), "USDC") {
		t.Errorf("table lacks the pools:\n%s", table.String())
	}

	one := &exchanges.Snapshot{Time: now, Balances: two.Balances[:1], Positions: two.Positions[:1]}
	aj = accountJSON{Name: "main", Exchange: "binance-usdm"}
	fillAccount(&aj, metrics.Compute("main", "binance-usdm", nil, one, nil, now), nil, now)
	out.Reset()
	if err := json.NewEncoder(&out).Encode(aj); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), `"assets"`) || !strings.Contains(out.String(), `"equity":10000`) {
		t.Errorf("single-pool account: %s, want equity on the account and no assets", out.String())
	}
}
