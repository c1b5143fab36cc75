package slack

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// check asserts a failed Notify: retry flag, retry hint, message content,
// and that no secret shows in the error or the logs.
func check(t *testing.T, retry bool, err error, logs string, wantRetry bool, wantAfter time.Duration, wantText string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Notify: no error")
	}
	if retry != wantRetry {
		t.Errorf("retry = %v, want %v (err: %v)", retry, wantRetry, err)
	}
	after, ok := notifiers.RetryAfter(err)
	if wantAfter >= 0 && (!ok || after != wantAfter) {
		t.Errorf("RetryAfter = %v, %v; want %v (err: %v)", after, ok, wantAfter, err)
	}
	if wantAfter < 0 && ok {
		t.Errorf("unexpected retry hint %v (err: %v)", after, err)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error %q lacks %q", err, wantText)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) || strings.Contains(logs, s) {
			t.Errorf("secret %q leaked: err=%q logs=%q", s, err, logs)
		}
	}
}

func TestWebhookErrors(t *testing.T) {
	tests := []struct {
		name      string
		reject    rejection
		wantRetry bool
		wantAfter time.Duration // -1: none
		wantText  string
	}{
		{"revoked", rejection{404, "", "no_service"}, false, -1, "HTTP 404 Not Found: no_service (the webhook was removed: create a new incoming webhook)"},
		{"bad blocks", rejection{400, "", "invalid_blocks"}, false, -1, "HTTP 400 Bad Request: invalid_blocks"},
		{"archived", rejection{410, "", "channel_is_archived"}, false, -1, "HTTP 410 Gone: channel_is_archived (the webhook's channel is archived)"},
		{"prohibited", rejection{403, "", "action_prohibited"}, false, -1, "HTTP 403 Forbidden: action_prohibited"},
		{"html page not quoted", rejection{403, "", "<html>denied</html>"}, false, -1, "HTTP 403 Forbidden"},
		{"request timeout", rejection{408, "", ""}, true, -1, "HTTP 408 Request Timeout"},
		{"bad gateway", rejection{502, "", "<html>bad gateway</html>"}, true, -1, "HTTP 502 Bad Gateway"},
		{"429 seconds", rejection{429, "7", "rate_limited"}, true, 7 * time.Second, "rate limited (HTTP 429)"},
		{"429 without hint", rejection{429, "", "rate_limited"}, true, -1, "HTTP 429 Too Many Requests: rate_limited"},
		{"429 HTTP date", rejection{429, "Sat, 28 Nov 2026 03:14:30 GMT", ""}, true, 30 * time.Second, "HTTP 429 Too Many Requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newWebhookPeer(t)
			var logs bytes.Buffer
			n, err := New(webhookConfig(p.url(), 5*time.Second), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			n.now = func() time.Time { return t0 }
			p.setReject(&tt.reject)
			retry, err := n.Notify(context.Background(), incident("A", notifiers.KindFiring, notifiers.Critical))
			check(t, retry, err, logs.String(), tt.wantRetry, tt.wantAfter, tt.wantText, testWebhookPath, p.url())
			if strings.Contains(err.Error(), "<html>") {
				t.Errorf("an HTML body was quoted: %v", err)
			}
		})
	}
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	hook := srv.URL + testWebhookPath
	srv.Close() // nothing listens there any more
	n, err := New(webhookConfig(hook, 5*time.Second), Options{})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(context.Background(), incident("A", notifiers.KindFiring, notifiers.Critical))
	check(t, retry, err, "", true, -1, "slack: post to webhook: dial tcp", testWebhookPath)
}

func TestBotAPIErrors(t *testing.T) {
	tests := []struct {
		code      string
		wantRetry bool
		wantText  string
	}{
		{"invalid_auth", false, "chat.postMessage: invalid_auth (Slack rejected the bot token: check token)"},
		{"token_revoked", false, "token_revoked (the bot token was revoked"},
		{"channel_not_found", false, "channel_not_found (check channel"},
		{"not_in_channel", false, "not_in_channel (invite the bot"},
		{"is_archived", false, "is_archived"},
		{"invalid_blocks", false, "invalid_blocks"},
		{"ratelimited", true, "ratelimited"},
		{"internal_error", true, "internal_error"},
		{"fatal_error", true, "fatal_error"},
		{"some_future_error", true, "some_future_error"},
		{"Weird <code>", true, "unknown error"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p := newBotPeer(t)
			var logs bytes.Buffer
			n, err := New(botConfig(p.front.URL, 5*time.Second), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Threads: &notifiertest.Threads{}})
			if err != nil {
				t.Fatal(err)
			}
			p.failNext(tt.code, 1)
			retry, err := n.Notify(context.Background(), incident("A", notifiers.KindFiring, notifiers.Critical))
			check(t, retry, err, logs.String(), tt.wantRetry, -1, tt.wantText, testToken)
			if p.received() != 1 {
				t.Errorf("peer received %d posts, want 1 (a failure is the outbox's to retry)", p.received())
			}
		})
	}
}

func TestBotWrongToken(t *testing.T) {
	p := newBotPeer(t)
	cfg := botConfig(p.front.URL+"/", 5*time.Second) // a trailing slash is fine
	cfg.Token = "xoxb-9999-wrong-sEcReT"
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(context.Background(), incident("A", notifiers.KindFiring, notifiers.Critical))
	check(t, retry, err, "", false, -1, "invalid_auth", "xoxb-9999-wrong-sEcReT", testToken)
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Notifier
		want string
	}{
		{"neither", config.Notifier{Name: "ops"}, `slack notifier "ops": needs webhook_url, or token and channel`},
		{"both", config.Notifier{Name: "ops", WebhookURL: "https://hooks.slack.com/services/T/B/sEcReT1", Token: "xoxb-sEcReT2", Channel: "C1"},
			`slack notifier "ops": webhook_url and token exclude each other`},
		{"no channel", config.Notifier{Name: "ops", Token: "xoxb-sEcReT2"}, `slack notifier "ops": bot mode (token) needs a channel`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(tt.cfg, Options{})
			if err == nil || n != nil {
				t.Fatalf("New = %v, %v; want an error", n, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestNoAlertsNoMessage(t *testing.T) {
	p := newWebhookPeer(t)
	n, err := New(webhookConfig(p.url(), time.Second), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background()); retry || err != nil {
		t.Errorf("Notify() = %v, %v", retry, err)
	}
	if len(p.Delivered()) != 0 {
		t.Error("an empty call posted a message")
	}
}

func TestScrub(t *testing.T) {
	n := &Notifier{secrets: []string{"https://hooks.slack.com/services/T/B/sEcReT"}}
	inner := &notifiers.RetryAfterError{After: time.Second, Err: errString("post https://hooks.slack.com/services/T/B/sEcReT: boom")}
	err := n.scrub(inner)
	if got := err.Error(); got != "post <redacted>: boom (retry after 1s)" {
		t.Errorf("scrubbed = %q", got)
	}
	if after, ok := notifiers.RetryAfter(err); !ok || after != time.Second {
		t.Errorf("the retry hint was lost: %v %v", after, ok)
	}
	plain := errString("nothing secret")
	if n.scrub(plain) != error(plain) {
		t.Error("a clean error was rewrapped")
	}
}

type errString string

func (e errString) Error() string { return string(e) }
