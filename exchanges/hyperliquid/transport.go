package hyperliquid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// weightLimit is Hyperliquid's REST budget: 1,200 weight per minute and IP.
const weightLimit = 1200

// hotWeight is 80% of it: the gate holds a request that would cross it
// until the next minute, so pollers together never reach the limit.
const hotWeight = weightLimit * 8 / 10

// Backoff after a 429, which documents no reset time: the first ban lasts
// firstBackoff; a 429 within twice the last ban's length after it ended
// doubles it, up to maxBackoff.
const (
	firstBackoff = 10 * time.Second
	maxBackoff   = 5 * time.Minute
	// maxRetryAfter bounds a Retry-After, live or restored: longer is
	// more likely a bad header or clock than a ban.
	maxRetryAfter = time.Hour
)

// maxBody bounds a response: the largest one read (metaAndAssetCtxs, every
// perp with its margin tables) is a few hundred kB.
const maxBody = 8 << 20

// Request weights (docs …/api/rate-limits): clearinghouseState 2, every
// other info request 20; userFunding adds 1 per 20 rows returned and
// candleSnapshot 1 per 60 candles (newer docs; charged after the answer).
func weightOf(typ string) int {
	switch typ {
	case "clearinghouseState", "l2Book", "allMids", "orderStatus", "spotClearinghouseState", "exchangeStatus":
		return 2
	case "userRole":
		return 60
	default:
		return 20
	}
}

// itemWeight is the weight a response of n rows adds to typ's.
func itemWeight(typ string, n int) int {
	switch typ {
	case "userFunding", "userFills", "userFillsByTime", "fundingHistory", "userNonFundingLedgerUpdates":
		return n / 20
	case "candleSnapshot":
		return n / 60
	}
	return 0
}

// RateLimitError is returned, without anything being sent, while a 429 ban
// is in force for a host. It is transient: the adapter resumes by itself
// once Until has passed.
type RateLimitError struct {
	Host  string
	Until time.Time
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("hyperliquid rate limit (HTTP 429): sending nothing to %s until %s (Hyperliquid gives no reset time: backing off, doubling while it recurs); fewer accounts on this IP or a longer poll_interval avoid it", e.Host, e.Until.UTC().Format(time.RFC3339))
}

// APIError is an answer that is neither data nor a rate limit: transient
// for the caller, since a well-formed request by a valid address should
// never get one.
type APIError struct {
	Op     string
	Status int
	Msg    string
}

func (e *APIError) Error() string {
	if e.Status >= 500 {
		return fmt.Sprintf("%s: Hyperliquid HTTP %d (venue trouble; retrying on the next poll): %s", e.Op, e.Status, e.Msg)
	}
	return fmt.Sprintf("%s: Hyperliquid HTTP %d, unexpected for this request (if it persists, the endpoint is not Hyperliquid's /info or its API changed: check `endpoint`): %s", e.Op, e.Status, e.Msg)
}

// hostLimit is the shared state of one host: Hyperliquid counts weight and
// limits per IP, so every account of the process that talks to the same
// host shares one (see limitFor).
type hostLimit struct {
	mu          sync.Mutex
	bannedUntil time.Time
	backoff     time.Duration // length of the last ban
	minute      int64         // clock minute counted
	used        int           // weight counted in it
	heldAt      int64         // minute a hold was last logged
}

var (
	limitsMu sync.Mutex
	limits   = map[string]*hostLimit{}
)

// limitFor returns the shared limit state of host.
func limitFor(host string) *hostLimit {
	limitsMu.Lock()
	defer limitsMu.Unlock()
	l := limits[host]
	if l == nil {
		l = &hostLimit{}
		limits[host] = l
	}
	return l
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// reserve waits until w more weight fits this minute under hotWeight and
// counts it. It fails at once with a *RateLimitError inside a ban, and with
// ctx's error when ctx ends while holding. A request heavier than the share
// is let through alone in an empty minute.
func (e *Exchange) reserve(ctx context.Context, l *hostLimit, w int) error {
	for {
		now := e.now()
		m := minuteOf(now)
		l.mu.Lock()
		if now.Before(l.bannedUntil) {
			err := &RateLimitError{Host: e.host, Until: l.bannedUntil}
			l.mu.Unlock()
			return err
		}
		if l.minute != m {
			l.minute, l.used = m, 0
		}
		if l.used+w <= hotWeight || l.used == 0 {
			l.used += w
			l.mu.Unlock()
			return nil
		}
		used, first := l.used, l.heldAt != m
		l.heldAt = m
		l.mu.Unlock()
		wait := time.Unix((m+1)*60, 0).Sub(now)
		if first {
			e.log.Info("holding Hyperliquid requests until the next minute: this IP's request weight is at 80% of the limit",
				"host", e.host, "used_weight", used, "limit", weightLimit, "wait", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// errGateFull is a cached read not sent because the minute's weight has
// no room for it (see tryReserve).
var errGateFull = errors.New("this IP's request weight this minute leaves no room for a cached read: it waits for a poll with room")

// cacheFloor is the weight cached reads may fill at any point of a
// minute: a lone account's first poll with 4 coins (22 + 20 + 20 + 4 × 21
// = 146) is whole even at the start of a minute.
const cacheFloor = 150

// tryReserve counts w more weight for a cached read if it fits under the
// minute's pace: hotWeight × the part of the minute gone, at least
// cacheFloor. It never waits: errGateFull when it does not fit, a
// *RateLimitError inside a ban. So a cached read never holds up a poll,
// and cached reads early in a minute never take the weight the polls'
// own reads need later in it (the polls' reads, up to hotWeight −
// cacheFloor a minute, are never held because of them).
func (e *Exchange) tryReserve(l *hostLimit, w int) error {
	now := e.now()
	m := minuteOf(now)
	gone := now.Sub(time.Unix(m*60, 0))
	bar := max(int(int64(hotWeight)*int64(gone)/int64(time.Minute)), cacheFloor)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.bannedUntil) {
		return &RateLimitError{Host: e.host, Until: l.bannedUntil}
	}
	if l.minute != m {
		l.minute, l.used = m, 0
	}
	if l.used+w > bar {
		return errGateFull
	}
	l.used += w
	return nil
}

// charge adds weight counted after the answer (rows returned).
func (l *hostLimit) charge(now time.Time, w int) {
	if w <= 0 {
		return
	}
	l.mu.Lock()
	if l.minute == minuteOf(now) {
		l.used += w
	}
	l.mu.Unlock()
}

// ban starts a ban after a 429 at now: firstBackoff, doubled when the
// previous ban ended less than twice its length ago, at least retryAfter.
// A 429 inside the ban in force (another request of the same burst) only
// extends it to its retryAfter: one burst is one ban, not several doublings.
func (l *hostLimit) ban(now time.Time, retryAfter time.Duration) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.bannedUntil) {
		if until := now.Add(retryAfter); until.After(l.bannedUntil) {
			l.bannedUntil = until
		}
		return l.bannedUntil
	}
	d := firstBackoff
	if l.backoff > 0 && now.Sub(l.bannedUntil) < 2*l.backoff {
		d = min(2*l.backoff, maxBackoff)
	}
	l.backoff = d
	l.bannedUntil = now.Add(max(d, retryAfter))
	return l.bannedUntil
}

// infoRequest is the body of POST /info.
type infoRequest struct {
	Type      string      `json:"type"`
	User      string      `json:"user,omitempty"`
	Dex       *string     `json:"dex,omitempty"`
	StartTime int64       `json:"startTime,omitempty"`
	EndTime   int64       `json:"endTime,omitempty"`
	Req       *candlesReq `json:"req,omitempty"`
}

type candlesReq struct {
	Coin      string `json:"coin"`
	Interval  string `json:"interval"`
	StartTime int64  `json:"startTime"`
	EndTime   int64  `json:"endTime"`
}

// op names a request in errors and logs.
func (r *infoRequest) op() string { return "POST /info " + r.Type }

// info sends r through the gate, waiting while it holds, and decodes the
// answer into out (a pointer). rows, when not nil, counts the rows of the
// decoded answer for the weight charged after it.
func (e *Exchange) info(ctx context.Context, r infoRequest, out any, rows func() int) error {
	return e.send(ctx, r, out, rows, true)
}

// infoIfRoom is info for a cached read: it fails at once with errGateFull
// where info would wait on the gate.
func (e *Exchange) infoIfRoom(ctx context.Context, r infoRequest, out any, rows func() int) error {
	return e.send(ctx, r, out, rows, false)
}

// send is info (wait) or infoIfRoom.
func (e *Exchange) send(ctx context.Context, r infoRequest, out any, rows func() int, wait bool) error {
	op := r.op()
	l := limitFor(e.host)
	var err error
	if wait {
		err = e.reserve(ctx, l, weightOf(r.Type))
	} else {
		err = e.tryReserve(l, weightOf(r.Type))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/info", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w (check `endpoint`)", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.httpc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", op, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("%s: answer larger than %d MiB: not Hyperliquid's /info (check `endpoint`)", op, maxBody>>20)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		now := e.now()
		until := l.ban(now, retryAfter(resp.Header.Get("Retry-After"), now))
		e.log.Warn("Hyperliquid answered 429 (rate limit): sending nothing to this host until the backoff ends", "host", e.host, "until", until)
		return fmt.Errorf("%s: %w", op, &RateLimitError{Host: e.host, Until: until})
	case resp.StatusCode != http.StatusOK:
		return &APIError{Op: op, Status: resp.StatusCode, Msg: snippet(data)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: malformed answer from Hyperliquid (%v): is `endpoint` Hyperliquid's REST base?", op, err)
	}
	if rows != nil {
		l.charge(e.now(), itemWeight(r.Type, rows()))
	}
	return nil
}

// retryAfter parses a Retry-After header at now, delay seconds or an HTTP
// date: 0 when absent, unusable or past, at most maxRetryAfter.
func retryAfter(h string, now time.Time) time.Duration {
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(min(max(s, 0), int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// snippet is the start of an error body, for a log line.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "empty body"
	}
	if len(b) > 200 {
		return strconv.Quote(string(b[:200])) + "…"
	}
	return strconv.Quote(string(b))
}
