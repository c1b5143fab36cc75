package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// heartbeatTimeout bounds one ping, connection and body included.
	heartbeatTimeout = 10 * time.Second
	// heartbeatRedirects is how many redirects a ping follows; monitoring
	// services redirect once or twice at most, more is a loop.
	heartbeatRedirects = 3
)

// Heartbeat pings a dead man's switch URL (healthchecks.io style) after
// successful cycles, so that the daemon's own death is noticed from outside:
// the service alerts when the pings stop.
//
// Beat never blocks: the ping runs in its own goroutine, at most one is in
// flight (a Beat while one is running is dropped) and at most one starts per
// interval. The URL often holds the check's token in its path or query, so
// logs name only its scheme and host.
type Heartbeat struct {
	target string // scheme://host, the only part of the URL that is logged
	url    string
	bad    bool // the URL did not parse as http(s); logged instead of pinged
	every  time.Duration
	client *http.Client
	log    *slog.Logger

	// done, when set, is called after every finished ping (tests).
	done func()

	mu   sync.Mutex
	busy bool
	last time.Time // start of the last ping; zero before the first
}

// NewHeartbeat returns a heartbeat that GETs rawURL at most once per every
// (every <= 0: on every Beat). client may be nil; a given client is copied,
// its Transport kept, and its redirect policy replaced by the heartbeat's
// own. An empty rawURL returns nil, and Beat on a nil *Heartbeat does
// nothing, so the daemon can call it whether or not heartbeat_url is set.
func NewHeartbeat(rawURL string, every time.Duration, client *http.Client, logger *slog.Logger) *Heartbeat {
	if rawURL == "" {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var c http.Client
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
		if len(via) > heartbeatRedirects {
			// No URL in the message: it would carry the token.
			return errors.New("stopped after too many redirects")
		}
		return nil
	}
	h := &Heartbeat{url: rawURL, every: every, client: &c, log: logger, target: "invalid URL"}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		h.bad = true
	} else {
		h.target = u.Scheme + "://" + u.Host
	}
	return h
}

// Beat starts a ping unless one is in flight or the last one started less
// than the interval ago. It returns at once.
func (h *Heartbeat) Beat() {
	if h == nil {
		return
	}
	h.mu.Lock()
	now := time.Now() // tests run in a testing/synctest bubble, which fakes it
	if h.busy || (!h.last.IsZero() && now.Sub(h.last) < h.every) {
		h.mu.Unlock()
		return
	}
	h.busy, h.last = true, now
	h.mu.Unlock()

	go func() {
		h.ping()
		h.mu.Lock()
		h.busy = false
		h.mu.Unlock()
		if h.done != nil {
			h.done()
		}
	}()
}

// ping sends one GET and logs its failure. Nothing it logs contains the URL
// beyond scheme and host.
func (h *Heartbeat) ping() {
	if h.bad {
		// url.Parse's error quotes the URL: say only that it is wrong.
		h.log.Error("heartbeat_url is not a valid http(s) URL; no heartbeat is sent")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), heartbeatTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		h.log.Error("heartbeat request could not be built", "target", h.target)
		return
	}
	req.Header.Set("User-Agent", "marginwatch-heartbeat")
	resp, err := h.client.Do(req)
	if err != nil {
		h.log.Warn("heartbeat ping failed", "target", h.target, "err", redact(err))
		return
	}
	// Drain a little so the connection can be reused for the next ping.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		h.log.Warn("heartbeat ping rejected", "target", h.target, "status", resp.StatusCode)
		return
	}
	h.log.Debug("heartbeat ping sent", "target", h.target)
}

// redact strips the *url.Error wrapper, whose message quotes the full URL
// (and with it the token); the cause underneath names at most host:port.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}
