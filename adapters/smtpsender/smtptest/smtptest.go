// Package smtptest runs a real SMTP server (go-smtp's server) on loopback
// for tests of code that sends mail. It records the messages it receives,
// serves implicit TLS or STARTTLS with a certificate from a test CA
// generated on the fly, authenticates with AUTH PLAIN, LOGIN and XOAUTH2,
// and fails on request (4xx or 5xx replies, dropped connections, slow
// replies).
//
// A Server is safe for concurrent use.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
)

// Options configures a Server. A nil *Options means the defaults.
type Options struct {
	// Security is "tls" (implicit TLS, the default), "starttls" (plain
	// text offering STARTTLS) or "insecure" (plain text, no STARTTLS).
	Security string
	// Username and Password, when Username is set, make AUTH mandatory
	// before MAIL. AUTH is offered on plain connections too (so a client
	// sending credentials in clear text is noticed, see AuthAttempts).
	Username, Password string
	// Token, when set, is the access token AUTH XOAUTH2 accepts for
	// Username.
	Token string
	// Mechanisms are the AUTH mechanisms offered; nil means PLAIN and
	// LOGIN, plus XOAUTH2 when Token is set.
	Mechanisms []string
	// SMTPUTF8 offers the SMTPUTF8 extension.
	SMTPUTF8 bool
	// MaxMessageBytes is announced with SIZE and enforced; 0 means no
	// limit.
	MaxMessageBytes int64
	// NoData records the envelopes only, not Data (benchmarks).
	NoData bool
}

// Received is a message the server accepted.
type Received struct {
	From string
	To   []string
	Data []byte
	// UTF8 is true when MAIL carried SMTPUTF8, Body is the BODY= value
	// ("8BITMIME", or "" when absent), Size the SIZE= value.
	UTF8 bool
	Body string
	Size int64
	// User is the authenticated user and Mechanism the AUTH mechanism
	// used, "" without AUTH.
	User, Mechanism string
	// TLS is true when the connection was encrypted.
	TLS bool
}

// Failure is a scripted failure (see Server.FailNext).
type Failure struct {
	// Stage is "MAIL", "RCPT" or "DATA" (the reply after the final dot).
	Stage string
	// Rcpt restricts a RCPT failure to this recipient; "" means any.
	Rcpt string
	// Code is the reply code (421, 451, 550...). 0 answers normally, after
	// Delay.
	Code int
	// Msg is the reply text; "" means "scripted failure".
	Msg string
	// Count is the number of commands it applies to; 0 means 1.
	Count int
	// Delay is waited before answering (cut short when the server
	// closes).
	Delay time.Duration
}

// Server is a running SMTP server.
type Server struct {
	// Addr is the 127.0.0.1:port it listens on.
	Addr string
	// Cert is a client TLS configuration trusting the server's test CA
	// (ServerName 127.0.0.1).
	Cert *tls.Config

	opts Options
	srv  *smtp.Server
	ln   net.Listener
	done chan struct{}
	quit chan struct{}
	once sync.Once

	mu       sync.Mutex
	msgs     []Received
	conns    int
	open     map[net.Conn]struct{}
	auths    int
	failures []*Failure
	drops    int
}

// Start starts a Server and stops it when the test ends. It fails the
// test if the server cannot start.
func Start(tb testing.TB, opts *Options) *Server {
	tb.Helper()
	s, err := NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// NewServer starts a Server on 127.0.0.1; Close stops it.
func NewServer(opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Security == "" {
		o.Security = "tls"
	}
	if o.Mechanisms == nil {
		o.Mechanisms = []string{sasl.Plain, sasl.Login}
		if o.Token != "" {
			o.Mechanisms = append(o.Mechanisms, "XOAUTH2")
		}
	}
	cert, err := imaptest.NewCert()
	if err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	s := &Server{
		Cert: cert.Client,
		opts: o,
		done: make(chan struct{}),
		quit: make(chan struct{}),
		open: make(map[net.Conn]struct{}),
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen: %w", err)
	}
	var ln net.Listener = &listener{Listener: raw, s: s}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = o.SMTPUTF8
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.ErrorLog = discard{}
	switch o.Security {
	case "tls":
		ln = tls.NewListener(ln, cert.Server)
	case "starttls":
		srv.TLSConfig = cert.Server
	case "insecure":
	default:
		raw.Close()
		return nil, fmt.Errorf("smtptest: unknown security %q", o.Security)
	}
	s.srv, s.ln, s.Addr = srv, ln, raw.Addr().String()
	go func() {
		defer close(s.done)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.quit)
		_ = s.srv.Close()
		// Serve may not have registered the listener yet.
		_ = s.ln.Close()
		<-s.done
	})
}

// Messages returns copies of the messages accepted so far, in order.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.msgs))
	for i, m := range s.msgs {
		m.To = slices.Clone(m.To)
		m.Data = slices.Clone(m.Data)
		out[i] = m
	}
	return out
}

// Connections returns the number of connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// AuthAttempts returns the number of AUTH commands received so far.
func (s *Server) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// FailNext scripts a failure for the next f.Count commands of f.Stage.
// Failures accumulate; the first one matching a command applies.
func (s *Server) FailNext(f Failure) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Msg == "" {
		f.Msg = "scripted failure"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &f)
}

// DropNextData makes the next DATA close the connection after reading the
// first bytes of the message, without a reply.
func (s *Server) DropNextData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops++
}

// DropConnections closes every open connection without a reply, as a
// server restarting or timing out idle clients would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	open := make([]net.Conn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// fail applies the first scripted failure matching stage and rcpt.
func (s *Server) fail(stage, rcpt string) error {
	s.mu.Lock()
	var f Failure
	for i, p := range s.failures {
		if p.Stage == stage && (p.Rcpt == "" || p.Rcpt == rcpt) {
			f = *p
			if p.Count--; p.Count == 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
			break
		}
	}
	s.mu.Unlock()
	if f.Stage == "" {
		return nil
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.quit:
		}
	}
	if f.Code == 0 {
		return nil
	}
	return &smtp.SMTPError{Code: f.Code, EnhancedCode: smtp.EnhancedCode{f.Code / 100, 0, 0}, Message: f.Msg}
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// listener counts and tracks connections.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.conns++
	l.s.open[tc] = struct{}{}
	l.s.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s *Server
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.open, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// session is one SMTP session (reset by STARTTLS).
type session struct {
	s          *Server
	c          *smtp.Conn
	user, mech string
	from       string
	mail       smtp.MailOptions
	to         []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string { return ss.s.opts.Mechanisms }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	ss.s.mu.Lock()
	ss.s.auths++
	ss.s.mu.Unlock()
	if !slices.Contains(ss.s.opts.Mechanisms, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	o := ss.s.opts
	ok := func(user string) error {
		ss.user, ss.mech = user, mech
		return nil
	}
	check := func(user, pass string) error {
		if o.Username == "" || user != o.Username || pass != o.Password {
			return smtp.ErrAuthFailed
		}
		return ok(user)
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "XOAUTH2":
		return &xoauth2Server{check: func(user, token string) error {
			if o.Token == "" || user != o.Username || token != o.Token {
				return smtp.ErrAuthFailed
			}
			return ok(user)
		}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if err := ss.s.fail("MAIL", ""); err != nil {
		return err
	}
	ss.from = from
	if opts != nil {
		ss.mail = *opts
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.fail("RCPT", to); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	ss.s.mu.Lock()
	drop := ss.s.drops > 0
	if drop {
		ss.s.drops--
	}
	ss.s.mu.Unlock()
	if drop {
		_, _ = io.ReadFull(r, make([]byte, 16))
		ss.c.Conn().Close()
		return errors.New("smtptest: connection dropped")
	}
	var data []byte
	if ss.s.opts.NoData {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	} else {
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		data = buf.Bytes()
	}
	if err := ss.s.fail("DATA", ""); err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	m := Received{
		From: ss.from, To: slices.Clone(ss.to), Data: data,
		UTF8: ss.mail.UTF8, Body: string(ss.mail.Body), Size: ss.mail.Size,
		User: ss.user, Mechanism: ss.mech, TLS: isTLS,
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.mail, ss.to = "", smtp.MailOptions{}, nil
}

func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login),
// with or without the user name as initial response.
type loginServer struct {
	check func(user, pass string) error
	user  []byte
	state int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		if resp == nil {
			l.state = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.state = resp, 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.state = resp, 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(string(l.user), string(resp))
	}
}

// xoauth2Server is the server side of AUTH XOAUTH2: a refused token gets
// the JSON error challenge, then the failure.
type xoauth2Server struct {
	check  func(user, token string) error
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, smtp.ErrAuthFailed
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, auth string
	for _, f := range bytes.Split(resp, []byte{1}) {
		switch {
		case bytes.HasPrefix(f, []byte("user=")):
			user = string(f[5:])
		case bytes.HasPrefix(f, []byte("auth=Bearer ")):
			auth = string(f[12:])
		}
	}
	if err := x.check(user, auth); err != nil {
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	return nil, true, nil
}
