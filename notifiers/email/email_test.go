package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

const (
	testUser     = "alerts@example.com"
	testPassword = "pw-7Qz!x9-never-print"
)

// newTestNotifier returns a notifier for srv with the test login, trusting
// the test certificate.
func newTestNotifier(t *testing.T, srv *server, mode string, timeout time.Duration, logger *slog.Logger) *Notifier {
	t.Helper()
	cfg := config.Notifier{
		Name: "mail", Type: "email", SMTP: srv.addr, TLS: mode,
		Username: testUser, Password: testPassword,
		From:    "marginwatch <marginwatch@example.com>",
		To:      []string{"trader@example.com", "desk@example.com"},
		Timeout: timeout,
	}
	n, err := New(cfg, Options{
		Logger:    logger,
		TLSConfig: &tls.Config{RootCAs: trustedPool(t)},
		Location:  time.UTC,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func TestConformance(t *testing.T) {
	for _, mode := range []string{TLSStartTLS, TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			notifiertest.Run(t, notifiertest.Setup{
				New: func(t *testing.T, timeout time.Duration, logger *slog.Logger) (notifiers.Notifier, notifiertest.Peer) {
					srv := startServer(t, serverConfig{mode: mode, username: testUser, password: testPassword})
					return newTestNotifier(t, srv, mode, timeout, logger), srv
				},
				Secrets:     []string{testPassword},
				NoRetryHint: true,
			})
		})
	}
}

// TestDelivery sends through a real server in every TLS mode and checks
// what arrives: envelope, login, headers, both MIME parts.
func TestDelivery(t *testing.T) {
	for _, mode := range []string{TLSStartTLS, TLSImplicit, TLSNone} {
		t.Run(mode, func(t *testing.T) {
			srv := startServer(t, serverConfig{mode: mode, username: testUser, password: testPassword})
			n := newTestNotifier(t, srv, mode, 5*time.Second, nil)
			if retry, err := n.Notify(context.Background(), notifiertest.Alerts()...); err != nil {
				t.Fatalf("Notify: retry=%v err=%v", retry, err)
			}
			logins, envelope, _ := srv.record()
			if want := []string{testUser}; !slices.Equal(logins, want) {
				t.Errorf("logins = %q, want %q", logins, want)
			}
			wantEnv := [][]string{{"marginwatch@example.com", "trader@example.com", "desk@example.com"}}
			if len(envelope) != 1 || !slices.Equal(envelope[0], wantEnv[0]) {
				t.Errorf("envelope = %q, want %q", envelope, wantEnv)
			}
			msgs := srv.messages(t)
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			// The first alert is an escalation: a reply in its incident's thread.
			wantHeaders := map[string]string{
				"Subject":        "marginwatch: liquidation-near BTCUSDT long on main",
				"From":           `"marginwatch" <marginwatch@example.com>`,
				"To":             "<trader@example.com>, <desk@example.com>",
				"Date":           "Sat, 28 Nov 2026 03:16:00 +0000",
				"Message-ID":     "<notice-" + noticeHash(notifiertest.Alerts()) + "@marginwatch>",
				"In-Reply-To":    "<incident-a1b2c3d4e5f60718@marginwatch> <incident-0f1e2d3c4b5a6978@marginwatch>",
				"References":     "<incident-a1b2c3d4e5f60718@marginwatch> <incident-0f1e2d3c4b5a6978@marginwatch>",
				"Auto-Submitted": "auto-generated",
				"Importance":     "high",
			}
			for h, want := range wantHeaders {
				if got := m.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if m.MediaType != "multipart/alternative" {
				t.Errorf("Content-Type = %q, want multipart/alternative", m.MediaType)
			}
			view := newMessage(notifiertest.Alerts(), time.UTC)
			if got, want := m.Parts["text/plain"], view.text(); got != want {
				t.Errorf("text part:\n%s\nwant:\n%s", got, want)
			}
			html, err := view.html()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Parts["text/html"]; got != html {
				t.Errorf("html part:\n%s\nwant:\n%s", got, html)
			}
		})
	}
}

// TestThreading sends an incident's whole life (first notice, escalation,
// repeat, eased, closed by a liquidation) through a real SMTP server and
// reads the mails back with net/mail: one thread rooted at the first, and
// one subject throughout, since Gmail threads only mails whose subjects
// match. The status is the body's first line instead.
func TestThreading(t *testing.T) {
	srv := startServer(t, serverConfig{mode: TLSStartTLS, username: testUser, password: testPassword})
	n := newTestNotifier(t, srv, TLSStartTLS, 5*time.Second, nil)
	base := notifiertest.Alerts()[0]
	kinds := []notifiers.Kind{notifiers.KindFiring, notifiers.KindEscalated, notifiers.KindRepeat, notifiers.KindEased, notifiers.KindResolved, notifiers.KindClosed}
	firstLines := []string{
		"CRITICAL liquidation-near - firing",
		"CRITICAL liquidation-near - escalated to critical",
		"CRITICAL liquidation-near - still firing (repeat)",
		"CRITICAL liquidation-near - eased to critical, still firing",
		"RESOLVED liquidation-near - resolved (was critical)",
		"LIQUIDATED liquidation-near - the exchange liquidated the position (was critical)",
	}
	var sent []notifiers.Alert
	for i, kind := range kinds {
		a := base
		a.Kind, a.At = kind, base.StartsAt.Add(time.Duration(i)*10*time.Minute)
		switch kind {
		case notifiers.KindResolved:
			a.Status = notifiers.Resolved
		case notifiers.KindClosed:
			a.Status, a.Reason = notifiers.Resolved, notifiers.ReasonLiquidated
		}
		sent = append(sent, a)
		if _, err := n.Notify(context.Background(), a); err != nil {
			t.Fatalf("Notify %s: %v", kind, err)
		}
	}
	const root = "<incident-a1b2c3d4e5f60718@marginwatch>"
	const subj = "marginwatch: liquidation-near BTCUSDT long on main"
	msgs := srv.messages(t)
	if len(msgs) != len(kinds) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(kinds))
	}
	ids := map[string]bool{}
	for i, m := range msgs {
		h := m.Header
		wantID, wantRef := "<notice-"+noticeHash(sent[i:i+1])+"@marginwatch>", root
		if i == 0 {
			wantID, wantRef = root, ""
		}
		got := []string{h.Get("Message-ID"), h.Get("In-Reply-To"), h.Get("References"), h.Get("Subject")}
		if want := []string{wantID, wantRef, wantRef, subj}; !slices.Equal(got, want) {
			t.Errorf("%s: id, in-reply-to, references, subject = %q, want %q", kinds[i], got, want)
		}
		if ids[wantID] {
			t.Errorf("%s: Message-ID %s used twice", kinds[i], wantID)
		}
		ids[wantID] = true
		if first, _, _ := strings.Cut(m.Parts["text/plain"], "\n"); first != firstLines[i] {
			t.Errorf("%s: body starts %q, want %q", kinds[i], first, firstLines[i])
		}
	}
	if got := msgs[len(msgs)-1].Header.Get("Importance"); got != "high" {
		t.Errorf("a liquidation's Importance = %q, want high", got)
	}
}

// TestThreadingSeveralIncidents: a mail about two incidents names both
// roots, so a later notice of either threads with it; its subject is its
// first incident's, the one thread Gmail can put it in.
func TestThreadingSeveralIncidents(t *testing.T) {
	srv := startServer(t, serverConfig{mode: TLSStartTLS, username: testUser, password: testPassword})
	n := newTestNotifier(t, srv, TLSStartTLS, 5*time.Second, nil)
	a, b := notifiertest.Alerts()[0], notifiertest.Alerts()[0]
	a.Kind = notifiers.KindFiring
	b.ID, b.Symbol, b.Kind = "e7e7e7e7e7e7e7e7", "ETHUSDT", notifiers.KindFiring
	bLater := b
	bLater.Kind, bLater.At = notifiers.KindRepeat, b.At.Add(time.Hour)
	for _, alerts := range [][]notifiers.Alert{{a, b}, {bLater}} {
		if _, err := n.Notify(context.Background(), alerts...); err != nil {
			t.Fatal(err)
		}
	}
	const rootA, rootB = "<incident-a1b2c3d4e5f60718@marginwatch>", "<incident-e7e7e7e7e7e7e7e7@marginwatch>"
	msgs := srv.messages(t)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	h0, h1 := msgs[0].Header, msgs[1].Header
	if got := h0.Get("Message-ID"); got != rootA {
		t.Errorf("first mail's Message-ID = %q, want %q", got, rootA)
	}
	if got := strings.Fields(h0.Get("References")); !slices.Equal(got, []string{rootB}) {
		t.Errorf("first mail's References = %q, want %q", got, rootB)
	}
	if got := h0.Get("Subject"); got != "marginwatch: liquidation-near BTCUSDT long on main" {
		t.Errorf("first mail's Subject = %q", got)
	}
	// B's later notice and the first mail share B's root.
	if got := strings.Fields(h1.Get("References")); !slices.Equal(got, []string{rootB}) || h1.Get("In-Reply-To") != rootB {
		t.Errorf("B's repeat references %q / %q, want %q", got, h1.Get("In-Reply-To"), rootB)
	}
	if got := h1.Get("Subject"); got != "marginwatch: liquidation-near ETHUSDT long on main" {
		t.Errorf("B's repeat Subject = %q", got)
	}
}

func TestHTMLEscaping(t *testing.T) {
	srv := startServer(t, serverConfig{mode: TLSStartTLS})
	cfg := config.Notifier{Name: "mail", SMTP: srv.addr, TLS: TLSStartTLS, From: "a@example.com", To: []string{"b@example.com"}, Timeout: 5 * time.Second}
	n, err := New(cfg, Options{TLSConfig: &tls.Config{RootCAs: trustedPool(t)}, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	a := notifiertest.Alerts()[0]
	a.Summary = `<script>alert("x")</script> & more`
	a.Rule = "rule<b>"
	if _, err := n.Notify(context.Background(), a); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	msgs := srv.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	html, text := msgs[0].Parts["text/html"], msgs[0].Parts["text/plain"]
	for _, bad := range []string{"<script>", "rule<b>"} {
		if strings.Contains(html, bad) {
			t.Errorf("html part contains unescaped %q:\n%s", bad, html)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more", "rule&lt;b&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("html part lacks %q:\n%s", want, html)
		}
	}
	if !strings.Contains(text, `<script>alert("x")</script> & more`) {
		t.Errorf("text part should carry the summary verbatim:\n%s", text)
	}
}

// TestFailures checks the verdict and the advice for what a user can get
// wrong: the password, the TLS mode, the certificate.
func TestFailures(t *testing.T) {
	tests := []struct {
		name       string
		server     serverConfig
		clientMode string
		password   string
		systemCAs  bool // trust the system roots, not the test certificate
		want       string
	}{
		{"wrong password", serverConfig{mode: TLSStartTLS}, TLSStartTLS, "wrong-" + testPassword, false, "login rejected (535)"},
		{"untrusted certificate", serverConfig{mode: TLSStartTLS}, TLSStartTLS, testPassword, true, "TLS certificate was rejected"},
		{"untrusted certificate, implicit", serverConfig{mode: TLSImplicit}, TLSImplicit, testPassword, true, "TLS certificate was rejected"},
		{"implicit against STARTTLS port", serverConfig{mode: TLSStartTLS}, TLSImplicit, testPassword, false, "ports 587 and 25 need tls: starttls"},
		{"no STARTTLS offered", serverConfig{mode: TLSStartTLS, noStartTLS: true}, TLSStartTLS, testPassword, false, "does not offer STARTTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.server.username, tt.server.password = testUser, testPassword
			srv := startServer(t, tt.server)
			var logs bytes.Buffer
			opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			if !tt.systemCAs {
				opts.TLSConfig = &tls.Config{RootCAs: trustedPool(t)}
			}
			cfg := config.Notifier{
				Name: "mail", SMTP: srv.addr, TLS: tt.clientMode, Username: testUser,
				Password: config.Secret(tt.password), From: "a@example.com", To: []string{"b@example.com"}, Timeout: 5 * time.Second,
			}
			n, err := New(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
			if err == nil || retry {
				t.Fatalf("Notify: retry=%v err=%v; want a permanent error", retry, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			for _, text := range []string{err.Error(), logs.String()} {
				if strings.Contains(text, tt.password) {
					t.Errorf("the password leaked: %q", text)
				}
			}
			if _, _, raw := srv.record(); len(raw) != 0 {
				t.Errorf("the server accepted %d messages", len(raw))
			}
		})
	}
}

// TestReplies checks the verdict for SMTP replies at each stage of the
// mail transaction.
func TestReplies(t *testing.T) {
	tests := []struct {
		stage     stage
		code      int
		wantRetry bool
	}{
		{atMail, 421, true},
		{atMail, 553, false},
		{atRcpt, 450, true},
		{atRcpt, 452, true},
		{atRcpt, 550, false},
		{atData, 451, true},
		{atData, 554, false},
	}
	for _, tt := range tests {
		srv := startServer(t, serverConfig{mode: TLSStartTLS, username: testUser, password: testPassword})
		ec := smtpEnhanced(tt.code)
		srv.refuseAt(notifiertest.Permanent, tt.stage, tt.code, ec, "refused by test")
		n := newTestNotifier(t, srv, TLSStartTLS, 5*time.Second, nil)
		retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
		if err == nil || retry != tt.wantRetry {
			t.Errorf("stage %d, reply %d: retry=%v err=%v; want retry=%v", tt.stage, tt.code, retry, err, tt.wantRetry)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := New(config.Notifier{Name: "mail", SMTP: addr, From: "a@example.com", To: []string{"b@example.com"}, Timeout: 5 * time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
	if err == nil || !retry {
		t.Errorf("Notify to a closed port: retry=%v err=%v; want a retryable error", retry, err)
	}
}

// TestContextEndsAttempt: the caller's context, not only the configured
// timeout, ends an attempt against a server that never greets (go-mail
// itself applies the context to dialling only).
func TestContextEndsAttempt(t *testing.T) {
	srv := startServer(t, serverConfig{mode: TLSStartTLS})
	srv.SetOutcome(notifiertest.Hang, 0)
	n := newTestNotifier(t, srv, TLSStartTLS, time.Hour, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	type result struct {
		retry bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		retry, err := n.Notify(ctx, notifiertest.Alerts()...)
		done <- result{retry, err}
	}()
	bound := time.NewTimer(20 * time.Second)
	defer bound.Stop()
	select {
	case r := <-done:
		if r.err == nil || !r.retry || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("Notify: retry=%v err=%v; want a retryable deadline error", r.retry, r.err)
		}
	case <-bound.C:
		t.Fatal("Notify ignored its context's deadline")
	}
}

func TestNew(t *testing.T) {
	good := config.Notifier{Name: "mail", SMTP: "smtp.example.com:587", From: "a@example.com", To: []string{"b@example.com"}, Timeout: time.Second}
	tests := []struct {
		name   string
		change func(*config.Notifier)
		want   string // "" = no error
	}{
		{"defaults", func(*config.Notifier) {}, ""},
		{"no port", func(c *config.Notifier) { c.SMTP = "smtp.example.com" }, "must be host:port"},
		{"bad port", func(c *config.Notifier) { c.SMTP = "smtp.example.com:smtp" }, "port must be a number"},
		{"bad tls", func(c *config.Notifier) { c.TLS = "ssl" }, `tls "ssl"`},
		{"bad from", func(c *config.Notifier) { c.From = "nobody" }, "from"},
		{"no to", func(c *config.Notifier) { c.To = nil }, "at least one recipient"},
		{"bad to", func(c *config.Notifier) { c.To = []string{"b@example.com", "x"} }, `to "x"`},
		{"password alone", func(c *config.Notifier) { c.Password = "hunter2" }, "password needs username"},
		{"no timeout", func(c *config.Notifier) { c.Timeout = 0 }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.To = slices.Clone(good.To)
			tt.change(&cfg)
			n, err := New(cfg, Options{})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.want == "":
				if n.mode != TLSStartTLS || n.tlsConf.ServerName != "smtp.example.com" || n.tlsConf.MinVersion != tls.VersionTLS12 {
					t.Errorf("defaults: mode %q, ServerName %q, MinVersion %x", n.mode, n.tlsConf.ServerName, n.tlsConf.MinVersion)
				}
			case err == nil:
				t.Fatalf("New: no error, want one containing %q", tt.want)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("New: %v; want it to contain %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the password leaked: %v", err)
			}
		})
	}
}

// TestShortPasswordNeverShown: a server that echoes the password in a
// reply (here a 3-character one, and one inside ordinary words) gets it
// removed from the error and the logs, and the rest of the text stays as
// it was.
func TestShortPasswordNeverShown(t *testing.T) {
	for _, password := range []string{"x9!", "ail"} {
		t.Run(password, func(t *testing.T) {
			srv := startServer(t, serverConfig{mode: TLSStartTLS, username: testUser, password: password})
			srv.refuseAt(notifiertest.Permanent, atMail, 553, smtp.EnhancedCode{5, 7, 1},
				"mail from "+testUser+" failed: password "+password+" was sent in an email; details in mailbox")
			var logs bytes.Buffer
			cfg := config.Notifier{
				Name: "mail", SMTP: srv.addr, TLS: TLSStartTLS, Username: testUser, Password: config.Secret(password),
				From: "a@example.com", To: []string{"b@example.com"}, Timeout: 5 * time.Second,
			}
			n, err := New(cfg, Options{
				Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				TLSConfig: &tls.Config{RootCAs: trustedPool(t)},
			})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(context.Background(), notifiertest.Alerts()...)
			if err == nil || retry {
				t.Fatalf("Notify: retry=%v err=%v; want a permanent error", retry, err)
			}
			word := regexp.MustCompile(`(^|[^\pL\pN])` + regexp.QuoteMeta(password) + `($|[^\pL\pN])`)
			for _, text := range []string{err.Error(), logs.String()} {
				if word.MatchString(text) {
					t.Errorf("the password shows in %q", text)
				}
				if !strings.Contains(text, "failed: password <redacted> was sent in an email; details in mailbox") {
					t.Errorf("the server's reply is garbled or missing: %q", text)
				}
			}
		})
	}
}
