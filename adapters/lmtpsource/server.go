// Package lmtpsource is an LMTP listener (RFC 2033) that files
// delivered mail into the pipelines of the recipients' mailboxes. The MTA
// keeps responsibility for a mail until it has a final answer per
// recipient:
//
//   - 250 once the mail is durably filed (Disposition Done, duplicates
//     included);
//   - 451 4.3.0 when the pipeline leaves the mail for redelivery (Retry):
//     a transient failure still failing after the pipeline's attempts (a
//     store outage, an unavailable plugin), a timeout, or a permanent
//     failure the store cannot quarantine; the MTA keeps the mail and
//     retries;
//   - 554 5.6.0 only when the mail can never be filed and is kept in the
//     store's quarantine (Quarantine), and 552 5.3.4 for mail refused by
//     the mailbox size policy (Quarantine with ActionRejected: nothing
//     kept, the MTA bounces it to its sender);
//   - 550 5.1.1 at RCPT for an address that belongs to no mailbox.
//
// The texts of the answers are generic: internal error text never goes to
// the sending MTA (it may end up in a bounce); the details are logged.
//
// One delivery with several recipients is filed once per mailbox (two
// addresses of one mailbox share one filing), the mailboxes in parallel.
//
// The server is built on github.com/emersion/go-smtp with LMTP enabled and
// adds a connection limit that idle sessions cannot exhaust: a session
// that delivers nothing is closed after Options.IdleTimeout (NOOPs do not
// keep it) or Options.MaxIdleCommands commands, every session after
// Options.MaxSessionDuration, and when every slot is taken a new
// connection takes the slot of the longest-idle session without a
// transaction in progress. It is safe for concurrent use.
package lmtpsource

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Processor files one mail; *mailcase.Pipeline implements it.
type Processor interface {
	Process(ctx context.Context, raw []byte, popts *mailcase.ProcessOptions) (*mailcase.Result, error)
}

var _ Processor = (*mailcase.Pipeline)(nil)

// Options configures a Server.
type Options struct {
	// CatchAll, when set, receives recipients not in the mailboxes; nil
	// refuses them with 550 5.1.1.
	CatchAll Processor
	// Domain is announced in the greeting; "" means "localhost".
	Domain string
	// TLSConfig enables STARTTLS.
	TLSConfig *tls.Config
	// MaxMessageBytes bounds a mail; 0 means 32 MiB. Larger mail gets
	// 552 5.3.4.
	MaxMessageBytes int64
	// MaxRecipients bounds the recipients of a delivery; 0 means 100.
	MaxRecipients int
	// MaxConnections bounds simultaneous connections; 0 means 64. When
	// every slot is taken, a new connection takes the slot of the session
	// idle the longest without a transaction in progress (that session is
	// answered 421 and closed); only when every session is in a
	// transaction does the new connection get 421.
	MaxConnections int
	// ReadTimeout and WriteTimeout bound each network read and write;
	// 0 means 5 minutes and 1 minute.
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout closes a session (421) that has no transaction in
	// progress for this long since it connected or its last delivery,
	// whatever it sends meanwhile (NOOP, RSET, LHLO, HELP); 0 means 1
	// minute. An MTA caches an idle LMTP connection for seconds (Postfix:
	// lmtp_connection_cache_time_limit, 2 s).
	IdleTimeout time.Duration
	// MaxIdleCommands closes a session (421) after this many command
	// lines without a transaction in progress since it connected or its
	// last delivery; 0 means 20.
	MaxIdleCommands int
	// MaxSessionDuration bounds a session: once it is older, it is closed
	// (421) as soon as no transaction is in progress, and at twice the
	// duration in any case; 0 means 10 minutes (Postfix reuses a
	// connection for at most lmtp_connection_reuse_time_limit, 300 s).
	MaxSessionDuration time.Duration
	// ProcessTimeout bounds filing one mail; 0 means 2 minutes. A mail not
	// filed in time gets 451.
	ProcessTimeout time.Duration
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 32 << 20
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 100
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 64
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = time.Minute
	}
	if o.ProcessTimeout <= 0 {
		o.ProcessTimeout = 2 * time.Minute
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Minute
	}
	if o.MaxIdleCommands <= 0 {
		o.MaxIdleCommands = 20
	}
	if o.MaxSessionDuration <= 0 {
		o.MaxSessionDuration = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Server is an LMTP server.
type Server struct {
	opts      Options
	log       *slog.Logger
	mailboxes map[string]int // address -> index in groups
	groups    []Processor    // distinct processors; CatchAll last
	smtp      *smtp.Server
	slots     *slots
}

// New returns a server; Serve starts it. mailboxes maps recipient
// addresses to the processor of their mailbox. Addresses are compared
// case-insensitively; a "local+tag@domain" recipient falls back to
// "local@domain". It may be empty only when opts sets CatchAll; opts may
// be nil.
func New(mailboxes map[string]Processor, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	if len(mailboxes) == 0 && o.CatchAll == nil {
		return nil, errors.New("lmtpsource: no mailbox")
	}
	s := &Server{opts: o, log: o.Logger.With("component", "lmtp"), mailboxes: map[string]int{}}
	s.slots = &slots{max: o.MaxConnections, idle: o.IdleTimeout, maxIdleCmds: o.MaxIdleCommands,
		maxSession: o.MaxSessionDuration, log: s.log, conns: map[string]*trackedConn{}}
	for addr, p := range mailboxes {
		n := mailcase.NormalizeAddress(addr)
		if n == "" || p == nil {
			return nil, fmt.Errorf("lmtpsource: invalid mailbox address %q", addr)
		}
		s.mailboxes[n] = s.group(p)
	}
	if o.CatchAll != nil {
		s.groups = append(s.groups, o.CatchAll)
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.LMTP = true
	srv.Domain = o.Domain
	srv.TLSConfig = o.TLSConfig
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.MaxRecipients = o.MaxRecipients
	srv.MaxLineLength = 2000
	srv.ReadTimeout = o.ReadTimeout
	srv.WriteTimeout = o.WriteTimeout
	srv.ErrorLog = slogLogger{s.log}
	s.smtp = srv
	return s, nil
}

type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.l.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.l.Warn(fmt.Sprint(v...)) }

// Serve accepts connections on ln until Close or Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.smtp.Serve(&limitListener{Listener: ln, slots: s.slots})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.smtp.Close() }

// Shutdown stops accepting and waits for deliveries in progress (their
// mail is filed and answered) until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error { return s.smtp.Shutdown(ctx) }

// limitListener bounds concurrent connections (see slots).
type limitListener struct {
	net.Listener
	slots *slots
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.slots.admit(c); tc != nil {
			return tc, nil
		}
		l.slots.log.Warn("connection refused: limit reached, every session is delivering",
			"remote", c.RemoteAddr().String(), "limit", l.slots.max)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, "421 4.3.2 Too many connections, try again later\r\n")
		c.Close()
	}
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	remote := c.Conn().RemoteAddr().String()
	return &session{s: s, remote: remote, conn: s.slots.find(remote)}, nil
}

// group returns the index of p in s.groups, adding it when new, so that
// addresses of one mailbox share one filing.
func (s *Server) group(p Processor) int {
	if reflect.TypeOf(p).Comparable() {
		for i, g := range s.groups {
			if reflect.TypeOf(g) == reflect.TypeOf(p) && g == p {
				return i
			}
		}
	}
	s.groups = append(s.groups, p)
	return len(s.groups) - 1
}

// lookup returns the processor group of a recipient.
func (s *Server) lookup(rcpt string) (int, bool) {
	n := mailcase.NormalizeAddress(rcpt)
	if g, ok := s.mailboxes[n]; ok {
		return g, true
	}
	if local, domain, ok := strings.Cut(n, "@"); ok {
		if base, _, tagged := strings.Cut(local, "+"); tagged {
			if g, ok := s.mailboxes[base+"@"+domain]; ok {
				return g, true
			}
		}
	}
	if s.opts.CatchAll != nil {
		return len(s.groups) - 1, true
	}
	return 0, false
}

type session struct {
	s      *Server
	remote string
	conn   *trackedConn // nil only if the connection is already gone
	from   string
	rcpts  []string
	groups []int
}

var _ smtp.LMTPSession = (*session)(nil)

func (ss *session) Reset() {
	ss.from, ss.rcpts, ss.groups = "", nil, nil
	ss.conn.endTx(false)
}

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.conn.beginTx() {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Session closing, try again later"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	g, ok := ss.s.lookup(to)
	if !ok {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox here"}
	}
	ss.rcpts = append(ss.rcpts, to)
	ss.groups = append(ss.groups, g)
	return nil
}

// Data is only used over SMTP; the server speaks LMTP, so LMTPData is used.
func (ss *session) Data(r io.Reader) error {
	var first error
	collect := statusFunc(func(_ string, err error) {
		if first == nil {
			first = err
		}
	})
	if err := ss.LMTPData(r, collect); err != nil {
		return err
	}
	return first
}

type statusFunc func(rcpt string, err error)

func (f statusFunc) SetStatus(rcpt string, err error) { f(rcpt, err) }

// LMTPData reads the mail, files it once per distinct mailbox and sets
// every recipient's status.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	ss.conn.beginData()
	defer ss.conn.endTx(true)
	raw, err := io.ReadAll(r)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Reading the mail failed"}
	}
	raw = withReturnPath(raw, ss.from)
	// One filing per distinct mailbox, in parallel; each goroutine writes
	// its own slot.
	results := make([]*smtp.SMTPError, len(ss.s.groups))
	started := make([]bool, len(ss.s.groups))
	var wg sync.WaitGroup
	for _, g := range ss.groups {
		if started[g] {
			continue
		}
		started[g] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[g] = ss.s.file(ss.s.groups[g], raw)
		}()
	}
	wg.Wait()
	for i, rcpt := range ss.rcpts {
		if e := results[ss.groups[i]]; e != nil {
			status.SetStatus(rcpt, e)
		} else {
			status.SetStatus(rcpt, nil)
		}
	}
	return nil
}

// file processes raw with p and maps the outcome to an LMTP answer (nil
// for 250); see the package documentation.
func (s *Server) file(p Processor, raw []byte) *smtp.SMTPError {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ProcessTimeout)
	defer cancel()
	res, err := p.Process(ctx, raw, &mailcase.ProcessOptions{Attempt: 1})
	return s.answer(res, err)
}

// Answers of file. Their texts are generic on purpose.
func errTempFail() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
}

func errTooBig() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Mail refused: too big for the mailbox"}
}

func errNotFiled() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Mail cannot be filed"}
}

// answer maps the result of Process to an LMTP answer (nil for 250).
func (s *Server) answer(res *mailcase.Result, err error) *smtp.SMTPError {
	if res == nil {
		s.log.Error("mail not filed", "err", err)
		return errTempFail()
	}
	o := &res.Outcome
	switch o.Disposition {
	case mailcase.Done:
		s.log.Debug("mail filed", "mailbox", o.Mailbox, "action", o.Action, "case_id", o.CaseID)
		return nil
	case mailcase.Quarantine:
		if o.Action == mailcase.ActionRejected {
			s.log.Warn("mail refused by the mailbox policy", "mailbox", o.Mailbox, "reason", o.Error)
			return errTooBig()
		}
		s.log.Warn("mail refused and quarantined", "mailbox", o.Mailbox, "reason", o.Error)
		return errNotFiled()
	default:
		s.log.Warn("mail deferred", "mailbox", o.Mailbox, "code", mailcase.Code(err).String(), "reason", o.Error)
		return errTempFail()
	}
}

// withReturnPath adds the envelope sender as Return-Path (as a delivery
// agent does) unless the mail starts with one.
func withReturnPath(raw []byte, from string) []byte {
	if len(raw) >= 12 && strings.EqualFold(string(raw[:12]), "Return-Path:") {
		return raw
	}
	from = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '<' || r == '>' {
			return -1
		}
		return r
	}, from)
	var b bytes.Buffer
	b.Grow(len(raw) + len(from) + 17)
	b.WriteString("Return-Path: <" + from + ">\r\n")
	b.Write(raw)
	return b.Bytes()
}
