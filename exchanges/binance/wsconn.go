package binance

import (
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/adshao/go-binance/v2/futures"
	"github.com/gorilla/websocket"
)

// serveWS is go-binance's wsServe (futures/websocket.go) with what the
// daemon needs that go-binance lacks: the endpoint is an argument rather
// than the package variables every Ws…Serve function reads (accounts on
// different endpoints would race on them), and stopping a connection is
// free of the data race go-binance's version has on its "silent" flag
// (written by the stopping goroutine, read by the reading one), which the
// race detector reports whenever a connection is stopped. It dials with
// go-binance's own dialer (futures.WsGetReadWriteConnection), reads until
// the connection fails or stop is closed (done closes then), and hands
// every message to handler; a read error reaches errHandler unless the
// connection was stopped. A connection that receives neither a message
// nor a ping for wsReadTimeout is closed: that is how a half-open one is
// found (Binance pings every 3 minutes).
func serveWS(endpoint string, handler func([]byte), errHandler func(error)) (done, stop chan struct{}, err error) {
	c, err := futures.WsGetReadWriteConnection(&futures.WsConfig{Endpoint: endpoint})
	if err != nil {
		return nil, nil, err
	}
	c.SetReadLimit(655350) // go-binance's
	extend := func() { _ = c.SetReadDeadline(time.Now().Add(wsReadTimeout)) }
	c.SetPingHandler(func(data string) error {
		extend()
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	extend()
	done, stop = make(chan struct{}), make(chan struct{})
	var stopped atomic.Bool
	go func() {
		select {
		case <-stop:
			stopped.Store(true)
		case <-done:
		}
		c.Close()
	}()
	go func() {
		defer close(done)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				if !stopped.Load() {
					errHandler(err)
				}
				return
			}
			extend()
			handler(msg)
		}
	}()
	return done, stop, nil
}

// wsReadTimeout: a connection silent this long (no message, no ping) is
// dead. Binance pings every 3 minutes; mark-price streams send every 1 or
// 3 s and have a tighter watch of their own (markhub.go). A variable for
// tests.
var wsReadTimeout = 10 * time.Minute

// decodeWS returns a handler that decodes each message into a new T, as
// go-binance's handlers do, and passes it on; a message that does not
// decode goes to errHandler and the connection goes on.
func decodeWS[T any](handle func(*T), errHandler func(error)) func([]byte) {
	return func(msg []byte) {
		v := new(T)
		if err := json.Unmarshal(msg, v); err != nil {
			errHandler(err)
			return
		}
		handle(v)
	}
}
