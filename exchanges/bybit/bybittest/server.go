// Package bybittest is a fake Bybit V5 REST API for tests: an httptest
// server on 127.0.0.1 that serves the shared Bybit fixtures (see
// fixtures/SOURCES.md, copied byte for byte) by path, verifies the request
// signature (HMAC, or RSA when Options.RSAPublic is set), sends the
// rate-limit headers, and can answer retCode 10006 or HTTP 403. Setters
// change the served bodies by editing the decoded JSON: rows are copies of
// the fixture's own row with some keys set, every other key as Bybit sent it.
package bybittest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed fixtures/*.json
var fixtureFS embed.FS

// Fixture is the shared fixture file as it is; it panics on an unknown name.
func Fixture(name string) []byte {
	b, err := fixtureFS.ReadFile("fixtures/" + name)
	if err != nil {
		panic("bybittest: no fixture " + name)
	}
	return b
}

// The fake's credentials.
const (
	Key    = "bybittest-key-0001"
	Secret = "bybittest-secret-0001"
)

// served maps a path to its fixture.
var served = map[string]string{
	"/v5/account/wallet-balance":  "v5_account_wallet-balance.json",
	"/v5/account/info":            "v5_account_info.json",
	"/v5/account/transaction-log": "v5_account_transaction-log.json",
	"/v5/position/list":           "v5_position_list_inverse.json",
	"/v5/order/realtime":          "v5_order_realtime.json",
	"/v5/market/tickers":          "v5_market_tickers_inverse.json",
	"/v5/market/instruments-info": "v5_market_instruments-info_linear.json",
	"/v5/market/kline":            "v5_market_kline.json",
	"/v5/market/time":             "v5_market_time.json",
	"/v5/user/query-api":          "v5_user_query-api.json",
}

// Options configure a Server.
type Options struct {
	// Now is the server's clock (timestamps, reset times); time.Now when nil.
	Now func() time.Time
	// RSAPublic, when set, verifies X-BAPI-SIGN-TYPE 2 (RSA) signatures.
	RSAPublic *rsa.PublicKey
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	URL string
	srv *httptest.Server
	now func() time.Time
	pub *rsa.PublicKey

	mu         sync.Mutex
	bodies     map[string]map[string]any
	row        map[string]map[string]any // the fixture's first list row, by path
	counts     map[string]int
	total      int
	limitUntil time.Time // answer retCode 10006 until then
	uidUntil   time.Time // answer with X-Bapi-Limit-Status 0 and this reset until then
	ipBan      bool      // answer HTTP 403
	refused    int       // requests answered 10006 or 403
	ws         wsState
}

// NewServer starts a fake on 127.0.0.1, closed when t ends.
func NewServer(t testing.TB, o Options) *Server {
	s := &Server{now: o.Now, pub: o.RSAPublic, bodies: map[string]map[string]any{}, row: map[string]map[string]any{}, counts: map[string]int{}}
	if s.now == nil {
		s.now = time.Now
	}
	for path, name := range served {
		var body map[string]any
		if err := json.Unmarshal(Fixture(name), &body); err != nil {
			panic(err)
		}
		s.bodies[path] = body
		if l := list(body); len(l) > 0 {
			if r, ok := l[0].(map[string]any); ok {
				s.row[path] = clone(r)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	t.Cleanup(s.DropStreams) // first: hijacked connections outlive Close
	return s
}

func clone(m map[string]any) map[string]any {
	var out map[string]any
	b, _ := json.Marshal(m)
	_ = json.Unmarshal(b, &out)
	return out
}

// list is body.result.list (nil when absent).
func list(body map[string]any) []any {
	r, _ := body["result"].(map[string]any)
	l, _ := r["list"].([]any)
	return l
}

func setList(body map[string]any, rows []any) {
	r, _ := body["result"].(map[string]any)
	if r == nil {
		r = map[string]any{}
		body["result"] = r
	}
	r["list"] = rows
}

// Edit changes the decoded body served at path.
func (s *Server) Edit(path string, f func(body map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.bodies[path])
}

// rows sets path's list to copies of the fixture row with fields set.
func (s *Server) rows(path string, rows []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]any, 0, len(rows))
	for _, f := range rows {
		r := clone(s.row[path])
		maps.Copy(r, f)
		out = append(out, r)
	}
	setList(s.bodies[path], out)
}

// SetPositions serves these position rows (fixture row, fields set).
func (s *Server) SetPositions(rows ...map[string]any) { s.rows("/v5/position/list", rows) }

// SetStopOrders serves these conditional-order rows.
func (s *Server) SetStopOrders(rows ...map[string]any) { s.rows("/v5/order/realtime", rows) }

// SetTickers serves these ticker rows.
func (s *Server) SetTickers(rows ...map[string]any) { s.rows("/v5/market/tickers", rows) }

// SetInstruments serves these instruments-info rows.
func (s *Server) SetInstruments(rows ...map[string]any) { s.rows("/v5/market/instruments-info", rows) }

// SetWallet sets fields of the unified account's wallet-balance row.
func (s *Server) SetWallet(fields map[string]any) {
	s.Edit("/v5/account/wallet-balance", func(b map[string]any) {
		maps.Copy(list(b)[0].(map[string]any), fields)
	})
}

// SetMark sets markPrice of symbol in positions and tickers.
func (s *Server) SetMark(symbol, mark string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range []string{"/v5/position/list", "/v5/market/tickers"} {
		for _, r := range list(s.bodies[p]) {
			if m := r.(map[string]any); m["symbol"] == symbol {
				m["markPrice"] = mark
			}
		}
	}
}

// SetLiq sets liqPrice of symbol's positions.
func (s *Server) SetLiq(symbol, liq string) {
	s.Edit("/v5/position/list", func(b map[string]any) {
		for _, r := range list(b) {
			if m := r.(map[string]any); m["symbol"] == symbol {
				m["liqPrice"] = liq
			}
		}
	})
}

// SetKey sets the key's readOnly flag and permission lists (group → list).
func (s *Server) SetKey(readOnly int, perms map[string][]string) {
	s.Edit("/v5/user/query-api", func(b map[string]any) {
		r := b["result"].(map[string]any)
		r["readOnly"] = readOnly
		p := r["permissions"].(map[string]any)
		for g, l := range perms {
			p[g] = l
		}
	})
}

// RateLimit answers every request with retCode 10006 (HTTP 200) and
// X-Bapi-Limit-Reset-Timestamp until.
func (s *Server) RateLimit(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitUntil = until
}

// ExhaustUID answers normally, but says in X-Bapi-Limit-Status that the
// key's budget is used up until the reset time until.
func (s *Server) ExhaustUID(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uidUntil = until
}

// IPBan answers every request with HTTP 403 while on.
func (s *Server) IPBan(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ipBan = on
}

// Count is the number of requests to path; Requests to every path.
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// Requests is the number of requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Counts is the number of requests by path.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// ResetCounts forgets the counts.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts, s.total = map[string]int{}, 0
}

func envelope(code int, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"retCode": code, "retMsg": msg, "result": map[string]any{}, "retExtInfo": map[string]any{}, "time": 0})
	return b
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v5/private", "/v5/public/linear":
		s.serveWS(w, r, r.URL.Path == "/v5/private")
		return
	}
	now := s.now()
	s.mu.Lock()
	s.counts[r.URL.Path]++
	s.total++
	limitUntil, ipBan, uidUntil := s.limitUntil, s.ipBan, s.uidUntil
	if ipBan || now.Before(limitUntil) {
		s.refused++
	}
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	reset := now.Add(time.Second)
	if now.Before(limitUntil) {
		reset = limitUntil
	}
	h.Set("X-Bapi-Limit", "50")
	h.Set("X-Bapi-Limit-Status", "49")
	if now.Before(uidUntil) {
		h.Set("X-Bapi-Limit-Status", "0")
		reset = uidUntil
	}
	h.Set("X-Bapi-Limit-Reset-Timestamp", strconv.FormatInt(reset.UnixMilli(), 10))
	switch {
	case ipBan:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "access too frequent")
		return
	case now.Before(limitUntil):
		w.Header().Set("X-Bapi-Limit-Status", "0")
		w.Write(envelope(10006, "Too many visits!"))
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v5/market/") {
		if code, msg := s.verify(r, now); code != 0 {
			w.Write(envelope(code, msg))
			return
		}
	}
	s.mu.Lock()
	body, ok := s.bodies[r.URL.Path]
	var out []byte
	if ok {
		out = s.filtered(r.URL.Path, body, r)
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Write(out)
}

// filtered is body with its list narrowed as Bybit narrows it: by symbol,
// and for positions and orders by settle coin (the symbol's suffix: USDC
// perpetuals are named …USDC or …PERP), then cut into pages of the
// request's limit (page). s.mu is held.
func (s *Server) filtered(path string, body map[string]any, r *http.Request) []byte {
	q := r.URL.Query()
	sym, settle := q.Get("symbol"), q.Get("settleCoin")
	l := list(body)
	if l == nil || (sym == "" && settle == "") || path == "/v5/market/kline" {
		b, _ := json.Marshal(body)
		return b
	}
	var keep []any
	for _, row := range l {
		m, _ := row.(map[string]any)
		name, _ := m["symbol"].(string)
		switch {
		case sym != "" && name != sym:
		case sym == "" && settle != "" && settleOf(name) != settle:
		default:
			keep = append(keep, row)
		}
	}
	out := maps.Clone(body)
	res := maps.Clone(body["result"].(map[string]any))
	keep, next, ok := page(keep, q.Get("limit"), q.Get("cursor"))
	if !ok {
		return envelope(10001, "params error: cursor is invalid")
	}
	res["list"] = keep
	if keep == nil {
		res["list"] = []any{}
	}
	if _, ok := res["nextPageCursor"]; ok || next != "" {
		res["nextPageCursor"] = next
	}
	out["result"] = res
	b, _ := json.Marshal(out)
	return b
}

// settleOf is the settle coin of a linear contract as Bybit names them:
// …USDT perpetuals and …USDT-26DEC25 futures settle in USDT; …USDC and
// …PERP perpetuals and BTC-26DEC25 futures in USDC.
func settleOf(symbol string) string {
	base, _, dated := strings.Cut(symbol, "-")
	if !strings.HasSuffix(base, "USDT") && (dated || strings.HasSuffix(base, "USDC") || strings.HasSuffix(base, "PERP")) {
		return "USDC"
	}
	return "USDT"
}

// page cuts rows as Bybit pages them: at most limit rows from the cursor
// on, and while rows remain a nextPageCursor that is percent-encoded (as
// Bybit's are: "offset%3A2%2Cbybittest") and must come back as it was sent,
// decoding once to "offset:2,bybittest". ok is false for any other cursor.
func page(rows []any, limit, cursor string) (_ []any, next string, ok bool) {
	from := 0
	if cursor != "" {
		n, found := strings.CutPrefix(cursor, "offset:")
		n, found2 := strings.CutSuffix(n, ",bybittest")
		v, err := strconv.Atoi(n)
		if !found || !found2 || err != nil || v < 0 || v > len(rows) {
			return nil, "", false
		}
		from = v
	}
	rows = rows[from:]
	if n, err := strconv.Atoi(limit); err == nil && n > 0 && n < len(rows) {
		return rows[:n], fmt.Sprintf("offset%%3A%d%%2Cbybittest", from+n), true
	}
	return rows, "", true
}

// verify checks the V5 signature: HMAC-SHA256 hex (or RSA PKCS#1 v1.5
// base64 with X-BAPI-SIGN-TYPE 2) of timestamp + key + recv window (the
// header; "" when absent) + query string, and the timestamp window.
func (s *Server) verify(r *http.Request, now time.Time) (int, string) {
	key := r.Header.Get("X-BAPI-API-KEY")
	if key != Key {
		return 10003, "API key is invalid."
	}
	ts := r.Header.Get("X-BAPI-TIMESTAMP")
	recv := r.Header.Get("X-BAPI-RECV-WINDOW")
	ms, err := strconv.ParseInt(ts, 10, 64)
	window := int64(5000)
	if v, err := strconv.ParseInt(recv, 10, 64); err == nil {
		window = v
	}
	if err != nil || ms < now.UnixMilli()-window || ms >= now.UnixMilli()+1000 {
		return 10002, "The request time exceeds the time window range."
	}
	payload := ts + key + recv + r.URL.RawQuery
	sig := r.Header.Get("X-BAPI-SIGN")
	if r.Header.Get("X-BAPI-SIGN-TYPE") == "2" && s.pub != nil {
		raw, err := base64.StdEncoding.DecodeString(sig)
		sum := sha256.Sum256([]byte(payload))
		if err != nil || rsa.VerifyPKCS1v15(s.pub, crypto.SHA256, sum[:], raw) != nil {
			return 10004, "Error sign, please check your signature generation algorithm."
		}
		return 0, ""
	}
	m := hmac.New(sha256.New, []byte(Secret))
	m.Write([]byte(payload))
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(sig)) {
		return 10004, "Error sign, please check your signature generation algorithm."
	}
	return 0, ""
}
