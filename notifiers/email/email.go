package email

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"strconv"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// TLS modes of config.Notifier.TLS.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
	TLSNone     = "none"
)

// Options are the notifier's dependencies.
type Options struct {
	// Logger receives debug lines about sends; nil discards them.
	Logger *slog.Logger
	// TLSConfig is used for STARTTLS and implicit TLS; nil means the
	// system roots. It is cloned; an empty ServerName is set to the smtp
	// host, so the certificate is checked against the name in the config.
	TLSConfig *tls.Config
	// Location is the zone times are shown in; nil means UTC, the zone of
	// every other channel and of status.
	Location *time.Location
}

// Notifier sends alerts as mail through one SMTP server.
type Notifier struct {
	name     string
	addr     string // host:port, for messages
	host     string
	port     int
	mode     string
	username string
	password string
	// secrets are what redact removes from error text: the password and
	// the forms AUTH sends it in.
	secrets []string
	from    string
	to      []string
	timeout time.Duration
	tlsConf *tls.Config
	loc     *time.Location
	log     *slog.Logger
	// now dates a message whose alerts carry no time.
	now func() time.Time
}

var _ notifiers.Notifier = (*Notifier)(nil)

// New returns an email notifier for cfg, a notifier of type "email" that
// config.Load has validated; New checks again what it relies on.
func New(cfg config.Notifier, opts Options) (*Notifier, error) {
	host, portText, err := net.SplitHostPort(cfg.SMTP)
	if err != nil || host == "" {
		return nil, fmt.Errorf("email %s: smtp %q must be host:port, e.g. smtp.example.com:587", cfg.Name, cfg.SMTP)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("email %s: smtp %q: port must be a number from 1 to 65535", cfg.Name, cfg.SMTP)
	}
	mode := cfg.TLS
	if mode == "" {
		mode = TLSStartTLS
	}
	if mode != TLSStartTLS && mode != TLSImplicit && mode != TLSNone {
		return nil, fmt.Errorf("email %s: tls %q: must be starttls, implicit or none", cfg.Name, cfg.TLS)
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("email %s: from %q is not an email address", cfg.Name, cfg.From)
	}
	if len(cfg.To) == 0 {
		return nil, fmt.Errorf("email %s: to: needs at least one recipient", cfg.Name)
	}
	for _, to := range cfg.To {
		if _, err := netmail.ParseAddress(to); err != nil {
			return nil, fmt.Errorf("email %s: to %q is not an email address", cfg.Name, to)
		}
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, fmt.Errorf("email %s: password needs username", cfg.Name)
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("email %s: timeout must be more than 0", cfg.Name)
	}

	tc := &tls.Config{}
	if opts.TLSConfig != nil {
		tc = opts.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	return &Notifier{
		name:     cfg.Name,
		addr:     cfg.SMTP,
		host:     host,
		port:     port,
		mode:     mode,
		username: cfg.Username,
		password: cfg.Password.Reveal(),
		secrets:  authSecrets(cfg.Username, cfg.Password.Reveal()),
		from:     cfg.From,
		to:       append([]string(nil), cfg.To...),
		timeout:  cfg.Timeout,
		tlsConf:  tc,
		loc:      loc,
		log:      logger.With("notifier", cfg.Name, "type", "email"),
		now:      time.Now,
	}, nil
}

// Notify sends alerts as one mail to every recipient. It connects afresh
// each time (alerts are rare; a kept-alive SMTP connection would mostly be
// a dead one) and gives the whole attempt — connect, TLS, AUTH, DATA — the
// configured timeout. See the package doc for which errors are retryable.
func (n *Notifier) Notify(ctx context.Context, alerts ...notifiers.Alert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("email %s: %w", n.name, err)
	}
	msg, err := n.message(alerts)
	if err != nil {
		return false, fmt.Errorf("email %s: %w", n.name, err)
	}

	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	client, err := n.client(ctx)
	if err != nil {
		// New has checked the settings; what is left (reading the host
		// name for EHLO) may work next time.
		return true, n.redact(fmt.Errorf("email %s: %w", n.name, err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if msg.IsDelivered() {
			// The server took the message (250 after DATA); only RSET or
			// QUIT failed. Retrying would deliver it twice.
			n.log.Debug("email sent; closing the session failed", "message_id", msg.GetMessageID(), "err", n.redact(err))
			return false, nil
		}
		retry, err := n.classify(ctx, err)
		err = n.redact(err)
		n.log.Debug("email not sent", "retry", retry, "err", err)
		return retry, err
	}
	n.log.Debug("email sent", "message_id", msg.GetMessageID(), "recipients", len(n.to), "alerts", len(alerts))
	return false, nil
}

// message builds the mail for alerts.
func (n *Notifier) message(alerts []notifiers.Alert) (*mail.Msg, error) {
	view := newMessage(alerts, n.loc)
	html, err := view.html()
	if err != nil {
		return nil, err
	}
	m := mail.NewMsg()
	if err := m.From(n.from); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(n.to...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(subject(alerts))
	th := thread(alerts)
	m.SetGenHeader(mail.HeaderMessageID, th.MessageID)
	if th.InReplyTo != "" {
		m.SetGenHeader(mail.HeaderInReplyTo, th.InReplyTo)
		m.SetGenHeader(mail.HeaderReferences, th.References)
	}
	at := alerts[0].At
	if at.IsZero() {
		at = n.now()
	}
	m.SetDateWithValue(at.In(n.loc))
	// RFC 3834: tells vacation responders not to answer a machine.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetUserAgent("marginwatch")
	if urgent(alerts) {
		m.SetImportance(mail.ImportanceHigh)
	}
	m.SetBodyString(mail.TypeTextPlain, view.text())
	m.AddAlternativeString(mail.TypeTextHTML, html)
	return m, nil
}

// client returns a go-mail client for one attempt. Its connections are
// closed when ctx ends: go-mail applies ctx to dialling only and a
// per-command deadline after that, so without this a peer that trickles
// replies could hold an attempt far past the timeout.
func (n *Notifier) client(ctx context.Context) (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(n.port),
		mail.WithTimeout(n.timeout),
		mail.WithTLSConfig(n.tlsConf),
		mail.WithDialContextFunc(n.dialer(ctx)),
	}
	switch n.mode {
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		// Mandatory, never opportunistic: an attacker who strips STARTTLS
		// from the EHLO reply must not get the password in clear text.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if n.username != "" {
		// PLAIN or LOGIN when offered (what almost every provider takes),
		// else go-mail's discovery (SCRAM, CRAM-MD5). go-mail refuses to
		// send PLAIN or LOGIN without TLS unless the server is localhost.
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(n.username),
			mail.WithPassword(n.password),
		)
	}
	c, err := mail.NewClient(n.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return c, nil
}

// dialer connects for one attempt: TCP, then TLS at once in implicit mode
// (returning the *tls.Conn itself, which go-mail needs to see to know the
// connection is encrypted). The connection is closed when ctx ends.
func (n *Notifier) dialer(ctx context.Context) mail.DialContextFunc {
	return func(dialCtx context.Context, network, address string) (net.Conn, error) {
		nd := &net.Dialer{}
		var conn net.Conn
		var err error
		if n.mode == TLSImplicit {
			td := &tls.Dialer{NetDialer: nd, Config: n.tlsConf}
			conn, err = td.DialContext(dialCtx, network, address)
		} else {
			conn, err = nd.DialContext(dialCtx, network, address)
		}
		if err != nil {
			return nil, err
		}
		// The attempt's ctx, not dialCtx: go-mail cancels dialCtx as soon as
		// the session is set up.
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
}

// urgent reports whether a mail is marked high importance: its lead alert
// is a critical one still firing, or it tells of a liquidation.
func urgent(alerts []notifiers.Alert) bool {
	for _, a := range alerts {
		if a.Liquidated() {
			return true
		}
	}
	a, ok := lead(alerts)
	return ok && a.Status == notifiers.Firing && a.Severity == notifiers.Critical && a.Kind != notifiers.KindTest
}

// authSecrets lists the password and the base64 forms AUTH LOGIN and AUTH
// PLAIN carry it in, should a server echo the exchange in a reply.
func authSecrets(username, password string) []string {
	if password == "" {
		return nil
	}
	b64 := base64.StdEncoding.EncodeToString
	return []string{
		password,
		b64([]byte(password)),
		b64([]byte("\x00" + username + "\x00" + password)),
		b64([]byte(username + "\x00" + username + "\x00" + password)),
	}
}

// redact removes the password from an error's text, should a server or a
// library ever echo it, as notifiers.Redact does: a short password only
// where it stands as a word, so that "ail" leaves "mail: failed" readable
// and does not point at itself. The error chain stays intact for errors.As.
func (n *Notifier) redact(err error) error {
	if err == nil || len(n.secrets) == 0 {
		return err
	}
	return redactError(err, n.secrets...)
}

// errRedacted is err with a secret masked in its text.
type errRedacted struct {
	msg string
	err error
}

func (e *errRedacted) Error() string { return e.msg }
func (e *errRedacted) Unwrap() error { return e.err }

func redactError(err error, secrets ...string) error {
	msg := err.Error()
	masked := notifiers.Redact(msg, secrets...)
	if masked == msg {
		return err
	}
	return &errRedacted{msg: masked, err: err}
}
