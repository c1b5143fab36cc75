package binance

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// The gate. Binance counts request weight per IP and clock minute, and
// every account of a process shares the IP: each request reserves its
// documented weight (weightOf) on its host's hostLimit before it is sent.
// The minute's usage is what we reserved, raised to what Binance reports
// (X-MBX-USED-WEIGHT-1M, which counts other processes on the IP too) plus
// what is still in flight. A request that would take it above hotWeight
// (80%) waits for the next minute, so pollers together never cross it,
// whatever the plan (watcher/budget) got wrong.

// weightOf is Binance's documented request weight of one request of this
// adapter (USDⓈ-M, COIN-M and spot's key check). Unknown paths count 1,
// Binance's default.
func weightOf(path string, q url.Values) int {
	has := func(k string) bool { return q.Get(k) != "" }
	switch path {
	case "/fapi/v2/account", "/fapi/v3/account", "/fapi/v2/positionRisk", "/fapi/v3/positionRisk", "/dapi/v1/account":
		return 5
	case "/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders", "/dapi/v1/openOrders":
		if has("symbol") {
			return 1
		}
		return 40
	case "/fapi/v1/income":
		return 30
	case "/dapi/v1/income":
		return 20
	case "/fapi/v1/forceOrders", "/dapi/v1/forceOrders":
		if has("symbol") {
			return 20
		}
		return 50
	case "/fapi/v1/premiumIndex":
		if has("symbol") {
			return 1
		}
		return premiumAllWeight
	case "/dapi/v1/premiumIndex":
		return 10
	case "/fapi/v1/klines", "/dapi/v1/klines":
		n := 500
		if v, err := strconv.Atoi(q.Get("limit")); err == nil {
			n = v
		}
		switch {
		case n < 100:
			return 1
		case n < 500:
			return 2
		case n <= 1000:
			return 5
		default:
			return 10
		}
	default:
		return 1
	}
}

// ungated turns the gate off, as before it existed: only for the test
// that shows what happens then.
var ungated bool

// minuteOf is Binance's weight window of t: the clock minute.
func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// roll starts a new minute's count. l.mu is held.
func (l *hostLimit) roll(m int64) {
	if m != l.minute {
		l.minute, l.reserved, l.inflight = m, 0, 0
	}
}

// reserve waits until w more weight fits this minute under hotWeight on
// host and counts it; it returns the minute counted in. It fails with ctx's
// error when ctx ends first, and with a *RateLimitError while a ban is in
// force. One request heavier than the whole share is let through alone in
// an empty minute.
func (t *transport) reserve(ctx context.Context, host string, l *hostLimit, w int) (int64, error) {
	for {
		now := t.now()
		m := minuteOf(now)
		l.mu.Lock()
		if now.Before(l.bannedUntil) {
			err := &RateLimitError{Host: host, Status: l.banStatus, Until: l.bannedUntil}
			l.mu.Unlock()
			return 0, err
		}
		l.roll(m)
		if l.reserved+w <= hotWeight || l.reserved == 0 || ungated {
			l.reserved += w
			l.inflight += w
			l.mu.Unlock()
			return m, nil
		}
		used := l.reserved
		first := l.heldAt != m
		l.heldAt = m
		l.mu.Unlock()
		wait := time.Unix((m+1)*60, 0).Sub(now)
		if first && t.log != nil {
			t.log.Info("holding Binance requests until the next minute: this IP's request weight is at 80% of the limit",
				"host", host, "used_weight", used, "limit", weightLimit, "wait", wait.Round(time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return 0, ctx.Err()
		case <-timer.C:
		}
	}
}

// settle ends the reservation of w made in minute m: it is no longer in
// flight, and Binance's report (used; -1 when none) made at now raises the
// minute's count.
func (l *hostLimit) settle(m int64, w, used int, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.minute != m {
		return // a new minute has started: its count owes nothing to this one
	}
	l.inflight -= w
	if used >= 0 && minuteOf(now) == m {
		l.reserved = max(l.reserved, used+l.inflight)
	}
}

// usage is the weight counted on l this minute. l.mu is held.
func (l *hostLimit) usage(now time.Time) int {
	m := minuteOf(now)
	u := 0
	if l.minute == m {
		u = l.reserved
	}
	if minuteOf(l.usedAt) == m {
		u = max(u, l.used)
	}
	return u
}
