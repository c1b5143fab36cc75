package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/digest"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// historyCapacity bounds how far back drawdown windows can look.
const historyCapacity = 7 * 24 * time.Hour

// shutdownFlush bounds how long Run takes once ctx is done: stopping the
// polls, delivering what is pending and finishing sends in flight. SIGTERM
// must end the daemon within 10 s; the rest is for closing the exchanges and
// the store.
const shutdownFlush = 9 * time.Second

// abortGrace is how long sends cut short at the shutdown deadline get to
// return before Run stops waiting for them.
const abortGrace = 500 * time.Millisecond

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
}

// Watcher is the running daemon.
type Watcher struct {
	store   *store.Store
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	opts    Options
	reloads chan struct{}
	// commit writes a batch; the store's Commit (tests make it fail).
	commit func(*store.Batch) error
	// lastCycle is when a poll cycle last completed (unix nanoseconds), for
	// the service manager's watchdog.
	lastCycle atomic.Int64

	// mu serializes evaluation, commits and the swap of a reload: the
	// engine is not safe for concurrent use, and one commit at a time keeps
	// the outbox in order.
	mu      sync.Mutex
	cur     *setup
	engine  *rules.Engine
	disp    *delivery.Dispatcher
	unsaved []*store.Batch // commits that failed, retried first next cycle
	// reloadFailed is when the current run of failed reloads began (zero
	// while the config on disk is the one running).
	reloadFailed time.Time
}

// setup is everything built from one configuration; a reload builds a new
// one and swaps it in whole.
type setup struct {
	cfg      *config.Config
	rules    []*rules.Rule
	accounts []*account
	targets  []delivery.Target
	names    []string // every notifier, config order
}

type account struct {
	cfg         config.Account
	ex          exchanges.Exchange
	hist        *metrics.EquityHistory
	lastSuccess time.Time // guarded by Watcher.mu; the account's poller reads it freely
	log         *slog.Logger
	// latest is the last evaluation's metrics, for digests. Guarded by
	// Watcher.mu.
	latest *metrics.Account
}

// New builds a watcher for cfg with its compiled rules, restoring alert state
// and equity history from st. It does not start polling; see Run.
func New(cfg *config.Config, compiled []*rules.Rule, st *store.Store, opts Options) (*Watcher, error) {
	w := &Watcher{store: st, log: opts.Logger, now: opts.Now, opts: opts, reloads: make(chan struct{}, 1), commit: st.Commit}
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
	w.started = w.now()
	states, err := st.AlertStates()
	if err != nil {
		return nil, err
	}
	s, _, err := w.build(cfg, compiled, nil)
	if err != nil {
		return nil, err
	}
	w.cur = s
	w.engine = rules.NewEngine(compiled, states)
	w.disp = w.newDispatcher(s)
	w.mu.Lock()
	w.closeOrphans(states)
	w.mu.Unlock()
	return w, nil
}

// build makes a setup from cfg, reusing the accounts of old whose settings
// did not change (their exchange connection, caches and equity history).
// It returns the accounts it created anew; on error it closes them again.
// It changes nothing of old (whose pollers still run): swap gives a reused
// account its new config. s.accounts[i] is cfg.Accounts[i]'s.
func (w *Watcher) build(cfg *config.Config, compiled []*rules.Rule, old *setup) (*setup, []*account, error) {
	if len(cfg.Accounts) == 0 {
		return nil, nil, fmt.Errorf("%s: no accounts configured: add at least one under accounts: (see examples/demo.yaml)", cfg.Path)
	}
	s := &setup{cfg: cfg, rules: compiled}
	env := NotifierEnv{Stdout: w.opts.Stdout, Color: w.opts.Color, Logger: w.log, Threads: w.store}
	for _, n := range cfg.Notifiers {
		t, err := w.opts.NewTarget(n, env)
		if err != nil {
			return nil, nil, err
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
		return nil, err
	}
	acc := &account{cfg: a, ex: ex, hist: metrics.NewEquityHistory(historyCapacity), log: alog}
	saved, ok, err := w.store.Account(a.Name)
	if err != nil {
		_ = ex.Close()
		return nil, err
	}
	if ok {
		acc.lastSuccess = saved.LastSuccess
		if len(saved.History) > 0 {
			if err := acc.hist.UnmarshalBinary(saved.History); err != nil {
				// A damaged history only costs drawdown's memory; say so and go on.
				alog.Warn("equity history unreadable, drawdown starts afresh", "err", err)
				acc.hist = metrics.NewEquityHistory(historyCapacity)
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

// keyCheckTimeout bounds the start-up permission check of one account.
const keyCheckTimeout = 30 * time.Second

// CheckKeys asks every exchange that can tell whether its API key is fit for
// marginwatch (read-only; see exchanges.KeyChecker). The daemon must not run
// when it returns an error: the error says which account and how to fix it.
func (w *Watcher) CheckKeys(ctx context.Context) error {
	return checkKeys(ctx, w.cur.accounts)
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
	defer w.mu.Unlock()
	if w.cur != nil {
		closeAccounts(w.log, w.cur.accounts)
		w.cur.accounts = nil
	}
}

// RequestReload asks Run to reload the configuration (SIGHUP). Never blocks.
func (w *Watcher) RequestReload() {
	select {
	case w.reloads <- struct{}{}:
	default:
	}
}

// Alive reports whether the poll loop is making progress: a cycle (failed
// polls count: an exchange outage is data-stale's business, not a reason to
// restart) completed within three poll intervals, or a minute. The service
// manager's watchdog is fed only while it is true.
func (w *Watcher) Alive() bool {
	w.mu.Lock()
	var longest time.Duration
	for _, a := range w.cur.accounts {
		longest = max(longest, a.cfg.PollInterval)
	}
	w.mu.Unlock()
	last := w.started
	if n := w.lastCycle.Load(); n != 0 {
		last = time.Unix(0, n)
	}
	return time.Since(last) < max(3*longest, time.Minute)
}

// Health reports whether every account has fresh data (stale_after), with
// one line per blind account otherwise: /healthz.
func (w *Watcher) Health() (ok bool, detail string) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	// data-stale still firing (restored after a restart while the exchange
	// is down) counts too: the daemon's own start is no fresh data.
	blind := map[string]bool{}
	for _, st := range w.engine.States() {
		if st.Key.Rule == rules.DataStale && st.Phase == rules.Active {
			blind[st.Key.Account] = true
		}
	}
	var lines []string
	for _, a := range w.cur.accounts {
		age := now.Sub(blindSince(a.lastSuccess, w.started))
		switch {
		case age > a.cfg.StaleAfter:
			lines = append(lines, fmt.Sprintf("account %s: no fresh data for %s", a.cfg.Name, age.Round(time.Second)))
		case blind[a.cfg.Name] && a.lastSuccess.Before(w.started):
			lines = append(lines, fmt.Sprintf("account %s: no fresh data since before the restart", a.cfg.Name))
		}
	}
	if len(lines) == 0 {
		return true, ""
	}
	return false, strings.Join(lines, "\n") + "\n"
}

// DeliveryStats returns the running dispatcher's counters per notifier.
func (w *Watcher) DeliveryStats() map[string]delivery.Stats {
	w.mu.Lock()
	d := w.disp
	w.mu.Unlock()
	return d.Stats()
}

// generation is one setup running: its pollers and delivery workers.
type generation struct {
	disp                    *delivery.Dispatcher
	stopPolls, stopDelivery context.CancelFunc
	polls, delivery         sync.WaitGroup
}

// start runs the current setup's pollers and delivery workers.
func (w *Watcher) start(ctx context.Context) *generation {
	w.mu.Lock()
	s, disp := w.cur, w.disp
	w.mu.Unlock()
	g := &generation{disp: disp}
	// Delivery outlives ctx: at shutdown it drains the outbox first.
	dctx, stopDelivery := context.WithCancel(context.WithoutCancel(ctx))
	g.stopDelivery = stopDelivery
	g.delivery.Go(func() {
		if err := disp.Run(dctx); err != nil {
			w.log.Error("delivery stopped", "err", err)
		}
	})
	disp.Kick() // anything left in the outbox
	pctx, stopPolls := context.WithCancel(ctx)
	g.stopPolls = stopPolls
	for _, a := range s.accounts {
		g.polls.Go(func() { w.poll(pctx, a) })
		g.polls.Go(func() { w.watchBlind(pctx, a) })
	}
	if len(s.cfg.Digests) > 0 {
		// Validated by config.Load, so an error here is a bug worth a log line.
		sched, err := digest.NewScheduler(s.cfg.Digests, w.sendDigest, w.log.With("component", "digest"))
		if err != nil {
			w.log.Error("digests disabled", "err", err)
		} else {
			g.polls.Go(func() { sched.Run(pctx) })
		}
	}
	return g
}

// stop ends the generation for a reload: delivery first (a send in flight
// finishes, bounded by its timeout, while the accounts are still watched),
// then polling. If ctx ends meanwhile (SIGTERM), sends in flight are cut
// short: the shutdown must not wait for a hung notifier.
func (g *generation) stop(ctx context.Context) {
	g.stopDelivery()
	done := make(chan struct{})
	go func() {
		g.delivery.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		g.disp.Abort()
		<-done
	}
	g.stopPolls()
	g.polls.Wait()
}

// shutdown ends g once ctx is done, within shutdownFlush: polling stops, the
// batches it made are committed, the outbox drains while there is time, and
// sends still in flight at the deadline are cut short (they stay in the
// outbox and go out after the next start). A poll or a send that ignores
// cancellation is left behind rather than holding up the exit.
func (w *Watcher) shutdown(g *generation) {
	deadline := time.Now().Add(shutdownFlush)
	g.stopPolls()
	if !waitUntil(&g.polls, deadline) {
		w.log.Warn("a poll did not stop in time; exiting without it")
	}
	w.mu.Lock()
	w.commitUnsaved()
	w.mu.Unlock()
	w.drain(g.disp, deadline)
	g.stopDelivery()
	if waitUntil(&g.delivery, deadline) {
		return
	}
	w.log.Warn("cutting sends in flight short at shutdown; they stay in the outbox and go out after the next start")
	g.disp.Abort()
	if !waitUntil(&g.delivery, time.Now().Add(abortGrace)) {
		w.log.Warn("a notifier ignores cancellation; exiting without waiting for it")
	}
}

// waitUntil waits for wg until deadline and reports whether it finished.
func waitUntil(wg *sync.WaitGroup, deadline time.Time) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Run polls every account until ctx is done, reloading the configuration
// when asked (RequestReload, or an edited file with Options.WatchFiles).
// At the end it delivers what is pending and returns nil, within
// shutdownFlush.
func (w *Watcher) Run(ctx context.Context) error {
	var bg sync.WaitGroup
	bg.Go(func() { w.maintain(ctx) })
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
			g.stop(ctx)
			w.swap(next, created)
			g = w.start(ctx)
			w.reloadSuccess()
		}
	}
}

// prepare loads, checks and builds the configuration on disk, without
// touching what runs.
func (w *Watcher) prepare(ctx context.Context) (*setup, []*account, error) {
	w.mu.Lock()
	old := w.cur
	w.mu.Unlock()
	cfg, err := config.Load(old.cfg.Path)
	if err != nil {
		return nil, nil, err
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		return nil, nil, err
	}
	next, created, err := w.build(cfg, compiled, old)
	if err != nil {
		return nil, nil, err
	}
	if err := checkKeys(ctx, created); err != nil {
		closeAccounts(w.log, created)
		return nil, nil, err
	}
	return next, created, nil
}

// swap puts next in place of the current setup, whose generation has
// stopped. Alert states carry over by identity: an alert of a rule that is
// still there keeps its incident, timers and severity; states of removed
// rules are dropped. Each notifier keeps its failure run (notifier-failing).
func (w *Watcher) swap(next *setup, created []*account) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commitUnsaved()
	for i, a := range next.accounts {
		a.cfg = next.cfg.Accounts[i] // a reused account's config moved in the file
	}
	var gone []*account
	for _, a := range w.cur.accounts {
		if next.account(a.cfg.Name) != a {
			gone = append(gone, a)
		}
	}
	closeAccounts(w.log, gone)
	before := w.engine.States()
	w.engine = rules.NewEngine(next.rules, before)
	w.cur = next
	w.closeOrphans(before)
	disp := w.newDispatcher(next)
	disp.Adopt(w.disp)
	w.disp = disp
	w.log.Info("configuration reloaded", "accounts", len(next.accounts), "new_accounts", len(created),
		"rules", len(next.rules), "notifiers", len(next.names))
}

// threadsKept is how long an incident's thread reference is kept; an older
// incident's next notice only starts a new thread. historyKept is how long
// sent alerts are kept for digests.
const (
	threadsKept = 30 * 24 * time.Hour
	historyKept = 2 * digest.Window
)

// maintain garbage-collects the store every hour.
func (w *Watcher) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := w.now()
		if _, err := w.store.PruneThreads(now.Add(-threadsKept)); err != nil {
			w.log.Warn("prune thread references", "err", err)
		}
		if _, err := w.store.PruneHistory(now.Add(-historyKept)); err != nil {
			w.log.Warn("prune alert history", "err", err)
		}
		w.pruneOrphanOutbox(now)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneOrphanOutbox drops outbox entries of notifiers no longer configured
// once they are older than the default max_age: no worker will ever send
// them. Each drop is an error log line, as for any undeliverable alert.
func (w *Watcher) pruneOrphanOutbox(now time.Time) {
	depth, err := w.store.OutboxDepth()
	if err != nil {
		w.log.Warn("read outbox depth", "err", err)
		return
	}
	w.mu.Lock()
	names := w.cur.names
	w.mu.Unlock()
	for name := range depth {
		if slices.Contains(names, name) {
			continue
		}
		entries, err := w.store.Pending(name, 0)
		if err != nil {
			w.log.Warn("read outbox", "notifier", name, "err", err)
			continue
		}
		for _, e := range entries {
			if now.Sub(e.Created) < delivery.DefaultMaxAge {
				continue
			}
			if err := w.store.Ack(name, e.ID); err != nil {
				w.log.Warn("drop orphaned outbox entry", "notifier", name, "err", err)
				continue
			}
			w.log.Error("dropping undeliverable notification: its notifier is no longer configured", "notifier", name, "entry", e.ID, "alerts", len(e.Alerts), "created", e.Created)
		}
	}
}

// drain waits until disp's notifiers have nothing left in the outbox or
// deadline passes. Entries of notifiers no longer configured do not count:
// nobody will send them.
func (w *Watcher) drain(disp *delivery.Dispatcher, deadline time.Time) {
	w.mu.Lock()
	names := w.cur.names
	w.mu.Unlock()
	for {
		depth, err := w.store.OutboxDepth()
		pending := 0
		for _, name := range names {
			pending += depth[name]
		}
		if err != nil || pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.log.Warn("notifications still pending at shutdown; they are kept and sent after the next start", "pending", pending)
			return
		}
		disp.Kick()
		time.Sleep(100 * time.Millisecond)
	}
}

// poll runs one account's poll loop.
func (w *Watcher) poll(ctx context.Context, a *account) {
	t := time.NewTicker(a.cfg.PollInterval)
	defer t.Stop()
	for {
		w.cycle(ctx, a)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return // a tick and the stop were both ready: no poll after the stop
		}
	}
}

// cycle polls one account once and evaluates it.
func (w *Watcher) cycle(ctx context.Context, a *account) {
	begin := time.Now()
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PollInterval)
	snap, err := a.ex.Snapshot(pctx)
	cancel()
	if err != nil && ctx.Err() != nil {
		return // shutting down: a cancelled poll is not an exchange failure
	}
	// A snapshot that made it is evaluated even when shutdown has begun: its
	// events were taken from the exchange and exist nowhere else.
	now := w.now()
	if w.opts.Hooks.Polled != nil {
		weight := -1
		if wr, ok := a.ex.(interface{ UsedWeight() int }); ok {
			weight = wr.UsedWeight()
		}
		w.opts.Hooks.Polled(a.cfg.Name, time.Since(begin), err == nil, now, weight)
	}
	var acct *metrics.Account
	batch := &store.Batch{}
	if err != nil {
		since := blindSince(a.lastSuccess, w.started)
		a.log.Warn("poll failed", "err", err, "blind_for", now.Sub(since).Round(time.Second))
		acct = metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, since, now)
		if es, ok := a.ex.(exchanges.EventSource); ok {
			acct.Events = es.PendingEvents() // e.g. a revoked key: exactly when the user must hear of it
		}
	} else {
		acct = metrics.Compute(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, snap, a.hist, now)
		hist, herr := a.hist.MarshalBinary()
		if herr != nil {
			a.log.Warn("encode equity history", "err", herr)
		}
		batch.Accounts = map[string]store.AccountState{a.cfg.Name: {LastSuccess: now, History: hist}}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	w.evaluate(a, acct, batch, now)
	w.lastCycle.Store(time.Now().UnixNano())
}

// blindSince is when an account's current blindness began: its last
// successful poll, but no earlier than the daemon's start (a restarted
// daemon gets stale_after before crying blind).
func blindSince(lastSuccess, started time.Time) time.Time {
	if lastSuccess.Before(started) {
		return started
	}
	return lastSuccess
}

// blindSlack puts the blindness check just past stale_after: data-stale
// fires on an age strictly above it.
const blindSlack = time.Millisecond

// watchBlind evaluates a as stale the moment stale_after has passed without
// fresh data, whatever its poller is doing: polls that fail between two
// ticks, or one that hangs until its timeout, would otherwise raise
// data-stale up to a poll interval late. The polls take it from there
// (repeats, resolution).
func (w *Watcher) watchBlind(ctx context.Context, a *account) {
	var judged time.Time // the blindness already evaluated, by its start
	for ctx.Err() == nil {
		w.mu.Lock()
		since := blindSince(a.lastSuccess, w.started)
		w.mu.Unlock()
		wait := a.cfg.PollInterval // only to see fresh data start a new wait
		if !since.Equal(judged) {
			wait = since.Add(a.cfg.StaleAfter + blindSlack).Sub(w.now())
		}
		if wait <= 0 {
			w.evaluateBlind(a, since)
			judged = since
			continue
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

// evaluateBlind evaluates a as stale, unless fresh data came since.
func (w *Watcher) evaluateBlind(a *account, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !blindSince(a.lastSuccess, w.started).Equal(since) {
		return
	}
	now := w.now()
	a.log.Warn("no fresh data for stale_after", "blind_for", now.Sub(since).Round(time.Second), "stale_after", a.cfg.StaleAfter)
	w.evaluate(a, metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, since, now), &store.Batch{}, now)
}

// evaluate runs the rules on acct and commits the outcome with batch.
// Callers hold w.mu.
func (w *Watcher) evaluate(a *account, acct *metrics.Account, batch *store.Batch, now time.Time) {
	a.latest = acct
	if !acct.Stale {
		a.lastSuccess = now
	}
	res := w.engine.Evaluate(acct, now)
	// The engine reuses its Result slices at the account's next evaluation;
	// a batch held after a failed commit must not change under it.
	batch.Put = slices.Clone(res.Changed)
	batch.Delete = slices.Clone(res.Deleted)
	batch.Enqueue = delivery.Entries(res.Notices, w.cur.names, now)
	w.unsaved = append(w.unsaved, batch)
	if w.commitUnsaved() && len(batch.Enqueue) > 0 {
		w.disp.Kick()
	}
	if w.opts.Hooks.Evaluated != nil {
		w.opts.Hooks.Evaluated(w.engine.States())
	}
}

// closeOrphans sends a closing notice for every alert of before that was
// firing but that the current engine dropped: its rule or account left the
// configuration, or the rule stopped watching the account. Without it the
// incident would stay open in the user's chat forever. The notice goes to
// every notifier (the rule that named its notifiers is gone). Callers hold
// w.mu.
func (w *Watcher) closeOrphans(before []rules.State) {
	kept := make(map[rules.Key]bool)
	for _, st := range w.engine.States() {
		kept[st.Key] = true
	}
	now := w.now()
	var notices []rules.Notice
	for _, st := range before {
		if st.Phase != rules.Active || kept[st.Key] {
			continue
		}
		target := strings.TrimSpace(st.Key.Symbol + " " + st.Key.Side)
		if target != "" {
			target = " on " + target
		}
		notices = append(notices, rules.Notice{Alert: notifiers.Alert{
			ID: st.ID, Status: notifiers.Resolved, Kind: notifiers.KindResolved, Severity: st.Severity,
			Rule: st.Key.Rule, Account: st.Key.Account, Symbol: st.Key.Symbol, Side: st.Key.Side,
			Value: st.Value, Threshold: st.Threshold, StartsAt: st.StartsAt, At: now,
			Summary: fmt.Sprintf("alert closed: rule %s no longer watches account %s%s (the configuration changed)", st.Key.Rule, st.Key.Account, target),
		}})
	}
	if len(notices) == 0 {
		return
	}
	w.log.Info("closing alerts whose rule or account left the configuration", "alerts", len(notices))
	w.unsaved = append(w.unsaved, &store.Batch{Enqueue: delivery.Entries(notices, w.cur.names, now)})
	if w.commitUnsaved() && w.disp != nil {
		w.disp.Kick()
	}
}

// enqueue queues daemon-made notices (not from rules) and wakes delivery.
func (w *Watcher) enqueue(notices []rules.Notice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	entries := delivery.Entries(notices, w.cur.names, w.now())
	if len(entries) == 0 {
		return
	}
	w.unsaved = append(w.unsaved, &store.Batch{Enqueue: entries})
	if w.commitUnsaved() {
		w.disp.Kick()
	}
}

// record keeps the alerts just queued for the digests' "last 24h". A
// failure costs a digest line, never a notice, so it is only logged.
func (w *Watcher) record(entries []store.Entry) {
	var alerts []notifiers.Alert
	for _, e := range entries {
		alerts = append(alerts, e.Alerts...) // the same alert for several notifiers is recorded once
	}
	if len(alerts) == 0 {
		return
	}
	if err := w.store.RecordAlerts(alerts); err != nil {
		w.log.Warn("record alert history for digests", "err", err)
	}
}

// sendDigest renders one digest from the latest metrics and queues it. It
// runs on the digest scheduler's goroutine.
func (w *Watcher) sendDigest(d config.Digest, at time.Time) {
	recent, err := w.store.RecentAlerts(at.Add(-digest.Window))
	if err != nil {
		w.log.Warn("digest without alert history", "digest", d.Name, "err", err)
	}
	w.mu.Lock()
	var accts []*metrics.Account
	for _, a := range w.cur.accounts {
		if d.Accounts == nil || slices.Contains(d.Accounts, a.cfg.Name) {
			latest := a.latest
			if latest == nil { // not polled yet since start
				latest = metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, a.lastSuccess, at)
			}
			accts = append(accts, latest)
		}
	}
	w.mu.Unlock()
	msg := digest.Render(d.Name, accts, recent, at, digest.Location(d.Schedule))
	w.enqueue([]rules.Notice{{Alert: msg, Notify: d.Notify}})
}

// commitUnsaved commits every batch not yet in the store, oldest first, and
// reports whether all are in. A batch that cannot be written (full disk, I/O
// error) stays in memory and is retried on the next cycle: the alert state in
// memory is already ahead, so dropping the batch would lose its notices.
// Callers hold w.mu.
func (w *Watcher) commitUnsaved() bool {
	for len(w.unsaved) > 0 {
		err := w.commit(w.unsaved[0])
		if errors.Is(err, store.ErrBadBatch) {
			// This batch can never be written (a value JSON cannot hold):
			// holding it would block every later one.
			w.log.Error("dropping an unstorable state update", "err", err)
			w.unsaved = w.unsaved[1:]
			continue
		}
		if err != nil {
			w.log.Error("cannot write the state database; alerts are held in memory and retried next cycle — free disk space or fix the state_dir", "path", w.store.Path(), "err", err, "held_batches", len(w.unsaved))
			return false
		}
		w.record(w.unsaved[0].Enqueue)
		w.unsaved = w.unsaved[1:]
	}
	return true
}
