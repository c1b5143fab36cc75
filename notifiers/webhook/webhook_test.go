package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// Secrets used by the tests. The URL path and query carry tokens, as real
// webhook URLs (Slack, Discord, Zapier …) do.
const (
	pathToken  = "T0KEN-in-the-path-9f8e7d"
	queryToken = "qs-token-4c3b2a1908"
	rawSecret  = "raw-signing-secret-not-base64!"
)

// whsecSecret is a Standard Webhooks secret: "whsec_" + base64 of the key.
var (
	whsecKey    = []byte("0123456789abcdef0123456789abcdef")
	whsecSecret = "whsec_" + base64.StdEncoding.EncodeToString(whsecKey)
)

// verify checks a request per the Standard Webhooks spec, written from the
// spec rather than from the code under test: the key is the base64 after
// "whsec_" or the raw secret; the signed content is "id.timestamp.body";
// the header holds space-separated "v1,<base64>" signatures, any of which
// may match; the timestamp must be within tolerance of now.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is %v away from now", ts, d)
	}
	key := []byte(secret)
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return err
		}
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+"."+string(body))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid v1 signature")
}

// request is what the receiver saw of one POST.
type request struct {
	header http.Header
	body   string
	// verr is the verification error; nil when verified (or not checked).
	verr error
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies signatures
// and answers as told. It implements notifiertest.Peer.
type receiver struct {
	srv    *httptest.Server
	secret string // "" accepts unsigned requests
	now    func() time.Time
	stop   chan struct{}

	mu         sync.Mutex
	outcome    notifiertest.Outcome
	retryAfter time.Duration
	// respond, when set, overrides outcome: a test's own reply.
	respond   func(w http.ResponseWriter)
	requests  []request
	delivered []string
}

func newReceiver(t *testing.T, secret string, now func() time.Time) *receiver {
	t.Helper()
	r := &receiver{secret: secret, now: now, stop: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	// Cleanups run last-in first-out: release hanging handlers first, so
	// Close does not wait for them.
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.stop) })
	return r
}

// url is the receiver's endpoint with tokens in path and query.
func (r *receiver) url() string {
	return r.srv.URL + "/hooks/" + pathToken + "?token=" + queryToken
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var verr error
	switch {
	case req.Method != http.MethodPost:
		verr = fmt.Errorf("method %s", req.Method)
	case req.Header.Get("Content-Type") != "application/json":
		verr = fmt.Errorf("content type %q", req.Header.Get("Content-Type"))
	case req.URL.Path != "/hooks/"+pathToken || req.URL.Query().Get("token") != queryToken:
		verr = fmt.Errorf("wrong path %q", req.URL.Path)
	case r.secret != "":
		verr = verify(r.secret, req.Header, body, r.now())
	}
	r.mu.Lock()
	r.requests = append(r.requests, request{header: req.Header.Clone(), body: string(body), verr: verr})
	outcome, after, respond := r.outcome, r.retryAfter, r.respond
	r.mu.Unlock()

	if verr != nil {
		http.Error(w, "signature verification failed: "+verr.Error(), http.StatusUnauthorized)
		return
	}
	if respond != nil {
		respond(w)
		return
	}
	switch outcome {
	case notifiertest.OK:
		r.mu.Lock()
		r.delivered = append(r.delivered, string(body))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case notifiertest.Permanent:
		http.Error(w, `{"error":"unknown hook"}`, http.StatusNotFound)
	case notifiertest.Retryable:
		http.Error(w, "upstream down", http.StatusBadGateway)
	case notifiertest.RateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case notifiertest.Hang:
		select {
		case <-req.Context().Done():
		case <-r.stop:
		}
	}
}

// SetOutcome implements notifiertest.Peer.
func (r *receiver) SetOutcome(o notifiertest.Outcome, retryAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcome, r.retryAfter = o, retryAfter
}

// Delivered implements notifiertest.Peer.
func (r *receiver) Delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.delivered...)
}

func (r *receiver) setRespond(f func(w http.ResponseWriter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

func (r *receiver) received() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// clock is an injectable clock a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 28, 3, 16, 0, 0, time.UTC)

func cfgFor(r *receiver, secret string) config.Notifier {
	return config.Notifier{
		Name: "hook", Type: "webhook",
		URL: config.Secret(r.url()), Secret: config.Secret(secret),
		Timeout: 2 * time.Second,
	}
}

func mustNew(t *testing.T, cfg config.Notifier, opts Options) *Notifier {
	t.Helper()
	n, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

// noLeak fails if s holds a secret (the URL, its tokens, the signing secret).
func noLeak(t *testing.T, r *receiver, s string) {
	t.Helper()
	for _, secret := range []string{pathToken, queryToken, rawSecret, whsecSecret, r.url()} {
		if strings.Contains(s, secret) {
			t.Errorf("secret %q leaked into %q", secret, s)
		}
	}
}

func TestConformance(t *testing.T) {
	for _, secret := range []string{whsecSecret, rawSecret, ""} {
		name := map[string]string{whsecSecret: "whsec", rawSecret: "raw", "": "unsigned"}[secret]
		t.Run(name, func(t *testing.T) {
			notifiertest.Run(t, notifiertest.Setup{
				New: func(t *testing.T, timeout time.Duration, logger *slog.Logger) (notifiers.Notifier, notifiertest.Peer) {
					r := newReceiver(t, secret, time.Now)
					cfg := cfgFor(r, secret)
					cfg.Timeout = timeout
					return mustNew(t, cfg, Options{Logger: logger}), r
				},
				Secrets:    []string{pathToken, queryToken, rawSecret, whsecSecret, "/hooks/" + pathToken},
				Structured: true,
			})
		})
	}
}

func TestSignature(t *testing.T) {
	tests := []struct {
		name       string
		secret     string // the notifier's
		verifyWith string // the receiver's
		wantValid  bool
	}{
		{"whsec secret", whsecSecret, whsecSecret, true},
		{"raw secret", rawSecret, rawSecret, true},
		// The same key bytes given either way sign alike.
		{"raw secret, receiver has it as whsec", rawSecret, "whsec_" + base64.StdEncoding.EncodeToString([]byte(rawSecret)), true},
		{"whsec secret, receiver has another key", whsecSecret, "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key entirely, 32 bytes!!")), false},
		{"raw secret, receiver has another", rawSecret, rawSecret + "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			r := newReceiver(t, "", clk.Now)
			n := mustNew(t, cfgFor(r, tt.secret), Options{Now: clk.Now})
			if _, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			reqs := r.received()
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(reqs))
			}
			err := verify(tt.verifyWith, reqs[0].header, []byte(reqs[0].body), clk.Now())
			if (err == nil) != tt.wantValid {
				t.Errorf("verify: %v, want valid=%v", err, tt.wantValid)
			}
			if got, want := reqs[0].header.Get("webhook-timestamp"), strconv.FormatInt(t0.Unix(), 10); got != want {
				t.Errorf("webhook-timestamp = %q, want %q", got, want)
			}
		})
	}
}

func TestTamperedBodyFailsVerification(t *testing.T) {
	clk := &clock{t: t0}
	r := newReceiver(t, "", clk.Now)
	n := mustNew(t, cfgFor(r, rawSecret), Options{Now: clk.Now})
	if _, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	req := r.received()[0]
	if err := verify(rawSecret, req.header, []byte(req.body), t0); err != nil {
		t.Fatalf("untouched request does not verify: %v", err)
	}
	tampered := strings.Replace(req.body, `"critical"`, `"warning"`, 1)
	if err := verify(rawSecret, req.header, []byte(tampered), t0); err == nil {
		t.Error("a tampered body verified")
	}
}

func TestUnsigned(t *testing.T) {
	r := newReceiver(t, "", time.Now)
	n := mustNew(t, cfgFor(r, ""), Options{})
	if _, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	h := r.received()[0].header
	if v, ok := h["Webhook-Signature"]; ok {
		t.Errorf("webhook-signature sent without a secret: %q", v)
	}
	if h.Get("webhook-id") == "" || h.Get("webhook-timestamp") == "" {
		t.Errorf("webhook-id/timestamp missing: %v", h)
	}
	if got := h.Get("User-Agent"); got != "marginwatch" {
		t.Errorf("User-Agent = %q, want marginwatch", got)
	}
}

// TestRetryKeepsIDAndBody: the outbox retries by calling Notify again with
// the same alerts; the receiver must see the same webhook-id (to dedupe)
// and the same bytes, signed afresh with the later timestamp.
func TestRetryKeepsIDAndBody(t *testing.T) {
	clk := &clock{t: t0}
	r := newReceiver(t, whsecSecret, clk.Now)
	n := mustNew(t, cfgFor(r, whsecSecret), Options{Now: clk.Now})

	r.SetOutcome(notifiertest.Retryable, 0)
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if err == nil || !retry {
		t.Fatalf("first attempt against a 502: retry=%v err=%v", retry, err)
	}
	clk.Advance(90 * time.Second)
	r.SetOutcome(notifiertest.OK, 0)
	if _, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("retry: %v", err)
	}

	reqs := r.received()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	first, second := reqs[0], reqs[1]
	for i, req := range reqs {
		if req.verr != nil {
			t.Errorf("request %d does not verify: %v", i, req.verr)
		}
	}
	if a, b := first.header.Get("webhook-id"), second.header.Get("webhook-id"); a != b || !strings.HasPrefix(a, "msg_") {
		t.Errorf("webhook-id %q then %q; want the same msg_ id", a, b)
	}
	if first.body != second.body {
		t.Errorf("body changed across the retry:\n%s\n%s", first.body, second.body)
	}
	wantTS := []string{strconv.FormatInt(t0.Unix(), 10), strconv.FormatInt(t0.Unix()+90, 10)}
	for i, req := range reqs {
		if got := req.header.Get("webhook-timestamp"); got != wantTS[i] {
			t.Errorf("request %d webhook-timestamp = %s, want %s", i, got, wantTS[i])
		}
	}
	if first.header.Get("webhook-signature") == second.header.Get("webhook-signature") {
		t.Error("the retry reused the old signature; it must be signed with its own timestamp")
	}
}

func TestMessageID(t *testing.T) {
	base := notifiertest.Alerts()
	id := messageID(base)
	if len(id) != len("msg_")+32 {
		t.Errorf("messageID = %q, want msg_ + 32 hex digits", id)
	}
	if again := messageID(notifiertest.Alerts()); again != id {
		t.Errorf("messageID not deterministic: %q then %q", id, again)
	}
	changes := map[string]func(a []notifiers.Alert){
		"kind":     func(a []notifiers.Alert) { a[0].Kind = notifiers.KindRepeat },
		"status":   func(a []notifiers.Alert) { a[1].Status = notifiers.Firing },
		"severity": func(a []notifiers.Alert) { a[0].Severity = notifiers.Warning },
		"at":       func(a []notifiers.Alert) { a[0].At = a[0].At.Add(time.Second) },
		"id":       func(a []notifiers.Alert) { a[1].ID = "other" },
		"order":    func(a []notifiers.Alert) { a[0], a[1] = a[1], a[0] },
		"fewer":    func(a []notifiers.Alert) { a[1] = a[0] },
		// Length prefixes keep adjacent fields from running together.
		"boundary": func(a []notifiers.Alert) { a[0].ID += "f"; a[0].Kind = "iring" },
	}
	for name, change := range changes {
		a := notifiertest.Alerts()
		change(a)
		if got := messageID(a); got == id {
			t.Errorf("changing %s kept webhook-id %q", name, got)
		}
	}
	// Not part of the identity: a summary re-rendered for the same
	// notification is still the same notification.
	a := notifiertest.Alerts()
	a[0].Summary = "changed"
	if got := messageID(a); got != id {
		t.Errorf("changing the summary changed webhook-id")
	}
}

// TestSignVector checks sign against the Standard Webhooks reference
// test vector (from the spec's reference libraries).
func TestSignVector(t *testing.T) {
	key, err := signingKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("sign = %s, want %s", got, want)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		code       int
		retryAfter string
		wantErr    bool
		wantRetry  bool
		wantAfter  time.Duration // 0: no RetryAfterError
	}{
		{200, "", false, false, 0},
		{202, "", false, false, 0},
		{204, "", false, false, 0},
		{400, "", true, false, 0},
		{401, "", true, false, 0},
		{403, "", true, false, 0},
		{404, "", true, false, 0},
		{410, "", true, false, 0},
		{413, "", true, false, 0},
		{408, "", true, true, 0},
		{429, "", true, true, 0},
		{429, "7", true, true, 7 * time.Second},
		{429, "0", true, true, 0},
		{429, "Sat, 28 Nov 2026 03:17:30 GMT", true, true, 90 * time.Second},
		{429, "Sat, 28 Nov 2026 03:15:00 GMT", true, true, 0}, // in the past
		{429, "soon", true, true, 0},
		{429, "-3", true, true, 0},
		{429, "99999999999999999", true, true, 24 * time.Hour},
		{500, "", true, true, 0},
		{502, "", true, true, 0},
		{503, "120", true, true, 120 * time.Second},
		{504, "", true, true, 0},
		{301, "", true, false, 0},
		{302, "", true, false, 0},
		{307, "", true, false, 0},
		{308, "", true, false, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.code, tt.retryAfter), func(t *testing.T) {
			clk := &clock{t: t0}
			r := newReceiver(t, "", clk.Now)
			r.setRespond(func(w http.ResponseWriter) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.code)
			})
			n := mustNew(t, cfgFor(r, ""), Options{Now: clk.Now})
			retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
			if (err != nil) != tt.wantErr || retry != tt.wantRetry {
				t.Fatalf("Notify = %v, %v; want err=%v retry=%v", retry, err, tt.wantErr, tt.wantRetry)
			}
			after, ok := notifiers.RetryAfter(err)
			if tt.wantAfter == 0 && ok {
				t.Errorf("RetryAfter = %v, want no hint (err: %v)", after, err)
			}
			if tt.wantAfter != 0 && after != tt.wantAfter {
				t.Errorf("RetryAfter = %v, %v; want %v (err: %v)", after, ok, tt.wantAfter, err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "HTTP "+strconv.Itoa(tt.code)) {
					t.Errorf("error %q does not name the status", err)
				}
				noLeak(t, r, err.Error())
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		followed.Add(1)
	}))
	defer target.Close()
	r := newReceiver(t, "", time.Now)
	location := target.URL + "/moved/" + pathToken
	r.setRespond(func(w http.ResponseWriter) {
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusPermanentRedirect)
	})
	n := mustNew(t, cfgFor(r, ""), Options{})
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if err == nil || retry {
		t.Fatalf("Notify against a redirect = %v, %v; want a permanent error", retry, err)
	}
	if !strings.Contains(err.Error(), "redirects; configure the final URL") {
		t.Errorf("error %q does not tell the user to configure the final URL", err)
	}
	if strings.Contains(err.Error(), target.URL) {
		t.Errorf("error %q shows the redirect target", err)
	}
	noLeak(t, r, err.Error())
	if got := followed.Load(); got != 0 {
		t.Errorf("the redirect was followed (%d requests to the target)", got)
	}
}

func TestErrorBodySnippet(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name string
		body string
		want string // the error text after "webhook http://127.0.0.1:port: "
	}{
		{"empty", "", "HTTP 400"},
		{"json", "{\"error\": \"bad\tpayload\"}\n", `HTTP 400: {"error": "bad payload"}`},
		{"control characters", "line1\r\nline2\x00\x1b[31m", "HTTP 400: line1 line2 [31m"},
		{"echoes the URL", "no hook at /hooks/" + pathToken + "?token=" + queryToken, "HTTP 400: no hook at <redacted>?<redacted>"},
		{"capped", long, "HTTP 400: " + long[:maxSnippet] + "…"},
		{"invalid utf-8", "bad \xff byte", "HTTP 400: bad \uFFFD byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, "", time.Now)
			r.setRespond(func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, tt.body)
			})
			n := mustNew(t, cfgFor(r, ""), Options{})
			_, err := n.Notify(context.Background(), notifiertest.Alerts()...)
			if err == nil {
				t.Fatal("no error")
			}
			if want := "webhook " + r.srv.URL + ": " + tt.want; err.Error() != want {
				t.Errorf("error:\n got %q\nwant %q", err, want)
			}
			noLeak(t, r, err.Error())
		})
	}
}

func TestTransportErrorHidesURL(t *testing.T) {
	r := newReceiver(t, "", time.Now)
	n := mustNew(t, cfgFor(r, rawSecret), Options{})
	r.srv.Close() // connection refused from now on
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if err == nil || !retry {
		t.Fatalf("Notify against a closed port = %v, %v; want a retryable error", retry, err)
	}
	if !strings.HasPrefix(err.Error(), "webhook "+r.srv.URL+": post: ") {
		t.Errorf("error %q does not start with the origin", err)
	}
	noLeak(t, r, err.Error())
	// net/http's *url.Error ("Post \"URL\": …") is unwrapped, not redacted.
	if strings.Contains(err.Error(), "/hooks/") || strings.Contains(err.Error(), `Post "`) {
		t.Errorf("error %q shows the URL or its redacted form", err)
	}
}

func TestTimeoutIsRetryableAndWrapped(t *testing.T) {
	r := newReceiver(t, "", time.Now)
	r.SetOutcome(notifiertest.Hang, 0)
	cfg := cfgFor(r, "")
	cfg.Timeout = 50 * time.Millisecond
	n := mustNew(t, cfg, Options{})
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if err == nil || !retry {
		t.Fatalf("Notify against a hanging peer = %v, %v; want a retryable error", retry, err)
	}
	if !strings.Contains(err.Error(), ": post: no answer within 50ms: ") {
		t.Errorf("error %q does not say the peer did not answer in time", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("error %q (%T) is not recognisably a timeout", err, err)
		}
	}
	noLeak(t, r, err.Error())
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Notifier
		wantErr string // "" for success
	}{
		{"raw secret", config.Notifier{Name: "h", URL: "https://example.com/x", Secret: rawSecret}, ""},
		{"whsec secret", config.Notifier{Name: "h", URL: "https://example.com/x", Secret: config.Secret(whsecSecret)}, ""},
		{"whsec unpadded", config.Notifier{Name: "h", URL: "https://example.com/x", Secret: "whsec_MTIzNA"}, ""},
		{"no secret", config.Notifier{Name: "h", URL: "http://127.0.0.1:9/x"}, ""},
		{"whsec not base64", config.Notifier{Name: "h", URL: "https://example.com/x", Secret: "whsec_not*base64!!"},
			`webhook: secret: starts with whsec_ but the rest is not valid base64`},
		{"whsec_file not base64", config.Notifier{Name: "h", URL: "https://example.com/x", Secret: "whsec_not*base64!!", SecretFile: "/run/s"},
			`webhook: secret_file: starts with whsec_`},
		{"whsec empty", config.Notifier{Name: "h", URL: "https://example.com/x", Secret: "whsec_"},
			`webhook: secret: is whsec_ with nothing after it`},
		{"no url", config.Notifier{Name: "h"}, `webhook: url: is required`},
		{"relative url", config.Notifier{Name: "h", URL: "/hooks/" + pathToken}, `webhook: url: is not an absolute http or https URL`},
		{"ftp url", config.Notifier{Name: "h", URL: "ftp://example.com/" + pathToken}, `webhook: url: is not an absolute`},
		{"unparsable url", config.Notifier{Name: "h", URL: "https://exa mple.com/" + pathToken}, `webhook: url: is not an absolute`},
		{"url_file", config.Notifier{Name: "h", URL: "nope" + pathToken, URLFile: "/run/u"}, `webhook: url_file: is not an absolute`},
		{"wrong type", config.Notifier{Name: "h", Type: "slack", URL: "https://example.com/x"}, `webhook: type "slack" is not a webhook`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Options{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("New: no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.HasPrefix(err.Error(), tt.wantErr):
				t.Errorf("New: %q, want prefix %q", err, tt.wantErr)
			}
			if err != nil {
				for _, s := range []string{pathToken, "not*base64", tt.cfg.URL.Reveal()} {
					if s != "" && strings.Contains(err.Error(), s) {
						t.Errorf("error %q shows %q", err, s)
					}
				}
			}
		})
	}
}

// TestClientOptions: a caller's client is copied, capped at the per-attempt
// timeout and made not to follow redirects, without changing the original.
func TestClientOptions(t *testing.T) {
	orig := &http.Client{Timeout: time.Minute}
	n := mustNew(t, config.Notifier{Name: "h", URL: "https://example.com/x", Timeout: 3 * time.Second}, Options{HTTPClient: orig})
	if n.client == orig {
		t.Fatal("the caller's client is used, not a copy")
	}
	if n.client.Timeout != 3*time.Second {
		t.Errorf("client timeout = %v, want 3s", n.client.Timeout)
	}
	if orig.Timeout != time.Minute || orig.CheckRedirect != nil {
		t.Errorf("the caller's client was modified")
	}
	if n.client.CheckRedirect == nil {
		t.Error("redirects would be followed")
	}
	if d := mustNew(t, config.Notifier{Name: "h", URL: "https://example.com/x"}, Options{}); d.timeout != 10*time.Second || d.client.Timeout != 10*time.Second {
		t.Errorf("default timeout = %v / %v, want 10s", d.timeout, d.client.Timeout)
	}
}

func TestNoAlertsSendsNothing(t *testing.T) {
	r := newReceiver(t, "", time.Now)
	n := mustNew(t, cfgFor(r, ""), Options{})
	if retry, err := n.Notify(context.Background()); retry || err != nil {
		t.Errorf("Notify() = %v, %v; want false, nil", retry, err)
	}
	if got := len(r.received()); got != 0 {
		t.Errorf("receiver got %d requests for no alerts", got)
	}
}

func TestBodyOnTheWire(t *testing.T) {
	r := newReceiver(t, "", time.Now)
	n := mustNew(t, cfgFor(r, ""), Options{})
	if _, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	want, err := body(notifiertest.Alerts())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.received()[0].body; got != string(want) {
		t.Errorf("body on the wire differs from body():\n%s\n%s", got, want)
	}
}
