package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid/hyperliquidtest"
)

// The venues' rate limits, end to end: the real binary polls a fake
// through a recording proxy, which stamps every request the daemon sends
// with its arrival time and answer, so "nothing was sent inside the ban"
// is read off the wire, not off the daemon's logs.

// wireRequest is one request the daemon sent.
type wireRequest struct {
	at     time.Time
	path   string
	status int
	body   string // the answer's first bytes (Bybit's retCode)
}

// wire is the proxy's record. Its methods are safe for concurrent use.
type wire struct {
	mu   sync.Mutex
	reqs []wireRequest
}

func (w *wire) all() []wireRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wireRequest(nil), w.reqs...)
}

// first is the first request from index from on that match accepts.
func (w *wire) first(from int, match func(wireRequest) bool) (int, wireRequest, bool) {
	for i, r := range w.all() {
		if i >= from && match(r) {
			return i, r, true
		}
	}
	return 0, wireRequest{}, false
}

// capture keeps the status and the start of the body of an answer.
type capture struct {
	http.ResponseWriter
	status int
	head   []byte
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if n := 256 - len(c.head); n > 0 {
		c.head = append(c.head, b[:min(n, len(b))]...)
	}
	return c.ResponseWriter.Write(b)
}

// recordingProxy is a proxy on 127.0.0.1 in front of target that records
// every request it passes on.
func recordingProxy(t *testing.T, target string) (string, *wire) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	w := &wire{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		at := time.Now()
		c := &capture{ResponseWriter: rw}
		rp.ServeHTTP(c, r)
		w.mu.Lock()
		w.reqs = append(w.reqs, wireRequest{at: at, path: r.URL.Path, status: c.status, body: string(c.head)})
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, w
}

// sentBetween lists the requests that arrived after from and before to.
func sentBetween(reqs []wireRequest, from, to time.Time) []wireRequest {
	var out []wireRequest
	for _, r := range reqs {
		if r.at.After(from) && r.at.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// TestHyperliquid429BacksOff: after a 429 the daemon sends nothing to the
// host for 10 s (Hyperliquid gives no reset time); a 429 on the first
// request after that doubles the pause to 20 s; then it resumes, and
// data-stale (stale_after 60 s) does not fire for a blindness shorter
// than stale_after.
func TestHyperliquid429BacksOff(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: about 40 s")
	}
	t.Parallel()
	srv := hyperliquidtest.NewServer(t, hyperliquidtest.Options{})
	endpoint, wire := recordingProxy(t, srv.URL)
	d := startDaemon(t, hyperliquidConfig(t, endpoint, "    poll_interval: 1s\n    stale_after: 60s\n", ""))
	waitUntil(t, 60*time.Second, "two good polls", func() bool { return srv.Count("clearinghouseState") >= 2 })

	srv.SetRateLimited(true)
	is429 := func(r wireRequest) bool { return r.status == http.StatusTooManyRequests }
	var i0, i1 int
	var r0, r1 wireRequest
	waitUntil(t, 30*time.Second, "a 429", func() (ok bool) { i0, r0, ok = wire.first(0, is429); return })
	waitUntil(t, 40*time.Second, "the first request after the 10 s backoff (answered 429 again)", func() (ok bool) {
		i1, r1, ok = wire.first(i0+1, is429)
		return
	})
	srv.SetRateLimited(false)
	if got := r1.at.Sub(r0.at); got < 10*time.Second {
		t.Errorf("the daemon asked again %s after a 429, inside the 10 s backoff", got.Round(time.Millisecond))
	}
	if extra := wire.all()[i0+1 : i1]; len(extra) > 0 {
		t.Errorf("%d requests sent inside the first backoff, first at +%s", len(extra), extra[0].at.Sub(r0.at).Round(time.Millisecond))
	}

	var r2 wireRequest
	waitUntil(t, 40*time.Second, "the daemon to resume after the doubled backoff", func() (ok bool) {
		_, r2, ok = wire.first(i1+1, func(r wireRequest) bool { return r.status == http.StatusOK })
		return
	})
	if got := r2.at.Sub(r1.at); got < 20*time.Second {
		t.Errorf("after a second 429 the daemon asked again %s later; the backoff doubles to 20 s", got.Round(time.Millisecond))
	}
	if early := sentBetween(wire.all(), r1.at, r1.at.Add(20*time.Second)); len(early) > 0 {
		t.Errorf("%d requests sent inside the doubled backoff, first at +%s", len(early), early[0].at.Sub(r1.at).Round(time.Millisecond))
	}
	n := srv.Count("clearinghouseState")
	waitUntil(t, 20*time.Second, "polls to succeed again", func() bool { return srv.Count("clearinghouseState") >= n+2 })
	if lines := d.output(); count(lines, "data-stale") > 0 {
		t.Errorf("data-stale fired during a %s blindness, shorter than stale_after 60s:\n%s", r2.at.Sub(r0.at).Round(time.Second), strings.Join(lines, "\n"))
	}
}

// TestBybit10006WaitsForReset: retCode 10006 with X-Bapi-Limit-Reset-Timestamp
// 12 s ahead stops every request to the host until then (longer than the
// adapter's 5 s pause without a reset time, so that one would show); then
// polling resumes.
func TestBybit10006WaitsForReset(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	endpoint, wire := recordingProxy(t, srv.URL)
	d := startDaemon(t, bybitConfig(t, endpoint, ""))
	waitUntil(t, 60*time.Second, "two good polls", func() bool { return srv.Count("/v5/account/wallet-balance") >= 2 })

	until := time.Now().Add(12 * time.Second)
	srv.RateLimit(until)
	limited := func(r wireRequest) bool { return strings.Contains(r.body, `"retCode":10006`) }
	var i0 int
	var r0 wireRequest
	waitUntil(t, 20*time.Second, "a 10006 answer", func() (ok bool) { i0, r0, ok = wire.first(0, limited); return })
	var r1 wireRequest
	waitUntil(t, 30*time.Second, "the daemon to resume after the reset time", func() (ok bool) {
		_, r1, ok = wire.first(i0+1, func(wireRequest) bool { return true })
		return
	})
	// The reset time travels in whole milliseconds.
	if r1.at.Before(until.Add(-time.Millisecond)) {
		t.Errorf("a request (%s, answered %q) %s before X-Bapi-Limit-Reset-Timestamp", r1.path, r1.body, until.Sub(r1.at).Round(time.Millisecond))
	}
	if got := wire.all()[i0+1:]; len(got) > 0 && limited(got[0]) {
		t.Errorf("the first request after the reset was refused again: %q", got[0].body)
	}
	n := srv.Count("/v5/account/wallet-balance")
	waitUntil(t, 20*time.Second, "polls to succeed again", func() bool { return srv.Count("/v5/account/wallet-balance") >= n+2 })
	if lines := d.output(); count(lines, "data-stale") > 0 {
		t.Errorf("data-stale fired during a %s pause:\n%s", until.Sub(r0.at).Round(time.Second), strings.Join(lines, "\n"))
	}
}

// TestBybit403BanPersists: HTTP 403 (an IP ban, at least 10 minutes) stops
// every request to the host, and the ban survives a restart: the restarted
// daemon sends nothing and its log says until when. (Waiting the 10
// minutes out is the adapter's unit tests' job.)
func TestBybit403BanPersists(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	srv := bybittest.NewServer(t, bybittest.Options{})
	srv.Hedge()
	endpoint, wire := recordingProxy(t, srv.URL)
	cfg := bybitConfig(t, endpoint, "")
	first := startDaemon(t, cfg)
	waitUntil(t, 60*time.Second, "two good polls", func() bool { return srv.Count("/v5/account/wallet-balance") >= 2 })

	srv.IPBan(true)
	var i0 int
	var r0 wireRequest
	waitUntil(t, 20*time.Second, "a 403", func() (ok bool) {
		i0, r0, ok = wire.first(0, func(r wireRequest) bool { return r.status == http.StatusForbidden })
		return
	})
	time.Sleep(4 * time.Second) // four polls' worth
	if extra := wire.all()[i0+1:]; len(extra) > 0 {
		t.Errorf("%d requests sent after a 403, the first %s later", len(extra), extra[0].at.Sub(r0.at).Round(time.Millisecond))
	}
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, first, 15*time.Second)

	// The fake would answer now: only the stored ban keeps the daemon quiet.
	srv.IPBan(false)
	sent := len(wire.all())
	second := startDaemon(t, cfg)
	time.Sleep(6 * time.Second)
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, second, 15*time.Second)
	if extra := wire.all()[sent:]; len(extra) > 0 {
		t.Errorf("the restarted daemon sent %d requests inside the stored 10-minute ban, the first to %s", len(extra), extra[0].path)
	}
	log := second.errb.String()
	m := regexp.MustCompile(`IP ban [^"]*until (\S+Z)`).FindStringSubmatch(log)
	var until time.Time
	if m != nil {
		until, _ = time.Parse(time.RFC3339, m[1])
	}
	if want := r0.at.Add(10 * time.Minute); until.Before(want.Add(-time.Second)) || until.After(want.Add(10*time.Second)) {
		t.Errorf("the restarted daemon's log does not say the IP is banned until 10 minutes after the 403 (%s):\n%s", want.UTC().Format(time.RFC3339), log)
	}
}
