package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// defaultTimeout is the per-attempt timeout when the config leaves it zero
// (Load always sets it; this guards hand-built configs).
const defaultTimeout = 10 * time.Second

// Options are the collaborators of a Notifier.
type Options struct {
	// Logger receives warnings (a thread that could not be stored, a thread
	// Slack no longer knows). Nil discards them.
	Logger *slog.Logger
	// HTTPClient sends the requests. Nil means a client with no timeout of
	// its own: every attempt is bounded by the notifier's timeout.
	HTTPClient *http.Client
	// Threads remembers each incident's first message so later messages
	// reply in its thread (bot mode only). Nil disables threading.
	Threads notifiers.Threads
}

// Notifier posts alerts to one Slack channel.
type Notifier struct {
	name    string
	timeout time.Duration
	logger  *slog.Logger
	client  *http.Client
	threads notifiers.Threads
	// secrets are scrubbed from every error text as a last line of defence.
	secrets []string

	// webhook mode
	webhook string
	// bot mode
	api     *goslack.Client
	channel string

	// now reads the clock for HTTP-date Retry-After values.
	now func() time.Time
}

var _ notifiers.Notifier = (*Notifier)(nil)

// New returns the Slack notifier of cfg: webhook mode when cfg.WebhookURL is
// set, bot mode when cfg.Token and cfg.Channel are (with cfg.APIURL, when
// set, instead of https://slack.com/api/). cfg.Timeout bounds each attempt.
func New(cfg config.Notifier, opts Options) (*Notifier, error) {
	hook, token := cfg.WebhookURL.Reveal(), cfg.Token.Reveal()
	switch {
	case hook != "" && token != "":
		return nil, fmt.Errorf("slack notifier %q: webhook_url and token exclude each other", cfg.Name)
	case hook == "" && token == "":
		return nil, fmt.Errorf("slack notifier %q: needs webhook_url, or token and channel", cfg.Name)
	case token != "" && cfg.Channel == "":
		return nil, fmt.Errorf("slack notifier %q: bot mode (token) needs a channel", cfg.Name)
	}
	n := &Notifier{
		name:    cfg.Name,
		timeout: cfg.Timeout,
		logger:  opts.Logger,
		threads: opts.Threads,
		webhook: hook,
		channel: cfg.Channel,
		now:     time.Now,
	}
	if n.timeout <= 0 {
		n.timeout = defaultTimeout
	}
	if n.logger == nil {
		n.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n.logger = n.logger.With("notifier", cfg.Name)
	for _, s := range []string{hook, token} {
		if s != "" {
			n.secrets = append(n.secrets, s)
		}
	}

	// A copy of the caller's client, so the transport that keeps Slack's
	// error details does not leak into other users of that client.
	client := &http.Client{}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		client = &c
	}
	next := client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client.Transport = recordingTransport{next: next}
	n.client = client

	if token != "" {
		apiOpts := []goslack.Option{goslack.OptionHTTPClient(client)}
		if cfg.APIURL != "" {
			apiOpts = append(apiOpts, goslack.OptionAPIURL(strings.TrimSuffix(cfg.APIURL, "/")+"/"))
		}
		n.api = goslack.New(token, apiOpts...)
	}
	return n, nil
}

// Notify posts alerts as one message. In bot mode it replies in the
// incident's thread when every alert belongs to one known thread, and
// remembers the new message as the thread of incidents that had none.
//
// A digest (notifiers.KindDigest) is posted as a message of its own, after
// any alerts of the same call, and never threaded: it is not an incident.
// The daemon sends a digest alone; should a call mix them and a later post
// fail, a retry posts the earlier ones again (at-least-once, as always).
// Each post gets the notifier's timeout.
func (n *Notifier) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("slack: %w", err)
	}
	var incidents, digests []notifiers.Alert
	for _, a := range alerts {
		if a.Kind == notifiers.KindDigest {
			digests = append(digests, a)
		} else {
			incidents = append(incidents, a)
		}
	}
	if len(incidents) > 0 {
		if retry, err := n.notifyAlerts(ctx, incidents); err != nil {
			return retry, err
		}
	}
	for _, d := range digests {
		if retry, err := n.notifyDigest(ctx, d); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// notifyAlerts posts alerts (no digest among them) as one message.
func (n *Notifier) notifyAlerts(ctx context.Context, alerts []notifiers.Alert) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	text, atts := message(alerts)
	if n.api == nil {
		return n.postWebhook(ctx, &goslack.WebhookMessage{Text: text, Attachments: atts})
	}
	return n.postBot(ctx, alerts, text, atts)
}

// notifyDigest posts one digest to the channel, never in a thread.
func (n *Notifier) notifyDigest(ctx context.Context, d notifiers.Alert) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	text, blocks := digestMessage(d)
	if n.api == nil {
		return n.postWebhook(ctx, &goslack.WebhookMessage{Text: text, Blocks: &goslack.Blocks{BlockSet: blocks}})
	}
	if _, err := n.postMessage(ctx, nil, text, nil, blocks, ""); err != nil {
		return err.retry, err.err
	}
	return false, nil
}

func (n *Notifier) postWebhook(ctx context.Context, msg *goslack.WebhookMessage) (bool, error) {
	off := false
	msg.UnfurlLinks, msg.UnfurlMedia = &off, &off
	ctx, info := withResponseInfo(ctx)
	if err := goslack.PostWebhookCustomHTTPContext(ctx, n.webhook, n.client, msg); err != nil {
		return n.fail(ctx, "post to webhook", err, info)
	}
	return false, nil
}

func (n *Notifier) postBot(ctx context.Context, alerts []notifiers.Alert, text string, atts []goslack.Attachment) (bool, error) {
	thread := n.sharedThread(alerts)
	ts, err := n.postMessage(ctx, alerts, text, atts, nil, thread)
	replace := false
	if err != nil && thread != "" && isLostThread(err) {
		// The parent was deleted or cannot take replies: post to the
		// channel rather than lose the alert, and thread there from now on.
		n.logger.Warn("slack thread no longer exists; posting to the channel", "thread_ts", thread, "err", err.err)
		thread, replace = "", true
		ts, err = n.postMessage(ctx, alerts, text, atts, nil, "")
	}
	if err != nil {
		return err.retry, err.err
	}
	if thread == "" {
		n.remember(alerts, ts, replace)
	}
	return false, nil
}

// postMessage makes one chat.postMessage call with attachments, blocks of
// the message's own, or both; thread, when set, is the parent's ts.
func (n *Notifier) postMessage(ctx context.Context, alerts []notifiers.Alert, text string, atts []goslack.Attachment, blocks []goslack.Block, thread string) (string, *sendError) {
	opts := []goslack.MsgOption{
		goslack.MsgOptionText(text, false),
		goslack.MsgOptionAttachments(atts...),
		goslack.MsgOptionDisableLinkUnfurl(),
		goslack.MsgOptionDisableMediaUnfurl(),
	}
	if len(blocks) > 0 {
		// Only when there are some: no blocks would send "blocks=[]".
		opts = append(opts, goslack.MsgOptionBlocks(blocks...))
	}
	if thread != "" {
		opts = append(opts, goslack.MsgOptionTS(thread))
		if broadcast(alerts) {
			opts = append(opts, goslack.MsgOptionBroadcast())
		}
	}
	ctx, info := withResponseInfo(ctx)
	_, ts, err := n.api.PostMessageContext(ctx, n.channel, opts...)
	if err != nil {
		retry, ferr := n.fail(ctx, "chat.postMessage", err, info)
		return "", &sendError{err: ferr, retry: retry, cause: err}
	}
	return ts, nil
}

// sendError carries a classified failure of one post, and the library's
// error for isLostThread.
type sendError struct {
	err   error
	retry bool
	cause error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// sharedThread returns the thread every alert belongs to, or "" when any
// alert has no known thread or two alerts have different ones.
func (n *Notifier) sharedThread(alerts []notifiers.Alert) string {
	if n.threads == nil {
		return ""
	}
	shared := ""
	for _, a := range alerts {
		if !a.Threaded() {
			return ""
		}
		ref, ok := n.threads.Thread(n.name, a.ID)
		if !ok || ref == "" || (shared != "" && ref != shared) {
			return ""
		}
		shared = ref
	}
	return shared
}

// remember stores ts as the thread of every incident in alerts that has
// none yet (or of all of them when replace is set: their old thread is
// gone). A failure to store only costs threading, never the delivery, so
// it is logged, not returned: returning it would make the outbox send the
// message twice.
func (n *Notifier) remember(alerts []notifiers.Alert, ts string, replace bool) {
	if n.threads == nil || ts == "" {
		return
	}
	seen := make(map[string]bool, len(alerts))
	for _, a := range alerts {
		if !a.Threaded() || seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		if !replace {
			if _, ok := n.threads.Thread(n.name, a.ID); ok {
				continue
			}
		}
		if err := n.threads.SetThread(n.name, a.ID, ts); err != nil {
			n.logger.Warn("cannot remember the slack thread of an incident; its next message starts a new thread", "incident", a.ID, "err", n.scrub(err))
		}
	}
}

// broadcast reports whether a thread reply must also show in the channel:
// thread replies notify no one who has not joined the thread, and an
// escalation, a critical that is still firing or a liquidation must wake
// the trader.
func broadcast(alerts []notifiers.Alert) bool {
	for _, a := range alerts {
		if a.Liquidated() {
			return true
		}
		if a.Status == notifiers.Resolved {
			continue
		}
		if a.Kind == notifiers.KindEscalated || (a.Severity == notifiers.Critical && a.Kind == notifiers.KindRepeat) {
			return true
		}
	}
	return false
}

// isLostThread reports whether chat.postMessage failed because the thread's
// parent message no longer exists.
func isLostThread(err *sendError) bool {
	var api goslack.SlackErrorResponse
	if !errors.As(err.cause, &api) {
		return false
	}
	switch api.Err {
	case "thread_not_found", "invalid_thread_ts", "message_not_found",
		"cannot_reply_to_message", "restricted_action_non_threadable_channel":
		return true
	}
	return false
}
