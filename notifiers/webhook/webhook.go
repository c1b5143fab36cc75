package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// userAgent identifies the sender to the receiver.
const userAgent = "marginwatch"

// defaultTimeout applies when the config leaves timeout unset (Load always
// sets it; a hand-built config.Notifier may not).
const defaultTimeout = 10 * time.Second

// Limits on what is read of a response: enough of an error body to say why
// the receiver refused, and a bounded drain so a keep-alive connection can
// be reused without letting a peer stream forever into us.
const (
	maxSnippet = 512
	maxDrain   = 64 << 10
)

// maxRetryAfter caps a Retry-After so that a huge number cannot overflow
// time.Duration; the outbox's max_age bounds the wait anyway.
const maxRetryAfter = 24 * time.Hour

// Options are the notifier's collaborators.
type Options struct {
	// Logger receives debug lines about deliveries; nil discards them.
	Logger *slog.Logger
	// HTTPClient sends the requests; nil means a fresh client. The
	// notifier uses a copy that never follows redirects and whose Timeout
	// is at most the configured per-attempt timeout.
	HTTPClient *http.Client
	// Now is the clock the signature timestamp and Retry-After dates are
	// read from; nil means time.Now.
	Now func() time.Time
}

// Notifier posts alerts to one webhook URL.
type Notifier struct {
	name    string
	url     string
	origin  string // scheme://host, the only part of the URL ever shown
	key     []byte // HMAC key; nil: requests are not signed
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	// redact lists strings that must never reach an error: the URL and its
	// secret parts, and the signing secret (a receiver may echo them).
	redact []string
}

var _ notifiers.Notifier = (*Notifier)(nil)

// New returns a webhook notifier for cfg (type "webhook"; URL required,
// Secret optional, Timeout per attempt). It fails on a URL that is not
// absolute http(s) or on a whsec_ secret that is not base64; the error
// names the field, never its value.
func New(cfg config.Notifier, opts Options) (*Notifier, error) {
	if cfg.Type != "" && cfg.Type != "webhook" {
		return nil, fmt.Errorf("webhook: type %q is not a webhook", cfg.Type)
	}
	raw := cfg.URL.Reveal()
	if raw == "" {
		return nil, fmt.Errorf("webhook: %s: is required: the http(s) URL to POST alerts to", fieldName(cfg.URLFile, "url"))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// err would quote the URL, which may hold a token.
		return nil, fmt.Errorf("webhook: %s: is not an absolute http or https URL (e.g. https://example.com/path)", fieldName(cfg.URLFile, "url"))
	}
	var key []byte
	if s := cfg.Secret.Reveal(); s != "" {
		if key, err = signingKey(s); err != nil {
			return nil, fmt.Errorf("webhook: %s: %w", fieldName(cfg.SecretFile, "secret"), err)
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}

	client := &http.Client{}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		client = &c
	}
	// A redirect is a misconfiguration, not something to follow: a POST
	// turned into a GET (301/302) loses the alert, and following could
	// carry the signed body to a host the user never configured.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if client.Timeout <= 0 || client.Timeout > timeout {
		client.Timeout = timeout
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	origin := u.Scheme + "://" + u.Host
	n := &Notifier{
		name:    cfg.Name,
		url:     raw,
		origin:  origin,
		key:     key,
		timeout: timeout,
		client:  client,
		log:     logger.With("notifier", cfg.Name, "endpoint", origin),
		now:     now,
	}
	n.redact = secretParts(raw, u, cfg.Secret.Reveal())
	return n, nil
}

// fieldName is the config key the value came from, for error messages.
func fieldName(file, field string) string {
	if file != "" {
		return field + "_file"
	}
	return field
}

// secretParts returns the strings to redact from error text, longest
// first so a longer match is not broken up by a shorter one.
func secretParts(raw string, u *url.URL, secret string) []string {
	parts := []string{raw, secret, u.RawQuery, u.EscapedPath(), u.Path}
	if u.User != nil {
		parts = append(parts, u.User.String())
		if p, ok := u.User.Password(); ok {
			parts = append(parts, p)
		}
	}
	for _, vs := range u.Query() {
		parts = append(parts, vs...)
	}
	var out []string
	for _, p := range parts {
		// A short path such as "/" or "/hook" carries no secret, and
		// replacing it everywhere would garble the message.
		if len(p) >= 8 {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Notify posts alerts as one signed request. The body and webhook-id depend
// only on the alerts, so calling again with the same alerts is a retry the
// receiver can recognise; each attempt is signed with the current time.
func (n *Notifier) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("webhook %s: %w", n.origin, err)
	}
	payload, err := body(alerts)
	if err != nil {
		// The same alerts will never encode: retrying cannot help.
		return false, fmt.Errorf("webhook %s: %w", n.origin, err)
	}
	id := messageID(alerts)

	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(payload))
	if err != nil {
		// New validated the URL, so this is unexpected; err quotes the URL.
		return false, fmt.Errorf("webhook %s: build request: %s", n.origin, n.scrub(err.Error()))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", id)
	ts := n.now().Unix()
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if n.key != nil {
		req.Header.Set("webhook-signature", sign(n.key, id, ts, payload))
	}

	resp, err := n.client.Do(req)
	if err != nil {
		// Network errors, timeouts and a cancelled context may all heal.
		return true, n.transportError(ctx, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		n.log.Debug("delivered", "webhook_id", id, "alerts", len(alerts), "status", code)
		return false, nil
	case code >= 300 && code < 400:
		// The Location may carry a token too: never shown.
		return false, fmt.Errorf("webhook %s: HTTP %d: the webhook URL redirects; configure the final URL", n.origin, code)
	}
	err = fmt.Errorf("webhook %s: HTTP %d%s", n.origin, code, n.snippet(resp.Body))
	if code != http.StatusRequestTimeout && code != http.StatusTooManyRequests && code < 500 {
		return false, err
	}
	if after, ok := retryAfter(resp.Header.Get("Retry-After"), n.now()); ok {
		return true, &notifiers.RetryAfterError{After: after, Err: err}
	}
	return true, err
}

// transportError strips the URL that net/http puts in every client error
// (*url.Error prints `Post "https://host/path?token=…": …`) and keeps the
// cause, wrapped, so errors.Is(err, context.DeadlineExceeded) still works.
// ctx is the attempt's: when its deadline passed, the message says so in
// words a user can act on (raise timeout, or look at the receiver).
func (n *Notifier) transportError(ctx context.Context, err error) error {
	// The client's Timeout and the attempt's context expire together;
	// either may be the one reported.
	var te interface{ Timeout() bool }
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout())
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := n.scrub(err.Error())
	if timedOut {
		msg = fmt.Sprintf("no answer within %s: %s", n.timeout, msg)
	}
	return &redactedError{msg: fmt.Sprintf("webhook %s: post: %s", n.origin, msg), err: err}
}

// redactedError carries a cause whose text has been scrubbed of secrets.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// snippet returns ": <start of the body>" for an error, cleaned of control
// characters and secrets, or "" for an empty body.
func (n *Notifier) snippet(r io.Reader) string {
	buf, _ := io.ReadAll(io.LimitReader(r, maxSnippet+1))
	truncated := len(buf) > maxSnippet
	if truncated {
		buf = buf[:maxSnippet]
	}
	// A cut (or a binary) body may not be UTF-8; mark rather than pass on.
	s := strings.ToValidUTF8(string(buf), "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	s = n.scrub(s)
	if s == "" {
		return ""
	}
	if truncated {
		s += "…"
	}
	return ": " + s
}

// scrub replaces every secret part of the URL and the signing secret.
func (n *Notifier) scrub(s string) string {
	return notifiers.Redact(s, n.redact...)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3). A date in the past, or garbage, gives no hint.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}
