package binance

import (
	"context"
	"sync"
	"time"
)

// go-binance reads its websocket endpoints from package variables
// (futures.BaseWsPrivateMainUrl, futures.BaseCombinedMarketMainURL,
// delivery.BaseWsMainUrl, …) when a Ws…Serve function builds its URL, which
// it does synchronously before dialling. Accounts can point at different
// endpoints (testnet, stream_endpoint), so every Serve call goes through
// wsDial: it sets the variables and calls Serve under one lock, and spaces
// connection attempts so that hundreds of accounts starting together stay
// inside Binance's 300 connection attempts per 5 minutes per IP.
//
// The lock is a one-slot semaphore so that a dial waiting behind another
// account's handshake still gives up when its ctx ends (Close, reload,
// shutdown); the handshake itself stays under the lock, since go-binance
// reads the variables and dials in one call.
var wsDialSem = make(chan struct{}, 1)

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

// wsDial waits for a connection-attempt token (or ctx), then runs set and
// serve under wsDialSem: set assigns go-binance's endpoint variables for this
// account, serve calls the Ws…Serve function. The dial happens inside serve,
// under the lock; go-binance bounds its handshake at 45 s.
func wsDial(ctx context.Context, set func(), serve func() (done, stop chan struct{}, err error)) (done, stop chan struct{}, err error) {
	if err := wsToken(ctx); err != nil {
		return nil, nil, err
	}
	select {
	case wsDialSem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-wsDialSem }()
	set()
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
