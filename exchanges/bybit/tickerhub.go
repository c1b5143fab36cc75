package bybit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

// tickSink receives the tickers of the symbols it watches.
type tickSink interface {
	// markTick applies one merged ticker (rate NaN, next zero: unknown).
	markTick(symbol string, mark, rate float64, next, received time.Time)
	// marksDown: the public stream is lost (err) or back (nil).
	marksDown(err error)
}

// tickerHubs is the process-wide registry: one hub (one public linear
// connection) per stream host, shared by every bybit account.
var tickerHubs = struct {
	sync.Mutex
	m map[string]*tickerHub
}{m: map[string]*tickerHub{}}

// hubConf is the timing of hubs created from now on (tests shorten it).
var hubConf = defaultStreamConf()

// tickerHubFor returns the hub of the stream host base. It logs to the
// SetHubLogger logger, else to log (the first account's) or nowhere.
func tickerHubFor(base string, log *slog.Logger) *tickerHub {
	tickerHubs.Lock()
	defer tickerHubs.Unlock()
	if h := tickerHubs.m[base]; h != nil {
		return h
	}
	if l := hubLog.Load(); l != nil {
		log = l
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &tickerHub{url: base + "/v5/public/linear", conf: hubConf, kick: make(chan struct{}, 1),
		sinks: map[tickSink][]string{}, down: map[tickSink]bool{}, state: map[string]*tickerState{}}
	h.log = log.With("stream_host", hostOf(base))
	h.ctx, h.cancel = context.WithCancel(context.Background())
	tickerHubs.m[base] = h
	return h
}

// hubLog is the logger of the process-wide hubs (SetHubLogger).
var hubLog atomic.Pointer[slog.Logger]

// SetHubLogger sets the logger of the public tickers hubs, which every
// streamed account on a stream host shares (their lines name the host,
// not an account). The daemon sets it once at start; until then a hub logs
// to the logger of the account that created it.
func SetHubLogger(l *slog.Logger) { hubLog.Store(l) }

// tickerHub keeps the public tickers.{SYMBOL} subscriptions of every
// account of the process on one connection per host: subscribed and
// unsubscribed as the held symbols change, pinged, reconnected with
// jittered backoff; its goroutine runs while some sink watches. Bybit's delta messages carry only the changed fields;
// the hub merges them into each symbol's last snapshot.
type tickerHub struct {
	url  string
	conf streamConf
	log  *slog.Logger

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	kick    chan struct{}

	// mu guards what follows; sinks are called under it (they take only
	// their own view's lock and never call back).
	mu      sync.Mutex
	sinks   map[tickSink][]string
	down    map[tickSink]bool // as last told
	state   map[string]*tickerState
	lostErr error // non-nil while the connection is lost
}

type tickerState struct {
	mark, rate float64
	next       int64
}

// watch sets the symbols s watches (replacing its set; empty = none).
func (h *tickerHub) watch(s tickSink, symbols []string) {
	if len(symbols) == 0 {
		h.forget(s)
		return
	}
	h.mu.Lock()
	_, known := h.sinks[s]
	h.sinks[s] = slices.Clone(symbols)
	switch {
	case h.lostErr != nil && !h.down[s]:
		h.down[s] = true
		s.marksDown(h.lostErr)
	case h.lostErr == nil && !known:
		// A sink forgotten during an outage missed back(): it may still
		// hold the loss.
		s.marksDown(nil)
	}
	if !h.started {
		h.started = true
		h.wg.Add(1)
		go h.run()
	}
	h.mu.Unlock()
	h.poke()
}

// forget removes s.
func (h *tickerHub) forget(s tickSink) {
	h.mu.Lock()
	delete(h.sinks, s)
	delete(h.down, s)
	h.mu.Unlock()
	h.poke()
}

func (h *tickerHub) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Close stops the hub and leaves the registry (tests).
func (h *tickerHub) Close() {
	tickerHubs.Lock()
	for k, x := range tickerHubs.m {
		if x == h {
			delete(tickerHubs.m, k)
		}
	}
	tickerHubs.Unlock()
	h.cancel()
	h.wg.Wait()
}

// wanted is the union of the watched symbols, sorted.
func (h *tickerHub) wanted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, syms := range h.sinks {
		out = append(out, syms...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (h *tickerHub) run() {
	defer h.wg.Done()
	bo := pace.Backoff{Min: h.conf.backoffMin, Max: h.conf.backoffMax}
	for {
		if h.idle() {
			return
		}
		born := time.Now()
		err := h.serve()
		if h.ctx.Err() != nil {
			return
		}
		if err == nil {
			continue // nothing watched any more
		}
		h.lost(err)
		if time.Since(born) > h.conf.stable {
			bo.Reset()
		}
		if !pace.Sleep(h.ctx, bo.Next()) {
			return
		}
	}
}

// idle reports whether no sink is left; then the goroutine ends and the
// next watch starts another.
func (h *tickerHub) idle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sinks) > 0 {
		return false
	}
	h.started = false
	return true
}

type wsRead struct {
	b   []byte
	err error
}

// serve runs one connection until it fails (the error) or nothing is
// watched (nil).
func (h *tickerHub) serve() error {
	c, err := dialWS(h.ctx, h.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	subscribed := map[string]bool{}
	h.mu.Lock()
	clear(h.state) // a new connection starts with fresh snapshots
	h.mu.Unlock()
	sync := func() (idle bool, err error) {
		want := h.wanted()
		var add, drop []string
		for _, s := range want {
			if !subscribed[s] {
				add = append(add, "tickers."+s)
				subscribed[s] = true
			}
		}
		for s := range subscribed {
			if !slices.Contains(want, s) {
				drop = append(drop, "tickers."+s)
				delete(subscribed, s)
			}
		}
		if len(want) == 0 {
			return true, nil
		}
		slices.Sort(drop)
		for _, m := range append(subscribeMsgs("subscribe", add), subscribeMsgs("unsubscribe", drop)...) {
			if err := writeWS(ctx, c, m); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if _, err := sync(); err != nil {
		return err
	}
	go pinger(ctx, c, h.conf.ping)
	reads := make(chan wsRead)
	go func() {
		for {
			b, err := readWS(ctx, c, h.conf.silence)
			select {
			case reads <- wsRead{b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	up := false
	for {
		select {
		case <-h.ctx.Done():
			return nil
		case <-h.kick:
			idle, err := sync()
			if err != nil {
				return err
			}
			if idle {
				return nil
			}
		case r := <-reads:
			if r.err != nil {
				return r.err
			}
			if !up {
				up = true
				h.back()
			}
			h.frame(r.b, time.Now())
		}
	}
}

// tickerFrame is a tickers message; absent fields decode as "".
type tickerFrame struct {
	Op      string `json:"op"`
	Success *bool  `json:"success"`
	RetMsg  string `json:"ret_msg"`
	Topic   string `json:"topic"`
	Type    string `json:"type"`
	Data    struct {
		Symbol          string `json:"symbol"`
		MarkPrice       string `json:"markPrice"`
		FundingRate     string `json:"fundingRate"`
		NextFundingTime string `json:"nextFundingTime"`
	} `json:"data"`
}

// frame merges one message into its symbol's ticker and routes it.
func (h *tickerHub) frame(b []byte, received time.Time) {
	var f tickerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		h.log.Warn("bybit public stream: a message is not JSON; skipped", "err", err)
		return
	}
	if f.Op == "subscribe" && f.Success != nil && !*f.Success {
		h.log.Warn("bybit public stream: a tickers subscription was refused (is the symbol a linear perpetual?)", "ret_msg", f.RetMsg)
		return
	}
	sym, ok := strings.CutPrefix(f.Topic, "tickers.")
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state[sym]
	if st == nil || f.Type == "snapshot" {
		if st == nil {
			st = &tickerState{}
			h.state[sym] = st
		}
		*st = tickerState{rate: math.NaN()}
	}
	d := &f.Data
	if v, err := strconv.ParseFloat(d.MarkPrice, 64); err == nil && v > 0 && !math.IsInf(v, 0) {
		st.mark = v
	}
	if v, err := strconv.ParseFloat(d.FundingRate, 64); err == nil && !math.IsInf(v, 0) {
		st.rate = v
	}
	if v, err := strconv.ParseInt(d.NextFundingTime, 10, 64); err == nil && v > 0 {
		st.next = v
	}
	if st.mark <= 0 {
		return // a delta before any snapshot
	}
	var next time.Time
	if st.next > 0 {
		next = time.UnixMilli(st.next)
	}
	for s, syms := range h.sinks {
		if slices.Contains(syms, sym) {
			s.markTick(sym, st.mark, st.rate, next, received)
		}
	}
}

// lost tells every sink the connection is lost.
func (h *tickerHub) lost(err error) {
	err = fmt.Errorf("public stream %s: %w", h.url, err)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lostErr == nil {
		h.log.Info("bybit public stream lost, reconnecting (streamed accounts are polled meanwhile)", "err", err)
	}
	h.lostErr = err
	for s := range h.sinks {
		if !h.down[s] {
			h.down[s] = true
			s.marksDown(err)
		}
	}
}

// back tells the sinks told of a loss that the connection is back.
func (h *tickerHub) back() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lostErr = nil
	for s, d := range h.down {
		if d {
			h.down[s] = false
			s.marksDown(nil)
		}
	}
}
