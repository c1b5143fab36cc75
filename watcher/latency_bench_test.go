package watcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// hookNotice is one alert as the loopback webhook receiver got it.
type hookNotice struct {
	kind, rule, symbol string
	at                 time.Time // when the request reached the handler
}

// BenchmarkDetectionLatency is real-time mode's detection latency on
// loopback: the fake Binance (USDⓈ-M one-way account, REST and websockets
// on one 127.0.0.1 server), an in-process watcher with the real adapter
// streaming one account, and a webhook notifier posting to a loopback
// receiver. One op is one threshold crossing of the BTCUSDT long's
// liq_distance_pct: SetMark moves the mark to 5% from liquidation (below
// the rule's 10%, firing) or back to 20% (past the 2-point hysteresis,
// resolved), timed from just before the fake queues the frame to the
// receiver's handler. Reported: p50/p90/p99/max of that (ms), and the
// part up to the committed evaluation (eval-p50/p99-ms; the rest is the
// delivery worker and the webhook POST).
//
//	go test -run='^$' -bench=DetectionLatency -benchtime=200x -count=2 ./watcher/
func BenchmarkDetectionLatency(b *testing.B) {
	fake := binancetest.NewServer(b, binancetest.Options{Account: binancetest.USDMOneWay})
	risk := positionRisk(b, fake.Body("/fapi/v3/positionRisk"))
	for _, r := range risk { // the stream's marks start where REST has them
		fake.SetMark(r.Symbol, r.MarkPrice)
	}
	liq := liqPrice(b, risk, "BTCUSDT")
	// liq_distance_pct of a long = (mark − liq) / mark × 100.
	near, far := liq/(1-0.05), liq/(1-0.20)

	notices := make(chan hookNotice, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Alerts []struct{ Kind, Rule, Symbol string } `json:"alerts"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			b.Errorf("webhook body: %v", err)
		}
		for _, a := range p.Alerts {
			notices <- hookNotice{a.Kind, a.Rule, a.Symbol, at}
		}
	}))
	defer hook.Close()

	// evaluated receives the time of each evaluation that started or
	// ended the alert.
	evaluated := make(chan time.Time, 64)
	var (
		mu     sync.Mutex
		firing bool
	)
	key := rules.Key{Account: "main", Rule: "bench-liq", Symbol: "BTCUSDT", Side: "long"}
	up := make(chan struct{})
	var upOnce sync.Once
	cfg := fmt.Sprintf(`state_dir: state
listen: ""
accounts:
  - {name: main, exchange: binance-usdm, endpoint: %q, api_key: %q, api_secret: %q, stream: true, stream_endpoint: %q, reconcile_interval: 5m}
notifiers:
  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}
rules:
  - name: bench-liq
    metric: liq_distance_pct
    below: {critical: 10}
    hysteresis: 2
`, fake.URL, binancetest.Key, binancetest.Secret, "ws"+strings.TrimPrefix(fake.URL, "http"), hook.URL)
	w, _ := newTestWatcher(b, cfg, Options{Stdout: io.Discard, Hooks: Hooks{
		Evaluated: func(states []rules.State) {
			at := time.Now()
			now := slices.ContainsFunc(states, func(s rules.State) bool { return s.Key == key && s.Phase == rules.Active })
			mu.Lock()
			flip := now != firing
			firing = now
			mu.Unlock()
			if flip {
				evaluated <- at
			}
		},
		StreamState: func(_ string, st exchanges.StreamStatus) {
			if st.Up {
				upOnce.Do(func() { close(up) })
			}
		},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}()

	select {
	case <-up:
	case <-time.After(time.Minute):
		b.Fatal("the account did not stream within a minute")
	}
	deadline := time.Now().Add(time.Minute)
	for !slices.Contains(fake.MarketSubscriptions(), "btcusdt@markPrice@1s") {
		if time.Now().After(deadline) {
			b.Fatalf("no mark-price subscription for BTCUSDT: %v", fake.MarketSubscriptions())
		}
		time.Sleep(10 * time.Millisecond)
	}

	var total, eval []time.Duration
	cross := func(i int) {
		price, want := near, "firing"
		if i%2 == 1 {
			price, want = far, "resolved"
		}
		t0 := time.Now()
		fake.SetMark("BTCUSDT", strconv.FormatFloat(price, 'f', 8, 64))
		timeout := time.After(10 * time.Second)
		var te time.Time
		for {
			select {
			case te = <-evaluated:
				continue
			case n := <-notices:
				if n.rule != "bench-liq" || n.symbol != "BTCUSDT" {
					b.Fatalf("unexpected notice %+v", n)
				}
				if n.kind != want {
					b.Fatalf("crossing %d: got a %s notice, want %s", i, n.kind, want)
				}
				if te.IsZero() { // the hook runs before the delivery
					select {
					case te = <-evaluated:
					case <-timeout:
						b.Fatalf("crossing %d: no evaluation", i)
					}
				}
				total = append(total, n.at.Sub(t0))
				eval = append(eval, te.Sub(t0))
				return
			case <-timeout:
				b.Fatalf("crossing %d: no %s notice within 10 s", i, want)
			}
		}
	}
	for i := range 4 { // warm up: connections, the store's pages
		cross(i)
	}
	total, eval = total[:0], eval[:0]
	i := 0
	for b.Loop() {
		cross(i)
		i++
	}
	b.StopTimer()
	reportPercentiles(b, "", total, 0.5, 0.9, 0.99, 1)
	reportPercentiles(b, "eval-", eval, 0.5, 0.99)
}

type riskRow struct {
	Symbol           string `json:"symbol"`
	MarkPrice        string `json:"markPrice"`
	LiquidationPrice string `json:"liquidationPrice"`
}

func positionRisk(b *testing.B, body string) []riskRow {
	var rows []riskRow
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		b.Fatal(err)
	}
	return rows
}

// liqPrice is symbol's liquidation price.
func liqPrice(b *testing.B, rows []riskRow, symbol string) float64 {
	for _, r := range rows {
		if r.Symbol == symbol {
			v, err := strconv.ParseFloat(r.LiquidationPrice, 64)
			if err != nil || v <= 0 {
				b.Fatalf("%s liquidationPrice %q", symbol, r.LiquidationPrice)
			}
			return v
		}
	}
	b.Fatalf("no %s position in %+v", symbol, rows)
	return 0
}

// reportPercentiles reports the quantiles qs of ds in milliseconds as
// <prefix>p50-ms …; 1 is reported as max-ms.
func reportPercentiles(b *testing.B, prefix string, ds []time.Duration, qs ...float64) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	for _, q := range qs {
		i := min(len(s)-1, max(0, int(float64(len(s))*q+0.999999)-1))
		name := prefix + "p" + strconv.FormatFloat(q*100, 'f', -1, 64) + "-ms"
		if q == 1 {
			name = prefix + "max-ms"
		}
		b.ReportMetric(float64(s[i].Microseconds())/1000, name)
	}
}
