package binance

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// tickAccounts and tickPositions are the scale: 100 accounts of
// 10 positions each, every account holding the ticking symbol.
const tickAccounts, tickPositions = 100, 10

// tenPositions is the seed of a 10-position account: the fake one-way
// account's Snapshot (BTCUSDT cross, ETHUSDT isolated, SOLUSDT cross, with
// brackets), its positions repeated under other symbols (X3USDT…) with
// their brackets, so that every account's tick walks 10 positions and
// sums its pool over 10.
func tenPositions(b *testing.B) seedData {
	srv := binancetest.NewServer(b, binancetest.Options{Account: binancetest.USDMOneWay})
	srv.SetBody("/fapi/v1/leverageBracket", usdmBrackets)
	ex, err := New(config.Account{Name: "seed", Exchange: USDM, APIKey: binancetest.Key, APISecret: binancetest.Secret, Endpoint: srv.URL}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	if _, err := ex.Snapshot(context.Background()); err != nil {
		b.Fatal(err)
	}
	v := &ex.live
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.hs) != 3 {
		b.Fatalf("the one-way account holds %d positions, want 3", len(v.hs))
	}
	d := seedData{
		snap:     &exchanges.Snapshot{Time: v.seedAt, Balances: append([]exchanges.Balance(nil), v.bs...)},
		multi:    v.multi,
		orders:   v.orders,
		brackets: map[string][]bracket{},
	}
	for i := range tickPositions {
		h := v.hs[i%len(v.hs)]
		if i >= len(v.hs) {
			h.Symbol = fmt.Sprintf("X%dUSDT", i)
		}
		d.hs = append(d.hs, h)
		d.brackets[h.Symbol] = v.aux[i%len(v.hs)].brackets
	}
	return d
}

// BenchmarkMarkTickAccounts is the adapter's side of one mark-price tick
// at the scale: the hub routes a BTCUSDT tick to 100 real
// *Exchange live views of 10 positions each (markTick: reprice the
// position from its brackets, re-sum the pool), then each account's Live
// copies its view out, as the watcher's stream loops do. 0 allocations a
// tick; ns/account is the cost per account. The watcher's side (metrics
// and rules) is watcher's BenchmarkTick.
//
//	go test -run='^$' -bench=MarkTickAccounts -benchmem ./exchanges/binance/
func BenchmarkMarkTickAccounts(b *testing.B) {
	seed := tenPositions(b)
	h := newMarkHub(USDM, "ws://127.0.0.1:1", false, nil) // never connects
	defer h.Close()
	exs := make([]*Exchange, tickAccounts)
	outs := make([]exchanges.Snapshot, tickAccounts)
	symbols := make([]string, 0, tickPositions)
	for _, p := range seed.hs {
		symbols = append(symbols, p.Symbol)
	}
	h.mu.Lock()
	for i := range exs {
		ex, err := New(config.Account{Name: fmt.Sprint("a", i), Exchange: USDM, APIKey: binancetest.Key, APISecret: binancetest.Secret, Endpoint: "http://127.0.0.1:1"}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close()
		ex.live.mu.Lock()
		ex.live.seedLocked(seed)
		ex.live.mu.Unlock()
		ex.live.changed = func() {}
		ex.userState(true, "", false)
		exs[i] = ex
		h.sinks[ex] = &markWatch{symbols: symbols}
	}
	h.rebuildLocked()
	h.mu.Unlock()

	now := time.Now()
	next := now.Add(time.Hour).UnixMilli()
	marks := make([]string, 10) // pre-formatted, as the frame carries them
	for i := range marks {
		marks[i] = strconv.FormatFloat(61000+float64(i)*0.1, 'f', 8, 64)
	}
	tick := func(n int) {
		h.route("BTCUSDT", marks[n%len(marks)], "0.00010000", int64(n+1), next, now)
		for i, ex := range exs {
			if _, ok := ex.Live(&outs[i]); !ok {
				b.Fatal("Live not ok")
			}
		}
	}
	tick(0) // the output arrays grow once
	if outs[0].Positions[0].MarkPrice != 61000 || len(outs[0].Positions) != tickPositions {
		b.Fatalf("the tick did not reach the view: %+v", outs[0].Positions)
	}
	b.ReportAllocs()
	n := 1
	for b.Loop() {
		tick(n)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64((n-1)*tickAccounts), "ns/account")
}
