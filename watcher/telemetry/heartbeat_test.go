package telemetry

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// token stands for the secret part of a heartbeat URL.
const token = "0b7ec1a5-5ec2-e7ok-en00-c0ffee"

// lockedBuffer is an io.Writer for a slog handler shared with ping
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func debugLogger(buf *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestHeartbeatServer pings a real server and checks what reached it and
// what was logged, never the token.
func TestHeartbeatServer(t *testing.T) {
	tests := []struct {
		name     string
		handler  func(w http.ResponseWriter, r *http.Request)
		url      func(srv *httptest.Server) string
		wantHits int64
		wantLog  []string
	}{
		{
			name:     "ok",
			handler:  func(w http.ResponseWriter, r *http.Request) {},
			wantHits: 1,
			wantLog:  []string{"level=DEBUG", `msg="heartbeat ping sent"`},
		},
		{
			name:     "non-2xx is logged",
			handler:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such check", http.StatusNotFound) },
			wantHits: 1,
			wantLog:  []string{"level=WARN", `msg="heartbeat ping rejected"`, "status=404"},
		},
		{
			name: "redirect loop stops",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/again/"+token+"?n=1", http.StatusFound)
			},
			// The first request and three redirects.
			wantHits: 4,
			wantLog:  []string{"level=WARN", `msg="heartbeat ping failed"`, "too many redirects"},
		},
		{
			name:    "connection refused",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			url: func(srv *httptest.Server) string {
				u := srv.URL + "/ping/" + token
				srv.Close()
				return u
			},
			wantLog: []string{"level=WARN", `msg="heartbeat ping failed"`, "connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			var gotPath atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					gotPath.Store(r.URL.RequestURI())
				}
				tt.handler(w, r)
			}))
			defer srv.Close()
			target := srv.URL // scheme://host, what the log may show
			u := srv.URL + "/ping/" + token + "?rid=" + token
			if tt.url != nil {
				u = tt.url(srv)
			}

			var logs lockedBuffer
			h := NewHeartbeat(u, time.Minute, nil, debugLogger(&logs))
			done := make(chan struct{}, 1)
			h.done = func() { done <- struct{}{} }
			h.Beat()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("ping did not finish")
			}

			if got := hits.Load(); got != tt.wantHits {
				t.Errorf("server hits = %d, want %d", got, tt.wantHits)
			}
			if tt.wantHits > 0 {
				if got, want := gotPath.Load(), "/ping/"+token+"?rid="+token; got != want {
					t.Errorf("request URI = %v, want %v", got, want)
				}
			}
			out := logs.String()
			for _, want := range append(tt.wantLog, "target="+target) {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, token) || strings.Contains(out, "/ping") || strings.Contains(out, "/again") {
				t.Errorf("log leaks the URL path or token:\n%s", out)
			}
		})
	}
}

// countingTransport answers every request with 200, or, when hang is set,
// blocks until the request's context ends.
type countingTransport struct {
	calls atomic.Int64
	hang  bool
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if c.hang {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r, Header: http.Header{}}, nil
}

func TestHeartbeatRateLimit(t *testing.T) {
	// Each step advances the fake clock, beats (several times: only the
	// first may count) and expects a total number of pings.
	steps := []struct {
		advance   time.Duration
		wantCalls int64
	}{
		{0, 1},                // first beat pings
		{0, 1},                // same instant: limited
		{59 * time.Second, 1}, // still inside the minute
		{time.Second, 2},      // a minute after the first ping
		{30 * time.Second, 2},
		{10 * time.Minute, 3}, // a long pause allows one, not several
	}
	synctest.Test(t, func(t *testing.T) {
		tr := &countingTransport{}
		h := NewHeartbeat("https://hc-ping.example/"+token, time.Minute, &http.Client{Transport: tr}, nil)
		for i, s := range steps {
			time.Sleep(s.advance)
			for range 3 {
				h.Beat()
				synctest.Wait() // the ping goroutine has finished
			}
			if got := tr.calls.Load(); got != s.wantCalls {
				t.Errorf("step %d (+%v): pings = %d, want %d", i, s.advance, got, s.wantCalls)
			}
		}
	})
}

func TestHeartbeatDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &countingTransport{hang: true}
		var logs lockedBuffer
		h := NewHeartbeat("https://hc-ping.example/ping/"+token, time.Second, &http.Client{Transport: tr}, debugLogger(&logs))

		start := time.Now()
		h.Beat()
		// The fake clock only moves when every goroutine is blocked: had
		// Beat waited for the hanging server, time would have passed.
		if d := time.Since(start); d != 0 {
			t.Errorf("Beat blocked for %v", d)
		}
		synctest.Wait()
		if got := tr.calls.Load(); got != 1 {
			t.Fatalf("pings = %d, want 1", got)
		}

		// Past the interval but the first ping still hangs: dropped.
		time.Sleep(5 * time.Second)
		h.Beat()
		synctest.Wait()
		if got := tr.calls.Load(); got != 1 {
			t.Errorf("pings while one hangs = %d, want 1", got)
		}

		// The 10 s timeout ends the hanging ping; the next beat goes out.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		h.Beat()
		synctest.Wait()
		if got := tr.calls.Load(); got != 2 {
			t.Errorf("pings after the timeout = %d, want 2", got)
		}
		out := logs.String()
		for _, want := range []string{`msg="heartbeat ping failed"`, "target=https://hc-ping.example", `err="timed out"`} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, token) {
			t.Errorf("log leaks the token:\n%s", out)
		}
		// synctest.Test does not advance the clock once this function
		// returns: let the second ping time out inside the bubble.
		time.Sleep(heartbeatTimeout)
		synctest.Wait()
	})
}

func TestHeartbeatBadURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"no scheme", "hc-ping.example/" + token},
		{"ftp", "ftp://hc-ping.example/" + token},
		{"unparsable", "http://hc-ping.example/%zz" + token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &countingTransport{}
				var logs lockedBuffer
				h := NewHeartbeat(tt.url, time.Minute, &http.Client{Transport: tr}, debugLogger(&logs))
				h.Beat()
				synctest.Wait()
				if tr.calls.Load() != 0 {
					t.Error("pinged an invalid URL")
				}
				out := logs.String()
				if !strings.Contains(out, "heartbeat_url is not a valid http(s) URL") {
					t.Errorf("log lacks the reason:\n%s", out)
				}
				if strings.Contains(out, token) {
					t.Errorf("log leaks the token:\n%s", out)
				}
			})
		})
	}
}

func TestHeartbeatNil(t *testing.T) {
	h := NewHeartbeat("", time.Minute, nil, nil)
	if h != nil {
		t.Fatalf("NewHeartbeat(\"\") = %v, want nil", h)
	}
	h.Beat() // must not panic
}
