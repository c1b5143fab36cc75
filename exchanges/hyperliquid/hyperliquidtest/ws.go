package hyperliquidtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The websocket at /ws, as Hyperliquid serves it: the text frame
// "Websocket connection established." first; {"method":"subscribe",
// "subscription":{…}} answered with ws_subscriptionResponse.json carrying
// the request's subscription, then (clearinghouseState, activeAssetCtx)
// the current data at once; {"method":"ping"} answered with ws_pong.json.
// Data frames are the ws_ fixtures with their data taken from the fake's
// account (so REST and websocket agree): clearinghouseState's state is the
// one POST /info serves, activeAssetCtx's markPx the position's mark.
// orderUpdates frames follow AddStop and CancelStops (see pushOrders).
// Tests push with PushMark, PushState and PushLiquidation, and break the
// websocket with DropWS, StopWS and MuteWS.

// wsState is the server's websocket state; its own lock, never held
// across a websocket write.
type wsState struct {
	mu      sync.Mutex
	clients map[*wsClient]bool
	stopped bool // StopWS: upgrades are refused
	mute    bool // MuteWS: nothing is written, pings go unanswered
	dials   int
	pings   int
}

// wsClient is one connection and its subscriptions.
type wsClient struct {
	c      *websocket.Conn
	wmu    sync.Mutex
	users  map[string]bool // clearinghouseState subscriptions
	user   map[string]bool // userEvents subscriptions
	orders map[string]bool // orderUpdates subscriptions
	coins  map[string]bool // activeAssetCtx subscriptions
}

type wsReq struct {
	Method       string          `json:"method"`
	Subscription json.RawMessage `json:"subscription"`
}

type wsSub struct {
	Type string `json:"type"`
	User string `json:"user"`
	Coin string `json:"coin"`
}

// tree decodes JSON generically (numbers kept as written).
func tree(b []byte) any {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		panic("hyperliquidtest: " + err.Error())
	}
	return v
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	st := &s.ws
	st.mu.Lock()
	if st.stopped {
		st.mu.Unlock()
		http.Error(w, "websocket stopped by the test", http.StatusServiceUnavailable)
		return
	}
	st.dials++
	st.mu.Unlock()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	cl := &wsClient{c: c, users: map[string]bool{}, user: map[string]bool{}, orders: map[string]bool{}, coins: map[string]bool{}}
	st.mu.Lock()
	if st.clients == nil {
		st.clients = map[*wsClient]bool{}
	}
	st.clients[cl] = true
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.clients, cl)
		st.mu.Unlock()
		c.CloseNow()
	}()
	ctx := r.Context()
	s.write(cl, []byte("Websocket connection established."))
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		var q wsReq
		if json.Unmarshal(msg, &q) != nil {
			continue
		}
		switch q.Method {
		case "ping":
			st.mu.Lock()
			st.pings++
			st.mu.Unlock()
			s.write(cl, Fixture("ws_pong.json"))
		case "subscribe", "unsubscribe":
			var sub wsSub
			if json.Unmarshal(q.Subscription, &sub) != nil {
				continue
			}
			on := q.Method == "subscribe"
			st.mu.Lock()
			switch sub.Type {
			case "clearinghouseState", "webData2":
				setKey(cl.users, strings.ToLower(sub.User), on)
			case "userEvents", "user":
				setKey(cl.user, strings.ToLower(sub.User), on)
			case "orderUpdates":
				setKey(cl.orders, strings.ToLower(sub.User), on)
			case "activeAssetCtx":
				setKey(cl.coins, sub.Coin, on)
			}
			st.mu.Unlock()
			resp := tree(Fixture("ws_subscriptionResponse.json")).(map[string]any)
			data := resp["data"].(map[string]any)
			data["method"], data["subscription"] = q.Method, tree(q.Subscription)
			b, _ := json.Marshal(resp)
			s.write(cl, b)
			if !on {
				continue
			}
			switch sub.Type {
			case "clearinghouseState":
				s.write(cl, s.stateFrame(sub.User))
			case "activeAssetCtx":
				if f := s.ctxFrame(sub.Coin); f != nil {
					s.write(cl, f)
				}
			}
		}
	}
}

func setKey(m map[string]bool, k string, on bool) {
	if on {
		m[k] = true
	} else {
		delete(m, k)
	}
}

// write sends one frame unless muted; a failed write ends nothing here
// (the read loop sees the connection go).
func (s *Server) write(cl *wsClient, b []byte) {
	s.ws.mu.Lock()
	mute := s.ws.mute
	s.ws.mu.Unlock()
	if mute {
		return
	}
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cl.c.Write(ctx, websocket.MessageText, b)
}

// stateFrame is ws_clearinghouseState.json for user, its state the one
// POST /info clearinghouseState serves now.
func (s *Server) stateFrame(user string) []byte {
	f := tree(Fixture("ws_clearinghouseState.json")).(map[string]any)
	data := f["data"].(map[string]any)
	s.mu.Lock()
	defer s.mu.Unlock()
	data["user"] = user
	data["clearinghouseState"] = s.docs["clearinghouseState"].decoded()
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

// ctxFrame is ws_activeAssetCtx.json for coin: markPx the mark of the
// account's coin position (positionValue / |szi|) or the asset context's,
// funding the asset context's; nil when the fake knows no mark of coin.
func (s *Server) ctxFrame(coin string) []byte {
	f := tree(Fixture("ws_activeAssetCtx.json")).(map[string]any)
	data := f["data"].(map[string]any)
	ctx := data["ctx"].(map[string]any)
	s.mu.Lock()
	defer s.mu.Unlock()
	data["coin"] = coin
	mark, funding := "", ""
	if c := s.assetCtx(coin); c != nil {
		if v, ok := c["markPx"].(string); ok {
			mark = v
		}
		if v, ok := c["funding"].(string); ok {
			funding = v
		}
	}
	for _, p := range s.positions(coin) {
		szi, ok1 := float(p["szi"])
		pv, ok2 := float(p["positionValue"])
		if ok1 && ok2 && szi != 0 {
			mark = num(pv / math.Abs(szi))
		}
	}
	if mark == "" {
		return nil
	}
	ctx["markPx"] = mark
	if funding != "" {
		ctx["funding"] = funding
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

// assetCtx is coin's decoded metaAndAssetCtxs context. s.mu is held.
func (s *Server) assetCtx(coin string) map[string]any {
	pair, _ := s.docs["metaAndAssetCtxs"].decoded().([]any)
	if len(pair) != 2 {
		return nil
	}
	meta, _ := pair[0].(map[string]any)
	uni, _ := meta["universe"].([]any)
	ctxs, _ := pair[1].([]any)
	for i, u := range uni {
		if m, _ := u.(map[string]any); m != nil && m["name"] == coin && i < len(ctxs) {
			c, _ := ctxs[i].(map[string]any)
			return c
		}
	}
	return nil
}

// each calls f for every connection (a copy of the set).
func (s *Server) each(f func(*wsClient)) {
	s.ws.mu.Lock()
	cls := make([]*wsClient, 0, len(s.ws.clients))
	for cl := range s.ws.clients {
		cls = append(cls, cl)
	}
	s.ws.mu.Unlock()
	for _, cl := range cls {
		f(cl)
	}
}

// PushMark moves coin's mark to px (SetMark: REST answers move too) and
// pushes activeAssetCtx to the connections subscribed to coin. It returns
// how many got it.
func (s *Server) PushMark(coin string, px float64) (int, error) {
	if err := s.SetMark(coin, px); err != nil {
		return 0, err
	}
	f := s.ctxFrame(coin)
	n := 0
	s.each(func(cl *wsClient) {
		s.ws.mu.Lock()
		on := cl.coins[coin]
		s.ws.mu.Unlock()
		if on {
			s.write(cl, f)
			n++
		}
	})
	return n, nil
}

// PushState pushes the current clearinghouseState to every
// clearinghouseState subscriber, and returns how many got it.
func (s *Server) PushState() int {
	n := 0
	s.each(func(cl *wsClient) {
		s.ws.mu.Lock()
		var users []string
		for u := range cl.users {
			users = append(users, u)
		}
		s.ws.mu.Unlock()
		for _, u := range users {
			s.write(cl, s.stateFrame(u))
			n++
		}
	})
	return n
}

// PushLiquidation pushes ws_userEvents_funding_liquidation.json as a
// "user" frame with liquidated_user set to user, to every userEvents
// subscriber of user, and returns how many got it.
func (s *Server) PushLiquidation(user string) int {
	f := map[string]any{"channel": "user", "data": tree(Fixture("ws_userEvents_funding_liquidation.json"))}
	f["data"].(map[string]any)["liquidation"].(map[string]any)["liquidated_user"] = user
	b, _ := json.Marshal(f)
	n := 0
	s.each(func(cl *wsClient) {
		s.ws.mu.Lock()
		on := cl.user[strings.ToLower(user)]
		s.ws.mu.Unlock()
		if on {
			s.write(cl, b)
			n++
		}
	})
	return n
}

// orderFields are the fields of an orderUpdates order (the official SDKs'
// WsBasicOrder / BasicOrder): no trigger, order type or reduce-only flag.
var orderFields = []string{"coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz", "cloid"}

// pushOrders pushes one orderUpdates frame with rows (frontendOpenOrders
// rows of the fake) at status to every orderUpdates subscriber. There is
// no recorded orderUpdates frame: its shape is the official SDKs'
// ({"channel":"orderUpdates","data":[{"order":{…},"status","statusTimestamp"}]}),
// its orders the rows cut to the fields those SDKs name.
func (s *Server) pushOrders(rows []map[string]any, status string) {
	s.mu.Lock()
	at := s.opts.Now().UnixMilli()
	var data []any
	for _, r := range rows {
		o := map[string]any{}
		for _, k := range orderFields {
			if v, ok := r[k]; ok && v != nil {
				o[k] = v
			}
		}
		data = append(data, map[string]any{"order": o, "status": status, "statusTimestamp": at})
	}
	s.mu.Unlock()
	b, err := json.Marshal(map[string]any{"channel": "orderUpdates", "data": data})
	if err != nil {
		panic(err)
	}
	s.each(func(cl *wsClient) {
		s.ws.mu.Lock()
		on := len(cl.orders) > 0
		s.ws.mu.Unlock()
		if on {
			s.write(cl, b)
		}
	})
}

// RemovePosition takes coin's position out of the account (closed), as
// both POST /info and the next PushState serve it.
func (s *Server) RemovePosition(coin string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.docs["clearinghouseState"].decoded().(map[string]any)
	aps, _ := st["assetPositions"].([]any)
	kept := aps[:0:0]
	for _, ap := range aps {
		m, _ := ap.(map[string]any)
		p, _ := m["position"].(map[string]any)
		if p != nil && p["coin"] == coin {
			continue
		}
		kept = append(kept, ap)
	}
	if len(kept) == len(aps) {
		return fmt.Errorf("hyperliquidtest: no %s position in the account", coin)
	}
	st["assetPositions"] = kept
	return nil
}

// DropWS closes every websocket connection (clients may reconnect).
func (s *Server) DropWS() {
	s.each(func(cl *wsClient) { cl.c.CloseNow() })
}

// StopWS refuses websocket upgrades (503) and closes every connection,
// until StartWS.
func (s *Server) StopWS() {
	s.ws.mu.Lock()
	s.ws.stopped = true
	s.ws.mu.Unlock()
	s.DropWS()
}

// StartWS accepts websocket upgrades again.
func (s *Server) StartWS() {
	s.ws.mu.Lock()
	s.ws.stopped = false
	s.ws.mu.Unlock()
}

// MuteWS makes the websocket silent (on): connections stay open but no
// frame is written, not even a pong — a half-open connection.
func (s *Server) MuteWS(on bool) {
	s.ws.mu.Lock()
	s.ws.mute = on
	s.ws.mu.Unlock()
}

// WSStats are the websocket's counters.
type WSStats struct {
	Conns int // open now
	Dials int // upgrades accepted since the start
	Pings int // pings received
	Users int // distinct users with a clearinghouseState subscription now
}

// WS reports the websocket's counters.
func (s *Server) WS() WSStats {
	s.ws.mu.Lock()
	defer s.ws.mu.Unlock()
	users := map[string]bool{}
	for cl := range s.ws.clients {
		for u := range cl.users {
			users[u] = true
		}
	}
	return WSStats{Conns: len(s.ws.clients), Dials: s.ws.dials, Pings: s.ws.pings, Users: len(users)}
}

// Requests is the number of POST /info requests answered (429s not
// counted).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}
