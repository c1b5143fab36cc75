package binance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// weightLimit is Binance's REQUEST_WEIGHT budget per minute and IP on the
// futures APIs (exchangeInfo rateLimits: 2,400 per MINUTE).
const weightLimit = 2400

// hotWeight is 80% of the budget: the gate (governor.go) holds requests
// that would cross it until the next minute.
const hotWeight = weightLimit * 8 / 10

// cacheWeight is 75% of the budget: above it the adapter stops refreshing
// anything it can serve from its caches until the minute window rolls
// over, so that the reads a poll cannot do without still fit under
// hotWeight.
const cacheWeight = weightLimit * 3 / 4

// Default waits when Binance sends 429 or 418 without a usable Retry-After.
const (
	defaultRetryAfter429 = time.Minute
	defaultRetryAfter418 = 2 * time.Minute
)

// RateLimitError is returned, without anything being sent, while Binance's
// rate limit (HTTP 429) or IP ban (HTTP 418) is in force for a host. It is
// transient: the adapter resumes by itself once Until has passed.
type RateLimitError struct {
	Host   string
	Status int // 429 or 418
	Until  time.Time
}

func (e *RateLimitError) Error() string {
	what := "rate limit"
	if e.Status == http.StatusTeapot {
		what = "IP ban"
	}
	return fmt.Sprintf("binance %s (HTTP %d): sending nothing to %s until %s, as Retry-After asked", what, e.Status, e.Host, e.Until.UTC().Format(time.RFC3339))
}

// hostLimit is what is known about one Binance host's limits. Binance counts
// weight and bans per IP, so every account that talks to the same host
// shares one hostLimit (see limitFor).
type hostLimit struct {
	mu          sync.Mutex
	bannedUntil time.Time
	banStatus   int
	used        int       // last X-MBX-USED-WEIGHT-1M
	usedAt      time.Time // when it was read

	// The gate (governor.go): the clock minute counted, the weight counted
	// in it (reserved, raised to Binance's report plus what is in flight),
	// the weight sent and not yet answered, and the minute a hold was last
	// logged.
	minute             int64
	reserved, inflight int
	heldAt             int64
}

var (
	limitsMu sync.Mutex
	limits   = map[string]*hostLimit{}
)

// limitFor returns the shared limit state of host. The map grows with the
// number of distinct hosts a process talks to, which is a handful.
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

// callInfo carries the HTTP status of one call from the transport back to
// the adapter: go-binance drops the status code, and a 401 or a 5xx HTML
// page must be told apart from Binance's own JSON errors.
type callInfo struct {
	status int
}

type callInfoKey struct{}

func withCallInfo(ctx context.Context) (context.Context, *callInfo) {
	ci := &callInfo{}
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

// transport is the http.RoundTripper under every go-binance client of an
// Exchange: it enforces bans and the weight gate (governor.go) and records
// weight, because go-binance's services drop the response headers.
type transport struct {
	base http.RoundTripper
	now  func() time.Time
	log  *slog.Logger // the gate's holds; nil: not logged
	// weight is the last X-MBX-USED-WEIGHT-1M seen on any host.
	weight atomic.Int64
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	l := limitFor(req.URL.Host)
	w := weightOf(req.URL.Path, req.URL.Query())
	m, err := t.reserve(req.Context(), req.URL.Host, l, w)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}

	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		l.settle(m, w, -1, t.now())
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	if ci, ok := req.Context().Value(callInfoKey{}).(*callInfo); ok {
		ci.status = resp.StatusCode
	}
	now := t.now()
	used, err := strconv.Atoi(resp.Header.Get("X-Mbx-Used-Weight-1m"))
	if err != nil || used < 0 {
		used = -1
	}
	l.settle(m, w, used, now)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// go-binance reads any status below 400 as an answer: a
		// redirect's body would pass for an (empty) account.
		resp.Body.Close()
		return nil, &APIError{Status: resp.StatusCode, Msg: "a redirect, not followed (the API key is sent to endpoint only): check endpoint; it must be Binance's API base itself, not an address that redirects"}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if used >= 0 {
		l.used, l.usedAt = used, now
		t.weight.Store(int64(used))
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusTeapot {
		wait := retryAfter(resp.Header.Get("Retry-After"), now)
		if wait <= 0 {
			wait = defaultRetryAfter429
			if resp.StatusCode == http.StatusTeapot {
				wait = defaultRetryAfter418
			}
		}
		if u := now.Add(wait); u.After(l.bannedUntil) {
			l.bannedUntil, l.banStatus = u, resp.StatusCode
		}
	}
	return resp, nil
}

// cancelBody ends a request's timeout once its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// hot reports whether host has used 75% of this minute's weight (what
// Binance reported or what the gate counted). Binance's weight window is
// the clock minute, so a count from an earlier minute says nothing about
// this one.
func (t *transport) hot(host string) bool {
	l := limitFor(host)
	now := t.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.usage(now) >= cacheWeight
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}
