package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher"
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
	// (the key check above all) can take a while. A reload asked for
	// meanwhile runs once the daemon is up.
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
	st, err := store.Open(cfg.StateDir, store.Options{})
	if err != nil {
		logger.Error("cannot open the state database", "err", err)
		return exitFailure
	}
	defer st.Close()

	tm := telemetry.New()
	hb := telemetry.NewHeartbeat(cfg.HeartbeatURL.Reveal(), cfg.Defaults.PollInterval, nil, logger.With("component", "heartbeat"))
	w, err := watcher.New(cfg, compiled, st, watcher.Options{
		Logger:     logger,
		Stdout:     stdout,
		Color:      isTerminal(stdout),
		WatchFiles: true,
		Hooks: watcher.Hooks{
			Reloading: func() { notifySystemd(logger, service.Reloading) },
			Reloaded: func(ok bool, at time.Time) {
				tm.Reloaded(ok, at)
				notifySystemd(logger, service.Ready)
			},
			Polled: func(account string, took time.Duration, ok bool, at time.Time, weight int) {
				tm.PollDone(account, took, ok, at)
				if weight >= 0 {
					tm.SetExchangeWeight(account, weight)
				}
			},
			Evaluated: tm.SetAlerts,
			Heartbeat: hb.Beat,
		},
	})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return exitFailure
	}
	defer w.Close()
	tm.Reloaded(true, time.Now())
	tm.WatchDelivery(w.DeliveryStats, st.OutboxDepth)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go service.Watchdog(ctx, w.Alive, logger)
	if err := w.CheckKeys(ctx); err != nil {
		if errors.Is(err, exchanges.ErrPermanent) {
			logger.Error("refusing to start", "err", err)
			return exitConfig
		}
		// The exchange could not be asked (DNS, refused, 5xx, rate limit):
		// run anyway. The adapter checks the key again before it polls,
		// and data-stale speaks while the exchange stays out of reach.
		logger.Warn("cannot check the API keys yet; starting anyway and checking again before polling", "err", err)
	}

	failed := make(chan error, 1)
	if cfg.Listen != "" {
		go func() {
			if err := telemetry.Serve(ctx, cfg.Listen, tm.Handler(w.Health), logger.With("component", "admin")); err != nil {
				failed <- err
				stop()
			}
		}()
	}
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

	logger.Info("marginwatch started", "version", version, "config", p, "state", st.Path(), "listen", cfg.Listen,
		"accounts", len(cfg.Accounts), "rules", len(compiled), "notifiers", len(cfg.Notifiers))
	notifySystemd(logger, service.Ready)
	if err := w.Run(ctx); err != nil {
		logger.Error("stopped", "err", err)
		return exitFailure
	}
	select {
	case err := <-failed:
		logger.Error("stopped", "err", err)
		return exitFailure
	default:
	}
	logger.Info("marginwatch stopped")
	return exitOK
}

// notifySystemd sends one sd_notify message; without systemd it does nothing.
func notifySystemd(logger interface{ Warn(string, ...any) }, send func() error) {
	if err := send(); err != nil {
		logger.Warn("cannot notify systemd", "err", err)
	}
}
