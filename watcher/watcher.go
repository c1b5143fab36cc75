package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// historyCapacity bounds how far back drawdown windows can look.
const historyCapacity = 7 * 24 * time.Hour

// shutdownFlush bounds how long Run keeps delivering after ctx is done.
const shutdownFlush = 10 * time.Second

// Options are the parts of a Watcher that tests replace.
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
}

// Watcher is the running daemon for one configuration.
type Watcher struct {
	cfg      *config.Config
	store    *store.Store
	disp     *delivery.Dispatcher
	accounts []*account
	log      *slog.Logger
	now      func() time.Time
	started  time.Time

	// mu serializes evaluation and commit: the engine is not safe for
	// concurrent use, and one commit at a time keeps the outbox in order.
	mu       sync.Mutex
	engine   *rules.Engine
	names    []string       // every notifier, config order
	unsaved  []*store.Batch // commits that failed, retried first next cycle
	closeAll []func() error
}

type account struct {
	cfg         config.Account
	ex          exchanges.Exchange
	hist        *metrics.EquityHistory
	lastSuccess time.Time
	log         *slog.Logger
}

// New builds a watcher for cfg with its compiled rules, restoring alert state
// and equity history from st. It does not start polling; see Run.
func New(cfg *config.Config, compiled []*rules.Rule, st *store.Store, opts Options) (*Watcher, error) {
	if len(cfg.Accounts) == 0 {
		return nil, fmt.Errorf("%s: no accounts configured: add at least one under accounts: (see examples/demo.yaml)", cfg.Path)
	}
	w := &Watcher{cfg: cfg, store: st, log: opts.Logger, now: opts.Now}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	newExchange := opts.NewExchange
	if newExchange == nil {
		newExchange = NewExchange
	}
	w.started = w.now()

	states, err := st.AlertStates()
	if err != nil {
		return nil, err
	}
	w.engine = rules.NewEngine(compiled, states)

	newTarget := opts.NewTarget
	if newTarget == nil {
		newTarget = NewTarget
	}
	env := NotifierEnv{Stdout: opts.Stdout, Color: opts.Color, Logger: w.log, Threads: st}
	targets := make([]delivery.Target, 0, len(cfg.Notifiers))
	for _, n := range cfg.Notifiers {
		t, err := newTarget(n, env)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
		w.names = append(w.names, n.Name)
	}
	w.disp = delivery.New(st, targets, w.log)
	w.disp.OnHealth = w.onNotifierHealth

	for _, a := range cfg.Accounts {
		alog := w.log.With("account", a.Name)
		ex, err := newExchange(a, w.now, alog)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.closeAll = append(w.closeAll, ex.Close)
		acc := &account{cfg: a, ex: ex, hist: metrics.NewEquityHistory(historyCapacity), log: alog}
		saved, ok, err := st.Account(a.Name)
		if err != nil {
			w.Close()
			return nil, err
		}
		if ok {
			acc.lastSuccess = saved.LastSuccess
			if len(saved.History) > 0 {
				if err := acc.hist.UnmarshalBinary(saved.History); err != nil {
					// A damaged history only costs drawdown's memory; say so and go on.
					acc.log.Warn("equity history unreadable, drawdown starts afresh", "err", err)
					acc.hist = metrics.NewEquityHistory(historyCapacity)
				}
			}
		}
		w.accounts = append(w.accounts, acc)
	}
	return w, nil
}

// keyCheckTimeout bounds the start-up permission check of one account.
const keyCheckTimeout = 30 * time.Second

// CheckKeys asks every exchange that can tell whether its API key is fit for
// marginwatch (read-only; see exchanges.KeyChecker). The daemon must not run
// when it returns an error: the error says which account and how to fix it.
func (w *Watcher) CheckKeys(ctx context.Context) error {
	var errs []error
	for _, a := range w.accounts {
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
	for _, c := range w.closeAll {
		if err := c(); err != nil {
			w.log.Warn("close exchange", "err", err)
		}
	}
	w.closeAll = nil
}

// Run polls every account until ctx is done, then delivers what is pending
// for up to 10 s and returns. It returns nil on a clean shutdown.
func (w *Watcher) Run(ctx context.Context) error {
	dctx, stopDelivery := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDelivery()
	var dwg sync.WaitGroup
	dwg.Go(func() {
		if err := w.disp.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
			w.log.Error("delivery stopped", "err", err)
		}
	})
	w.disp.Kick() // anything left in the outbox by a previous run

	var wg sync.WaitGroup
	for _, a := range w.accounts {
		wg.Go(func() { w.poll(ctx, a) })
	}
	wg.Go(func() { w.maintain(ctx) })
	wg.Wait()

	// Polling has stopped. Let the workers finish in-flight sends and empty
	// the outbox, for a bounded time; what is left stays in the store and goes
	// out after the next start.
	w.mu.Lock()
	w.commitUnsaved()
	w.mu.Unlock()
	w.drain(shutdownFlush)
	stopDelivery()
	dwg.Wait()
	return nil
}

// threadsKept is how long an incident's thread reference is kept; an older
// incident's next notice only starts a new thread.
const threadsKept = 30 * 24 * time.Hour

// maintain garbage-collects the store every hour.
func (w *Watcher) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := w.store.PruneThreads(w.now().Add(-threadsKept)); err != nil {
			w.log.Warn("prune thread references", "err", err)
		} else if n > 0 {
			w.log.Debug("pruned thread references", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drain waits until the outbox is empty or timeout passes.
func (w *Watcher) drain(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		depth, err := w.store.OutboxDepth()
		pending := 0
		for _, n := range depth {
			pending += n
		}
		if err != nil || pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.log.Warn("notifications still pending at shutdown; they are kept and sent after the next start", "pending", pending)
			return
		}
		w.disp.Kick()
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
	}
}

// cycle polls one account once and evaluates it.
func (w *Watcher) cycle(ctx context.Context, a *account) {
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PollInterval)
	snap, err := a.ex.Snapshot(pctx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: a cancelled poll is not an exchange failure
	}
	now := w.now()
	var acct *metrics.Account
	batch := &store.Batch{}
	if err != nil {
		since := a.lastSuccess
		if since.Before(w.started) {
			since = w.started // give a restarted daemon stale_after before crying blind
		}
		a.log.Warn("poll failed", "err", err, "blind_for", now.Sub(since).Round(time.Second))
		acct = metrics.Stale(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, since, now)
		if es, ok := a.ex.(exchanges.EventSource); ok {
			acct.Events = es.PendingEvents() // e.g. a revoked key: exactly when the user must hear of it
		}
	} else {
		acct = metrics.Compute(a.cfg.Name, a.cfg.Exchange, a.cfg.Labels, snap, a.hist, now)
		a.lastSuccess = now
		hist, herr := a.hist.MarshalBinary()
		if herr != nil {
			a.log.Warn("encode equity history", "err", herr)
		}
		batch.Accounts = map[string]store.AccountState{a.cfg.Name: {LastSuccess: now, History: hist}}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	res := w.engine.Evaluate(acct, now)
	batch.Put = res.Changed
	batch.Delete = res.Deleted
	batch.Enqueue = delivery.Entries(res.Notices, w.names, now)
	w.unsaved = append(w.unsaved, batch)
	if w.commitUnsaved() && len(batch.Enqueue) > 0 {
		w.disp.Kick()
	}
}

// commitUnsaved commits every batch not yet in the store, oldest first, and
// reports whether all are in. A batch that cannot be written (full disk, I/O
// error) stays in memory and is retried on the next cycle: the alert state in
// memory is already ahead, so dropping the batch would lose its notices.
// Callers hold w.mu.
func (w *Watcher) commitUnsaved() bool {
	for len(w.unsaved) > 0 {
		err := w.store.Commit(w.unsaved[0])
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
		w.unsaved = w.unsaved[1:]
	}
	return true
}
