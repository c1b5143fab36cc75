package watcher

import (
	"context"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
	"github.com/marginwatch/marginwatch/watcher/digest"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// shutdownFlush bounds how long Run takes once ctx is done: stopping the
// polls, delivering what is pending and finishing sends in flight. SIGTERM
// must end the daemon within 10 s; the rest is for closing the exchanges and
// the store.
const shutdownFlush = 9 * time.Second

// abortGrace is how long sends cut short at the shutdown deadline get to
// return before Run stops waiting for them.
const abortGrace = 500 * time.Millisecond

// generation is one setup running: its pollers and delivery workers.
type generation struct {
	disp                    *delivery.Dispatcher
	stopPolls, stopDelivery context.CancelFunc
	polls, delivery         sync.WaitGroup
	// stopped is set once a reload began stopping g: its delivery no longer
	// runs, so a shutdown has nothing to drain through it.
	stopped bool
}

// start runs the current setup's pollers and delivery workers.
func (w *Watcher) start(ctx context.Context) *generation {
	s, _, disp := w.running()
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
		g.polls.Go(func() { w.watch(pctx, a) })
		g.polls.Go(func() { w.watchBlind(pctx, a) })
	}
	g.polls.Go(func() { w.probeFailing(pctx) })
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

// reloadSendWait bounds how long a reload waits for sends in flight before
// cutting them short: the new generation, and with it every healthy
// notifier, must not wait for one hung notifier's timeout.
const reloadSendWait = 2 * time.Second

// stop ends g for a reload: delivery first (sends in flight get
// reloadSendWait to finish, then are cut short; they stay in the outbox and
// the next generation sends them again, so a peer may get one twice), then
// polling. It reports whether g stopped completely. It does not once ctx is
// done (SIGTERM) while a send or a poll ignores cancellation: the caller
// then shuts g down (shutdown bounds the remaining waits) instead of
// starting a new generation beside what is left running.
func (w *Watcher) stop(ctx context.Context, g *generation) bool {
	g.stopped = true
	g.stopDelivery()
	t := time.NewTimer(reloadSendWait)
	defer t.Stop()
	select {
	case <-waitCh(&g.delivery):
	case <-t.C:
		w.log.Warn("reload: cutting sends in flight short; they stay in the outbox and are sent again", "waited", reloadSendWait)
		g.disp.Abort()
		if !waitCtx(ctx, &g.delivery) {
			return false
		}
	case <-ctx.Done():
		g.disp.Abort()
		if !waitUntil(&g.delivery, time.Now().Add(abortGrace)) {
			return false
		}
	}
	g.stopPolls()
	return waitCtx(ctx, &g.polls)
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
	w.commitMu.Lock()
	w.commitHeld()
	w.commitMu.Unlock()
	if !g.stopped {
		w.drain(g.disp, deadline)
	}
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
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-waitCh(wg):
		return true
	case <-t.C:
		return false
	}
}

// waitCtx waits for wg until ctx is done and reports whether it finished.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) bool {
	select {
	case <-waitCh(wg):
		return true
	case <-ctx.Done():
		return false
	}
}

// waitCh returns a channel closed once wg is done.
func waitCh(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// drain waits until disp's notifiers have nothing left in the outbox or
// deadline passes. Entries of notifiers no longer configured do not count:
// nobody will send them.
func (w *Watcher) drain(disp *delivery.Dispatcher, deadline time.Time) {
	s, _, _ := w.running()
	for {
		depth, err := w.store.OutboxDepth()
		pending := 0
		for _, name := range s.names {
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

// prepare loads, checks and builds the configuration on disk, without
// touching what runs.
func (w *Watcher) prepare(ctx context.Context) (*setup, []*account, error) {
	old, _, _ := w.running()
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
// rules are closed and dropped. Each notifier keeps its failure run
// (notifier-failing).
func (w *Watcher) swap(next *setup, created []*account) {
	fresh := map[*account]bool{}
	for _, a := range created {
		fresh[a] = true
	}
	w.commitMu.Lock()
	w.commitHeld()
	w.mu.Lock()
	for i, a := range next.accounts {
		a.cfg = next.cfg.Accounts[i] // a reused account's config moved in the file
	}
	plan := planAccounts(next, fresh, w.now())
	applyPlan(next, plan, fresh)
	var gone []*account
	for _, a := range w.cur.accounts {
		if next.account(a.cfg.Name) != a {
			gone = append(gone, a)
		}
	}
	before := w.engine.States()
	engine := rules.NewEngine(next.rules, before)
	engine.Inherit(w.engine)
	engine.SetSilencer(w.ctl)
	w.engine = engine
	w.cur = next
	disp := w.newDispatcher(next)
	disp.Adopt(w.disp)
	w.disp = disp
	w.mu.Unlock()
	w.closeOrphans(before)
	w.closeRemovedNotifiers()
	w.commitMu.Unlock()
	closeAccounts(w.log, gone)
	w.setWindows(next.cfg.MuteWindows())
	w.logPlan(plan)
	w.log.Info("configuration reloaded", "accounts", len(next.accounts), "new_accounts", len(created),
		"rules", len(next.rules), "notifiers", len(next.names))
}
