package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/budget"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// Options are the parts of a Watcher that callers and tests choose.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Stdout receives console notifications; Color enables ANSI colour there.
	Stdout io.Writer
	Color  bool
	// NewExchange builds an account's exchange; the package NewExchange when nil.
	NewExchange func(a config.Account, now func() time.Time, logger *slog.Logger) (exchanges.Exchange, error)
	// NewTarget builds a notifier; the package NewTarget when nil.
	NewTarget func(n config.Notifier, env NotifierEnv) (delivery.Target, error)
	// WatchFiles reloads when the config file or a rule file changes.
	WatchFiles bool
	// Hooks observe the daemon (service manager, metrics); nil ones are skipped.
	Hooks Hooks
}

// Hooks are told what the daemon does. They run on the daemon's goroutines
// and must return quickly.
type Hooks struct {
	// Reloading is called when a reload starts, Reloaded when it ends.
	Reloading func()
	Reloaded  func(ok bool, at time.Time)
	// Polled is called after every poll of an account; weight is the
	// exchange's rate-limit weight used, -1 when it does not report one.
	Polled func(account string, took time.Duration, ok bool, at time.Time, weight int)
	// Evaluated is called with every alert state after each evaluation.
	Evaluated func(states []rules.State)
	// Planned is called with the request-budget plan at start and after
	// every reload (watcher/budget).
	Planned func(p budget.Plan)
	// Weight is called after a poll with the request weight the exchange
	// reported as used on host this minute, for adapters that report it.
	Weight func(host string, used int)
	// Heartbeat is called after a poll cycle that brought fresh data and
	// whose state was committed, while at least one notifier delivers: a
	// dead man's switch fed from it goes quiet on a wedged loop, a full
	// disk, a blind account's polls or a revoked bot token alike.
	Heartbeat func()
	// Streamed is called after a streamed account's live view was
	// evaluated, with the time from the arrival of the change behind it.
	Streamed func(account string, latency time.Duration)
	// StreamState is called with a streamed account's stream health after
	// every change or poll of it.
	StreamState func(account string, st exchanges.StreamStatus)
}

// ErrConfig marks New's errors that only the user can fix in the
// configuration (no accounts, a notifier or an exchange that cannot be
// built from its settings); the daemon exits 78 on them, and 1 on the rest
// (the state database).
var ErrConfig = errors.New("configuration problem")

// configError is an error that Is ErrConfig, its message unchanged.
type configError struct{ error }

func (configError) Is(target error) bool { return target == ErrConfig }
func (e configError) Unwrap() error      { return e.error }

// Watcher is the running daemon.
//
// Locks: commitMu orders evaluation and commits (one committer at a time
// keeps the outbox in order) and is held across the store's fsync; mu
// guards only the pointers of what runs (cur, engine, disp) and is never
// held across I/O. Whoever replaces those pointers holds both, so code
// under either lock may read them. Health and Alive never take commitMu: a
// health check must not wait on the disk.
type Watcher struct {
	store   *store.Store
	log     *slog.Logger
	now     func() time.Time
	opts    Options
	reloads chan struct{}
	// commit writes a batch; the store's Commit (tests make it fail).
	commit func(*store.Batch) error
	// base is the monotonic reference of lastCycle, which holds how long
	// after base a poll cycle last completed, for the service manager's
	// watchdog (zero: none yet). Wall-clock steps must not starve it.
	base      time.Time
	lastCycle atomic.Int64

	commitMu sync.Mutex
	// held is what failed commits left to write, merged into one batch
	// (see save); nil when the store is up to date.
	held *store.Batch
	// self are the daemon's alerts about itself (see isSelf), by key.
	self map[rules.Key]rules.State
	// ctl holds the silences and mute windows in force.
	ctl *controls

	mu     sync.Mutex
	cur    *setup
	engine *rules.Engine
	disp   *delivery.Dispatcher

	health health

	// stretched is the last plan's stretched-budget messages, logged once.
	stretched []string
}

// setup is everything built from one configuration; a reload builds a new
// one and swaps it in whole.
type setup struct {
	cfg      *config.Config
	rules    []*rules.Rule
	accounts []*account
	targets  []delivery.Target
	names    []string // every notifier, config order
	plan     budget.Plan
}

type account struct {
	cfg  config.Account
	ex   exchanges.Exchange
	hist *metrics.EquityHistory
	log  *slog.Logger
	// watchedSince is when the daemon began watching the account (its
	// start, or the reload that added it): blindness counts from no earlier.
	watchedSince time.Time
	// saved is the account state last handed to the store, at savedAt
	// (zero: not since the start). Only the account's poller uses them.
	saved   store.AccountState
	savedAt time.Time
	// every is the effective interval of the account's Snapshots (polls,
	// or reconciliations when it streams) and startAfter the wait before
	// the first, as the budget plan set them; pollEvery is poll_interval
	// stretched as every was, for polling while a stream is down. Set
	// before the account's goroutines start (New, swap under w.mu).
	every, startAfter, pollEvery time.Duration
	// due is when a polled account's next poll is due: set by the plan for
	// a fresh account, by its poll loop after every poll (zero: at once).
	// Written by the loop, read by the plan while the loop does not run
	// (a reload's swap): a kept account keeps its phase.
	due time.Time

	mu          sync.Mutex
	lastSuccess time.Time
	// latest is the last evaluation's metrics, for digests. A streamed
	// account's is live.acct, rewritten in place under mu on every tick:
	// read it under mu, or Clone it there.
	latest *metrics.Account
	// live and batch are a streamed account's per-tick buffers (stream.go),
	// used by its stream loop only.
	live    live
	batch   store.Batch
	streams streaming
	// carry is a REST read whose events and transfers the next live
	// evaluation takes along (absorbStreamed); stream loop only.
	carry *exchanges.Snapshot
	// pollErr is the last poll's error when it was permanent (a rejected
	// key), for /healthz.
	pollErr error
}

// freshness returns when the account last had fresh data and when its
// current blindness began.
func (a *account) freshness() (lastSuccess, since time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastSuccess, blindSince(a.lastSuccess, a.watchedSince)
}

// New builds a watcher for cfg with its compiled rules, restoring alert state
// and equity history from st. It does not start polling; see Run.
func New(cfg *config.Config, compiled []*rules.Rule, st *store.Store, opts Options) (*Watcher, error) {
	w := &Watcher{store: st, log: opts.Logger, now: opts.Now, opts: opts, reloads: make(chan struct{}, 1), commit: st.Commit, base: time.Now(),
		self: make(map[rules.Key]rules.State), ctl: newControls()}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.opts.NewExchange == nil {
		w.opts.NewExchange = NewExchange
	}
	if w.opts.NewTarget == nil {
		w.opts.NewTarget = NewTarget
	}
	stored, err := st.AlertStates()
	if err != nil {
		return nil, err
	}
	var states, self []rules.State
	for _, st := range stored {
		if isSelf(st.Key) {
			self = append(self, st)
		} else {
			states = append(states, st)
		}
	}
	s, _, err := w.build(cfg, compiled, nil)
	if err != nil {
		return nil, err
	}
	w.loadSilences()
	w.setWindows(cfg.MuteWindows())
	fresh := map[*account]bool{}
	for _, a := range s.accounts {
		fresh[a] = true
	}
	applyPlan(s, planAccounts(s, fresh, w.now()), fresh)
	w.logPlan(s.plan)
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	w.mu.Lock()
	w.cur = s
	w.engine = rules.NewEngine(compiled, states)
	w.engine.SetSilencer(w.ctl)
	w.disp = w.newDispatcher(s)
	w.mu.Unlock()
	w.closeOrphans(states)
	w.resumeSelf(self)
	return w, nil
}

// build makes a setup from cfg, reusing the accounts of old whose settings
// did not change (their exchange connection, caches and equity history).
// It returns the accounts it created anew; on error it closes them again.
// It changes nothing of old (whose pollers still run): swap gives a reused
// account its new config. s.accounts[i] is cfg.Accounts[i]'s.
func (w *Watcher) build(cfg *config.Config, compiled []*rules.Rule, old *setup) (*setup, []*account, error) {
	if len(cfg.Accounts) == 0 {
		return nil, nil, configError{fmt.Errorf("%s: no accounts configured: add at least one under accounts: (see examples/demo.yaml)", cfg.Path)}
	}
	s := &setup{cfg: cfg, rules: compiled}
	env := NotifierEnv{Stdout: w.opts.Stdout, Color: w.opts.Color, Logger: w.log, Threads: w.store}
	for _, n := range cfg.Notifiers {
		t, err := w.opts.NewTarget(n, env)
		if err != nil {
			return nil, nil, configError{err}
		}
		s.targets = append(s.targets, t)
		s.names = append(s.names, n.Name)
	}
	var created []*account
	fail := func(err error) (*setup, []*account, error) {
		closeAccounts(w.log, created)
		return nil, nil, err
	}
	for _, a := range cfg.Accounts {
		if prev := old.account(a.Name); prev != nil && sameAccount(prev.cfg, a) {
			s.accounts = append(s.accounts, prev)
			continue
		}
		acc, err := w.newAccount(a)
		if err != nil {
			return fail(err)
		}
		created = append(created, acc)
		s.accounts = append(s.accounts, acc)
	}
	return s, created, nil
}

// newAccount connects an account and restores its state from the store.
func (w *Watcher) newAccount(a config.Account) (*account, error) {
	alog := w.log.With("account", a.Name)
	ex, err := w.opts.NewExchange(a, w.now, alog)
	if err != nil {
		return nil, configError{err}
	}
	acc := &account{cfg: a, ex: ex, hist: metrics.NewEquityHistory(metrics.DefaultHistoryCapacity), log: alog, watchedSince: w.now()}
	saved, ok, err := w.store.Account(a.Name)
	if err != nil {
		_ = ex.Close()
		return nil, err
	}
	if ok {
		acc.saved = saved
		acc.lastSuccess = saved.LastSuccess
		if bk, ok := ex.(exchanges.BanKeeper); ok && len(saved.Bans) > 0 {
			bk.RestoreBans(saved.Bans) // before the first request
		}
		if len(saved.History) > 0 {
			if err := acc.hist.UnmarshalBinary(saved.History); err != nil {
				// A damaged history only costs drawdown's memory; say so and go on.
				alog.Warn("equity history unreadable, drawdown starts afresh", "err", err)
				acc.hist = metrics.NewEquityHistory(metrics.DefaultHistoryCapacity)
			}
		}
	}
	return acc, nil
}

func (s *setup) account(name string) *account {
	if s == nil {
		return nil
	}
	for _, a := range s.accounts {
		if a.cfg.Name == name {
			return a
		}
	}
	return nil
}

// sameAccount reports whether two account configs are the same but for
// where they were written.
func sameAccount(a, b config.Account) bool {
	a.At, b.At = config.Location{}, config.Location{}
	return reflect.DeepEqual(a, b)
}

func closeAccounts(log *slog.Logger, accts []*account) {
	for _, a := range accts {
		a.stopStream()
		if err := a.ex.Close(); err != nil {
			log.Warn("close exchange", "account", a.cfg.Name, "err", err)
		}
	}
}

func (w *Watcher) newDispatcher(s *setup) *delivery.Dispatcher {
	d := delivery.New(w.store, s.targets, w.log)
	d.OnHealth = w.onNotifierHealth
	return d
}

// running returns the current setup, engine and dispatcher.
func (w *Watcher) running() (*setup, *rules.Engine, *delivery.Dispatcher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.engine, w.disp
}

// Config returns the configuration running now (the last good one).
func (w *Watcher) Config() *config.Config {
	s, _, _ := w.running()
	return s.cfg
}

// keyCheckTimeout bounds the start-up permission check of one account.
const keyCheckTimeout = 30 * time.Second

// CheckKeys asks every exchange that can tell whether its API key is fit for
// marginwatch (read-only; see exchanges.KeyChecker). The daemon must not run
// when it returns an error: the error says which account and how to fix it.
func (w *Watcher) CheckKeys(ctx context.Context) error {
	s, _, _ := w.running()
	return checkKeys(ctx, s.accounts)
}

func checkKeys(ctx context.Context, accts []*account) error {
	var errs []error
	for _, a := range accts {
		kc, ok := a.ex.(exchanges.KeyChecker)
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, keyCheckTimeout)
		err := kc.CheckKey(cctx)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.log.Info("API key permissions checked: read-only")
	}
	return errors.Join(errs...)
}

// Close releases the exchanges. The caller closes the store.
func (w *Watcher) Close() {
	w.mu.Lock()
	var accts []*account
	if w.cur != nil {
		accts, w.cur.accounts = w.cur.accounts, nil
	}
	w.mu.Unlock()
	closeAccounts(w.log, accts)
}

// RequestReload asks Run to reload the configuration (SIGHUP). Never blocks.
func (w *Watcher) RequestReload() {
	select {
	case w.reloads <- struct{}{}:
	default:
	}
}

// DeliveryStats returns the running dispatcher's counters per notifier.
func (w *Watcher) DeliveryStats() map[string]delivery.Stats {
	_, _, d := w.running()
	return d.Stats()
}

// Run polls every account until ctx is done, reloading the configuration
// when asked (RequestReload, or an edited file with Options.WatchFiles).
// At the end it delivers what is pending and returns nil, within
// shutdownFlush.
func (w *Watcher) Run(ctx context.Context) error {
	var bg sync.WaitGroup
	bg.Go(func() { w.maintain(ctx) })
	bg.Go(func() { w.releaseLoop(ctx) })
	if w.opts.WatchFiles {
		bg.Go(func() { w.watchFiles(ctx) })
	}
	defer bg.Wait()

	g := w.start(ctx)
	for {
		select {
		case <-ctx.Done():
			w.shutdown(g)
			return nil
		case <-w.reloads:
			if w.opts.Hooks.Reloading != nil {
				w.opts.Hooks.Reloading()
			}
			next, created, err := w.prepare(ctx)
			if ctx.Err() != nil {
				// Shutting down: a key check cut off is no rejected config,
				// and a new setup is not worth starting.
				if err == nil {
					closeAccounts(w.log, created)
				}
				continue
			}
			if err != nil {
				w.reloadFailure(err)
				continue
			}
			if !w.stop(ctx, g) {
				// SIGTERM while a send or a poll ignores cancellation: no
				// new generation beside what is left of this one.
				closeAccounts(w.log, created)
				w.shutdown(g)
				return nil
			}
			w.swap(next, created)
			g = w.start(ctx)
			w.reloadSuccess()
		}
	}
}
