package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher"
)

// cmdNotifyTest sends a clearly marked test alert through each notifier (or
// the one named), directly rather than through the outbox, so the user sees
// each channel's answer at once.
func cmdNotifyTest(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("notify-test", stderr)
	only := fs.String("notifier", "", "send through this notifier only (default: every notifier)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, _, err := load(configPath(*path))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	env := watcher.NotifierEnv{Stdout: stdout, Color: isTerminal(stdout), Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	now := time.Now()
	alert := notifiers.Alert{
		ID:       fmt.Sprintf("test-%d", now.Unix()),
		Status:   notifiers.Firing,
		Kind:     notifiers.KindTest,
		Severity: notifiers.Info,
		Rule:     "notify-test",
		Account:  "marginwatch",
		StartsAt: now,
		At:       now,
		Summary:  "TEST: marginwatch can reach you here. No action needed.",
		Runbook:  "This is a test sent by `marginwatch notify-test`.",
	}
	sent, failed := 0, 0
	for _, n := range cfg.Notifiers {
		if *only != "" && n.Name != *only {
			continue
		}
		sent++
		t, err := watcher.NewTarget(n, env)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", n.Name, err)
			failed++
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), t.Timeout)
		retry, err := t.Notifier.Notify(ctx, alert)
		cancel()
		switch {
		case err == nil:
			fmt.Fprintf(stdout, "%s (%s): ok\n", n.Name, n.Type)
		case retry:
			fmt.Fprintf(stderr, "%s (%s): failed, may work later: %v\n", n.Name, n.Type, err)
			failed++
		default:
			fmt.Fprintf(stderr, "%s (%s): failed; fix the notifier's settings: %v\n", n.Name, n.Type, err)
			failed++
		}
	}
	if sent == 0 {
		if *only != "" {
			fmt.Fprintf(stderr, "notify-test: no notifier named %q in %s\n", *only, cfg.Path)
			return exitFailure
		}
		fmt.Fprintf(stderr, "notify-test: %s configures no notifiers\n", cfg.Path)
		return exitFailure
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}
