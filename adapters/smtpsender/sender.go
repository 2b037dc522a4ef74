package smtpsender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A Sender delivers already-composed messages to one SMTP server.
//
// It keeps one connection open between Sends and reuses it for up to
// Options.MaxPerConnection messages, closing it after Options.IdleTimeout
// unused. A Sender is safe for concurrent use: Sends take turns on the
// connection (a Send waiting for its turn gives up when its ctx is done).
// Callers wanting parallel deliveries create several Senders.
type Sender struct {
	cfg    *config
	closed atomic.Bool
	// sem is held by the goroutine using cn (a channel so that waiting
	// honours ctx). The fields below are guarded by it.
	sem  chan struct{}
	cn   *conn
	idle *time.Timer
}

// conn is an open, authenticated connection.
type conn struct {
	c    *smtp.Client
	dc   *deadlineConn
	sent int       // transactions on this connection
	last time.Time // end of the last use
}

// New validates the configuration and returns a Sender. It does not
// connect: the first Send does.
//
// addr is the server's host:port (port 465 for TLS, 587 for StartTLS). opts
// may be nil.
func New(addr string, login Login, opts *Options) (*Sender, error) {
	cfg, err := newConfig(addr, login, opts)
	if err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, sem: make(chan struct{}, 1)}, nil
}

// Send delivers raw, a complete RFC 5322 message (header and body; bare
// LF line ends are sent as CRLF), from the envelope sender from ("" is the
// null sender <>) to the envelope recipients to. It returns nil when the
// server accepted the message for every recipient, else a *SendError (see
// there for what is permanent, and for partial deliveries).
//
// The connection is reused when open; one found broken at MAIL (before the
// server accepted anything) is redialled once, transparently. The message
// is announced with BODY=8BITMIME when the server offers 8BITMIME, and with
// SMTPUTF8 when an address is not ASCII; a server without SMTPUTF8 then
// gets nothing and Send fails permanently.
//
// Options.SendTimeout bounds the exchange from MAIL to the reply to DATA,
// and ctx bounds the whole Send: when ctx is done the connection is
// closed, Send returns promptly, and the error wraps ctx.Err().
func (s *Sender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if len(to) == 0 {
		return s.cfg.permanent("", "no recipients")
	}
	if strings.ContainsAny(from, "\r\n") || slices.ContainsFunc(to, func(a string) bool { return a == "" || strings.ContainsAny(a, "\r\n") }) {
		return s.cfg.permanent("", "empty address or address with a line break")
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return &SendError{Server: s.cfg.addr, Msg: "canceled waiting for the connection", Temporary: true, Err: ctx.Err()}
	}
	defer func() { <-s.sem }()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.idle != nil {
		s.idle.Stop()
	}
	utf8 := !isASCII(from) || slices.ContainsFunc(to, func(a string) bool { return !isASCII(a) })
	for attempt := 0; ; attempt++ {
		reused := false
		if s.cn != nil {
			switch idle := time.Since(s.cn.last); {
			case idle >= s.cfg.idleTO:
				_ = s.quit()
			case idle >= noopAfter:
				if err := s.noop(ctx); err != nil {
					s.cfg.log.Debug("smtpsender: idle connection broken, redialling", "server", s.cfg.addr, "err", err)
					s.drop()
				} else {
					reused = true
				}
			default:
				reused = true
			}
		}
		if s.cn == nil {
			cn, err := s.dial(ctx)
			if err != nil {
				return err
			}
			s.cn = cn
		}
		brokenAtMail, err := s.transact(ctx, from, to, raw, utf8)
		if brokenAtMail && reused && attempt == 0 && ctx.Err() == nil {
			s.cfg.log.Debug("smtpsender: reused connection broken, redialling", "server", s.cfg.addr, "err", err)
			continue
		}
		if s.cn != nil {
			s.cn.sent++
			s.cn.last = time.Now()
			if s.cn.sent >= s.cfg.maxPerConn {
				_ = s.quit()
			} else {
				s.armIdle()
			}
		}
		if err == nil {
			s.cfg.log.Debug("smtpsender: sent", "server", s.cfg.addr, "from", from, "rcpts", len(to), "bytes", len(raw))
		}
		return err
	}
}

// transact runs one mail transaction on s.cn. brokenAtMail reports a
// connection found broken at MAIL (a network error or 421), before the
// server accepted anything. The connection is dropped whenever its state
// is unknown or the server left a transaction open.
func (s *Sender) transact(ctx context.Context, from string, to []string, raw []byte, utf8 bool) (brokenAtMail bool, err error) {
	cn := s.cn
	c := cn.c
	if utf8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return false, s.cfg.permanent("MAIL", "server does not offer SMTPUTF8, needed for a non-ASCII address")
		}
	}
	if limit, ok := c.MaxMessageSize(); ok && limit > 0 && len(raw) > limit {
		return false, s.cfg.permanent("MAIL", fmt.Sprintf("message of %d bytes is over the server's SIZE limit of %d", len(raw), limit))
	}

	sctx, cancel := context.WithTimeout(ctx, s.cfg.sendTO)
	defer cancel()
	dl, _ := sctx.Deadline()
	cn.dc.setLimit(dl)
	defer cn.dc.setLimit(time.Time{})
	stop := context.AfterFunc(sctx, func() { cn.dc.Close() })
	defer stop()

	// fail classifies err; keep says the connection is still in a known
	// state with no transaction open.
	fail := func(cmd string, err error, keep bool) *SendError {
		e := s.cfg.newError(sctx, cmd, err)
		var se *smtp.SMTPError
		if !keep || !errors.As(err, &se) || se.Code == 421 {
			s.drop()
		}
		return e
	}

	if err := c.Mail(from, &smtp.MailOptions{UTF8: utf8, Size: int64(len(raw))}); err != nil {
		var se *smtp.SMTPError
		broken := !errors.As(err, &se) || se.Code == 421
		e := fail("MAIL", err, true) // first: it waits for a timed-out sctx
		return broken && sctx.Err() == nil, e
	}
	var rejected []string
	var first *smtp.SMTPError
	temporary := false
	for _, rcpt := range to {
		err := c.Rcpt(rcpt, nil)
		if err == nil {
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code == 421 {
			return false, fail("RCPT", err, false)
		}
		rejected = append(rejected, rcpt)
		if first == nil {
			first = se
		}
		if se.Code/100 != 5 {
			temporary = true
		}
	}
	if len(rejected) == len(to) {
		// The transaction is still open: drop rather than RSET, which
		// in go-smtp also forces a new EHLO.
		e := fail("RCPT", first, false)
		e.Rejected, e.Temporary = rejected, temporary
		return false, e
	}
	w, err := c.Data()
	if err != nil {
		return false, fail("DATA", err, false)
	}
	if _, err := w.Write(raw); err != nil {
		return false, fail("DATA", err, false)
	}
	if err := w.Close(); err != nil {
		// A reply after the final dot ends the transaction.
		return false, fail("DATA", err, true)
	}
	if len(rejected) > 0 {
		e := s.cfg.newError(sctx, "RCPT", first)
		e.Delivered, e.Rejected, e.Temporary = true, rejected, temporary
		return false, e
	}
	return false, nil
}

// dial connects, upgrades to TLS and authenticates, within
// Options.DialTimeout and ctx.
func (s *Sender) dial(ctx context.Context) (*conn, error) {
	cfg := s.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.dialTO)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", cfg.addr)
	if err != nil {
		return nil, cfg.newError(dctx, "connect", err)
	}
	dc := &deadlineConn{Conn: raw}
	dl, _ := dctx.Deadline()
	dc.setLimit(dl)
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	defer stop()
	fail := func(e *SendError) (*conn, error) {
		raw.Close()
		return nil, e
	}

	var c *smtp.Client
	switch cfg.security {
	case TLS:
		tc := tls.Client(dc, cfg.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			return fail(cfg.newError(dctx, "connect", err))
		}
		c = smtp.NewClient(tc)
	case StartTLS:
		// QUIRK: go-smtp exposes STARTTLS only through NewClientStartTLS,
		// whose EHLO before the upgrade says "localhost"; LocalName is
		// used after it. A server without STARTTLS is reported by a
		// plain error (pinned by TestStartTLSNotOffered).
		c, err = smtp.NewClientStartTLS(dc, cfg.tls)
		if err != nil {
			if dctx.Err() == nil && strings.Contains(err.Error(), "support STARTTLS") {
				return fail(cfg.permanent("STARTTLS", "server does not offer STARTTLS"))
			}
			return fail(cfg.newError(dctx, "STARTTLS", err))
		}
	default:
		c = smtp.NewClient(dc)
	}
	c.CommandTimeout = cfg.sendTO
	c.SubmissionTimeout = cfg.sendTO
	if err := c.Hello(cfg.localName); err != nil {
		return fail(cfg.newError(dctx, "connect", err))
	}
	mech, err := s.auth(dctx, c)
	if err != nil {
		return fail(err.(*SendError))
	}
	_, tlsOn := c.TLSConnectionState()
	cfg.log.Debug("smtpsender: connected", "server", cfg.addr, "security", string(cfg.security), "tls", tlsOn, "auth", mech)
	dc.setLimit(time.Time{})
	return &conn{c: c, dc: dc, last: time.Now()}, nil
}

// auth authenticates as configured and returns the mechanism used ("" for
// none). The error is a *SendError.
func (s *Sender) auth(ctx context.Context, c *smtp.Client) (string, error) {
	login := s.cfg.login
	if login.Username == "" {
		return "", nil
	}
	ok, list := c.Extension("AUTH")
	if !ok {
		return "", s.cfg.permanent("AUTH", "server offers no AUTH")
	}
	mechs := strings.Fields(strings.ToUpper(list))
	var a sasl.Client
	var mech, token string
	switch {
	case login.TokenSource != nil:
		mech = "XOAUTH2"
		if !slices.Contains(mechs, mech) {
			return "", s.cfg.permanent("AUTH", "server does not offer XOAUTH2 (offers "+strings.Join(mechs, " ")+")")
		}
		tok, err := login.TokenSource.Token()
		if err != nil {
			return "", &SendError{Server: s.cfg.addr, Command: "AUTH", Msg: "oauth2 token source failed", Temporary: true, Err: err}
		}
		token = tok.AccessToken
		a = &xoauth2{user: login.Username, token: token}
	case slices.Contains(mechs, sasl.Plain):
		mech = sasl.Plain
		a = sasl.NewPlainClient("", login.Username, login.Password)
	case slices.Contains(mechs, sasl.Login):
		mech = sasl.Login
		a = sasl.NewLoginClient(login.Username, login.Password)
	default:
		return "", s.cfg.permanent("AUTH", "server offers no supported mechanism (offers "+strings.Join(mechs, " ")+")")
	}
	if err := c.Auth(a); err != nil {
		e := s.cfg.newError(ctx, "AUTH "+mech, err)
		e.Msg = redact(e.Msg, login.Password, token)
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			// The *smtp.SMTPError text could echo a secret: keep the
			// code, not the error.
			e.Err = &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: e.Msg}
		}
		return "", e
	}
	return mech, nil
}

// redact removes secrets a server might echo in a reply.
func redact(msg string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			msg = strings.ReplaceAll(msg, sec, "[redacted]")
		}
	}
	return msg
}

// noop checks a reused connection.
func (s *Sender) noop(ctx context.Context) error {
	cn := s.cn
	dctx, cancel := context.WithTimeout(ctx, s.cfg.dialTO)
	defer cancel()
	dl, _ := dctx.Deadline()
	cn.dc.setLimit(dl)
	defer cn.dc.setLimit(time.Time{})
	stop := context.AfterFunc(dctx, func() { cn.dc.Close() })
	defer stop()
	return cn.c.Noop()
}

// quit ends s.cn politely. s.sem is held.
func (s *Sender) quit() error {
	cn := s.cn
	s.cn = nil
	cn.dc.setLimit(time.Now().Add(quitTimeout))
	if err := cn.c.Quit(); err != nil {
		cn.c.Close()
		return err
	}
	return nil
}

// drop closes s.cn, whose state is unknown. s.sem is held.
func (s *Sender) drop() {
	if s.cn != nil {
		s.cn.c.Close()
		s.cn = nil
	}
}

// armIdle (re)starts the timer closing the idle connection. s.sem is held.
func (s *Sender) armIdle() {
	if s.idle == nil {
		s.idle = time.AfterFunc(s.cfg.idleTO, s.closeIdle)
		return
	}
	s.idle.Reset(s.cfg.idleTO)
}

func (s *Sender) closeIdle() {
	select {
	case s.sem <- struct{}{}:
	default:
		return // a Send is using the connection
	}
	defer func() { <-s.sem }()
	if s.cn != nil && time.Since(s.cn.last) >= s.cfg.idleTO {
		s.cfg.log.Debug("smtpsender: closing idle connection", "server", s.cfg.addr)
		_ = s.quit()
	}
}

// Close sends QUIT and closes the connection, after waiting for a Send in
// progress. Send then returns ErrClosed. Closing twice is a no-op.
func (s *Sender) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if s.idle != nil {
		s.idle.Stop()
	}
	if s.cn == nil {
		return nil
	}
	if err := s.quit(); err != nil {
		return s.cfg.newError(context.Background(), "QUIT", err)
	}
	return nil
}

// deadlineConn caps every deadline go-smtp sets (it sets and clears its own
// around each command) at limit, the deadline of the current exchange.
// limit is only changed by the goroutine holding Sender.sem.
type deadlineConn struct {
	net.Conn
	limit time.Time
}

// setLimit sets limit and applies it (a zero limit clears the deadline).
func (c *deadlineConn) setLimit(t time.Time) {
	c.limit = t
	_ = c.Conn.SetDeadline(t)
}

func (c *deadlineConn) clamp(t time.Time) time.Time {
	if !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)) {
		return c.limit
	}
	return t
}

func (c *deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
