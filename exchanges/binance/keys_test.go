package binance

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// pemKey returns a PKCS#8 PEM private key, as Binance's key generator
// writes it, and its public half.
func pemKey(t *testing.T, kind string) (string, crypto.PublicKey) {
	t.Helper()
	var priv, pub any
	switch kind {
	case "ed25519":
		pu, pr, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = pr, pu
	case "rsa":
		pr, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = pr, &pr.PublicKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), pub
}

// TestKeyTypes: Ed25519 and RSA keys sign every request (go-binance's
// services and the adapter's own signed reads: permissions, COIN-M
// brackets and income, forceOrders) in a way the fake verifies with the
// public key; a key the fake does not know is rejected (-1022).
func TestKeyTypes(t *testing.T) {
	for _, kind := range []string{"ed25519", "rsa"} {
		for _, exch := range []string{USDM, COINM} {
			t.Run(kind+" "+exch, func(t *testing.T) {
				secret, pub := pemKey(t, kind)
				acct := binancetest.USDMOneWay
				if exch == COINM {
					acct = binancetest.COINM
				}
				ex, srv, clk := fixture(t, exch, binancetest.Options{Account: acct, PublicKey: pub}, func(a *config.Account) { a.APISecret = config.Secret(secret) })
				ctx := context.Background()
				if err := ex.CheckKey(ctx); err != nil {
					t.Fatalf("CheckKey: %v", err)
				}
				if _, err := ex.Snapshot(ctx); err != nil {
					t.Fatalf("Snapshot: %v", err)
				}
				// A disappearance: the adapter's own signed forceOrders read.
				if exch == USDM {
					srv.Liquidate("SOLUSDT", "BOTH")
				} else {
					srv.Liquidate("ETHUSD_PERP", "BOTH")
				}
				clk.Advance(15 * time.Second)
				snap, err := ex.Snapshot(ctx)
				if err != nil || len(liquidationEvents(snap)) != 1 {
					t.Fatalf("Snapshot after a liquidation: %v, %+v", err, snap)
				}

				// The same key with another private half: Binance rejects it.
				other, _ := pemKey(t, kind)
				bad, err := New(config.Account{Name: "main", Exchange: exch, APIKey: binancetest.Key, APISecret: config.Secret(other), Endpoint: srv.URL}, Options{Now: clk.Now})
				if err != nil {
					t.Fatal(err)
				}
				defer bad.Close()
				err = bad.CheckKey(ctx)
				if !errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), "-1022") {
					t.Errorf("CheckKey with the wrong private key = %v, want -1022", err)
				}
				if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("the private key leaked: %v", err)
				}
			})
		}
	}
}

func TestKeyTypeErrors(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	for _, c := range []struct{ name, secret, want string }{
		{"PKCS#1", pkcs1, "openssl pkcs8 -topk8 -nocrypt"},
		{"cut", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI", "does not decode"},
	} {
		_, err := New(config.Account{Name: "m", Exchange: USDM, APIKey: "k", APISecret: config.Secret(c.secret)}, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "account m: api_secret: ") {
			t.Errorf("%s: New = %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "MC4CAQ") {
			t.Errorf("%s: the secret leaked: %v", c.name, err)
		}
	}
}

func TestEndpointPlainHTTP(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		ok       bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.3.4.5:8080", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080/", true},
		{"https://fapi.example.com", true},
		{"http://fapi.example.com", false},
		{"http://10.0.0.5:8080", false},
		{"http://[::2]:8080", false},
		{"http://localhost.example.com", false},
	} {
		_, err := New(config.Account{Name: "m", Exchange: USDM, APIKey: "k", APISecret: "s", Endpoint: c.endpoint}, Options{})
		if c.ok != (err == nil) {
			t.Errorf("endpoint %s: New = %v, want ok %v", c.endpoint, err, c.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "account m") || !strings.Contains(err.Error(), "use https://")) {
			t.Errorf("endpoint %s: error %q does not name the account and the fix", c.endpoint, err)
		}
	}
}

// TestSnapshotChecksKeyFirst: when CheckKey could not ask Binance at start
// (the daemon starts anyway), the first Snapshot checks the key before
// reading anything; a refused key fails it as permanent, raises one
// key_problem and shows in KeyProblem until the key is fixed.
func TestSnapshotChecksKeyFirst(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay, Permissions: binancetest.UniversalTransfer}, nil)
	ctx := context.Background()
	const path = "/sapi/v1/account/apiRestrictions"
	srv.Fail(path, binancetest.ServerError(503))
	err := ex.CheckKey(ctx)
	if err == nil || errors.Is(err, exchanges.ErrPermanent) {
		t.Fatalf("CheckKey during a 503 = %v, want a transient error", err)
	}
	if ex.KeyProblem() != nil {
		t.Errorf("KeyProblem after a transient failure = %v", ex.KeyProblem())
	}
	// A check that cannot be made does not stop the polling (an endpoint
	// without /sapi, Binance's spot API out of reach): it is tried again a
	// minute later.
	srv.Fail(path, binancetest.ServerError(503))
	if _, err := ex.Snapshot(ctx); err != nil || srv.Count("/fapi/v2/account") != 1 {
		t.Fatalf("Snapshot with the check failing = %v (%d account reads), want the account polled anyway", err, srv.Count("/fapi/v2/account"))
	}
	checks := srv.Count(path)
	clk.Advance(15 * time.Second)
	if _, err := ex.Snapshot(ctx); err != nil || srv.Count(path) != checks {
		t.Fatalf("Snapshot within the minute = %v, %d checks (want %d: not yet tried again)", err, srv.Count(path), checks)
	}
	polled := srv.Count("/fapi/v2/account")
	for round := range 2 {
		clk.Advance(time.Minute)
		_, err = ex.Snapshot(ctx)
		if !errors.Is(err, exchanges.ErrPermanent) || !strings.Contains(err.Error(), "permitsUniversalTransfer") || srv.Count("/fapi/v2/account") != polled {
			t.Fatalf("Snapshot with a transfer key = %v, want ErrPermanent naming permitsUniversalTransfer, no account read", err)
		}
		ev := ex.PendingEvents()
		if round == 0 && (len(ev) != 1 || ev[0].Kind != exchanges.KeyProblem || !strings.Contains(ev[0].Message, "permitsUniversalTransfer")) {
			t.Errorf("events = %+v, want one key_problem naming the permission", ev)
		}
		if round == 1 && len(ev) != 0 {
			t.Errorf("key_problem raised again: %+v", ev)
		}
		if kp := ex.KeyProblem(); kp == nil || !strings.Contains(kp.Error(), "permitsUniversalTransfer") || !strings.Contains(kp.Error(), "account main") {
			t.Errorf("KeyProblem = %v", kp)
		}
	}
	srv.SetPermissions(binancetest.ReadOnly)
	clk.Advance(15 * time.Second)
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot once the key is fixed: %v", err)
	}
	if kp := ex.KeyProblem(); kp != nil {
		t.Errorf("KeyProblem after the fix = %v", kp)
	}
}

// TestPermissionRecheck: the permissions are read again every
// permission_check_interval (one request), not on the polls between; a
// change raises a key_problem saying what changed; a key that can now
// transfer funds shows in KeyProblem while polling goes on, until the
// permission is gone again. A check that fails transiently does not fail
// the poll and is tried again a minute later.
func TestPermissionRecheck(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, func(a *config.Account) { a.PermissionCheckInterval = time.Hour })
	ctx := context.Background()
	const path = "/sapi/v1/account/apiRestrictions"
	if err := ex.CheckKey(ctx); err != nil {
		t.Fatal(err)
	}
	poll := func() *exchanges.Snapshot {
		t.Helper()
		snap, err := ex.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		return snap
	}
	keyEvents := func(snap *exchanges.Snapshot) []exchanges.Event {
		var out []exchanges.Event
		for _, ev := range snap.Events {
			if ev.Kind == exchanges.KeyProblem {
				out = append(out, ev)
			}
		}
		return out
	}
	for range 4 { // 0, 15, 30, 45 minutes
		poll()
		clk.Advance(15 * time.Minute)
	}
	if n := srv.Count(path); n != 1 {
		t.Fatalf("apiRestrictions read %d times within the hour, want once (CheckKey)", n)
	}
	srv.SetPermissions(binancetest.InternalTransfer)
	snap := poll() // 60 minutes
	ev := keyEvents(snap)
	if srv.Count(path) != 2 || len(ev) != 1 || !strings.Contains(ev[0].Message, "permissions changed: Enable Internal Transfer (enableInternalTransfer) turned on") ||
		!strings.Contains(ev[0].Message, "enableInternalTransfer") || !strings.Contains(ev[0].Message, "allow_trading_key") {
		t.Fatalf("after the change: %d reads, events %+v", srv.Count(path), snap.Events)
	}
	if len(snap.Positions) != 3 {
		t.Errorf("polling stopped: %d positions", len(snap.Positions))
	}
	if kp := ex.KeyProblem(); kp == nil || !strings.Contains(kp.Error(), "enableInternalTransfer") {
		t.Errorf("KeyProblem = %v", kp)
	}
	// Unchanged an hour later: no new event, still a problem.
	clk.Advance(time.Hour)
	if ev := keyEvents(poll()); len(ev) != 0 || ex.KeyProblem() == nil {
		t.Errorf("unchanged: events %+v, KeyProblem %v", ev, ex.KeyProblem())
	}
	// The check fails: the poll goes on; a minute later it is asked again.
	srv.SetPermissions(binancetest.ReadOnly)
	srv.Fail(path, binancetest.ServerError(500))
	clk.Advance(time.Hour)
	poll()
	clk.Advance(30 * time.Second)
	poll()
	if n := srv.Count(path); n != 4 {
		t.Errorf("apiRestrictions read %d times, want 4 (not again 30 s after a failure)", n)
	}
	clk.Advance(30 * time.Second)
	snap = poll()
	ev = keyEvents(snap)
	if len(ev) != 1 || !strings.Contains(ev[0].Message, "Enable Internal Transfer (enableInternalTransfer) turned off") || ex.KeyProblem() != nil {
		t.Errorf("after the permission went: events %+v, KeyProblem %v", snap.Events, ex.KeyProblem())
	}
}

// TestKeyProblemRejected: a rejected key shows in KeyProblem until a
// Snapshot succeeds.
func TestKeyProblemRejected(t *testing.T) {
	ex, srv, _ := fixture(t, USDM, binancetest.Options{}, nil)
	srv.Fail("/fapi/v2/account", binancetest.InvalidKey())
	if _, err := ex.Snapshot(context.Background()); !errors.Is(err, exchanges.ErrPermanent) {
		t.Fatalf("Snapshot = %v", err)
	}
	if kp := ex.KeyProblem(); kp == nil || !strings.Contains(kp.Error(), "-2015") {
		t.Errorf("KeyProblem = %v, want the -2015", kp)
	}
	if _, err := ex.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kp := ex.KeyProblem(); kp != nil {
		t.Errorf("KeyProblem after a good Snapshot = %v", kp)
	}
}

// TestRestoreBans: a restored ban keeps every request from the host until
// it ends, and Bans reports it; an expired one is ignored.
func TestRestoreBans(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	until := clk.Now().Add(10 * time.Minute)
	ex.RestoreBans([]exchanges.Ban{
		{Host: "elsewhere.example:443", Status: 418, Until: clk.Now().Add(-time.Minute)}, // over
		{Host: host, Status: 418, Until: until},
	})
	if bs := ex.Bans(); len(bs) != 1 || bs[0].Host != host || !bs[0].Until.Equal(until) || bs[0].Status != 418 {
		t.Errorf("Bans = %+v", bs)
	}
	ctx := context.Background()
	for _, d := range []time.Duration{0, 5 * time.Minute, 4*time.Minute + 59*time.Second} {
		clk.Advance(d)
		if err := ex.CheckKey(ctx); err == nil || errors.Is(err, exchanges.ErrPermanent) {
			t.Errorf("CheckKey during the ban = %v", err)
		}
		_, err := ex.Snapshot(ctx)
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Status != 418 {
			t.Errorf("Snapshot during the ban = %v", err)
		}
	}
	if n := srv.Requests(); n != 0 {
		t.Fatalf("%d requests reached the banned host", n)
	}
	clk.Advance(time.Second)
	if _, err := ex.Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot after the ban: %v", err)
	}
	if bs := ex.Bans(); len(bs) != 0 {
		t.Errorf("Bans after the end = %+v", bs)
	}
}

// TestBansAfter418: a ban Binance imposes is reported by Bans, to be
// stored; a restored Until beyond Binance's 3 days is cut to 3 days.
func TestBansAfter418(t *testing.T) {
	ex, srv, clk := fixture(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	srv.Fail("/fapi/v2/account", binancetest.Banned(300))
	ex.Snapshot(context.Background())
	bs := ex.Bans()
	if len(bs) != 1 || bs[0].Status != 418 || !bs[0].Until.Equal(clk.Now().Add(300*time.Second)) {
		t.Errorf("Bans after a 418 = %+v", bs)
	}
	ex2, srv2, clk2 := fixture(t, USDM, binancetest.Options{}, nil)
	host := strings.TrimPrefix(srv2.URL, "http://")
	ex2.RestoreBans([]exchanges.Ban{{Host: host, Status: 418, Until: clk2.Now().Add(30 * 24 * time.Hour)}})
	if bs := ex2.Bans(); len(bs) != 1 || !bs[0].Until.Equal(clk2.Now().Add(3*24*time.Hour)) {
		t.Errorf("a 30-day ban restored as %+v, want 3 days", bs)
	}
}
