package binance

import (
	"context"
	"sync"
	"time"
)

// Every websocket connection attempt goes through wsDial, which spaces
// them so that hundreds of accounts starting (or reconnecting) together
// stay inside Binance's 300 connection attempts per 5 minutes per IP.

// Connection-attempt pacing: a burst of wsDialBurst, then one every
// wsDialEvery (300 per 5 min is one a second; we keep a margin).
const (
	wsDialBurst = 10
	wsDialEvery = 1200 * time.Millisecond
)

var wsTokens = struct {
	sync.Mutex
	n    float64
	last time.Time
}{n: wsDialBurst}

// wsDial waits for a connection-attempt token (or ctx), then runs serve,
// which dials (serveWS).
func wsDial(ctx context.Context, serve func() (done, stop chan struct{}, err error)) (done, stop chan struct{}, err error) {
	if err := wsToken(ctx); err != nil {
		return nil, nil, err
	}
	return serve()
}

// wsToken takes one connection-attempt token, waiting for it.
func wsToken(ctx context.Context) error {
	for {
		wsTokens.Lock()
		now := time.Now()
		if !wsTokens.last.IsZero() {
			wsTokens.n = min(wsDialBurst, wsTokens.n+float64(now.Sub(wsTokens.last))/float64(wsDialEvery))
		}
		wsTokens.last = now
		if wsTokens.n >= 1 {
			wsTokens.n--
			wsTokens.Unlock()
			return nil
		}
		wait := time.Duration((1 - wsTokens.n) * float64(wsDialEvery))
		wsTokens.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
