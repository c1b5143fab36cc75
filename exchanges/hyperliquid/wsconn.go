package hyperliquid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

// wsMessage is a message to Hyperliquid's websocket.
type wsMessage struct {
	Method       string        `json:"method"`
	Subscription *subscription `json:"subscription,omitempty"`
}

type subscription struct {
	Type string `json:"type"`
	User string `json:"user,omitempty"`
	Coin string `json:"coin,omitempty"`
}

// wsFrame is a message from it: {"channel": …, "data": …}. The first
// frame of a connection is the text "Websocket connection established.",
// which is no JSON and is skipped.
type wsFrame struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// liqEvent is a userEvents liquidation.
type liqEvent struct {
	Lid            int64  `json:"lid"`
	Liquidator     string `json:"liquidator"`
	LiquidatedUser string `json:"liquidated_user"`
	NtlPos         string `json:"liquidated_ntl_pos"`
	AccountValue   string `json:"liquidated_account_value"`
}

// maxFrame bounds a frame: a clearinghouseState of many positions is a few
// tens of kB.
const maxFrame = 1 << 20

// wsConn is one websocket connection.
type wsConn struct {
	c    *websocket.Conn
	once sync.Once
	wmu  sync.Mutex // one writer at a time
}

// dial opens the account's websocket.
func (e *Exchange) dial(ctx context.Context) (*wsConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, e.wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", e.wsURL, err)
	}
	c.SetReadLimit(maxFrame)
	return &wsConn{c: c}, nil
}

// send writes m, giving up after 10 s.
func (c *wsConn) send(ctx context.Context, m wsMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("sending %s: %w", m.Method, err)
	}
	return nil
}

// close closes the connection (at once: it has failed or is not wanted).
func (c *wsConn) close() { c.once.Do(func() { _ = c.c.CloseNow() }) }

// errSilent is a connection that brought no frame for the silence limit.
var errSilent = errors.New("no frame, not even a pong")

// readLoop hands every frame to handle until the connection fails, ctx
// ends, a frame asks to end it (handle's error) or no frame comes for
// silence (the connection is then closed: that is how a half-open one is
// found).
func (c *wsConn) readLoop(ctx context.Context, silence time.Duration, handle func([]byte) error) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, silence)
		_, msg, err := c.c.Read(rctx)
		timedOut := rctx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			if timedOut && ctx.Err() == nil {
				return fmt.Errorf("%w for %s", errSilent, silence)
			}
			return err
		}
		if err := handle(msg); err != nil {
			return err
		}
	}
}

// frame applies one frame, received now; an error ends the connection
// (Hyperliquid refused a subscription).
func (e *Exchange) frame(msg []byte) error {
	received := e.now()
	e.live.heard(received)
	if len(msg) == 0 || msg[0] != '{' {
		return nil // "Websocket connection established."
	}
	var f wsFrame
	if err := json.Unmarshal(msg, &f); err != nil {
		e.log.Warn("hyperliquid websocket: a frame is not JSON; skipped", "err", err)
		return nil
	}
	changed := false
	switch f.Channel {
	case "clearinghouseState":
		var d struct {
			Dex   string              `json:"dex"`
			User  string              `json:"user"`
			State *clearinghouseState `json:"clearinghouseState"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil || d.State == nil {
			e.log.Warn("hyperliquid websocket: a clearinghouseState push could not be read; waiting for a REST snapshot", "err", err)
			e.live.invalidate(received)
			changed = true
			break
		}
		if d.Dex != "" || (d.User != "" && !sameAddress(d.User, e.address)) {
			return nil // another dex or another user's
		}
		changed = e.applyState(d.State, received)
	case "activeAssetCtx":
		var d struct {
			Coin string `json:"coin"`
			Ctx  struct {
				MarkPx  num `json:"markPx"`
				Funding num `json:"funding"`
			} `json:"ctx"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil {
			e.log.Warn("hyperliquid websocket: an activeAssetCtx push could not be read; skipped", "err", err)
			return nil
		}
		changed = e.live.applyTick(d.Coin, tick{mark: d.Ctx.MarkPx.V, funding: d.Ctx.Funding.V, fundingSet: d.Ctx.Funding.Set, at: received})
	case "user":
		var d struct {
			Liquidation *liqEvent `json:"liquidation"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil {
			e.log.Warn("hyperliquid websocket: a userEvents push could not be read; skipped", "err", err)
			return nil
		}
		if l := d.Liquidation; l != nil && sameAddress(l.LiquidatedUser, e.address) {
			changed = e.liquidation(l, received)
		}
	case "orderUpdates":
		// Its orders carry no trigger, order type or reduce-only flag (the
		// SDKs' WsBasicOrder), so a stop cannot be told from a limit order:
		// any order change makes the view wait for a Snapshot, whose
		// frontendOpenOrders classifies as every poll does (doc.go).
		e.live.invalidate(received)
		changed = true
	case "error":
		return fmt.Errorf("hyperliquid refused: %s", snippet(f.Data))
	}
	if changed {
		e.notify()
	}
	return nil
}

// invalidate makes the view wait for a Snapshot that begins after now (a
// push it cannot read, an order change).
func (v *liveView) invalidate(received time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gap()
	v.note(received)
}

// wsPace spaces connection attempts process-wide so that many accounts
// starting (or reconnecting) together do not hammer the venue: a burst of
// 10, then one a second.
var wsPace = pace.New(10, time.Second)
