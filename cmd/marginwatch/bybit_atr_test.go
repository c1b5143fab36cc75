package main

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
)

// Bybit liq_distance_atr through status -json: 20 closed 1h candles + the open one, newest first.
func TestBybitATRStatus(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	hour := time.Now().Truncate(time.Hour)
	type c struct{ h, l, cl float64 }
	var closed []c // oldest first
	for i := 0; i < 20; i++ {
		base := 60000 + float64(i*37%11)*50
		closed = append(closed, c{base + 100 + float64(i*10), base - 100 - float64(i*5), base + float64(i%3)*20})
	}
	var rows []any
	// open candle first (newest), then closed newest..oldest
	rows = append(rows, []any{strconv.FormatInt(hour.UnixMilli(), 10), "1", "99999", "1", "61000", "1", "1"})
	for i := len(closed) - 1; i >= 0; i-- {
		open := hour.Add(-time.Duration(len(closed)-i) * time.Hour)
		k := closed[i]
		rows = append(rows, []any{strconv.FormatInt(open.UnixMilli(), 10), "1", strconv.FormatFloat(k.h, 'f', -1, 64), strconv.FormatFloat(k.l, 'f', -1, 64), strconv.FormatFloat(k.cl, 'f', -1, 64), "1", "1"})
	}
	srv.Edit("/v5/market/kline", func(b map[string]any) { b["result"].(map[string]any)["list"] = rows })
	// hand Wilder ATR(14)
	atr := 0.0
	for i := 1; i < len(closed); i++ {
		p := closed[i-1].cl
		tr := math.Max(closed[i].h-closed[i].l, math.Max(math.Abs(closed[i].h-p), math.Abs(closed[i].l-p)))
		if i <= 14 {
			atr += tr / 14
		} else {
			atr = (atr*13 + tr) / 14
		}
	}
	code, out, errOut := runCLI("status", "-config", bybitConfig(t, srv.URL, ""), "-json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc statusJSON
	json.Unmarshal([]byte(out), &doc)
	for _, p := range doc.Accounts[0].Positions {
		if p.Symbol != "BTCUSDT" {
			continue
		}
		g := p.Metrics["liq_distance_atr"]
		want := 21000.0 / atr
		if g == nil || math.Abs(*g-want) > 1e-9*want {
			t.Errorf("%s %s liq_distance_atr = %v, want %v", p.Symbol, p.Side, g, want)
		} else {
			t.Logf("%s %s liq_distance_atr = %v OK", p.Symbol, p.Side, *g)
		}
	}
}
