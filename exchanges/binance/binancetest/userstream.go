package binancetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The user-data streams, as Binance serves them: a listen key from
// POST /fapi/v1/listenKey (/dapi/v1/listenKey on COIN-M; API key only,
// weight 1, the same key again while one is active), kept alive by PUT
// (-1125 once it is gone) and closed by DELETE; the stream at
// /private/ws?listenKey=… (USDⓈ-M) or /ws/<listenKey> (COIN-M). The
// server pings every connection (every 3 minutes, like Binance, unless
// SetUserPing says otherwise). Tests push frames with PushUser, built from
// the fixtures by the event builders below.

// DefaultUserPing is how often Binance pings a user-data connection.
const DefaultUserPing = 3 * time.Minute

// userStreams is the server's user-data state; its own lock, never held
// across a websocket write.
type userStreams struct {
	mu    sync.Mutex
	key   string // the active listen key, "" when none
	n     int    // keys handed out
	conns map[*websocket.Conn]string
	ping  time.Duration
	// stopped: StopUserStreams; upgrades are refused until StartUserStreams.
	stopped bool
	// created counts POSTs that made a new key; kept counts PUTs answered;
	// pings counts pings the client answered.
	created, kept, pings int
}

// serveListenKey answers POST, PUT and DELETE /fapi/v1/listenKey and
// /dapi/v1/listenKey. They need the API key, not a signature.
func (s *Server) serveListenKey(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-MBX-APIKEY") != s.opts.Key {
		writeError(w, http.StatusUnauthorized, -2015, "Invalid API-key, IP, or permissions for action.")
		return
	}
	u := &s.user
	u.mu.Lock()
	defer u.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		if u.key == "" {
			u.n++
			u.created++
			// 64 characters, like Binance's.
			u.key = fmt.Sprintf("pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8%04d", u.n)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"listenKey":%q}`, u.key)
	case http.MethodPut, http.MethodDelete:
		r.ParseForm()
		k := r.Form.Get("listenKey")
		if k == "" {
			k = r.URL.Query().Get("listenKey")
		}
		// go-binance sends the key in the body of PUT and DELETE; a
		// request without one refers to the account's key, as on Binance.
		if u.key == "" || (k != "" && k != u.key) {
			writeError(w, http.StatusBadRequest, -1125, "This listenKey does not exist.")
			return
		}
		if r.Method == http.MethodPut {
			u.kept++
		} else {
			u.key = ""
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	default:
		writeError(w, http.StatusMethodNotAllowed, -1000, "Method not allowed.")
	}
}

// serveUser accepts a user-data stream for an active listen key.
func (s *Server) serveUser(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("listenKey")
	if strings.HasPrefix(r.URL.Path, "/ws/") {
		key = strings.TrimPrefix(r.URL.Path, "/ws/")
	} else if r.URL.Path != "/private/ws" {
		http.NotFound(w, r)
		return
	}
	u := &s.user
	u.mu.Lock()
	ok, stopped := key != "" && key == u.key, u.stopped
	u.mu.Unlock()
	if stopped {
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if !ok {
		writeError(w, http.StatusBadRequest, -1125, "This listenKey does not exist.")
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ctx := c.CloseRead(context.Background()) // answers pings and pongs, ends with the connection
	u.mu.Lock()
	if u.stopped { // StopUserStreams came during the handshake
		u.mu.Unlock()
		c.CloseNow()
		return
	}
	if u.conns == nil {
		u.conns = map[*websocket.Conn]string{}
	}
	u.conns[c] = key
	every := u.ping
	u.mu.Unlock()
	if every <= 0 {
		every = DefaultUserPing
	}
	go func() {
		defer func() {
			u.mu.Lock()
			delete(u.conns, c)
			u.mu.Unlock()
			c.CloseNow()
		}()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-t.C:
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Ping(pctx)
				cancel()
				if err != nil {
					return
				}
				u.mu.Lock()
				u.pings++
				u.mu.Unlock()
			}
		}
	}()
}

// SetUserPing sets how often the server pings user-data connections
// opened from now on.
func (s *Server) SetUserPing(d time.Duration) {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	s.user.ping = d
}

// UserConnections is the number of open user-data connections.
func (s *Server) UserConnections() int {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	return len(s.user.conns)
}

// ListenKeys is how many listen keys the server has created and how many
// keepalives (PUT) it has answered.
func (s *Server) ListenKeys() (created, kept int) {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	return s.user.created, s.user.kept
}

// UserPings is the number of server pings the clients answered.
func (s *Server) UserPings() int {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	return s.user.pings
}

// ListenKey is the active listen key, "" when none.
func (s *Server) ListenKey() string {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	return s.user.key
}

// PushUser writes body, as it is (malformed or not), as one text frame to
// every user-data connection.
func (s *Server) PushUser(body string) {
	s.pushUser(body, "")
}

// pushUser writes body to the connections of key ("" for all).
func (s *Server) pushUser(body, key string) {
	s.user.mu.Lock()
	var cs []*websocket.Conn
	for c, k := range s.user.conns {
		if key == "" || k == key {
			cs = append(cs, c)
		}
	}
	s.user.mu.Unlock()
	for _, c := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Write(ctx, websocket.MessageText, []byte(body))
		cancel()
	}
}

// DropUserStreams closes every user-data connection abruptly (no close
// frame), as a network failure would.
func (s *Server) DropUserStreams() {
	s.user.mu.Lock()
	var cs []*websocket.Conn
	for c := range s.user.conns {
		cs = append(cs, c)
	}
	s.user.mu.Unlock()
	for _, c := range cs {
		c.CloseNow()
	}
}

// StopUserStreams makes the user-data streams dead, as when the stream
// servers are unreachable: open connections are dropped abruptly and
// upgrades are refused with 503 until StartUserStreams. Listen keys and
// the REST API are served as before.
func (s *Server) StopUserStreams() {
	s.user.mu.Lock()
	s.user.stopped = true
	s.user.mu.Unlock()
	s.DropUserStreams()
}

// StartUserStreams serves the user-data streams again after
// StopUserStreams.
func (s *Server) StartUserStreams() {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	s.user.stopped = false
}

// ExpireListenKey does what Binance does when a listen key lapses: it
// sends listenKeyExpired on the key's connections (E as a string, as
// Binance's current docs show it) and forgets the key, so that a
// keepalive gets -1125 and the next POST creates a new key. The
// connections stay open, as on Binance, where they fall silent.
func (s *Server) ExpireListenKey() {
	s.user.mu.Lock()
	key := s.user.key
	s.user.key = ""
	s.user.mu.Unlock()
	if key == "" {
		return
	}
	s.pushUser(fmt.Sprintf(`{"e":"listenKeyExpired","E":"%d","listenKey":%q}`, s.opts.Now().UnixMilli(), key), key)
}

// LapseListenKey forgets the listen key without a word, as when a key
// lapses and its listenKeyExpired is lost: the next keepalive gets -1125.
func (s *Server) LapseListenKey() {
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	s.user.key = ""
}

// coinm reports whether the server holds a COIN-M account.
func (s *Server) coinm() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.data.bodies["/dapi/v1/positionRisk"]
	return ok
}

// Balance is one balance row of an ACCOUNT_UPDATE ("B"): wallet balance
// (wb), cross wallet balance (cw) and balance change (bc).
type Balance struct {
	Asset, Wallet, CrossWallet, Change string
}

// PositionUpdate is one position row of an ACCOUNT_UPDATE ("P").
type PositionUpdate struct {
	Symbol, PositionSide string // ps: BOTH, LONG or SHORT
	// Amount is pa (signed; "0" closes), Entry ep, UnrealizedPnL up,
	// MarginType mt ("cross" or "isolated"), IsolatedWallet iw.
	Amount, Entry, UnrealizedPnL, MarginType, IsolatedWallet string
}

// AccountUpdate is an ACCOUNT_UPDATE frame: ws_ACCOUNT_UPDATE.json (or
// ws_dapi_ACCOUNT_UPDATE.json on COIN-M) with its reason, balances and
// positions replaced, each row built on the fixture's first row of its
// kind, and E and T at the server clock.
func (s *Server) AccountUpdate(reason string, balances []Balance, positions []PositionUpdate) string {
	name := "ws_ACCOUNT_UPDATE.json"
	if s.coinm() {
		name = "ws_dapi_ACCOUNT_UPDATE.json"
	}
	ev := decode(Fixture(name))
	a := ev["a"].(map[string]any)
	bTmpl := a["B"].([]any)[0].(map[string]any)
	pTmpl := a["P"].([]any)[0].(map[string]any)
	bs := []any{}
	for _, b := range balances {
		row := clone(bTmpl)
		row["a"], row["wb"], row["cw"], row["bc"] = b.Asset, or(b.Wallet, "0"), or(b.CrossWallet, "0"), or(b.Change, "0")
		bs = append(bs, row)
	}
	ps := []any{}
	for _, p := range positions {
		row := clone(pTmpl)
		row["s"], row["ps"], row["pa"] = p.Symbol, or(p.PositionSide, "BOTH"), or(p.Amount, "0")
		row["ep"], row["up"], row["mt"], row["iw"] = or(p.Entry, "0"), or(p.UnrealizedPnL, "0"), or(p.MarginType, "cross"), or(p.IsolatedWallet, "0")
		ps = append(ps, row)
	}
	a["m"], a["B"], a["P"] = reason, bs, ps
	return s.stamp(ev)
}

// MarginCall is a MARGIN_CALL frame: ws_MARGIN_CALL.json (COIN-M:
// ws_dapi_MARGIN_CALL.json) as it is but for E, at the server clock.
func (s *Server) MarginCall() string {
	name := "ws_MARGIN_CALL.json"
	if s.coinm() {
		name = "ws_dapi_MARGIN_CALL.json"
	}
	return s.stamp(decode(Fixture(name)))
}

// OrderUpdate is an ORDER_TRADE_UPDATE frame for o with status (NEW,
// CANCELED, FILLED, …; x, the execution type, follows it): go-binance's
// example (ws_ORDER_TRADE_UPDATE.json, ws_dapi_ORDER_TRADE_UPDATE.json on
// COIN-M) with o's fields put in.
func (s *Server) OrderUpdate(o Order, status string) string {
	name := "ws_ORDER_TRADE_UPDATE.json"
	if s.coinm() {
		name = "ws_dapi_ORDER_TRADE_UPDATE.json"
	}
	ev := decode(Fixture(name))
	ord := ev["o"].(map[string]any)
	x := status
	if status == "FILLED" || status == "PARTIALLY_FILLED" {
		x = "TRADE"
	}
	ord["s"], ord["S"], ord["ps"], ord["o"], ord["ot"] = o.Symbol, o.Side, or(o.PositionSide, "BOTH"), o.Type, o.Type
	ord["i"], ord["x"], ord["X"] = json.Number(itoa(o.ID)), x, status
	ord["q"], ord["sp"], ord["R"], ord["cp"] = or(o.Quantity, "0"), or(o.Trigger, "0"), o.ReduceOnly, o.ClosePosition
	ord["z"], ord["l"] = "0", "0"
	if o.Activate != "" {
		ord["AP"] = o.Activate
	} else {
		delete(ord, "AP")
	}
	if o.Rate != "" {
		ord["cr"] = o.Rate
	} else {
		delete(ord, "cr")
	}
	return s.stamp(ev)
}

// AlgoUpdate is an ALGO_UPDATE frame (USDⓈ-M only) for o with algo status
// (NEW, CANCELED, TRIGGERED, FINISHED, …): ws_ALGO_UPDATE.json with o's
// fields put in (aid is o.ID).
func (s *Server) AlgoUpdate(o Order, status string) string {
	ev := decode(Fixture("ws_ALGO_UPDATE.json"))
	ord := ev["o"].(map[string]any)
	ord["aid"], ord["o"], ord["s"], ord["S"], ord["ps"] = json.Number(itoa(o.ID)), o.Type, o.Symbol, o.Side, or(o.PositionSide, "BOTH")
	ord["q"], ord["X"], ord["tp"], ord["R"], ord["cp"], ord["rm"] = or(o.Quantity, "0"), status, or(o.Trigger, "0"), o.ReduceOnly, o.ClosePosition, ""
	return s.stamp(ev)
}

// LiquidationFill liquidates the position of symbol on positionSide with
// Liquidate (it leaves positionRisk and its forced order joins
// forceOrders) and returns the ORDER_TRADE_UPDATE frame of that forced
// order's fill, as Binance pushes it: go-binance's example with the forced
// order's orderId, clientOrderId ("autoclose-…"), side, quantity and
// price, order type LIQUIDATION, execution type CALCULATED, FILLED.
// orderID is the forced order's id, the one forceOrders reports.
func (s *Server) LiquidationFill(symbol, positionSide string) (frame string, orderID int64, err error) {
	id, err := s.Liquidate(symbol, positionSide)
	if err != nil {
		return "", 0, err
	}
	forcePath, name := "/fapi/v1/forceOrders", "ws_ORDER_TRADE_UPDATE.json"
	if s.coinm() {
		forcePath, name = "/dapi/v1/forceOrders", "ws_dapi_ORDER_TRADE_UPDATE.json"
	}
	var fo struct {
		ClientOrderID string `json:"clientOrderId"`
		Side          string `json:"side"`
		AvgPrice      string `json:"avgPrice"`
		ExecutedQty   string `json:"executedQty"`
		Time          int64  `json:"time"`
	}
	for _, r := range rowsOf(s.Body(forcePath)) {
		var o struct {
			OrderID int64 `json:"orderId"`
		}
		if json.Unmarshal(r, &o) == nil && o.OrderID == id {
			json.Unmarshal(r, &fo)
		}
	}
	ev := decode(Fixture(name))
	ord := ev["o"].(map[string]any)
	ord["s"], ord["c"], ord["S"], ord["ps"], ord["o"], ord["ot"] = symbol, fo.ClientOrderID, fo.Side, positionSide, "LIQUIDATION", "LIQUIDATION"
	ord["i"], ord["x"], ord["X"], ord["f"] = json.Number(strconv.FormatInt(id, 10)), "CALCULATED", "FILLED", "IOC"
	ord["q"], ord["z"], ord["l"], ord["p"], ord["ap"], ord["L"], ord["sp"] = fo.ExecutedQty, fo.ExecutedQty, fo.ExecutedQty, fo.AvgPrice, fo.AvgPrice, fo.AvgPrice, "0"
	ord["T"], ord["R"], ord["cp"] = json.Number(strconv.FormatInt(fo.Time, 10)), false, false
	delete(ord, "AP")
	delete(ord, "cr")
	return s.stamp(ev), id, nil
}

// stamp sets E (and T where the event has one) to the server clock and
// encodes ev.
func (s *Server) stamp(ev map[string]any) string {
	now := json.Number(strconv.FormatInt(s.opts.Now().UnixMilli(), 10))
	ev["E"] = now
	if _, ok := ev["T"]; ok {
		ev["T"] = now
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic("binancetest: " + err.Error())
	}
	return string(b)
}

// decode reads a fixture event keeping its numbers as they are written.
func decode(body string) map[string]any {
	d := json.NewDecoder(bytes.NewReader([]byte(body)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic("binancetest: fixture: " + err.Error())
	}
	return m
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
