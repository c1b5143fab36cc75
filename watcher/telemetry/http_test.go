package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	healthy := func() (bool, string) { return true, "" }
	stale := func() (bool, string) { return false, "account main: no fresh data for 75s" }
	tests := []struct {
		name     string
		health   func() (bool, string)
		method   string
		path     string
		wantCode int
		wantBody string // exact, unless empty
	}{
		{"healthy", healthy, http.MethodGet, "/healthz", 200, "ok\n"},
		{"nil health is healthy", nil, http.MethodGet, "/healthz", 200, "ok\n"},
		{"stale account", stale, http.MethodGet, "/healthz", 503, "account main: no fresh data for 75s\n"},
		{"unhealthy without detail", func() (bool, string) { return false, "" }, http.MethodGet, "/healthz", 503, "unhealthy\n"},
		{"detail keeps its newline", func() (bool, string) { return false, "a\nb\n" }, http.MethodGet, "/healthz", 503, "a\nb\n"},
		{"head healthz", healthy, http.MethodHead, "/healthz", 200, ""},
		{"metrics", stale, http.MethodGet, "/metrics", 200, ""},
		{"unknown path", healthy, http.MethodGet, "/", 404, ""},
		{"metrics subpath", healthy, http.MethodGet, "/metrics/x", 404, ""},
		{"post metrics", healthy, http.MethodPost, "/metrics", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New("").Handler(tt.health)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("code = %d, want %d; body %q", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tt.wantBody)
			}
			if tt.path == "/healthz" && !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type = %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

// recorder is a slog.Handler that keeps records and announces each message
// on a channel, so a test can wait for "listening" instead of sleeping.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
	msgs chan slog.Record
}

func newRecorder() *recorder { return &recorder{msgs: make(chan slog.Record, 64)} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	select {
	case r.msgs <- rec.Clone():
	default:
	}
	return nil
}

// await returns the first record with message msg, failing after a generous
// bound that only a hung test reaches.
func (r *recorder) await(t *testing.T, msg string) slog.Record {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case rec := <-r.msgs:
			if rec.Message == msg {
				return rec
			}
		case <-deadline:
			t.Fatalf("no %q log record", msg)
		}
	}
}

func attr(rec slog.Record, key string) string {
	var v string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

func TestServeStartsAndStops(t *testing.T) {
	log := newRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", New("").Handler(nil), slog.New(log)) }()

	addr := attr(log.await(t, "admin server listening"), "addr")
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		cancel()
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after ctx is done", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Errorf("still listening on %s after shutdown", addr)
	}
	log.await(t, "admin server stopped")
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	err = Serve(t.Context(), addr, New("").Handler(nil), nil)
	if err == nil {
		t.Fatal("Serve on a taken address succeeded")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error does not wrap EADDRINUSE: %v", err)
	}
	for _, want := range []string{addr, "already in use", "`listen`"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestServeBadAddress(t *testing.T) {
	err := Serve(t.Context(), "127.0.0.1:notaport", New("").Handler(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
		t.Errorf("Serve = %v, want an error naming the address", err)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9464}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 9464}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9464}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9464}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 9464}, false},
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.addr); got != tt.want {
			t.Errorf("isLoopback(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// wildcardListener is a loopback listener that claims to listen on every
// interface, to see the warning without exposing a port.
type wildcardListener struct{ net.Listener }

func (w wildcardListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4zero, Port: w.Listener.Addr().(*net.TCPAddr).Port}
}

func TestServeWarnsWhenExposed(t *testing.T) {
	tests := []struct {
		name     string
		wrap     func(net.Listener) net.Listener
		wantWarn bool
	}{
		{"loopback", func(l net.Listener) net.Listener { return l }, false},
		{"all interfaces", func(l net.Listener) net.Listener { return wildcardListener{l} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			log := newRecorder()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- serve(ctx, tt.wrap(ln), New("").Handler(nil), slog.New(log)) }()
			log.await(t, "admin server listening")
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve = %v", err)
			}
			warned := false
			log.mu.Lock()
			for _, r := range log.recs {
				if r.Level != slog.LevelWarn || !strings.Contains(r.Message, "reachable from the network") {
					continue
				}
				warned = true
				// config lets such a listen through only with an admin
				// token: the warning must not say there is no auth.
				for _, want := range []string{"reads are open to anyone who reaches the port", "writes need the admin token"} {
					if !strings.Contains(r.Message, want) {
						t.Errorf("the warning %q lacks %q", r.Message, want)
					}
				}
				if strings.Contains(r.Message, "no authentication") {
					t.Errorf("the warning says there is no authentication: %q", r.Message)
				}
			}
			log.mu.Unlock()
			if warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v", warned, tt.wantWarn)
			}
		})
	}
}
