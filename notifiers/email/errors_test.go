package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

func TestClassify(t *testing.T) {
	n := &Notifier{name: "mail", addr: "smtp.example.com:587", timeout: 10 * time.Second}
	dial := func(err error) error { return fmt.Errorf("dial failed: %w", err) }
	tests := []struct {
		name      string
		err       error
		wantRetry bool
		want      string
	}{
		{"auth failed", dial(fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 535, Msg: "5.7.8 Authentication failed"})), false, "login rejected (535)"},
		{"greeting 421", dial(&textproto.Error{Code: 421, Msg: "4.3.2 try again later"}), true, "temporarily refused by the server (421)"},
		{"greeting 554", dial(&textproto.Error{Code: 554, Msg: "5.7.1 no SMTP service here"}), false, "rejected by the server (554)"},
		{"plain text on a TLS dial", dial(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), false, "tls: implicit"},
		{"unknown CA", dial(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), false, "TLS certificate was rejected"},
		{"TLS alert", dial(tls.AlertError(70)), false, "TLS handshake refused"},
		{"password in clear", dial(fmt.Errorf("SMTP AUTH failed: %w", smtp.ErrUnencrypted)), false, "set tls: starttls or tls: implicit"},
		{"no STARTTLS", dial(errors.New(`STARTTLS mode set to: "TLSMandatory", but target host does not support STARTTLS`)), false, "does not offer STARTTLS"},
		{"no AUTH", dial(errors.New("server does not support SMTP AUTH")), false, "does not offer AUTH"},
		{"no usable mechanism", dial(mail.ErrNoSupportedAuthDiscovered), false, "no login method"},
		{"refused", dial(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true, "connection refused"},
		{"read timeout", dial(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), true, "no answer within 10s"},
		{"dropped", fmt.Errorf("send failed: %w", io.ErrUnexpectedEOF), true, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, err := n.classify(context.Background(), tt.err)
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v (err: %v)", retry, tt.wantRetry, err)
			}
			if !strings.HasPrefix(err.Error(), "email mail: smtp smtp.example.com:587: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to name the server and contain %q", err, tt.want)
			}
		})
	}
}

func TestClassifyEndedContext(t *testing.T) {
	n := &Notifier{name: "mail", addr: "smtp.example.com:587", timeout: 10 * time.Second}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	// Whatever the connection reported, an ended attempt is retryable: even
	// a 5xx-looking error is only the symptom of the closed connection.
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		retry, err := n.classify(tc.ctx, closed)
		if !retry || !errors.Is(err, tc.want) {
			t.Errorf("classify with an ended context: retry=%v err=%v; want retryable %v", retry, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	n := &Notifier{password: "hunter2", secrets: authSecrets("bob", "hunter2")}
	inner := &textproto.Error{Code: 535, Msg: "bad password hunter2"}
	err := n.redact(fmt.Errorf("auth: %w", inner))
	if got := err.Error(); strings.Contains(got, "hunter2") || !strings.Contains(got, "bad password <redacted>") {
		t.Errorf("redacted = %q, want the password replaced by <redacted>", got)
	}
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 535 {
		t.Errorf("redaction broke the error chain: %#v", err)
	}
	plain := errors.New("no secret here")
	if n.redact(plain) != plain {
		t.Error("an error without the secret should pass through unchanged")
	}
}

// TestRedactShortPasswords: a short password, or one that is part of
// ordinary words, is removed where it stands as a word, and the words
// around it stay readable. The old substring replacement turned "mail:
// failed" into "m<secret>: f<secret>ed", garbling the error and pointing
// at the password.
func TestRedactShortPasswords(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		password string
		in       string
		want     string
	}{
		{"ail", "email mail: failed: 535 password ail rejected", "email mail: failed: 535 password <redacted> rejected"},
		{"x9!", "535 bad credentials (x9!) for bob", "535 bad credentials (<redacted>) for bob"},
		{"abc", "AUTH LOGIN " + b64([]byte("abc")) + " refused", "AUTH LOGIN <redacted> refused"},
		{"abc", "AUTH PLAIN " + b64([]byte("\x00bob\x00abc")) + " refused", "AUTH PLAIN <redacted> refused"},
		{"the", "the server closed the connection", "<redacted> server closed <redacted> connection"},
	}
	for _, tt := range tests {
		n := &Notifier{password: tt.password, secrets: authSecrets("bob", tt.password)}
		got := n.redact(errors.New(tt.in)).Error()
		if got != tt.want {
			t.Errorf("password %q: redact(%q) = %q, want %q", tt.password, tt.in, got, tt.want)
		}
	}
}
