package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// End-to-end tests of silences and acks (SPEC "Control"): the real
// binary polls the fake Binance every second, notices are taken at a
// webhook receiver, and the real CLI talks to the daemon's admin API.
// The fake's one-way account: BTCUSDT long 36% from liquidation, ETHUSDT
// short 14.8%, SOLUSDT long 42.9%.

// controlDeadline bounds what the daemon does within a poll or two
// (1 s each): generous for a loaded test machine.
const controlDeadline = 20 * time.Second

// pollingConfig writes a config of the fake's account polled every
// second, the console and a webhook to hook, the admin API on listen,
// extra top-level YAML and rules (YAML list items).
func pollingConfig(t *testing.T, fake *binancetest.Server, hook *receiver, listen, extra, rules string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: %q
defaults: {poll_interval: 1s, stale_after: 60s}
accounts:
  - name: main
    exchange: binance-usdm
    endpoint: %s
    api_key: %s
    api_secret: %s
    stream: false
    poll_interval: 1s
notifiers:
  - {name: term, type: console}
  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}
%srules:
%s`, listen, fake.URL, binancetest.Key, binancetest.Secret, hook.srv.URL, extra, rules)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs the real binary with args and returns its exit code, stdout
// and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return exitCode(err), out.String(), errb.String()
}

// daemonStatus is the daemon's status document, read with `status -json`;
// ok is false while status answers from its own poll.
func daemonStatus(t *testing.T, cfg string) (statusJSON, bool) {
	t.Helper()
	_, out, _ := cli(t, "status", "-config", cfg, "-json")
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	return doc, doc.Source == sourceDaemon && len(doc.Accounts) == 1 && doc.Accounts[0].Error == "" && doc.Accounts[0].Metrics["equity"] != nil
}

// alertIn is the daemon's alert of rule on symbol, if it has one.
func alertIn(doc statusJSON, rule, symbol string) (alertJSON, bool) {
	for _, a := range doc.Accounts {
		for _, al := range a.Alerts {
			if al.Rule == rule && al.Symbol == symbol {
				return al, true
			}
		}
	}
	return alertJSON{}, false
}

// countKind counts notices of kind and severity.
func countKind(as []webhookAlert, kind, severity string) int {
	n := 0
	for _, a := range as {
		if a.Kind == kind && a.Severity == severity {
			n++
		}
	}
	return n
}

// TestSilenceEndToEnd: a silence added with `marginwatch silence add`
// withholds the matching alert (ETHUSDT) and not its neighbour (SOLUSDT,
// same rule); status shows it silenced and the silence; `silence list`
// shows the silence; `silence expire` lets the still-firing alert through
// at once (SPEC: when a silence ends on a still-firing alert, the next
// notice goes out at once), and the list no longer has it.
func TestSilenceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := newStreamFake(t, binancetest.USDMOneWay)
	hook := newReceiver(t)
	const rule = "  - name: liquidation-near\n    metric: liq_distance_pct\n    below: {warning: 10, critical: 5}\n    hysteresis: 1\n    repeat: 1h\n"
	cfg := pollingConfig(t, fake, hook, freeAddr(t), "", rule)
	startLoggedDaemon(t, cfg)
	waitUntil(t, 60*time.Second, "the daemon's first evaluation in status", func() bool { _, ok := daemonStatus(t, cfg); return ok })

	code, out, errOut := cli(t, "silence", "add", "-config", cfg, "-duration", "2h", "-comment", "handling ETH", "-author", "ann", "symbol=ETHUSDT", "rule=liquidation-near")
	id := strings.TrimSpace(out)
	if code != exitOK || id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("silence add: exit %d, stdout %q, stderr %q; want 0 and the id", code, out, errOut)
	}
	code, out, errOut = cli(t, "silence", "list", "-config", cfg)
	if code != exitOK || !containsAll(out, id, "symbol=ETHUSDT rule=liquidation-near", "ann", "handling ETH") {
		t.Fatalf("silence list: exit %d\n%s%s", code, out, errOut)
	}

	// Both short of 10% from liquidation: warning for both.
	eth, sol := positionOf(t, fake, "ETHUSDT"), positionOf(t, fake, "SOLUSDT")
	moveMark(t, fake, "ETHUSDT", eth.markAt(8))
	moveMark(t, fake, "SOLUSDT", sol.markAt(8))
	waitNotice(t, hook, controlDeadline, "liquidation-near", "SOLUSDT", "firing/warning")
	var doc statusJSON
	waitUntil(t, controlDeadline, "status to show the ETH alert silenced", func() bool {
		doc, _ = daemonStatus(t, cfg)
		a, ok := alertIn(doc, "liquidation-near", "ETHUSDT")
		return ok && a.State == "silenced"
	})
	if a, _ := alertIn(doc, "liquidation-near", "ETHUSDT"); a.SilencedBy != id {
		t.Errorf("ETH alert %+v: silenced_by %q, want %q", a, a.SilencedBy, id)
	}
	if a, _ := alertIn(doc, "liquidation-near", "SOLUSDT"); a.State != "firing" || a.SilencedBy != "" {
		t.Errorf("the neighbour SOL %+v, want firing and not silenced", a)
	}
	if len(doc.Silences) != 1 || doc.Silences[0].ID != id || doc.Silences[0].Author != "ann" {
		t.Errorf("status silences %+v, want %s", doc.Silences, id)
	}
	_, table, _ := cli(t, "status", "-config", cfg)
	if !containsAll(table, "SILENCED warning liquidation-near ETHUSDT short", "silenced by "+id, "Silences:", "symbol=ETHUSDT") {
		t.Errorf("the status table lacks the silenced alert or the silence:\n%s", table)
	}
	// A few more polls: the silenced alert stays withheld.
	time.Sleep(3 * time.Second)
	if got := notices(hook, "liquidation-near", "ETHUSDT"); len(got) != 0 {
		t.Fatalf("the silenced ETH alert was sent: %s", describe(got))
	}

	code, out, errOut = cli(t, "silence", "expire", "-config", cfg, id)
	if code != exitOK || !strings.Contains(out, "expired "+id) {
		t.Fatalf("silence expire: exit %d, %q %q", code, out, errOut)
	}
	expired := time.Now()
	waitNotice(t, hook, controlDeadline, "liquidation-near", "ETHUSDT", "firing/warning")
	t.Logf("the withheld ETH notice arrived %s after the silence was expired", time.Since(expired).Round(time.Millisecond))
	if got := describe(notices(hook, "liquidation-near", "SOLUSDT")); got != "firing/warning" {
		t.Errorf("SOL notices %q, want its one firing notice (repeat 1h)", got)
	}
	if code, out, _ := cli(t, "silence", "list", "-config", cfg); code != exitOK || strings.Contains(out, id) {
		t.Errorf("silence list after expire: exit %d\n%s", code, out)
	}
	if code, _, errOut := cli(t, "silence", "expire", "-config", cfg, "no-such-silence"); code != exitFailure || !strings.Contains(errOut, "not found") {
		t.Errorf("expire of an unknown id: exit %d %q; want 1 and not found", code, errOut)
	}
}

// TestAckEndToEnd: an ack (`marginwatch ack ID`) stops a firing alert's
// repeats; status shows it acked; a step up in severity breaks through
// it at once and its repeats resume (SPEC: an ack stops repeats until
// the severity rises).
func TestAckEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := newStreamFake(t, binancetest.USDMOneWay)
	hook := newReceiver(t)
	// ETH is 14.8% from liquidation: warning from the first poll, repeated every 2 s.
	const rule = "  - name: liquidation-near\n    metric: liq_distance_pct\n    symbols: [ETHUSDT]\n    below: {warning: 15, critical: 7}\n    hysteresis: 0.1\n    repeat: 2s\n"
	cfg := pollingConfig(t, fake, hook, freeAddr(t), "", rule)
	startLoggedDaemon(t, cfg)
	waitUntil(t, 60*time.Second, "the warning and two repeats", func() bool {
		got := notices(hook, "liquidation-near", "ETHUSDT")
		return countKind(got, "firing", "warning") == 1 && countKind(got, "repeat", "warning") >= 2
	})
	doc, _ := daemonStatus(t, cfg)
	a, ok := alertIn(doc, "liquidation-near", "ETHUSDT")
	sent := notices(hook, "liquidation-near", "ETHUSDT")
	if !ok || a.ID == "" || a.ID != sent[0].ID {
		t.Fatalf("status alert %+v, want the firing incident %s", a, sent[0].ID)
	}

	code, out, errOut := cli(t, "ack", "-config", cfg, "-comment", "adding margin", a.ID)
	if code != exitOK || !strings.Contains(out, "acknowledged "+a.ID) {
		t.Fatalf("ack: exit %d, %q %q", code, out, errOut)
	}
	acked := countKind(notices(hook, "liquidation-near", "ETHUSDT"), "repeat", "warning")
	// Four repeat intervals: at most one repeat already on its way.
	time.Sleep(8 * time.Second)
	got := notices(hook, "liquidation-near", "ETHUSDT")
	if n := countKind(got, "repeat", "warning"); n > acked+1 {
		t.Errorf("%d repeats after the ack (had %d): %s", n-acked, acked, describe(got))
	}
	doc, _ = daemonStatus(t, cfg)
	if a, _ := alertIn(doc, "liquidation-near", "ETHUSDT"); a.State != "acked" || a.AckComment != "adding margin" || a.AckedBy == "" || a.AckedAt == nil {
		t.Errorf("status after the ack: %+v, want acked with its author and comment", a)
	}
	if code, _, errOut := cli(t, "ack", "-config", cfg, "no-such-alert"); code != exitFailure || !strings.Contains(errOut, "not found") {
		t.Errorf("ack of an unknown id: exit %d %q; want 1 and not found", code, errOut)
	}

	// 5% from liquidation: critical breaks through the ack, and repeats again.
	eth := positionOf(t, fake, "ETHUSDT")
	moveMark(t, fake, "ETHUSDT", eth.markAt(5))
	waitUntil(t, controlDeadline, "the escalation", func() bool {
		return countKind(notices(hook, "liquidation-near", "ETHUSDT"), "escalated", "critical") == 1
	})
	waitUntil(t, controlDeadline, "the critical alert's repeats", func() bool {
		return countKind(notices(hook, "liquidation-near", "ETHUSDT"), "repeat", "critical") >= 1
	})
	doc, _ = daemonStatus(t, cfg)
	if a, _ := alertIn(doc, "liquidation-near", "ETHUSDT"); a.State != "firing" || a.AckedAt != nil {
		t.Errorf("after the escalation: %+v, want firing and no longer acked", a)
	}
}

// TestAdminAPIToken: with admin.token_file, a write without the token or
// with a wrong one is refused (401, logged without the token) and the
// CLI, reading the same file, is let in; with no token, a loopback
// listen takes writes from the CLI as is; a listen beyond loopback with
// no token is refused by check (exit 1, file:line) and by run (exit 78)
// before it binds anything.
func TestAdminAPIToken(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	dir := t.TempDir()
	const token = "e2e-admin-token-5f1c9a7d"
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf("state_dir: state\nlisten: %s\nadmin: {token_file: %s}\naccounts: [{name: demo, exchange: simulated, scenario: calm}]\nnotifiers: [{name: term, type: console}]\nrules: []\n", addr, tokenFile)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs := startLoggedDaemon(t, cfg)
	waitUntil(t, 30*time.Second, "the admin API", func() bool { code, _, err := get("http://" + addr + "/healthz"); return err == nil && code != 0 })

	post := func(auth string, header ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+silencesPath, strings.NewReader(`{"matchers": ["rule=x"], "duration": "1h"}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	for _, auth := range []string{"", "Bearer wrong-token-abc123", "Bearer " + token[:8]} {
		if code, challenge := post(auth); code != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") {
			t.Errorf("POST with %q: %d, WWW-Authenticate %q; want 401 Bearer", auth, code, challenge)
		}
	}
	waitLog(t, logs, 10*time.Second, 3, "admin API write refused")
	// A web page is refused even with the token (a browser holds none,
	// but the guard comes first): text/plain, or JSON with an Origin.
	if code, _ := post("Bearer "+token, "Content-Type", "text/plain;charset=UTF-8"); code != http.StatusUnsupportedMediaType {
		t.Errorf("a text/plain POST: %d, want 415", code)
	}
	if code, _ := post("Bearer "+token, "Origin", "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("a POST with Origin: %d, want 403", code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+statusPath, nil)
	req.Host = "rebind.evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET %s with a foreign Host: %s, want 403", statusPath, resp.Status)
	}
	waitLog(t, logs, 10*time.Second, 3, "admin API request refused")
	if l := logs.String(); strings.Contains(l, "wrong-token-abc123") || strings.Contains(l, token[:8]) {
		t.Errorf("the daemon logged a token:\n%s", l)
	}
	if code, _, _ := get("http://" + addr + statusPath); code != http.StatusOK {
		t.Errorf("GET %s without a token: %d, want 200 (reads stay open)", statusPath, code)
	}
	// A config without the token cannot write; the daemon's own can.
	noToken := filepath.Join(dir, "no-token.yaml")
	if err := os.WriteFile(noToken, []byte(strings.Replace(text, "admin: {token_file: "+tokenFile+"}\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, "silence", "add", "-config", noToken, "rule=x"); code != exitFailure || !strings.Contains(errOut, "wants the admin token") {
		t.Errorf("silence add without the token: exit %d %q", code, errOut)
	}
	if code, out, errOut := cli(t, "silence", "add", "-config", cfg, "rule=x"); code != exitOK || strings.TrimSpace(out) == "" {
		t.Errorf("silence add with the daemon's token file: exit %d %q %q", code, out, errOut)
	}

	// No token, loopback: the CLI writes without one.
	open := filepath.Join(t.TempDir(), "config.yaml")
	openAddr := freeAddr(t)
	if err := os.WriteFile(open, []byte(strings.NewReplacer("admin: {token_file: "+tokenFile+"}\n", "", addr, openAddr).Replace(text)), 0o600); err != nil {
		t.Fatal(err)
	}
	startLoggedDaemon(t, open)
	waitUntil(t, 30*time.Second, "the open admin API", func() bool { code, _, err := get("http://" + openAddr + "/healthz"); return err == nil && code != 0 })
	if code, out, errOut := cli(t, "silence", "add", "-config", open, "rule=x"); code != exitOK || strings.TrimSpace(out) == "" {
		t.Errorf("silence add on a loopback daemon without a token: exit %d %q %q", code, out, errOut)
	}

	// Beyond loopback without a token: refused before anything binds.
	exposed := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(exposed, []byte(strings.NewReplacer("admin: {token_file: "+tokenFile+"}\n", "", addr, "0.0.0.0:"+addr[strings.LastIndexByte(addr, ':')+1:]).Replace(text)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cli(t, "check", "-config", exposed)
	if code != exitFailure || !strings.Contains(errOut, exposed+":2:9: listen: ") || !strings.Contains(errOut, "set admin.token_file") {
		t.Fatalf("check of a listen beyond loopback without a token: exit %d %q; want 1 and file:line", code, errOut)
	}
	if code, _, errOut := cli(t, "run", "-config", exposed); code != exitConfig || !strings.Contains(errOut, exposed+":2:9: listen: ") {
		t.Errorf("run of a listen beyond loopback without a token: exit %d %q; want 78", code, errOut)
	}
}
