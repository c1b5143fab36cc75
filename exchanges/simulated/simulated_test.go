package simulated

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// start is deliberately not on an hour boundary, so that candles straddle
// scenario time 0.
var start = time.Date(2025, 3, 1, 12, 34, 56, 0, time.UTC)

// clock is a settable clock for New.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAt(t *testing.T, scenario string) (*Exchange, *clock) {
	t.Helper()
	c := &clock{t: start}
	e, err := New(scenario, c.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, c
}

// snapAt returns the snapshot at scenario time d.
func snapAt(t *testing.T, e *Exchange, c *clock, d time.Duration) *exchanges.Snapshot {
	t.Helper()
	c.t = start.Add(d)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot at %v: %v", d, err)
	}
	return snap
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func liqDistance(p *exchanges.Position) float64 {
	if p.LiquidationPrice == 0 {
		return math.Inf(1)
	}
	return math.Abs(p.MarkPrice-p.LiquidationPrice) / p.MarkPrice * 100
}

func TestLiquidationPrice(t *testing.T) {
	tests := []struct {
		name                                      string
		wb, tmm1, upnl1, cumB, side, size, ep, mm float64
		want                                      float64
	}{
		// (10 − 100) / (0.005 − 1) = −90 / −0.995
		{"long", 10, 0, 0, 0, 1, 1, 100, 0.005, 90.45226130653266},
		// (10 + 100) / (0.005 + 1) = 110 / 1.005
		{"short", 10, 0, 0, 0, -1, 1, 100, 0.005, 109.45273631840796},
		// Cross, with others: (20 − 2 + (−3) + 0.5 − 100) / (0.005 − 1) = −84.5 / −0.995
		{"cross long with other positions", 20, 2, -3, 0.5, 1, 1, 100, 0.005, 84.92462311557789},
		// (10 + 2 × 100) / (2 × 0.01 + 2) = 210 / 2.02
		{"short size 2", 10, 0, 0, 0, -1, 2, 100, 0.01, 103.96039603960396},
		// (200 − 100) / (0.005 − 1) < 0: the wallet covers any fall
		{"long over-collateralised", 200, 0, 0, 0, 1, 1, 100, 0.005, 0},
		{"zero size", 10, 0, 0, 0, 1, 0, 100, 0.005, 0},
	}
	for _, tt := range tests {
		got := liquidationPrice(tt.wb, tt.tmm1, tt.upnl1, tt.cumB, tt.side, tt.size, tt.ep, tt.mm)
		if !near(got, tt.want) {
			t.Errorf("%s: liquidationPrice = %.15g, want %.15g", tt.name, got, tt.want)
		}
	}
}

// The whole book at crash time 0, by hand.
func TestCrashAtStart(t *testing.T) {
	e, c := newAt(t, "crash")
	snap := snapAt(t, e, c, 0)
	if !snap.Time.Equal(start) || snap.Inverse || len(snap.Balances) != 1 || len(snap.Positions) != 4 {
		t.Fatalf("snapshot shape: time %v inverse %v balances %d positions %d", snap.Time, snap.Inverse, len(snap.Balances), len(snap.Positions))
	}
	type pos struct {
		symbol                               string
		notional, upnl, maint, isolated, liq float64
	}
	want := []pos{
		// 0.075 × 61,800; 0.075 × (61,800 − 62,000); × 0.004; 0.075 × 62,000 / 5;
		// (930 − 0.075 × 62,000) / (0.075 × 0.004 − 0.075) = −3,720 / −0.0747
		{"BTCUSDT", 4635, -15, 18.54, 930, 3720 / 0.0747},
		// 1.5 × 2,990; short: 1.5 × (2,990 − 3,000) × −1; × 0.005; cross:
		// (48,070 − 15.125 (BNB MM) + 25 (BNB PnL) + 1.5 × 3,000) / (1.5 × 0.005 + 1.5)
		{"ETHUSDT", 4485, 15, 22.425, 0, 52579.875 / 1.5075},
		// 20 × 148; 20 × (148 − 150); × 0.01; 20 × 150 / 3; (1,000 − 3,000) / (0.2 − 20)
		{"SOLUSDT", 2960, -40, 29.6, 1000, 2000 / 19.8},
		// 5 × 605; 5 × 5; × 0.005; (48,070 − 22.425 + 15 − 3,000) / (0.025 − 5) < 0: none
		{"BNBUSDT", 3025, 25, 15.125, 0, 0},
	}
	for i, w := range want {
		p := &snap.Positions[i]
		if p.Symbol != w.symbol || !near(p.Notional, w.notional) || !near(p.UnrealizedPnL, w.upnl) ||
			!near(p.MaintMargin, w.maint) || !near(p.IsolatedWallet, w.isolated) || !near(p.LiquidationPrice, w.liq) {
			t.Errorf("position %d = %s notional %v upnl %v maint %v isolated %v liq %.12g; want %+v",
				i, p.Symbol, p.Notional, p.UnrealizedPnL, p.MaintMargin, p.IsolatedWallet, p.LiquidationPrice, w)
		}
	}
	b := snap.Balances[0]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"wallet", b.WalletBalance, 50000},
		{"upnl", b.UnrealizedPnL, -15},                  // −15 + 15 − 40 + 25
		{"margin balance", b.MarginBalance, 49985},      // 50,000 − 15
		{"maint", b.MaintMargin, 85.69},                 // 18.54 + 22.425 + 29.6 + 15.125
		{"cross wallet", b.CrossWalletBalance, 48070},   // 50,000 − 930 − 1,000
		{"cross upnl", b.CrossUnPnL, 40},                // ETH 15 + BNB 25
		{"cross maint", b.CrossMaintMargin, 37.55},      // 22.425 + 15.125
		{"available", b.AvailableBalance, 45047.5},      // 49,985 − (930 + 1,000 + 4,485/3 + 3,025/2)
		{"funding paid 24h", b.FundingPaid24h, 1.65585}, // 3 × (4,635×0.0001 − 4,485×0.00008 + 2,960×0.0001 + 3,025×0.00005)
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("balance %s = %.12g, want %.12g", c.name, c.got, c.want)
		}
	}
	btc := &snap.Positions[0]
	if btc.Leverage != 5 || btc.MarginType != exchanges.Isolated || btc.Side != exchanges.Long || btc.Pool != "USDT" {
		t.Errorf("BTC position = %+v, want isolated 5x long in the USDT pool", btc)
	}
	// Its one stop rests below its liquidation price: no protection.
	if len(btc.Stops) != 1 || btc.Stops[0].Trigger >= btc.LiquidationPrice {
		t.Errorf("BTC stops %+v, want one beyond liquidation (%v)", btc.Stops, btc.LiquidationPrice)
	}
	for _, p := range snap.Positions[1:] {
		if len(p.Stops) != 1 || p.LiquidationPrice > 0 && (p.Side == exchanges.Long) != (p.Stops[0].Trigger > p.LiquidationPrice) {
			t.Errorf("%s stops %+v (liq %v), want one before liquidation", p.Symbol, p.Stops, p.LiquidationPrice)
		}
	}
	// |61,800 − 49,799.197| / 61,800 × 100 = 19.42: "around 19–20%"
	if d := liqDistance(btc); !near(d, (61800-3720/0.0747)/61800*100) || d < 19 || d > 20 {
		t.Errorf("BTC liq distance = %v", d)
	}
}

// The demo rule liq_distance_pct below {warning: 15, critical: 7},
// hysteresis 2, over the crash.
func TestCrashDistances(t *testing.T) {
	e, c := newAt(t, "crash")
	tests := []struct {
		at     time.Duration
		lo, hi float64 // BTC distance within (lo, hi)
	}{
		{0, 19, 20},
		{5 * time.Second, 15, 19},         // not yet
		{13 * time.Second, 7, 15},         // warning
		{20 * time.Second, 7, 15},         // still warning
		{24 * time.Second, 4, 7},          // critical
		{28 * time.Second, 4.5, 4.7},      // bottom: 1 − 49,799.2 / 52,200 = 4.60%
		{35 * time.Second, 4, 7},          // held
		{38 * time.Second, 7, 9},          // critical holds by hysteresis (< 7 + 2)
		{40 * time.Second, 9, 15},         // eased to warning
		{46 * time.Second, 15, 17},        // warning holds by hysteresis (< 15 + 2)
		{50 * time.Second, 17, 18},        // resolved
		{60 * time.Second, 18.7, 18.8},    // 1 − 49,799.2 / 61,300 = 18.76%
		{10 * time.Minute, 18.7, 18.8},    // held, no second incident
		{30 * 24 * time.Hour, 18.7, 18.8}, // even much later
	}
	for _, tt := range tests {
		snap := snapAt(t, e, c, tt.at)
		if d := liqDistance(&snap.Positions[0]); d <= tt.lo || d >= tt.hi {
			t.Errorf("at %v: BTC liq distance %.3f, want in (%v, %v)", tt.at, d, tt.lo, tt.hi)
		}
	}
}

// Scanning every scenario every half second: crossings happen when the doc
// says, nothing else comes near liquidation, leverage stays <= 5 and no
// position reaches 10% of equity.
func TestScenarioInvariants(t *testing.T) {
	for _, name := range Scenarios() {
		t.Run(name, func(t *testing.T) {
			e, c := newAt(t, name)
			var below15, below7, above17 time.Duration = -1, -1, -1
			minDist := math.Inf(1)
			for step := range 241 { // 0 … 120 s
				at := time.Duration(step) * 500 * time.Millisecond
				snap := snapAt(t, e, c, at)
				eq := snap.Balances[0].MarginBalance
				for i := range snap.Positions {
					p := &snap.Positions[i]
					d := liqDistance(p)
					if i == 0 {
						minDist = min(minDist, d)
						if d < 15 && below15 < 0 {
							below15 = at
						}
						if d < 7 && below7 < 0 {
							below7 = at
						}
						if below7 >= 0 && d > 17 && above17 < 0 {
							above17 = at
						}
					} else if d <= 25 {
						t.Errorf("at %v: %s liq distance %.2f, want > 25", at, p.Symbol, d)
					}
					if p.Leverage > 5 {
						t.Errorf("%s leverage %v > 5", p.Symbol, p.Leverage)
					}
					if pct := p.Notional / eq * 100; pct >= 10 {
						t.Errorf("at %v: %s is %.2f%% of equity", at, p.Symbol, pct)
					}
				}
			}
			if name != "crash" {
				if minDist < 18 {
					t.Errorf("BTC liq distance fell to %.2f in a %s scenario", minDist, name)
				}
				return
			}
			if below15 < 10*time.Second || below15 > 15*time.Second {
				t.Errorf("below 15%% at %v, want 10–15 s", below15)
			}
			if below7 < 20*time.Second || below7 > 30*time.Second {
				t.Errorf("below 7%% at %v, want 20–30 s", below7)
			}
			if above17 < 45*time.Second || above17 > 50*time.Second {
				t.Errorf("back above 17%% at %v, want 45–50 s", above17)
			}
			if minDist < 4 || minDist > 5 {
				t.Errorf("closest approach %.2f%%, want 4–5%%", minDist)
			}
		})
	}
}

// Balances add up at every moment of every scenario, and each liquidation
// price follows from the balance by the formula.
func TestBalancesAddUp(t *testing.T) {
	for _, name := range Scenarios() {
		e, c := newAt(t, name)
		for _, at := range []time.Duration{0, 13 * time.Second, 28 * time.Second, 44 * time.Second, time.Hour} {
			snap := snapAt(t, e, c, at)
			b := snap.Balances[0]
			var upnl, mm, crossUpnl, crossMM, iso float64
			for i := range snap.Positions {
				p := &snap.Positions[i]
				h := &book[i]
				if !near(p.Notional, p.Size*p.MarkPrice) || !near(p.UnrealizedPnL, p.Size*(p.MarkPrice-p.EntryPrice)*p.Side.Sign()) ||
					!near(p.MaintMargin, p.Notional*h.mmr-h.maintAmount) {
					t.Errorf("%s at %v: %s figures inconsistent: %+v", name, at, p.Symbol, p)
				}
				upnl += p.UnrealizedPnL
				mm += p.MaintMargin
				if p.MarginType == exchanges.Isolated {
					iso += p.IsolatedWallet
				} else {
					crossUpnl += p.UnrealizedPnL
					crossMM += p.MaintMargin
				}
			}
			if !near(b.MarginBalance, b.WalletBalance+b.UnrealizedPnL) || !near(b.UnrealizedPnL, upnl) || !near(b.MaintMargin, mm) ||
				!near(b.CrossWalletBalance, b.WalletBalance-iso) || !near(b.CrossUnPnL, crossUpnl) || !near(b.CrossMaintMargin, crossMM) ||
				b.AvailableBalance <= 0 || b.AvailableBalance >= b.MarginBalance {
				t.Errorf("%s at %v: balance does not add up: %+v", name, at, b)
			}
			for i := range snap.Positions {
				p := &snap.Positions[i]
				h := &book[i]
				wb, tmm, up := p.IsolatedWallet, 0.0, 0.0
				if p.MarginType == exchanges.Cross {
					wb, tmm, up = b.CrossWalletBalance, b.CrossMaintMargin-p.MaintMargin, b.CrossUnPnL-p.UnrealizedPnL
				}
				lp := (wb - tmm + up + h.maintAmount - p.Side.Sign()*p.Size*p.EntryPrice) / (p.Size*h.mmr - p.Side.Sign()*p.Size)
				if lp < 0 {
					lp = 0
				}
				if !near(p.LiquidationPrice, lp) {
					t.Errorf("%s at %v: %s liquidation price %v, want %v", name, at, p.Symbol, p.LiquidationPrice, lp)
				}
			}
		}
	}
}

func TestFundingSpike(t *testing.T) {
	e, c := newAt(t, "funding-spike")
	tests := []struct {
		at   time.Duration
		rate float64
	}{
		{0, 0.0001},
		{10 * time.Second, 0.0001},
		{12500 * time.Millisecond, 0.00155}, // halfway up: 0.0001 + 0.0029 / 2
		{20 * time.Second, 0.003},
		{45 * time.Second, 0.00155}, // halfway down
		{50 * time.Second, 0.0001},
		{time.Hour, 0.0001},
	}
	var paid0 float64
	for i, tt := range tests {
		snap := snapAt(t, e, c, tt.at)
		sol := &snap.Positions[2]
		if sol.Symbol != "SOLUSDT" || !near(sol.FundingRate, tt.rate) || sol.FundingInterval != 8*time.Hour {
			t.Errorf("at %v: %s funding %v every %v, want SOLUSDT %v every 8h", tt.at, sol.Symbol, sol.FundingRate, sol.FundingInterval, tt.rate)
		}
		if snap.Positions[0].FundingRate != 0.0001 {
			t.Errorf("at %v: BTC funding %v moved", tt.at, snap.Positions[0].FundingRate)
		}
		paid := snap.Balances[0].FundingPaid24h
		if i == 0 {
			paid0 = paid
		}
		// At 20 s SOL (149, per calm) adds 20 × 149 × (2 × 0.0001 + 0.003) = 9.536
		// where it added 20 × 148 × 0.0003 = 0.888 at 0 s.
		if tt.at == 20*time.Second && paid-paid0 < 8 {
			t.Errorf("funding paid 24h grew from %v to only %v during the spike", paid0, paid)
		}
	}
}

func TestNextFundingTime(t *testing.T) {
	e, c := newAt(t, "calm")
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct{ now, want time.Time }{
		{start, day.Add(16 * time.Hour)},                   // 12:34:56 → 16:00
		{day.Add(16 * time.Hour), day.Add(24 * time.Hour)}, // on the dot: the next one
		{day.Add(23*time.Hour + 59*time.Minute), day.Add(24 * time.Hour)},
		{day.Add(24*time.Hour + time.Nanosecond), day.Add(32 * time.Hour)},
	}
	for _, tt := range tests {
		c.t = tt.now
		snap, err := e.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.Positions[0].NextFundingTime; !got.Equal(tt.want) {
			t.Errorf("at %v: next funding %v, want %v", tt.now, got, tt.want)
		}
	}
}

func TestCandles(t *testing.T) {
	e, c := newAt(t, "crash")
	// Two hours on, the 12:00 and 13:00 candles hold scenario time (12:34:56 +
	// 0…60 s lies in the 12:00 candle).
	snap := snapAt(t, e, c, 2*time.Hour)
	for i := range snap.Positions {
		p := &snap.Positions[i]
		if len(p.Candles) != 30 {
			t.Fatalf("%s: %d candles, want 30", p.Symbol, len(p.Candles))
		}
		last := p.Candles[len(p.Candles)-1]
		if want := time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC); !last.OpenTime.Equal(want) {
			t.Errorf("%s: last candle opens %v, want %v (the last closed hour)", p.Symbol, last.OpenTime, want)
		}
		for k, cd := range p.Candles {
			if k > 0 && cd.OpenTime.Sub(p.Candles[k-1].OpenTime) != time.Hour {
				t.Errorf("%s candle %d: not hourly", p.Symbol, k)
			}
			if !(cd.Low > 0 && cd.Low <= cd.Close && cd.Close <= cd.High) {
				t.Errorf("%s candle %d: low %v close %v high %v", p.Symbol, k, cd.Low, cd.Close, cd.High)
			}
		}
	}
	btc := snap.Positions[0].Candles
	crashHour := btc[len(btc)-2] // 12:00–13:00
	if crashHour.Low > 52200 || !near(crashHour.Close, 61300) {
		t.Errorf("crash candle low %v close %v; want low <= 52,200 and close 61,300", crashHour.Low, crashHour.Close)
	}
	// Positions get their own slice each snapshot: a caller may keep one.
	again := snapAt(t, e, c, 2*time.Hour)
	if &again.Positions[0].Candles[0] == &btc[0] {
		t.Error("candle slices shared between snapshots")
	}
}

func TestDeterministic(t *testing.T) {
	for _, name := range Scenarios() {
		a, ca := newAt(t, name)
		b, cb := newAt(t, name)
		for _, at := range []time.Duration{0, 7 * time.Second, 26500 * time.Millisecond, time.Minute, 5 * time.Hour} {
			sa, sb := snapAt(t, a, ca, at), snapAt(t, b, cb, at)
			if !reflect.DeepEqual(sa, sb) {
				t.Errorf("%s at %v: snapshots differ", name, at)
			}
		}
	}
}

func TestClockBeforeStart(t *testing.T) {
	e, c := newAt(t, "crash")
	before := snapAt(t, e, c, -time.Hour)
	if before.Positions[0].MarkPrice != 61800 {
		t.Errorf("before scenario start: BTC mark %v, want the time-0 price 61,800", before.Positions[0].MarkPrice)
	}
}

func TestErrors(t *testing.T) {
	if _, err := New("moon", nil, nil); err == nil || !strings.Contains(err.Error(), "calm, crash, funding-spike") {
		t.Errorf("New(moon) error = %v, want one listing the scenarios", err)
	}
	e, err := New("calm", nil, nil) // nil clock: time.Now
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if snap, err := e.Snapshot(ctx); !errors.Is(err, context.Canceled) || snap != nil {
		t.Errorf("cancelled ctx: %v, %v; want nil, context.Canceled", snap, err)
	}
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Errorf("Snapshot: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Snapshot(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestScenarioEndIsAnnounced: the first snapshot at or past the scenario's
// end logs once that the demo is over, naming the scenario; none before.
func TestScenarioEndIsAnnounced(t *testing.T) {
	for _, name := range Scenarios() {
		t.Run(name, func(t *testing.T) {
			c := &clock{t: start}
			var logs strings.Builder
			e, err := New(name, c.now, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if e.End() != 60*time.Second {
				t.Errorf("End() = %v, want 60s (doc.go says so)", e.End())
			}
			snapAt(t, e, c, e.End()-time.Second)
			if logs.Len() != 0 {
				t.Fatalf("logged before the end: %s", logs.String())
			}
			snapAt(t, e, c, e.End())
			snapAt(t, e, c, e.End()+time.Minute)
			if n := strings.Count(logs.String(), "demo scenario finished"); n != 1 {
				t.Fatalf("announced %d times, want once:\n%s", n, logs.String())
			}
			for _, want := range []string{"scenario=" + name, "Ctrl-C", "after=1m0s"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q: %s", want, logs.String())
				}
			}
		})
	}
}
