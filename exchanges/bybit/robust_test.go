package bybit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
)

// TestOddKlineBodyIsAnError: a kline row holding a number or null (which
// hirokisan's V5GetKlineList.UnmarshalJSON type-asserts to string) is a
// transient "malformed response" naming the endpoint, not a panic; the
// Snapshot goes on without candles.
func TestOddKlineBodyIsAnError(t *testing.T) {
	for _, odd := range []any{17071, nil} {
		t.Run(strings.ReplaceAll(strings.TrimSpace(string(must(json.Marshal(odd)))), "\"", ""), func(t *testing.T) {
			srv, e := newFake(t)
			srv.Hedge()
			srv.Edit("/v5/market/kline", func(b map[string]any) {
				b["result"].(map[string]any)["list"] = []any{[]any{"1670608800000", odd, "17073", "17027", "17055.5", "268611", "15.7"}}
			})
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panicked on an odd kline body: %v", r)
				}
			}()
			err := e.do(context.Background(), "GET /v5/market/kline", func(c *bybitapi.Client) error {
				limit := 50
				_, err := c.V5().Market().GetKline(bybitapi.V5GetKlineParam{Category: bybitapi.CategoryV5Linear, Symbol: "BTCUSDT", Interval: "60", Limit: &limit})
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "GET /v5/market/kline") || !strings.Contains(err.Error(), "malformed response from Bybit") {
				t.Errorf("err = %v, want a malformed-response error naming GET /v5/market/kline", err)
			}
			if errors.Is(err, exchanges.ErrPermanent) {
				t.Errorf("err = %v is permanent, want transient", err)
			}
			snap, err := e.Snapshot(context.Background())
			if err != nil {
				t.Fatalf("Snapshot: %v (kline is optional)", err)
			}
			if len(snap.Positions) != 3 {
				t.Errorf("%d positions, want 3", len(snap.Positions))
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestKeyErrorOnOptionalReadIsOneEpisode: transaction-log answering 10005
// raises key_problem once per episode, KeyProblem reports it while it
// lasts (also on the polls that do not retry the backed-off read), the
// read is not retried every poll, and a Snapshot with no key error clears
// it.
func TestKeyErrorOnOptionalReadIsOneEpisode(t *testing.T) {
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	now := time.Now()
	e, err := New(account(srv.URL, false), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer forget(srv.URL)
	const path = "/v5/account/transaction-log"
	var good map[string]any
	srv.Edit(path, func(b map[string]any) {
		good = maps.Clone(b)
		b["retCode"] = 10005
		b["retMsg"] = "Permission denied, please check your API key permissions."
		b["result"] = map[string]any{}
	})
	events := 0
	for i := 0; i < 4; i++ {
		snap, err := e.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range snap.Events {
			if ev.Kind == exchanges.KeyProblem {
				events++
			}
		}
		if kp := e.KeyProblem(); kp == nil || !strings.Contains(kp.Error(), "10005") {
			t.Errorf("poll %d: KeyProblem() = %v, want the 10005 rejection", i, kp)
		}
		now = now.Add(15 * time.Second)
	}
	if events != 1 {
		t.Errorf("%d key_problem events in 4 polls, want 1", events)
	}
	if n := srv.Count(path); n != 1 {
		t.Errorf("transaction-log read %d times in 4 polls, want 1 (backed off after the key error)", n)
	}
	// Fixed: once the back-off has passed, a clean poll clears the problem.
	srv.Edit(path, func(b map[string]any) { clear(b); maps.Copy(b, good) })
	now = now.Add(fundingLogEvery)
	for i := 0; i < 2; i++ {
		snap, err := e.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if kp := e.KeyProblem(); kp != nil {
			t.Errorf("recovered poll %d: KeyProblem() = %v, want nil", i, kp)
		}
		if len(snap.Events) != 0 {
			t.Errorf("recovered poll %d: events %+v", i, snap.Events)
		}
		if v := snap.Balances[0].FundingPaid24h; math.IsNaN(v) {
			t.Errorf("recovered poll %d: funding_paid_24h unknown", i)
		}
		now = now.Add(15 * time.Second)
	}
	// A new episode raises a new event.
	srv.Edit(path, func(b map[string]any) { b["retCode"] = 10005; b["result"] = map[string]any{} })
	now = now.Add(fundingLogEvery)
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Events) != 1 || snap.Events[0].Kind != exchanges.KeyProblem {
		t.Errorf("new episode: events %+v, want one key_problem", snap.Events)
	}
}

// TestEmptyStringsAreNotZeros: "" where Bybit owes a number is an error or
// unknown, never a silent 0 or a vanished position.
func TestEmptyStringsAreNotZeros(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*bybittest.Server)
		check func(t *testing.T, s *exchanges.Snapshot, err error)
	}{
		{"size \"\" is an error, not a closed position", func(s *bybittest.Server) {
			s.Edit("/v5/position/list", func(b map[string]any) { rowAt(b, 2)["size"] = "" })
		}, func(t *testing.T, s *exchanges.Snapshot, err error) {
			if err == nil || !strings.Contains(err.Error(), "size") {
				t.Errorf("err = %v (%d positions), want an error naming size", err, len(s.Positions))
			}
		}},
		{"unrealisedPnl \"\" is an error", func(s *bybittest.Server) {
			s.Edit("/v5/position/list", func(b map[string]any) { rowAt(b, 0)["unrealisedPnl"] = "" })
		}, func(t *testing.T, s *exchanges.Snapshot, err error) {
			if err == nil || !strings.Contains(err.Error(), "unrealisedPnl") {
				t.Errorf("err = %v, want an error naming unrealisedPnl", err)
			}
		}},
		{"ticker fundingRate \"\" is unknown", func(s *bybittest.Server) {
			s.Edit("/v5/market/tickers", func(b map[string]any) { rowAt(b, 0)["fundingRate"] = "" })
		}, func(t *testing.T, s *exchanges.Snapshot, err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Positions {
				if p.Symbol == "BTCUSDT" && !math.IsNaN(p.FundingRate) {
					t.Errorf("BTCUSDT %s: funding rate %v, want NaN (absent)", p.Side, p.FundingRate)
				}
			}
		}},
		{"PartialStopLoss without qty does not close the position", func(s *bybittest.Server) {
			s.Edit("/v5/order/realtime", func(b map[string]any) {
				rowAt(b, 2)["stopOrderType"] = "PartialStopLoss"
				rowAt(b, 2)["qty"] = ""
			})
		}, func(t *testing.T, s *exchanges.Snapshot, err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Positions {
				for _, st := range p.Stops {
					if p.Symbol == "ETHUSDC" && st.ClosePosition {
						t.Errorf("ETHUSDC: stop %+v closes the position", st)
					}
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, e := newFake(t)
			srv.Hedge()
			tc.edit(srv)
			s, err := e.Snapshot(context.Background())
			if s == nil {
				s = &exchanges.Snapshot{}
			}
			tc.check(t, s, err)
		})
	}
}

func rowAt(body map[string]any, i int) map[string]any {
	return body["result"].(map[string]any)["list"].([]any)[i].(map[string]any)
}

// TestStopsWithoutQuantity: only StopLoss and TrailingStop close the
// whole position; a partial or generic stop without a quantity covers 0.
func TestStopsWithoutQuantity(t *testing.T) {
	p := &exchanges.Position{Symbol: "ETHUSDC", Side: exchanges.Short}
	for _, tc := range []struct {
		typ, qty string
		want     exchanges.Stop
	}{
		{"StopLoss", "0", exchanges.Stop{Trigger: 3300, ClosePosition: true}},
		{"TrailingStop", "", exchanges.Stop{Trigger: 3300, ClosePosition: true, Trailing: true}},
		{"PartialStopLoss", "", exchanges.Stop{Trigger: 3300}},
		{"PartialStopLoss", "2", exchanges.Stop{Trigger: 3300, Quantity: 2}},
		{"Stop", "", exchanges.Stop{Trigger: 3300}},
	} {
		o := bybitapi.V5GetOrder{Symbol: "ETHUSDC", Side: bybitapi.SideBuy, StopOrderType: tc.typ, TriggerPrice: "3300", Qty: tc.qty,
			ReduceOnly: true, TriggerDirection: 1}
		got := stopsFor(p, []bybitapi.V5GetOrder{o})
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s qty %q: %+v, want %+v", tc.typ, tc.qty, got, tc.want)
		}
	}
}

// TestPositionPages: positions split over two pages (the fake honours
// limit and hands out a percent-encoded nextPageCursor, as Bybit does) are
// all read, none twice, and the cursor goes back exactly as Bybit sent it.
func TestPositionPages(t *testing.T) {
	old := positionPage
	positionPage = 1
	defer func() { positionPage = old }()
	srv, e := newFake(t)
	srv.Hedge()
	snap, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range snap.Positions {
		seen[p.Symbol+" "+string(p.Side)]++
	}
	for _, k := range []string{"BTCUSDT long", "BTCUSDT short", "ETHUSDC short"} {
		if seen[k] != 1 {
			t.Errorf("%s read %d times, want 1 (%v)", k, seen[k], seen)
		}
	}
	if len(snap.Positions) != 3 {
		t.Errorf("%d positions, want 3", len(snap.Positions))
	}
	// USDT: two pages of one row; USDC: one.
	if n := srv.Count("/v5/position/list"); n != 3 {
		t.Errorf("%d position/list requests, want 3", n)
	}
}

// TestCursorSentAsReceived: Bybit's nextPageCursor is already
// percent-encoded; it goes back in the query as it came (as pybit sends
// it), not encoded a second time.
func TestCursorSentAsReceived(t *testing.T) {
	var queries []string
	page := 0
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path != "/v5/account/transaction-log" {
			return nil, errors.New("not served")
		}
		queries = append(queries, r.URL.RawQuery)
		page++
		rows := []any{}
		for i := 0; i < 50; i++ {
			rows = append(rows, map[string]any{"type": "SETTLEMENT", "funding": "-1"})
		}
		cursor := "21963%3A1%2C14954%3A1"
		if page > 1 {
			rows, cursor = rows[:1], ""
		}
		b, _ := json.Marshal(map[string]any{"retCode": 0, "retMsg": "OK", "result": map[string]any{"list": rows, "nextPageCursor": cursor}})
		return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(b)), Header: http.Header{}, Request: r}, nil
	})
	cfg := account("https://bybit.invalid", false)
	e, _ := New(cfg, Options{HTTPClient: &http.Client{Transport: rt}})
	defer forget(cfg.Endpoint)
	if paid := e.fundingPaid(context.Background(), time.Now()); paid != 51 {
		t.Errorf("paid %v, want 51", paid)
	}
	if len(queries) != 2 {
		t.Fatalf("%d requests, want 2", len(queries))
	}
	if !strings.Contains("&"+queries[1]+"&", "&cursor=21963%3A1%2C14954%3A1&") {
		t.Errorf("second page query %s, want cursor=21963%%3A1%%2C14954%%3A1", queries[1])
	}
}

// TestRedirectNotFollowed: a 30x is a transient error naming the endpoint,
// and nothing (the API key least of all) goes to the Location.
func TestRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var hosts []string
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				hosts = append(hosts, r.URL.Scheme+"://"+r.URL.Host)
				h := http.Header{}
				h.Set("Location", "http://evil.invalid/steal")
				return &http.Response{StatusCode: code, Body: http.NoBody, Header: h, Request: r}, nil
			})
			cfg := account("https://bybit.invalid", false)
			e, _ := New(cfg, Options{HTTPClient: &http.Client{Transport: rt}})
			defer forget(cfg.Endpoint)
			err := e.CheckKey(context.Background())
			if err == nil || !strings.Contains(err.Error(), "GET /v5/user/query-api") || !strings.Contains(err.Error(), "redirect") {
				t.Errorf("err = %v, want a redirect error naming GET /v5/user/query-api", err)

			}
			if errors.Is(err, exchanges.ErrPermanent) {
				t.Errorf("err = %v is permanent, want transient", err)
			}
			if len(hosts) != 1 || hosts[0] != "https://bybit.invalid" {
				t.Errorf("requests went to %v, want only https://bybit.invalid", hosts)
			}
		})
	}
}

// TestRateLimit10018: retCode 10018 (IP rate limit; the library reports it
// as 10006) stops requests to the host until the reset time, like 10006,
// and is reported as a ban.
func TestRateLimit10018(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hits := 0
		until := time.Now().Add(30 * time.Second)
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits++
			h := http.Header{}
			h.Set("X-Bapi-Limit-Reset-Timestamp", strconv.FormatInt(until.UnixMilli(), 10))
			b := `{"retCode":10018,"retMsg":"Exceeded the IP Rate Limit.","result":{},"retExtInfo":{},"time":0}`
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(b)), Header: h, Request: r}, nil
		})
		cfg := account("https://bybit.invalid", false)
		e, _ := New(cfg, Options{HTTPClient: &http.Client{Transport: rt}})
		defer forget(cfg.Endpoint)
		err := e.CheckKey(context.Background())
		if err == nil || !strings.Contains(err.Error(), "10018") {
			t.Fatalf("err = %v, want one naming retCode 10018", err)
		}
		bans := e.Bans()
		if len(bans) != 1 || bans[0].Status != codeIPRateLimit || !bans[0].Until.Equal(until.Truncate(time.Millisecond)) {
			t.Fatalf("Bans() = %+v, want 10018 until the reset time", bans)
		}
		time.Sleep(29 * time.Second)
		err = e.CheckKey(context.Background())
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Status != codeIPRateLimit || hits != 1 || !strings.Contains(err.Error(), "10018") {
			t.Fatalf("inside the ban: err %v, %d requests; want a RateLimitError naming 10018 and no request", err, hits)
		}
		forget(cfg.Endpoint)
		e2, _ := New(cfg, Options{HTTPClient: &http.Client{Transport: rt}})
		e2.RestoreBans(bans)
		if b := e2.Bans(); len(b) != 1 || b[0].Status != codeIPRateLimit {
			t.Errorf("restored Bans() = %+v, want 10018 kept", b)
		}
		time.Sleep(2 * time.Second)
		e2.CheckKey(context.Background())
		if hits != 2 {
			t.Errorf("%d requests after the ban, want 2", hits)
		}
	})
}
