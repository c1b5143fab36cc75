package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/marginwatch/marginwatch/notifiers"
)

// permanentAPIErrors are the Web API error codes that no retry can fix:
// the token, the channel or the message itself is wrong. Every other code
// is retried (bounded by the outbox's max_age): an unfamiliar code should
// cost a few retries, not a lost liquidation warning.
var permanentAPIErrors = map[string]string{
	"invalid_auth":                             "Slack rejected the bot token: check token",
	"not_authed":                               "no bot token was sent: check token",
	"account_inactive":                         "the bot token belongs to a deleted user or app: check token",
	"token_revoked":                            "the bot token was revoked: create a new one",
	"token_expired":                            "the bot token expired: create a new one",
	"no_permission":                            "the token may not post here",
	"missing_scope":                            "the token lacks the chat:write scope",
	"not_allowed_token_type":                   "use a bot token (xoxb-…)",
	"access_denied":                            "",
	"channel_not_found":                        "check channel (use its ID, e.g. C0123456789) and invite the bot",
	"not_in_channel":                           "invite the bot to the channel (/invite @yourbot)",
	"is_archived":                              "the channel is archived",
	"restricted_action":                        "the workspace does not let this bot post to the channel",
	"restricted_action_read_only_channel":      "the channel is read-only",
	"restricted_action_thread_only_channel":    "the channel only allows thread replies",
	"restricted_action_non_threadable_channel": "",
	"cannot_reply_to_message":                  "",
	"msg_too_long":                             "",
	"no_text":                                  "",
	"invalid_blocks":                           "",
	"invalid_blocks_format":                    "",
	"invalid_attachments":                      "",
	"too_many_attachments":                     "",
	"invalid_arguments":                        "",
	"invalid_form_data":                        "",
	"invalid_charset":                          "",
	"ekm_access_denied":                        "",
	"team_access_not_granted":                  "",
	"two_factor_setup_required":                "",
	"org_login_required":                       "",
	"enterprise_is_restricted":                 "",
	"deprecated_endpoint":                      "",
}

// webhookHints explain the error codes an incoming webhook answers with.
var webhookHints = map[string]string{
	"no_service":                        "the webhook was removed: create a new incoming webhook",
	"no_team":                           "the webhook's workspace is gone: create a new incoming webhook",
	"team_disabled":                     "the webhook's workspace is disabled",
	"channel_not_found":                 "the webhook's channel was deleted: create a new incoming webhook",
	"channel_is_archived":               "the webhook's channel is archived",
	"action_prohibited":                 "the workspace restricts posting to this channel",
	"posting_to_general_channel_denied": "only admins may post to this channel",
	"invalid_token":                     "the webhook URL is invalid: create a new incoming webhook",
}

// codeRE matches Slack's error codes; any other response body (an HTML
// error page, a proxy's text) is not quoted in errors.
var codeRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// responseInfo is what recordingTransport saw of the last response of a
// request: slack-go drops the status of a webhook error's body and the
// Retry-After of an API error.
type responseInfo struct {
	status     int
	retryAfter string
	code       string // the body, when it is a Slack error code
}

type responseInfoKey struct{}

func withResponseInfo(ctx context.Context) (context.Context, *responseInfo) {
	info := &responseInfo{}
	return context.WithValue(ctx, responseInfoKey{}, info), info
}

// recordingTransport fills the request context's responseInfo. It runs in
// the goroutine that called Client.Do, so the caller may read the info once
// Do has returned.
type recordingTransport struct {
	next http.RoundTripper
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	info, _ := req.Context().Value(responseInfoKey{}).(*responseInfo)
	if err != nil || info == nil {
		return resp, err
	}
	info.status = resp.StatusCode
	info.retryAfter = resp.Header.Get("Retry-After")
	if resp.StatusCode != http.StatusOK {
		peek, _ := io.ReadAll(io.LimitReader(resp.Body, 128))
		if code := strings.TrimSpace(string(peek)); codeRE.MatchString(code) {
			info.code = code
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// fail classifies a failed post as retryable or permanent and turns it into
// an error that names the cause but no secret. ctx is the attempt's context.
func (n *Notifier) fail(ctx context.Context, op string, err error, info *responseInfo) (bool, error) {
	retry, err := n.classify(ctx, op, err, info)
	return retry, n.scrub(err)
}

func (n *Notifier) classify(ctx context.Context, op string, err error, info *responseInfo) (bool, error) {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return true, fmt.Errorf("slack: %s: no answer within %s: %w", op, n.timeout, cerr)
		}
		return true, fmt.Errorf("slack: %s: %w", op, cerr)
	}

	var limited *goslack.RateLimitedError
	if errors.As(err, &limited) {
		return true, &notifiers.RetryAfterError{After: limited.RetryAfter, Err: fmt.Errorf("slack: %s: rate limited (HTTP 429)", op)}
	}

	var status goslack.StatusCodeError
	if errors.As(err, &status) {
		return n.statusError(op, status.Code, info)
	}

	var api goslack.SlackErrorResponse
	if errors.As(err, &api) {
		code := api.Err
		if !codeRE.MatchString(code) {
			code = "unknown error"
		}
		hint, permanent := permanentAPIErrors[code]
		msg := fmt.Sprintf("slack: %s: %s", op, code)
		if hint != "" {
			msg += " (" + hint + ")"
		}
		if permanent {
			return false, errors.New(msg)
		}
		if after, ok := parseRetryAfter(info.retryAfter, n.now()); ok {
			return true, &notifiers.RetryAfterError{After: after, Err: errors.New(msg)}
		}
		return true, errors.New(msg)
	}

	// The HTTP client names the URL in its errors, and a webhook URL is a
	// secret: keep only the cause.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return true, fmt.Errorf("slack: %s: %w", op, uerr.Err)
	}

	// slack-go fails on a 429 whose Retry-After is not a number of seconds
	// (an HTTP date) with a parse error; the status tells the truth.
	if info.status != 0 && info.status != http.StatusOK {
		return n.statusError(op, info.status, info)
	}
	// Anything else (a 200 that is not Slack's JSON, from a proxy) may heal.
	return true, fmt.Errorf("slack: %s: %w", op, err)
}

// statusError classifies an HTTP error status: 408, 429 and 5xx are
// retryable, the other 4xx are not.
func (n *Notifier) statusError(op string, code int, info *responseInfo) (bool, error) {
	msg := fmt.Sprintf("slack: %s: HTTP %d %s", op, code, http.StatusText(code))
	if info.code != "" {
		msg += ": " + info.code
		if hint := webhookHints[info.code]; hint != "" && n.api == nil {
			msg += " (" + hint + ")"
		}
	}
	switch {
	case code == http.StatusTooManyRequests:
		if after, ok := parseRetryAfter(info.retryAfter, n.now()); ok {
			return true, &notifiers.RetryAfterError{After: after, Err: errors.New(msg)}
		}
		return true, errors.New(msg)
	case code == http.StatusRequestTimeout || code >= 500:
		return true, errors.New(msg)
	default:
		return false, errors.New(msg)
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(maxRetryAfter/time.Second) { // also keeps the multiplication from overflowing
			return maxRetryAfter, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// maxRetryAfter caps the wait a server may ask for: a day is already far
// past any notifier's max_age.
const maxRetryAfter = 24 * time.Hour

// scrub keeps secrets out of an error's text. classify already avoids the
// places where libraries print URLs; this catches what it did not foresee.
func (n *Notifier) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range n.secrets {
		clean = strings.ReplaceAll(clean, s, "<redacted>")
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError shows a redacted text and keeps the chain for errors.As
// (a *notifiers.RetryAfterError inside stays visible to the outbox).
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
