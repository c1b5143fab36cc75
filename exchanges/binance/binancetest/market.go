package binancetest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The mark-price streams, served on the same 127.0.0.1 server as the REST
// API (ws.go routes the upgrades here):
//
//   - USDⓈ-M combined: /market/stream?streams=btcusdt@markPrice@1s/…
//     (also /stream?streams=…), frames {"stream":"…","data":{…}};
//   - raw: /ws/<symbol>@markPrice (COIN-M, go-binance's delivery package)
//     and /market/ws/<symbol>@markPrice[@1s], frames {…}.
//
// Every frame is the shared fixture ws_markPriceUpdate.json with s, p, E, r
// and T substituted through JSON; its other fields stay as they are. A
// symbol never given a price is served at the fixture's. A new connection
// gets its symbols' current marks at once (Binance sends the first within
// the stream's period), then every period again: 1 s for @1s streams, 3 s
// for the others. The server pings every connection every 2 s and drops it
// when no pong comes within 5 s.

// Stream periods and the server's pings.
const (
	markPeriod1s    = time.Second
	markPeriod3s    = 3 * time.Second
	marketPingEvery = 2 * time.Second
	marketWriteWait = 5 * time.Second
)

// market is one Server's mark-price stream state.
type market struct {
	mu       sync.Mutex
	conns    map[*marketConn]struct{}
	marks    map[string]markValue // by upper-case symbol
	template map[string]json.RawMessage
	stopped  bool // StopMarket: refuse upgrades, no ticks
	muted    bool // MuteMarket: connections kept, no frames
	attempts int
	lastE    int64
}

type markValue struct {
	price, rate string
	next        int64 // ms
}

// marketConn is one open stream connection.
type marketConn struct {
	combined bool
	streams  []string          // as requested
	symbols  map[string]string // upper-case symbol → stream
	out      chan []byte       // frames in E order, written by the handler
	kill     chan struct{}     // closed to drop the connection abruptly
	killOnce sync.Once
}

func (c *marketConn) drop() { c.killOnce.Do(func() { close(c.kill) }) }

// markets holds each Server's market state; the Server type keeps none of
// its own so that this file stays apart from server.go.
var markets = struct {
	sync.Mutex
	m map[*Server]*market
}{m: map[*Server]*market{}}

// marketState is s's market, created (with its ticker) on first use and
// dropped when s closes.
func (s *Server) marketState() *market {
	markets.Lock()
	defer markets.Unlock()
	if m := markets.m[s]; m != nil {
		return m
	}
	m := &market{
		conns: map[*marketConn]struct{}{},
		marks: map[string]markValue{},
	}
	if err := json.Unmarshal([]byte(Fixture("ws_markPriceUpdate.json")), &m.template); err != nil {
		panic("binancetest: ws_markPriceUpdate.json: " + err.Error())
	}
	markets.m[s] = m
	go m.tick(s.done, func() {
		markets.Lock()
		delete(markets.m, s)
		markets.Unlock()
	})
	return m
}

// tick re-sends the current marks every stream period until done.
func (m *market) tick(done <-chan struct{}, cleanup func()) {
	defer cleanup()
	t1 := time.NewTicker(markPeriod1s)
	defer t1.Stop()
	t3 := time.NewTicker(markPeriod3s)
	defer t3.Stop()
	for {
		var oneSecond bool
		select {
		case <-done:
			return
		case <-t1.C:
			oneSecond = true
		case <-t3.C:
		}
		m.mu.Lock()
		if !m.stopped && !m.muted {
			e := m.eventTimeLocked()
			for c := range m.conns {
				for sym, stream := range c.symbols {
					if strings.HasSuffix(stream, "@1s") == oneSecond {
						m.queueLocked(c, m.frameLocked(c, sym, stream, e))
					}
				}
			}
		}
		m.mu.Unlock()
	}
}

// queueLocked hands a frame to c's writer; a connection that cannot keep
// up loses frames (Binance would drop it).
func (m *market) queueLocked(c *marketConn, b []byte) {
	select {
	case c.out <- b:
	default:
	}
}

// valueLocked is sym's current mark, the fixture's numbers by default.
func (m *market) valueLocked(sym string) markValue {
	v, ok := m.marks[sym]
	if !ok {
		var p, r string
		_ = json.Unmarshal(m.template["p"], &p)
		_ = json.Unmarshal(m.template["r"], &r)
		v = markValue{price: p, rate: r}
	}
	if v.next == 0 {
		// Funding every 8 hours at 00:00, 08:00, 16:00 UTC.
		v.next = time.Now().Truncate(8 * time.Hour).Add(8 * time.Hour).UnixMilli()
	}
	return v
}

// eventTimeLocked is the event time (E) of the next update: now in ms,
// increasing, the same on every connection the update goes to.
func (m *market) eventTimeLocked() int64 {
	e := time.Now().UnixMilli()
	if e <= m.lastE {
		e = m.lastE + 1
	}
	m.lastE = e
	return e
}

// frameLocked is one markPriceUpdate frame of sym for c at event time e.
func (m *market) frameLocked(c *marketConn, sym, stream string, e int64) []byte {
	v := m.valueLocked(sym)
	d := make(map[string]json.RawMessage, len(m.template))
	for k, x := range m.template {
		d[k] = x
	}
	d["s"] = jsonString(sym)
	d["p"] = jsonString(v.price)
	d["r"] = jsonString(v.rate)
	d["E"] = json.RawMessage(strconv.FormatInt(e, 10))
	d["T"] = json.RawMessage(strconv.FormatInt(v.next, 10))
	data, err := json.Marshal(d)
	if err != nil {
		panic("binancetest: mark frame: " + err.Error())
	}
	if !c.combined {
		return data
	}
	b, err := json.Marshal(struct {
		Stream string          `json:"stream"`
		Data   json.RawMessage `json:"data"`
	}{stream, data})
	if err != nil {
		panic("binancetest: mark frame: " + err.Error())
	}
	return b
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// marketStreams parses the streams a market upgrade asks for.
func marketStreams(r *http.Request) (streams []string, combined bool, err error) {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/stream"):
		combined = true
		streams = strings.Split(r.URL.Query().Get("streams"), "/")
	case strings.HasPrefix(p, "/ws/") || strings.HasPrefix(p, "/market/ws/"):
		streams = []string{p[strings.LastIndex(p, "/")+1:]}
	default:
		return nil, false, errors.New("binancetest: no market stream at " + p)
	}
	for _, st := range streams {
		sym, rest, ok := strings.Cut(st, "@")
		if !ok || sym == "" || (rest != "markPrice" && rest != "markPrice@1s") {
			return nil, false, errors.New("binancetest: unsupported stream " + strconv.Quote(st) + " (want <symbol>@markPrice[@1s])")
		}
	}
	return streams, combined, nil
}

// serveMarket serves one mark-price stream connection.
func (s *Server) serveMarket(w http.ResponseWriter, r *http.Request) {
	m := s.marketState()
	m.mu.Lock()
	m.attempts++
	stopped := m.stopped
	m.mu.Unlock()
	if stopped {
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	streams, combined, err := marketStreams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	mc := &marketConn{
		combined: combined,
		streams:  streams,
		symbols:  make(map[string]string, len(streams)),
		out:      make(chan []byte, 4096),
		kill:     make(chan struct{}),
	}
	for _, st := range streams {
		sym, _, _ := strings.Cut(st, "@")
		mc.symbols[strings.ToUpper(sym)] = st
	}
	ctx := c.CloseRead(context.Background()) // answers pings, reads pongs

	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.conns[mc] = struct{}{}
	if !m.muted {
		e := m.eventTimeLocked()
		for sym, st := range mc.symbols {
			m.queueLocked(mc, m.frameLocked(mc, sym, st, e))
		}
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.conns, mc)
		m.mu.Unlock()
	}()

	ping := time.NewTicker(marketPingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-mc.kill:
			return
		case b := <-mc.out:
			wctx, cancel := context.WithTimeout(ctx, marketWriteWait)
			err := c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, marketWriteWait)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// SetMark sets symbol's mark price (e.g. "11794.15000000") and pushes a
// frame to every connection subscribed to symbol at once.
func (s *Server) SetMark(symbol, price string) {
	s.setMark(strings.ToUpper(symbol), func(v *markValue) { v.price = price })
}

// SetFunding sets symbol's funding rate and next funding time and pushes a
// frame like SetMark.
func (s *Server) SetFunding(symbol, rate string, next time.Time) {
	s.setMark(strings.ToUpper(symbol), func(v *markValue) { v.rate, v.next = rate, next.UnixMilli() })
}

func (s *Server) setMark(sym string, f func(*markValue)) {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.valueLocked(sym)
	f(&v)
	m.marks[sym] = v
	if m.stopped || m.muted {
		return
	}
	e := m.eventTimeLocked()
	for c := range m.conns {
		if st, ok := c.symbols[sym]; ok {
			m.queueLocked(c, m.frameLocked(c, sym, st, e))
		}
	}
}

// PushMarketRaw sends raw as one text frame on every open market
// connection (malformed frames, unknown events).
func (s *Server) PushMarketRaw(raw string) {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.conns {
		m.queueLocked(c, []byte(raw))
	}
}

// DropMarketStreams closes every market connection abruptly (no close
// frame); new connections are served as before.
func (s *Server) DropMarketStreams() {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.conns {
		c.drop()
	}
}

// StopMarket makes the market streams dead: open connections are dropped,
// upgrades are refused with 503 and nothing ticks, until StartMarket.
func (s *Server) StopMarket() {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	for c := range m.conns {
		c.drop()
	}
}

// StartMarket serves the market streams again after StopMarket.
func (s *Server) StartMarket() {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = false
}

// MuteMarket(true) keeps the connections open (and answers pings) but
// sends no frame, as a stalled stream does; MuteMarket(false) resumes.
func (s *Server) MuteMarket(muted bool) {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.muted = muted
}

// MarketConnections is the number of open market connections.
func (s *Server) MarketConnections() int {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns)
}

// MarketAttempts is the number of market upgrade requests received,
// refused ones included.
func (s *Server) MarketAttempts() int {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// MarketSubscriptions lists the streams of the open market connections
// (e.g. "btcusdt@markPrice@1s"), sorted; a stream open on two connections
// is listed twice.
func (s *Server) MarketSubscriptions() []string {
	m := s.marketState()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for c := range m.conns {
		out = append(out, c.streams...)
	}
	sort.Strings(out)
	return out
}
