// Package binancetest is a fake Binance REST API for tests: an httptest
// server on 127.0.0.1 that serves realistic USDⓈ-M and COIN-M accounts in
// the exact shapes of Binance's responses (the bodies follow
// the project's shared Binance fixtures, which come from Binance's documentation
// and official connector), checks API keys and signatures the way Binance
// does (HMAC-SHA256 with the secret, or Ed25519 or RSA with the key's
// public key), counts requests and request weight per endpoint, and
// injects failures: 429 and 418 with Retry-After, 5xx, HTML error pages,
// malformed JSON, hung requests, -1021 and -2015. Liquidate makes a
// position disappear the way a liquidation does, forced order included.
// The user-data streams (listen keys and a websocket server) are in
// userstream.go, the mark-price streams in market.go.
package binancetest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The credentials the server accepts unless Options say otherwise.
const (
	Key    = "test-api-key-0123456789"
	Secret = "test-api-secret-9876543210"
)

// Account selects the account the server holds.
type Account int

// Accounts.
const (
	// USDMOneWay: USDⓈ-M, one-way mode, single-asset mode; BTCUSDT long
	// cross, ETHUSDT short isolated, SOLUSDT long cross (see usdm.go).
	USDMOneWay Account = iota
	// USDMHedge: USDⓈ-M, hedge mode; BTCUSDT LONG and SHORT, COMPUSDT SHORT.
	USDMHedge
	// COINM: COIN-M; BTCUSD_PERP long cross, ETHUSD_PERP short isolated.
	COINM
	// COINMHedge: COIN-M, hedge mode; BTCUSD_201225 LONG and SHORT, cross,
	// maintenance margins left out by Binance (see coinmHedge).
	COINMHedge
	// USDMPools: USDⓈ-M, single-asset mode, a USDT pool (ADAUSDT long) and
	// a USDC pool close to liquidation (BTCUSDC long; see usdmPools).
	USDMPools
	// USDMMultiAssets: USDⓈ-M, multi-assets mode, one USD pool (the
	// fixture account; see usdmMultiAssets).
	USDMMultiAssets
)

// Permissions selects what the API key may do (apiRestrictions).
type Permissions int

// Permissions.
const (
	ReadOnly Permissions = iota
	Withdrawals
	Trading
	// UniversalTransfer and InternalTransfer: read-only but for
	// permitsUniversalTransfer or enableInternalTransfer.
	UniversalTransfer
	InternalTransfer
	// FixturePermissions is the shared fixture's body as it is: reading,
	// internal and universal transfer, portfolio margin trading.
	FixturePermissions
)

// Options configure a Server.
type Options struct {
	Account     Account
	Permissions Permissions
	// Key and Secret the server accepts; Key and Secret constants when empty.
	Key, Secret string
	// PublicKey, when set, is the public half of an Ed25519
	// (ed25519.PublicKey) or RSA (*rsa.PublicKey) API key: signatures are
	// checked with it instead of HMAC with Secret.
	PublicKey crypto.PublicKey
	// Now is the server's clock (candle times, income times, the weight
	// minute); time.Now when nil.
	Now func() time.Time
}

// Failure is an injected failure for the next request(s) to a path.
type Failure struct {
	Status      int
	Header      http.Header
	Body        string
	ContentType string
	// Hang blocks the request until the client gives up.
	Hang bool
	// Times is how many requests fail; 1 when 0.
	Times int
}

// RateLimited is Binance's 429 with Retry-After seconds.
func RateLimited(retryAfter int) Failure {
	return Failure{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {strconv.Itoa(retryAfter)}},
		Body: `{"code":-1003,"msg":"Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API."}`}
}

// Banned is Binance's 418 IP ban with Retry-After seconds.
func Banned(retryAfter int) Failure {
	return Failure{Status: http.StatusTeapot, Header: http.Header{"Retry-After": {strconv.Itoa(retryAfter)}},
		Body: `{"code":-1003,"msg":"Way too many requests; IP(127.0.0.1) banned until 1700000000000. Please use the websocket for live updates to avoid bans."}`}
}

// ServerError is a 5xx with Binance's JSON error body.
func ServerError(status int) Failure {
	return Failure{Status: status, Body: `{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}`}
}

// HTMLPage is a CDN's HTML error page (no Binance JSON).
func HTMLPage(status int) Failure {
	return Failure{Status: status, ContentType: "text/html", Body: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>CloudFront</center></body></html>"}
}

// MalformedJSON is a 200 whose body is cut off.
func MalformedJSON() Failure {
	return Failure{Status: http.StatusOK, Body: `{"totalWalletBalance":"50000.0`}
}

// Hang never answers.
func Hang() Failure { return Failure{Hang: true} }

// ClockSkew is Binance's -1021 (timestamp outside recvWindow).
func ClockSkew() Failure {
	return Failure{Status: http.StatusBadRequest, Body: `{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}`}
}

// InvalidKey is Binance's -2015 (revoked key, wrong IP or permission).
func InvalidKey() Failure {
	return Failure{Status: http.StatusUnauthorized, Body: `{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}`}
}

// Server is a fake Binance REST API.
type Server struct {
	// URL is the base URL, for config `endpoint:`.
	URL string

	srv  *httptest.Server
	opts Options
	done chan struct{}
	user userStreams // user-data streams and listen keys (userstream.go)

	mu        sync.Mutex
	data      scenario
	failures  map[string][]Failure
	overrides map[string]http.HandlerFunc
	counts    map[string]int
	weights   map[string]int
	requests  int
	weight    int
	minute    int64 // the clock minute minuteW counts
	minuteW   int
	peakW     int       // the heaviest minute's weight
	refused   int       // requests answered 429 or 418 for the weight limit
	limitTill time.Time // a 429 for the weight limit holds until then; requests before it get 418
	perms     Permissions
	nextOrder int64 // orderId of the next forced order Liquidate adds
}

// NewServer starts a fake Binance on 127.0.0.1; it is closed when t ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Key == "" {
		o.Key = Key
	}
	if o.Secret == "" {
		o.Secret = Secret
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		opts:      o,
		done:      make(chan struct{}),
		data:      scenarios(o.Account),
		failures:  map[string][]Failure{},
		overrides: map[string]http.HandlerFunc{},
		counts:    map[string]int{},
		weights:   map[string]int{},
		perms:     o.Permissions,
		nextOrder: 7000000001,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// Fail makes the next f.Times requests to path (e.g. "/fapi/v2/account"; ""
// for any path) fail with f. Failures queue up in order.
func (s *Server) Fail(path string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.failures[path] = append(s.failures[path], f)
}

// Handle replaces the handler of path. Requests are still counted and
// signatures still checked.
func (s *Server) Handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overrides[path] = h
}

// SetBody replaces the JSON body of path (for account, positionRisk and
// other static endpoints; see scenario).
func (s *Server) SetBody(path, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.bodies[path] = body
}

// Body is the JSON body served for path ("" when none), e.g. to derive a
// variant for SetBody.
func (s *Server) Body(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.bodies[path]
}

// Requests is the number of requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Count is the number of requests received for path.
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// Weight is the request weight spent, per Binance's documented weights.
func (s *Server) Weight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.weight
}

// Weights is the weight spent per path.
func (s *Server) Weights() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.weights))
	for k, v := range s.weights {
		m[k] = v
	}
	return m
}

// ResetCounts zeroes requests, counts and weight (not the minute weight
// reported in X-MBX-USED-WEIGHT-1M).
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.weight = 0, 0
	s.counts = map[string]int{}
	s.weights = map[string]int{}
}

// SetPermissions changes what the API key may do from the next request on.
func (s *Server) SetPermissions(p Permissions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms = p
}

// SetMinuteWeight sets the weight the server reports as used this minute
// (to test the 80% slow-down).
func (s *Server) SetMinuteWeight(w int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minute = s.opts.Now().Unix() / 60
	s.minuteW = w
}

// WeightLimit is Binance's request weight a minute per IP; the server
// answers 429 (-1003, Retry-After: seconds to the next minute) to a request
// that would cross it, and 418 (an IP ban of two minutes, as Binance
// escalates) to requests that keep coming during a 429.
const WeightLimit = 2400

// ipBan is how long a 418 for ignoring a 429 lasts.
const ipBan = 2 * time.Minute

// Refused is the number of requests answered 429 or 418 because the
// weight limit was crossed (not injected Failures).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// PeakMinuteWeight is the heaviest clock minute's weight so far.
func (s *Server) PeakMinuteWeight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakW
}

// Handler serves the fake's REST API, for in-process transports (see
// Transport).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// limited answers a request over the weight limit, or during its 429 or
// 418, and reports whether it did. s.mu is held.
func (s *Server) limited(w http.ResponseWriter, wt int, now time.Time) bool {
	if now.Before(s.limitTill) {
		s.refused++
		s.limitTill = now.Add(ipBan)
		f := Banned(int(ipBan / time.Second))
		writeFailure(w, f)
		return true
	}
	if s.minuteW+wt <= WeightLimit {
		return false
	}
	s.refused++
	next := time.Unix((s.minute+1)*60, 0)
	s.limitTill = next
	f := RateLimited(int((next.Sub(now) + time.Second - 1) / time.Second))
	writeFailure(w, f)
	return true
}

func writeFailure(w http.ResponseWriter, f Failure) {
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	fmt.Fprint(w, f.Body)
}

// weightOf is Binance's documented request weight of one request.
func weightOf(path string, q map[string][]string) int {
	has := func(k string) bool { return len(q[k]) > 0 && q[k][0] != "" }
	switch path {
	case "/fapi/v2/account", "/fapi/v3/account", "/fapi/v2/positionRisk", "/fapi/v3/positionRisk",
		"/fapi/v3/balance", "/fapi/v1/symbolConfig", "/dapi/v1/account":
		return 5
	case "/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders", "/dapi/v1/openOrders":
		if has("symbol") {
			return 1
		}
		return 40
	case "/fapi/v1/income":
		return 30
	case "/fapi/v1/forceOrders", "/dapi/v1/forceOrders":
		if has("symbol") {
			return 20
		}
		return 50
	case "/dapi/v1/income":
		return 20
	case "/fapi/v1/positionSide/dual", "/fapi/v1/multiAssetsMargin", "/dapi/v1/positionSide/dual":
		return 30
	case "/fapi/v1/premiumIndex":
		if has("symbol") {
			return 1
		}
		return 10
	case "/dapi/v1/premiumIndex":
		return 10
	case "/fapi/v1/klines", "/dapi/v1/klines":
		n := 500
		if has("limit") {
			n, _ = strconv.Atoi(q["limit"][0])
		}
		switch {
		case n < 100:
			return 1
		case n < 500:
			return 2
		case n <= 1000:
			return 5
		default:
			return 10
		}
	default:
		return 1
	}
}

// signed lists the endpoints that need a key and a signature.
func signed(path string) bool {
	switch path {
	case "/fapi/v1/premiumIndex", "/fapi/v1/fundingInfo", "/fapi/v1/klines", "/fapi/v1/time", "/fapi/v1/exchangeInfo",
		"/dapi/v1/premiumIndex", "/dapi/v1/fundingInfo", "/dapi/v1/klines", "/dapi/v1/time", "/dapi/v1/exchangeInfo",
		"/fapi/v1/listenKey", "/dapi/v1/listenKey": // USER_STREAM: the API key, no signature
		return false
	}
	return true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.serveWS(w, r)
		return
	}
	path := r.URL.Path
	now := s.opts.Now()
	s.mu.Lock()
	s.requests++
	s.counts[path]++
	wt := weightOf(path, r.URL.Query())
	if m := now.Unix() / 60; m != s.minute {
		s.minute, s.minuteW = m, 0
	}
	if s.limited(w, wt, now) {
		s.mu.Unlock()
		return
	}
	s.weight += wt
	s.weights[path] += wt
	s.minuteW += wt
	s.peakW = max(s.peakW, s.minuteW)
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(s.minuteW))
	var f *Failure
	for _, key := range []string{path, ""} {
		if q := s.failures[key]; len(q) > 0 {
			ff := q[0]
			f = &ff
			q[0].Times--
			if q[0].Times <= 0 {
				s.failures[key] = q[1:]
			}
			break
		}
	}
	override := s.overrides[path]
	s.mu.Unlock()

	if f != nil {
		if f.Hang {
			select {
			case <-r.Context().Done():
			case <-s.done:
			}
			return
		}
		for k, v := range f.Header {
			w.Header()[k] = v
		}
		ct := f.ContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(f.Status)
		fmt.Fprint(w, f.Body)
		return
	}
	if signed(path) {
		if r.Header.Get("X-MBX-APIKEY") != s.opts.Key {
			writeError(w, http.StatusUnauthorized, -2015, "Invalid API-key, IP, or permissions for action.")
			return
		}
		raw := r.URL.RawQuery
		i := strings.LastIndex(raw, "signature=")
		if i < 0 {
			writeError(w, http.StatusBadRequest, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
			return
		}
		payload := strings.TrimSuffix(raw[:i], "&")
		if !s.verify(payload, raw[i+len("signature="):]) {
			writeError(w, http.StatusBadRequest, -1022, "Signature for this request is not valid.")
			return
		}
		if r.URL.Query().Get("timestamp") == "" {
			writeError(w, http.StatusBadRequest, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
			return
		}
	}
	if override != nil {
		override(w, r)
		return
	}
	if path == "/fapi/v1/listenKey" || path == "/dapi/v1/listenKey" {
		s.serveListenKey(w, r) // weight 1 (POST, PUT and DELETE alike)
		return
	}
	body, status := s.body(path, r, now)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// verify checks the signature (as sent, query-escaped) of payload.
func (s *Server) verify(payload, sig string) bool {
	switch pub := s.opts.PublicKey.(type) {
	case ed25519.PublicKey:
		b, ok := unbase64(sig)
		return ok && ed25519.Verify(pub, []byte(payload), b)
	case *rsa.PublicKey:
		b, ok := unbase64(sig)
		sum := sha256.Sum256([]byte(payload))
		return ok && rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], b) == nil
	case nil:
		mac := hmac.New(sha256.New, []byte(s.opts.Secret))
		mac.Write([]byte(payload))
		return hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig))
	}
	return false
}

func unbase64(sig string) ([]byte, bool) {
	v, err := url.QueryUnescape(sig)
	if err != nil {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	return b, err == nil
}

func writeError(w http.ResponseWriter, status int, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%d,"msg":%q}`, code, msg)
}

// body answers path from the scenario.
func (s *Server) body(path string, r *http.Request, now time.Time) ([]byte, int) {
	q := r.URL.Query()
	symbol := q.Get("symbol")
	s.mu.Lock()
	static, ok := s.data.bodies[path]
	s.mu.Unlock()
	switch path {
	case "/fapi/v1/time", "/dapi/v1/time":
		return fmt.Appendf(nil, `{"serverTime":%d}`, now.UnixMilli()), http.StatusOK
	case "/sapi/v1/account/apiRestrictions":
		s.mu.Lock()
		p := s.perms
		s.mu.Unlock()
		return []byte(permissions(p)), http.StatusOK
	case "/fapi/v1/forceOrders", "/dapi/v1/forceOrders":
		return forceOrders(static, q), http.StatusOK
	case "/fapi/v1/klines", "/dapi/v1/klines":
		return s.klines(symbol, q.Get("limit"), now)
	case "/fapi/v1/income", "/dapi/v1/income":
		return s.income(path, q, now), http.StatusOK
	case "/fapi/v1/premiumIndex", "/fapi/v1/leverageBracket":
		if symbol != "" {
			one := filter(static, "symbol", symbol)
			if len(one) == 0 {
				return []byte(`{"code":-1121,"msg":"Invalid symbol."}`), http.StatusBadRequest
			}
			return one[0], http.StatusOK // an object when a symbol is sent
		}
	}
	if !ok {
		return []byte(`{"code":-5000,"msg":"Path not served by binancetest."}`), http.StatusNotFound
	}
	if symbol != "" && static[0] == '[' {
		return join(filter(static, "symbol", symbol)), http.StatusOK
	}
	return []byte(static), http.StatusOK
}

// filter returns the raw objects of a JSON array whose field equals want.
func filter(array, field, want string) []json.RawMessage {
	var items []json.RawMessage
	if json.Unmarshal([]byte(array), &items) != nil {
		return nil
	}
	var out []json.RawMessage
	for _, it := range items {
		var m map[string]any
		if json.Unmarshal(it, &m) == nil && m[field] == want {
			out = append(out, it)
		}
	}
	return out
}

func join(items []json.RawMessage) []byte {
	if len(items) == 0 {
		return []byte("[]")
	}
	return append(append([]byte("["), bytes.Join(bytesOf(items), []byte(","))...), ']')
}

func bytesOf(items []json.RawMessage) [][]byte {
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// klines serves 1h candles ending with the one forming at now. Every candle
// of a symbol has the same close and the same range, so its true range is
// that range and Wilder's ATR equals it exactly.
func (s *Server) klines(symbol, limit string, now time.Time) ([]byte, int) {
	c, ok := s.data.candles[symbol]
	if !ok {
		return []byte(`{"code":-1121,"msg":"Invalid symbol."}`), http.StatusBadRequest
	}
	n := 500
	if limit != "" {
		n, _ = strconv.Atoi(limit)
	}
	n = max(1, min(n, 1500))
	last := now.Truncate(time.Hour)
	var b bytes.Buffer
	b.WriteByte('[')
	for i := n - 1; i >= 0; i-- {
		open := last.Add(-time.Duration(i) * time.Hour)
		if i != n-1 {
			b.WriteByte(',')
		}
		h, l, cl := c.close+c.half, c.close-c.half, c.close
		fmt.Fprintf(&b, `[%d,"%s","%s","%s","%s","1000.000",%d,"%s",100,"500.000","%s","0"]`,
			open.UnixMilli(), f(cl), f(h), f(l), f(cl), open.Add(time.Hour).UnixMilli()-1, f(cl*1000), f(cl*500))
	}
	b.WriteByte(']')
	return b.Bytes(), http.StatusOK
}

func f(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Income is one row of the income history, Age before the server clock
// (or at Time when set).
type Income struct {
	Symbol, Type, Amount, Asset string
	Age                         time.Duration
	Time                        time.Time
}

// AddIncome adds rows to the account's income history.
func (s *Server) AddIncome(rows ...Income) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		in := incomeRow{symbol: r.Symbol, typ: r.Type, income: r.Amount, asset: r.Asset, age: r.Age}
		if !r.Time.IsZero() {
			in.at = r.Time.UnixMilli()
		}
		s.data.income = append(s.data.income, in)
	}
}

// AddIncomeJSON adds the rows of an income body (an array in Binance's
// shape, such as Fixture("fapi_v1_income.json")) to the income history as
// they are: served byte for byte at their own time.
func (s *Server) AddIncomeJSON(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.income = append(s.data.income, rawIncome(body)...)
}

// income serves the scenario's income rows as Binance does: filtered by
// incomeType, startTime and endTime (inclusive), oldest first, at most
// limit rows (default 100, at most 1,000). Rows of one millisecond keep the
// order they were added in.
func (s *Server) income(path string, q map[string][]string, now time.Time) []byte {
	get := func(k string) string {
		if len(q[k]) > 0 {
			return q[k][0]
		}
		return ""
	}
	typ := get("incomeType")
	from, _ := strconv.ParseInt(get("startTime"), 10, 64)
	to, err := strconv.ParseInt(get("endTime"), 10, 64)
	if err != nil {
		to = now.UnixMilli()
	}
	limit, err := strconv.Atoi(get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	s.mu.Lock()
	rows := append([]incomeRow(nil), s.data.income...)
	s.mu.Unlock()
	type hit struct {
		i  int
		at int64
	}
	var hits []hit
	for i, in := range rows {
		at := in.at
		if at == 0 {
			at = now.Add(-in.age).UnixMilli()
		}
		if (typ != "" && in.typ != typ) || at < from || at > to {
			continue
		}
		hits = append(hits, hit{i, at})
	}
	sort.SliceStable(hits, func(a, b int) bool { return hits[a].at < hits[b].at })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	parts := make([]string, 0, len(hits))
	for _, h := range hits {
		in := rows[h.i]
		if in.raw != nil {
			parts = append(parts, string(in.raw))
			continue
		}
		tran := fmt.Sprintf("%d", 9689322392+h.i)
		if strings.HasPrefix(path, "/dapi") {
			tran = strconv.Quote(tran) // a string on COIN-M
		}
		parts = append(parts, fmt.Sprintf(`{"symbol":%q,"incomeType":%q,"income":%q,"asset":%q,"info":%q,"time":%d,"tranId":%s,"tradeId":""}`,
			in.symbol, in.typ, in.income, in.asset, in.typ, h.at, tran))
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// permissions is an apiRestrictions body (fixture shape).
func permissions(p Permissions) string {
	if p == FixturePermissions {
		return apiRestrictionsFixture
	}
	withdraw, futures, universal, internal := false, false, false, false
	switch p {
	case Withdrawals:
		withdraw = true
	case Trading:
		futures = true
	case UniversalTransfer:
		universal = true
	case InternalTransfer:
		internal = true
	}
	return fmt.Sprintf(`{"ipRestrict":false,"createTime":1623840271000,"enableReading":true,"enableWithdrawals":%t,"enableInternalTransfer":%t,"enableMargin":false,"enableFutures":%t,"permitsUniversalTransfer":%t,"enableVanillaOptions":false,"enableFixApiTrade":false,"enableFixReadOnly":true,"enableSpotAndMarginTrading":false,"enablePortfolioMarginTrading":false}`, withdraw, internal, futures, universal)
}
