package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/simulated"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/status.golden from the current output")

// statusDoc is the status of three accounts: the demo's crash at its
// worst (BTC 4.6% from liquidation, critical), an account with two margin
// pools, and one whose poll failed with a long error. now is 2 s after
// their polls.
func statusDoc(t *testing.T) (statusJSON, time.Time) {
	t.Helper()
	start := time.Date(2026, 3, 1, 14, 2, 44, 0, time.UTC)
	clock := start
	ex, err := simulated.New("crash", func() time.Time { return clock }, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock = start.Add(28 * time.Second) // the crash's bottom
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	now := snap.Time.Add(2 * time.Second)
	cfg := &config.Config{
		Accounts: []config.Account{{Name: "demo", StaleAfter: time.Minute}, {Name: "pools", StaleAfter: time.Minute}},
		Rules: []config.Rule{
			{Name: "liquidation-near", Scope: "position", Metric: "liq_distance_pct", Below: map[string]float64{"warning": 15, "critical": 7},
				Repeat:  map[string]time.Duration{"warning": time.Hour, "critical": 10 * time.Minute},
				Summary: `{{.Symbol}} {{.Side}} is {{printf "%.1f" .Value}}% from liquidation`},
			{Name: "missing-stop-loss", Scope: "position", Metric: "has_stop_loss", Below: map[string]float64{"warning": 1},
				Repeat: map[string]time.Duration{"warning": 4 * time.Hour}, Summary: `{{.Symbol}} {{.Side}} has no stop-loss resting on the exchange`},
			{Name: "margin-ratio", Scope: "account", Metric: "margin_ratio", Above: map[string]float64{"warning": 0.03, "critical": 0.8},
				Repeat: map[string]time.Duration{"warning": time.Hour, "critical": time.Hour}},
		},
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	demo := accountJSON{Name: "demo", Exchange: "simulated"}
	fillAccount(&demo, metrics.Compute("demo", "simulated", nil, snap, nil, now), compiled, now)
	demo.Time = &snap.Time

	poolSnap := &exchanges.Snapshot{
		Time: now.Add(-5 * time.Second),
		Balances: []exchanges.Balance{
			{Asset: "USDT", WalletBalance: 10000, MarginBalance: 10000, AvailableBalance: 7400, CrossWalletBalance: 10000, CrossMaintMargin: 100},
			{Asset: "USDC", WalletBalance: 2050, MarginBalance: 2000, UnrealizedPnL: -50, CrossUnPnL: -50, AvailableBalance: 1500, CrossWalletBalance: 2050, CrossMaintMargin: 100},
		},
		Positions: []exchanges.Position{
			{Symbol: "BTCUSDT", Side: exchanges.Long, Pool: "USDT", MarginType: exchanges.Cross, Size: 0.1, EntryPrice: 59000, MarkPrice: 60000, LiquidationPrice: 12000, Leverage: 10, Notional: 6000, MaintMargin: 100, FundingRate: 0.0001, FundingInterval: 8 * time.Hour},
			{Symbol: "ETHUSDC", Side: exchanges.Short, Pool: "USDC", MarginType: exchanges.Cross, Size: 1, EntryPrice: 2950, MarkPrice: 3000, LiquidationPrice: 4800, Leverage: 20, Notional: 3000, MaintMargin: 100, FundingRate: -2.5458e-05, FundingInterval: 4 * time.Hour,
				Stops: []exchanges.Stop{{Trigger: 3150, Quantity: 0.5}}},
		},
	}
	pools := accountJSON{Name: "pools", Exchange: "binance-usdm"}
	fillAccount(&pools, metrics.Compute("pools", "binance-usdm", nil, poolSnap, nil, now), compiled, now)
	pools.Time = &poolSnap.Time

	broken := accountJSON{Name: "sub", Exchange: "binance-usdm", Metrics: metricsJSON{}, Positions: []positionJSON{}, Firing: []rules.Hit{},
		Error: "poll: account sub: Binance rejected the API key (code -2015, \"Invalid API-key, IP, or permissions for action.\"): check that api_key and api_secret belong together, that \"Enable Reading\" is on and, if the key is restricted to IPs, that this host's IP is listed, in Binance API Management"}
	return statusJSON{Source: sourcePoll, via: "no daemon answered at 127.0.0.1:9464: connection refused", Accounts: []accountJSON{demo, pools, broken}, restating: restating(cfg.Rules)}, now
}

// TestStatusTableGolden: the table a trader reads at 3 a.m. fits 80
// columns, says when each account was polled and how old its data is,
// puts what would fire first, lists positions nearest to liquidation
// first, and writes every figure in its unit. Run with -update to rewrite
// testdata/status.golden after a deliberate change.
func TestStatusTableGolden(t *testing.T) {
	doc, now := statusDoc(t)
	var out bytes.Buffer
	printStatus(&out, doc, now, false)
	got := out.String()
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestStatusTableGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("status table differs from %s (run with -update if the change is deliberate):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	for i, l := range strings.Split(got, "\n") {
		if n := utf8.RuneCountInString(l); n > tableWidth {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, l)
		}
	}
	for _, bad := range []string{"e-0", "e+0", "+Inf", "NaN"} {
		if strings.Contains(got, bad) {
			t.Errorf("table shows %q:\n%s", bad, got)
		}
	}
	// Nearest to liquidation first, what fires before the positions.
	if i, j := strings.Index(got, "Would fire now"), strings.Index(got, "SYMBOL"); i < 0 || j < i {
		t.Errorf("firing alerts do not come before the positions:\n%s", got)
	}
	if i, j := strings.Index(got, "  BTCUSDT  long"), strings.Index(got, "  SOLUSDT"); i < 0 || j < i {
		t.Errorf("BTCUSDT (nearest to liquidation) is not the first position:\n%s", got)
	}
	for _, want := range []string{"polled 14:03:12 UTC, 2s ago", "margin ratio ", "0.0100%", "-0.0025%", "none", "50% at 5%"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestStatusTableColour: on a terminal a critical line is red and a
// warning line amber; without the codes it is the plain table. Piped, it
// has no escape codes at all (TestStatusTableGolden).
func TestStatusTableColour(t *testing.T) {
	doc, now := statusDoc(t)
	var plain, coloured bytes.Buffer
	printStatus(&plain, doc, now, false)
	printStatus(&coloured, doc, now, true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain output has escape codes")
	}
	if got := ansi.ReplaceAllString(coloured.String(), ""); got != plain.String() {
		t.Errorf("coloured output without its codes differs from the plain one:\n%s", got)
	}
	lines := strings.Split(coloured.String(), "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(ansi.ReplaceAllString(l, ""), prefix) {
				return l
			}
		}
		t.Fatalf("no line starts with %q:\n%s", prefix, coloured.String())
		return ""
	}
	for _, tt := range []struct{ prefix, color string }{
		{"  CRITICAL liquidation-near BTCUSDT long", colorRed},
		{"  BTCUSDT  long", colorRed},
		{"  WARNING  margin-ratio", colorAmber},
		{"  error: poll: account sub", colorRed},
	} {
		if l := find(tt.prefix); !strings.HasPrefix(l, tt.color) {
			t.Errorf("line %q is not coloured %q", l, tt.color)
		}
	}
	if l := find("  ETHUSDT"); strings.Contains(l, "\x1b[") {
		t.Errorf("a position nothing fires on is coloured: %q", l)
	}
}

// TestStatusTableNarrowCells: a row that would pass 80 columns with two
// spaces between cells gets one.
func TestStatusTableNarrowCells(t *testing.T) {
	var out bytes.Buffer
	p := &tablePrinter{w: &out}
	cols := []column{{"A", false}, {"B", true}, {"C", true}}
	p.table(cols, [][]string{{strings.Repeat("x", 30), strings.Repeat("y", 24), strings.Repeat("z", 22)}}, nil)
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > tableWidth {
			t.Errorf("%d columns: %q", n, l)
		}
	}
}
