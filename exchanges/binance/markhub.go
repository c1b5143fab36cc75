package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adshao/go-binance/v2/delivery"
	"github.com/adshao/go-binance/v2/futures"

	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

// markSink receives the mark prices of the symbols it watches.
type markSink interface {
	// markTick applies one mark-price update; it must not block or allocate.
	markTick(symbol string, mark, fundingRate float64, nextFunding, received time.Time)
	// marksDown: the stream serving the sink's symbols is lost (err) or back (nil).
	marksDown(err error)
}

// Mark-price stream shapes (see doc.go, "Mark-price streams").
const (
	usdmMarkPeriod  = time.Second     // <symbol>@markPrice@1s
	coinmMarkPeriod = 3 * time.Second // <symbol>@markPrice, the only rate on dstream
	// usdmStreamsPerConn keeps the combined URL sane; Binance allows 1024.
	usdmStreamsPerConn = 200
	// badFrameLogEvery rate-limits the log of frames that cannot be used.
	badFrameLogEvery = 10 * time.Second
)

// The production endpoints as go-binance ships them, before any wsDial set
// assigns its variables.
var (
	usdmCombinedProd = futures.BaseCombinedMarketMainURL
	coinmWsProd      = delivery.BaseWsMainUrl
)

type markHubKey struct {
	kind, base string
	testnet    bool
}

// markHubs is the process-wide registry: one hub per market and endpoint.
var markHubs = struct {
	sync.Mutex
	m map[markHubKey]*markHub
}{m: map[markHubKey]*markHub{}}

// marksFor returns the process-wide hub of one market: kind is USDM or COINM
// (consts in binance.go), base the websocket base URL (the account's
// stream_endpoint scheme+host[:port], or "" for Binance's production
// endpoint; testnet is a bool). Accounts with equal (kind, base, testnet) share one hub.
//
// The hub logs to the SetHubLogger logger, else to the log of the call
// that created it.
func marksFor(kind, base string, testnet bool, log *slog.Logger) *markHub {
	base = wsBase(base)
	k := markHubKey{kind, base, testnet}
	markHubs.Lock()
	defer markHubs.Unlock()
	if h := markHubs.m[k]; h != nil {
		return h
	}
	if l := hubLog.Load(); l != nil {
		log = l
	}
	h := newMarkHub(kind, base, testnet, log)
	h.key = &k
	markHubs.m[k] = h
	return h
}

// hubLog is the logger of the process-wide hubs (SetHubLogger).
var hubLog atomic.Pointer[slog.Logger]

// SetHubLogger sets the logger of the mark-price hubs, which every
// streamed account of a market shares (their lines name symbols, not
// accounts). The daemon sets it once at start; until then a hub logs to the
// logger of the account that created it.
func SetHubLogger(l *slog.Logger) { hubLog.Store(l) }

// resetMarkHubs closes every registered hub (tests).
func resetMarkHubs() {
	markHubs.Lock()
	hs := make([]*markHub, 0, len(markHubs.m))
	for _, h := range markHubs.m {
		hs = append(hs, h)
	}
	markHubs.Unlock()
	for _, h := range hs {
		h.Close()
	}
}

// wsBase normalises a stream endpoint: no trailing slash, http(s) as ws(s).
func wsBase(base string) string {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if b, ok := strings.CutPrefix(base, "http://"); ok {
		return "ws://" + b
	}
	if b, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + b
	}
	return base
}

// markHub keeps the mark-price streams of one market for every account of
// the process: the union of the watched symbols on as few connections as
// Binance allows, reconnected, rotated and resubscribed by itself, each
// tick routed to the sinks watching its symbol.
type markHub struct {
	kind, base string
	testnet    bool
	where      string // host named in errors and logs
	log        *slog.Logger
	key        *markHubKey // registry key, nil when unregistered

	// Timing and sizes, fields so that tests can shorten them before the
	// first watch.
	period     time.Duration // the stream's push period
	silence    time.Duration // no frame for this long: reconnect
	debounce   time.Duration // watch changes coalesce for this long
	firstFrame time.Duration // make-before-break waits at most this for the new connection
	rotate     time.Duration // forced reconnect ahead of Binance's 24 h disconnect
	backoffMin time.Duration
	backoffMax time.Duration
	stable     time.Duration // a connection that lived this long resets the backoff
	perConn    int           // symbols per connection

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	kick      chan struct{}

	// routes is the immutable symbol → sinks table, swapped on watch and
	// forget and read per tick without a lock.
	routes     atomic.Pointer[map[string]*markRoute]
	reconnects atomic.Uint64

	mu    sync.Mutex // guards sinks, lastE, links and the links' state
	sinks map[markSink]*markWatch
	lastE map[string]*atomic.Int64 // newest event time routed, per symbol
	links map[*markLink]struct{}   // live connections' owners, retiring ones included

	notifyMu sync.Mutex // orders marksDown calls as the states they report

	badMu sync.Mutex
	badAt time.Time
	badN  int
}

type markWatch struct {
	symbols []string // sorted, upper case
	down    bool     // as last reported to the sink
}

// markRoute is one symbol's entry in the routing table.
type markRoute struct {
	sinks []markSink
	last  *atomic.Int64 // shared across rebuilds of the table
}

func newMarkHub(kind, base string, testnet bool, log *slog.Logger) *markHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &markHub{
		kind: kind, base: base, testnet: testnet,
		period:     usdmMarkPeriod,
		debounce:   500 * time.Millisecond,
		firstFrame: 10 * time.Second,
		rotate:     23*time.Hour + 30*time.Minute,
		backoffMin: time.Second,
		backoffMax: 30 * time.Second,
		stable:     time.Minute,
		perConn:    usdmStreamsPerConn,
		kick:       make(chan struct{}, 1),
		sinks:      map[markSink]*markWatch{},
		lastE:      map[string]*atomic.Int64{},
		links:      map[*markLink]struct{}{},
	}
	endpoint := usdmCombinedProd
	switch {
	case kind == COINM:
		h.period, h.perConn = coinmMarkPeriod, 1
		endpoint = coinmWsProd
		if testnet {
			endpoint = delivery.BaseWsTestnetUrl
		}
	case testnet:
		endpoint = futures.BaseCombinedMarketTestnetURL
	}
	if base != "" {
		endpoint = base
	}
	h.where = endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		h.where = u.Host
	}
	h.silence = 5 * h.period
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.log = log.With("market", kind, "stream_host", h.where)
	return h
}

// watch sets the symbols s watches (replacing the previous set; empty = none).
func (h *markHub) watch(s markSink, symbols []string) {
	syms := make([]string, 0, len(symbols))
	for _, sym := range symbols {
		if sym = strings.ToUpper(strings.TrimSpace(sym)); sym != "" {
			syms = append(syms, sym)
		}
	}
	slices.Sort(syms)
	syms = slices.Compact(syms)
	if len(syms) == 0 {
		h.forget(s)
		return
	}
	h.mu.Lock()
	w := h.sinks[s]
	if w == nil {
		w = &markWatch{}
		h.sinks[s] = w
	}
	changed := !slices.Equal(w.symbols, syms)
	w.symbols = syms
	if changed {
		h.rebuildLocked()
	}
	h.mu.Unlock()
	if changed {
		h.startOnce.Do(func() {
			h.wg.Add(1)
			go h.manage()
		})
		h.poke()
	}
}

// forget removes s. A tick or marksDown already under way may still reach
// it once.
func (h *markHub) forget(s markSink) {
	h.mu.Lock()
	_, ok := h.sinks[s]
	if ok {
		delete(h.sinks, s)
		h.rebuildLocked()
	}
	h.mu.Unlock()
	if ok {
		h.poke()
	}
}

// status: whether every stream is up, reconnects since start. Up means every
// watched symbol is on a connection that has delivered a frame and is
// neither lost nor silent; it is true when nothing is watched.
func (h *markHub) status() (up bool, reconnects uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	upSyms := make(map[string]bool)
	for l := range h.links {
		if l.state == linkUp {
			for _, sym := range l.symbols {
				upSyms[sym] = true
			}
		}
	}
	up = true
	for _, w := range h.sinks {
		for _, sym := range w.symbols {
			up = up && upSyms[sym]
		}
	}
	return up, h.reconnects.Load()
}

// Close stops the hub and its connections and waits for them; a registered
// hub leaves the registry (marksFor makes a new one).
func (h *markHub) Close() {
	if h.key != nil {
		markHubs.Lock()
		if markHubs.m[*h.key] == h {
			delete(markHubs.m, *h.key)
		}
		markHubs.Unlock()
	}
	h.cancel()
	h.wg.Wait()
}

func (h *markHub) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// rebuildLocked swaps in a new routing table from h.sinks.
func (h *markHub) rebuildLocked() {
	m := make(map[string]*markRoute)
	for s, w := range h.sinks {
		for _, sym := range w.symbols {
			r := m[sym]
			if r == nil {
				last := h.lastE[sym]
				if last == nil {
					last = new(atomic.Int64)
					h.lastE[sym] = last
				}
				r = &markRoute{last: last}
				m[sym] = r
			}
			r.sinks = append(r.sinks, s)
		}
	}
	for sym := range h.lastE {
		if m[sym] == nil {
			delete(h.lastE, sym)
		}
	}
	h.routes.Store(&m)
}

// route hands one update to the sinks watching symbol. It allocates nothing
// unless the update is malformed (then it is logged, rate-limited, and
// dropped). An update older than one already routed (the overlap of two
// connections during a resubscription) is dropped.
func (h *markHub) route(symbol, mark, rate string, eventMs, nextMs int64, received time.Time) {
	rp := h.routes.Load()
	if rp == nil {
		return
	}
	r := (*rp)[symbol]
	if r == nil {
		return
	}
	p, err := strconv.ParseFloat(mark, 64)
	if err == nil && !(p > 0 && !math.IsInf(p, 0)) {
		err = errors.New("not a positive price")
	}
	if err != nil {
		h.badFrame("mark price of "+symbol, err)
		return
	}
	var fr float64
	if rate != "" { // delivery contracts have no funding
		if fr, err = strconv.ParseFloat(rate, 64); err != nil || math.IsNaN(fr) || math.IsInf(fr, 0) {
			h.badFrame("funding rate of "+symbol, fmt.Errorf("%q is not a rate", rate))
			return
		}
	}
	for {
		last := r.last.Load()
		if eventMs < last {
			return
		}
		if r.last.CompareAndSwap(last, eventMs) {
			break
		}
	}
	var next time.Time
	if nextMs > 0 {
		next = time.UnixMilli(nextMs)
	}
	for _, s := range r.sinks {
		s.markTick(symbol, p, fr, next, received)
	}
}

// badFrame logs a frame that could not be used, at most once per
// badFrameLogEvery, with the number left unsaid since.
func (h *markHub) badFrame(what string, err error) {
	h.badMu.Lock()
	now := time.Now()
	if !h.badAt.IsZero() && now.Sub(h.badAt) < badFrameLogEvery {
		h.badN++
		h.badMu.Unlock()
		return
	}
	n := h.badN
	h.badAt, h.badN = now, 0
	h.badMu.Unlock()
	h.log.Warn("binance mark-price stream: frame skipped, connection kept", "what", what, "err", err, "skipped_since_last_log", n)
}

// notify tells each sink whose state changed: down when one of its symbols
// is served only by connections that are lost, back when none is. A symbol
// whose connection is still being opened for the first time is neither.
func (h *markHub) notify() {
	h.notifyMu.Lock()
	defer h.notifyMu.Unlock()
	type call struct {
		s   markSink
		err error
	}
	var calls []call
	h.mu.Lock()
	up := make(map[string]bool)
	lost := make(map[string]error)
	for l := range h.links {
		for _, sym := range l.symbols {
			switch l.state {
			case linkUp:
				up[sym] = true
			case linkDown:
				if lost[sym] == nil {
					lost[sym] = l.err
				}
			}
		}
	}
	for s, w := range h.sinks {
		var err error
		for _, sym := range w.symbols {
			if !up[sym] && lost[sym] != nil {
				err = lost[sym]
				break
			}
		}
		if (err != nil) != w.down {
			w.down = err != nil
			calls = append(calls, call{s, err})
		}
	}
	h.mu.Unlock()
	for _, c := range calls {
		c.s.marksDown(c.err)
	}
}

// manage applies watch changes, debounced, until the hub closes.
func (h *markHub) manage() {
	defer h.wg.Done()
	var cur []*markLink
	var due <-chan time.Time
	for {
		select {
		case <-h.ctx.Done():
			return // the links stop with h.ctx
		case <-h.kick:
			if due == nil {
				due = time.After(h.debounce)
			}
		case <-due:
			due = nil
			cur = h.regroup(cur)
			h.notify()
		}
	}
}

// regroup spreads the watched symbols over connections, keeping every
// connection whose symbols are all still watched, and returns the new
// current links. A connection whose set changes is replaced make before
// break: the old one stops once the new one delivers its first frame, or
// after h.firstFrame.
func (h *markHub) regroup(cur []*markLink) []*markLink {
	h.mu.Lock()
	want := make(map[string]bool)
	for _, w := range h.sinks {
		for _, sym := range w.symbols {
			want[sym] = true
		}
	}
	h.mu.Unlock()

	type group struct {
		syms     []string
		replaces *markLink
	}
	covered := make(map[string]bool)
	var keep []*markLink
	var groups []*group
	for _, l := range cur {
		var g []string
		for _, sym := range l.symbols {
			if want[sym] && !covered[sym] {
				g = append(g, sym)
				covered[sym] = true
			}
		}
		switch {
		case len(g) == len(l.symbols):
			keep = append(keep, l)
		case len(g) == 0:
			l.stop()
		default:
			groups = append(groups, &group{syms: g, replaces: l})
		}
	}
	var rest []string
	for sym := range want {
		if !covered[sym] {
			rest = append(rest, sym)
		}
	}
	slices.Sort(rest)
	fill := func(g *group) {
		n := min(len(rest), h.perConn-len(g.syms))
		g.syms = append(g.syms, rest[:n]...)
		rest = rest[n:]
	}
	for _, g := range groups {
		fill(g)
	}
	if len(rest) > 0 {
		// Grow a kept connection rather than open another one.
		var still []*markLink
		for _, l := range keep {
			if len(rest) > 0 && len(l.symbols) < h.perConn {
				g := &group{syms: slices.Clone(l.symbols), replaces: l}
				fill(g)
				groups = append(groups, g)
				continue
			}
			still = append(still, l)
		}
		keep = still
	}
	for len(rest) > 0 {
		g := &group{}
		fill(g)
		groups = append(groups, g)
	}
	next := keep
	for _, g := range groups {
		slices.Sort(g.syms)
		l := h.startLink(g.syms, g.replaces != nil)
		next = append(next, l)
		if old := g.replaces; old != nil {
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				t := time.NewTimer(h.firstFrame)
				defer t.Stop()
				select {
				case <-l.upC.Done():
				case <-t.C:
				case <-h.ctx.Done():
				}
				old.stop()
			}()
		}
	}
	return next
}

// linkState is a link's health as sinks see it.
type linkState int

const (
	linkConnecting linkState = iota // first connection not yet made
	linkUp                          // delivering frames
	linkDown                        // lost; reconnecting
)

// markLink owns the connection of one set of symbols for its lifetime:
// it reconnects after a loss and rotates the connection before Binance's
// 24 h disconnect.
type markLink struct {
	h       *markHub
	symbols []string
	resub   bool // replaces another link: its first connection is a reconnect
	ctx     context.Context
	stop    context.CancelFunc
	// upC is done when the link is first up (a context, not a closed
	// channel: helpers_test.go's close shadows the builtin in test builds).
	upC  context.Context
	isUp context.CancelFunc

	// guarded by h.mu
	state linkState
	err   error
}

func (h *markHub) startLink(symbols []string, resub bool) *markLink {
	l := &markLink{h: h, symbols: symbols, resub: resub}
	l.upC, l.isUp = context.WithCancel(context.Background())
	l.ctx, l.stop = context.WithCancel(h.ctx)
	h.mu.Lock()
	h.links[l] = struct{}{}
	h.mu.Unlock()
	h.wg.Add(1)
	go l.run()
	return l
}

// errSilent: the connection stayed open but sent nothing.
var errSilent = errors.New("no frame")

func (l *markLink) run() {
	h := l.h
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		delete(h.links, l)
		h.mu.Unlock()
		h.notify()
	}()
	bo := pace.Backoff{Min: h.backoffMin, Max: h.backoffMax}
	reconnect := l.resub
	for {
		c, err := l.dial()
		if l.ctx.Err() != nil {
			if c != nil {
				c.close()
			}
			return
		}
		if err != nil {
			l.lost(fmt.Errorf("connect: %w", err))
			if !l.sleep(bo.Next()) {
				return
			}
			continue
		}
		if reconnect {
			h.reconnects.Add(1)
		}
		reconnect = true
		born := time.Now()
		err = l.serve(c, &bo)
		if err == nil {
			return
		}
		l.lost(err)
		if time.Since(born) > h.stable {
			bo.Reset()
		}
		if !l.sleep(bo.Next()) {
			return
		}
	}
}

type dialResult struct {
	c   *markConn
	err error
}

// serve runs connection c until it is lost (the error) or the link stops
// (nil), replacing it make before break every h.rotate.
func (l *markLink) serve(c *markConn, bo *pace.Backoff) (err error) {
	h := l.h
	check := time.NewTicker(h.period)
	defer check.Stop()
	rotate := time.NewTimer(h.rotate)
	defer rotate.Stop()
	var (
		next     *markConn
		nextWait <-chan time.Time
		dialing  chan dialResult
		up       bool
	)
	defer func() {
		c.close()
		if next != nil {
			next.close()
		}
		if dialing != nil { // close what the rotation dial still brings
			h.wg.Add(1)
			go func(ch chan dialResult) {
				defer h.wg.Done()
				if r := <-ch; r.c != nil {
					r.c.close()
				}
			}(dialing)
		}
	}()
	abandon := func() {
		next.close()
		next, nextWait = nil, nil
		rotate.Reset(bo.Next())
	}
	for {
		var first, nextFirst, nextDone <-chan struct{}
		if !up {
			first = c.first.Done()
		}
		if next != nil {
			nextFirst, nextDone = next.first.Done(), next.done
		}
		select {
		case <-l.ctx.Done():
			return nil
		case <-first:
			up = true
			l.setUp()
		case <-c.done:
			lossErr := c.lossErr()
			if next == nil {
				return lossErr
			}
			// Lost during a rotation: go on with the new connection.
			c, next, nextWait = next, nil, nil
			h.reconnects.Add(1)
			rotate.Reset(h.rotate)
			if !c.got.Load() {
				up = false
				l.lost(lossErr)
			}
		case <-check.C:
			if time.Since(time.Unix(0, c.last.Load())) > h.silence {
				return fmt.Errorf("%w for %s", errSilent, h.silence)
			}
		case <-rotate.C:
			dialing = make(chan dialResult, 1)
			h.wg.Add(1)
			go func(ch chan dialResult) {
				defer h.wg.Done()
				nc, err := l.dial()
				ch <- dialResult{nc, err}
			}(dialing)
		case r := <-dialing:
			dialing = nil
			if r.err != nil {
				h.log.Info("binance mark-price stream: early reconnect failed, keeping the connection", "err", r.err)
				rotate.Reset(bo.Next())
				continue
			}
			next, nextWait = r.c, time.After(h.firstFrame)
		case <-nextFirst:
			c.close()
			c, next, nextWait = next, nil, nil
			h.reconnects.Add(1)
			rotate.Reset(h.rotate)
			if !up {
				up = true
				l.setUp()
			}
		case <-nextDone:
			abandon()
		case <-nextWait:
			abandon()
		}
	}
}

// dial opens one connection for l's symbols through wsDial: the @1s
// combined stream on USDⓈ-M, the 3 s raw stream on COIN-M (go-binance's
// WsCombinedMarkPriceServeWithRate and WsMarkPriceServe, on serveWS).
func (l *markLink) dial() (*markConn, error) {
	h := l.h
	c := &markConn{h: h}
	c.first, c.gotFirst = context.WithCancel(context.Background())
	var serve func() (done, stop chan struct{}, err error)
	switch h.kind {
	case USDM:
		streams := make([]string, len(l.symbols))
		for i, sym := range l.symbols {
			streams[i] = strings.ToLower(sym) + "@markPrice@1s"
		}
		endpoint := h.usdmCombined() + strings.Join(streams, "/")
		serve = func() (chan struct{}, chan struct{}, error) {
			return serveWS(endpoint, decodeWS(func(f *combinedMark) { c.usdmEvent(&f.Data) }, c.onErr), c.onErr)
		}
	case COINM:
		endpoint := h.coinmWS() + "/" + strings.ToLower(l.symbols[0]) + "@markPrice"
		serve = func() (chan struct{}, chan struct{}, error) {
			return serveWS(endpoint, decodeWS(c.coinmEvent, c.onErr), c.onErr)
		}
	default:
		return nil, fmt.Errorf("market %q has no mark-price stream (want %s or %s)", h.kind, USDM, COINM)
	}
	done, stop, err := wsDial(l.ctx, serve)
	if err != nil {
		return nil, err
	}
	c.done, c.stop = done, stop
	c.last.CompareAndSwap(0, time.Now().UnixNano())
	return c, nil
}

// combinedMark is a frame of a combined stream: the stream's name and its
// mark-price event.
type combinedMark struct {
	Data futures.WsMarkPriceEvent `json:"data"`
}

// usdmCombined is the combined market stream's URL up to the stream list:
// h's endpoint, or go-binance's production or testnet one.
func (h *markHub) usdmCombined() string {
	switch {
	case h.base != "":
		return h.base + "/market/stream?streams="
	case h.testnet:
		return futures.BaseCombinedMarketTestnetURL
	}
	return usdmCombinedProd
}

// coinmWS is COIN-M's raw stream base (dstream /ws).
func (h *markHub) coinmWS() string {
	switch {
	case h.base != "":
		return h.base + "/ws"
	case h.testnet:
		return delivery.BaseWsTestnetUrl
	}
	return coinmWsProd
}

func (l *markLink) setUp() {
	l.h.mu.Lock()
	was := l.state
	l.state, l.err = linkUp, nil
	l.h.mu.Unlock()
	l.isUp()
	if was == linkDown {
		l.h.log.Info("binance mark-price stream back", "symbols", len(l.symbols))
	}
	l.h.notify()
}

// lost marks l down with err; sinks hear it once per loss.
func (l *markLink) lost(err error) {
	h := l.h
	err = fmt.Errorf("%s mark-price stream at %s (%s): %w", h.kind, h.where, symbolsText(l.symbols), err)
	h.mu.Lock()
	was := l.state
	l.state, l.err = linkDown, err
	h.mu.Unlock()
	if was == linkDown {
		h.log.Debug("binance mark-price stream still down", "err", err)
		return
	}
	h.log.Info("binance mark-price stream lost, reconnecting (streamed accounts are polled meanwhile)", "err", err)
	h.notify()
}

// symbolsText names a connection's symbols in a log line or error.
func symbolsText(syms []string) string {
	if len(syms) <= 3 {
		return strings.Join(syms, ", ")
	}
	return fmt.Sprintf("%s, %s and %d more symbols", syms[0], syms[1], len(syms)-2)
}

// sleep waits d or until l stops (false).
func (l *markLink) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// markConn is one go-binance connection.
type markConn struct {
	h        *markHub
	done     chan struct{} // go-binance closes it when the connection ends
	stop     chan struct{}
	stopOnce sync.Once
	last     atomic.Int64 // when the newest frame arrived, unix ns
	got      atomic.Bool
	first    context.Context // done on the first frame
	gotFirst context.CancelFunc

	errMu sync.Mutex
	err   error // the newest error go-binance reported
}

// close stops the connection. go-binance's reader waits on stop until the
// connection ends, so a send reaches it or done closes; this package cannot
// call the builtin close (helpers_test.go's close shadows it in test builds).
func (c *markConn) close() {
	c.stopOnce.Do(func() {
		if c.stop == nil {
			return
		}
		select {
		case c.stop <- struct{}{}:
		case <-c.done:
		}
	})
}

// frame notes that a frame arrived.
func (c *markConn) frame() time.Time {
	now := time.Now()
	c.last.Store(now.UnixNano())
	if !c.got.Load() && c.got.CompareAndSwap(false, true) {
		c.gotFirst()
	}
	return now
}

func (c *markConn) usdmEvent(ev *futures.WsMarkPriceEvent) {
	now := c.frame()
	c.h.route(ev.Symbol, ev.MarkPrice, ev.FundingRate, ev.Time, ev.NextFundingTime, now)
}

func (c *markConn) coinmEvent(ev *delivery.WsMarkPriceEvent) {
	now := c.frame()
	c.h.route(ev.Symbol, ev.MarkPrice, ev.FundingRate, ev.Time, ev.NextFundingTime, now)
}

// onErr is go-binance's errHandler: a frame it cannot decode (the
// connection goes on) or the read error that ends the connection (done
// closes next).
func (c *markConn) onErr(err error) {
	c.errMu.Lock()
	c.err = err
	c.errMu.Unlock()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// gorilla reports a cut connection as a *CloseError, never io.EOF.
		c.last.Store(time.Now().UnixNano())
		c.h.badFrame("undecodable frame", err)
	}
}

func (c *markConn) lossErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err == nil {
		return errors.New("connection closed")
	}
	return c.err
}
