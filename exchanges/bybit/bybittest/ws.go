package bybittest

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The fake's websocket endpoints, on the same server as the REST API
// (stream_endpoint = the server's URL with ws://): /v5/private answers
// auth (verifying the signature), subscribe and ping with the fixture
// frames as they are; /v5/public/linear answers tickers.{SYMBOL}
// subscriptions with a snapshot (ws_tickers_linear.json, the symbol's REST
// ticker row's mark and funding set) and pings with ws_pong_linear.json.
// Tests push frames (Push…), drop every connection (DropStreams), refuse
// new ones (RefuseStreams) or silence them (MuteStreams). Websocket
// traffic is not counted in Requests.

type wsPeer struct {
	c       *websocket.Conn
	private bool
	mu      sync.Mutex
	authed  bool
	topics  map[string]bool
}

func (p *wsPeer) has(topic string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.topics[topic]
}

type wsState struct {
	peers  map[*wsPeer]struct{}
	refuse bool
	mute   bool
	auths  int // auth requests answered
}

func decode(name string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(Fixture(name), &m); err != nil {
		panic(err)
	}
	return m
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, private bool) {
	s.mu.Lock()
	refuse := s.ws.refuse
	s.mu.Unlock()
	if refuse {
		http.Error(w, "streams refused by the test", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	p := &wsPeer{c: c, private: private, topics: map[string]bool{}}
	s.mu.Lock()
	if s.ws.peers == nil {
		s.ws.peers = map[*wsPeer]struct{}{}
	}
	s.ws.peers[p] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.ws.peers, p)
		s.mu.Unlock()
		c.CloseNow()
	}()
	ctx := context.Background()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			Op   string `json:"op"`
			Args []any  `json:"args"`
		}
		if json.Unmarshal(b, &req) != nil {
			continue
		}
		s.mu.Lock()
		mute := s.ws.mute
		s.mu.Unlock()
		switch req.Op {
		case "ping":
			if mute {
				continue
			}
			name := "ws_pong_linear.json"
			if private {
				name = "ws_pong_private.json"
			}
			c.Write(ctx, websocket.MessageText, Fixture(name))
		case "auth":
			s.mu.Lock()
			s.ws.auths++
			s.mu.Unlock()
			if msg := s.verifyWS(req.Args); msg != "" {
				f := decode("ws_auth_ok.json")
				f["success"], f["ret_msg"] = false, msg
				send(ctx, c, f)
				continue
			}
			p.mu.Lock()
			p.authed = true
			p.mu.Unlock()
			c.Write(ctx, websocket.MessageText, Fixture("ws_auth_ok.json"))
		case "subscribe", "unsubscribe":
			p.mu.Lock()
			ok := !private || p.authed
			p.mu.Unlock()
			// A public topic counts as subscribed (Subscribers, Push…)
			// only once its snapshot is on the wire: a delta pushed before
			// would reach the client first, which Bybit never does. A
			// private one counts before its ack (the client trusts the
			// stream from the ack on).
			setTopics := func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				for _, a := range req.Args {
					if t, _ := a.(string); t != "" {
						p.topics[t] = req.Op == "subscribe"
					}
				}
			}
			if ok && (private || req.Op == "unsubscribe") {
				setTopics()
			}
			ack := decode("ws_auth_ok.json")
			ack["op"], ack["success"] = req.Op, ok
			if !ok {
				ack["ret_msg"] = "Request not authorized"
			}
			send(ctx, c, ack)
			if ok && !private && req.Op == "subscribe" {
				for _, a := range req.Args {
					if t, _ := a.(string); strings.HasPrefix(t, "tickers.") {
						send(ctx, c, s.tickerSnapshot(strings.TrimPrefix(t, "tickers.")))
					}
				}
			}
			if ok && !private && req.Op == "subscribe" {
				setTopics()
			}
		}
	}
}

func send(ctx context.Context, c *websocket.Conn, frame map[string]any) {
	b, _ := json.Marshal(frame)
	c.Write(ctx, websocket.MessageText, b)
}

// verifyWS checks an auth request's args [key, expires, signature]: the
// key, an expiry not past, and hex HMAC-SHA256 (or base64 RSA-SHA256 with
// Options.RSAPublic) of "GET/realtime"+expires. It returns Bybit's
// complaint, "" when good.
func (s *Server) verifyWS(args []any) string {
	if len(args) != 3 {
		return "Params Error"
	}
	key, _ := args[0].(string)
	exp, _ := args[1].(float64)
	sig, _ := args[2].(string)
	if key != Key {
		return "Invalid apikey"
	}
	if int64(exp) <= s.now().UnixMilli() {
		return "Params Error: expires is past"
	}
	payload := fmt.Sprintf("GET/realtime%d", int64(exp))
	if s.pub != nil {
		raw, err := base64.StdEncoding.DecodeString(sig)
		sum := sha256.Sum256([]byte(payload))
		if err == nil && rsa.VerifyPKCS1v15(s.pub, crypto.SHA256, sum[:], raw) == nil {
			return ""
		}
	}
	m := hmac.New(sha256.New, []byte(Secret))
	m.Write([]byte(payload))
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(sig)) {
		return "Invalid sign"
	}
	return ""
}

// tickerSnapshot is ws_tickers_linear.json for symbol, with the mark and
// funding of the symbol's REST ticker row.
func (s *Server) tickerSnapshot(symbol string) map[string]any {
	f := decode("ws_tickers_linear.json")
	f["topic"] = "tickers." + symbol
	f["ts"] = s.now().UnixMilli()
	d := f["data"].(map[string]any)
	d["symbol"] = symbol
	s.mu.Lock()
	for _, r := range list(s.bodies["/v5/market/tickers"]) {
		if m, _ := r.(map[string]any); m["symbol"] == symbol {
			for _, k := range []string{"markPrice", "fundingRate", "nextFundingTime", "fundingIntervalHour"} {
				if v, ok := m[k]; ok {
					d[k] = v
				}
			}
		}
	}
	s.mu.Unlock()
	return f
}

// push sends frame to every peer subscribed to topic and returns how many.
func (s *Server) push(topic string, frame map[string]any) int {
	s.mu.Lock()
	if s.ws.mute {
		s.mu.Unlock()
		return 0
	}
	var to []*wsPeer
	for p := range s.ws.peers {
		if p.has(topic) {
			to = append(to, p)
		}
	}
	s.mu.Unlock()
	b, _ := json.Marshal(frame)
	for _, p := range to {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.c.Write(ctx, websocket.MessageText, b)
		cancel()
	}
	return len(to)
}

// rowsOf sets frame's data to copies of its first row with fields set.
func rowsOf(frame map[string]any, rows []map[string]any) map[string]any {
	first := frame["data"].([]any)[0].(map[string]any)
	out := make([]any, 0, len(rows))
	for _, f := range rows {
		r := clone(first)
		maps.Copy(r, f)
		out = append(out, r)
	}
	frame["data"] = out
	return frame
}

// PushPosition sends a position message (ws_position.json's row with
// fields set, one per row) to the private subscribers; it returns how many.
func (s *Server) PushPosition(rows ...map[string]any) int {
	return s.push("position", rowsOf(decode("ws_position.json"), rows))
}

// PushWallet sends a wallet message (ws_wallet.json with fields set).
func (s *Server) PushWallet(fields map[string]any) int {
	return s.push("wallet", rowsOf(decode("ws_wallet.json"), []map[string]any{fields}))
}

// PushOrder sends an order message (ws_order.json's row with fields set).
func (s *Server) PushOrder(rows ...map[string]any) int {
	return s.push("order", rowsOf(decode("ws_order.json"), rows))
}

// PushTicker sends a delta of tickers.{symbol} carrying only fields
// (ws_tickers_linear.json's envelope, type "delta").
func (s *Server) PushTicker(symbol string, fields map[string]any) int {
	f := decode("ws_tickers_linear.json")
	f["topic"], f["type"], f["ts"] = "tickers."+symbol, "delta", s.now().UnixMilli()
	d := map[string]any{"symbol": symbol}
	maps.Copy(d, fields)
	f["data"] = d
	return s.push("tickers."+symbol, f)
}

// PushMark sets symbol's mark in the REST bodies (SetMark) and pushes it
// as a ticker delta.
func (s *Server) PushMark(symbol, mark string) int {
	s.SetMark(symbol, mark)
	return s.PushTicker(symbol, map[string]any{"markPrice": mark})
}

// Subscribers is the number of connections subscribed to topic (for a
// public topic: whose snapshot was sent, so a Push… now follows it).
func (s *Server) Subscribers(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p := range s.ws.peers {
		if p.has(topic) {
			n++
		}
	}
	return n
}

// WSAuths is the number of private auth requests answered.
func (s *Server) WSAuths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws.auths
}

// DropStreams closes every websocket connection (clients reconnect).
func (s *Server) DropStreams() {
	s.mu.Lock()
	peers := make([]*wsPeer, 0, len(s.ws.peers))
	for p := range s.ws.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.c.CloseNow()
	}
}

// RefuseStreams answers new websocket connections with HTTP 503 while
// on; turning it on also drops the open ones.
func (s *Server) RefuseStreams(on bool) {
	s.mu.Lock()
	s.ws.refuse = on
	s.mu.Unlock()
	if on {
		s.DropStreams()
	}
}

// MuteStreams stops pongs and pushes while on: connections stay open but
// silent (a half-open connection, as the client sees it).
func (s *Server) MuteStreams(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ws.mute = on
}
