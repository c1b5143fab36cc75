package telegramctl

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// Control is what the commands need of the daemon; *watcher.Watcher is
// one. Every method must be safe for concurrent use and must not block on
// the network. ExpireSilence and Ack wrap watcher.ErrNotFound for an ID
// the daemon does not know.
type Control interface {
	Status(now time.Time) []watcher.AccountStatus
	Silences() []silence.Silence
	AddSilence(silence.Silence) (silence.Silence, error)
	ExpireSilence(id string) (silence.Silence, error)
	Ack(id, author, comment string) (rules.State, error)
}

var _ Control = (*watcher.Watcher)(nil)

// defaultPollTimeout is how long one getUpdates waits for a message:
// Telegram holds the request open up to that long (it allows 50 s).
const defaultPollTimeout = 30 * time.Second

// Options are the runner's collaborators; every field is optional.
type Options struct {
	// Logger receives polling problems and commands from unknown chats.
	// Nil discards them.
	Logger *slog.Logger
	// HTTPClient sends the Bot API requests. Nil uses a client of its
	// own. A Timeout on it must exceed PollTimeout.
	HTTPClient *http.Client
	// PollTimeout is how long one getUpdates long poll may wait; default
	// 30 s. Tests shorten it.
	PollTimeout time.Duration
	// Now is the clock for replies; nil is time.Now.
	Now func() time.Time
}

// Runner polls every commands-enabled bot of the config and answers its
// chats. Build it with New, run it with Run, follow reloads with Reload.
type Runner struct {
	ctl  Control
	log  *slog.Logger
	hc   *http.Client
	poll time.Duration
	now  func() time.Time

	mu      sync.Mutex // guards want, ctx and running; held while pollers stop
	want    []botConfig
	ctx     context.Context // Run's; nil before Run and after it ends
	running map[string]*poller

	offMu sync.Mutex // guards offsets; handlers take it while mu waits for them
	// offsets keeps the last update handled per token, so a poller
	// restarted by a reload does not answer a command twice.
	offsets map[string]int64
}

// botConfig is one bot token's share of the config: the chats it takes
// commands from and the notifiers that named them.
type botConfig struct {
	token     string
	apiURL    string
	chats     []string
	notifiers []string
	timeout   time.Duration // one sendMessage attempt
}

// sameBot reports whether o polls like b: a change of chats or notifiers
// only needs no restart.
func (b botConfig) sameBot(o botConfig) bool {
	return b.token == o.token && b.apiURL == o.apiURL && b.timeout == o.timeout
}

// New returns a runner for the telegram notifiers of cfg that take
// commands. It makes no network call. A config with none gives a runner
// that does nothing until a reload adds one.
func New(cfg *config.Config, ctl Control, opts Options) (*Runner, error) {
	want, err := botsOf(cfg)
	if err != nil {
		return nil, err
	}
	r := &Runner{ctl: ctl, log: opts.Logger, hc: opts.HTTPClient, poll: opts.PollTimeout, now: opts.Now,
		want: want, running: map[string]*poller{}, offsets: map[string]int64{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "telegram commands")
	if r.hc == nil {
		r.hc = &http.Client{}
	}
	if r.poll <= 0 {
		r.poll = defaultPollTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// botsOf groups the commands-enabled telegram notifiers of cfg by token,
// in config order.
func botsOf(cfg *config.Config) ([]botConfig, error) {
	var out []botConfig
	for _, n := range cfg.Notifiers {
		if n.Type != "telegram" || !n.Commands {
			continue
		}
		token := strings.TrimSpace(n.Token.Reveal())
		if token == "" {
			return nil, fmt.Errorf("telegram notifier %q: token is required for commands (or set commands: false)", n.Name)
		}
		if n.ChatID == "" {
			return nil, fmt.Errorf("telegram notifier %q: chat_id is required for commands (or set commands: false)", n.Name)
		}
		if n.APIURL != "" {
			u, err := url.Parse(n.APIURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("telegram notifier %q: api_url must be an http(s) URL", n.Name)
			}
		}
		i := slices.IndexFunc(out, func(b botConfig) bool { return b.token == token })
		if i < 0 {
			out = append(out, botConfig{token: token, apiURL: strings.TrimRight(n.APIURL, "/"), timeout: n.Timeout})
			i = len(out) - 1
		}
		b := &out[i]
		if b.apiURL != strings.TrimRight(n.APIURL, "/") {
			return nil, fmt.Errorf("telegram notifier %q: api_url differs from notifier %q's with the same token: one bot polls one server; use the same api_url", n.Name, b.notifiers[0])
		}
		if !slices.Contains(b.chats, n.ChatID) {
			b.chats = append(b.chats, n.ChatID)
		}
		b.notifiers = append(b.notifiers, n.Name)
	}
	return out, nil
}

// Run polls until ctx ends, then stops every poller and returns once they
// have stopped.
func (r *Runner) Run(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.apply()
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.ctx = nil
	stopping := r.running
	r.running = map[string]*poller{}
	r.mu.Unlock()
	for _, p := range stopping {
		p.stop()
	}
}

// Reload follows a new config: pollers whose server or timeout changed
// restart, new ones start, removed ones stop, and the others answer their
// new chats from the next command on. On an error the running pollers
// stay as they are.
func (r *Runner) Reload(cfg *config.Config) error {
	want, err := botsOf(cfg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.want = want
	if r.ctx != nil {
		r.apply()
	}
	return nil
}

// apply makes the running pollers match r.want; r.mu is held. Stopping a
// poller waits for it (a reply in flight ends with its context).
func (r *Runner) apply() {
	for token, p := range r.running {
		i := slices.IndexFunc(r.want, func(b botConfig) bool { return b.token == token })
		if i >= 0 && r.want[i].sameBot(p.cfg) {
			p.setAudience(r.want[i])
			continue
		}
		p.stop()
		delete(r.running, token)
	}
	for _, b := range r.want {
		if _, ok := r.running[b.token]; ok {
			continue
		}
		p, err := r.newPoller(b)
		if err != nil {
			r.log.Error("cannot start telegram commands", "notifiers", strings.Join(b.notifiers, ","), "err", err)
			continue
		}
		r.running[b.token] = p
		p.start(r.ctx)
	}
}

// handled records that the update id of token was handled.
func (r *Runner) handled(token string, id int64) {
	r.offMu.Lock()
	defer r.offMu.Unlock()
	if id > r.offsets[token] {
		r.offsets[token] = id
	}
}

func (r *Runner) offset(token string) int64 {
	r.offMu.Lock()
	defer r.offMu.Unlock()
	return r.offsets[token]
}
