package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells systemd that startup, or a reload announced with [Reloading],
// has finished. For Type=notify, systemd considers the service started only
// once it receives this, so call it after the config is loaded, the state is
// open and the keys are checked.
func Ready() error {
	return notify("ready", daemon.SdNotifyReady)
}

// Reloading tells systemd that the daemon is reloading its configuration;
// call [Ready] when the reload is done, whether it succeeded or was rejected.
// The message carries MONOTONIC_USEC, which Type=notify-reload units require
// and Type=notify units accept, so the unit can switch types without a code
// change.
func Reloading() error {
	return notify("reloading", daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
}

// Stopping tells systemd that the daemon is shutting down, e.g. on SIGTERM,
// so `systemctl status` shows "deactivating" while in-flight sends drain.
func Stopping() error {
	return notify("stopping", daemon.SdNotifyStopping)
}

// Status sets the one-line status that `systemctl status` shows. Line breaks
// in text become spaces: in the protocol a newline starts a new assignment,
// and a status built from, say, an error message must not be able to send
// READY=1 or WATCHDOG=1 by accident.
func Status(text string) error {
	return notify("status", "STATUS="+oneLine(text))
}

// Watchdog feeds systemd's watchdog until ctx is done. It returns at once when
// the watchdog is off (no WatchdogSec= in the unit, no NOTIFY_SOCKET, or
// WATCHDOG_PID naming another process). Otherwise it checks alive every half
// watchdog interval, as sd_watchdog_enabled(3) advises, and sends WATCHDOG=1
// only when alive returns true. alive must report true while the daemon is
// still starting, and afterwards only when the main loop has completed a
// cycle recently; it is called from Watchdog's goroutine and must not block.
//
// When alive turns false Watchdog logs once that the loop seems stuck and
// stops pinging, so systemd restarts the service after WatchdogSec=; if alive
// recovers first, the pings resume and that is logged too.
func Watchdog(ctx context.Context, alive func() bool, logger *slog.Logger) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("systemd watchdog disabled: bad WATCHDOG_USEC or WATCHDOG_PID", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	every := interval / 2
	logger.Debug("feeding the systemd watchdog", "timeout", interval, "every", every)
	t := time.NewTicker(every)
	defer t.Stop()

	stuck := false   // alive said no last time: pings are withheld
	failing := false // the last ping could not be sent
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Both cases may be ready at once and select picks at random;
		// after cancellation neither alive nor the socket is touched again.
		if ctx.Err() != nil {
			return
		}
		if !alive() {
			if !stuck {
				logger.Error("main loop seems stuck: no longer pinging the systemd watchdog; systemd will restart marginwatch",
					"watchdog_timeout", interval)
				stuck = true
			}
			continue
		}
		if stuck {
			logger.Info("main loop is responsive again: pinging the systemd watchdog")
			stuck = false
		}
		if err := notify("watchdog", daemon.SdNotifyWatchdog); err != nil {
			// Log the first failure of a run, not one line per interval.
			if !failing {
				logger.Warn("cannot ping the systemd watchdog", "err", err)
				failing = true
			}
			continue
		}
		failing = false
	}
}

// notify sends state to NOTIFY_SOCKET; what names the message in errors.
func notify(what, state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sd_notify %s: %w", what, err)
	}
	return nil
}

// oneLine replaces every line break in s with a space, and every NUL, which
// makes systemd drop the whole message.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\x00', '\n', '\r', '\v', '\f', '\u0085', '\u2028', '\u2029':
			return ' '
		}
		return r
	}, s)
}
