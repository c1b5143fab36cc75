package binance

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/adshao/go-binance/v2/delivery"
	"github.com/adshao/go-binance/v2/futures"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

// codeNoListenKey is Binance's answer to a keepalive of a listen key that
// lapsed or was closed.
const codeNoListenKey = -1125

// defaultUserWS is go-binance's user-data stream bases.
var defaultUserWS = struct{ usdm, usdmTest, coinm, coinmTest string }{
	futures.BaseWsPrivateMainUrl, futures.BaseWsPrivateTestnetUrl, delivery.BaseWsMainUrl, delivery.BaseWsTestnetUrl,
}

// userStreamBase is the account's user-data stream base URL:
// stream_endpoint (scheme://host[:port]) with Binance's path (/private/ws
// on USDⓈ-M, /ws on COIN-M), or go-binance's production or testnet URL.
func userStreamBase(kind string, testnet bool, endpoint string) string {
	endpoint = strings.TrimRight(endpoint, "/")
	switch {
	case endpoint != "" && kind == USDM:
		return endpoint + "/private/ws"
	case endpoint != "":
		return endpoint + "/ws"
	case kind == USDM && testnet:
		return defaultUserWS.usdmTest
	case kind == USDM:
		return defaultUserWS.usdm
	case testnet:
		return defaultUserWS.coinmTest
	}
	return defaultUserWS.coinm
}

// userConn is one user-data connection.
type userConn struct {
	done, stop chan struct{}
	expired    chan struct{} // a listenKeyExpired arrived
	once       sync.Once
	mu         sync.Mutex
	err        error // the read error that ended it
}

// close stops the connection. go-binance stops on a receive from stop
// (its close, in its words); a send serves as well and needs no builtin
// close, which this package's tests shadow.
func (c *userConn) close() {
	c.once.Do(func() {
		select {
		case c.stop <- struct{}{}:
		case <-c.done:
		}
	})
}

func (c *userConn) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return "the connection closed"
	}
	return c.err.Error()
}

// userStream keeps the account's user-data stream connected until ctx is
// done: listen key, connection, keepalive, reconnection with jittered
// backoff, the forced reconnect before Binance's 24 hours, key renewal. It
// returns an error only when the listen key cannot be created for good
// (the API key is refused).
func (e *Exchange) userStream(ctx context.Context) error {
	var (
		key      string
		failures int
		first    = true
	)
	defer func() {
		if key != "" {
			e.closeKey(key)
		}
	}()
	for ctx.Err() == nil {
		if key == "" {
			k, err := e.listenKey(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, exchanges.ErrPermanent) {
					e.userState(false, "user-data stream: "+err.Error(), false)
					return err
				}
				e.userState(false, "user-data stream: cannot create a listen key: "+err.Error(), false)
				if !pace.Sleep(ctx, e.backoff(failures)) {
					return nil
				}
				failures++
				continue
			}
			key = k
		}
		c, err := e.dialUser(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.userState(false, "user-data stream reconnecting after: "+err.Error(), false)
			e.log.Info("user-data stream: connection failed; trying again", "err", err)
			// POST again: Binance hands back the same key while it lives,
			// a new one when it lapsed.
			key = ""
			if !pace.Sleep(ctx, e.backoff(failures)) {
				return nil
			}
			failures++
			continue
		}
		// What Binance pushed before this connection is lost: the view
		// is read again over REST (Binance's order: stream first, then
		// the snapshot), and not trusted until then — from before the
		// daemon hears that the stream is up.
		e.live.reconnected()
		e.userState(true, "", !first)
		if !first {
			e.log.Info("user-data stream connected again")
		}
		first = false
		start := time.Now()
		var why string
		var renew bool
		c, renew, why = e.serveUser(ctx, c, key)
		c.close()
		if ctx.Err() != nil {
			return nil
		}
		e.userState(false, "user-data stream reconnecting after: "+why, false)
		e.log.Info("user-data stream lost; reconnecting", "reason", why)
		if renew {
			key = ""
			continue // a lapsed key: a new one at once
		}
		if time.Since(start) > e.sc.backoffReset {
			failures = 0
		}
		if !pace.Sleep(ctx, e.backoff(failures)) {
			return nil
		}
		failures++
	}
	return nil
}

// serveUser watches connection c until it ends, ctx is done or the key
// must be renewed (renew); on the way it keeps the key alive and replaces
// the connection before 24 hours (a new one first, then the old one
// closed, so that no event falls between). It returns the connection it
// ended with.
func (e *Exchange) serveUser(ctx context.Context, c *userConn, key string) (_ *userConn, renew bool, why string) {
	keep := time.NewTimer(e.sc.keepEvery)
	defer keep.Stop()
	force := time.NewTimer(e.sc.forceEvery)
	defer force.Stop()
	for {
		select {
		case <-ctx.Done():
			return c, false, "stopped"
		case <-c.done:
			return c, false, c.reason()
		case <-c.expired:
			return c, true, "the listen key expired (listenKeyExpired)"
		case <-keep.C:
			err := e.keepalive(ctx, key)
			var ae *APIError
			switch {
			case err == nil:
				keep.Reset(e.sc.keepEvery)
			case errors.As(err, &ae) && ae.Code == codeNoListenKey:
				return c, true, "the listen key does not exist any more (keepalive answered -1125)"
			case ctx.Err() != nil:
				return c, false, "stopped"
			default:
				e.log.Warn("user-data stream: listen-key keepalive failed; trying again in a minute", "err", err)
				keep.Reset(e.sc.keepRetry)
			}
		case <-force.C:
			nc, err := e.dialUser(ctx, key)
			if err != nil {
				if ctx.Err() != nil {
					return c, false, "stopped"
				}
				e.log.Warn("user-data stream: the connection that replaces the day-old one failed; trying again in a minute", "err", err)
				force.Reset(e.sc.keepRetry)
				continue
			}
			c.close()
			c = nc
			e.userState(true, "", true)
			force.Reset(e.sc.forceEvery)
		}
	}
}

// dialUser opens a user-data connection for key through wsDial, which sets
// go-binance's endpoint variables for this account under its lock.
func (e *Exchange) dialUser(ctx context.Context, key string) (*userConn, error) {
	c := &userConn{expired: make(chan struct{}, 1)}
	errh := func(err error) {
		if frameError(err) {
			e.badFrame(err)
			return
		}
		c.mu.Lock()
		c.err = redact(err, key)
		c.mu.Unlock()
	}
	// go-binance's WsUserDataServe(WithEvents) URLs and decoding, on serveWS.
	var serve func() (done, stop chan struct{}, err error)
	if e.kind == USDM {
		endpoint := e.streamBase + "?listenKey=" + key
		serve = func() (chan struct{}, chan struct{}, error) {
			return serveWS(endpoint, decodeWS(func(ev *futures.WsUserDataEvent) { e.onUSDM(c, ev) }, errh), errh)
		}
	} else {
		endpoint := e.streamBase + "/" + key
		serve = func() (chan struct{}, chan struct{}, error) {
			return serveWS(endpoint, decodeWS(func(ev *delivery.WsUserDataEvent) { e.onCOINM(c, ev) }, errh), errh)
		}
	}
	done, stop, err := wsDial(ctx, serve)
	if err != nil {
		return nil, redact(err, key)
	}
	c.done, c.stop = done, stop
	return c, nil
}

// frameError reports whether err is about one frame go-binance could not
// decode (malformed JSON, an event type it does not know) rather than the
// connection ending: the connection goes on.
func frameError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	msg := err.Error()
	return errors.As(err, &se) || errors.As(err, &te) ||
		strings.HasPrefix(msg, "unexpected event type") || strings.HasPrefix(msg, "unexpected type for E")
}

// badFrame logs a frame that could not be decoded: at most one warning a
// minute, the rest at debug. The frame itself is not logged.
func (e *Exchange) badFrame(err error) {
	e.frames.mu.Lock()
	now := time.Now()
	warn := now.Sub(e.frames.last) >= time.Minute
	n := e.frames.n
	if warn {
		e.frames.last, e.frames.n = now, 0
	} else {
		e.frames.n++
	}
	e.frames.mu.Unlock()
	if warn {
		e.log.Warn("user-data stream: a message could not be decoded and was skipped; the connection goes on", "err", err, "skipped_since_last_warning", n)
		return
	}
	e.log.Debug("user-data stream: a message could not be decoded and was skipped", "err", err)
}

// frameLog rate-limits badFrame's warnings.
type frameLog struct {
	mu   sync.Mutex
	last time.Time
	n    int
}

// redact takes the listen key out of an error's text (a URL in a dial
// error would carry it).
func redact(err error, key string) error {
	if err == nil || key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), key, "<listenKey>"))
}

// listenKey creates (or, while one lives, gets back) the account's listen
// key: POST /fapi/v1/listenKey or /dapi/v1/listenKey (weight 1) through
// the adapter's client, so bans and the weight count apply.
func (e *Exchange) listenKey(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	var key string
	op := "POST /fapi/v1/listenKey"
	if e.dc != nil {
		op = "POST /dapi/v1/listenKey"
	}
	err := e.do(ctx, op, func(ctx context.Context) error {
		var err error
		if e.fc != nil {
			key, err = e.fc.NewStartUserStreamService().Do(ctx)
		} else {
			key, err = e.dc.NewStartUserStreamService().Do(ctx)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", errors.New(op + ": malformed response from Binance: no listenKey")
	}
	return key, nil
}

// keepalive extends the listen key by 60 minutes (PUT, weight 1).
func (e *Exchange) keepalive(ctx context.Context, key string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	op := "PUT /fapi/v1/listenKey"
	if e.dc != nil {
		op = "PUT /dapi/v1/listenKey"
	}
	return e.do(ctx, op, func(ctx context.Context) error {
		if e.fc != nil {
			return e.fc.NewKeepaliveUserStreamService().ListenKey(key).Do(ctx)
		}
		return e.dc.NewKeepaliveUserStreamService().ListenKey(key).Do(ctx)
	})
}

// closeKey closes the listen key (DELETE, weight 1), best effort, on the
// way out.
func (e *Exchange) closeKey(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	op := "DELETE /fapi/v1/listenKey"
	if e.dc != nil {
		op = "DELETE /dapi/v1/listenKey"
	}
	err := e.do(ctx, op, func(ctx context.Context) error {
		if e.fc != nil {
			return e.fc.NewCloseUserStreamService().ListenKey(key).Do(ctx)
		}
		return e.dc.NewCloseUserStreamService().ListenKey(key).Do(ctx)
	})
	if err != nil {
		e.log.Debug("user-data stream: closing the listen key failed; it lapses within the hour", "err", err)
	}
}

// backoff is the wait before attempt n+1: exponential from backoffMin to
// backoffMax, jittered over its upper half so that accounts that failed
// together do not retry together.
func (e *Exchange) backoff(n int) time.Duration {
	d := e.sc.backoffMax
	if n < 30 {
		d = min(e.sc.backoffMin<<n, e.sc.backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}
