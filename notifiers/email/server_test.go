package email

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

// testPKI is a self-signed ECDSA certificate for 127.0.0.1 and localhost
// and a pool that trusts it.
type testPKI struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// testCert makes the certificate once per test binary.
var testCert = sync.OnceValues(func() (testPKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testPKI{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "marginwatch test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return testPKI{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return testPKI{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testPKI{tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool}, nil
})

// trustedPool returns a pool that trusts the test servers' certificate.
func trustedPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pki, err := testCert()
	if err != nil {
		t.Fatalf("test certificate: %v", err)
	}
	return pki.pool
}

// stage is the SMTP command a test server can be told to refuse.
type stage int

const (
	atMail stage = iota
	atRcpt
	atData
)

// serverConfig describes a test SMTP server.
type serverConfig struct {
	// mode is "starttls" (STARTTLS offered), "implicit" (TLS from the
	// first byte) or "none" (plain text, AUTH allowed without TLS).
	mode string
	// noStartTLS makes a "starttls" server leave STARTTLS out of EHLO.
	noStartTLS bool
	// username and password are required when username is set.
	username, password string
}

// server is a real go-smtp server on 127.0.0.1 that implements
// notifiertest.Peer. It records every accepted message raw.
type server struct {
	addr string

	mu       sync.Mutex
	outcome  notifiertest.Outcome
	refuse   map[stage]*smtp.SMTPError
	raw      []string
	envelope [][]string // MAIL FROM then RCPT TO per accepted message
	held     []net.Conn // connections of a hanging server, never greeted
	logins   []string   // usernames that authenticated
}

var _ notifiertest.Peer = (*server)(nil)

func startServer(t *testing.T, sc serverConfig) *server {
	t.Helper()
	pki, err := testCert()
	if err != nil {
		t.Fatalf("test certificate: %v", err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{pki.cert}, MinVersion: tls.VersionTLS12}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &server{addr: ln.Addr().String()}
	var l net.Listener = &hangListener{Listener: ln, s: srv}

	s := smtp.NewServer(&backend{srv: srv, sc: sc})
	s.Domain = "localhost"
	s.ErrorLog = log.New(io.Discard, "", 0)
	// A bound on every read, so that a test that goes wrong cannot hang
	// the server goroutines forever.
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	switch sc.mode {
	case "implicit":
		l = tls.NewListener(l, tlsConf)
	case "none":
		s.AllowInsecureAuth = true
	default:
		if !sc.noStartTLS {
			s.TLSConfig = tlsConf
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		// Serve registers its listener only once running: close it here
		// too, or a Close that comes first would leave Serve accepting.
		_ = ln.Close()
		<-done
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, c := range srv.held {
			_ = c.Close()
		}
	})
	return srv
}

// SetOutcome implements notifiertest.Peer with the replies of a real
// server: 550 for an unknown mailbox, 451 for a local error, 421 for a
// sender over its rate. SMTP has no retry hint, so retryAfter is unused.
func (s *server) SetOutcome(o notifiertest.Outcome, _ time.Duration) {
	switch o {
	case notifiertest.Permanent:
		s.refuseAt(o, atRcpt, 550, smtp.EnhancedCode{5, 1, 1}, "mailbox unavailable")
	case notifiertest.Retryable:
		s.refuseAt(o, atData, 451, smtp.EnhancedCode{4, 3, 0}, "local error in processing")
	case notifiertest.RateLimited:
		s.refuseAt(o, atMail, 421, smtp.EnhancedCode{4, 7, 0}, "too many messages, slow down")
	default:
		s.mu.Lock()
		s.outcome, s.refuse = o, nil
		s.mu.Unlock()
	}
}

// refuseAt makes the server answer the command at st with code.
func (s *server) refuseAt(o notifiertest.Outcome, st stage, code int, ec smtp.EnhancedCode, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcome = o
	s.refuse = map[stage]*smtp.SMTPError{st: {Code: code, EnhancedCode: ec, Message: msg}}
}

// Delivered implements notifiertest.Peer: each message's headers and its
// decoded parts, as a mail client would show them (quoted-printable soft
// line breaks would otherwise split words).
func (s *server) Delivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.raw))
	for i, raw := range s.raw {
		m, err := parseMail(raw)
		if err != nil {
			out[i] = "unparsable: " + err.Error() + "\n" + raw
			continue
		}
		out[i] = m.String()
	}
	return out
}

func (s *server) messages(t *testing.T) []parsedMail {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []parsedMail
	for _, raw := range s.raw {
		m, err := parseMail(raw)
		if err != nil {
			t.Fatalf("parse delivered mail: %v\n%s", err, raw)
		}
		out = append(out, m)
	}
	return out
}

func (s *server) refusal(st stage) *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refuse[st]
}

// hangListener holds, ungreeted, every connection accepted while the
// server's outcome is Hang: the client sees a peer that accepted TCP and
// never says a word.
type hangListener struct {
	net.Listener
	s *server
}

func (l *hangListener) Accept() (net.Conn, error) {
	for range 1000 {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		hang := l.s.outcome == notifiertest.Hang
		if hang {
			l.s.held = append(l.s.held, c)
		}
		l.s.mu.Unlock()
		if !hang {
			return c, nil
		}
	}
	return nil, errors.New("test server: too many hanging connections")
}

type backend struct {
	srv *server
	sc  serverConfig
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{b: b}, nil
}

type session struct {
	b      *backend
	authed bool
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string {
	if s.b.sc.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.b.sc.username || password != s.b.sc.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		s.b.srv.mu.Lock()
		s.b.srv.logins = append(s.b.srv.logins, username)
		s.b.srv.mu.Unlock()
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.sc.username != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	if err := s.b.srv.refusal(atMail); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.b.srv.refusal(atRcpt); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.b.srv.refusal(atData); err != nil {
		return err
	}
	s.b.srv.mu.Lock()
	defer s.b.srv.mu.Unlock()
	s.b.srv.raw = append(s.b.srv.raw, string(raw))
	s.b.srv.envelope = append(s.b.srv.envelope, append([]string{s.from}, s.to...))
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }

// parsedMail is a received message, decoded.
type parsedMail struct {
	Header    netmail.Header
	MediaType string            // of the whole message
	Parts     map[string]string // media type → decoded body
}

// String renders the headers a reader sees, then every part decoded.
func (m parsedMail) String() string {
	var b strings.Builder
	dec := new(mime.WordDecoder)
	for _, h := range []string{"Subject", "From", "To", "Date", "Message-ID", "In-Reply-To", "References"} {
		v, err := dec.DecodeHeader(m.Header.Get(h))
		if err != nil {
			v = m.Header.Get(h)
		}
		b.WriteString(h + ": " + v + "\n")
	}
	for _, typ := range []string{"text/plain", "text/html"} {
		b.WriteString("\n" + m.Parts[typ])
	}
	return b.String()
}

func parseMail(raw string) (parsedMail, error) {
	msg, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		return parsedMail{}, err
	}
	pm := parsedMail{Header: msg.Header, Parts: map[string]string{}}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return pm, err
	}
	pm.MediaType = mt
	if !strings.HasPrefix(mt, "multipart/") {
		body, err := decodeBody(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
		pm.Parts[mt] = body
		return pm, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for range 10 {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return pm, err
		}
		pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return pm, err
		}
		body, err := decodeBody(p, p.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return pm, err
		}
		pm.Parts[pt] = body
	}
	return pm, nil
}

func decodeBody(r io.Reader, cte string) (string, error) {
	if strings.EqualFold(cte, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	// Mail bodies travel with CRLF line ends.
	return strings.ReplaceAll(string(b), "\r\n", "\n"), err
}

// record returns copies of what the server saw, under its lock.
func (s *server) record() (logins []string, envelope [][]string, raw []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.logins), slices.Clone(s.envelope), slices.Clone(s.raw)
}

// smtpEnhanced is a plausible enhanced status code for a reply code.
func smtpEnhanced(code int) smtp.EnhancedCode {
	return smtp.EnhancedCode{code / 100, 0, 0}
}
