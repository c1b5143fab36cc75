package binance

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

func TestRateLimitWindows(t *testing.T) {
	cases := []struct {
		name   string
		fail   binancetest.Failure
		window time.Duration
		status int
	}{
		{"429 Retry-After", binancetest.RateLimited(30), 30 * time.Second, 429},
		{"418 ban", binancetest.Banned(120), 120 * time.Second, 418},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, USDM, binancetest.Options{}, nil)
			ctx := context.Background()
			srv.Fail("/fapi/v3/positionRisk", c.fail)
			_, err := ex.Snapshot(ctx)
			if err == nil || errors.Is(err, exchanges.ErrPermanent) {
				t.Fatalf("Snapshot during %d = %v, want a transient error", c.status, err)
			}
			sent := srv.Requests()
			// Inside the window: nothing reaches the host.
			for _, d := range []time.Duration{time.Second, c.window - 2*time.Second} {
				clk.Advance(d)
				_, err := ex.Snapshot(ctx)
				var rl *RateLimitError
				if !errors.As(err, &rl) || rl.Status != c.status {
					t.Fatalf("Snapshot inside the window = %v, want RateLimitError %d", err, c.status)
				}
				if srv.Requests() != sent {
					t.Fatalf("the fake saw %d requests inside the Retry-After window", srv.Requests()-sent)
				}
			}
			// After it polling resumes by itself.
			clk.Advance(2 * time.Second)
			if _, err := ex.Snapshot(ctx); err != nil {
				t.Fatalf("Snapshot after the window: %v", err)
			}
		})
	}
}

func TestTransientFailures(t *testing.T) {
	cases := []struct {
		name string
		fail binancetest.Failure
		msg  string
	}{
		{"500", binancetest.ServerError(500), "-1001"},
		{"503", binancetest.ServerError(503), "HTTP 503"},
		{"502 HTML page", binancetest.HTMLPage(502), "not Binance JSON"},
		{"malformed JSON", binancetest.MalformedJSON(), "malformed"},
		{"bad number", binancetest.Failure{Status: 200, Body: `[{"symbol":"BTCUSDT","positionSide":"BOTH","positionAmt":"abc"}]`}, `"abc", not a number`},
		{"hang", binancetest.Hang(), "deadline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, _ := fixture(t, USDM, binancetest.Options{}, nil)
			srv.Fail("/fapi/v3/positionRisk", c.fail)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := ex.Snapshot(ctx)
			if err == nil {
				t.Fatal("Snapshot succeeded")
			}
			if errors.Is(err, exchanges.ErrPermanent) {
				t.Errorf("%v is permanent, want transient", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "<html") || strings.Contains(err.Error(), "signature=") {
				t.Errorf("error carries noise: %q", err)
			}
			noSecret(t, err.Error())
			if ev := ex.PendingEvents(); len(ev) != 0 {
				t.Errorf("events %v on a transient failure", ev)
			}
			if _, err := ex.Snapshot(context.Background()); err != nil {
				t.Errorf("next Snapshot: %v", err)
			}
		})
	}
}

func TestKeyProblems(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*config.Account)
		fail   *binancetest.Failure
		code   string
		heals  bool
		status int
	}{
		{"revoked key -2015", nil, ptr(binancetest.InvalidKey()), "-2015", true, 401},
		{"key format -2014", nil, &binancetest.Failure{Status: 400, Body: `{"code":-2014,"msg":"API-key format invalid."}`}, "-2014", true, 400},
		{"bare 401", nil, &binancetest.Failure{Status: 401, ContentType: "text/html", Body: "<html>Unauthorized</html>"}, "HTTP 401", true, 401},
		{"wrong secret: bad signature", func(a *config.Account) { a.APISecret = "not-the-secret" }, nil, "-1022", false, 400},
		{"unknown key", func(a *config.Account) { a.APIKey = "someone-elses-key" }, nil, "-2015", false, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, srv, clk := fixture(t, USDM, binancetest.Options{}, c.mod)
			ctx := context.Background()
			for round := 0; round < 2; round++ {
				if c.fail != nil {
					srv.Fail("/fapi/v2/account", *c.fail)
				}
				_, err := ex.Snapshot(ctx)
				var ke *KeyError
				if !errors.Is(err, exchanges.ErrPermanent) || !errors.As(err, &ke) {
					t.Fatalf("Snapshot = %v, want a KeyError wrapping ErrPermanent", err)
				}
				if !strings.Contains(err.Error(), c.code) || !strings.Contains(err.Error(), "API Management") {
					t.Errorf("error %q lacks %q or the fix", err, c.code)
				}
				noSecret(t, err.Error())
				ev := ex.PendingEvents()
				if round == 0 && (len(ev) != 1 || ev[0].Kind != exchanges.KeyProblem || ev[0].ID == "") {
					t.Fatalf("events after the first failure = %+v, want one key_problem", ev)
				}
				if round == 0 {
					noSecret(t, ev[0].Message)
				}
				if round == 1 && !c.heals && len(ev) != 0 {
					t.Errorf("key_problem reported again for the same occurrence: %+v", ev)
				}
				if !c.heals {
					clk.Advance(15 * time.Second)
					continue
				}
				// The key works again, then fails again: a new occurrence.
				snap, err := ex.Snapshot(ctx)
				if err != nil {
					t.Fatalf("Snapshot after the key healed: %v", err)
				}
				if len(snap.Events) != 0 {
					t.Errorf("events in the healthy snapshot: %+v", snap.Events)
				}
				clk.Advance(15 * time.Second)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestClockSkewResync(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{}, nil)
	srv.Fail("/fapi/v2/account", binancetest.ClockSkew())
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot with one -1021: %v", err)
	}
	if srv.Count("/fapi/v1/time") != 1 || srv.Count("/fapi/v2/account") != 2 {
		t.Errorf("time %d, account %d requests; want a re-sync and one retry", srv.Count("/fapi/v1/time"), srv.Count("/fapi/v2/account"))
	}
	// A second -1021 right after the re-sync is an error, not a loop.
	srv.Fail("/fapi/v2/account", binancetest.Failure{Status: 400, Times: 2, Body: `{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}`})
	if _, err := ex.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "-1021") {
		t.Errorf("Snapshot with persistent -1021 = %v", err)
	}
}

func TestCheckKey(t *testing.T) {
	cases := []struct {
		name  string
		perm  binancetest.Permissions
		allow bool
		want  string // "" = accepted
	}{
		{"read-only", binancetest.ReadOnly, false, ""},
		{"withdrawals", binancetest.Withdrawals, false, `the API key can withdraw funds; marginwatch needs a read-only key: create one with only "Enable Reading" in Binance API Management`},
		{"withdrawals even when trading is allowed", binancetest.Withdrawals, true, "can withdraw funds"},
		{"trading", binancetest.Trading, false, "the API key can trade (Enable Futures)"},
		{"trading allowed", binancetest.Trading, true, ""},
		{"universal transfer", binancetest.UniversalTransfer, false, "the API key can transfer funds (Permits Universal Transfer (permitsUniversalTransfer))"},
		{"internal transfer", binancetest.InternalTransfer, false, "the API key can transfer funds (Enable Internal Transfer (enableInternalTransfer)); marginwatch needs a read-only key"},
		{"transfer allowed", binancetest.UniversalTransfer, true, ""},
		{"the fixture's key", binancetest.FixturePermissions, false, "the API key can trade (Enable Portfolio Margin Trading) and transfer funds (Permits Universal Transfer (permitsUniversalTransfer), Enable Internal Transfer (enableInternalTransfer))"},
		{"the fixture's key allowed", binancetest.FixturePermissions, true, ""},
	}
	for _, c := range cases {
		for _, exch := range []string{USDM, COINM} {
			t.Run(c.name+" "+exch, func(t *testing.T) {
				acct := binancetest.USDMOneWay
				if exch == COINM {
					acct = binancetest.COINM
				}
				ex, srv, _ := fixture(t, exch, binancetest.Options{Account: acct, Permissions: c.perm}, func(a *config.Account) { a.AllowTradingKey = c.allow })
				err := ex.CheckKey(context.Background())
				if srv.Count("/sapi/v1/account/apiRestrictions") != 1 {
					t.Errorf("apiRestrictions asked %d times", srv.Count("/sapi/v1/account/apiRestrictions"))
				}
				if c.want == "" {
					if err != nil {
						t.Errorf("CheckKey = %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "account main: ") {
					t.Errorf("CheckKey = %v, want ErrPermanent saying %q", err, c.want)
				}
				if err != nil {
					noSecret(t, err.Error())
					endsWithTheFix(t, err)
				}
			})
		}
	}
}

func TestCheckKeyRejected(t *testing.T) {
	ex, _, _ := fixture(t, USDM, binancetest.Options{}, func(a *config.Account) { a.APISecret = "wrong" })
	err := ex.CheckKey(context.Background())
	if !errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), "-1022") {
		t.Errorf("CheckKey with a wrong secret = %v", err)
	}
	endsWithTheFix(t, err)
}

// endsWithTheFix: a key refusal shown to the user ends with what to do
// (in Binance API Management, or the allow_trading_key setting), not with
// the sentinel's internal text, which errors.Is finds without it.
func endsWithTheFix(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, exchanges.ErrPermanent.Error()) {
		t.Errorf("error shows the internal %q: %s", exchanges.ErrPermanent.Error(), msg)
	}
	if !strings.HasSuffix(msg, "Binance API Management") && !strings.HasSuffix(msg, "to accept the risk") {
		t.Errorf("error does not end with the fix: %s", msg)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		a    config.Account
		want string
	}{
		{"no key", config.Account{Name: "m", Exchange: USDM}, "needs api_key and api_secret"},
		{"not binance", config.Account{Name: "m", Exchange: "simulated", APIKey: "k", APISecret: "s"}, "not a Binance exchange"},
		{"bad endpoint", config.Account{Name: "m", Exchange: USDM, APIKey: "k", APISecret: "s", Endpoint: "127.0.0.1:8080"}, "not an http(s) URL"},
	}
	for _, c := range cases {
		_, err := New(c.a, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want %q", c.name, err, c.want)
		}
	}
	// A missing key is the user's to fix: permanent, ending with the fix.
	_, err := New(cases[0].a, Options{})
	if !errors.Is(err, exchanges.ErrPermanent) {
		t.Errorf("New without a key = %v, want ErrPermanent", err)
	}
	endsWithTheFix(t, err)
}

func TestClosed(t *testing.T) {
	ex, _, _ := fixture(t, USDM, binancetest.Options{}, nil)
	ex.Close()
	if _, err := ex.Snapshot(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Snapshot after Close = %v", err)
	}
}

// TestThousandPolls: no goroutine or memory growth over 1,000 polls, an
// hour of candles and income refreshes included.
func TestThousandPolls(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 polls")
	}
	ex, _, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, func(a *config.Account) {})
	ex.tr.base = &http.Transport{MaxIdleConnsPerHost: 2}
	ctx := context.Background()
	poll := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := ex.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Advance(15 * time.Second)
		}
	}
	poll(100) // warm up: connections, caches
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	poll(1000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	if g1 > g0+2 {
		t.Errorf("goroutines %d → %d over 1,000 polls", g0, g1)
	}
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 1<<20 {
		t.Errorf("heap grew %d bytes over 1,000 polls", grow)
	}
	t.Logf("goroutines %d → %d, heap %d → %d bytes", g0, g1, before.HeapAlloc, after.HeapAlloc)
}
