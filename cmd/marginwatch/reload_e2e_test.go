package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const reloadConfig = `state_dir: state
listen: ""
defaults: {poll_interval: 1s, stale_after: 10s}
accounts:
  - {name: demo, exchange: simulated, scenario: calm}
notifiers:
  - {name: term, type: console}
rule_files: [rules.d/*.yaml]
`

// writeAtomically replaces path the way editors do: a new file renamed
// over the old one.
func writeAtomically(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// leverageRule fires on every simulated position whose leverage is above
// threshold; the calm scenario's positions are at 5x at most.
func leverageRule(threshold string) string {
	return "rules:\n  - name: leverage-cap\n    metric: leverage\n    above: {warning: " + threshold + "}\n    repeat: 4h\n"
}

// TestReloadOnEdit runs the real binary and edits its rule file: a new
// threshold takes effect without a restart; a broken edit leaves
// the daemon on the old rules and sends config-reload-failed; fixing the file
// resolves it; SIGHUP reloads too, without re-sending firing alerts.
func TestReloadOnEdit(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(reloadConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "rules.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.d", "risk.yaml")
	writeAtomically(t, rules, leverageRule("100")) // fires on nothing

	d := startDaemon(t, cfg)
	time.Sleep(2 * time.Second) // a few polls on the first rules
	if n := count(d.output(), "leverage-cap"); n != 0 {
		t.Fatalf("leverage-cap fired at a 100x threshold:\n%s", strings.Join(d.output(), "\n"))
	}

	// Generous on a loaded machine; the reload's own latency is the
	// debounce plus one poll.
	writeAtomically(t, rules, leverageRule("1.5"))
	d.waitFor(t, 20*time.Second, "leverage-cap", "firing")

	// SIGHUP reloads without an edit: the firing alerts keep their state
	// and are not sent again. (Let the console finish printing the first
	// message, one line per position, before counting.)
	time.Sleep(time.Second)
	firedBefore := count(d.output(), "leverage-cap", "firing")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := count(d.output(), "leverage-cap", "firing"); n != firedBefore {
		t.Errorf("SIGHUP re-sent firing alerts (%d before, %d after):\n%s", firedBefore, n, strings.Join(d.output(), "\n"))
	}

	// A broken edit: the daemon says so and keeps the last good rules.
	writeAtomically(t, rules, "rules:\n  - name: leverage-cap\n    metric: leverag\n    above: {warning: 1.5}\n")
	failed := d.waitFor(t, 10*time.Second, "config-reload-failed")
	if !containsAll(failed, "unknown metric", "leverag", "risk.yaml:3:13") {
		t.Errorf("config-reload-failed does not name the problem and file: %s", failed)
	}
	time.Sleep(2 * time.Second)
	out := d.output()
	if n := count(out, "leverage-cap", "resolved"); n != 0 {
		t.Errorf("a rejected edit resolved the running rule's alerts:\n%s", strings.Join(out, "\n"))
	}

	// Fixed, with a threshold that clears the alert: both resolve.
	writeAtomically(t, rules, leverageRule("100"))
	d.waitFor(t, 10*time.Second, "config-reload-failed", "resolved")
	d.waitFor(t, 10*time.Second, "leverage-cap", "resolved")

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
	// Alert state carries over reloads: one incident per position, fired once.
	firing := count(d.output(), "leverage-cap", "firing")
	if resolved := count(d.output(), "leverage-cap", "resolved"); firing == 0 || firing != resolved {
		t.Errorf("leverage-cap fired %d times and resolved %d times, want one resolution per incident:\n%s", firing, resolved, strings.Join(d.output(), "\n"))
	}
	if n := strings.Count(d.errb.String(), "configuration reloaded"); n < 3 {
		t.Errorf("%d successful reloads logged, want 3 (edit, SIGHUP, fix):\n%s", n, d.errb.String())
	}
}
