package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles marginwatch once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "marginwatch-e2e")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "marginwatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// daemon is a running marginwatch process whose stdout lines are collected.
type daemon struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	seen  []string
	errb  strings.Builder
	done  chan struct{}
}

func startDaemon(t *testing.T, cfg string) *daemon {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: exec.Command(bin, "run", "-config", cfg), lines: make(chan string, 1000), done: make(chan struct{})}
	d.cmd.Stderr = &d.errb
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.seen = append(d.seen, sc.Text())
			d.mu.Unlock()
			d.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	})
	return d
}

// waitFor returns the first new stdout line containing every part, failing
// the test after timeout.
func (d *daemon) waitFor(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-d.lines:
			if containsAll(l, parts...) {
				return l
			}
		case <-deadline:
			d.mu.Lock()
			defer d.mu.Unlock()
			t.Fatalf("no line with %q within %s; stdout:\n%s\nstderr:\n%s", parts, timeout, strings.Join(d.seen, "\n"), d.errb.String())
			return ""
		}
	}
}

func (d *daemon) output() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.seen...)
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func count(lines []string, parts ...string) int {
	n := 0
	for _, l := range lines {
		if containsAll(l, parts...) {
			n++
		}
	}
	return n
}

const e2eConfig = `state_dir: state
listen: ""
defaults: {poll_interval: 1s, stale_after: 10s}
accounts:
  - {name: demo, exchange: simulated, scenario: crash}
notifiers:
  - {name: term, type: console}
rules:
  - name: liquidation-near
    metric: liq_distance_pct
    below: {warning: 15, critical: 7}
    hysteresis: 2
  - name: missing-stop-loss
    metric: has_stop_loss
    below: {warning: 1}
    repeat: 4h
`

// TestKillAndRestart runs the real binary through a crash, kills it with
// SIGKILL while the liquidation alert is firing, and restarts it on the same
// state: the still-firing missing-stop-loss alert must not be re-sent before
// its repeat interval, and the liquidation alert's resolution must arrive.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the binary for about 30 s")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(e2eConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	first := startDaemon(t, cfg)
	first.waitFor(t, 20*time.Second, "missing-stop-loss", "firing")
	first.waitFor(t, 30*time.Second, "liquidation-near", "WARNING", "firing")
	first.waitFor(t, 30*time.Second, "liquidation-near", "CRITICAL", "escalated")

	// A second instance on the same state dir must refuse at once.
	bin, _ := buildBinary()
	second := exec.Command(bin, "run", "-config", cfg)
	start := time.Now()
	out, err := second.CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("second instance: exit %d, want 1; output:\n%s", code, out)
	}
	if !strings.Contains(string(out), "in use by another marginwatch") {
		t.Errorf("second instance message does not say the state is in use:\n%s", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second instance took %s to give up", d)
	}

	// status never waits on the running daemon's state lock.
	start = time.Now()
	out, err = exec.Command(bin, "status", "-config", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "demo (simulated) · polled ") {
		t.Errorf("status while the daemon runs: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("status took %s while the daemon runs", d)
	}

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	<-first.done

	// The scenario starts again at its calm beginning: the liquidation
	// incident is over and must be resolved, once.
	restarted := startDaemon(t, cfg)
	restarted.waitFor(t, 20*time.Second, "liquidation-near", "resolved")
	// Give the restarted daemon a few polls to (wrongly) repeat anything.
	time.Sleep(3 * time.Second)
	lines := restarted.output()
	if n := count(lines, "missing-stop-loss"); n != 0 {
		t.Errorf("restart re-sent missing-stop-loss %d times inside its 4h repeat window:\n%s", n, strings.Join(lines, "\n"))
	}
	if n := count(lines, "liquidation-near", "resolved"); n != 1 {
		t.Errorf("liquidation-near resolved %d times, want 1:\n%s", n, strings.Join(lines, "\n"))
	}
	if n := count(lines, "liquidation-near", "firing"); n != 0 {
		t.Errorf("restart re-fired liquidation-near:\n%s", strings.Join(lines, "\n"))
	}
	if err := restarted.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, restarted, 15*time.Second)
}

func waitExit(t *testing.T, d *daemon, timeout time.Duration) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		ch <- d.cmd.Wait()
	}()
	select {
	case err := <-ch:
		if err != nil {
			t.Errorf("daemon exited with %v after SIGTERM; stderr:\n%s", err, d.errb.String())
		}
	case <-time.After(timeout):
		t.Errorf("daemon did not exit within %s of SIGTERM", timeout)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
