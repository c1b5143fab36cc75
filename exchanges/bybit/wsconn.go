package bybit

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/marginwatch/marginwatch/exchanges/internal/pace"
)

// Websocket bases (stream_endpoint overrides them); the daemon appends
// /v5/private and /v5/public/linear.
const (
	StreamMainnetURL = "wss://stream.bybit.com"
	StreamTestnetURL = "wss://stream-testnet.bybit.com"
)

// wsPace paces connection attempts process-wide: a burst of 10, then one
// a second, so that hundreds of accounts starting or reconnecting together
// stay well inside Bybit's 500 connections per 5 minutes per IP.
var wsPace = pace.New(10, time.Second)

const (
	wsDialWait  = 10 * time.Second // one dial, handshake included
	wsWriteWait = 10 * time.Second
	wsReadLimit = 1 << 20
)

// dialWS opens one connection to url once a token allows it.
func dialWS(ctx context.Context, url string) (*websocket.Conn, error) {
	if err := wsPace.Wait(ctx); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, wsDialWait)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(wsReadLimit)
	return c, nil
}

// errSilent: the connection stayed open but sent nothing, not even a pong.
var errSilent = errors.New("no message")

// readWS reads the next message. A connection that brings nothing (not
// even the answer to our pings) for silence is closed: that is how a
// half-open one is found.
func readWS(ctx context.Context, c *websocket.Conn, silence time.Duration) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, silence)
	defer cancel()
	_, b, err := c.Read(rctx)
	if err != nil && ctx.Err() == nil && rctx.Err() != nil {
		err = fmt.Errorf("%w for %s", errSilent, silence)
	}
	return b, err
}

func writeWS(ctx context.Context, c *websocket.Conn, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, wsWriteWait)
	defer cancel()
	return c.Write(wctx, websocket.MessageText, msg)
}

var pingMsg = []byte(`{"op":"ping"}`)

// pinger sends Bybit's application ping every `every` until ctx ends; a
// failed write closes the connection (the reader then reports it).
func pinger(ctx context.Context, c *websocket.Conn, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := writeWS(ctx, c, pingMsg); err != nil {
				c.CloseNow()
				return
			}
		}
	}
}

// wsFrame is the envelope of every Bybit websocket message.
type wsFrame struct {
	Op      string          `json:"op"`
	Success *bool           `json:"success"`
	RetMsg  string          `json:"ret_msg"`
	Topic   string          `json:"topic"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
}

// subscribeMsgs are the subscribe (or unsubscribe) requests for topics,
// at most 10 arguments each (Bybit's limit per request).
func subscribeMsgs(op string, topics []string) [][]byte {
	var out [][]byte
	for len(topics) > 0 {
		n := min(10, len(topics))
		b, _ := json.Marshal(map[string]any{"op": op, "args": topics[:n]})
		out = append(out, b)
		topics = topics[n:]
	}
	return out
}

// authMsg is the private stream's {"op":"auth"} request: the key, an
// expiry 10 s ahead (ms) and the signature of "GET/realtime"+expires, hex
// HMAC-SHA256 or, for an RSA key, base64 RSA-SHA256 (as the REST side
// signs).
func (e *Exchange) authMsg() ([]byte, error) {
	expires := e.now().Add(10 * time.Second).UnixMilli()
	payload := "GET/realtime" + strconv.FormatInt(expires, 10)
	var sig string
	if e.rsaKey {
		k, err := parseRSA(e.secret)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(payload))
		raw, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			return nil, fmt.Errorf("cannot sign with the RSA key: %w", err)
		}
		sig = base64.StdEncoding.EncodeToString(raw)
	} else {
		m := hmac.New(sha256.New, []byte(e.secret))
		m.Write([]byte(payload))
		sig = hex.EncodeToString(m.Sum(nil))
	}
	return json.Marshal(map[string]any{"op": "auth", "args": []any{e.key, expires, sig}})
}

// parseRSA parses the PEM private key New has checked (checkRSA).
func parseRSA(secret string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(secret))
	if block == nil {
		return nil, errors.New("api_secret: the PEM private key does not decode")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("api_secret: not a PKCS#1 or PKCS#8 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("api_secret: not an RSA private key")
	}
	return rk, nil
}

// wsBaseOf normalises a stream endpoint: no trailing slash, http(s) as ws(s).
func wsBaseOf(base string) string {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if b, ok := strings.CutPrefix(base, "http://"); ok {
		return "ws://" + b
	}
	if b, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + b
	}
	return base
}
