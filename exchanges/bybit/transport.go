package bybit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Bybit's per-IP limit (docs/v5/rate-limit): 600 requests in any 5 s; past
// it HTTP 403 and a ban of at least 10 minutes.
const (
	ipWindow   = 5 * time.Second
	ipLimit    = 600
	hotRequest = ipLimit * 8 / 10 // the gate holds requests above 80%
	ipBanWait  = 10 * time.Minute
	// defaultLimitWait is the pause after retCode 10006 without a usable
	// X-Bapi-Limit-Reset-Timestamp; maxLimitWait bounds a reset time that
	// can only be damaged (Bybit's per-endpoint windows are one second).
	defaultLimitWait = 5 * time.Second
	maxLimitWait     = 10 * time.Minute
)

// Bybit's rate-limit retCodes (sent with HTTP 200): codeRateLimit "Too
// many visits", codeIPRateLimit "Exceeded the IP Rate Limit".
const (
	codeRateLimit   = 10006
	codeIPRateLimit = 10018
)

// RateLimitError is returned, without anything being sent, while a Bybit
// rate limit (retCode 10006 or 10018: Status is the retCode) or IP ban
// (HTTP 403: Status 403) is in force for a host. It is transient: the adapter resumes by itself
// once Until has passed.
type RateLimitError struct {
	Host   string
	Status int // 10006, 10018 or 403
	Until  time.Time
}

func (e *RateLimitError) Error() string {
	what := "rate limit (retCode 10006, X-Bapi-Limit-Reset-Timestamp)"
	switch e.Status {
	case http.StatusForbidden:
		what = "IP ban (HTTP 403: more than 600 requests in 5 s from this IP; Bybit bans for at least 10 minutes)"
	case codeIPRateLimit:
		what = "IP rate limit (retCode 10018, X-Bapi-Limit-Reset-Timestamp)"
	}
	return fmt.Sprintf("bybit %s: sending nothing to %s until %s", what, e.Host, e.Until.UTC().Format(time.RFC3339))
}

// hostLimit is what is known about one Bybit host. Bybit counts requests
// and bans per IP, so every account of a process that talks to the same
// host shares one (limitFor).
type hostLimit struct {
	mu          sync.Mutex
	bannedUntil time.Time
	banStatus   int
	window      int64 // the 5 s window counted (unix time / 5 s)
	count       int   // requests sent in it
	heldAt      int64 // the window a hold was last logged
}

var (
	limitsMu sync.Mutex
	limits   = map[string]*hostLimit{}
)

// limitFor returns the shared limit state of host.
func limitFor(host string) *hostLimit {
	limitsMu.Lock()
	defer limitsMu.Unlock()
	l, ok := limits[host]
	if !ok {
		l = &hostLimit{}
		limits[host] = l
	}
	return l
}

// callInfo carries the HTTP status of one call back to the adapter.
type callInfo struct{ status int }

type callInfoKey struct{}

// transport is the http.RoundTripper under every hirokisan/bybit client of
// an Exchange. It refuses to send inside a ban, holds requests that would
// take the IP above 80% of 600 per 5 s until the next window, reads the
// limit headers, and turns retCode 10006 and 10018 and HTTP 403 into bans: the
// library drops headers and status codes.
type transport struct {
	base http.RoundTripper
	now  func() time.Time
	log  *slog.Logger

	// The key's own budget (Bybit limits each UID per endpoint a second):
	// after an answer whose X-Bapi-Limit-Status says none is left, the
	// next request waits for X-Bapi-Limit-Reset-Timestamp (at most
	// maxUIDWait) instead of drawing a 10006.
	uidMu   sync.Mutex
	uidZero time.Time // when the exhausted budget resets; zero: not exhausted
}

// maxUIDWait caps the wait for a key's per-endpoint budget (its windows
// are a second long).
const maxUIDWait = 5 * time.Second

// ctxTransport gives requests the context of the call: hirokisan/bybit
// builds its requests without one.
type ctxTransport struct {
	ctx context.Context
	t   *transport
}

func (c ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.t.RoundTrip(req.WithContext(c.ctx))
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	l := limitFor(host)
	if err := t.reserve(req.Context(), host, l); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	// Bybit bodies are small; 16 MiB bounds a misbehaving server. The
	// body is read here, inside the timeout, to see the retCode.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if ci, ok := req.Context().Value(callInfoKey{}).(*callInfo); ok {
		ci.status = resp.StatusCode
	}
	now := t.now()
	reset := resetTime(resp.Header.Get("X-Bapi-Limit-Reset-Timestamp"))
	if n, err := strconv.Atoi(resp.Header.Get("X-Bapi-Limit-Status")); err == nil && resp.StatusCode == http.StatusOK && !isRateLimitCode(retCodeOf(data)) {
		// (A 10006 or a 403 is a ban, below: no waiting inside it.)
		t.uidMu.Lock()
		t.uidZero = time.Time{}
		if n <= 0 && reset.After(now) {
			t.uidZero = reset
		}
		t.uidMu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case resp.StatusCode == http.StatusForbidden:
		l.ban(now.Add(ipBanWait), http.StatusForbidden)
	case resp.StatusCode == http.StatusOK && isRateLimitCode(retCodeOf(data)):
		until := reset
		if !until.After(now) {
			until = now.Add(defaultLimitWait)
		}
		if until.Sub(now) > maxLimitWait {
			until = now.Add(maxLimitWait)
		}
		l.ban(until, retCodeOf(data))
	}
	return resp, nil
}

// isRateLimitCode: hirokisan/bybit reports both as *RateLimitV5Error, and
// both stop requests until the reset time.
func isRateLimitCode(c int) bool { return c == codeRateLimit || c == codeIPRateLimit }

// ban extends the ban to until. l.mu is held.
func (l *hostLimit) ban(until time.Time, status int) {
	if until.After(l.bannedUntil) {
		l.bannedUntil, l.banStatus = until, status
	}
}

// reserve waits until one more request fits in this 5 s window under 80%
// of the IP's limit and counts it. It fails with ctx's error when ctx ends
// first, and with a *RateLimitError while a ban is in force.
func (t *transport) reserve(ctx context.Context, host string, l *hostLimit) error {
	t.uidMu.Lock()
	until := t.uidZero
	t.uidMu.Unlock()
	if wait := until.Sub(t.now()); wait > 0 {
		timer := time.NewTimer(min(wait, maxUIDWait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	for {
		now := t.now()
		w := now.UnixNano() / int64(ipWindow)
		l.mu.Lock()
		if now.Before(l.bannedUntil) {
			err := &RateLimitError{Host: host, Status: l.banStatus, Until: l.bannedUntil}
			l.mu.Unlock()
			return err
		}
		if w != l.window {
			l.window, l.count = w, 0
		}
		if l.count < hotRequest {
			l.count++
			l.mu.Unlock()
			return nil
		}
		first := l.heldAt != w
		l.heldAt = w
		l.mu.Unlock()
		wait := time.Unix(0, (w+1)*int64(ipWindow)).Sub(now)
		if first && t.log != nil {
			t.log.Info("holding Bybit requests until the next 5 s window: this IP is at 80% of 600 requests per 5 s", "host", host, "wait", wait.Round(time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// resetTime parses X-Bapi-Limit-Reset-Timestamp (ms); zero when absent.
func resetTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// retCodeOf is the retCode of a Bybit JSON body, -1 when it has none.
func retCodeOf(data []byte) int {
	var env struct {
		RetCode *int `json:"retCode"`
	}
	if json.Unmarshal(data, &env) != nil || env.RetCode == nil {
		return -1
	}
	return *env.RetCode
}
