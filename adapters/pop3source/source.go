package pop3source

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Security selects how the connection is protected.
type Security string

// Connection security modes.
const (
	TLS      Security = "tls"      // implicit TLS (port 995), the default
	StartTLS Security = "starttls" // STLS upgrade, mandatory (port 110)
	Insecure Security = "insecure" // clear text: loopback tests only
)

// Source errors.
var (
	// ErrAuth is returned when the server refuses the credentials.
	ErrAuth = errors.New("pop3source: authentication failed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("pop3source: closed")
	// ErrUnknownMail is returned by Ack for a mail not handed out.
	ErrUnknownMail = errors.New("pop3source: unknown mail")
	// ErrNoUIDL is returned when the server has no UIDL command.
	ErrNoUIDL = errors.New("pop3source: server has no UIDL")
)

// Login holds the credentials Dial logs in with.
type Login struct {
	// Username is the account logged in; required.
	Username string
	// Password is the account's password.
	Password string
}

// Options configures a Source; nil or the zero value uses the defaults.
// The server address and the credentials are arguments of Dial.
type Options struct {
	// Security is the connection security; "" means TLS.
	Security Security
	// TLSConfig configures TLS; nil means system roots and the host of
	// the address given to Dial.
	TLSConfig *tls.Config
	// Mailbox names the mailcase mailbox; "" means "default".
	Mailbox string
	// State persists the seen-set (unique-ids of finished mail still on
	// the server); nil or a store without state support keeps it in
	// memory.
	State *mailcase.Store
	// StateKey overrides "pop3/<Mailbox>/<username>@<addr>".
	StateKey string
	// Keep leaves filed mail on the server (recorded in the seen-set)
	// instead of deleting it.
	Keep bool
	// MaxSize is the largest mail downloaded; larger mail is handed out
	// with its header only (TOP n 0), Truncated, and is never deleted.
	// 0 means 25 MiB, -1 no limit.
	MaxSize int64
	// MaxPerRun bounds the mails handed out per session; 0 means 1000.
	MaxPerRun int
	// Timeout bounds each command; 0 means 2 minutes.
	Timeout time.Duration
	// MaxLine bounds a status or listing line; 0 means 1 MiB. Message
	// data is bounded by MaxSize only.
	MaxLine int
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger

	// Set by Dial from its arguments.
	addr  string
	login Login
}

func (o Options) withDefaults() Options {
	if o.Security == "" {
		o.Security = TLS
	}
	if o.Mailbox == "" {
		o.Mailbox = "default"
	}
	if o.MaxSize == 0 {
		o.MaxSize = 25 << 20
	}
	if o.MaxPerRun <= 0 {
		o.MaxPerRun = 1000
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StateKey == "" {
		o.StateKey = "pop3/" + o.Mailbox + "/" + o.login.Username + "@" + o.addr
	}
	return o
}

// Source reads a POP3 maildrop. One run is one POP3 session: Receive
// connects, lists the maildrop with UIDL and hands out every mail whose
// unique-id is not in the seen-set; Ack(Done) records the unique-id and
// marks the mail deleted (DELE); the session ends with QUIT, which commits
// the deletions, once the maildrop is exhausted and nothing is in flight.
// Receive then returns io.EOF and the next call opens a new session.
//
// A crash before QUIT loses no mail: the deletions are not committed and
// the mail is handed out again, where the idempotency key recognises it.
//
// Ack does no network I/O while a download holds the connection: its DELE
// is queued and sent, with a deadline of its own, as soon as the
// connection is free (by the Ack itself, or by Receive before its next
// command). A Source is safe for concurrent use.
type Source struct {
	opts Options
	// io owns the connection: every exchange holds it, and it is taken
	// before mu (or with TryLock).
	io sync.Mutex
	c  *Client
	// mu guards the state below; no network exchange holds it.
	mu       sync.Mutex
	gen      int           // session number: DELEs of an old session are void
	todo     []MessageInfo // listed, not yet handed out
	inflight map[string]MessageInfo
	deles    []MessageInfo // acknowledged Done, DELE not sent yet (this session)
	count    int
	seen     map[string]string // unique-id -> seenDelete or seenKeep
	tooLarge map[string]int    // unique-id -> downloads that broke the session
	dirty    bool
	stateOK  bool
	eof      bool
	closed   bool
}

var _ mailcase.Source = (*Source)(nil)

// Seen-set values: filed mail to delete (its DELE may not have been
// committed yet), and mail kept on the server (Keep, header-only, or
// quarantined).
const (
	seenDelete = "delete"
	seenKeep   = "keep"
)

// Dial returns a source for the maildrop at addr (host:port) logged in
// with login; opts may be nil. Unlike imapsource.Dial it does not connect:
// it connects on the first Receive. Use Check to verify the configuration
// at once.
func Dial(ctx context.Context, addr string, login Login, opts *Options) (*Source, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.addr, o.login = addr, login
	o = o.withDefaults()
	if o.addr == "" || o.login.Username == "" {
		return nil, fmt.Errorf("pop3source: address and user name are required")
	}
	switch o.Security {
	case TLS, StartTLS, Insecure:
	default:
		return nil, fmt.Errorf("pop3source: unknown security %q", o.Security)
	}
	s := &Source{opts: o, seen: map[string]string{}, inflight: map[string]MessageInfo{}, tooLarge: map[string]int{}}
	if o.State != nil {
		v, ok, err := o.State.GetState(ctx, o.StateKey)
		switch {
		case errors.Is(err, mailcase.ErrUnimplemented):
			o.Logger.Warn("pop3source: store keeps no source state; seen-set kept in memory", "mailbox", o.Mailbox)
		case err != nil:
			return nil, fmt.Errorf("pop3source: load state: %w", err)
		default:
			s.stateOK = true
			if ok {
				if err := json.Unmarshal(v, &s.seen); err != nil {
					o.Logger.Warn("pop3source: unreadable seen-set ignored", "mailbox", o.Mailbox, "err", err)
					s.seen = map[string]string{}
				}
			}
		}
	}
	return s, nil
}

// Check connects and logs in once, reporting bad credentials at once.
func (s *Source) Check(ctx context.Context) error {
	s.io.Lock()
	defer s.io.Unlock()
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	return c.Quit(ctx)
}

func (s *Source) connect(ctx context.Context) (*Client, error) {
	o := s.opts
	tcfg := o.TLSConfig.Clone()
	if tcfg == nil {
		tcfg = &tls.Config{}
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName, _, _ = net.SplitHostPort(o.addr)
	}
	copts := &ClientOptions{MaxLine: o.MaxLine, Timeout: o.Timeout}
	var implicit *tls.Config
	if o.Security == TLS {
		implicit = tcfg
	}
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := DialClient(dctx, o.addr, implicit, copts)
	if err != nil {
		return nil, fmt.Errorf("pop3source: %s: %w", o.addr, err)
	}
	if o.Security == StartTLS {
		if err := c.StartTLS(dctx, tcfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("pop3source: %s: STLS: %w", o.addr, err)
		}
	}
	if err := c.Auth(dctx, o.login.Username, o.login.Password); err != nil {
		c.Close()
		if errors.Is(err, ErrServer) {
			return nil, fmt.Errorf("%w: %s@%s: %w", ErrAuth, o.login.Username, o.addr, err)
		}
		return nil, fmt.Errorf("pop3source: %s: login: %w", o.addr, err)
	}
	return c, nil
}

// maxHeader bounds the header of a truncated mail (TOP n 0).
const maxHeader = 4 << 20

// Receive returns the next mail of the session, or io.EOF when the session
// is over.
func (s *Source) Receive(ctx context.Context) (*mailcase.Received, error) {
	s.io.Lock()
	r, err := s.receiveIO(ctx)
	s.io.Unlock()
	s.kick(ctx)
	return r, err
}

// receiveIO is Receive with s.io held; s.mu is released during downloads.
func (s *Source) receiveIO(ctx context.Context) (*mailcase.Received, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.c != nil && s.eof {
		// The session is exhausted; a new one starts only once every mail
		// of this one is acknowledged (message numbers are per session).
		if len(s.inflight) > 0 {
			return nil, io.EOF
		}
		if err := s.quitLocked(ctx); err != nil {
			s.opts.Logger.Warn("pop3source: session end", "mailbox", s.opts.Mailbox, "err", err)
		}
	}
	s.eof = false
	if s.c == nil {
		if err := s.openLocked(ctx); err != nil {
			return nil, err
		}
	}
	for len(s.todo) > 0 && s.count < s.opts.MaxPerRun {
		s.sendDelesLocked(ctx)
		if s.c == nil {
			return nil, fmt.Errorf("pop3source: session lost while deleting filed mail")
		}
		m := s.todo[0]
		s.todo = s.todo[1:]
		c, gen := s.c, s.gen
		truncated := s.opts.MaxSize >= 0 && m.Size > s.opts.MaxSize || s.tooLarge[m.UID] > 0
		s.mu.Unlock()
		raw, truncated, err := s.download(ctx, c, m, truncated)
		s.mu.Lock()
		if s.closed {
			return nil, ErrClosed
		}
		if gen != s.gen || s.c != c {
			return nil, fmt.Errorf("pop3source: session ended during download")
		}
		if err != nil {
			if errors.Is(err, ErrServer) && c.Broken() == nil {
				// The message vanished (another client): skip it.
				s.opts.Logger.Warn("pop3source: retrieve failed", "mailbox", s.opts.Mailbox, "uidl", m.UID, "err", err)
				continue
			}
			if errors.Is(err, ErrMessageTooLarge) {
				// The server sent far more than it announced: next time
				// only the header is fetched; a second time the mail is
				// left on the server, so that it never blocks the rest.
				s.tooLarge[m.UID]++
				if s.tooLarge[m.UID] >= 2 {
					s.seen[m.UID] = seenKeep
					s.dirty = true
					s.saveLocked(ctx)
					s.opts.Logger.Error("pop3source: mail larger than announced, left on the server",
						"mailbox", s.opts.Mailbox, "uidl", m.UID, "size", m.Size, "err", err)
				}
			}
			s.abortLocked()
			return nil, fmt.Errorf("pop3source: retrieve %s: %w", m.UID, err)
		}
		s.count++
		s.inflight[m.UID] = m
		size := m.Size
		if !truncated {
			size = int64(len(raw))
		}
		return &mailcase.Received{Raw: raw, Mailbox: s.opts.Mailbox, ID: m.UID, Size: size, Truncated: truncated, Attempt: 1}, nil
	}
	s.todo = nil
	if len(s.inflight) == 0 {
		if err := s.quitLocked(ctx); err != nil {
			// Uncommitted deletions are redone next session.
			s.opts.Logger.Warn("pop3source: session end", "mailbox", s.opts.Mailbox, "err", err)
		}
	}
	s.eof = true
	return nil, io.EOF
}

// download reads m: whole (RETR) up to the size limit, or its header
// (TOP n 0) when truncated or when the whole mail turns out larger than
// announced. A header over maxHeader is cut there. Only s.io is held.
func (s *Source) download(ctx context.Context, c *Client, m MessageInfo, truncated bool) ([]byte, bool, error) {
	if !truncated {
		limit := int64(-1)
		if s.opts.MaxSize >= 0 {
			limit = max(s.opts.MaxSize, m.Size) + m.Size/10 + 64<<10
		}
		raw, err := c.Retr(ctx, m.Num, limit)
		if !errors.Is(err, ErrMessageTooLarge) || c.Broken() != nil {
			return raw, false, err
		}
		s.opts.Logger.Warn("pop3source: mail larger than announced, handing out its header", "mailbox", s.opts.Mailbox, "uidl", m.UID, "size", m.Size)
	}
	raw, err := c.Top(ctx, m.Num, 0, maxHeader)
	if errors.Is(err, ErrMessageTooLarge) && c.Broken() == nil {
		s.opts.Logger.Warn("pop3source: header over 4 MiB, handing out its beginning", "mailbox", s.opts.Mailbox, "uidl", m.UID)
		err = nil
	}
	return raw, true, err
}

func (s *Source) openLocked(ctx context.Context) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	uidl, err := c.UIDL(ctx)
	if err != nil {
		c.Close()
		if errors.Is(err, ErrServer) {
			return fmt.Errorf("%w: %w", ErrNoUIDL, err)
		}
		return fmt.Errorf("pop3source: UIDL: %w", err)
	}
	list, err := c.List(ctx)
	if err != nil {
		c.Close()
		return fmt.Errorf("pop3source: LIST: %w", err)
	}
	sizes := make(map[int]int64, len(list))
	for _, m := range list {
		sizes[m.Num] = m.Size
	}
	present := make(map[string]bool, len(uidl))
	s.todo = s.todo[:0]
	s.deles = nil
	s.gen++
	s.c, s.count = c, 0
	for _, m := range uidl {
		present[m.UID] = true
		m.Size = sizes[m.Num]
		if v, ok := s.seen[m.UID]; ok {
			if v == seenDelete && !s.opts.Keep {
				// Filed earlier, deletion never committed: delete now.
				if err := c.Dele(ctx, m.Num); err != nil {
					s.opts.Logger.Warn("pop3source: DELE failed", "mailbox", s.opts.Mailbox, "uidl", m.UID, "err", err)
				}
			}
			continue
		}
		s.todo = append(s.todo, m)
	}
	slices.SortFunc(s.todo, func(a, b MessageInfo) int { return a.Num - b.Num })
	// Forget unique-ids no longer on the server.
	for u := range s.seen {
		if !present[u] {
			delete(s.seen, u)
			s.dirty = true
		}
	}
	for u := range s.tooLarge {
		if !present[u] {
			delete(s.tooLarge, u)
		}
	}
	return nil
}

func (s *Source) saveLocked(ctx context.Context) {
	if !s.stateOK || !s.dirty {
		return
	}
	v, _ := json.Marshal(s.seen) // sorted keys
	if err := s.opts.State.PutState(ctx, s.opts.StateKey, v); err != nil {
		s.opts.Logger.Warn("pop3source: save seen-set", "mailbox", s.opts.Mailbox, "err", err)
		return
	}
	s.dirty = false
}

// quitLocked sends the queued DELEs, saves the seen-set and ends the
// session, committing them. s.io and s.mu are held.
func (s *Source) quitLocked(ctx context.Context) error {
	if s.c == nil {
		return nil
	}
	s.sendDelesLocked(ctx)
	if s.c == nil {
		return fmt.Errorf("pop3source: session lost while deleting filed mail")
	}
	s.saveLocked(ctx)
	c := s.c
	s.c = nil
	s.deles = nil
	qctx, cancel := s.cmdContext(ctx)
	defer cancel()
	if err := c.Quit(qctx); err != nil {
		return fmt.Errorf("pop3source: QUIT: %w", err)
	}
	return nil
}

// cmdContext gives a command its own deadline, free of the caller's
// cancellation: an Ack's context may be about to expire.
func (s *Source) cmdContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opts.Timeout)
}

// sendDelesLocked sends the queued DELEs, each with its own deadline,
// releasing s.mu during each exchange. A refused DELE leaves the mail for
// the next session (its unique-id is in the seen-set as seenDelete); a
// broken session is dropped. s.io and s.mu are held.
func (s *Source) sendDelesLocked(ctx context.Context) {
	for len(s.deles) > 0 && s.c != nil {
		m := s.deles[0]
		s.deles = s.deles[1:]
		c := s.c // stable: s.io is held
		dctx, cancel := s.cmdContext(ctx)
		s.mu.Unlock()
		err := c.Dele(dctx, m.Num)
		s.mu.Lock()
		cancel()
		if err == nil || s.c != c {
			continue
		}
		s.opts.Logger.Warn("pop3source: DELE failed, deleted next session", "mailbox", s.opts.Mailbox, "uidl", m.UID, "err", err)
		if s.c.Broken() != nil {
			s.abortLocked()
		}
	}
}

// abortLocked drops the session without committing deletions.
func (s *Source) abortLocked() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
	s.todo = nil
	s.deles = nil
	clear(s.inflight)
	s.eof = false
}

// kick applies queued work (DELEs, the QUIT ending an exhausted session)
// if the connection is free; whoever holds it calls kick after releasing
// it, so queued work is never stranded.
func (s *Source) kick(ctx context.Context) {
	for {
		s.mu.Lock()
		work := s.c != nil && (len(s.deles) > 0 || s.eof && len(s.inflight) == 0 && len(s.todo) == 0)
		s.mu.Unlock()
		if !work || !s.io.TryLock() {
			return
		}
		s.mu.Lock()
		if s.c != nil {
			s.sendDelesLocked(ctx)
			if s.eof && len(s.inflight) == 0 && len(s.todo) == 0 {
				if err := s.quitLocked(ctx); err != nil {
					s.opts.Logger.Warn("pop3source: session end", "mailbox", s.opts.Mailbox, "err", err)
				}
			}
		}
		s.mu.Unlock()
		s.io.Unlock()
	}
}

// Ack records the disposition: Done marks the mail deleted (or keeps it,
// with Keep, or when only its header was downloaded) and remembers its
// unique-id; Quarantine leaves it on the server, remembered so that it is
// not handed out again; Retry leaves it for the next session. Ack never
// waits for a download: the DELE is queued and sent when the connection
// is free, with its own deadline.
func (s *Source) Ack(ctx context.Context, r *mailcase.Received, d mailcase.Disposition, reason string) error {
	if r == nil {
		return fmt.Errorf("%w: nil", ErrUnknownMail)
	}
	s.mu.Lock()
	m, ok := s.inflight[r.ID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownMail, r.ID)
	}
	switch d {
	case mailcase.Done, mailcase.Quarantine:
		delete(s.inflight, r.ID)
		s.dirty = true
		s.seen[m.UID] = seenKeep
		if d == mailcase.Done && !s.opts.Keep && !r.Truncated && s.c != nil {
			s.seen[m.UID] = seenDelete
			s.deles = append(s.deles, m)
		}
		if d == mailcase.Quarantine {
			s.opts.Logger.Warn("pop3source: mail quarantined, left on the server", "mailbox", s.opts.Mailbox, "uidl", m.UID, "reason", reason)
		}
	case mailcase.Retry:
		delete(s.inflight, r.ID)
	default:
		s.mu.Unlock()
		return fmt.Errorf("pop3source: unknown disposition %v", d)
	}
	s.mu.Unlock()
	s.kick(ctx)
	return nil
}

// Close ends the session: with QUIT (committing deletions) when nothing is
// in flight, else by dropping the connection (nothing uncommitted is
// deleted).
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	if len(s.inflight) > 0 {
		s.saveLocked(ctx)
		s.abortLocked()
		return nil
	}
	return s.quitLocked(ctx)
}
