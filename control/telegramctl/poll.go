package telegramctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// maxBackoff caps the wait between failed getUpdates (on top of the
// library's own, up to 5 s): a fixed token or a stopped rival poller is
// noticed within about a minute, and a rival is not fought every second.
const maxBackoff = time.Minute

// poller is one bot's long polling and its answers.
type poller struct {
	r   *Runner
	cfg botConfig // token, apiURL and timeout; chats and notifiers are in aud
	bot *bot.Bot
	// aud is the chats the bot answers, swapped whole by a reload that
	// changes only them (polling goes on: nothing queued is dropped).
	aud    atomic.Pointer[audience]
	health health
	// username is the bot's, once getMe told it: "/status@otherbot" in a
	// group is not for us.
	username atomic.Pointer[string]

	cancel context.CancelFunc
	done   chan struct{}
}

// audience is who a bot answers: its notifiers' chats.
type audience struct {
	allowed   map[string]bool // chat ids as configured; "@name" lower-cased
	notifiers []string
	log       *slog.Logger // the runner's, naming the notifiers
}

// setAudience makes the poller answer the chats of b from now on.
func (p *poller) setAudience(b botConfig) {
	a := &audience{allowed: map[string]bool{}, notifiers: b.notifiers,
		log: p.r.log.With("notifiers", strings.Join(b.notifiers, ","))}
	for _, c := range b.chats {
		a.allowed[strings.ToLower(c)] = true
	}
	p.aud.Store(a)
}

func (p *poller) log() *slog.Logger { return p.aud.Load().log }

// newPoller builds the bot client of b; it makes no network call.
func (r *Runner) newPoller(b botConfig) (*poller, error) {
	p := &poller{r: r, cfg: b}
	p.setAudience(b)
	opts := []bot.Option{
		bot.WithSkipGetMe(),
		// No buffer between getUpdates and the handler: the library
		// confirms a batch to Telegram (the next getUpdates' offset) only
		// once the handler has taken its last update, so what waits is
		// still Telegram's when the poller stops (reload, SIGTERM).
		bot.WithUpdatesChannelCap(0),
		bot.WithHTTPClient(r.poll, pollClient{hc: r.hc, p: p}),
		bot.WithErrorsHandler(p.onError),
		bot.WithDefaultHandler(p.handle),
		// One command at a time, in the order sent: /mute then /unmute.
		bot.WithNotAsyncHandlers(),
		bot.WithAllowedUpdates(bot.AllowedUpdates{"message", "channel_post"}),
		bot.WithInitialOffset(r.offset(b.token)),
	}
	if b.apiURL != "" {
		// The library appends "/bot<token>/<method>" to the base.
		opts = append(opts, bot.WithServerURL(b.apiURL))
	}
	bt, err := bot.New(b.token, opts...)
	if err != nil {
		return nil, fmt.Errorf("telegram bot: %s", p.redact(err.Error()))
	}
	p.bot = bt
	return p, nil
}

func (p *poller) start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		// Learn the bot's name before the first command, so one for
		// another bot is told apart; a failing getMe delays polling by
		// one attempt (the notifier's timeout) at most.
		p.learnName(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { p.register(ctx) })
		p.bot.Start(ctx)
		wg.Wait()
	}()
}

// learnName asks getMe once for the bot's username and reports whether
// it is known.
func (p *poller) learnName(ctx context.Context) bool {
	if p.username.Load() != nil {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.timeoutOr())
	me, err := p.bot.GetMe(rctx)
	cancel()
	if err != nil || me.Username == "" {
		if ctx.Err() == nil {
			p.log().Debug("cannot learn the bot's username yet; commands addressed to a bot by name are ignored until then", "err", p.errText(err))
		}
		return false
	}
	name := strings.ToLower(me.Username)
	p.username.Store(&name)
	return true
}

// stop ends the polling and waits for it.
func (p *poller) stop() {
	p.cancel()
	<-p.done
}

// register learns the bot's username (getMe) and publishes the command
// list (setMyCommands), retrying each until it succeeds or ctx ends.
func (p *poller) register(ctx context.Context) {
	named, listed := false, false
	for wait := 2 * time.Second; ; wait = min(2*wait, 5*time.Minute) {
		if !named {
			named = p.learnName(ctx)
		}
		if !listed {
			rctx, cancel := context.WithTimeout(ctx, p.cfg.timeoutOr())
			_, err := p.bot.SetMyCommands(rctx, &bot.SetMyCommandsParams{Commands: botCommands()})
			cancel()
			switch {
			case err == nil:
				listed = true
			case ctx.Err() != nil:
				return
			default:
				// getUpdates says loudly what is wrong with the token.
				p.log().Debug("cannot register the command list yet", "err", p.redact(err.Error()))
			}
		}
		if named && listed {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (b botConfig) timeoutOr() time.Duration {
	if b.timeout > 0 {
		return b.timeout
	}
	return 10 * time.Second
}

// botCommands is the list setMyCommands publishes: what Telegram offers
// when a user types "/".
func botCommands() []models.BotCommand {
	out := make([]models.BotCommand, len(commands))
	for i, c := range commands {
		out[i] = models.BotCommand{Command: c.name, Description: c.about}
	}
	return out
}

func (p *poller) errText(err error) string {
	if err == nil {
		return "getMe answered no username"
	}
	return p.redact(err.Error())
}

// redact removes the token from a library error's text.
func (p *poller) redact(s string) string {
	return strings.ReplaceAll(s, p.cfg.token, "<token>")
}

// health is the state of one bot's getUpdates: how many failed in a row
// (the backoff) and which failure was logged (each is logged once until
// polling works again).
type health struct {
	mu       sync.Mutex
	failures int
	reported string
}

// pollClient is the bot's HTTP client: it delays a getUpdates after
// failures and records how each ended.
type pollClient struct {
	hc *http.Client
	p  *poller
}

func (c pollClient) Do(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/getUpdates") {
		return c.hc.Do(req)
	}
	h := &c.p.health
	if d := h.backoff(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
	}
	resp, err := c.hc.Do(req)
	switch {
	case req.Context().Err() != nil:
	case err == nil && resp.StatusCode == http.StatusOK:
		if h.ok() {
			c.p.log().Info("telegram commands: polling works again")
		}
	default:
		h.mu.Lock()
		h.failures++
		h.mu.Unlock()
	}
	return resp, err
}

// backoff is the wait before the next getUpdates: 0 after a success, then
// 1 s, 2 s, 4 s … up to maxBackoff.
func (h *health) backoff() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failures == 0 {
		return 0
	}
	return min(time.Second<<min(h.failures-1, 10), maxBackoff)
}

// ok records a successful getUpdates and reports whether a failure had
// been logged.
func (h *health) ok() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.reported != ""
	h.failures, h.reported = 0, ""
	return was
}

// first records that a failure of kind happened and reports whether it is
// the first of its kind since polling last worked.
func (h *health) first(kind string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reported == kind {
		return false
	}
	h.reported = kind
	return true
}

// onError receives the library's errors: getUpdates failures (the library
// retries them) and the odd internal one.
func (p *poller) onError(err error) {
	text := p.redact(err.Error())
	if strings.HasPrefix(err.Error(), "some updates lost") {
		// The poller stopped with updates fetched but not handled: they
		// were not confirmed, so Telegram sends them again next time.
		p.log().Debug("telegram commands: stopped with commands waiting; they are answered after the restart", "err", text)
		return
	}
	if !strings.HasPrefix(err.Error(), "error get updates") {
		p.log().Warn("telegram client error", "err", text)
		return
	}
	names := strings.Join(p.aud.Load().notifiers, ", ")
	level, kind, msg, fix := slog.LevelWarn, "other", "telegram commands: getUpdates failed; retrying", ""
	switch {
	case errors.Is(err, bot.ErrorConflict) && strings.Contains(strings.ToLower(text), "webhook"):
		level, kind = slog.LevelError, "webhook"
		msg = "telegram commands: a webhook is set on this bot, so Telegram refuses long polling (409 Conflict); retrying"
		fix = "delete the webhook (Bot API deleteWebhook), or set commands: false on notifier " + names + " to leave this bot to the program that set it"
	case errors.Is(err, bot.ErrorConflict):
		level, kind = slog.LevelError, "conflict"
		msg = "telegram commands: another program is polling this bot token (409 Conflict: Telegram lets one poller in at a time); retrying"
		fix = "stop the other poller (a second marginwatch, or another bot on the same token), give marginwatch a bot of its own, or set commands: false on notifier " + names
	case errors.Is(err, bot.ErrorUnauthorized):
		level, kind = slog.LevelError, "unauthorized"
		msg = "telegram commands: Telegram rejected the bot token (401 Unauthorized); retrying"
		fix = "check token or token_file of notifier " + names + " (alerts through it fail too)"
	case errors.Is(err, bot.ErrorNotFound):
		level, kind = slog.LevelError, "not found"
		msg = "telegram commands: the Bot API answered 404 Not Found; retrying"
		fix = "check api_url and the token of notifier " + names
	}
	args := []any{"err", text}
	if fix != "" {
		args = append(args, "fix", fix)
	}
	if !p.health.first(kind) {
		level = slog.LevelDebug
	}
	p.log().Log(context.Background(), level, msg, args...)
}
