package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// fakeControl is a controller for the HTTP layer's tests only: it keeps
// silences in a slice and knows one firing alert, "a1b2". What silences
// and acks do to alerts is the watcher's, tested there and end to end.
type fakeControl struct {
	view func(time.Time) []watcher.AccountStatus

	mu       sync.Mutex
	silences []silence.Silence
	acked    []string // "id author comment"
	next     int
}

func (f *fakeControl) Status(now time.Time) []watcher.AccountStatus {
	if f.view == nil {
		return nil
	}
	return f.view(now)
}

func (f *fakeControl) Silences() []silence.Silence {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]silence.Silence(nil), f.silences...)
}

func (f *fakeControl) AddSilence(s silence.Silence) (silence.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	s.ID, s.CreatedAt = fmt.Sprintf("s%d", f.next), s.StartsAt
	f.silences = append(f.silences, s)
	return s, nil
}

func (f *fakeControl) ExpireSilence(id string) (silence.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.silences {
		if s.ID == id {
			f.silences = append(f.silences[:i], f.silences[i+1:]...)
			s.EndsAt = s.StartsAt.Add(time.Second)
			return s, nil
		}
	}
	return silence.Silence{}, fmt.Errorf("silence %q: %w (marginwatch silence list shows the silences)", id, watcher.ErrNotFound)
}

func (f *fakeControl) Ack(id, author, comment string) (rules.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "a1b2" {
		return rules.State{}, fmt.Errorf("alert %q: %w (marginwatch status shows the firing alerts' ids)", id, watcher.ErrNotFound)
	}
	f.acked = append(f.acked, id+" "+author+" "+comment)
	return rules.State{Key: rules.Key{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long"}, Phase: rules.Active, ID: id,
		Severity: notifiers.Critical, Value: 5, Threshold: 7, Acked: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), AckedBy: author, AckComment: comment}, nil
}

// lockedBuffer is a log sink a server's goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// apiServer serves the admin API of ctl with policy p on 127.0.0.1.
func apiServer(t *testing.T, ctl controller, p writePolicy) (*httptest.Server, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	srv := httptest.NewServer(adminHandler(http.NotFoundHandler(), ctl, func() writePolicy { return p }, slog.New(slog.NewTextHandler(logs, nil))))
	t.Cleanup(srv.Close)
	return srv, logs
}

// call sends method path with body (nil: none) and token ("" for no
// Authorization header), a write as JSON as the CLI sends it, and returns
// the status, the WWW-Authenticate header and the body.
func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// TestControlAPIAuth: with a token, every write without it or with a
// wrong one is refused with 401 and WWW-Authenticate, logged with who
// asked and never with what they sent; reads need no token. Without a
// token, a loopback listen accepts writes from anyone and any other
// refuses them.
func TestControlAPIAuth(t *testing.T) {
	const token = "s3cr3t-admin-t0ken-value"
	srv, logs := apiServer(t, &fakeControl{view: apiView}, writePolicy{token: token, loopback: true})
	writes := []struct{ method, path, body string }{
		{"POST", silencesPath, `{"matchers": ["rule=x"], "duration": "1h"}`},
		{"DELETE", silencesPath + "/s1", ""},
		{"POST", alertsPath + "a1b2/ack", `{}`},
	}
	for _, w := range writes {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + token[:10], "Basic " + token, "Bearer " + token + "x", token} {
			code, challenge, body := call(t, srv, w.method, w.path, auth, w.body)
			var e apiError
			if code != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("%s %s with %q: %d, WWW-Authenticate %q, body %q; want 401, Bearer, a JSON error", w.method, w.path, auth, code, challenge, body)
			}
			if strings.Contains(body, "s3cr3t") || strings.Contains(body, "wrong") && !strings.Contains(body, "wrong admin token") {
				t.Errorf("the refusal quotes what was sent: %s", body)
			}
		}
	}
	log := logs.String()
	if n := strings.Count(log, "admin API write refused"); n != 18 {
		t.Errorf("%d refusals logged, want 18:\n%s", n, log)
	}
	for _, want := range []string{"remote=127.0.0.1:", "method=DELETE", "path=/api/v1/silences/s1", "path=/api/v1/alerts/a1b2/ack"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "s3cr3t") || strings.Contains(log, "Bearer wrong") {
		t.Errorf("the log holds what the client sent:\n%s", log)
	}
	// The right token, in any case of the scheme; reads without one.
	if code, _, body := call(t, srv, "POST", silencesPath, "Bearer "+token, writes[0].body); code != http.StatusCreated {
		t.Errorf("POST with the token: %d %s", code, body)
	}
	if code, _, body := call(t, srv, "POST", alertsPath+"a1b2/ack", "bearer "+token, ""); code != http.StatusOK {
		t.Errorf("ack with the token (scheme in lower case): %d %s", code, body)
	}
	for _, path := range []string{silencesPath, statusPath} {
		if code, _, body := call(t, srv, "GET", path, "", ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, code, body)
		}
	}

	// No token: loopback takes writes from anyone, anything else none.
	open, _ := apiServer(t, &fakeControl{}, writePolicy{loopback: true})
	if code, _, body := call(t, open, "POST", silencesPath, "", writes[0].body); code != http.StatusCreated {
		t.Errorf("loopback without a token: %d %s", code, body)
	}
	closed, _ := apiServer(t, &fakeControl{}, writePolicy{})
	if code, _, body := call(t, closed, "POST", silencesPath, "", writes[0].body); code != http.StatusUnauthorized || !strings.Contains(body, "admin.token_file") {
		t.Errorf("no token and not loopback: %d %s; want 401 naming admin.token_file", code, body)
	}
}

// TestPolicyOf: the daemon's write policy follows the config: a token
// whenever one is set; without one, writes only on a loopback listen
// (the default).
func TestPolicyOf(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want writePolicy
	}{
		{"state_dir: s\n", writePolicy{loopback: true, host: "127.0.0.1"}}, // listen defaults to 127.0.0.1:9464
		{"state_dir: s\nlisten: localhost:9\n", writePolicy{loopback: true, host: "localhost"}},
		{"state_dir: s\nlisten: \"[::1]:9\"\nadmin: {token: t0k}\n", writePolicy{token: "t0k", loopback: true, host: "::1"}},
		{"state_dir: s\nlisten: 192.0.2.1:9\nadmin: {token: t0k}\n", writePolicy{token: "t0k", host: "192.0.2.1"}},
		{"state_dir: s\nlisten: admin.lan:9\nadmin: {token: \" t0k\"}\n", writePolicy{token: " t0k", host: "admin.lan"}},
		{"state_dir: s\nlisten: \":9\"\nadmin: {token: t0k}\n", writePolicy{token: "t0k"}},
		{"state_dir: s\nlisten: \"\"\n", writePolicy{}},
	} {
		cfg, err := config.Parse("c.yaml", []byte(tc.src), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := policyOf(cfg); got != tc.want {
			t.Errorf("%q: policy %+v, want %+v", tc.src, got, tc.want)
		}
	}
	if cfg, err := config.Parse("c.yaml", []byte("state_dir: s\n"), func(string) (string, bool) { return "", false }); err != nil || cfg.Listen != config.DefaultListen || !config.IsLoopbackListen(cfg.Listen) {
		t.Errorf("default listen %q (%v), want loopback %s", cfg.Listen, err, config.DefaultListen)
	}
}

// TestSilencesAPI: add, list, expire and their errors, as JSON.
func TestSilencesAPI(t *testing.T) {
	ctl := &fakeControl{}
	srv, _ := apiServer(t, ctl, writePolicy{loopback: true})
	start := time.Now()

	code, _, body := call(t, srv, "POST", silencesPath, "", `{"matchers": ["rule=liquidation-near", "symbol=~\"BTC.*\""], "duration": "2h", "author": "ann", "comment": "handling it"}`)
	var got silenceJSON
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("POST: %d %s; want 201 and the silence", code, body)
	}
	if got.ID != "s1" || strings.Join(got.Matchers, " ") != `rule=liquidation-near symbol=~BTC.*` || got.Author != "ann" || got.Comment != "handling it" ||
		got.EndsAt.Sub(got.StartsAt) != 2*time.Hour || got.StartsAt.Before(start.Add(-time.Second)) {
		t.Errorf("stored silence %+v", got)
	}
	ends := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	if code, _, body := call(t, srv, "POST", silencesPath, "", fmt.Sprintf(`{"matchers": ["account=main"], "ends_at": %q}`, ends.Format(time.RFC3339))); code != http.StatusCreated || !strings.Contains(body, ends.Format(time.RFC3339)) {
		t.Errorf("POST with ends_at: %d %s", code, body)
	}

	code, _, body = call(t, srv, "GET", silencesPath, "", "")
	var list silencesJSON
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Silences) != 2 || list.Silences[0].ID != "s1" {
		t.Errorf("GET: %d %s; want both silences", code, body)
	}
	if code, _, body := call(t, srv, "DELETE", silencesPath+"/s1", "", ""); code != http.StatusOK || !strings.Contains(body, `"id": "s1"`) {
		t.Errorf("DELETE s1: %d %s; want 200 and the silence", code, body)
	}
	if len(ctl.Silences()) != 1 {
		t.Errorf("after expiring s1: %+v", ctl.Silences())
	}

	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"unknown id", "DELETE", silencesPath + "/nope", "", 404, `silence \"nope\": not found`},
		{"mute window", "DELETE", silencesPath + "/window:weekend", "", 400, "mute window of the config"},
		{"bad matcher", "POST", silencesPath, `{"matchers": ["colour=red"], "duration": "1h"}`, 400, `matcher \"colour=red\": unknown label \"colour\"`},
		{"bad regexp", "POST", silencesPath, `{"matchers": ["symbol=~(BTC"], "duration": "1h"}`, 400, "bad regexp"},
		{"no matchers", "POST", silencesPath, `{"duration": "1h"}`, 400, "no matcher"},
		{"bad duration", "POST", silencesPath, `{"matchers": ["rule=x"], "duration": "2 hours"}`, 400, `duration \"2 hours\": want a positive Go duration`},
		{"negative duration", "POST", silencesPath, `{"matchers": ["rule=x"], "duration": "-1h"}`, 400, "want a positive Go duration"},
		{"no duration", "POST", silencesPath, `{"matchers": ["rule=x"]}`, 400, "no duration"},
		{"both", "POST", silencesPath, `{"matchers": ["rule=x"], "duration": "1h", "ends_at": "2099-01-01T00:00:00Z"}`, 400, "not both"},
		{"ended", "POST", silencesPath, `{"matchers": ["rule=x"], "ends_at": "2001-01-01T00:00:00Z"}`, 400, "past"},
		{"ends before start", "POST", silencesPath, `{"matchers": ["rule=x"], "starts_at": "2099-01-02T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}`, 400, "before it starts"},
		{"a year and a day", "POST", silencesPath, `{"matchers": ["rule=x"], "duration": "8784h"}`, 400, "at most 365 days"},
		{"ends in ten years", "POST", silencesPath, `{"matchers": ["rule=x"], "starts_at": "2099-01-01T00:00:00Z", "ends_at": "2109-01-01T00:00:00Z"}`, 400, "at most 365 days"},
		{"typo", "POST", silencesPath, `{"matcher": ["rule=x"], "duration": "1h"}`, 400, `unknown field \"matcher\"`},
		{"not JSON", "POST", silencesPath, `rule=x`, 400, "bad request body"},
		{"empty", "POST", silencesPath, ``, 400, "empty request body"},
		{"too big", "POST", silencesPath, `{"comment": "` + strings.Repeat("x", maxRequestBytes) + `"}`, 413, "request body over"},
		{"unknown endpoint", "GET", "/api/v1/nope", "", 404, "no endpoint GET /api/v1/nope"},
		{"wrong method", "PUT", silencesPath, "{}", 404, "no endpoint PUT"},
	} {
		code, _, body := call(t, srv, tc.method, tc.path, "", tc.body)
		var e apiError
		if code != tc.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d and an error with %q", tc.name, code, body, tc.code, tc.want)
		}
	}
}

// TestAckAPI: an ack answers the acknowledged alert with its account; an
// unknown id is 404; the body may be empty.
func TestAckAPI(t *testing.T) {
	ctl := &fakeControl{}
	srv, _ := apiServer(t, ctl, writePolicy{loopback: true})
	code, _, body := call(t, srv, "POST", alertsPath+"a1b2/ack", "", `{"author": "ann", "comment": "adding margin"}`)
	var got ackedJSON
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("ack: %d %s", code, body)
	}
	if got.Account != "main" || got.ID != "a1b2" || got.State != "acked" || got.AckedBy != "ann" || got.AckComment != "adding margin" || got.AckedAt == nil {
		t.Errorf("acked alert %+v", got)
	}
	if code, _, body := call(t, srv, "POST", alertsPath+"a1b2/ack", "", ""); code != http.StatusOK {
		t.Errorf("ack without a body: %d %s", code, body)
	}
	if code, _, body := call(t, srv, "POST", alertsPath+"zz/ack", "", `{}`); code != http.StatusNotFound || !strings.Contains(body, `alert \"zz\": not found`) {
		t.Errorf("unknown alert: %d %s; want 404", code, body)
	}
	if code, _, body := call(t, srv, "POST", alertsPath+"a1b2/ack", "", `{"who": "x"}`); code != http.StatusBadRequest {
		t.Errorf("ack with an unknown field: %d %s; want 400", code, body)
	}
	if strings.Join(ctl.acked, "|") != "a1b2 ann adding margin|a1b2  " {
		t.Errorf("acks reaching the daemon: %q", ctl.acked)
	}
}

// builtinControl answers Ack as watcher.Ack does for one of the daemon's
// built-in alerts (data-stale, notifier-failing, config-reload-failed).
type builtinControl struct{ fakeControl }

func (b *builtinControl) Ack(id, _, _ string) (rules.State, error) {
	return rules.State{}, fmt.Errorf("%s is the built-in alert data-stale, which %w: it ends when the daemon recovers", id, watcher.ErrNotAckable)
}

// TestAckBuiltinAlertIsConflict: acking a built-in alert is the client's
// mistake, not the daemon's failure: 409 with the watcher's reason, no
// ERROR in the log; the CLI prints the reason and exits 1.
func TestAckBuiltinAlertIsConflict(t *testing.T) {
	srv, logs := apiServer(t, &builtinControl{}, writePolicy{loopback: true})
	code, _, body := call(t, srv, "POST", alertsPath+"self1/ack", "", "{}")
	var e apiError
	if code != http.StatusConflict || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "self1 is the built-in alert data-stale, which cannot be acknowledged") {
		t.Errorf("ack of a built-in alert: %d %s; want 409 and the reason", code, body)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("logged as a failure:\n%s", logs.String())
	}
	cfg := controlConfig(t, strings.TrimPrefix(srv.URL, "http://"), "")
	if code, out, errOut := runCLI("ack", "-config", cfg, "self1"); code != exitFailure || out != "" ||
		errOut != "marginwatch ack: self1 is the built-in alert data-stale, which cannot be acknowledged: it ends when the daemon recovers\n" {
		t.Errorf("marginwatch ack self1: exit %d %q %q", code, out, errOut)
	}
}

// TestStatusSilencedAndAcked: the status document shows the silences and
// each alert's control state.
func TestStatusSilencedAndAcked(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := func(rule string) rules.Key { return rules.Key{Account: "main", Rule: rule} }
	view := func(time.Time) []watcher.AccountStatus {
		acct := metrics.Compute("main", "simulated", nil, &exchanges.Snapshot{Time: now}, nil, now)
		return []watcher.AccountStatus{{Name: "main", Exchange: "simulated", Latest: acct, LastSuccess: now,
			Alerts: []rules.State{
				{Key: key("a"), Phase: rules.Active, ID: "1", Severity: notifiers.Warning},
				{Key: key("b"), Phase: rules.Active, ID: "2", Severity: notifiers.Warning},
				{Key: key("c"), Phase: rules.Active, ID: "3", Severity: notifiers.Warning, Acked: now, AckedBy: "ann", AckComment: "on it"},
				{Key: key("d"), Phase: rules.Active, ID: "4", Severity: notifiers.Warning, Muted: true},
				{Key: key("e"), Phase: rules.Pending, Severity: notifiers.Warning},
				// Pending under a silence and muted: it is not firing yet.
				{Key: key("f"), Phase: rules.Pending, Severity: notifiers.Warning, Muted: true},
			},
			Silenced: map[rules.Key]string{key("b"): "s9", key("f"): "s9"}}}
	}
	ctl := &fakeControl{view: view}
	m, _ := silence.ParseMatchers([]string{"rule=b"})
	ctl.silences = []silence.Silence{{ID: "s9", Matchers: m, StartsAt: now, EndsAt: now.Add(time.Hour), Author: "bob"}}
	rec := httptest.NewRecorder()
	statusHandler(ctl, func() time.Time { return now }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, statusPath, nil))
	var doc statusJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, a := range doc.Accounts[0].Alerts {
		states = append(states, a.Rule+":"+a.State+":"+a.SilencedBy+":"+a.AckedBy)
	}
	if got := strings.Join(states, " "); got != "a:firing:: b:silenced:s9: c:acked::ann d:silenced:: e:pending:: f:pending:s9:" {
		t.Errorf("alert states %q", got)
	}
	if len(doc.Silences) != 1 || doc.Silences[0].ID != "s9" || doc.Silences[0].Matchers[0] != "rule=b" {
		t.Errorf("silences %+v", doc.Silences)
	}
	if !strings.Contains(rec.Body.String(), `"ack_comment": "on it"`) {
		t.Errorf("no ack_comment:\n%s", rec.Body.String())
	}

	// The table: each alert's state, who silenced or acked it, the silences.
	var b bytes.Buffer
	doc.via = "127.0.0.1:9464"
	printStatus(&b, doc, now.Add(time.Minute), false)
	table := b.String()
	for _, want := range []string{
		"  SILENCED warning b since ", " UTC\n           id 2 · silenced by s9\n",
		"  ACKED    warning c since ", " UTC\n           id 3 · acked by ann: on it\n",
		"  SILENCED warning d since ", " UTC\n           id 4\n  PENDING  warning e since",
		"\nSilences:\n  ID  MATCHERS  ENDS IN  AUTHOR  COMMENT\n  s9  rule=b    59m      bob\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}
