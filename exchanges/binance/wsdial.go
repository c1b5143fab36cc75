package binance

import (
	"context"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

// Every websocket connection attempt goes through wsDial, which spaces
// them so that hundreds of accounts starting (or reconnecting) together
// stay inside Binance's 300 connection attempts per 5 minutes per IP.

// wsPace paces connection attempts: a burst of 10, then one every 1.2 s
// (300 per 5 min is one a second; we keep a margin).
var wsPace = pace.New(10, 1200*time.Millisecond)

// wsDial waits for a connection-attempt token (or ctx), then runs serve,
// which dials (serveWS).
func wsDial(ctx context.Context, serve func() (done, stop chan struct{}, err error)) (done, stop chan struct{}, err error) {
	if err := wsPace.Wait(ctx); err != nil {
		return nil, nil, err
	}
	return serve()
}
