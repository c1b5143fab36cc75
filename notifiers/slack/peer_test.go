package slack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

// Secrets used by the tests; none may show in an error or a log line.
const (
	testToken       = "xoxb-1111-2222-sEcReTtOkEn"
	testWebhookPath = "/services/T000/B000/wEbHoOkSeCrEt"
)

// botPeer is the Web API a bot-mode notifier talks to: slacktest's server
// (the real chat.postMessage handler) behind a front that checks the token,
// records every post, and produces the failures slacktest cannot (API
// errors, 5xx, 429 with Retry-After, a hang).
//
// slacktest's ts has whole-second resolution, where Slack's is
// "seconds.sequence", so two messages in one second would share a ts; the
// front appends a sequence number as Slack does.
type botPeer struct {
	t     *testing.T
	front *httptest.Server
	back  *slacktest.Server

	mu         sync.Mutex
	outcome    notifiertest.Outcome
	retryAfter time.Duration
	apiError   string // answered with ok=false to the next apiErrorN posts
	apiErrorN  int
	requests   int // posts received, accepted or not
	seq        int
	posts      []post // accepted posts, in order
}

// post is one accepted chat.postMessage, as the form fields Slack reads.
type post struct {
	Channel, Text, Attachments, Blocks, ThreadTS, Broadcast, TS string
}

func newBotPeer(t *testing.T) *botPeer {
	t.Helper()
	p := &botPeer{t: t, back: slacktest.NewTestServer()}
	p.back.Start()
	p.front = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.front.Close()
		p.back.Stop()
	})
	return p
}

func (p *botPeer) SetOutcome(o notifiertest.Outcome, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outcome, p.retryAfter = o, retryAfter
}

// failNext makes the peer answer the next n posts with ok=false and code.
func (p *botPeer) failNext(code string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.apiError, p.apiErrorN = code, n
}

// received is the number of posts received, accepted or not.
func (p *botPeer) received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

func (p *botPeer) Delivered() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.posts))
	for i, m := range p.posts {
		out[i] = m.Text + "\n" + m.Attachments + m.Blocks
	}
	return out
}

func (p *botPeer) accepted() []post {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]post(nil), p.posts...)
}

func (p *botPeer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || r.URL.Path != "/chat.postMessage" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}

	p.mu.Lock()
	p.requests++
	outcome, after, apiError := p.outcome, p.retryAfter, ""
	if p.apiErrorN > 0 {
		apiError = p.apiError
		p.apiErrorN--
	}
	p.mu.Unlock()

	switch {
	case form.Get("token") != testToken:
		writeJSON(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	case apiError != "":
		writeJSON(w, fmt.Sprintf(`{"ok":false,"error":%q}`, apiError))
		return
	}
	switch outcome {
	case notifiertest.Permanent:
		writeJSON(w, `{"ok":false,"error":"channel_not_found"}`)
		return
	case notifiertest.Retryable:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<html>upstream unavailable</html>")
		return
	case notifiertest.RateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
		return
	case notifiertest.Hang:
		<-r.Context().Done()
		return
	}

	// OK: slacktest answers.
	resp, err := http.Post(p.back.GetAPIURL()+"chat.postMessage", r.Header.Get("Content-Type"), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "slacktest: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer["ok"] != true {
		p.t.Errorf("slacktest did not accept the post (%v): %v", err, answer)
		http.Error(w, "slacktest refused", http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	p.seq++
	ts := fmt.Sprintf("%v.%06d", answer["ts"], p.seq)
	answer["ts"] = ts
	p.posts = append(p.posts, post{
		Channel: form.Get("channel"), Text: form.Get("text"), Attachments: form.Get("attachments"),
		Blocks: form.Get("blocks"), ThreadTS: form.Get("thread_ts"), Broadcast: form.Get("reply_broadcast"), TS: ts,
	})
	p.mu.Unlock()
	b, _ := json.Marshal(answer)
	writeJSON(w, string(b))
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = io.WriteString(w, body)
}

// webhookPeer is a Slack incoming webhook: POST JSON to the secret path,
// "ok" on success, a status and an error code in the body otherwise.
type webhookPeer struct {
	srv *httptest.Server

	mu         sync.Mutex
	outcome    notifiertest.Outcome
	retryAfter time.Duration
	reject     *rejection // answered while set
	bodies     []string
}

// rejection is a custom answer: status, Retry-After header, body.
type rejection struct {
	status     int
	retryAfter string
	body       string
}

func newWebhookPeer(t *testing.T) *webhookPeer {
	t.Helper()
	p := &webhookPeer{}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// url is the webhook URL, a secret.
func (p *webhookPeer) url() string { return p.srv.URL + testWebhookPath }

func (p *webhookPeer) SetOutcome(o notifiertest.Outcome, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outcome, p.retryAfter = o, retryAfter
}

func (p *webhookPeer) setReject(r *rejection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reject = r
}

func (p *webhookPeer) Delivered() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bodies...)
}

func (p *webhookPeer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != testWebhookPath {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "no_service")
		return
	}
	p.mu.Lock()
	outcome, after, reject := p.outcome, p.retryAfter, p.reject
	p.mu.Unlock()
	if reject != nil {
		if reject.retryAfter != "" {
			w.Header().Set("Retry-After", reject.retryAfter)
		}
		w.WriteHeader(reject.status)
		_, _ = io.WriteString(w, reject.body)
		return
	}
	switch outcome {
	case notifiertest.Permanent:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "no_service")
		return
	case notifiertest.Retryable:
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "rollup_error")
		return
	case notifiertest.RateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "rate_limited")
		return
	case notifiertest.Hang:
		<-r.Context().Done()
		return
	}
	var msg map[string]any
	if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &msg) != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "invalid_payload")
		return
	}
	p.mu.Lock()
	p.bodies = append(p.bodies, string(body))
	p.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}
