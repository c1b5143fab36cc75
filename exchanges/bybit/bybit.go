package bybit

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// Name is the `exchange:` value of this adapter.
const Name = "bybit"

// REST bases (endpoint overrides them).
const (
	MainnetURL = "https://api.bybit.com"
	TestnetURL = "https://api-testnet.bybit.com"
)

// requestTimeout bounds one HTTP request once the gate lets it through.
const requestTimeout = 10 * time.Second

// ErrClosed is returned by Snapshot and CheckKey after Close.
var ErrClosed = errors.New("bybit exchange closed")

// Options are the parts of an Exchange that tests and the daemon replace.
type Options struct {
	// Logger receives warnings about degraded data; nil discards them.
	// Keys and secrets never reach it.
	Logger *slog.Logger
	// Now is the clock for caches, bans and snapshot times; time.Now when nil.
	Now func() time.Time
	// HTTPClient supplies the base transport under the rate-limit layer;
	// http.DefaultTransport when nil or when its Transport is nil.
	HTTPClient *http.Client
}

// Exchange is one Bybit unified trading account (linear USDT and USDC
// perpetuals). Snapshot and CheckKey are serialized; every method is safe
// for concurrent use.
type Exchange struct {
	name         string
	allowTrading bool
	log          *slog.Logger
	now          func() time.Time
	tr           *transport
	key, secret  string
	rsaKey       bool // secret is a PEM RSA private key
	base         string
	permEvery    time.Duration
	every        time.Duration // poll interval, for Cost
	heldSymbols  atomic.Int32  // symbols of the last Snapshot, for Cost; -1 before
	wsBase       string        // websocket scheme+host[:port]
	sc           streamConf
	live         liveView
	st           streamState

	mu      sync.Mutex // serializes Snapshot and CheckKey; guards what follows
	closed  bool
	cache   cache
	checked bool
	checkAt time.Time
	perms   *apiKeyInfo
	permAt  time.Time

	evMu    sync.Mutex
	pending []exchanges.Event
	keyBad  bool  // a key_problem episode is open (its event was raised)
	keyErr  error // the key rejection of the open episode
	keySeen bool  // a call of this Snapshot saw a key rejection
	permErr error
}

var (
	_ exchanges.Exchange    = (*Exchange)(nil)
	_ exchanges.KeyChecker  = (*Exchange)(nil)
	_ exchanges.EventSource = (*Exchange)(nil)
	_ exchanges.BanKeeper   = (*Exchange)(nil)
	_ exchanges.KeyHealth   = (*Exchange)(nil)
	_ exchanges.Coster      = (*Exchange)(nil)
)

// New builds the adapter of account cfg (exchange: bybit). It sends
// nothing. api_secret is an HMAC secret or the PEM private key of an RSA
// ("self-generated") API key. endpoint overrides the REST base (https, or
// http to a loopback host only); testnet selects Bybit's testnet.
func New(cfg config.Account, opts Options) (*Exchange, error) {
	if cfg.Exchange != Name {
		return nil, fmt.Errorf("account %s: exchange %q is not %s", cfg.Name, cfg.Exchange, Name)
	}
	if cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, refuse("account %s: bybit needs api_key and api_secret (or api_key_file and api_secret_file): create a read-only key in Bybit API Management", cfg.Name)
	}
	e := &Exchange{
		name:         cfg.Name,
		allowTrading: cfg.AllowTradingKey,
		log:          opts.Logger,
		now:          opts.Now,
		key:          cfg.APIKey.Reveal(),
		secret:       cfg.APISecret.Reveal(),
		permEvery:    cfg.PermissionCheckInterval,
		every:        snapshotEvery(cfg),
		base:         MainnetURL,
		wsBase:       StreamMainnetURL,
		sc:           defaultStreamConf(),
	}
	e.heldSymbols.Store(-1)
	if e.permEvery <= 0 {
		e.permEvery = config.DefaultPermissionCheckInterval
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if strings.Contains(e.secret, "-----BEGIN") {
		if err := checkRSA(e.secret); err != nil {
			return nil, fmt.Errorf("account %s: api_secret: %w", cfg.Name, err)
		}
		e.rsaKey = true
	}
	if cfg.Testnet {
		e.base, e.wsBase = TestnetURL, StreamTestnetURL
	}
	if ep := cfg.StreamEndpoint; ep != "" {
		e.wsBase = wsBaseOf(ep) // validated by config (ws, or wss beyond loopback)
	}
	if ep := strings.TrimRight(cfg.Endpoint, "/"); ep != "" {
		u, err := url.Parse(ep)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return nil, fmt.Errorf("account %s: endpoint %q is not an http(s) URL such as %s", cfg.Name, cfg.Endpoint, MainnetURL)
		case u.Scheme == "http" && !loopback(u.Hostname()):
			return nil, fmt.Errorf("account %s: endpoint %q is plain http to a host that is not this machine: the API key would cross the network unencrypted; use https://, or http:// only to a loopback address", cfg.Name, cfg.Endpoint)
		}
		e.base = ep
	}
	var base http.RoundTripper = http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	e.tr = &transport{base: base, now: e.now, log: e.log}
	return e, nil
}

// checkRSA makes sure hirokisan/bybit's WithAuthRSA, which panics on a
// key it cannot parse, gets one it can. The errors never quote the secret.
func checkRSA(secret string) error {
	block, _ := pem.Decode([]byte(secret))
	if block == nil {
		return errors.New("it looks like a PEM private key but does not decode: paste the whole private key file, BEGIN and END lines included")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("it is a PEM %q block but not an unencrypted PKCS#1 or PKCS#8 private key", block.Type)
	}
	if _, ok := k.(*rsa.PrivateKey); !ok {
		return fmt.Errorf("it is a %T private key; Bybit's self-generated API keys are RSA", k)
	}
	return nil
}

// loopback reports whether host (no port) is this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// client is a hirokisan/bybit client whose requests carry ctx and go
// through the adapter's transport. The library's requests have no context
// of their own, so each call gets a client (a small struct) bound to one.
// It follows no redirect: net/http would carry X-BAPI-API-KEY to the new
// address, another host or plain http included (classify reports a 30x).
func (e *Exchange) client(ctx context.Context) *bybitapi.Client {
	hc := &http.Client{Transport: ctxTransport{ctx: ctx, t: e.tr}, CheckRedirect: noRedirect}
	c := bybitapi.NewClient().WithHTTPClient(hc).WithBaseURL(e.base)
	if e.rsaKey {
		return c.WithAuthRSA(e.key, e.secret)
	}
	return c.WithAuth(e.key, e.secret)
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Close stops the adapter and releases idle connections.
func (e *Exchange) Close() error {
	e.stopStream()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if ci, ok := e.tr.base.(interface{ CloseIdleConnections() }); ok && e.tr.base != http.DefaultTransport {
		ci.CloseIdleConnections()
	}
	return nil
}

// do runs one library call f with a client bound to ctx, classifying its
// error; a key problem is also queued as an event. A panic inside the
// library (its decoders type-assert, e.g. V5GetKlineList on a number or
// null in a kline row) is a transient malformed-response error.
func (e *Exchange) do(ctx context.Context, op string, f func(c *bybitapi.Client) error) error {
	ci := &callInfo{}
	err := guarded(f, e.client(context.WithValue(ctx, callInfoKey{}, ci)))
	if err == nil {
		return nil
	}
	var pe *libraryPanic
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: malformed response from Bybit (the client library could not decode it: %v); polling goes on", op, pe.v)
	}
	cerr := e.classify(op, ci.status, err)
	var ke *KeyError
	if errors.As(cerr, &ke) {
		e.keyProblem(ke)
	}
	return cerr
}

// libraryPanic is a panic recovered from a hirokisan/bybit call.
type libraryPanic struct{ v any }

func (p *libraryPanic) Error() string { return fmt.Sprint("bybit client library panicked: ", p.v) }

// guarded runs f, turning a panic into a *libraryPanic.
func guarded(f func(c *bybitapi.Client) error, c *bybitapi.Client) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &libraryPanic{v: r}
		}
	}()
	return f(c)
}

// PendingEvents returns the events noticed during failed Snapshots; see
// exchanges.EventSource.
func (e *Exchange) PendingEvents() []exchanges.Event {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	ev := e.pending
	e.pending = nil
	return ev
}

// KeyProblem says what is wrong with the key now; see exchanges.KeyHealth.
func (e *Exchange) KeyProblem() error {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	if e.keyErr != nil {
		return e.keyErr
	}
	return e.permErr
}

func (e *Exchange) queue(ev exchanges.Event) {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.pending = append(e.pending, ev)
}

// keyProblem records a key rejection; the first of an episode queues a
// key_problem event.
func (e *Exchange) keyProblem(ke *KeyError) {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.keyErr, e.keySeen = ke, true
	if e.keyBad {
		return
	}
	e.keyBad = true
	now := e.now()
	e.pending = append(e.pending, exchanges.Event{
		ID:      fmt.Sprintf("%s/key_problem/%d", e.name, now.UnixMilli()),
		Kind:    exchanges.KeyProblem,
		Time:    now,
		Message: ke.Error(),
	})
}

// keyGood ends the key_problem episode after a successful Snapshot in
// which no call saw a key rejection (an optional read backed off after one
// counts as seeing it again: see fundingPaid).
func (e *Exchange) keyGood() {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	if !e.keySeen {
		e.keyBad, e.keyErr = false, nil
	}
}

// pollStart forgets the key rejections of earlier Snapshots.
func (e *Exchange) pollStart() {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.keySeen = false
}

// Snapshot reads the account once. See exchanges.Exchange. Until the key's
// permissions were checked and accepted it checks them first (at most once
// a minute when the check cannot be made); every permission_check_interval
// it reads them again, and a change raises key_problem.
func (e *Exchange) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	e.pollStart()
	if !e.checked {
		if now := e.now(); !now.Before(e.checkAt) {
			err := e.checkKey(ctx)
			var ke *KeyError
			switch {
			case err == nil:
			case errors.Is(err, exchanges.ErrPermanent) || errors.As(err, &ke) || ctx.Err() != nil:
				return nil, fmt.Errorf("account %s: %w", e.name, err)
			default:
				e.checkAt = now.Add(time.Minute)
				e.log.Warn("cannot check the API key's permissions; polling anyway and trying again in a minute", "err", err)
			}
		}
	} else if err := e.recheckKey(ctx); err != nil {
		return nil, err
	}
	snap, err := e.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", e.name, err)
	}
	e.keyGood()
	e.evMu.Lock()
	snap.Events = append(snap.Events, e.pending...)
	e.pending = nil
	e.evMu.Unlock()
	return snap, nil
}
