package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// statusBinary runs the real binary's `status` with args and returns its
// exit code and stdout.
func statusBinary(t *testing.T, cfg string, args ...string) (int, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"status", "-config", cfg}, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if code := exitCode(err); code != exitOK {
		t.Logf("status exit %d: %s", code, errb.String())
		return code, string(out)
	}
	return exitOK, string(out)
}

// TestStatusAsksTheDaemon runs the real daemon against the fake Binance
// with `listen` set: `status -json` reports "source": "daemon", the
// metrics a one-off poll computes plus drawdown_pct from the daemon's
// history, and the liquidation alert with its lifecycle state; the table
// says it is the daemon's live view. With the daemon stopped, status polls
// itself and says so.
func TestStatusAsksTheDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.USDMOneWay})
	polled := binanceConfig(t, "binance-usdm", srv.URL, "") // listen: ""
	code, out, errOut := runCLI("status", "-config", polled, "-json")
	if code != exitOK {
		t.Fatalf("one-off poll: exit %d: %s", code, errOut)
	}
	var poll statusJSON
	if err := json.Unmarshal([]byte(out), &poll); err != nil || poll.Source != sourcePoll {
		t.Fatalf("one-off poll: source %q, %v\n%s", poll.Source, err, out)
	}

	addr := freeAddr(t)
	text, err := os.ReadFile(polled)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(polled, "config.yaml", "daemon.yaml", 1)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text), `listen: ""`, "listen: "+addr, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)

	var doc statusJSON
	waitUntil(t, 30*time.Second, "status to show the daemon's evaluation", func() bool {
		code, out := statusBinary(t, cfg, "-json")
		doc = statusJSON{}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("status -json: %v\n%s", err, out)
		}
		return code == exitOK && doc.Source == sourceDaemon && len(doc.Accounts) == 1 && doc.Accounts[0].Metrics["equity"] != nil &&
			len(doc.Accounts[0].Alerts) > 0
	})
	a, p := doc.Accounts[0], poll.Accounts[0]
	if dd := a.Metrics["drawdown_pct"]; dd == nil || *dd != 0 {
		t.Errorf("daemon's drawdown_pct = %v, want 0 (equity unchanged since the start)", dd)
	}
	if dd := p.Metrics["drawdown_pct"]; dd != nil {
		t.Errorf("one-off poll's drawdown_pct = %v, want null (no history)", *dd)
	}
	want := map[string]float64{}
	for name, v := range p.Metrics {
		if v != nil {
			want[name] = *v
		}
	}
	delete(want, "data_age_seconds")
	for name, w := range want {
		if g := a.Metrics[name]; g == nil || *g != w {
			t.Errorf("daemon's %s = %v, the poll's %v", name, g, w)
		}
	}
	if len(a.Positions) != len(p.Positions) || a.Time == nil {
		t.Errorf("daemon shows %d positions (poll %d), time %v", len(a.Positions), len(p.Positions), a.Time)
	}
	var alerts []string
	for _, al := range a.Alerts {
		alerts = append(alerts, al.Rule+" "+al.Symbol+" "+al.Side+" "+al.State+" "+al.Severity.String())
		if al.State == "firing" && (al.ID == "" || al.StartsAt == nil) {
			t.Errorf("firing alert %+v lacks its id or start", al)
		}
	}
	if got := strings.Join(alerts, ", "); got != "liquidation-near ETHUSDT short firing warning" {
		t.Errorf("daemon's alerts %q, want the ETH short's liquidation-near firing", got)
	}
	if len(a.Firing) != 1 || a.Firing[0].Rule != "liquidation-near" {
		t.Errorf("daemon's firing %+v, want liquidation-near", a.Firing)
	}
	_, table := statusBinary(t, cfg)
	if first, _, _ := strings.Cut(table, "\n"); !strings.Contains(first, "live view from the daemon at "+addr) {
		t.Errorf("table's first line %q, want it to name the daemon at %s", first, addr)
	}
	if !strings.Contains(table, "FIRING   warning liquidation-near ETHUSDT short") {
		t.Errorf("table lacks the firing alert:\n%s", table)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
	code, out = statusBinary(t, cfg, "-json")
	doc = statusJSON{}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitOK {
		t.Fatalf("status -json without the daemon: exit %d, %v\n%s", code, err, out)
	}
	if doc.Source != sourcePoll || doc.Accounts[0].Metrics["drawdown_pct"] != nil || doc.Accounts[0].Alerts != nil {
		t.Errorf("without the daemon: source %q, drawdown %v, alerts %v; want a poll without history", doc.Source, doc.Accounts[0].Metrics["drawdown_pct"], doc.Accounts[0].Alerts)
	}
	_, table = statusBinary(t, cfg)
	lines := strings.SplitN(table, "\n", 3)
	if len(lines) < 2 || !strings.Contains(lines[0], "each account polled once now") || !strings.Contains(lines[1], "no daemon answered at "+addr) {
		t.Errorf("table without the daemon starts %q, want it to say it polled and why", lines[:min(2, len(lines))])
	}
}
