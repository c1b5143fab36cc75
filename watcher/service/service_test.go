package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// wait bounds every blocking step of a test; no step takes this long unless
// the code under test is broken.
const wait = 10 * time.Second

// endMark is sent by the test itself after the code under test is done:
// datagrams on one socket arrive in order, so everything before it has been
// received once it shows up.
const endMark = "TEST_END=1"

// listen creates a notify socket in a temporary directory, points
// NOTIFY_SOCKET at it and returns the datagrams it receives.
func listen(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on %s: %v", path, err)
	}
	t.Setenv("NOTIFY_SOCKET", path)

	// The kernel queues only a few datagrams per socket before senders
	// block, so read continuously.
	got := make(chan string, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(got)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed by the cleanup below
			}
			got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return got
}

// next returns the next datagram, failing the test if none arrives in time.
func next(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case msg, ok := <-got:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return msg
	case <-time.After(wait):
		t.Fatalf("no datagram within %s", wait)
		return ""
	}
}

// drain sends endMark and returns every datagram received before it.
func drain(t *testing.T, got <-chan string) []string {
	t.Helper()
	if _, err := daemon.SdNotify(false, endMark); err != nil {
		t.Fatalf("send %s: %v", endMark, err)
	}
	var msgs []string
	for range cap(got) + 1 {
		msg := next(t, got)
		if msg == endMark {
			return msgs
		}
		msgs = append(msgs, msg)
	}
	t.Fatalf("%s never arrived", endMark)
	return nil
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"ready", Ready, "READY=1"},
		{"stopping", Stopping, "STOPPING=1"},
		{"status", func() error { return Status("polling 2 accounts, 3 alerts firing") }, "STATUS=polling 2 accounts, 3 alerts firing"},
		{"status empty", func() error { return Status("") }, "STATUS="},
		// A newline would start a second assignment: READY=1 here must
		// stay part of the status text.
		{"status newline", func() error { return Status("reload failed: bad\nREADY=1") }, "STATUS=reload failed: bad READY=1"},
		{"status crlf", func() error { return Status("a\r\nb") }, "STATUS=a  b"},
		{"status nul", func() error { return Status("a\x00b") }, "STATUS=a b"},
		{"status unicode", func() error { return Status("BTCUSDT ↓ 7 %") }, "STATUS=BTCUSDT ↓ 7 %"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listen(t)
			if err := tt.call(); err != nil {
				t.Fatalf("err = %v", err)
			}
			if msg := next(t, got); msg != tt.want {
				t.Errorf("datagram = %q, want %q", msg, tt.want)
			}
			if rest := drain(t, got); len(rest) != 0 {
				t.Errorf("extra datagrams: %q", rest)
			}
		})
	}
}

func TestReloading(t *testing.T) {
	got := listen(t)
	before := monotonicUsec(t)
	if err := Reloading(); err != nil {
		t.Fatalf("Reloading: %v", err)
	}
	after := monotonicUsec(t)

	msg := next(t, got)
	m := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)\n$`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("datagram = %q, want RELOADING=1 and MONOTONIC_USEC, one per line", msg)
	}
	usec, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC %q: %v", m[1], err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC = %d, want the CLOCK_MONOTONIC time of the call, in [%d, %d]", usec, before, after)
	}
}

// monotonicUsec reads CLOCK_MONOTONIC through the same helper Reloading uses.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	s := strings.TrimSuffix(strings.TrimPrefix(daemon.SdNotifyMonotonicUsec(), "MONOTONIC_USEC="), "\n")
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("read CLOCK_MONOTONIC: %q: %v", s, err)
	}
	return v
}

// TestNoSocket: outside systemd every call is a silent no-op.
func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	for name, call := range map[string]func() error{
		"Ready":     Ready,
		"Reloading": Reloading,
		"Stopping":  Stopping,
		"Status":    func() error { return Status("x") },
	} {
		if err := call(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: %v, want nil", name, err)
		}
	}
	rec := &recorder{}
	calls := runWatchdog(t, always, rec)
	if calls != 0 {
		t.Errorf("Watchdog without NOTIFY_SOCKET called alive %d times, want 0", calls)
	}
	if len(rec.messages()) != 0 {
		t.Errorf("Watchdog without NOTIFY_SOCKET logged %q", rec.messages())
	}
}

func TestNotifyError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	t.Setenv("NOTIFY_SOCKET", missing)
	err := Ready()
	if err == nil {
		t.Fatal("Ready with a missing socket: nil error")
	}
	if want := "sd_notify ready: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want prefix %q", err, want)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("err = %v, want it to wrap the *net.OpError", err)
	}
}

const (
	msgStuck     = "main loop seems stuck: no longer pinging the systemd watchdog; systemd will restart marginwatch"
	msgResumed   = "main loop is responsive again: pinging the systemd watchdog"
	msgPingError = "cannot ping the systemd watchdog"
	msgBadEnv    = "systemd watchdog disabled: bad WATCHDOG_USEC or WATCHDOG_PID"
)

func TestWatchdog(t *testing.T) {
	tests := []struct {
		name string
		// alive answers, one per tick; the test cancels after the last.
		alive     []bool
		wantPings int
		wantLogs  []string
	}{
		{"alive", []bool{true, true, true}, 3, nil},
		// The loop wedges: one log line, then silence until systemd
		// steps in.
		{"stuck", []bool{true, true, false, false, false}, 2, []string{msgStuck}},
		{"stuck at once", []bool{false, false}, 0, []string{msgStuck}},
		{"recovers", []bool{true, false, false, true, true}, 3, []string{msgStuck, msgResumed}},
		{"flaps", []bool{false, true, false, true}, 2, []string{msgStuck, msgResumed, msgStuck, msgResumed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listen(t)
			t.Setenv("WATCHDOG_USEC", "20000") // a tick every 10ms
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			rec := &recorder{}

			calls := runWatchdog(t, sequence(t, tt.alive), rec)

			if calls != len(tt.alive) {
				t.Errorf("alive called %d times, want %d", calls, len(tt.alive))
			}
			msgs := drain(t, got)
			if want := slices.Repeat([]string{"WATCHDOG=1"}, tt.wantPings); !slices.Equal(msgs, want) {
				t.Errorf("datagrams = %q, want %q", msgs, want)
			}
			if logs := rec.messages(); !slices.Equal(logs, tt.wantLogs) {
				t.Errorf("logs = %q, want %q", logs, tt.wantLogs)
			}
		})
	}
}

// TestWatchdogOff: without a usable watchdog setting Watchdog returns at once
// and never asks alive.
func TestWatchdogOff(t *testing.T) {
	tests := []struct {
		name     string
		usec     string
		pid      string
		wantLogs []string
	}{
		{"no WatchdogSec", "", "", nil},
		{"another process's watchdog", "20000", strconv.Itoa(os.Getpid() + 1), nil},
		{"WATCHDOG_USEC unset", "", strconv.Itoa(os.Getpid()), nil},
		{"bad WATCHDOG_USEC", "soon", strconv.Itoa(os.Getpid()), []string{msgBadEnv}},
		{"zero WATCHDOG_USEC", "0", strconv.Itoa(os.Getpid()), []string{msgBadEnv}},
		{"bad WATCHDOG_PID", "20000", "me", []string{msgBadEnv}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listen(t)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			rec := &recorder{}

			calls := runWatchdog(t, always, rec)

			if calls != 0 {
				t.Errorf("alive called %d times, want 0", calls)
			}
			if msgs := drain(t, got); len(msgs) != 0 {
				t.Errorf("datagrams = %q, want none", msgs)
			}
			if logs := rec.messages(); !slices.Equal(logs, tt.wantLogs) {
				t.Errorf("logs = %q, want %q", logs, tt.wantLogs)
			}
		})
	}
}

// TestWatchdogSendFails: a socket that cannot be reached is reported once,
// not on every tick.
func TestWatchdogSendFails(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	rec := &recorder{}

	calls := runWatchdog(t, sequence(t, []bool{true, true, true}), rec)

	if calls != 3 {
		t.Errorf("alive called %d times, want 3", calls)
	}
	if logs, want := rec.messages(), []string{msgPingError}; !slices.Equal(logs, want) {
		t.Errorf("logs = %q, want %q", logs, want)
	}
}

// aliveFunc builds the alive function for one Watchdog run, given the cancel
// of that run's context.
type aliveFunc func(cancel context.CancelFunc) func() bool

// always answers true and never cancels: for runs that must end on their own.
func always(context.CancelFunc) func() bool { return func() bool { return true } }

// sequence returns an aliveFunc that gives answers in order and cancels the
// run when it hands out the last one. Calls past the end fail the test.

func sequence(t *testing.T, answers []bool) aliveFunc {
	return func(cancel context.CancelFunc) func() bool {
		i := 0
		return func() bool {
			if i >= len(answers) {
				t.Errorf("alive called after the context was cancelled")
				return false
			}
			a := answers[i]
			i++
			if i == len(answers) {
				cancel()
			}
			return a
		}
	}
}

// runWatchdog runs Watchdog until it returns (bounded by wait) and reports
// how often it called alive.
func runWatchdog(t *testing.T, alive aliveFunc, rec *recorder) (calls int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inner := alive(cancel)
	counted := func() bool {
		calls++
		return inner()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watchdog(ctx, counted, slog.New(rec))
	}()
	select {
	case <-done:
	case <-time.After(wait):
		cancel()
		<-done
		t.Fatalf("Watchdog still running after %s", wait)
	}
	return calls // written only by Watchdog's goroutine, which has finished
}

// recorder is a slog.Handler that keeps the messages of Info and above.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}
