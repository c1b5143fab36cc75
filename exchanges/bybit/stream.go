package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

var _ exchanges.Streamer = (*Exchange)(nil)

// streamConf is the timing of an Exchange's streams; tests shorten it.
type streamConf struct {
	// ping: Bybit asks for {"op":"ping"} every 20 s. silence: a stream
	// that brings nothing (pongs included) this long is dead: the view is
	// not trusted and the connection is replaced.
	ping, silence time.Duration
	// reseedGap: a read the view asks for itself runs at most once per
	// this, coalesced.
	reseedGap time.Duration
	// backoffMin/Max bound the jittered reconnect backoff; a connection
	// that lived longer than stable starts it over.
	backoffMin, backoffMax, stable time.Duration
}

func defaultStreamConf() streamConf {
	return streamConf{ping: 20 * time.Second, silence: 30 * time.Second, reseedGap: 5 * time.Second,
		backoffMin: time.Second, backoffMax: time.Minute, stable: time.Minute}
}

// privateTopics are the private stream's subscriptions.
var privateTopics = []string{"position", "wallet", "order"}

// streamState is the running Stream of an Exchange.
type streamState struct {
	mu      sync.Mutex
	running bool
	cancel  context.CancelFunc

	// watchMu serializes hand-overs of the held symbols to the hub.
	watchMu   sync.Mutex
	hub       *tickerHub
	published []string
}

// AuthError is the private stream's refusal of the key (its auth answer
// has success false). It wraps exchanges.ErrPermanent: the account is
// polled instead.
type AuthError struct {
	Account string
	Msg     string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("account %s: Bybit's private websocket refused the API key (%q): check api_key and api_secret, the key's IP binding, and that this host's clock is right (the signature expires in 10 s)", e.Account, e.Msg)
}

func (e *AuthError) Unwrap() error { return exchanges.ErrPermanent }

// Stream connects the private stream (position, wallet, order) and the
// public tickers of the held symbols, and keeps the live view current until
// ctx is done or Close; see exchanges.Streamer. A second Stream while one
// runs is an error.
func (e *Exchange) Stream(ctx context.Context, changed func()) error {
	e.st.mu.Lock()
	if e.st.running {
		e.st.mu.Unlock()
		return fmt.Errorf("account %s: Stream is already running", e.name)
	}
	ctx, cancel := context.WithCancel(ctx)
	e.st.running, e.st.cancel = true, cancel
	e.st.mu.Unlock()
	kick := make(chan struct{}, 1)
	v := &e.live
	v.mu.Lock()
	v.changed, v.kick, v.marksErr = changed, kick, nil
	v.mu.Unlock()

	hub := tickerHubFor(e.wsBase, e.log)
	e.st.watchMu.Lock()
	e.st.hub, e.st.published = hub, nil
	e.st.watchMu.Unlock()
	e.publishSymbols()

	var wg sync.WaitGroup
	wg.Go(func() { e.reseeder(ctx, kick) })
	err := e.privateLoop(ctx)
	cancel()
	wg.Wait()

	e.st.watchMu.Lock()
	e.st.hub, e.st.published = nil, nil
	e.st.watchMu.Unlock()
	hub.forget(e)
	v.mu.Lock()
	v.changed, v.kick = nil, nil
	v.privUp, v.privReason = false, "private stream stopped"
	v.mu.Unlock()
	e.st.mu.Lock()
	e.st.running, e.st.cancel = false, nil
	e.st.mu.Unlock()
	if err != nil {
		return fmt.Errorf("account %s: private stream: %w", e.name, err)
	}
	return nil
}

// stopStream stops a running Stream (Close).
func (e *Exchange) stopStream() {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if e.st.cancel != nil {
		e.st.cancel()
	}
}

// StreamStatus reports the private stream's health and the public one's
// as the hub last said; see exchanges.Streamer.
func (e *Exchange) StreamStatus() exchanges.StreamStatus {
	v := &e.live
	now := e.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	silent := v.privUp && now.Sub(v.privLast) > e.sc.silence
	marks := v.marksErr != nil && len(v.ps) > 0
	s := exchanges.StreamStatus{Up: v.privUp && !silent && !marks, Reconnects: v.reconnects}
	switch {
	case !v.privUp && v.privReason != "":
		s.Reason = v.privReason
	case !v.privUp:
		s.Reason = "private stream not connected"
	case silent:
		s.Reason = fmt.Sprintf("private stream silent for more than %s", e.sc.silence)
	case marks:
		s.Reason = "public tickers stream down: " + v.marksErr.Error()
	}
	return s
}

// privateLoop keeps the private stream connected until ctx ends (nil) or
// the key is refused (an *AuthError).
func (e *Exchange) privateLoop(ctx context.Context) error {
	bo := pace.Backoff{Min: e.sc.backoffMin, Max: e.sc.backoffMax}
	reconnect := false
	for {
		born := time.Now()
		err := e.privateConn(ctx, reconnect)
		if ctx.Err() != nil {
			return nil
		}
		var ae *AuthError
		if errors.As(err, &ae) {
			e.privDown(err.Error())
			return err
		}
		reconnect = true
		e.privDown("private stream reconnecting after: " + err.Error())
		e.log.Info("bybit private stream lost, reconnecting (the account is polled meanwhile)", "err", err)
		if time.Since(born) > e.sc.stable {
			bo.Reset()
		}
		if !pace.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
}

// privateConn runs one private connection: auth, subscribe, then every
// message until it fails. reconnect says an earlier connection was up.
func (e *Exchange) privateConn(ctx context.Context, reconnect bool) error {
	c, err := dialWS(ctx, e.wsBase+"/v5/private")
	if err != nil {
		return fmt.Errorf("connect to %s: %w", hostOf(e.wsBase), err)
	}
	defer c.CloseNow()
	auth, err := e.authMsg()
	if err != nil {
		return &AuthError{Account: e.name, Msg: err.Error()}
	}
	if err := writeWS(ctx, c, auth); err != nil {
		return err
	}
	for authed := false; !authed; {
		b, err := readWS(ctx, c, e.sc.silence)
		if err != nil {
			return err
		}
		var f wsFrame
		if json.Unmarshal(b, &f) != nil || f.Op != "auth" {
			continue
		}
		if f.Success == nil || !*f.Success {
			return &AuthError{Account: e.name, Msg: f.RetMsg}
		}
		authed = true
	}
	for _, m := range subscribeMsgs("subscribe", privateTopics) {
		if err := writeWS(ctx, c, m); err != nil {
			return err
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go pinger(pctx, c, e.sc.ping)
	for {
		b, err := readWS(ctx, c, e.sc.silence)
		if err != nil {
			return err
		}
		if err := e.privateMsg(b, reconnect); err != nil {
			return err
		}
	}
}

// privateMsg handles one private message.
func (e *Exchange) privateMsg(b []byte, reconnect bool) error {
	now := e.now()
	var f wsFrame
	if err := json.Unmarshal(b, &f); err != nil {
		e.log.Warn("bybit private stream: a message is not JSON; skipped", "err", err)
		return nil
	}
	e.live.heard(now)
	j := journaled{received: now}
	switch {
	case f.Op == "subscribe":
		if f.Success != nil && !*f.Success {
			return fmt.Errorf("subscription refused: %s", f.RetMsg)
		}
		e.privUp(reconnect)
		return nil
	case f.Op != "":
		return nil // pong
	case strings.HasPrefix(f.Topic, "wallet"):
		var rows []bybitapi.V5WalletBalanceList
		if err := decodeRows(f.Data, &rows); err != nil {
			return e.unreadable(f.Topic, err)
		}
		for i := range rows {
			if rows[i].AccountType == string(bybitapi.AccountTypeV5UNIFIED) || len(rows) == 1 {
				j.wallet = &rows[i]
			}
		}
	case strings.HasPrefix(f.Topic, "position"):
		var rows []wsPosition
		if err := decodeRows(f.Data, &rows); err != nil {
			return e.unreadable(f.Topic, err)
		}
		for _, r := range rows {
			if r.Category != "" && r.Category != "linear" {
				continue
			}
			if r.AvgPrice == "" {
				r.AvgPrice = r.EntryPrice
			}
			j.pos = append(j.pos, r.V5GetPositionInfoItem)
		}
	case strings.HasPrefix(f.Topic, "order"):
		var rows []wsOrder
		if err := decodeRows(f.Data, &rows); err != nil {
			return e.unreadable(f.Topic, err)
		}
		for _, r := range rows {
			if r.Category == "" || r.Category == "linear" {
				j.orders = append(j.orders, r.V5GetOrder)
			}
		}
	default:
		return nil
	}
	if e.apply(j) {
		e.publishSymbols()
	}
	e.live.notify()
	return nil
}

// decodeRows decodes a private topic's data into the library's row types.
// They have no decoders of their own today; a panic in one a later version
// adds is an unreadable row, not a dead daemon.
func decodeRows(data []byte, rows any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoding the row panicked: %v", r)
		}
	}()
	return json.Unmarshal(data, rows)
}

// wsPosition is the position topic's row: the REST row's fields, with the
// entry price named entryPrice.
type wsPosition struct {
	bybitapi.V5GetPositionInfoItem
	EntryPrice string `json:"entryPrice"`
	Category   string `json:"category"`
}

// wsOrder is the order topic's row: the REST row and its category (the
// topic carries every category).
type wsOrder struct {
	bybitapi.V5GetOrder
	Category string `json:"category"`
}

// unreadable makes the view wait for a REST read after a row it cannot
// decode; the connection goes on.
func (e *Exchange) unreadable(topic string, err error) error {
	e.log.Warn("bybit private stream: a row could not be read; waiting for a REST snapshot", "topic", topic, "err", err)
	v := &e.live
	v.mu.Lock()
	v.gen++
	v.gapGen = v.gen
	v.stale = true
	v.ask()
	v.mu.Unlock()
	return nil
}

// privUp records the private stream subscribed: what was pushed before
// this connection is unknown, so a seeded view waits for a REST read.
func (e *Exchange) privUp(reconnect bool) {
	v := &e.live
	v.mu.Lock()
	v.privUp, v.privReason, v.privLast = true, "", e.now()
	v.gen++
	v.gapGen = v.gen
	if v.seeded {
		v.stale = true
		v.ask()
	}
	if reconnect {
		v.reconnects++
	}
	cb := v.changed
	v.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// privDown records the private stream down.
func (e *Exchange) privDown(reason string) {
	v := &e.live
	v.mu.Lock()
	flip := v.privUp
	v.privUp, v.privReason = false, reason
	cb := v.changed
	v.mu.Unlock()
	if flip && cb != nil {
		cb()
	}
}

// publishSymbols hands the held symbols to the hub when they differ from
// what it last got.
func (e *Exchange) publishSymbols() {
	e.st.watchMu.Lock()
	defer e.st.watchMu.Unlock()
	e.live.mu.Lock()
	same := slices.Equal(e.live.symbols, e.st.published)
	syms := slices.Clone(e.live.symbols)
	e.live.mu.Unlock()
	if same || e.st.hub == nil {
		return
	}
	e.st.published = syms
	e.st.hub.watch(e, syms)
}

// reseeder runs the reads the view asks for (a reconnect, a new symbol, a
// row it could not read), at most once per reseedGap, coalesced.
func (e *Exchange) reseeder(ctx context.Context, kick chan struct{}) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		if wait := e.sc.reseedGap - time.Since(last); !last.IsZero() && wait > 0 && !pace.Sleep(ctx, wait) {
			return
		}
		if !e.live.needsSeed() {
			continue
		}
		last = time.Now()
		if err := e.reseed(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			e.log.Warn("live view: the REST read that reseeds it failed; trying again", "err", err)
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
}

func (e *Exchange) reseed(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	_, err := e.read(ctx)
	return err
}

// needsSeed reports whether the view waits for a REST read.
func (v *liveView) needsSeed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seeded && v.stale
}
