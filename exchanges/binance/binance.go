package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gobinance "github.com/adshao/go-binance/v2"
	"github.com/adshao/go-binance/v2/common"
	"github.com/adshao/go-binance/v2/delivery"
	"github.com/adshao/go-binance/v2/futures"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// Exchange names this package implements, as written in `exchange:`.
const (
	USDM  = "binance-usdm"
	COINM = "binance-coinm"
)

// requestTimeout bounds one HTTP request, from when the weight gate lets
// it through, when the caller's context has no earlier deadline: a hung
// connection must not hold a poll forever.
const requestTimeout = 10 * time.Second

// ErrClosed is returned by Snapshot and CheckKey after Close.
var ErrClosed = errors.New("binance exchange closed")

// Options are the parts of an Exchange that tests and the daemon replace.
type Options struct {
	// Logger receives warnings about degraded data (a cache that could not be
	// refreshed); nil discards them. Keys and secrets never reach it. The
	// daemon's already names the account: the adapter adds no account
	// attribute of its own (a second one would repeat the key).
	Logger *slog.Logger
	// Now is the clock for caches, bans and snapshot times; time.Now when nil.
	Now func() time.Time
	// HTTPClient supplies the base transport under the rate-limit layer;
	// http.DefaultTransport when nil or when its Transport is nil.
	HTTPClient *http.Client
}

// signFunc signs a query string with the secret: go-binance's common.Hmac,
// common.Rsa or common.Ed25519, chosen by common.SignFunc from the key type.
type signFunc func(secret, data string) (*string, error)

// Exchange is one Binance futures account (USDⓈ-M or COIN-M). Snapshot and
// CheckKey are serialized; every method is safe for concurrent use.
type Exchange struct {
	name         string
	kind         string // USDM or COINM
	allowTrading bool
	testnet      bool
	log          *slog.Logger
	now          func() time.Time
	tr           *transport
	httpc        *http.Client
	key, secret  string
	keyType      string   // common.KeyTypeHmac, KeyTypeEd25519 or KeyTypeRsa
	sign         signFunc // go-binance's signer for keyType
	base         string   // futures REST base URL
	spotBase     string   // for the key-permission check; "" skips it (testnet)
	permEvery    time.Duration
	every        time.Duration // how often the daemon takes a Snapshot, for Cost
	streamed     bool          // stream: true, for Cost
	// heldSymbols is the number of symbols the last Snapshot held, for
	// Cost; -1 before the first.
	heldSymbols atomic.Int32

	fc *futures.Client  // USDM
	dc *delivery.Client // COINM

	mu     sync.Mutex // serializes Snapshot and CheckKey; guards what follows
	closed bool
	cache  cache
	// checked: the key's permissions were read and accepted (or, on
	// testnet, the key read the account); until then Snapshot checks first.
	checked bool
	// checkAt is when Snapshot tries the first check again after it could
	// not be made (Binance unreachable, an endpoint without /sapi).
	checkAt time.Time
	perms   *apiRestrictions // last read, nil before the first read
	permAt  time.Time        // when perms were read (or last tried)
	// lastHeld is every position of the last successful Snapshot, by
	// posKey, to notice the ones that disappear (liquidations.go).
	lastHeld map[string]seenPos
	// liqFailing is when asking about a symbol's disappearance first
	// failed, by symbol, while it keeps failing (liquidations.go).
	liqFailing map[string]time.Time

	// seedHeld, seedMulti, seedOrders and seedFresh are what the read
	// under way built, for the live view once it succeeds (stream.go).
	seedHeld   []held
	seedMulti  bool
	seedOrders map[string][]order
	seedFresh  map[string]bool // symbols whose open orders it read
	// readPeriod is the user-data stream's period (userPeriod) when the
	// read under way began: 0 when the stream was down.
	readPeriod uint64

	// Real-time mode (stream.go, live.go, userstream.go). watchMarks, set
	// while Stream runs (under st.watchMu), is given the held symbols
	// whenever they change, for the mark-price hub; it is called outside
	// the adapter's locks.
	live           liveView
	st             streamState
	sc             streamConf
	frames         frameLog
	streamBase     string // user-data websocket base URL
	streamEndpoint string // stream_endpoint, for the mark-price hub
	watchMarks     func(symbols []string)

	evMu    sync.Mutex
	pending []exchanges.Event
	keyBad  bool  // a key_problem was reported and no Snapshot succeeded since
	keyErr  error // the key is rejected (KeyError); cleared by a good Snapshot
	permErr error // the key has permissions marginwatch refuses; cleared by a check that accepts it
}

var (
	_ exchanges.Exchange    = (*Exchange)(nil)
	_ exchanges.KeyChecker  = (*Exchange)(nil)
	_ exchanges.EventSource = (*Exchange)(nil)
	_ exchanges.BanKeeper   = (*Exchange)(nil)
	_ exchanges.KeyHealth   = (*Exchange)(nil)
)

// New builds the adapter of account cfg (cfg.Exchange is binance-usdm or
// binance-coinm). It sends nothing. The daemon calls CheckKey at start;
// Snapshot checks the key itself until a check has succeeded, and again
// every cfg.PermissionCheckInterval (1h when 0).
//
// api_secret is an HMAC secret, or the PEM (PKCS#8) private key of an
// Ed25519 or RSA API key, which Binance recommends: the key type follows
// from the secret. An http:// endpoint is accepted only for a loopback host,
// since the key travels in every request.
func New(cfg config.Account, opts Options) (*Exchange, error) {
	if cfg.Exchange != USDM && cfg.Exchange != COINM {
		return nil, fmt.Errorf("account %s: exchange %q is not a Binance exchange (want %s or %s)", cfg.Name, cfg.Exchange, USDM, COINM)
	}
	if cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, refuse("account %s: %s needs api_key and api_secret (or api_key_file and api_secret_file): create a read-only key in Binance API Management", cfg.Name, cfg.Exchange)
	}
	e := &Exchange{
		name:         cfg.Name,
		kind:         cfg.Exchange,
		allowTrading: cfg.AllowTradingKey,
		testnet:      cfg.Testnet,
		log:          opts.Logger,
		now:          opts.Now,
		key:          cfg.APIKey.Reveal(),
		secret:       cfg.APISecret.Reveal(),
		permEvery:    cfg.PermissionCheckInterval,
		every:        snapshotEvery(cfg),
		streamed:     cfg.Stream,
	}
	e.heldSymbols.Store(-1)
	if e.permEvery <= 0 {
		e.permEvery = config.DefaultPermissionCheckInterval
	}
	e.sc = defaultStreamConf()
	e.streamBase = userStreamBase(cfg.Exchange, cfg.Testnet, cfg.StreamEndpoint)
	e.streamEndpoint = cfg.StreamEndpoint
	kt, err := keyTypeOf(e.secret)
	if err != nil {
		return nil, fmt.Errorf("account %s: api_secret: %w", cfg.Name, err)
	}
	sf, err := common.SignFunc(kt)
	if err != nil {
		return nil, fmt.Errorf("account %s: api_secret: %w", cfg.Name, err)
	}
	e.keyType, e.sign = kt, sf
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	var base http.RoundTripper = http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	e.tr = &transport{base: base, now: e.now, log: e.log}
	// No redirect is followed: net/http would carry X-MBX-APIKEY to the
	// Location, another host or plain http included (transport.go turns a
	// 30x into an error).
	e.httpc = &http.Client{Transport: e.tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("account %s: endpoint %q is not an http(s) URL such as https://fapi.binance.com", cfg.Name, cfg.Endpoint)
		} else if u.Scheme == "http" && !loopback(u.Hostname()) {
			return nil, fmt.Errorf("account %s: endpoint %q is plain http to a host that is not this machine: the API key would cross the network unencrypted; use https://, or http:// only to a loopback address (127.0.0.1, ::1, localhost) such as a local proxy or test server", cfg.Name, cfg.Endpoint)
		}
	}
	// go-binance's loggers print the signed URL in debug mode only, which
	// stays off; give them a discarding logger anyway.
	quiet := log.New(io.Discard, "", 0)
	switch e.kind {
	case USDM:
		e.base = futures.BaseApiMainUrl
		if cfg.Testnet {
			e.base = futures.BaseApiTestnetUrl
		}
		if endpoint != "" {
			e.base = endpoint
		}
		e.fc = futures.NewClient(e.key, e.secret)
		e.fc.BaseURL, e.fc.HTTPClient, e.fc.Logger, e.fc.KeyType = e.base, e.httpc, quiet, e.keyType
	case COINM:
		e.base = delivery.BaseApiMainUrl
		if cfg.Testnet {
			e.base = delivery.BaseApiTestnetUrl
		}
		if endpoint != "" {
			e.base = endpoint
		}
		e.dc = delivery.NewClient(e.key, e.secret)
		e.dc.BaseURL, e.dc.HTTPClient, e.dc.Logger, e.dc.KeyType = e.base, e.httpc, quiet, e.keyType
	}
	switch {
	case endpoint != "":
		e.spotBase = endpoint // one fake or proxy serves every path
	case !cfg.Testnet:
		e.spotBase = gobinance.BaseAPIMainURL
	}
	return e, nil
}

// Close stops the adapter: a running Stream returns, idle connections of
// its transport are released.
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

// UsedWeight returns the last X-MBX-USED-WEIGHT-1M Binance reported: the
// request weight used by this IP in the current minute (limit 2,400).
func (e *Exchange) UsedWeight() int { return int(e.tr.weight.Load()) }

// PendingEvents returns the events noticed during failed Snapshots (a
// key_problem) and forgets them; see exchanges.EventSource.
func (e *Exchange) PendingEvents() []exchanges.Event {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	ev := e.pending
	e.pending = nil
	return ev
}

// Snapshot reads the account once. See exchanges.Exchange.
//
// Until the key's permissions have been checked and accepted (CheckKey
// failed transiently at start), Snapshot checks them first (at most once a
// minute) and fails like CheckKey when the key is refused; a check that
// cannot be made (Binance's spot API unreachable, an endpoint that does
// not serve /sapi) does not stop the polling: it is logged and tried again.
// Every permEvery it reads them again:
// a change raises a key_problem event and, when the key now has
// permissions marginwatch refuses, KeyProblem reports it while polling
// goes on (a trader in a crash needs the data; the problem is loud).
//
// In real-time mode a successful Snapshot also seeds the live view, and
// brings the events and transfers the view holds (from the user-data
// stream, or a Snapshot the stream ran itself) that no Live took yet.
func (e *Exchange) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	snap, err := e.read(ctx)
	if err != nil {
		return nil, err
	}
	e.live.drain(snap)
	return snap, nil
}

func (e *Exchange) snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	if !e.checked {
		if now := e.now(); !now.Before(e.checkAt) {
			err := e.checkKey(ctx)
			var ke *KeyError
			switch {
			case err == nil:
			case errors.Is(err, exchanges.ErrPermanent) || errors.As(err, &ke) || ctx.Err() != nil:
				return nil, err
			default:
				e.checkAt = now.Add(time.Minute)
				e.log.Warn("cannot check the API key's permissions; polling anyway and trying again in a minute", "err", err)
			}
		}
	} else if err := e.recheckKey(ctx); err != nil {
		return nil, err
	}
	var (
		snap *exchanges.Snapshot
		err  error
	)
	// Noted before the first read: changes after it come through the
	// stream if the stream is still in the same period later.
	e.readPeriod, e.seedFresh = e.live.userPeriod(), nil
	if e.kind == USDM {
		snap, err = e.snapshotUSDM(ctx)
	} else {
		snap, err = e.snapshotCOINM(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := e.liquidations(ctx, snap); err != nil {
		return nil, err
	}
	// Only a Snapshot that succeeds hands the transfers out: a failed one
	// keeps them for the next.
	snap.Transfers = e.takeTransfers()
	return snap, nil
}

// KeyProblem says what is wrong with the key now: rejected by Binance
// (until a Snapshot succeeds) or holding permissions marginwatch refuses
// (until a check finds them gone); nil when it is fine. See
// exchanges.KeyHealth.
func (e *Exchange) KeyProblem() error {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	if e.keyErr != nil {
		return e.keyErr
	}
	return e.permErr
}

// queue adds an event for the next Snapshot or PendingEvents.
func (e *Exchange) queue(ev exchanges.Event) {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.pending = append(e.pending, ev)
}

// keyProblem queues a key_problem event, once per occurrence.
func (e *Exchange) keyProblem(ke *KeyError) {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.keyErr = ke
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

// do runs one request through f, which must pass its ctx to go-binance. A
// -1021 (our clock drifted from Binance's) re-syncs the time offset and
// retries once. Errors come back classified (see classify); a key problem
// is also queued as an event.
func (e *Exchange) do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		// requestTimeout is applied by the transport once the gate lets
		// the request through: a wait for the next minute is bounded by
		// ctx alone.
		rctx, ci := withCallInfo(ctx)
		err := f(rctx)
		if err == nil {
			return nil
		}
		if apiCode(err) == codeTimestamp && attempt == 0 {
			if serr := e.syncTime(ctx); serr == nil {
				continue
			} else {
				e.log.Warn("time re-sync with Binance failed", "err", serr)
			}
		}
		cerr := e.classify(op, ci.status, err)
		var ke *KeyError
		if errors.As(cerr, &ke) {
			e.keyProblem(ke)
		}
		return cerr
	}
}

// syncTime measures the offset between our clock and Binance's, which every
// signed request subtracts from its timestamp.
func (e *Exchange) syncTime(ctx context.Context) error {
	var err error
	if e.fc != nil {
		_, err = e.fc.NewSetServerTimeService().Do(ctx)
	} else {
		_, err = e.dc.NewSetServerTimeService().Do(ctx)
	}
	if err != nil {
		return e.classify("GET time", 0, err)
	}
	return nil
}

// timeOffset is the client's measured clock offset in milliseconds.
func (e *Exchange) timeOffset() int64 {
	if e.fc != nil {
		return e.fc.TimeOffset
	}
	return e.dc.TimeOffset
}

// get sends a GET that go-binance has no service for, the way go-binance
// does: parameters in the query string; when signed, a timestamp (our clock
// minus the measured offset) and the signature of the query by go-binance's
// own signer for the key type (HMAC-SHA256 hex, or Ed25519 or RSA base64,
// query-escaped), and the key in X-MBX-APIKEY. The JSON body is decoded into out.
// Error responses come back as *common.APIError, as from go-binance, so that
// do and classify treat both alike.
func (e *Exchange) get(ctx context.Context, base, path string, q url.Values, signed bool, out any) error {
	if q == nil {
		q = url.Values{}
	}
	header := http.Header{}
	query := q.Encode()
	if signed {
		q.Set("timestamp", fmt.Sprint(time.Now().UnixMilli()-e.timeOffset()))
		query = q.Encode()
		sig, err := e.sign(e.secret, query)
		if err != nil {
			return fmt.Errorf("signing the request: %w", err)
		}
		query += "&" + url.Values{"signature": {*sig}}.Encode()
		header.Set("X-MBX-APIKEY", e.key)
	}
	full := base + path
	if query != "" {
		full += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return err
	}
	req.Header = header
	resp, err := e.httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Binance bodies are small; 16 MiB bounds a misbehaving server.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= http.StatusBadRequest {
		ae := new(common.APIError)
		if json.Unmarshal(data, ae) != nil || !ae.IsValid() {
			ae = &common.APIError{Response: data}
		}
		return ae
	}
	return json.Unmarshal(data, out)
}
