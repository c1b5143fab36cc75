package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/marginwatch/marginwatch/control/telegramctl"
	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance"
	"github.com/marginwatch/marginwatch/exchanges/bybit"
	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/service"
	"github.com/marginwatch/marginwatch/watcher/store"
	"github.com/marginwatch/marginwatch/watcher/telemetry"
)

// cmdRun is the daemon: it runs until SIGTERM or SIGINT, reloads on SIGHUP
// and on file edits, serves /metrics and /healthz on `listen`, pings
// `heartbeat_url`, and talks to systemd (readiness, reload, watchdog).
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("run", stderr)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	// Catch SIGHUP first: its default action ends the process, and start-up
	// can take a while. A reload asked for meanwhile runs once the daemon
	// is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	logger, err := newLogger(*logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "marginwatch run: %v\n", err)
		return exitUsage
	}
	p := configPath(*path)
	cfg, compiled, err := load(p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	logWarnings(logger, cfg, underSystemd())
	binance.SetHubLogger(logger.With("component", "binance mark prices"))
	bybit.SetHubLogger(logger.With("component", "bybit tickers"))
	st, err := store.Open(cfg.StateDir, store.Options{})
	if err != nil {
		logger.Error("cannot open the state database", "err", err)
		return exitFailure
	}
	defer st.Close()

	tm := telemetry.New(version)
	// reloaded wakes the goroutine that moves listen and heartbeat_url.
	reloaded := make(chan struct{}, 1)
	var hb heartbeat
	hb.configure(cfg, logger)
	w, err := watcher.New(cfg, compiled, st, watcher.Options{
		Logger:     logger,
		Stdout:     stdout,
		Color:      isTerminal(stdout),
		WatchFiles: true,
		Hooks: watcher.Hooks{
			Reloading: func() { notifySystemd(logger, service.Reloading) },
			Reloaded: func(ok bool, at time.Time) {
				tm.Reloaded(ok, at)
				if ok {
					select {
					case reloaded <- struct{}{}:
					default:
					}
				}
				notifySystemd(logger, service.Ready)
			},
			Polled: func(account string, took time.Duration, ok bool, at time.Time, weight int) {
				tm.PollDone(account, took, ok, at)
				if weight >= 0 {
					tm.SetExchangeWeight(account, weight)
				}
			},
			Planned:     tm.SetPlan,
			Weight:      tm.SetHostWeight,
			Evaluated:   tm.SetAlerts,
			Streamed:    tm.Streamed,
			StreamState: tm.SetStreamState,
			Heartbeat:   hb.beat,
		},
	})
	if err != nil {
		logger.Error("cannot start", "err", err)
		if errors.Is(err, watcher.ErrConfig) {
			return exitConfig
		}
		return exitFailure
	}
	defer w.Close()
	tm.Reloaded(true, time.Now())
	tm.WatchDelivery(w.DeliveryStats, st.OutboxDepth)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go service.Watchdog(ctx, w.Alive, logger)

	// The key check runs beside the daemon, not before it: an unreachable
	// exchange must not hold up delivering what the last run left in the
	// outbox, nor data-stale. Only a key that is wrong for good stops it.
	var refused atomic.Bool
	go func() {
		err := w.CheckKeys(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, exchanges.ErrPermanent):
			logger.Error("refusing to start", "err", err)
			refused.Store(true)
			stop()
		default:
			// The exchange could not be asked (DNS, refused, 5xx, rate
			// limit): keep running. The adapter checks the key again before
			// it polls, and data-stale speaks while the exchange stays out
			// of reach.
			logger.Warn("cannot check the API keys yet; running anyway and checking again before polling", "err", err)
		}
	}()

	admin := &adminServer{log: logger.With("component", "admin"), failed: stop}
	admin.handler = adminHandler(tm.Handler(w.Health), w, admin.writePolicy, admin.log)
	admin.set(ctx, cfg.Listen, policyOf(cfg))
	defer admin.close()
	// Telegram commands poll beside the daemon and follow reloads. The
	// config check refuses what New refuses; should they ever disagree,
	// the runner starts empty, so a reload with a fixed config still
	// starts the commands.
	tgDone := make(chan struct{})
	tgOpts := telegramctl.Options{Logger: logger}
	tg, err := telegramctl.New(cfg, w, tgOpts)
	if err != nil {
		logger.Error("telegram commands not started; fix the config and reload (SIGHUP) to start them", "err", err)
		tg, _ = telegramctl.New(&config.Config{}, w, tgOpts) // takes no error: no notifier to check
	}
	go func() { defer close(tgDone); tg.Run(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				notifySystemd(logger, service.Stopping)
				return
			case <-hup:
				logger.Info("SIGHUP: reloading the configuration")
				w.RequestReload()
			}
		}
	}()
	// listen and heartbeat_url follow reloads.
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		last := cfg
		for {
			select {
			case <-ctx.Done():
				return
			case <-reloaded:
			}
			if now := w.Config(); now != last {
				last = now
				logWarnings(logger, now, underSystemd())
				admin.set(ctx, now.Listen, policyOf(now))
				hb.configure(now, logger)
				if err := tg.Reload(now); err != nil {
					logger.Error("telegram commands keep the previous configuration", "err", err)
				}
			}
		}
	}()

	logger.Info("marginwatch started", "version", version, "config", p, "state", st.Path(), "listen", cfg.Listen,
		"accounts", len(cfg.Accounts), "rules", len(compiled), "notifiers", len(cfg.Notifiers))
	notifySystemd(logger, service.Ready)
	if err := w.Run(ctx); err != nil {
		logger.Error("stopped", "err", err)
		return exitFailure
	}
	<-applied
	<-tgDone
	if refused.Load() {
		return exitConfig
	}
	if err := admin.close(); err != nil {
		logger.Error("stopped", "err", err)
		return exitFailure
	}
	logger.Info("marginwatch stopped")
	return exitOK
}

// logWarnings logs what `check` would warn about (an event rule no account
// can fire, a token sent in clear text), once per load. That alerts go only
// to the console is worth a warning under systemd alone: in a terminal the
// console is watched.
func logWarnings(logger *slog.Logger, cfg *config.Config, systemd bool) {
	console, consoleOnly := cfg.ConsoleOnly()
	for _, w := range cfg.Warnings() {
		if consoleOnly && w == console && !systemd {
			continue
		}
		logger.Warn("config warning", "warning", w.String())
	}
}

// underSystemd reports whether systemd started this process: it sets
// INVOCATION_ID for every unit it runs, and NOTIFY_SOCKET for Type=notify.
func underSystemd() bool {
	return os.Getenv("INVOCATION_ID") != "" || os.Getenv("NOTIFY_SOCKET") != ""
}

// heartbeat is the dead man's switch of the running configuration.
type heartbeat struct {
	hb    atomic.Pointer[telemetry.Heartbeat]
	url   string // what hb was built from; only configure reads it
	every time.Duration
}

// configure rebuilds the heartbeat when heartbeat_url or the poll interval
// changed.
func (h *heartbeat) configure(cfg *config.Config, logger *slog.Logger) {
	url := cfg.HeartbeatURL.Reveal()
	if h.hb.Load() != nil && url == h.url && cfg.Defaults.PollInterval == h.every {
		return
	}
	h.url, h.every = url, cfg.Defaults.PollInterval
	h.hb.Store(telemetry.NewHeartbeat(url, cfg.Defaults.PollInterval, nil, logger.With("component", "heartbeat")))
}

func (h *heartbeat) beat() { h.hb.Load().Beat() }

// adminHandler serves the admin API (/api/v1/...), guarded against
// browsers, beside telemetry's /metrics and /healthz; policy says who may
// write at the moment.
func adminHandler(telemetry http.Handler, ctl controller, policy func() writePolicy, log *slog.Logger) http.Handler {
	api := http.NewServeMux()
	api.Handle(statusPath, statusHandler(ctl, time.Now))
	(&controlAPI{ctl: ctl, policy: policy, log: log, now: time.Now}).routes(api)
	mux := http.NewServeMux()
	mux.Handle("/", telemetry)
	mux.Handle("/api/v1/", guardAPI(api, policy, log))
	return mux
}

// adminServer runs /metrics, /healthz and the admin API on the configured address and
// moves when a reload changes it.
type adminServer struct {
	handler http.Handler
	log     *slog.Logger
	// failed stops the daemon when the address of the start-up config
	// cannot be served.
	failed func()

	// policy is the write policy of the address served; set swaps it
	// while no server runs, so that a listener never answers with the
	// policy of another address.
	policy atomic.Pointer[writePolicy]

	mu     sync.Mutex
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // the start-up server's failure
	first  bool  // set once the first address was served
}

// set serves on addr ("" = no server) with the write policy p, stopping
// the server on any other address first.
func (a *adminServer) set(ctx context.Context, addr string, p writePolicy) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first && addr == a.addr {
		a.policy.Store(&p) // a new token on the same address
		return
	}
	startup := !a.first
	a.first = true
	a.stopLocked()
	a.policy.Store(&p)
	a.addr = addr
	if addr == "" {
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	a.cancel, a.done = cancel, done
	go func() {
		defer close(done)
		if err := telemetry.Serve(sctx, addr, a.handler, a.log); err != nil {
			if startup {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
				a.failed()
				return
			}
			// A reload moved it somewhere it cannot be: say so, keep watching.
			a.log.Error("admin server not running; fix `listen` and reload", "err", err)
		}
	}()
}

// writePolicy is the write policy in force; nobody writes before set.
func (a *adminServer) writePolicy() writePolicy {
	if p := a.policy.Load(); p != nil {
		return *p
	}
	return writePolicy{}
}

func (a *adminServer) stopLocked() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.mu.Unlock()
	<-a.done // Serve shuts down within 5 s
	a.mu.Lock()
	a.cancel, a.done = nil, nil
}

// close stops the server and returns the start-up server's failure.
func (a *adminServer) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked()
	return a.err
}

// notifySystemd sends one sd_notify message; without systemd it does nothing.
func notifySystemd(logger interface{ Warn(string, ...any) }, send func() error) {
	if err := send(); err != nil {
		logger.Warn("cannot notify systemd", "err", err)
	}
}
