// Package hyperliquidtest is a fake Hyperliquid /info endpoint and
// websocket for tests: it answers POST /info by request type with the
// shared fixture bodies as they are (fixtures/, byte-for-byte copies of
// the project's Hyperliquid fixtures; see fixtures/SOURCES.md), counts
// request weight per clock minute and answers 429 past the limit, as
// Hyperliquid does per IP; /ws serves the subscriptions (ws.go).
//
// Scenarios change the decoded bodies generically (SetMark,
// SetLiquidationPx, AddStop, RemovePosition, PushMark): no body is written
// by hand. The one frame without a recorded sample, orderUpdates, is the
// official SDKs' shape around frontendOpenOrders fixture rows (ws.go).
package hyperliquidtest

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

//go:embed fixtures/*.json
var fixtureFS embed.FS

// Fixture is the named fixture body as it is. It panics on an unknown
// name: a test bug.
func Fixture(name string) []byte {
	b, err := fixtureFS.ReadFile("fixtures/" + name)
	if err != nil {
		panic("hyperliquidtest: no fixture " + name)
	}
	return b
}

// Address is an address for test configs; the fake serves any address the
// same account.
const Address = "0x0123456789abcdef0123456789abcdef01234567"

// Fixture file names of the account states.
const (
	// Isolated: info_clearinghouseState.json, an isolated ETH long
	// (current shape, crossMaintenanceMarginUsed 0).
	Isolated = "info_clearinghouseState.json"
	// Cross2023: info_clearinghouseState_2023_cross.json, a BTC short with
	// a liquidation price and an ETH long without (older shape).
	Cross2023 = "info_clearinghouseState_2023_cross.json"
	// Empty: info_clearinghouseState_empty.json.
	Empty = "info_clearinghouseState_empty.json"
)

// Options configure a fake.
type Options struct {
	// State is the clearinghouseState fixture; Isolated when empty.
	State string
	// Limit is the weight per minute; 1200 (Hyperliquid's) when 0.
	Limit int
	// RetryAfter, when set, is sent as Retry-After (seconds) with a 429;
	// Hyperliquid documents none, so by default there is none.
	RetryAfter time.Duration
	// Now is the fake's clock for the weight minute; time.Now when nil.
	Now func() time.Time
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the REST base (http://127.0.0.1:port) for NewServer; "" for New.
	URL string

	opts Options
	mu   sync.Mutex
	docs map[string]*doc // by request type
	// weight counting
	minute  int64
	used    int
	limited bool
	counts  map[string]int
	refused int

	ws wsState // the websocket (ws.go)
}

// doc is a served body: the fixture bytes until a scenario edits it, then
// the edited decoded JSON.
type doc struct {
	raw  []byte
	tree any
}

func (d *doc) decoded() any {
	if d.tree == nil {
		dec := json.NewDecoder(bytes.NewReader(d.raw))
		dec.UseNumber()
		if err := dec.Decode(&d.tree); err != nil {
			panic("hyperliquidtest: fixture does not decode: " + err.Error())
		}
	}
	return d.tree
}

func (d *doc) body() []byte {
	if d.tree == nil {
		return d.raw
	}
	b, err := json.Marshal(d.tree)
	if err != nil {
		panic(err)
	}
	return b
}

// New returns a fake that is not listening: use Handler or Transport.
func New(opts Options) *Server {
	if opts.State == "" {
		opts.State = Isolated
	}
	if opts.Limit == 0 {
		opts.Limit = 1200
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, counts: map[string]int{}, docs: map[string]*doc{}}
	for typ, name := range map[string]string{
		"clearinghouseState": opts.State,
		"frontendOpenOrders": "info_frontendOpenOrders.json",
		"openOrders":         "info_openOrders.json",
		"metaAndAssetCtxs":   "info_metaAndAssetCtxs_excerpt.json",
		"userFunding":        "info_userFunding.json",
		"candleSnapshot":     "info_candleSnapshot.json",
		"allMids":            "info_allMids.json",
		"userRateLimit":      "info_userRateLimit.json",
	} {
		s.docs[typ] = &doc{raw: Fixture(name)}
	}
	return s
}

// NewServer starts a fake on 127.0.0.1, closed when t ends.
func NewServer(t testing.TB, opts Options) *Server {
	s := New(opts)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(s.StopWS) // first: Close waits for the websocket handlers
	s.URL = hs.URL
	return s
}

// userTypes need a user address.
var userTypes = map[string]bool{"clearinghouseState": true, "frontendOpenOrders": true, "openOrders": true, "userFunding": true, "userRateLimit": true}

var addressRE = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

// weight is Hyperliquid's weight of a request of typ answered with n rows.
func weight(typ string, n int) int {
	w := 20
	switch typ {
	case "clearinghouseState", "allMids":
		w = 2
	case "userFunding":
		w += n / 20
	case "candleSnapshot":
		w += n / 60
	}
	return w
}

// Handler serves POST /info and the websocket at /ws.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			s.serveWS(w, r)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/info" {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		req, d := s.lookup(r)
		if d == nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, "Failed to deserialize the JSON body into the target type")
			return
		}
		s.mu.Lock()
		body := d.body()
		var rows []json.RawMessage
		n := 0
		if json.Unmarshal(body, &rows) == nil {
			n = len(rows)
		}
		wt := weight(req.Type, n)
		m := s.opts.Now().Unix() / 60
		if m != s.minute {
			s.minute, s.used = m, 0
		}
		if s.limited || s.used+wt > s.opts.Limit {
			s.refused++
			s.mu.Unlock()
			if s.opts.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(s.opts.RetryAfter/time.Second)))
			}
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "null")
			return
		}
		s.used += wt
		s.counts[req.Type]++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

type infoReq struct {
	Type string `json:"type"`
	User string `json:"user"`
}

// lookup decodes the request and returns the body for it, nil for a
// request Hyperliquid would refuse.
func (s *Server) lookup(r *http.Request) (infoReq, *doc) {
	var q infoReq
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16)).Decode(&q); err != nil {
		return q, nil
	}
	if userTypes[q.Type] && !addressRE.MatchString(q.User) {
		return q, nil
	}
	return q, s.docs[q.Type]
}

// Count is the number of requests of type typ answered (429s not counted).
func (s *Server) Count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[typ]
}

// Refused is the number of requests answered 429.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Weight is the weight counted in the current minute.
func (s *Server) Weight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Now().Unix()/60 != s.minute {
		return 0
	}
	return s.used
}

// SetRateLimited makes every request answer 429 (on) or counts weight
// again (off).
func (s *Server) SetRateLimited(on bool) {
	s.mu.Lock()
	s.limited = on
	s.mu.Unlock()
}
