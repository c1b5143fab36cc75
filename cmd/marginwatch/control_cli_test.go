package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/watcher/config"
)

// controlConfig writes a config whose listen is addr, with extra appended.
func controlConfig(t *testing.T, addr, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("state_dir: state\nlisten: \""+addr+"\"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSilenceCLI runs silence add, list and expire and ack against the
// admin API on a fake daemon: what they send, what they print, their exit
// codes.
func TestSilenceCLI(t *testing.T) {
	t.Setenv("SUDO_USER", "")
	t.Setenv("USER", "ann")
	ctl := &fakeControl{}
	srv, _ := apiServer(t, ctl, writePolicy{loopback: true})
	cfg := controlConfig(t, strings.TrimPrefix(srv.URL, "http://"), "")

	code, out, errOut := runCLI("silence", "add", "-config", cfg, "-comment", "handling it", "rule=liquidation-near", "symbol=~BTC.*", "-duration", "2h")
	if code != exitOK || out != "s1\n" {
		t.Fatalf("silence add: exit %d, stdout %q, stderr %q; want 0 and the id", code, out, errOut)
	}
	s := ctl.Silences()[0]
	if len(s.Matchers) != 2 || s.Author != "ann" || s.Comment != "handling it" || s.EndsAt.Sub(s.StartsAt) != 2*time.Hour {
		t.Errorf("the daemon got %+v", s)
	}
	if code, out, errOut := runCLI("silence", "add", "-config", cfg, "-author", "bob", "account=main"); code != exitOK || out != "s2\n" {
		t.Errorf("silence add -author: exit %d %q %q", code, out, errOut)
	} else if s := ctl.Silences()[1]; s.Author != "bob" || s.EndsAt.Sub(s.StartsAt) != time.Hour {
		t.Errorf("default duration or -author: %+v", s)
	}

	code, out, errOut = runCLI("silence", "list", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "ID  MATCHERS") || !strings.Contains(out, "s1  rule=liquidation-near symbol=~BTC.*  2h00m") ||
		!strings.Contains(out, "ann     handling it") || !strings.Contains(out, "s2  account=main") {
		t.Errorf("silence list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI("silence", "list", "-config", cfg, "-json")
	var list silencesJSON
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list.Silences) != 2 || list.Silences[0].Matchers[1] != "symbol=~BTC.*" {
		t.Errorf("silence list -json: exit %d\n%s", code, out)
	}

	if code, out, errOut := runCLI("silence", "expire", "-config", cfg, "s1"); code != exitOK || out != "expired s1 (rule=liquidation-near symbol=~BTC.*)\n" {
		t.Errorf("silence expire: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI("silence", "expire", "-config", cfg, "s1"); code != exitFailure || !strings.Contains(errOut, `silence "s1": not found`) {
		t.Errorf("silence expire again: exit %d %q; want 1 and not found", code, errOut)
	}
	if code, out, errOut := runCLI("ack", "a1b2", "-config", cfg, "-comment", "adding margin"); code != exitOK ||
		out != "acknowledged a1b2: critical liquidation-near on main BTCUSDT long; its repeats stop until its severity rises or it resolves\n" {
		t.Errorf("ack: exit %d %q %q", code, out, errOut)
	}
	if got := ctl.acked; len(got) != 1 || got[0] != "a1b2 ann adding margin" {
		t.Errorf("the daemon got acks %q", got)
	}
	if code, _, errOut := runCLI("ack", "-config", cfg, "zz"); code != exitFailure || !strings.Contains(errOut, `alert "zz": not found`) {
		t.Errorf("ack of an unknown id: exit %d %q", code, errOut)
	}

	// Usage errors are found before the daemon is asked.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"silence"}, "Usage:"},
		{[]string{"silence", "mute"}, `unknown command "mute"`},
		{[]string{"silence", "add", "-config", cfg}, "no matcher"},
		{[]string{"silence", "add", "-config", cfg, "rule=x", "colour=red"}, `matcher "colour=red": unknown label "colour"`},
		{[]string{"silence", "add", "-config", cfg, "symbol=~(BTC"}, `matcher "symbol=~(BTC": bad regexp`},
		{[]string{"silence", "add", "-config", cfg, "-duration", "-1h", "rule=x"}, "-duration -1h: want a positive duration"},
		{[]string{"silence", "add", "-config", cfg, "-duration", "2 hours", "rule=x"}, `invalid value "2 hours" for flag -duration`},
		{[]string{"silence", "expire", "-config", cfg}, "give one silence ID"},
		{[]string{"silence", "list", "-config", cfg, "extra"}, `unexpected argument "extra"`},
		{[]string{"ack", "-config", cfg}, "give one alert ID"},
		{[]string{"ack", "-config", cfg, "a", "b"}, "give one alert ID"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != exitUsage || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, out+errOut, tc.want)
		}
	}
	if len(ctl.Silences()) != 1 {
		t.Errorf("a usage error reached the daemon: %+v", ctl.Silences())
	}
}

// TestControlCLIErrors: no daemon, no listen, a wrong or missing token,
// a token file the user cannot read: each says what to do, exit 1.
func TestControlCLIErrors(t *testing.T) {
	addr := freeAddr(t)
	for _, args := range [][]string{{"silence", "list"}, {"silence", "add", "rule=x"}, {"silence", "expire", "s1"}, {"ack", "a1"}} {
		full := append(append([]string{}, args...), "-config", controlConfig(t, addr, ""))
		code, _, errOut := runCLI(full...)
		want := "no marginwatch daemon answers on " + addr + ": silences and acks live in the running daemon; start it with systemctl start marginwatch"
		if code != exitFailure || !strings.Contains(errOut, want) {
			t.Errorf("%q without a daemon: exit %d %q; want 1 and %q", args, code, errOut, want)
		}
	}
	if code, _, errOut := runCLI("silence", "list", "-config", controlConfig(t, "", "")); code != exitFailure || !strings.Contains(errOut, `listen is "", so the daemon has no admin API`) {
		t.Errorf("listen \"\": exit %d %q", code, errOut)
	}

	const token = "the-admin-token-0123456789"
	srv, _ := apiServer(t, &fakeControl{}, writePolicy{token: token, loopback: true})
	addr = strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("silence", "add", "-config", controlConfig(t, addr, "admin: {token_file: "+tokenFile+"}\n"), "rule=x"); code != exitOK || out != "s1\n" {
		t.Errorf("with the token file: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI("silence", "add", "-config", controlConfig(t, addr, ""), "rule=x"); code != exitFailure || !strings.Contains(errOut, "wants the admin token") {
		t.Errorf("without a token: exit %d %q", code, errOut)
	}
	code, _, errOut := runCLI("ack", "-config", controlConfig(t, addr, "admin: {token: not-it}\n"), "a1b2")
	if code != exitFailure || !strings.Contains(errOut, "refused the admin token: wrong admin token") || strings.Contains(errOut, token) {
		t.Errorf("a wrong token: exit %d %q", code, errOut)
	}

	if os.Geteuid() == 0 {
		t.Log("root reads every file: the unreadable token file is not tested")
		return
	}
	if err := os.Chmod(tokenFile, 0); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI("silence", "list", "-config", controlConfig(t, addr, "admin: {token_file: "+tokenFile+"}\n"))
	if code != exitFailure || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "run this command with sudo") {
		t.Errorf("an unreadable token file: exit %d %q", code, errOut)
	}
}

// TestUnreadable: a config error of a file the user may not read (the
// daemon's token file, as anyone but root) is told apart, for the hint to
// use sudo.
func TestUnreadable(t *testing.T) {
	denied := config.Errors{{File: "c.yaml", Msg: "cannot read the secret: open /run/credentials/marginwatch.service/admin-token: permission denied"}}
	other := config.Errors{{File: "c.yaml", Msg: "cannot read the secret: stat /x: no such file or directory"}}
	if !unreadable(denied) || unreadable(other) || unreadable(os.ErrPermission) {
		t.Error("unreadable misjudges")
	}
}

// TestControlCLITokenWithLeadingBlanks: the daemon keeps a token file's
// leading blanks (only the line end is trimmed); the CLI reading the very
// same file must be let in.
func TestControlCLITokenWithLeadingBlanks(t *testing.T) {
	tf := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tf, []byte("  the-admin-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(controlConfig(t, "127.0.0.1:1", "admin: {token_file: "+tf+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := apiServer(t, &fakeControl{}, policyOf(cfg))
	path := controlConfig(t, strings.TrimPrefix(srv.URL, "http://"), "admin: {token_file: "+tf+"}\n")
	if code, out, errOut := runCLI("silence", "add", "-config", path, "rule=x"); code != exitOK || out != "s1\n" {
		t.Errorf("daemon and CLI share the token file, yet: exit %d %q %q", code, out, errOut)
	}
	// Without the blanks it is another token.
	if code, _, errOut := runCLI("silence", "add", "-config", controlConfig(t, strings.TrimPrefix(srv.URL, "http://"), "admin: {token: the-admin-token-0123456789}\n"), "rule=x"); code != exitFailure || !strings.Contains(errOut, "wrong admin token") {
		t.Errorf("the token without its blanks: exit %d %q", code, errOut)
	}
}

// TestControlCLIBypassesProxy: the CLI and status talk to their own daemon
// directly, never through HTTP_PROXY: a proxy would get the admin token in
// clear text (Go's proxy rules skip loopback, not a named listen host).
func TestControlCLIBypassesProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "proxy", http.StatusBadGateway)
	}))
	defer proxy.Close()
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(v, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	const token = "the-admin-token-0123456789"
	// A name no resolver knows: without the proxy, the call fails fast.
	const listen = "marginwatch-admin.invalid:9464"
	cfgPath := controlConfig(t, listen, "admin: {token: "+token+"}\n")
	for _, args := range [][]string{{"silence", "list"}, {"silence", "add", "rule=x"}, {"ack", "a1"}} {
		code, _, errOut := runCLI(append(args, "-config", cfgPath)...)
		if code != exitFailure || !strings.Contains(errOut, "no marginwatch daemon answers on "+listen) {
			t.Errorf("%q: exit %d %q; want 1, no daemon answers", args, code, errOut)
		}
	}
	if _, err := askDaemon(listen, 5*time.Second); err == nil || !strings.Contains(err.Error(), "no daemon answered at "+listen) {
		t.Errorf("status asking %s: %v", listen, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Errorf("the proxy was asked: %q", seen)
	}
	// Go reads the proxy variables once per process: an earlier test may
	// have fixed them before Setenv, so check the transport itself too.
	if daemonTransport.Proxy != nil {
		t.Error("daemonTransport has a Proxy")
	}
}

// TestControlCLIRequests: what the CLI sends: every write as JSON with
// Content-Type: application/json (an expire too, as {}), the bearer
// token on writes only, and Host the listen address.
func TestControlCLIRequests(t *testing.T) {
	const token = "the-admin-token-0123456789"
	var mu sync.Mutex
	var seen []string
	h := adminHandler(http.NotFoundHandler(), &fakeControl{}, func() writePolicy { return writePolicy{token: token, loopback: true} }, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s ct=%q auth=%t body=%t host=%t", r.Method, r.URL.Path, r.Header.Get("Content-Type"),
			r.Header.Get("Authorization") == "Bearer "+token, json.Valid(b), r.Host == r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := controlConfig(t, strings.TrimPrefix(srv.URL, "http://"), "admin: {token: "+token+"}\n")
	for _, args := range [][]string{{"silence", "add", "rule=x"}, {"silence", "list"}, {"silence", "expire", "s1"}, {"ack", "a1b2"}} {
		if code, out, errOut := runCLI(append(args, "-config", cfg)...); code != exitOK {
			t.Errorf("%q: exit %d %q %q", args, code, out, errOut)
		}
	}
	if _, err := askDaemon(strings.TrimPrefix(srv.URL, "http://"), 5*time.Second); err != nil {
		t.Errorf("status: %v", err)
	}
	want := []string{
		`POST /api/v1/silences ct="application/json" auth=true body=true host=true`,
		`GET /api/v1/silences ct="" auth=false body=false host=true`,
		`DELETE /api/v1/silences/s1 ct="application/json" auth=true body=true host=true`,
		`POST /api/v1/alerts/a1b2/ack ct="application/json" auth=true body=true host=true`,
		`GET /api/v1/status ct="" auth=false body=false host=true`,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

// TestControlCLIOlderDaemon: a daemon without the control endpoints
// (plain-text 404, a 405) is named an older marginwatch.
func TestControlCLIOlderDaemon(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", http.NotFoundHandler())
	mux.HandleFunc(statusPath, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMethodNotAllowed) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := controlConfig(t, strings.TrimPrefix(srv.URL, "http://"), "")
	for _, args := range [][]string{{"silence", "list"}, {"silence", "add", "rule=x"}, {"silence", "expire", "s1"}, {"ack", "a1"}} {
		code, out, errOut := runCLI(append(args, "-config", cfg)...)
		if code != exitFailure || !strings.Contains(errOut, "older marginwatch") {
			t.Errorf("%q: exit %d %q %q", args, code, out, errOut)
		}
	}
}

// TestSilenceAddUsage: the help says the default duration as it is
// written, 1h.
func TestSilenceAddUsage(t *testing.T) {
	code, _, errOut := runCLI("silence", "add", "-h")
	if code != exitOK || !strings.Contains(errOut, "(default 1h)") {
		t.Errorf("silence add -h: exit %d\n%s", code, errOut)
	}
}
