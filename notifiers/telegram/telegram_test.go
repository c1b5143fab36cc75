package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// testToken looks like a real token; it must never show in an error or log.
const testToken = "7012345678:AAH-sEcReT_tok3n-xyzXYZ0123456789abcd"

const testChat = "-1001234567890"

func testConfig(apiURL string) config.Notifier {
	return config.Notifier{
		Name: "phone", Type: "telegram",
		Token: config.Secret(testToken), ChatID: testChat, APIURL: apiURL,
		Timeout: 5 * time.Second, MaxAge: time.Hour,
	}
}

// noWait is a Wait that records the pauses asked for instead of sleeping.
type noWait struct {
	mu    sync.Mutex
	waits []time.Duration
	// then runs on every wait, e.g. to change the peer between parts.
	then func()
}

func (w *noWait) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.waits = append(w.waits, d)
	then := w.then
	w.mu.Unlock()
	if then != nil {
		then()
	}
	return ctx.Err()
}

func newTest(t *testing.T, cfg func(*config.Notifier), opts Options) (*Notifier, *fakeAPI) {
	t.Helper()
	api := newFakeAPI(t, testToken, testChat)
	c := testConfig(api.srv.URL)
	if cfg != nil {
		cfg(&c)
	}
	if opts.Wait == nil {
		opts.Wait = (&noWait{}).wait
	}
	n, err := New(c, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n, api
}

func TestConformance(t *testing.T) {
	notifiertest.Run(t, notifiertest.Setup{
		New: func(t *testing.T, timeout time.Duration, logger *slog.Logger) (notifiers.Notifier, notifiertest.Peer) {
			n, api := newTest(t, func(c *config.Notifier) { c.Timeout = timeout }, Options{Logger: logger})
			return n, api
		},
		Secrets: []string{testToken, strings.SplitN(testToken, ":", 2)[1]},
	})
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*config.Notifier)
		want string
	}{
		{"no token", func(c *config.Notifier) { c.Token = "" }, `telegram notifier "phone": token is required`},
		{"blank token", func(c *config.Notifier) { c.Token = " " }, `telegram notifier "phone": token is required`},
		{"no chat", func(c *config.Notifier) { c.ChatID = "" }, `telegram notifier "phone": chat_id is required`},
		{"bad api_url", func(c *config.Notifier) { c.APIURL = "ftp://example.com" }, `telegram notifier "phone": api_url must be an http(s) URL`},
		{"relative api_url", func(c *config.Notifier) { c.APIURL = "/bot" }, `telegram notifier "phone": api_url must be an http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig("")
			tt.cfg(&c)
			_, err := New(c, Options{})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New: err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestErrors checks how each answer Telegram (or a proxy in front of it)
// gives is classified, and that no error shows the token.
func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantRetry bool
		wantAfter time.Duration // 0: no RetryAfterError
		wantIn    string
	}{
		{"chat not found", 400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`, false, 0, "chat not found"},
		{"bad entities", 400, `{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"x\""}`, false, 0, "can't parse entities"},
		{"migrated", 400, `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}`, false, 0, "set chat_id to -1009876543210"},
		{"unauthorized", 401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, false, 0, "token was rejected"},
		{"blocked", 403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`, false, 0, "bot was blocked"},
		{"not found", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`, false, 0, "Not Found"},
		{"rate limited", 429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}`, true, 17 * time.Second, "retry after 17"},
		{"rate limited, no hint", 429, `{"ok":false,"error_code":429,"description":"Too Many Requests"}`, true, 0, "Too Many Requests"},
		{"internal error", 500, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`, true, 0, "Internal Server Error"},
		{"proxy 502 page", 502, `<html><body>Bad Gateway</body></html>`, true, 0, "HTTP 502 Bad Gateway"},
		{"proxy 504 page", 504, `<html><body>Gateway Timeout</body></html>`, true, 0, "HTTP 504"},
		{"proxy 408 page", 408, `<html>timeout</html>`, true, 0, "HTTP 408"},
		{"proxy 403 page", 403, `<html>denied</html>`, false, 0, "HTTP 403"},
		{"body echoes the token", 502, `<html>upstream /bot` + testToken + `/sendMessage failed</html>`, true, 0, "/bot<token>/sendMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			n, api := newTest(t, nil, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			api.answer(&canned{status: tt.status, body: tt.body})
			retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
			if err == nil {
				t.Fatal("Notify: no error")
			}
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v (err: %v)", retry, tt.wantRetry, err)
			}
			after, ok := notifiers.RetryAfter(err)
			if tt.wantAfter == 0 && ok || tt.wantAfter != 0 && after != tt.wantAfter {
				t.Errorf("RetryAfter = %v, %v; want %v (err: %v)", after, ok, tt.wantAfter, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q lacks %q", err, tt.wantIn)
			}
			if !strings.HasPrefix(err.Error(), "telegram: message 1/1 to chat "+testChat+": ") {
				t.Errorf("error %q lacks the telegram/chat context", err)
			}
			for _, s := range []string{testToken, "sEcReT"} {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Errorf("token leaked: err %q, logs %q", err, logs.String())
				}
			}
		})
	}
}

// TestNetworkError: net/http puts the request URL, token included, into
// its errors; a refused connection must not leak it.
func TestNetworkError(t *testing.T) {
	n, api := newTest(t, nil, Options{})
	api.srv.Close()
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if err == nil || !retry {
		t.Fatalf("Notify to a closed server: retry=%v err=%v; want a retryable error", retry, err)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "sEcReT") {
		t.Errorf("token leaked: %v", err)
	}
	if !strings.Contains(err.Error(), "connect") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestTimeoutIsContextError(t *testing.T) {
	n, api := newTest(t, func(c *config.Notifier) { c.Timeout = 50 * time.Millisecond }, Options{})
	api.SetOutcome(notifiertest.Hang, 0)
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Notify against a hanging peer: retry=%v err=%v; want retryable, wrapping context.DeadlineExceeded", retry, err)
	}
}

func alert(sev notifiers.Severity, status notifiers.Status, kind notifiers.Kind, id string) notifiers.Alert {
	return notifiers.Alert{
		ID: id, Status: status, Kind: kind, Severity: sev, Rule: "r", Account: "main",
		Metric: "margin_ratio", Value: 0.8, Threshold: 0.7, Op: "above", Summary: "s",
	}
}

// TestRequestFields checks the parameters of sendMessage: HTML, no link
// preview, the forum topic, and which messages are silent.
func TestRequestFields(t *testing.T) {
	crit := alert(notifiers.Critical, notifiers.Firing, notifiers.KindFiring, "c")
	warn := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, "w")
	info := alert(notifiers.Info, notifiers.Firing, notifiers.KindRepeat, "i")
	critResolved := alert(notifiers.Critical, notifiers.Resolved, notifiers.KindResolved, "c")
	critTest := alert(notifiers.Critical, notifiers.Firing, notifiers.KindTest, "")
	// A liquidation rings even at warning severity and with silent_warnings;
	// a closed position does not.
	liquidated := alert(notifiers.Warning, notifiers.Resolved, notifiers.KindClosed, "l")
	liquidated.Reason = notifiers.ReasonLiquidated
	closed := alert(notifiers.Critical, notifiers.Resolved, notifiers.KindClosed, "k")
	closed.Reason = notifiers.ReasonClosed
	tests := []struct {
		name       string
		silent     bool
		thread     int
		alerts     []notifiers.Alert
		wantSilent bool
	}{
		{"critical, silent off", false, 0, []notifiers.Alert{crit}, false},
		{"warning, silent off", false, 0, []notifiers.Alert{warn}, false},
		{"critical, silent on", true, 0, []notifiers.Alert{crit, warn}, false},
		{"warning, silent on", true, 0, []notifiers.Alert{warn, info}, true},
		{"info, silent on", true, 0, []notifiers.Alert{info}, true},
		{"resolved critical, silent on", true, 0, []notifiers.Alert{critResolved}, true},
		{"critical test, silent on", true, 0, []notifiers.Alert{critTest}, false},
		{"liquidated warning, silent on", true, 0, []notifiers.Alert{liquidated}, false},
		{"liquidated after a warning, silent on", true, 0, []notifiers.Alert{warn, liquidated}, false},
		{"closed critical, silent on", true, 0, []notifiers.Alert{closed}, true},
		{"closed critical, silent off", false, 0, []notifiers.Alert{closed}, false},
		{"forum topic", false, 42, []notifiers.Alert{warn}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, api := newTest(t, func(c *config.Notifier) {
				c.SilentWarnings = tt.silent
				c.MessageThreadID = tt.thread
			}, Options{})
			if retry, err := n.Notify(context.Background(), tt.alerts...); err != nil {
				t.Fatalf("Notify: retry=%v err=%v", retry, err)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			f := reqs[0].fields
			want := map[string]string{
				"chat_id":              testChat,
				"parse_mode":           "HTML",
				"link_preview_options": `{"is_disabled":true}`,
				"disable_notification": "",
				"message_thread_id":    "",
				"reply_parameters":     "",
			}
			if tt.wantSilent {
				want["disable_notification"] = "true"
			}
			if tt.thread != 0 {
				want["message_thread_id"] = fmt.Sprint(tt.thread)
			}
			for k, v := range want {
				if f[k] != v {
					t.Errorf("%s = %q, want %q", k, f[k], v)
				}
			}
		})
	}
}

// TestSplit sends 60 alerts with long summaries: they cannot fit one
// message, so several go out, each within the limit (the fake API enforces
// it), each alert whole and in order, every alert exactly once.
func TestSplit(t *testing.T) {
	var alerts []notifiers.Alert
	for i := range 60 {
		a := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, fmt.Sprintf("id%02d", i))
		a.Rule = fmt.Sprintf("rule-%02d", i)
		a.Symbol = "ETHUSDT"
		a.Side = "short"
		a.Summary = fmt.Sprintf("alert %02d: <%s>", i, strings.Repeat("&", 150))
		a.Runbook = "cut size"
		alerts = append(alerts, a)
	}
	w := &noWait{}
	n, api := newTest(t, nil, Options{Wait: w.wait})
	if retry, err := n.Notify(context.Background(), alerts...); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	msgs := api.Delivered()
	// Each alert is ~900 characters of HTML (each & is "&amp;"): 4 fit in
	// the 4,064 left after the footer reserve, 5 do not.
	if len(msgs) != 15 {
		t.Fatalf("%d messages, want 15", len(msgs))
	}
	var all strings.Builder
	for k, m := range msgs {
		if got := len([]rune(m)); got > 4096 {
			t.Errorf("message %d has %d characters", k+1, got)
		}
		if want := fmt.Sprintf("\n\n<i>(%d/15)</i>", k+1); !strings.HasSuffix(m, want) {
			t.Errorf("message %d does not end with %q", k+1, want)
		}
		// Every alert in a message is whole: its head line starts it and
		// its runbook line ends it.
		body := strings.TrimSuffix(m, fmt.Sprintf("\n\n<i>(%d/15)</i>", k+1))
		for _, block := range strings.Split(body, "\n\n") {
			if !strings.HasPrefix(block, "🟠 <b>WARNING</b>") || !strings.HasSuffix(block, "Runbook: cut size") {
				t.Errorf("message %d holds a partial alert:\n%s", k+1, block)
			}
		}
		all.WriteString(m)
	}
	last := -1
	for i := range 60 {
		rule := fmt.Sprintf("<b>rule-%02d</b>", i)
		if c := strings.Count(all.String(), rule); c != 1 {
			t.Errorf("%s appears %d times, want 1", rule, c)
		}
		if at := strings.Index(all.String(), rule); at < last {
			t.Errorf("%s is out of order", rule)
		} else {
			last = at
		}
	}
	if len(w.waits) != 14 {
		t.Errorf("%d pauses between parts, want 14", len(w.waits))
	}
	for _, d := range w.waits {
		if d != time.Second {
			t.Errorf("paused %v between parts, want 1s", d)
		}
	}
}

// TestPartialFailure: when a later part fails, Notify reports that part's
// failure (retryable here), after the earlier part went out.
func TestPartialFailure(t *testing.T) {
	var alerts []notifiers.Alert
	for i := range 6 {
		a := alert(notifiers.Critical, notifiers.Firing, notifiers.KindFiring, fmt.Sprint(i))
		a.Summary = strings.Repeat("x", 1400)
		alerts = append(alerts, a)
	}
	var api *fakeAPI
	w := &noWait{then: func() { api.SetOutcome(notifiertest.RateLimited, 3*time.Second) }}
	n, api := newTest(t, nil, Options{Wait: w.wait})
	retry, err := n.Notify(context.Background(), alerts...)
	if err == nil || !retry {
		t.Fatalf("Notify: retry=%v err=%v; want a retryable error", retry, err)
	}
	if after, _ := notifiers.RetryAfter(err); after != 3*time.Second {
		t.Errorf("RetryAfter = %v, want 3s", after)
	}
	if !strings.HasPrefix(err.Error(), "telegram: message 2/3 to chat") {
		t.Errorf("error %q does not name the failed part", err)
	}
	if got := len(api.Delivered()); got != 1 {
		t.Errorf("%d messages delivered before the failure, want 1", got)
	}
}

func TestCancelledBetweenParts(t *testing.T) {
	var alerts []notifiers.Alert
	for i := range 6 {
		a := alert(notifiers.Critical, notifiers.Firing, notifiers.KindFiring, fmt.Sprint(i))
		a.Summary = strings.Repeat("x", 1400)
		alerts = append(alerts, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &noWait{then: cancel}
	n, api := newTest(t, nil, Options{Wait: w.wait})
	retry, err := n.Notify(ctx, alerts...)
	if !retry || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify: retry=%v err=%v; want retryable context.Canceled", retry, err)
	}
	if got := len(api.Delivered()); got != 1 {
		t.Errorf("%d messages delivered, want 1", got)
	}
}

// TestThreads: an incident's first message is remembered, and its later
// notices reply to it; a message about several incidents replies to none.
func TestThreads(t *testing.T) {
	th := &notifiertest.Threads{}
	n, api := newTest(t, nil, Options{Threads: th})
	fire := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, "inc1")
	other := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, "inc2")
	escalate := alert(notifiers.Critical, notifiers.Firing, notifiers.KindEscalated, "inc1")
	resolve := alert(notifiers.Critical, notifiers.Resolved, notifiers.KindResolved, "inc1")
	test := alert(notifiers.Critical, notifiers.Firing, notifiers.KindTest, "inc1")
	fire3 := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, "inc3")
	liquidated := alert(notifiers.Warning, notifiers.Resolved, notifiers.KindClosed, "inc3")
	liquidated.Reason = notifiers.ReasonLiquidated

	steps := []struct {
		alerts    []notifiers.Alert
		wantReply string
	}{
		{[]notifiers.Alert{fire}, ""}, // message 101
		{[]notifiers.Alert{escalate}, `{"message_id":101,"allow_sending_without_reply":true}`},
		{[]notifiers.Alert{escalate, other}, ""}, // message 103, the first of inc2
		{[]notifiers.Alert{resolve}, `{"message_id":101,"allow_sending_without_reply":true}`},
		{[]notifiers.Alert{test}, ""},
		{[]notifiers.Alert{fire3}, ""}, // message 106
		// A closing notice replies in the incident's thread, as a resolution does.
		{[]notifiers.Alert{liquidated}, `{"message_id":106,"allow_sending_without_reply":true}`},
	}
	for i, s := range steps {
		if retry, err := n.Notify(context.Background(), s.alerts...); err != nil {
			t.Fatalf("step %d: retry=%v err=%v", i, retry, err)
		}
		reqs := api.requests()
		if got := reqs[len(reqs)-1].fields["reply_parameters"]; got != s.wantReply {
			t.Errorf("step %d: reply_parameters = %q, want %q", i, got, s.wantReply)
		}
	}
	want := map[string]string{"phone/inc1": "101", "phone/inc2": "103", "phone/inc3": "106"}
	if fmt.Sprint(th.Refs()) != fmt.Sprint(want) {
		t.Errorf("threads = %v, want %v", th.Refs(), want)
	}
}

// TestThreadStoreFailure: a message that went out is a success even if its
// thread reference cannot be stored; the failure is logged.
func TestThreadStoreFailure(t *testing.T) {
	var logs bytes.Buffer
	th := &notifiertest.Threads{Err: errors.New("disk full")}
	n, _ := newTest(t, nil, Options{Threads: th, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if retry, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	if !strings.Contains(logs.String(), "disk full") || !strings.Contains(logs.String(), "notifier=phone") {
		t.Errorf("logs lack the failure: %q", logs.String())
	}
}

// TestAPIURL: a trailing slash on api_url does not produce "//bot…".
func TestAPIURL(t *testing.T) {
	n, api := newTest(t, func(c *config.Notifier) { c.APIURL += "/" }, Options{})
	if retry, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	if len(api.Delivered()) != 1 {
		t.Fatalf("nothing delivered")
	}
}

// TestNoAlerts: nothing to say sends nothing.
func TestNoAlerts(t *testing.T) {
	n, api := newTest(t, nil, Options{})
	if retry, err := n.Notify(context.Background()); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	if len(api.requests()) != 0 {
		t.Errorf("a message was sent for no alerts")
	}
}

// The fake must accept what Telegram accepts and refuse what it refuses,
// or the tests above prove nothing.
func TestFakeAPIParseHTML(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"<b>a</b> &lt;x&gt; &amp; &quot;q&quot; \"raw\"", `a <x> & "q" "raw"`, true},
		{"<code>1</code> &#916;&#x394;", "1 ΔΔ", true},
		{"<b>a", "", false},
		{"<b>a</i>", "", false},
		{"a < b", "", false},
		{"a > b", "", false},
		{"a & b", "", false},
		{"<script>x</script>", "", false},
		{"&nbsp;", "", false},
	}
	for _, tt := range tests {
		got, err := parseHTML(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseHTML(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestFakeAPIEncodings: the fake reads JSON bodies too, as the Bot API does.
func TestFakeAPIEncodings(t *testing.T) {
	api := newFakeAPI(t, testToken, testChat)
	body, _ := json.Marshal(map[string]any{"chat_id": testChat, "text": "<b>hi</b>", "parse_mode": "HTML", "disable_notification": true})
	resp, err := http.Post(api.srv.URL+"/bot"+testToken+"/sendMessage", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := api.requests()
	if resp.StatusCode != 200 || len(reqs) != 1 || reqs[0].fields["disable_notification"] != "true" {
		t.Fatalf("status %d, requests %v", resp.StatusCode, reqs)
	}
}
