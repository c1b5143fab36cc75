package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// defaultTimeout applies when the config leaves the per-attempt timeout
// out (Load always sets it; a hand-built config may not).
const defaultTimeout = 10 * time.Second

// partGap is the pause between the messages of one split Notify: Telegram
// asks bots to send no more than about one message per second to a chat,
// and a burst would be answered with 429 halfway through.
const partGap = time.Second

// Options are the notifier's collaborators; every field is optional.
type Options struct {
	// Logger receives the few log lines the notifier writes (a failed
	// thread bookkeeping, the client library's internal errors). Nil
	// discards them.
	Logger *slog.Logger
	// HTTPClient sends the requests. Nil uses a client of its own. Its
	// Timeout, if any, applies in addition to the config's timeout.
	HTTPClient *http.Client
	// Threads, when set, makes repeats, escalations and the resolution of
	// an incident reply to the incident's first message, so a chat reads
	// as one thread per incident.
	Threads notifiers.Threads
	// Wait pauses between the messages of a split Notify; nil waits on a
	// timer. It returns early with ctx's error. Tests inject it.
	Wait func(ctx context.Context, d time.Duration) error
}

// Notifier sends alerts to one Telegram chat (or forum topic) through the
// Bot API's sendMessage, as HTML.
type Notifier struct {
	name     string
	bot      *bot.Bot
	token    string
	chatID   string
	threadID int
	silent   bool
	timeout  time.Duration
	log      *slog.Logger
	threads  notifiers.Threads
	wait     func(ctx context.Context, d time.Duration) error
}

var (
	_ notifiers.Notifier = (*Notifier)(nil)
	_ notifiers.Splitter = (*Notifier)(nil)
)

// New returns a Telegram notifier for cfg (type telegram). It makes no
// network call: a bad token or chat id shows up on the first Notify, as a
// permanent failure.
func New(cfg config.Notifier, opts Options) (*Notifier, error) {
	token := cfg.Token.Reveal()
	if strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("telegram notifier %q: token is required", cfg.Name)
	}
	if cfg.ChatID == "" {
		return nil, fmt.Errorf("telegram notifier %q: chat_id is required", cfg.Name)
	}
	n := &Notifier{
		name:     cfg.Name,
		token:    token,
		chatID:   cfg.ChatID,
		threadID: cfg.MessageThreadID,
		silent:   cfg.SilentWarnings,
		timeout:  cfg.Timeout,
		log:      opts.Logger,
		threads:  opts.Threads,
		wait:     opts.Wait,
	}
	if n.timeout <= 0 {
		n.timeout = defaultTimeout
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("notifier", cfg.Name)
	if n.wait == nil {
		n.wait = sleep
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	botOpts := []bot.Option{
		bot.WithSkipGetMe(),
		// The poll timeout is for getUpdates, which this notifier never calls.
		bot.WithHTTPClient(n.timeout, statusClient{hc}),
		bot.WithErrorsHandler(func(err error) {
			n.log.Warn("telegram client error", "err", n.redact(err.Error()))
		}),
	}
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("telegram notifier %q: api_url must be an http(s) URL", cfg.Name)
		}
		// The library appends "/bot<token>/<method>" to the base.
		botOpts = append(botOpts, bot.WithServerURL(strings.TrimRight(cfg.APIURL, "/")))
	}
	b, err := bot.New(token, botOpts...)
	if err != nil {
		return nil, fmt.Errorf("telegram notifier %q: %s", cfg.Name, n.redact(err.Error()))
	}
	n.bot = b
	return n, nil
}

// Split implements notifiers.Splitter: it groups alerts, in order, into
// runs that each fit one message of Telegram's 4,096 characters (the cut
// falls between alerts only; a single alert too long for a message is
// clipped, as always). Notify on one part sends exactly one message, except
// for a digest too long for one message: it is a part of its own that
// Notify sends as several. Split depends on the alerts only, so the parts
// are the same after a restart.
//
// A part sent on its own carries no "(k/n)" footer: Notify sees one part.
func (n *Notifier) Split(alerts []notifiers.Alert) [][]notifiers.Alert {
	gs := groups(alerts)
	out := make([][]notifiers.Alert, len(gs))
	for i, g := range gs {
		out[i] = slices.Clone(alerts[g.lo:g.hi])
	}
	return out
}

// Notify sends the alerts as one message, or as several when together they
// exceed Telegram's 4,096 characters: the split falls only between alerts
// (between lines inside a digest), parts go out in order about a second
// apart, and each ends with "(k/n)". A message that carries only a digest
// is always silent and never a reply.
//
// If part k fails after parts 1..k-1 were delivered, Notify returns part k's
// error; a retry of the call sends every part again, so a reader may see
// the earlier parts twice (delivery is at-least-once, never at-most-once).
// A caller that wants each message delivered once, and a notification of
// many parts not to depend on all of them fitting one attempt, calls Split
// and Notify once per part.
//
// Failures: Telegram's 429 becomes a *notifiers.RetryAfterError with its
// retry_after; 5xx, 408, network errors and timeouts are retryable; 400
// (bad request, chat not found), 401 (token rejected), 403 (bot blocked or
// removed) and other 4xx are permanent. Errors never contain the token.
func (n *Notifier) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("telegram: %w", err)
	}
	parts := split(alerts)
	for i, p := range parts {
		if i > 0 {
			if err := n.wait(ctx, partGap); err != nil {
				return true, fmt.Errorf("telegram: before message %d/%d: %w", i+1, len(parts), err)
			}
		}
		msgID, retry, err := n.send(ctx, p)
		if err != nil {
			return retry, fmt.Errorf("telegram: message %d/%d to chat %s: %w", i+1, len(parts), n.chatID, err)
		}
		n.remember(p, msgID)
	}
	return false, nil
}

// send delivers one part under the per-attempt timeout and returns the
// message id Telegram gave it.
func (n *Notifier) send(ctx context.Context, p part) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)

	params := &bot.SendMessageParams{
		ChatID:              n.chatID,
		MessageThreadID:     n.threadID,
		Text:                p.text,
		ParseMode:           models.ParseModeHTML,
		DisableNotification: digestOnly(p.alerts) || (n.silent && !urgent(p.alerts)),
		// A runbook link would otherwise unfurl into a preview card that
		// pushes the alert itself off a phone's lock screen.
		LinkPreviewOptions: &models.LinkPreviewOptions{IsDisabled: bot.True()},
		ReplyParameters:    n.replyTo(p.alerts),
	}
	msg, err := n.bot.SendMessage(ctx, params)
	if err != nil {
		retry, err := n.classify(ctx, err, status)
		return 0, retry, err
	}
	return msg.ID, false, nil
}

// urgent reports whether a message must ring even with silent_warnings: it
// carries a critical alert that is still firing (a test of a critical alert
// rings too, since that is what it tests) or a liquidation, whatever its
// severity.
func urgent(alerts []notifiers.Alert) bool {
	for _, a := range alerts {
		if a.Liquidated() {
			return true
		}
		if a.Severity >= notifiers.Critical && a.Status != notifiers.Resolved {
			return true
		}
	}
	return false
}

// digestOnly reports whether a message carries digests only: a digest is
// never urgent, so it does not ring whatever silent_warnings says.
func digestOnly(alerts []notifiers.Alert) bool {
	for _, a := range alerts {
		if a.Kind != notifiers.KindDigest {
			return false
		}
	}
	return len(alerts) > 0
}

// replyTo returns the reply to an incident's first message when the part
// is about exactly one incident whose first message is known.
func (n *Notifier) replyTo(alerts []notifiers.Alert) *models.ReplyParameters {
	if n.threads == nil {
		return nil
	}
	id := ""
	for _, a := range alerts {
		if !a.Threaded() {
			return nil
		}
		if id != "" && a.ID != id {
			return nil
		}
		id = a.ID
	}
	ref, ok := n.threads.Thread(n.name, id)
	if !ok {
		return nil
	}
	msgID, err := strconv.Atoi(ref)
	if err != nil || msgID <= 0 {
		return nil
	}
	// The first message may have been deleted; the alert must go out anyway.
	return &models.ReplyParameters{MessageID: msgID, AllowSendingWithoutReply: true}
}

// remember stores msgID as the first message of every incident in p that
// has none yet.
func (n *Notifier) remember(p part, msgID int) {
	if n.threads == nil || msgID <= 0 {
		return
	}
	for _, a := range p.alerts {
		if !a.Threaded() || a.Status == notifiers.Resolved {
			continue
		}
		if _, ok := n.threads.Thread(n.name, a.ID); ok {
			continue
		}
		// The message is out; failing the Notify now would only send it twice.
		if err := n.threads.SetThread(n.name, a.ID, strconv.Itoa(msgID)); err != nil {
			n.log.Warn("remember incident message", "incident", a.ID, "err", err)
		}
	}
}

// classify turns a failed sendMessage into (retry, error). The returned
// error's text is the library's with the token removed; it wraps only
// token-free causes (context errors, the library's sentinel errors).
func (n *Notifier) classify(ctx context.Context, err error, status int) (bool, error) {
	var tooMany *bot.TooManyRequestsError
	var migrate *bot.MigrateError
	switch {
	case errors.As(err, &tooMany):
		e := &sendError{msg: n.redact(tooMany.Error()), cause: bot.ErrorTooManyRequests}
		if tooMany.RetryAfter > 0 {
			return true, &notifiers.RetryAfterError{After: time.Duration(tooMany.RetryAfter) * time.Second, Err: e}
		}
		return true, e
	case errors.As(err, &migrate):
		return false, &sendError{msg: fmt.Sprintf("the chat became a supergroup: set chat_id to %d", migrate.MigrateToChatID), cause: bot.ErrorBadRequest}
	case errors.Is(err, bot.ErrorUnauthorized):
		return false, &sendError{msg: "the bot token was rejected: " + n.text(err), cause: bot.ErrorUnauthorized}
	case errors.Is(err, bot.ErrorForbidden):
		return false, &sendError{msg: "the bot may not post to this chat (blocked, or not a member): " + n.text(err), cause: bot.ErrorForbidden}
	}
	for _, sentinel := range []error{bot.ErrorBadRequest, bot.ErrorNotFound, bot.ErrorConflict} {
		if errors.Is(err, sentinel) {
			return false, &sendError{msg: n.text(err), cause: sentinel}
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// Our per-attempt timeout or the caller's cancellation.
		return true, &sendError{msg: n.text(err), cause: ctxErr}
	}
	msg := n.text(err)
	if status != 0 && (status < 200 || status > 299) {
		// A non-JSON answer (a proxy's error page): only the status tells.
		msg = fmt.Sprintf("HTTP %d %s: %s", status, http.StatusText(status), msg)
		if status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
			return false, &sendError{msg: msg}
		}
	}
	// 5xx, 408, 429 without a hint, network errors: worth another try.
	return true, &sendError{msg: msg}
}

// maxErrText bounds the library's error text, which may quote a whole
// response body (an HTML error page).
const maxErrText = 300

// text is err's message without the token, bounded in length.
func (n *Notifier) text(err error) string {
	s := n.redact(err.Error())
	if len(s) > maxErrText {
		cut := maxErrText
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redact removes the bot token, raw or URL-escaped, from s. The token is
// part of every request URL, and net/http puts the URL in its errors.
func (n *Notifier) redact(s string) string {
	for _, t := range []string{n.token, url.PathEscape(n.token), url.QueryEscape(n.token)} {
		if t != "" {
			s = strings.ReplaceAll(s, t, "<token>")
		}
	}
	return s
}

// sendError is a failed delivery whose message is safe to log.
type sendError struct {
	msg   string
	cause error
}

func (e *sendError) Error() string { return e.msg }
func (e *sendError) Unwrap() error { return e.cause }

// statusKey carries, in a request's context, where statusClient records
// the HTTP status: the library reports Bot API errors by their JSON
// error_code and drops the status of a non-JSON answer, which is all a
// proxy's 502 page has to say.
type statusKey struct{}

// statusClient records each response's status code for classify.
type statusClient struct{ c *http.Client }

func (s statusClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := s.c.Do(req)
	if resp != nil {
		if p, ok := req.Context().Value(statusKey{}).(*int); ok {
			*p = resp.StatusCode
		}
	}
	return resp, err
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
