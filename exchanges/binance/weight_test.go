package binance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// cachePaths are the reads that come on top of a steady poll, on the polls
// that refresh a cache.
var cachePaths = []string{"/fapi/v1/fundingInfo", "/fapi/v1/klines", "/fapi/v1/income", "/fapi/v1/leverageBracket"}

// pollWeight polls once and returns the weight the fake counted for it and
// whether it refreshed a cache.
func pollWeight(t *testing.T, ex *Exchange, srv *binancetest.Server) (weight int, cached bool) {
	t.Helper()
	srv.ResetCounts()
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range cachePaths {
		if srv.Count(p) > 0 {
			cached = true
		}
	}
	return srv.Weight(), cached
}

// TestWeightPerPoll measures USDⓈ-M polls with the fake's table of
// Binance's documented weights. One-way account, N = 3 held symbols. The
// first poll reads everything: account 5 + positionRisk 5 + premiumIndex,
// openOrders and openAlgoOrders per symbol 3 × 3 + fundingInfo 1 + klines
// 3 × 1 + income 30 + leverage brackets 3 × 1 = 56. A steady poll reads one
// kind per symbol, in turn: 10 + N = 13. The key check before (weight 1,
// on the spot API in production) is not part of a poll.
func TestWeightPerPoll(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	if err := ex.CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w, _ := pollWeight(t, ex, srv); w != 56 {
		t.Errorf("first poll weight = %d (%v), want 56", w, srv.Weights())
	}
	for i, kind := range []string{"/fapi/v1/premiumIndex", "/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders", "/fapi/v1/premiumIndex"} {
		clk.Advance(15 * time.Second)
		w, _ := pollWeight(t, ex, srv)
		if w != 13 || srv.Count(kind) != 3 || srv.Requests() != 5 {
			t.Errorf("steady poll %d: weight %d, %d requests (%v); want 13 with 3 × %s", i+2, w, srv.Requests(), srv.Weights(), kind)
		}
		if i == 2 && ex.UsedWeight() != 1+56+3*13 { // 04:30:45, still the first minute
			t.Errorf("UsedWeight = %d, want %d (this minute)", ex.UsedWeight(), 1+56+3*13)
		}
	}
}

// TestWeightHour polls for a simulated hour at the default 15 s interval
// (240 polls, the first included) and checks the budget: on average
// at most 12 + N a poll, a steady poll at most 10 + N.
func TestWeightHour(t *testing.T) {
	for _, c := range []struct {
		name    string
		account binancetest.Account
		n       int
	}{
		{"one-way", binancetest.USDMOneWay, 3},
		{"hedge", binancetest.USDMHedge, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: c.account}, nil)
			var total, first, steadyMax, steadyMin, cacheMax int
			steadyMin = 1 << 30
			for i := range 240 {
				w, cached := pollWeight(t, ex, srv)
				total += w
				switch {
				case i == 0:
					first = w
				case cached:
					cacheMax = max(cacheMax, w)
				default:
					steadyMax, steadyMin = max(steadyMax, w), min(steadyMin, w)
				}
				clk.Advance(15 * time.Second)
			}
			avg := float64(total) / 240
			t.Logf("USDⓈ-M %s, N=%d: first poll %d, steady poll %d..%d, heaviest cache-refresh poll %d, hour %d = %.2f a poll",
				c.name, c.n, first, steadyMin, steadyMax, cacheMax, total, avg)
			if steadyMax > 10+c.n {
				t.Errorf("steady poll weight %d > 10 + N = %d", steadyMax, 10+c.n)
			}
			if avg > float64(12+c.n) {
				t.Errorf("average weight a poll %.2f > 12 + N = %d", avg, 12+c.n)
			}
		})
	}
}

// TestWeightManySymbols: from premiumAllWeight symbols due on one poll, one
// premiumIndex for every symbol (10) is cheaper than one per symbol.
func TestWeightManySymbols(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	var rows, prem []string
	for i := range 12 {
		s := fmt.Sprintf("C%02dUSDT", i)
		rows = append(rows, fmt.Sprintf(`{"symbol":%q,"positionSide":"BOTH","positionAmt":"1","entryPrice":"10","markPrice":"10","unRealizedProfit":"0","liquidationPrice":"1","isolatedMargin":"0","notional":"10","marginAsset":"USDT","isolatedWallet":"0","maintMargin":"0.1","adl":1,"updateTime":1}`, s))
		prem = append(prem, fmt.Sprintf(`{"symbol":%q,"markPrice":"10","indexPrice":"10","estimatedSettlePrice":"10","lastFundingRate":"0.0001","interestRate":"0.0001","nextFundingTime":%d,"time":1}`, s, binancetest.NextFunding))
	}
	srv.SetBody("/fapi/v3/positionRisk", "["+strings.Join(rows, ",")+"]")
	srv.SetBody("/fapi/v1/premiumIndex", "["+strings.Join(prem, ",")+"]")
	srv.ResetCounts()
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if srv.Count("/fapi/v1/premiumIndex") != 1 || srv.Weights()["/fapi/v1/premiumIndex"] != 10 {
		t.Errorf("first poll premiumIndex: %d requests, weight %d; want one for all, 10", srv.Count("/fapi/v1/premiumIndex"), srv.Weights()["/fapi/v1/premiumIndex"])
	}
	for _, p := range snap.Positions {
		if p.FundingRate != 0.0001 {
			t.Errorf("%s funding rate %v", p.Symbol, p.FundingRate)
		}
	}
	// The made-up symbols have no candles or brackets in the fake, so those
	// are asked for again every poll: look at the per-symbol reads only.
	clk.Advance(15 * time.Second)
	pollWeight(t, ex, srv)
	if srv.Count("/fapi/v1/premiumIndex") != 1 || srv.Weights()["/fapi/v1/premiumIndex"] != 10 ||
		srv.Count("/fapi/v1/openOrders")+srv.Count("/fapi/v1/openAlgoOrders") != 0 {
		t.Errorf("steady premiumIndex poll: %v, want one premiumIndex for all (10) and nothing else per symbol", srv.Weights())
	}
}

// TestRotation: what a steady poll does not re-read is served from the last
// read and is at most three polls old; a new symbol gets everything at once;
// a passed funding time re-reads the funding rate at once.
func TestRotation(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ctx := context.Background()
	stop := func() bool {
		t.Helper()
		snap, err := ex.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range snap.Positions {
			if p.Symbol == "BTCUSDT" {
				return len(p.Stops) > 0
			}
		}
		t.Fatal("BTCUSDT missing")
		return false
	}
	if !stop() {
		t.Fatal("BTCUSDT has no stop on the first poll")
	}
	// The BTCUSDT algo stop is cancelled: the polls reading premiumIndex
	// and open orders still report it; the third, reading algo orders, not.
	srv.SetBody("/fapi/v1/openAlgoOrders", "[]")
	for i, want := range []bool{true, true, false} {
		clk.Advance(15 * time.Second)
		if got := stop(); got != want {
			t.Errorf("poll %d after the cancel: has stop %v, want %v", i+1, got, want)
		}
	}

	// ADAUSDT is opened: premiumIndex, open orders and algo orders at once.
	risk := srv.Body("/fapi/v3/positionRisk")
	ada := `{"symbol": "ADAUSDT", "positionSide": "BOTH", "positionAmt": "1000", "entryPrice": "0.4", "markPrice": "0.41047590",
   "unRealizedProfit": "10.4759", "liquidationPrice": "0.1", "isolatedMargin": "0", "notional": "410.4759", "marginAsset": "USDT",
   "isolatedWallet": "0", "maintMargin": "2.05", "adl": 1, "updateTime": 1720736417660}`
	srv.SetBody("/fapi/v3/positionRisk", strings.TrimSuffix(strings.TrimSpace(risk), "]")+","+ada+"]")
	clk.Advance(15 * time.Second)
	srv.ResetCounts()
	snap, err := ex.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Steady 3 × premiumIndex + ADAUSDT's three; klines and brackets 1 each
	// for the new symbol (it has none): 10 + 3 + 3 + 2 = 18.
	if srv.Count("/fapi/v1/premiumIndex") != 4 || srv.Count("/fapi/v1/openOrders") != 1 || srv.Count("/fapi/v1/openAlgoOrders") != 1 || srv.Weight() != 18 {
		t.Errorf("poll with a new symbol: %v, want 18", srv.Weights())
	}
	for _, p := range snap.Positions {
		if p.Symbol == "ADAUSDT" && (p.FundingRate != 0.0001 || p.NextFundingTime.IsZero()) {
			t.Errorf("ADAUSDT funding unknown on its first poll: %+v", p)
		}
	}

	// 08:00:05, past every symbol's funding time, on a poll whose turn is
	// the open orders for the first three symbols (premiumIndex for
	// ADAUSDT): premiumIndex is read for the three out of turn too. Once
	// read after the funding time, it is not read again out of turn.
	clk.Advance(time.Date(2026, 1, 1, 8, 0, 5, 0, time.UTC).Sub(clk.Now()))
	srv.ResetCounts()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Count("/fapi/v1/premiumIndex") != 4 || srv.Count("/fapi/v1/openOrders") != 3 {
		t.Errorf("poll past the funding time: %v; want premiumIndex 1 + 3 out of turn, openOrders 3", srv.Weights())
	}
	clk.Advance(15 * time.Second)
	srv.ResetCounts()
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("/fapi/v1/premiumIndex"); n != 0 {
		t.Errorf("premiumIndex read %d times on the poll after, want 0 (%v)", n, srv.Weights())
	}
}

// TestPremiumUnlisted: a held symbol premiumIndex does not know (-1121)
// leaves its funding at 0 and does not fail the snapshot.
func TestPremiumUnlisted(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	prem := srv.Body("/fapi/v1/premiumIndex")
	i := strings.Index(prem, `,{"symbol":"SOLUSDT"`)
	srv.SetBody("/fapi/v1/premiumIndex", prem[:i]+"]")
	snap, err := ex.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for _, p := range snap.Positions {
		if (p.Symbol == "SOLUSDT") != (p.FundingRate == 0) {
			t.Errorf("%s funding rate %v", p.Symbol, p.FundingRate)
		}
	}
}

// TestWeightCOINM measures COIN-M polls like TestWeightHour, with N = 3
// held symbols (the scenario's two and LINKUSD_PERP): account 5 +
// positionRisk 1 + openOrders per symbol every poll, premiumIndex (10) on
// every third poll and the caches as on USDⓈ-M.
func TestWeightCOINM(t *testing.T) {
	ex, srv, clk := fixture(t, COINM, binancetest.Options{Account: binancetest.COINM}, nil)
	risk := strings.TrimSpace(srv.Body("/dapi/v1/positionRisk"))
	link := `{"symbol": "LINKUSD_PERP", "positionAmt": "100", "entryPrice": "14.0", "breakEvenPrice": "14.01",
   "markPrice": "15.00000000", "unRealizedProfit": "0.47619048", "liquidationPrice": "9.00000000",
   "leverage": "10", "maxQty": "50000", "marginType": "cross", "isolatedMargin": "0.00000000",
   "isAutoAddMargin": "false", "positionSide": "BOTH", "updateTime": 1627026881327}`
	srv.SetBody("/dapi/v1/positionRisk", strings.TrimSuffix(risk, "]")+","+link+"]")
	if err := ex.CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/dapi/v1/premiumIndex", "/dapi/v1/fundingInfo", "/dapi/v1/klines", "/dapi/v1/income", "/dapi/v2/leverageBracket", "/dapi/v1/exchangeInfo"}
	const n = 3
	var total, first, steadyMin, steadyMax, cacheMax, premiums int
	steadyMin = 1 << 30
	for i := range 240 {
		srv.ResetCounts()
		snap, err := ex.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Positions) != n {
			t.Fatalf("%d positions", len(snap.Positions))
		}
		for _, p := range snap.Positions {
			if p.FundingRate == 0 || p.NextFundingTime.IsZero() {
				t.Fatalf("poll %d: %s has no funding", i, p.Symbol)
			}
		}
		w, cached := srv.Weight(), false
		for _, p := range paths {
			cached = cached || srv.Count(p) > 0
		}
		premiums += srv.Count("/dapi/v1/premiumIndex")
		total += w
		switch {
		case i == 0:
			first = w
		case cached:
			cacheMax = max(cacheMax, w)
		default:
			steadyMax, steadyMin = max(steadyMax, w), min(steadyMin, w)
		}
		clk.Advance(15 * time.Second)
	}
	avg := float64(total) / 240
	t.Logf("COIN-M, N=%d: first poll %d, steady poll %d..%d, heaviest cache-refresh poll %d, premiumIndex %d times, hour %d = %.2f a poll",
		n, first, steadyMin, steadyMax, cacheMax, premiums, total, avg)
	if steadyMax != 6+n {
		t.Errorf("steady poll weight %d, want 6 + N = %d", steadyMax, 6+n)
	}
	if premiums < 80 || premiums > 82 { // every third poll, plus after funding times
		t.Errorf("premiumIndex read %d times in 240 polls, want about 80", premiums)
	}
	if avg > float64(12+n) {
		t.Errorf("average weight a poll %.2f > 12 + N = %d", avg, 12+n)
	}
}
