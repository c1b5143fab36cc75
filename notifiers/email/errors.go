package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// classify turns a failed attempt into (retry, error). ctx is the
// attempt's context: once it has ended, whatever broke was caused by the
// deadline or the caller's cancellation, and another attempt may succeed.
//
// SMTP replies decide by their class (RFC 5321 4.2.1): 4xx is transient
// (421 service closing, 450/451/452 try later), 5xx is permanent (550 no
// such mailbox, 553, 554, 535 authentication failed). Without a reply, a
// network error or timeout is retryable; a TLS handshake the system cannot
// trust and settings that cannot work are permanent, because retrying for
// an hour changes nothing — the error says what to fix instead.
func (n *Notifier) classify(ctx context.Context, err error) (bool, error) {
	where := fmt.Sprintf("email %s: smtp %s", n.name, n.addr)
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return true, fmt.Errorf("%s: no complete answer within %s (%v): %w", where, n.timeout, err, ctxErr)
		}
		return true, fmt.Errorf("%s: %w (%v)", where, ctxErr, err)
	}

	var (
		certErr   *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		reply     *textproto.Error
		sendErr   *mail.SendError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid):
		return false, fmt.Errorf("%s: the server's TLS certificate was rejected: %w; fix: use the host name the certificate is issued for in smtp:, "+
			"or give the server a certificate from a CA this machine trusts", where, err)
	case errors.As(err, &record):
		return false, fmt.Errorf("%s: the server did not answer in TLS: %w; fix: port 465 needs tls: implicit, ports 587 and 25 need tls: starttls", where, err)
	case errors.As(err, &alert):
		return false, fmt.Errorf("%s: TLS handshake refused by the server: %w; fix: check tls: and the server's TLS settings", where, err)
	case errors.Is(err, smtp.ErrUnencrypted):
		return false, fmt.Errorf("%s: refusing to send the password over an unencrypted connection; fix: set tls: starttls or tls: implicit", where)
	case errors.Is(err, smtp.ErrWrongHostname):
		return false, fmt.Errorf("%s: %w", where, err)
	case errors.Is(err, mail.ErrNoSupportedAuthDiscovered), errors.Is(err, mail.ErrPlainAuthNotSupported), errors.Is(err, mail.ErrLoginAuthNotSupported):
		return false, fmt.Errorf("%s: the server offers no login method marginwatch supports: %w", where, err)
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		return false, fmt.Errorf("%s: the server does not offer STARTTLS; fix: port 465 needs tls: implicit; tls: none is only for a relay on localhost", where)
	case strings.Contains(err.Error(), "does not support SMTP AUTH"):
		return false, fmt.Errorf("%s: the server does not offer AUTH; fix: use its submission port (587), or drop username and password for a relay that needs none", where)
	case errors.As(err, &reply):
		// A reply outside a mail transaction: the greeting, STARTTLS or AUTH.
		return replyClass(where, reply.Code, err)
	case errors.As(err, &sendErr) && sendErr.ErrorCode() != 0:
		return replyClass(where, sendErr.ErrorCode(), err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return true, fmt.Errorf("%s: no answer within %s: %w", where, n.timeout, err)
	default:
		// A refused or reset connection, a dropped session, DNS: all may
		// heal, and the outbox gives up after max_age anyway.
		return true, fmt.Errorf("%s: %w", where, err)
	}
}

// replyClass classifies an SMTP reply code.
func replyClass(where string, code int, err error) (bool, error) {
	switch {
	case code == 530 || code == 534 || code == 535 || code == 538:
		return false, fmt.Errorf("%s: login rejected (%d): %w; fix: check username and password", where, code, err)
	case code >= 500:
		return false, fmt.Errorf("%s: rejected by the server (%d): %w", where, code, err)
	case code >= 400:
		return true, fmt.Errorf("%s: temporarily refused by the server (%d): %w", where, code, err)
	default:
		return true, fmt.Errorf("%s: unexpected reply %d: %w", where, code, err)
	}
}
