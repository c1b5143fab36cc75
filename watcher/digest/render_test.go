package digest

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// now is 08:00 in Berlin on the day summer time began.
var now = time.Date(2024, 3, 31, 6, 0, 0, 0, time.UTC)

// usdm is a USDⓈ-M account with three positions, listed by the exchange
// farthest from liquidation first.
func usdm(t *testing.T) *metrics.Account {
	t.Helper()
	snap := &exchanges.Snapshot{
		Time: now.Add(-5 * time.Second),
		Balances: []exchanges.Balance{{
			Asset: "USDT", WalletBalance: 9800, UnrealizedPnL: 200, MarginBalance: 10000,
			AvailableBalance: 5000, CrossWalletBalance: 9800, CrossUnPnL: 200,
			CrossMaintMargin: 250,   // 250 / 10000 = 2.5%
			FundingPaid24h:   -3.25, // received
		}},
		Positions: []exchanges.Position{
			// No liquidation price (fully collateralised): listed last.
			{Symbol: "SOLUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 50, MarkPrice: 100, Notional: 5000, Leverage: 2,
				Stops: []exchanges.Stop{{Trigger: 90, ClosePosition: true}}},
			// |3000 − 3600| / 3000 = 20%; 15000 / 10000 = 150%.
			{Symbol: "ETHUSDT", Side: exchanges.Short, MarginType: exchanges.Cross, Size: 5, MarkPrice: 3000, LiquidationPrice: 3600, Notional: 15000, Leverage: 5},
			// |60000 − 54000| / 60000 = 10%; 30000 / 10000 = 300%.
			{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 0.5, MarkPrice: 60000, LiquidationPrice: 54000, Notional: 30000, Leverage: 10,
				Stops: []exchanges.Stop{{Trigger: 57000, ClosePosition: true}}},
		},
	}
	a := metrics.Compute("main", "binance-usdm", nil, snap, nil, now)
	// Drawdown needs an equity history; set it by hand.
	a.Metrics.Put(metrics.DrawdownPct, 3.5)
	return a
}

// coinm is a COIN-M account with two margin assets.
func coinm(t *testing.T) *metrics.Account {
	t.Helper()
	snap := &exchanges.Snapshot{
		Time:    now.Add(-5 * time.Second),
		Inverse: true,
		Balances: []exchanges.Balance{
			// 0.05 / (1.9 + 0.1) = 2.5%
			{Asset: "BTC", WalletBalance: 1.9, UnrealizedPnL: 0.1, MarginBalance: 2, AvailableBalance: 1.5, CrossWalletBalance: 1.9, CrossUnPnL: 0.1, CrossMaintMargin: 0.05, FundingPaid24h: 0.0001},
			// 1 / 10 = 10%; the exchange could not tell the funding.
			{Asset: "ETH", WalletBalance: 10, MarginBalance: 10, AvailableBalance: 8, CrossWalletBalance: 10, CrossMaintMargin: 1, FundingPaid24h: math.NaN()},
		},
		Positions: []exchanges.Position{
			// 120 contracts × 100 USD / 60000 = 0.2 BTC: 10% of 2 BTC;
			// |60000 − 50000| / 60000 = 16.67%.
			{Symbol: "BTCUSD_PERP", Side: exchanges.Long, MarginAsset: "BTC", MarginType: exchanges.Cross, Size: 120, ContractSize: 100, MarkPrice: 60000, LiquidationPrice: 50000, Notional: 0.2, Leverage: 20},
			// 5 ETH of 10 = 50%; |3000 − 3300| / 3000 = 10%.
			{Symbol: "ETHUSD_PERP", Side: exchanges.Short, MarginAsset: "ETH", MarginType: exchanges.Cross, Size: 1500, ContractSize: 10, MarkPrice: 3000, LiquidationPrice: 3300, Notional: 5, Leverage: 3,
				Stops: []exchanges.Stop{{Trigger: 3200, ClosePosition: true}}},
		},
	}
	return metrics.Compute("coin", "binance-coinm", nil, snap, nil, now)
}

func alert(account, id string, sev notifiers.Severity, kind notifiers.Kind, rule, symbol, side string, at time.Time, summary string) notifiers.Alert {
	status := notifiers.Firing
	if kind == notifiers.KindResolved {
		status = notifiers.Resolved
	}
	return notifiers.Alert{
		ID: id, Status: status, Kind: kind, Severity: sev, Rule: rule, Account: account,
		Symbol: symbol, Side: side, At: at, StartsAt: at, Summary: summary,
	}
}

// recent is the alert history in store order (oldest first), with alerts
// that must not show: outside the window, of another account, a digest.
func recent() []notifiers.Alert {
	return []notifiers.Alert{
		alert("main", "old", notifiers.Critical, notifiers.KindFiring, "liquidation-near", "BTCUSDT", "long", now.Add(-24*time.Hour), "exactly 24h old"),
		// 23:10 UTC is 00:10 CET, before the clocks went forward.
		alert("main", "m1", notifiers.Warning, notifiers.KindResolved, "margin-high", "", "", time.Date(2024, 3, 30, 23, 10, 0, 0, time.UTC), "margin ratio back to 2.5%\n  all good"),
		alert("other", "o1", notifiers.Critical, notifiers.KindFiring, "margin-high", "", "", time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC), "not this account"),
		// 02:30 UTC is 04:30 CEST.
		alert("main", "e1", notifiers.Warning, notifiers.KindFiring, "no-stop", "ETHUSDT", "short", time.Date(2024, 3, 31, 2, 30, 0, 0, time.UTC), "ETHUSDT short has no stop-loss"),
		alert("coin", "c1", notifiers.Critical, notifiers.KindEvent, "margin-call", "", "", time.Date(2024, 3, 31, 3, 0, 0, 0, time.UTC), "margin call on coin"),
		alert("", "digest:morning:x", notifiers.Info, notifiers.KindDigest, "digest:morning", "", "", time.Date(2024, 3, 31, 4, 0, 0, 0, time.UTC), "yesterday's digest"),
		alert("main", "t1", notifiers.Info, notifiers.KindTest, "notify-test", "", "", time.Date(2024, 3, 31, 4, 0, 0, 0, time.UTC), "test"),
		// 05:45 UTC is 07:45 CEST.
		alert("main", "b1", notifiers.Critical, notifiers.KindEscalated, "liquidation-near", "BTCUSDT", "long", time.Date(2024, 3, 31, 5, 45, 0, 0, time.UTC), "BTCUSDT long is 6.9% from liquidation"),
		alert("main", "future", notifiers.Critical, notifiers.KindFiring, "liquidation-near", "BTCUSDT", "long", now.Add(time.Minute), "after the digest"),
	}
}

func TestRender(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	stale := metrics.Stale("sub", "binance-usdm", nil, time.Date(2024, 3, 31, 5, 12, 0, 0, time.UTC), now)
	never := metrics.Stale("new", "binance-usdm", nil, time.Time{}, now)
	staleAlert := alert("sub", "s1", notifiers.Critical, notifiers.KindFiring, "data-stale", "", "", time.Date(2024, 3, 31, 5, 13, 0, 0, time.UTC), "monitoring of sub is blind")
	empty := metrics.Compute("idle", "simulated", nil, &exchanges.Snapshot{Time: now, Balances: []exchanges.Balance{{Asset: "USDT"}}}, nil, now)

	tests := []struct {
		name   string
		accts  []*metrics.Account
		recent []notifiers.Alert
		loc    *time.Location
		want   string
	}{
		{
			name:   "USDⓈ-M with positions and alerts",
			accts:  []*metrics.Account{usdm(t)},
			recent: recent(),
			loc:    berlin,
			want: `marginwatch digest morning — Sun 2024-03-31 08:00 CEST

main (binance-usdm)
  equity 10000.00 · margin ratio 2.5% · leverage 5x · funding paid 24h -3.25 · drawdown 3.5%
  3 positions, nearest to liquidation first:
    BTCUSDT long: size 300% of equity · leverage 10x · liquidation 10% away · stop-loss set
    ETHUSDT short: size 150% of equity · leverage 5x · liquidation 20% away · no stop-loss
    SOLUSDT long: size 50% of equity · leverage 2x · no liquidation price · stop-loss set
  alerts in the last 24h (3), newest first:
    07:45 critical escalated liquidation-near BTCUSDT long — BTCUSDT long is 6.9% from liquidation
    04:30 warning firing no-stop ETHUSDT short — ETHUSDT short has no stop-loss
    00:10 warning resolved margin-high — margin ratio back to 2.5% all good`,
		},
		{
			name:   "COIN-M with two assets",
			accts:  []*metrics.Account{coinm(t)},
			recent: recent(),
			loc:    nil, // UTC
			want: `marginwatch digest morning — Sun 2024-03-31 06:00 UTC

coin (binance-coinm)
  margin ratio 10% (highest pool)
  BTC: equity 2.00 · margin ratio 2.5% · leverage 0.1x · funding paid 24h 0.0001 · drawdown n/a
  ETH: equity 10.00 · margin ratio 10% · leverage 0.5x · funding paid 24h n/a · drawdown n/a
  2 positions, nearest to liquidation first:
    ETHUSD_PERP short: size 50% of asset equity · leverage 3x · liquidation 10% away · stop-loss set
    BTCUSD_PERP long: size 10% of asset equity · leverage 20x · liquidation 16.67% away · no stop-loss
  alerts in the last 24h (1), newest first:
    03:00 critical event margin-call — margin call on coin`,
		},
		{
			name:   "stale, never polled, idle and nil accounts in the given order",
			accts:  []*metrics.Account{stale, nil, never, empty},
			recent: append(recent(), staleAlert),
			loc:    berlin,
			want: `marginwatch digest morning — Sun 2024-03-31 08:00 CEST

sub (binance-usdm)
  no fresh data since 2024-03-31 07:12 CEST: the last poll failed
  alerts in the last 24h (1), newest first:
    07:13 critical firing data-stale — monitoring of sub is blind

new (binance-usdm)
  no data received yet: the exchange has not answered
  no alerts in the last 24h

idle (simulated)
  equity 0.00 · margin ratio 0% · leverage 0x · funding paid 24h 0.00 · drawdown n/a
  no open positions
  no alerts in the last 24h`,
		},
		{
			name: "no accounts",
			loc:  time.UTC,
			want: "marginwatch digest morning — Sun 2024-03-31 06:00 UTC\n\nno accounts",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render("morning", tt.accts, tt.recent, now, tt.loc)
			if got.Summary != tt.want {
				t.Errorf("Summary:\n%s\n\nwant:\n%s", got.Summary, tt.want)
			}
		})
	}
}

func TestRenderAlertFields(t *testing.T) {
	got := Render("morning", []*metrics.Account{usdm(t)}, nil, now, nil)
	want := notifiers.Alert{
		ID:       "digest:morning:20240331T0600Z",
		Status:   notifiers.Firing,
		Kind:     notifiers.KindDigest,
		Severity: notifiers.Info,
		Rule:     "digest:morning",
		StartsAt: now,
		At:       now,
		Summary:  got.Summary,
	}
	if got.ID != want.ID || got.Status != want.Status || got.Kind != want.Kind || got.Severity != want.Severity ||
		got.Rule != want.Rule || !got.StartsAt.Equal(want.StartsAt) || !got.At.Equal(want.At) ||
		got.Account != "" || got.Symbol != "" || got.Metric != "" || got.Labels != nil || got.Context != nil {
		t.Errorf("Render = %+v\nwant %+v", got, want)
	}
	if !strings.HasSuffix(got.Summary, "  no alerts in the last 24h") {
		t.Errorf("Summary without alerts ends %q", got.Summary[max(0, len(got.Summary)-40):])
	}
}

func TestRenderTruncatesAlerts(t *testing.T) {
	// 23 alerts, one a minute from 00:01 UTC, recorded oldest first.
	var hist []notifiers.Alert
	for i := 1; i <= 23; i++ {
		at := time.Date(2024, 3, 31, 0, i, 0, 0, time.UTC)
		hist = append(hist, alert("main", fmt.Sprintf("a%d", i), notifiers.Warning, notifiers.KindRepeat, "funding-high", "ETHUSDT", "short", at, fmt.Sprintf("repeat %d", i)))
	}
	stale := metrics.Stale("main", "binance-usdm", nil, now.Add(-time.Minute), now)
	got := Render("morning", []*metrics.Account{stale}, hist, now, time.UTC).Summary
	want := `marginwatch digest morning — Sun 2024-03-31 06:00 UTC

main (binance-usdm)
  no fresh data since 2024-03-31 05:59 UTC: the last poll failed
  alerts in the last 24h (23), newest first:
    00:23 warning repeat funding-high ETHUSDT short — repeat 23
    00:22 warning repeat funding-high ETHUSDT short — repeat 22
    00:21 warning repeat funding-high ETHUSDT short — repeat 21
    00:20 warning repeat funding-high ETHUSDT short — repeat 20
    00:19 warning repeat funding-high ETHUSDT short — repeat 19
    00:18 warning repeat funding-high ETHUSDT short — repeat 18
    00:17 warning repeat funding-high ETHUSDT short — repeat 17
    00:16 warning repeat funding-high ETHUSDT short — repeat 16
    00:15 warning repeat funding-high ETHUSDT short — repeat 15
    00:14 warning repeat funding-high ETHUSDT short — repeat 14
    00:13 warning repeat funding-high ETHUSDT short — repeat 13
    00:12 warning repeat funding-high ETHUSDT short — repeat 12
    00:11 warning repeat funding-high ETHUSDT short — repeat 11
    00:10 warning repeat funding-high ETHUSDT short — repeat 10
    00:09 warning repeat funding-high ETHUSDT short — repeat 9
    00:08 warning repeat funding-high ETHUSDT short — repeat 8
    00:07 warning repeat funding-high ETHUSDT short — repeat 7
    00:06 warning repeat funding-high ETHUSDT short — repeat 6
    00:05 warning repeat funding-high ETHUSDT short — repeat 5
    00:04 warning repeat funding-high ETHUSDT short — repeat 4
    … and 3 more`
	if got != want {
		t.Errorf("Summary:\n%s\n\nwant:\n%s", got, want)
	}
}

func TestRenderClipsLongSummary(t *testing.T) {
	long := strings.Repeat("é", 119) + "xyz" // 122 characters
	hist := []notifiers.Alert{alert("main", "l1", notifiers.Warning, notifiers.KindFiring, "r", "", "", now.Add(-time.Hour), long)}
	stale := metrics.Stale("main", "", nil, now.Add(-time.Minute), now)
	got := Render("d", []*metrics.Account{stale}, hist, now, time.UTC).Summary
	want := "marginwatch digest d — Sun 2024-03-31 06:00 UTC\n\n" +
		"main\n" +
		"  no fresh data since 2024-03-31 05:59 UTC: the last poll failed\n" +
		"  alerts in the last 24h (1), newest first:\n" +
		"    05:00 warning firing r — " + strings.Repeat("é", 119) + "…"
	if got != want {
		t.Errorf("Summary:\n%s\n\nwant:\n%s", got, want)
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"ääää", 4, "ääää"},
		{"äääää", 4, "äää…"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := clip(tt.s, tt.n); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// TestRenderPastLiquidationAndPartialStop: a position whose mark is past its
// liquidation price says so instead of reading as far away, and a stop on
// part of a position says how much it covers.
func TestRenderPastLiquidationAndPartialStop(t *testing.T) {
	snap := &exchanges.Snapshot{
		Time:     now,
		Balances: []exchanges.Balance{{Asset: "USDT", MarginBalance: 1000, CrossWalletBalance: 1000}},
		Positions: []exchanges.Position{
			// The mark is past the liquidation price: (95 − 100) / 95 = −5.26%.
			{Symbol: "BTCUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 10, MarkPrice: 95, LiquidationPrice: 100, Notional: 950, Leverage: 10},
			// A 40% stop above the liquidation price.
			{Symbol: "ETHUSDT", Side: exchanges.Long, MarginType: exchanges.Cross, Size: 10, MarkPrice: 100, LiquidationPrice: 50, Notional: 1000, Leverage: 2,
				Stops: []exchanges.Stop{{Trigger: 80, Quantity: 4}}},
		},
	}
	out := Render("morning", []*metrics.Account{metrics.Compute("main", "binance-usdm", nil, snap, nil, now)}, nil, now, nil).Summary
	for _, want := range []string{
		"BTCUSDT long: size 95% of equity · leverage 10x · PAST liquidation by 5.26% · no stop-loss",
		"ETHUSDT long: size 100% of equity · leverage 2x · liquidation 50% away · stop-loss on 40% of it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("digest lacks %q:\n%s", want, out)
		}
	}
}
