package hyperliquid

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// TestHeldCachedReadKeepsPoll: the IP's minute is at 930 of the 960 the
// gate allows (other accounts). The poll's own reads (2 + 20) fit; the
// cached reads due (metaAndAssetCtxs, userFunding, candles) would be held
// until the next minute, past the poll's timeout. They are skipped instead,
// and the Snapshot carries the fresh clearinghouseState; they are read on
// a later poll once the gate has room.
func TestHeldCachedReadKeepsPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + 5*time.Second)))
		srv := hyperliquidtest.New(hyperliquidtest.Options{State: hyperliquidtest.Cross2023})
		e := inprocAdapter(t, srv)
		l := limitFor(e.host)
		l.mu.Lock()
		l.minute, l.used = minuteOf(time.Now()), 930
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		start := time.Now()
		snap, err := e.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot failed although clearinghouseState (%d) and frontendOpenOrders (%d) were read: %v",
				srv.Count("clearinghouseState"), srv.Count("frontendOpenOrders"), err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the Snapshot took %v: a cached read waited on the gate", d)
		}
		if len(snap.Positions) == 0 {
			t.Fatal("no positions")
		}
		for _, typ := range []string{"metaAndAssetCtxs", "userFunding", "candleSnapshot"} {
			if n := srv.Count(typ); n != 0 {
				t.Errorf("%s sent %d times over the gate's 80%%", typ, n)
			}
		}
		// The next minute has room: the skipped reads are made.
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)))
		if _, err := e.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"metaAndAssetCtxs", "userFunding", "candleSnapshot"} {
			if srv.Count(typ) == 0 {
				t.Errorf("%s not read once the gate had room", typ)
			}
		}
	})
}

// typeTimes passes requests to next and records when each of type typ
// was sent.
type typeTimes struct {
	next http.RoundTripper
	typ  string
	mu   *sync.Mutex
	at   *[]time.Time
}

func (h typeTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var q struct{ Type string }
	if json.Unmarshal(body, &q) == nil && q.Type == h.typ {
		h.mu.Lock()
		*h.at = append(*h.at, time.Now())
		h.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return h.next.RoundTrip(r)
}

// hangingTransport passes requests to next but leaves those of type typ
// unanswered until their context ends.
type hangingTransport struct {
	next http.RoundTripper
	typ  string
}

func (h hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var q struct{ Type string }
	if json.Unmarshal(body, &q) == nil && q.Type == h.typ {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return h.next.RoundTrip(r)
}

// TestCachedReadOutlastsPoll: a cached read (metaAndAssetCtxs) does not
// answer before the poll's ctx ends; the Snapshot is still built from the
// required reads, which came in.
func TestCachedReadOutlastsPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := hyperliquidtest.New(hyperliquidtest.Options{State: hyperliquidtest.Cross2023})
		e := inprocAdapter(t, srv)
		e.httpc = &http.Client{Transport: hangingTransport{srv.Transport(), "metaAndAssetCtxs"}}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		snap, err := e.Snapshot(ctx)
		if err != nil {
			t.Fatalf("ctx ended during a cached read after the required reads: %v", err)
		}
		if len(snap.Positions) == 0 {
			t.Error("no positions")
		}
	})
}

// TestHourlyBurst: 8 accounts with 2 coins each on one IP at the default
// 15 s poll (the daemon's plan accepts this: 8 × 4 × 24 = 768 < 832).
// Candles fall due every hour; were they all due at the full hour, the
// gate would hold them, the polls' 15 s timeouts would end the Snapshots
// and the accounts would go stale. No poll may fail over three hours.
func TestHourlyBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := hyperliquidtest.New(hyperliquidtest.Options{State: hyperliquidtest.Cross2023})
		host := fmt.Sprintf("http://hl-burst-%d.test", hostSeq.Add(1))
		const n = 8
		ctx, stop := context.WithTimeout(context.Background(), 3*time.Hour)
		defer stop()
		var mu sync.Mutex
		maxGap := make([]time.Duration, n)
		fails := make([]int, n)
		var candleAt []time.Time
		var wg sync.WaitGroup
		for i := range n {
			e, err := New(config.Account{Name: fmt.Sprint("hl", i), Exchange: Name, Address: hyperliquidtest.Address, Endpoint: host, PollInterval: 15 * time.Second},
				Options{HTTPClient: &http.Client{Transport: typeTimes{srv.Transport(), "candleSnapshot", &mu, &candleAt}}})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 15 * time.Second / n)
				tk := time.NewTicker(15 * time.Second)
				defer tk.Stop()
				var last time.Time
				for ctx.Err() == nil {
					pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
					_, err := e.Snapshot(pctx)
					cancel()
					now := time.Now()
					mu.Lock()
					if err == nil {
						if !last.IsZero() && now.Sub(last) > maxGap[i] {
							maxGap[i] = now.Sub(last)
						}
						last = now
					} else if ctx.Err() == nil {
						fails[i]++
						t.Logf("account %d at %v: %v", i, now.Format(time.TimeOnly), err)
					}
					mu.Unlock()
					select {
					case <-ctx.Done():
					case <-tk.C:
					}
				}
			})
		}
		wg.Wait()
		if srv.Refused() != 0 {
			t.Errorf("%d requests refused with 429", srv.Refused())
		}
		for i := range n {
			if fails[i] > 0 || maxGap[i] > 30*time.Second {
				t.Errorf("account %d: %d failed polls, longest gap between good snapshots %v", i, fails[i], maxGap[i])
			}
		}
		if c := srv.Count("candleSnapshot"); c < n*2*3 {
			t.Errorf("%d candle reads in 3 hours, want at least %d (2 coins × 8 accounts, hourly)", c, n*2*3)
		}
		// The hourly candle reads are spread: in the second hour, no
		// minute has more than a quarter of them.
		start := candleAt[0].Truncate(time.Hour).Add(time.Hour)
		perMinute := map[int64]int{}
		total := 0
		for _, at := range candleAt {
			if !at.Before(start) && at.Before(start.Add(time.Hour)) {
				perMinute[minuteOf(at)]++
				total++
			}
		}
		for m, k := range perMinute {
			if k > total/4 {
				t.Errorf("%d of the hour's %d candle reads in the minute at %v", k, total, time.Unix(m*60, 0).Format(time.TimeOnly))
			}
		}
		t.Logf("candle reads in the second hour: %d in %d minutes", total, len(perMinute))
	})
}
