package imapsource

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Sentinel errors.
var (
	// ErrAuth is returned when the server refuses the credentials; it is
	// not retried.
	ErrAuth = errors.New("imapsource: authentication failed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("imapsource: closed")
	// ErrUnknownMail is returned by Ack for a Received this source did not
	// hand out (or already acknowledged).
	ErrUnknownMail = errors.New("imapsource: unknown mail")
	// ErrProtocol is returned when the server breaks the protocol (a
	// literal larger than announced, a missing body).
	ErrProtocol = errors.New("imapsource: protocol violation")
	// ErrFolder is returned by Dial when a configured folder (quarantine,
	// oversize, move destination) does not exist and cannot be created.
	ErrFolder = errors.New("imapsource: folder unavailable")
	// ErrNoKeywords is returned by Dial in Flag mode when the server does
	// not store keywords (PERMANENTFLAGS without \*), or for an unusable
	// After.Flag.
	ErrNoKeywords = errors.New("imapsource: server stores no keywords")
)

// errRefused marks an after-commit action the server refused (retried
// after a backoff).
var errRefused = errors.New("refused by the server")

// errRetryUID marks a fetch failure caused by one mail, whose next fetch
// is downgraded (header only, then partial, then a synthetic header).
var errRetryUID = errors.New("mail refetched with a smaller fetch")

// Fetch modes of a mail, escalated each time a literal is too large.
const (
	modeWhole     = iota
	modeHeader    // BODY.PEEK[HEADER]
	modePartial   // BODY.PEEK[]<0.4194304>: the header is over 4 MiB
	modeSynthetic // nothing readable: a synthetic header is handed out
)

// maxHeader bounds a header-only or partial download.
const maxHeader = 4 << 20

// maxActionDelay bounds the backoff of a refused after-commit action.
const maxActionDelay = time.Hour

// Source reads one IMAP folder. It implements mailcase.Source with
// acknowledge-after-commit: nothing is deleted, moved or flagged before
// Ack(Done), and the after-commit actions are applied in batches (at the
// latest when no mail is in flight, and on Flush and Close).
//
// While the pipeline works on a batch, the next one is fetched in the
// background (one goroutine at a time, stopped by Close), so that network
// and processing overlap.
//
// A Source is safe for concurrent use.
type Source struct {
	opts Options

	// io owns the connection: every network exchange holds it. It is
	// never acquired while holding mu (except with TryLock).
	io   sync.Mutex
	c    *imapclient.Client
	raw  net.Conn // under c; closing it aborts a command
	idle *imapclient.IdleCommand
	// lostAt is when a broken connection was dropped (zero while
	// connected or never connected): the next connect logs the reconnect.
	lostAt time.Time

	// mu guards the state below; no network exchange holds it.
	mu         sync.Mutex
	validity   uint32
	next       imap.UID // watermark: every UID below is finished
	scanMax    imap.UID
	stateOK    bool
	todo       []meta                 // scanned, not yet fetched
	queue      []*entry               // fetched, not yet handed out
	inflight   map[string]*entry      // handed out, not acknowledged
	pending    []*entry               // acknowledged, server action not yet applied
	retryAt    map[imap.UID]time.Time // acknowledged Retry
	attempts   map[imap.UID]int       // deliveries per UID
	unfinished map[imap.UID]struct{}  // scanned and not finished
	mode       map[imap.UID]int       // fetch mode above modeWhole
	skip       map[imap.UID]struct{}  // quarantined and left in place
	failed     map[imap.UID]*entry    // acknowledged, server refused the action: retried at entry.retryAt
	reExpunge  imap.UIDSet            // filed mail left \Deleted: UID EXPUNGE at the next flush
	marker     imap.Flag              // keyword marking filed mail kept on the server; "" when unsupported
	extraFlag  imap.Flag              // system flag set with the marker in Flag mode
	runCount   int
	eof        bool
	closed     bool
	fetching   bool          // a fill goroutine runs
	queued     int64         // bytes of the mail in queue
	ready      chan struct{} // closed when a mail is queued or a fill ends (while waited on)
	readyWait  bool          // a Receive waits on ready
	waiting    int           // Receive calls in wait (woken by s.wake when mail is queued)
	maxAhead   int64         // bound of the bytes fetched ahead (maxQueued; lowered by tests)
	stateDirty bool          // the watermark or UIDVALIDITY changed since the last save
	fillRes    *fillResult   // outcome of the last fill
	closing    chan struct{} // closed by Close
	wg         sync.WaitGroup

	wake  chan struct{}
	rearm chan struct{} // a refused action was scheduled: recompute the wait
	// reidle tells a wait that its IDLE was stopped by someone else, or
	// that actions are pending that nobody could apply (the connection was
	// busy): it applies them and idles again, without a rescan.
	reidle chan struct{}
}

var _ mailcase.Source = (*Source)(nil)

type meta struct {
	uid  imap.UID
	size int64
}

type entry struct {
	r        *mailcase.Received
	uid      imap.UID
	validity uint32
	d        mailcase.Disposition
	// After a refused after-commit action: refusals so far, when to try
	// again, and whether the COPY of a COPY+STORE move already succeeded.
	failures int
	retryAt  time.Time
	copied   bool
}

type fillResult struct {
	added int
	err   error
}

type state struct {
	UIDValidity uint32 `json:"uidvalidity"`
	NextUID     uint32 `json:"next_uid"`
}

// Dial connects to addr (host:port), logs in with login and selects the
// folder, so that bad credentials or a missing folder are reported at once;
// opts may be nil. Close releases the connection.
func Dial(ctx context.Context, addr string, login Login, opts *Options) (*Source, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.addr, o.login = addr, login
	o = o.withDefaults()
	if o.addr == "" {
		return nil, fmt.Errorf("imapsource: no server address")
	}
	if o.login.Username == "" {
		return nil, fmt.Errorf("imapsource: no user name")
	}
	switch o.Security {
	case TLS, StartTLS, Insecure:
	default:
		return nil, fmt.Errorf("imapsource: unknown security %q", o.Security)
	}
	switch o.After.Kind {
	case Delete:
	case Flag:
		if strings.EqualFold(o.After.Flag, string(imap.FlagDeleted)) || strings.ContainsAny(o.After.Flag, " ()[]{}%*\"\r\n") {
			return nil, fmt.Errorf("%w: after-commit flag %q cannot mark filed mail", ErrNoKeywords, o.After.Flag)
		}
	case Move:
		if o.After.Folder == "" {
			return nil, fmt.Errorf("imapsource: after-commit move needs a folder")
		}
	default:
		return nil, fmt.Errorf("imapsource: unknown after-commit action %q", o.After.Kind)
	}
	s := &Source{
		opts:       o,
		inflight:   make(map[string]*entry),
		retryAt:    make(map[imap.UID]time.Time),
		attempts:   make(map[imap.UID]int),
		unfinished: make(map[imap.UID]struct{}),
		mode:       make(map[imap.UID]int),
		skip:       make(map[imap.UID]struct{}),
		failed:     make(map[imap.UID]*entry),
		closing:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		rearm:      make(chan struct{}, 1),
		reidle:     make(chan struct{}, 1),
		maxAhead:   maxQueued,
		next:       1,
	}
	if err := s.loadState(ctx); err != nil {
		return nil, err
	}
	s.io.Lock()
	defer s.io.Unlock()
	if err := s.connectIO(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Source) loadState(ctx context.Context) error {
	if s.opts.State == nil {
		return nil
	}
	v, ok, err := s.opts.State.GetState(ctx, s.opts.StateKey)
	if errors.Is(err, mailcase.ErrUnimplemented) {
		s.opts.Logger.Warn("imapsource: store keeps no source state; UID watermark kept in memory", "mailbox", s.opts.Mailbox)
		return nil
	}
	if err != nil {
		return fmt.Errorf("imapsource: load state: %w", err)
	}
	s.stateOK = true
	if !ok {
		return nil
	}
	var st state
	if err := json.Unmarshal(v, &st); err != nil {
		s.opts.Logger.Warn("imapsource: unreadable state, rescanning from UID 1", "mailbox", s.opts.Mailbox, "err", err)
		return nil
	}
	s.validity = st.UIDValidity
	if st.NextUID > 0 {
		s.next = imap.UID(st.NextUID)
	}
	return nil
}

// saveStateLocked marks the state for saving; persistIO writes it. s.mu
// is held.
func (s *Source) saveStateLocked() {
	s.stateDirty = s.stateOK
}

// persistIO writes the state when it changed, outside s.mu, so that a
// durable write (an fsync) never holds up Receive and Ack. Callers hold
// s.io, which orders the writes: a snapshot never overwrites a newer one.
// Saving late is safe: a watermark behind the truth only costs a rescan.
func (s *Source) persistIO(ctx context.Context) {
	s.mu.Lock()
	if !s.stateDirty {
		s.mu.Unlock()
		return
	}
	s.stateDirty = false
	v, _ := json.Marshal(state{UIDValidity: s.validity, NextUID: uint32(s.next)})
	s.mu.Unlock()
	if err := s.opts.State.PutState(ctx, s.opts.StateKey, v); err != nil {
		// Losing the watermark only costs a rescan: idempotency keys
		// make redelivery safe.
		s.opts.Logger.Warn("imapsource: save state", "mailbox", s.opts.Mailbox, "err", err)
		s.mu.Lock()
		s.stateDirty = true // saved again next time
		s.mu.Unlock()
	}
}

func (s *Source) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// signalIdle tells a Receive in wait to apply the pending actions and to
// idle again (see reidle).
func (s *Source) signalIdle() {
	select {
	case s.reidle <- struct{}{}:
	default:
	}
}

// connectIO dials, logs in, selects the folder and handles a UIDVALIDITY
// change. s.io is held.
func (s *Source) connectIO(ctx context.Context) error {
	o := s.opts
	ctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	copts := &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					s.signal()
				}
			},
		},
	}
	tcfg := o.TLSConfig.Clone()
	if tcfg == nil {
		tcfg = &tls.Config{}
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName, _, _ = net.SplitHostPort(o.addr)
	}
	copts.TLSConfig = tcfg
	d := &net.Dialer{Timeout: o.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return fmt.Errorf("imapsource: connect %s: %w", o.addr, err)
	}
	// Closing raw aborts whatever is in progress on the connection.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var c *imapclient.Client
	switch o.Security {
	case StartTLS:
		c, err = imapclient.NewStartTLS(raw, copts)
	case Insecure:
		c = imapclient.New(raw, copts)
		err = c.WaitGreeting()
	default:
		tc := tls.Client(raw, tcfg)
		if err = tc.HandshakeContext(ctx); err == nil {
			c = imapclient.New(tc, copts)
			err = c.WaitGreeting()
		}
	}
	if err != nil {
		raw.Close()
		if c != nil {
			c.Close()
		}
		return fmt.Errorf("imapsource: connect %s: %w", o.addr, err)
	}
	if err := s.login(c); err != nil {
		raw.Close()
		c.Close()
		return err
	}
	sel, err := c.Select(o.Folder, nil).Wait()
	if err != nil {
		raw.Close()
		c.Close()
		return fmt.Errorf("imapsource: select %s: %w", o.Folder, err)
	}
	if err := s.ensureFolders(c); err != nil {
		raw.Close()
		c.Close()
		return err
	}
	marker, extra, err := s.markerFor(sel.PermanentFlags)
	if err != nil {
		raw.Close()
		c.Close()
		return err
	}
	s.mu.Lock()
	s.marker, s.extraFlag = marker, extra
	if s.validity != 0 && sel.UIDValidity != s.validity {
		o.Logger.Warn("imapsource: UIDVALIDITY changed, rescanning from UID 1",
			"mailbox", o.Mailbox, "folder", o.Folder, "old", s.validity, "new", sel.UIDValidity)
		s.next, s.scanMax = 1, 0
		s.todo, s.queue, s.pending = nil, nil, nil
		s.queued = 0
		clear(s.retryAt)
		clear(s.unfinished)
		clear(s.mode)
		clear(s.skip)
		clear(s.failed)
		s.reExpunge = nil
		// In-flight mail keeps its old UIDVALIDITY in its ID: Ack ignores
		// the server action for it and the rescan hands it out again,
		// where the idempotency key makes it a duplicate.
	}
	if sel.UIDValidity != s.validity {
		s.validity = sel.UIDValidity
		s.saveStateLocked()
	}
	s.mu.Unlock()
	s.persistIO(ctx)
	s.c, s.raw = c, raw
	if !s.lostAt.IsZero() {
		o.Logger.Info("imapsource: reconnected", "mailbox", o.Mailbox, "addr", o.addr, "down", time.Since(s.lostAt))
		s.lostAt = time.Time{}
	}
	return nil
}

// ensureFolders creates the quarantine, oversize and move folders. A
// refused CREATE is fine when the folder exists (ALREADYEXISTS, or a
// STATUS that succeeds); otherwise the mail would have nowhere to go, and
// the configuration is refused with ErrFolder.
func (s *Source) ensureFolders(c *imapclient.Client) error {
	o := s.opts
	var folders []string
	for _, f := range []string{o.QuarantineFolder, o.OversizeFolder, o.After.Folder} {
		if f == "" || o.After.Kind != Move && f == o.After.Folder || slices.Contains(folders, f) {
			continue
		}
		folders = append(folders, f)
	}
	for _, f := range folders {
		cerr := c.Create(f, nil).Wait()
		if cerr == nil {
			continue
		}
		if connBroken(cerr) {
			return fmt.Errorf("imapsource: create %s: %w", f, cerr)
		}
		var ie *imap.Error
		if errors.As(cerr, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			continue
		}
		if _, serr := c.Status(f, &imap.StatusOptions{NumMessages: true}).Wait(); serr != nil {
			return fmt.Errorf("%w: %q cannot be created (%v) nor opened (%v)", ErrFolder, f, cerr, serr)
		}
	}
	return nil
}

// markerFor chooses the keyword marking filed mail kept on the server,
// given the folder's PERMANENTFLAGS, and the system flag set with it.
func (s *Source) markerFor(perm []imap.Flag) (marker, extra imap.Flag, err error) {
	o := s.opts
	marker = FiledKeyword
	if o.After.Kind == Flag && o.After.Flag != "" {
		if strings.HasPrefix(o.After.Flag, `\`) {
			// Other clients set system flags (a user reading mail in
			// webmail sets \Seen): set it, but mark with the keyword.
			extra = imap.Flag(o.After.Flag)
		} else {
			marker = imap.Flag(o.After.Flag)
		}
	}
	// No PERMANENTFLAGS (nil) means every flag is permanent (RFC 3501).
	if perm == nil || hasFlag(perm, imap.FlagWildcard) || hasFlag(perm, marker) {
		return marker, extra, nil
	}
	if o.After.Kind == Flag {
		return "", "", fmt.Errorf("%w: %s of %s (PERMANENTFLAGS %v): after-commit flag mode needs keyword %s; use delete or move",
			ErrNoKeywords, o.addr, o.Folder, perm, marker)
	}
	o.Logger.Warn("imapsource: server stores no keywords; filed mail kept in place is not marked",
		"mailbox", o.Mailbox, "folder", o.Folder, "permanentflags", perm)
	return "", "", nil
}

func (s *Source) login(c *imapclient.Client) error {
	o := s.opts
	var err error
	switch {
	case o.login.TokenSource != nil:
		tok, terr := o.login.TokenSource.Token()
		if terr != nil {
			return fmt.Errorf("imapsource: oauth2 token: %w", terr)
		}
		err = c.Authenticate(&xoauth2{user: o.login.Username, token: tok.AccessToken})
	case c.Caps().Has(imap.CapLoginDisabled):
		err = c.Authenticate(newPlain(o.login.Username, o.login.Password))
	default:
		err = c.Login(o.login.Username, o.login.Password).Wait()
	}
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return fmt.Errorf("%w: %s@%s: %s", ErrAuth, o.login.Username, o.addr, ie.Text)
		}
		return fmt.Errorf("imapsource: login: %w", err)
	}
	return nil
}

// dropIO closes a broken connection; the next exchange reconnects. s.io
// is held.
func (s *Source) dropIO() {
	if s.idle != nil {
		_ = s.idle.Close()
		s.idle = nil
	}
	if s.c != nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			s.lostAt = time.Now()
			s.opts.Logger.Info("imapsource: connection lost; reconnecting", "mailbox", s.opts.Mailbox, "addr", s.opts.addr)
		}
		_ = s.raw.Close()
		_ = s.c.Close()
		s.c, s.raw = nil, nil
	}
}

// stopIdleIO ends a running IDLE, and tells the Receive waiting with it
// to idle again once the connection is free. s.io is held.
func (s *Source) stopIdleIO() {
	if s.idle == nil {
		return
	}
	s.endIdleIO()
	s.signalIdle()
}

// endIdleIO ends a running IDLE. s.io is held.
func (s *Source) endIdleIO() {
	if s.idle == nil {
		return
	}
	idle := s.idle
	s.idle = nil
	if err := idle.Close(); err != nil {
		s.dropIO()
		return
	}
	if err := idle.Wait(); connBroken(err) {
		s.dropIO()
	}
}

// connBroken reports whether err leaves the connection unusable (anything
// but a tagged NO/BAD answer).
func connBroken(err error) bool {
	var ie *imap.Error
	return err != nil && !errors.As(err, &ie)
}

func (s *Source) backoff(attempt int) time.Duration {
	d := s.opts.BackoffMin << min(attempt, 20)
	return min(d, s.opts.BackoffMax)
}

// Receive returns the next mail. In polling mode (Options.Watch false) it
// returns io.EOF once the folder holds no more mail to hand out or
// Options.MaxPerRun mails were handed out; the next call starts a new run.
// A Receive ended by its ctx also ends the run. In Watch mode it waits for
// new mail with IDLE (or polling).
func (s *Source) Receive(ctx context.Context) (*mailcase.Received, error) {
	r, err := s.receive(ctx)
	if err != nil && ctx.Err() != nil {
		// The run ended by a timeout or a cancellation: the next Receive
		// starts a new run, with a fresh MaxPerRun count.
		s.mu.Lock()
		s.eof = true
		s.mu.Unlock()
	}
	return r, err
}

func (s *Source) receive(ctx context.Context) (*mailcase.Received, error) {
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if s.eof {
			s.eof, s.runCount = false, 0
		}
		if len(s.queue) > 0 {
			r := s.handOutLocked()
			s.prefetchLocked()
			s.mu.Unlock()
			return r, nil
		}
		if !s.opts.Watch && s.runCount >= s.opts.MaxPerRun {
			s.eof = true
			s.mu.Unlock()
			return nil, io.EOF
		}
		if s.fetching {
			// Mail is handed out as soon as it is read, not at the end
			// of its batch.
			if s.ready == nil {
				s.ready = make(chan struct{})
			}
			ready := s.ready
			s.readyWait = true
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-ready:
			}
			continue
		}
		res := s.fillRes
		s.fillRes = nil
		if res == nil {
			s.startFillLocked()
			s.mu.Unlock()
			continue
		}
		// Mail left to fetch (a fill stopped for room ahead, or by the
		// run limit of a fill started before the run ended): fetch on.
		more := len(s.todo) > 0
		s.mu.Unlock()
		switch {
		case res.err != nil:
			if errors.Is(res.err, ErrAuth) {
				return nil, res.err
			}
			failures++
			if failures > s.opts.Reconnects {
				return nil, res.err
			}
			s.opts.Logger.Warn("imapsource: connection failed, retrying", "mailbox", s.opts.Mailbox, "attempt", failures, "err", res.err)
			if err := sleep(ctx, s.backoff(failures-1)); err != nil {
				return nil, err
			}
		case res.added > 0 || more:
			failures = 0
		case !s.opts.Watch:
			s.mu.Lock()
			s.eof = true
			s.mu.Unlock()
			return nil, io.EOF
		default:
			failures = 0
			if err := s.wait(ctx); err != nil {
				return nil, err
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for new mail (IDLE), a due retry, an Ack, mail queued by a
// fill (whoever started it) or the poll interval. Actions left pending
// because the connection was busy when they were due are applied here.
func (s *Source) wait(ctx context.Context) error {
	start := time.Now()
	s.mu.Lock()
	if len(s.queue) > 0 {
		s.mu.Unlock()
		return nil // queued meanwhile
	}
	s.waiting++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}()
	t := time.NewTimer(s.waitFor(start))
	defer t.Stop()
	var err error
loop:
	for {
		s.mu.Lock()
		fetching := s.fetching
		s.mu.Unlock()
		if fetching {
			// A fetch holds the connection (it stopped the IDLE): it
			// applies the actions due and wakes this wait when it queues
			// mail or ends; meanwhile the wait stays responsive to ctx.
			select {
			case <-ctx.Done():
				err = ctx.Err()
				break loop
			case <-s.wake:
				break loop
			case <-t.C:
				break loop
			case <-s.closing:
				break loop
			case <-s.rearm:
				t.Reset(s.waitFor(start))
			case <-s.reidle:
			}
			continue
		}
		s.io.Lock()
		s.mu.Lock()
		due := s.flushDueLocked()
		s.mu.Unlock()
		if due && s.c != nil {
			s.endIdleIO()
			if ferr := s.flushIO(ctx); ferr != nil {
				s.opts.Logger.Warn("imapsource: after-commit action deferred", "mailbox", s.opts.Mailbox, "err", ferr)
			}
		}
		if s.c == nil {
			// Lost: Receive reconnects (with its backoff).
			s.io.Unlock()
			break loop
		}
		// (Another Receive may already be idling: then just wait with it.)
		if s.idle == nil && (s.c.Caps().Has(imap.CapIdle) || s.c.Caps().Has(imap.CapIMAP4rev2)) {
			idle, ierr := s.c.Idle()
			if ierr != nil {
				s.opts.Logger.Warn("imapsource: IDLE failed, polling", "mailbox", s.opts.Mailbox, "err", ierr)
				if connBroken(ierr) {
					s.dropIO()
				}
			} else {
				s.idle = idle
			}
		}
		s.io.Unlock()
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		case <-s.wake:
			break loop
		case <-t.C:
			break loop
		case <-s.closing:
			break loop
		case <-s.rearm:
			// A refused action was scheduled: wake for its retry, without
			// rescanning now.
			t.Reset(s.waitFor(start))
		case <-s.reidle:
			// The IDLE was stopped by a fetch or a flush, or actions are
			// pending that could not be applied: apply them, idle again.
		}
	}
	s.io.Lock()
	s.endIdleIO()
	s.io.Unlock()
	return err
}

// waitFor is how long a wait begun at start lasts: the poll interval, or
// until the next retry or retried action is due.
func (s *Source) waitFor(start time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := max(s.opts.PollInterval-time.Since(start), 0)
	now := s.opts.Now()
	for _, at := range s.retryAt {
		wait = min(wait, max(at.Sub(now), 10*time.Millisecond))
	}
	for _, e := range s.failed {
		wait = min(wait, max(e.retryAt.Sub(now), 10*time.Millisecond))
	}
	return wait
}

func (s *Source) handOutLocked() *mailcase.Received {
	e := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	s.queued -= int64(len(e.r.Raw))
	s.attempts[e.uid]++
	e.r.Attempt = s.attempts[e.uid]
	s.inflight[e.r.ID] = e
	s.runCount++
	return e.r
}

// readyLocked wakes the Receive calls waiting for mail.
func (s *Source) readyLocked() {
	if s.readyWait {
		close(s.ready)
		s.ready, s.readyWait = nil, false
	}
}

// maxQueued bounds the bytes of mail fetched ahead of the pipeline: the
// mail queued plus the batch being fetched, by the sizes the server
// announces (RFC822.SIZE; at most 4 MiB for a header-only fetch). One mail
// larger than it is still fetched, alone, when nothing is queued.
const maxQueued = 32 << 20

// roomLocked reports whether the next batch may be fetched ahead: mail is
// left to fetch, at most one batch is queued, and the next mail fits
// within the byte bound beside the mail queued, so that one fetch is in
// flight while the pipeline works on the batch before it. s.mu is held.
func (s *Source) roomLocked() bool {
	if s.closed || len(s.todo) == 0 || len(s.queue) > s.opts.BatchSize || s.queued >= s.maxAhead {
		return false
	}
	if m := s.todo[0]; m.size >= 0 && len(s.queue) > 0 && s.queued+s.costLocked(m) > s.maxAhead {
		return false // its size is known: it waits for the queue to drain
	}
	return s.opts.Watch || s.runCount+len(s.queue) < s.opts.MaxPerRun
}

// costLocked is the number of bytes fetching m brings into the queue, as
// far as the server announced: the whole mail, or at most maxHeader when
// only its header (or its first part) is fetched. s.mu is held.
func (s *Source) costLocked(m meta) int64 {
	if s.mode[m.uid] > modeWhole || s.opts.MaxSize >= 0 && m.size > s.opts.MaxSize {
		return min(m.size, maxHeader)
	}
	return m.size
}

// prefetchLocked starts fetching the next batch when there is room for it.
func (s *Source) prefetchLocked() {
	if !s.fetching && s.roomLocked() {
		s.startFillLocked()
	}
}

// startFillLocked runs fillIO in a goroutine, batch after batch while
// there is room ahead of the pipeline (the pending actions are applied
// between batches); its outcome lands in s.fillRes and s.queue. Close
// stops it.
func (s *Source) startFillLocked() {
	s.fetching = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		s.io.Lock()
		s.stopIdleIO()
		added, err := s.fillIO(ctx)
		for err == nil && added > 0 {
			s.mu.Lock()
			more := s.roomLocked()
			s.mu.Unlock()
			if !more {
				break
			}
			var n int
			n, err = s.fillIO(ctx)
			added += n
			if n == 0 {
				break
			}
		}
		s.io.Unlock()
		s.mu.Lock()
		s.fetching = false
		s.fillRes = &fillResult{added: added, err: err}
		s.readyLocked()
		if s.waiting > 0 {
			s.signal() // a waiting Receive looks at the outcome
		}
		// An Ack during the fetch left its actions to it: apply them if
		// due (an Ack from now on sees no fetch and applies its own).
		due := err == nil && s.flushDueLocked()
		s.mu.Unlock()
		if due {
			s.flushOrHandOver(ctx)
		}
	}()
}

// fillIO applies pending actions, scans when nothing is left to fetch and
// fetches the next batch into the queue. A batch found gone from the
// server (expunged by another client) does not end it: it moves on to the
// next UIDs. It returns 0 with a nil error when nothing is left to fetch
// after a scan, or when the next mail does not fit ahead of the pipeline
// (then s.todo is not empty). s.io is held.
func (s *Source) fillIO(ctx context.Context) (int, error) {
	if s.c == nil {
		if err := s.connectIO(ctx); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	due := s.flushDueLocked() || len(s.failed) > 0 || len(s.reExpunge) > 0
	s.mu.Unlock()
	if due {
		if err := s.flushIO(ctx); err != nil {
			return 0, err
		}
		if s.c == nil {
			return 0, fmt.Errorf("imapsource: connection lost while applying after-commit actions")
		}
	}
	scanned := false
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		s.mu.Lock()
		needScan := len(s.todo) == 0
		s.mu.Unlock()
		if needScan {
			if scanned {
				return 0, nil // every UID of the scan was gone
			}
			if err := s.scanIO(ctx); err != nil {
				return 0, err
			}
			scanned = true
		}
		added, next, err := s.fetchNextIO(ctx)
		switch {
		case err != nil || added > 0 || next == stop:
			return added, err
		case next == rescan:
			scanned = false // the UIDs meant nothing: rescan at once
		}
	}
}

// What fillIO does after a batch that queued nothing.
const (
	stop   = iota // nothing left, or no room ahead
	moveOn        // the batch was gone from the server: the next UIDs
	rescan        // UIDVALIDITY changed meanwhile: scan again
)

// fetchNextIO fetches the next batch of s.todo; next tells fillIO what to
// do when nothing was queued. s.io is held.
func (s *Source) fetchNextIO(ctx context.Context) (added, next int, err error) {
	s.mu.Lock()
	n := min(s.opts.BatchSize, len(s.todo))
	if !s.opts.Watch {
		n = min(n, s.opts.MaxPerRun-s.runCount-len(s.queue))
	}
	if n <= 0 {
		s.mu.Unlock()
		return 0, stop, nil
	}
	batch := slices.Clone(s.todo[:n])
	s.mu.Unlock()
	if slices.ContainsFunc(batch, func(m meta) bool { return m.size < 0 }) {
		if batch, err = s.sizeIO(ctx, batch); err != nil {
			return 0, stop, err
		}
		if len(batch) == 0 {
			return 0, moveOn, nil // all gone (sizeIO dropped them from s.todo)
		}
	}
	// The batch fits beside the mail queued: at most maxAhead bytes ahead
	// of the pipeline in all; one larger mail only when nothing is queued.
	s.mu.Lock()
	budget := s.maxAhead - s.queued
	queued := len(s.queue) > 0
	var bytes int64
	cut := len(batch)
	for i, m := range batch {
		if bytes += s.costLocked(m); bytes > budget && (i > 0 || queued) {
			cut = i
			break
		}
	}
	s.mu.Unlock()
	if cut == 0 {
		return 0, stop, nil // no room: the next fill fetches it
	}
	batch = batch[:cut]
	for try := 0; ; try++ {
		fetched, err := s.fetchIO(ctx, batch)
		// Whatever was fully read is queued; the rest stays to do.
		s.mu.Lock()
		s.todo = slices.DeleteFunc(s.todo, func(m meta) bool { return fetched[m.uid] })
		s.mu.Unlock()
		added += len(fetched)
		batch = slices.DeleteFunc(batch, func(m meta) bool { return fetched[m.uid] })
		// One mail too large for its fetch is fetched again at once with
		// a smaller fetch (at most three steps), so that it never fails
		// the run nor holds back the mail behind it.
		if err == nil && len(batch) > 0 {
			// Asked for but not returned (expunged by another client
			// meanwhile, or no body): out of todo so that the run goes on
			// and the folder is rescanned; still unfinished, so the
			// watermark cannot pass them and the next scan lists them
			// again if they still exist.
			gone := make(map[imap.UID]bool, len(batch))
			for _, m := range batch {
				gone[m.uid] = true
			}
			s.mu.Lock()
			s.todo = slices.DeleteFunc(s.todo, func(m meta) bool { return gone[m.uid] })
			s.mu.Unlock()
		}
		if err == nil || !errors.Is(err, errRetryUID) || try >= 3 || len(batch) == 0 {
			return added, moveOn, err
		}
		s.opts.Logger.Warn("imapsource: mail too large for its fetch, fetching less", "mailbox", s.opts.Mailbox, "err", err)
		s.mu.Lock()
		validity := s.validity
		s.mu.Unlock()
		if cerr := s.connectIO(ctx); cerr != nil {
			return added, stop, cerr
		}
		s.mu.Lock()
		changed := s.validity != validity
		s.mu.Unlock()
		if changed {
			return added, rescan, nil // the batch's UIDs mean nothing now
		}
	}
}

// sizeIO reads the sizes of batch (UID FETCH RFC822.SIZE) and returns it
// with them, without the mail gone from the server meanwhile (dropped from
// s.todo too). The sizes are read a batch at a time rather than by the
// scan: a server may have to read a mail to know its size (Dovecot does
// for Maildir files without S=/W=), and so the first batch starts at
// once and the rest overlaps with the pipeline. s.io is held.
func (s *Source) sizeIO(ctx context.Context, batch []meta) ([]meta, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	raw := s.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var set imap.UIDSet
	for _, m := range batch {
		set.AddNum(m.uid)
	}
	msgs, err := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		if connBroken(err) {
			s.dropIO()
		}
		return nil, fmt.Errorf("imapsource: fetch sizes: %w", err)
	}
	size := make(map[imap.UID]int64, len(msgs))
	for _, m := range msgs {
		size[m.UID] = max(m.RFC822Size, 0)
	}
	asked := make(map[imap.UID]bool, len(batch))
	out := batch[:0]
	for _, m := range batch {
		asked[m.uid] = true
		if sz, ok := size[m.uid]; ok {
			m.size = sz
			out = append(out, m)
		}
	}
	s.mu.Lock()
	s.todo = slices.DeleteFunc(s.todo, func(m meta) bool {
		_, ok := size[m.uid]
		if asked[m.uid] && !ok {
			delete(s.unfinished, m.uid) // gone from the server
			return true
		}
		return false
	})
	for i := range s.todo {
		if sz, ok := size[s.todo[i].uid]; ok {
			s.todo[i].size = sz
		}
	}
	s.mu.Unlock()
	return out, nil
}

// scanIO lists the folder's mail at or above the watermark (UIDs and
// flags) in one UID FETCH; sizeIO reads the sizes. s.io is held.
func (s *Source) scanIO(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	raw := s.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	s.mu.Lock()
	from := s.next
	s.mu.Unlock()
	set := imap.UIDSet{imap.UIDRange{Start: from, Stop: 0}}
	msgs, err := s.c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		if connBroken(err) {
			s.dropIO()
		}
		return fmt.Errorf("imapsource: scan %s: %w", s.opts.Folder, err)
	}
	defer s.persistIO(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	busy := make(map[imap.UID]bool)
	for _, e := range s.queue {
		busy[e.uid] = true
	}
	for _, e := range s.inflight {
		if e.validity == s.validity {
			busy[e.uid] = true
		}
	}
	for _, e := range s.pending {
		busy[e.uid] = true
	}
	for uid := range s.failed {
		// Filed; only its after-commit action waits for a retry. Never
		// handed out again meanwhile.
		busy[uid] = true
	}
	uidExpunge := s.c.Caps().Has(imap.CapUIDPlus) || s.c.Caps().Has(imap.CapIMAP4rev2)
	now := s.opts.Now()
	unfinished := make(map[imap.UID]struct{}, len(msgs))
	for uid := range busy {
		unfinished[uid] = struct{}{}
	}
	var todo []meta
	for _, m := range msgs {
		if m.UID < s.next {
			continue // "n:*" always returns the last mail
		}
		s.scanMax = max(s.scanMax, m.UID)
		if _, ok := s.skip[m.UID]; ok {
			continue
		}
		// Mail carrying \Deleted is still handed out: a crash between
		// STORE \Deleted and EXPUNGE leaves filed mail flagged so, and the
		// idempotency key makes it a duplicate, deleted again.
		if s.marker != "" && hasFlag(m.Flags, s.marker) && !busy[m.UID] {
			// Filed earlier (Flag mode, truncated mail kept in place, or
			// \Deleted mail that could not be expunged).
			if hasFlag(m.Flags, imap.FlagDeleted) && uidExpunge && s.opts.After.Kind != Flag {
				// A crash between STORE and EXPUNGE. Unfinished until
				// expunged: a watermark saved past it before the expunge
				// (a crash again) would leave it on the server for good.
				s.reExpunge.AddNum(m.UID)
				unfinished[m.UID] = struct{}{}
			}
			continue
		}
		unfinished[m.UID] = struct{}{}
		if busy[m.UID] {
			continue
		}
		if at, ok := s.retryAt[m.UID]; ok {
			if now.Before(at) {
				continue
			}
			delete(s.retryAt, m.UID)
		}
		todo = append(todo, meta{uid: m.UID, size: -1}) // read by sizeIO
	}
	for uid := range s.retryAt {
		if _, ok := unfinished[uid]; !ok {
			delete(s.retryAt, uid) // gone from the server
		}
	}
	slices.SortFunc(todo, func(a, b meta) int { return int(a.uid) - int(b.uid) })
	s.todo = todo
	s.unfinished = unfinished
	s.advanceLocked()
	return nil
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

// advanceLocked moves the watermark to the lowest unfinished UID.
func (s *Source) advanceLocked() {
	w := s.scanMax + 1
	for uid := range s.unfinished {
		w = min(w, uid)
	}
	if w > s.next {
		s.next = w
		s.saveStateLocked()
		for uid := range s.skip {
			if uid < w {
				delete(s.skip, uid)
			}
		}
	}
}

// fetchIO downloads batch: whole mails up to MaxSize, headers only above
// it, and less for mail whose fetch failed (see the fetch modes). It
// returns the UIDs queued. The mail is queued in UID order: the batch (in
// UID order) is cut into runs of one fetch mode, one UID FETCH per run, in
// order (a server answers a FETCH in message sequence order, which is UID
// order), so that a truncated mail is never handed out after the mail
// behind it. s.io is held.
func (s *Source) fetchIO(ctx context.Context, batch []meta) (map[imap.UID]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	raw := s.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	type run struct {
		mode  int
		set   imap.UIDSet
		sizes map[imap.UID]int64
	}
	var runs []*run
	s.mu.Lock()
	for _, m := range batch {
		mode := s.mode[m.uid]
		if mode == modeWhole && s.opts.MaxSize >= 0 && m.size > s.opts.MaxSize {
			mode = modeHeader
		}
		if len(runs) == 0 || runs[len(runs)-1].mode != mode {
			runs = append(runs, &run{mode: mode, sizes: map[imap.UID]int64{}})
		}
		r := runs[len(runs)-1]
		r.set.AddNum(m.uid)
		r.sizes[m.uid] = m.size
	}
	validity := s.validity
	s.mu.Unlock()
	sections := [...]*imap.FetchItemBodySection{
		modeWhole:   {Peek: true},
		modeHeader:  {Specifier: imap.PartSpecifierHeader, Peek: true},
		modePartial: {Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: maxHeader}},
	}
	fetched := make(map[imap.UID]bool, len(batch))
	for _, r := range runs {
		if r.mode != modeSynthetic {
			if err := s.fetchSet(ctx, r.set, sections[r.mode], r.sizes, r.mode, fetched); err != nil {
				return fetched, err
			}
			continue
		}
		uids, _ := r.set.Nums()
		for _, uid := range uids {
			s.opts.Logger.Error("imapsource: mail unreadable even in part, handed out with a synthetic header and kept on the server",
				"mailbox", s.opts.Mailbox, "uid", uid, "size", r.sizes[uid])
			raw := fmt.Appendf(nil, "Subject: [emailcrm] unreadable mail kept on the server (IMAP %s UID %d, %d bytes)\r\n"+
				"X-Emailcrm-Truncated: header larger than %d bytes\r\n\r\n", sanitizeHeader(s.opts.Folder), uid, r.sizes[uid], maxHeader)
			s.queueEntry(validity, uid, raw, r.sizes[uid], true)
			fetched[uid] = true
		}
	}
	return fetched, nil
}

func sanitizeHeader(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, v)
}

func (s *Source) queueEntry(validity uint32, uid imap.UID, raw []byte, size int64, truncated bool) {
	e := &entry{
		uid:      uid,
		validity: validity,
		r: &mailcase.Received{
			Raw:       raw,
			Mailbox:   s.opts.Mailbox,
			ID:        strconv.FormatUint(uint64(validity), 10) + ":" + strconv.FormatUint(uint64(uid), 10),
			Size:      size,
			Truncated: truncated,
		},
	}
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.queued += int64(len(raw))
	s.readyLocked()
	if s.waiting > 0 {
		// A Receive waits for new mail (IDLE) while a fetch it did not
		// start (an Ack's, a prefetch) queued some: hand it out.
		s.signal()
	}
	s.mu.Unlock()
}

func (s *Source) fetchSet(ctx context.Context, set imap.UIDSet, sec *imap.FetchItemBodySection, sizes map[imap.UID]int64, mode int, fetched map[imap.UID]bool) error {
	truncated := mode != modeWhole
	// A literal may not exceed the largest announced size of the batch
	// nor MaxSize, with some slack.
	var limit int64
	for _, sz := range sizes {
		limit = max(limit, sz)
	}
	limit += limit/10 + slack
	if truncated {
		limit = min(limit, maxHeader)
	} else if s.opts.MaxSize >= 0 {
		limit = min(limit, s.opts.MaxSize+slack)
	}
	s.mu.Lock()
	validity := s.validity
	s.mu.Unlock()
	cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
	var ferr error
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var (
			uid  imap.UID
			raw  []byte
			got  bool
			rerr error
		)
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				got = true
				raw, rerr = readLiteral(it.Literal, limit)
				if rerr != nil {
					// Abort: close the connection, then let the reader
					// fail on the rest of the literal instead of reading it.
					s.raw.Close()
					_, _ = io.Copy(io.Discard, it.Literal)
				}
			}
		}
		if rerr != nil {
			if _, asked := sizes[uid]; errors.Is(rerr, errTooLarge) && asked && mode < modeSynthetic {
				// Fetch less next time: the header, then its first 4 MiB,
				// then nothing (a synthetic header).
				s.mu.Lock()
				s.mode[uid] = mode + 1
				s.mu.Unlock()
				ferr = fmt.Errorf("%w: UID %d: %w: %w", ErrProtocol, uid, rerr, errRetryUID)
			} else if errors.Is(rerr, errTooLarge) {
				ferr = fmt.Errorf("%w: UID %d: %w", ErrProtocol, uid, rerr)
			} else {
				ferr = fmt.Errorf("UID %d: %w", uid, rerr)
			}
			break
		}
		size, known := sizes[uid]
		if !known || !got || fetched[uid] {
			continue // not asked for, or no body: fetched again later
		}
		if !truncated {
			size = int64(len(raw))
		}
		fetched[uid] = true
		s.queueEntry(validity, uid, raw, size, truncated)
	}
	if ferr != nil {
		// The connection is closed: drain what the reader still hands out.
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		}
		_ = cmd.Close()
		s.dropIO()
		return fmt.Errorf("imapsource: fetch: %w", ferr)
	}
	if err := cmd.Close(); err != nil {
		if connBroken(err) {
			s.dropIO()
		}
		return fmt.Errorf("imapsource: fetch: %w", err)
	}
	return nil
}

var errTooLarge = errors.New("literal larger than announced")

const slack = 64 << 10

func readLiteral(lit imap.LiteralReader, limit int64) ([]byte, error) {
	n := lit.Size()
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, n, limit)
	}
	if n < 0 {
		return nil, fmt.Errorf("negative literal size %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(lit, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Ack records the disposition of r. Done and Quarantine actions are applied
// on the server in batches; a failure to apply them leaves the mail on the
// server, from where it is handed out again and recognised as a duplicate.
func (s *Source) Ack(ctx context.Context, r *mailcase.Received, d mailcase.Disposition, reason string) error {
	if r == nil {
		return fmt.Errorf("%w: nil", ErrUnknownMail)
	}
	s.mu.Lock()
	if s.closed {
		// Never reconnect after Close: the mail stays on the server.
		s.mu.Unlock()
		return ErrClosed
	}
	e, ok := s.inflight[r.ID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownMail, r.ID)
	}
	delete(s.inflight, r.ID)
	if e.validity != s.validity {
		s.mu.Unlock()
		// UIDVALIDITY changed meanwhile: the UID means nothing now. The
		// rescan hands the mail out again.
		s.opts.Logger.Debug("imapsource: ack after UIDVALIDITY change ignored", "mailbox", s.opts.Mailbox, "id", r.ID, "disposition", d)
		return nil
	}
	switch d {
	case mailcase.Done:
		e.d = d
		s.pending = append(s.pending, e)
	case mailcase.Quarantine:
		if s.opts.QuarantineFolder == "" {
			// Left untouched, never handed out again.
			s.skip[e.uid] = struct{}{}
			s.finishLocked(e.uid)
		} else {
			e.d = d
			s.pending = append(s.pending, e)
		}
		s.opts.Logger.Warn("imapsource: mail quarantined", "mailbox", s.opts.Mailbox, "uid", e.uid, "reason", reason)
	case mailcase.Retry:
		s.retryAt[e.uid] = s.opts.Now().Add(s.opts.RetryDelay)
		s.mu.Unlock()
		if s.opts.Watch {
			s.signal()
		}
		return nil
	default:
		s.mu.Unlock()
		return fmt.Errorf("imapsource: unknown disposition %v", d)
	}
	flush := s.flushDueLocked() && (len(s.pending) >= s.groupSize() || !s.fetching)
	if flush && !s.fetching && s.roomLocked() {
		// The next batch is due: the fetch applies the actions first, in
		// the background, instead of this pipeline worker.
		s.startFillLocked()
		flush = false
	}
	s.mu.Unlock()
	if flush {
		s.flushOrHandOver(ctx)
	}
	return nil
}

// flushOrHandOver applies the pending actions now if the connection is
// free. Otherwise its holder applies them: a fetch flushes before its next
// batch and at its end (then handing over again), and a Receive starting
// or holding an IDLE is told to (reidle), so that they never wait for the
// next mail while the source idles.
func (s *Source) flushOrHandOver(ctx context.Context) {
	if !s.io.TryLock() {
		s.signalIdle()
		return
	}
	s.stopIdleIO() // the waiting Receive idles again (reidle)
	err := s.flushIO(ctx)
	s.io.Unlock()
	if err != nil {
		s.opts.Logger.Warn("imapsource: after-commit action deferred", "mailbox", s.opts.Mailbox, "err", err)
	}
	// After a refusal, no wake-up: the mail waits for its backoff and no
	// rescan follows at once. After a lost connection, Receive reconnects
	// (with its backoff) and applies the actions.
	if s.opts.Watch && err != nil && !errors.Is(err, errRefused) {
		s.signal()
	}
}

// groupSize is the number of pending actions applied at once: each
// command costs the server an index update (and Dovecot a sync of its
// index log), so fewer, larger commands keep it free for the fetch.
func (s *Source) groupSize() int { return 10 * s.opts.BatchSize }

// flushDueLocked reports whether the pending actions are to be applied
// now: a group is full, or no mail is queued nor in flight (the pipeline
// is idle: nothing to wait for). s.mu is held.
func (s *Source) flushDueLocked() bool {
	return len(s.pending) >= s.groupSize() || len(s.pending) > 0 && len(s.inflight) == 0 && len(s.queue) == 0
}

func (s *Source) finishLocked(uid imap.UID) {
	delete(s.unfinished, uid)
	delete(s.attempts, uid)
	delete(s.retryAt, uid)
	delete(s.mode, uid)
	delete(s.failed, uid)
	s.advanceLocked()
}

// Flush applies the pending after-commit actions now.
func (s *Source) Flush(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	closed = s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed // Close ran meanwhile
	}
	s.stopIdleIO()
	return s.flushIO(ctx)
}

// flushIO applies the pending actions, and the refused ones whose backoff
// is over, grouped into as few commands as possible. An action the server
// refuses (a tagged NO: missing folder, quota) is retried after a backoff
// starting at RetryDelay and doubling; meanwhile the mail, already filed,
// is not handed out again. s.io is held.
func (s *Source) flushIO(ctx context.Context) error {
	defer s.persistIO(ctx)
	s.mu.Lock()
	now := s.opts.Now()
	n := len(s.pending) + len(s.reExpunge)
	for _, e := range s.failed {
		if !now.Before(e.retryAt) {
			n++
		}
	}
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	if s.c == nil {
		if err := s.connectIO(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	batch := s.pending
	s.pending = nil
	for uid, e := range s.failed {
		if !now.Before(e.retryAt) {
			batch = append(batch, e)
			delete(s.failed, uid)
		}
	}
	reExpunge := s.reExpunge
	s.reExpunge = nil
	validity := s.validity
	marker, extra := s.marker, s.extraFlag
	s.mu.Unlock()
	batch = slices.DeleteFunc(batch, func(e *entry) bool { return e.validity != validity })
	if len(batch) == 0 && len(reExpunge) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	c, raw := s.c, s.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	uidExpunge := c.Caps().Has(imap.CapUIDPlus) || c.Caps().Has(imap.CapIMAP4rev2)

	// Groups of entries sharing one action: "" is delete, "+" flag,
	// anything else a destination folder.
	type group struct {
		folder  string
		entries []*entry
	}
	var groups []*group
	byKey := map[string]*group{}
	add := func(key string, e *entry) {
		g := byKey[key]
		if g == nil {
			g = &group{folder: key}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.entries = append(g.entries, e)
	}
	for _, e := range batch {
		switch {
		case e.d == mailcase.Quarantine:
			add(s.opts.QuarantineFolder, e)
		case e.r.Truncated && s.opts.OversizeFolder != "":
			add(s.opts.OversizeFolder, e)
		case e.r.Truncated || s.opts.After.Kind == Flag:
			// The body of a truncated mail was never downloaded: keep it.
			add("+", e)
		case s.opts.After.Kind == Move:
			add(s.opts.After.Folder, e)
		default:
			add("", e)
		}
	}
	// deleteFlags are set on mail to expunge: the marker lets a later
	// scan skip it if it cannot be expunged (no UIDPLUS) or a crash
	// intervenes.
	deleteFlags := []imap.Flag{imap.FlagDeleted}
	if marker != "" {
		deleteFlags = append(deleteFlags, marker)
	}
	store := func(set imap.UIDSet, flags []imap.Flag) error {
		return c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: flags}, nil).Close()
	}
	expunge := func(set imap.UIDSet) error {
		if !uidExpunge {
			// A plain EXPUNGE would also remove mail others flagged
			// \Deleted, maybe not filed yet: leave ours flagged and
			// marked, the scan skips it.
			return nil
		}
		return c.UIDExpunge(set).Close()
	}
	apply := func(g *group) error {
		var set imap.UIDSet
		for _, e := range g.entries {
			set.AddNum(e.uid)
		}
		switch g.folder {
		case "+":
			flags := []imap.Flag{marker}
			if extra != "" {
				flags = append(flags, extra)
			}
			if marker == "" {
				// The server stores no keywords (Delete or Move mode):
				// the watermark alone keeps the mail from being refiled.
				s.opts.Logger.Warn("imapsource: truncated mail kept in place unmarked (no keywords)", "mailbox", s.opts.Mailbox, "uids", set.String())
				return nil
			}
			return store(set, flags)
		case "":
			if err := store(set, deleteFlags); err != nil {
				return err
			}
			return expunge(set)
		}
		if c.Caps().Has(imap.CapMove) || c.Caps().Has(imap.CapIMAP4rev2) {
			_, err := c.Move(set, g.folder).Wait()
			return err
		}
		// No MOVE: UID COPY, and only once the server accepted it, mark
		// the originals deleted and expunge them (never before: a refused
		// COPY must leave the mail in place).
		var copySet imap.UIDSet
		for _, e := range g.entries {
			if !e.copied {
				copySet.AddNum(e.uid)
			}
		}
		if len(copySet) > 0 {
			if _, err := c.Copy(copySet, g.folder).Wait(); err != nil {
				return err
			}
			for _, e := range g.entries {
				e.copied = true
			}
		}
		if err := store(set, deleteFlags); err != nil {
			return err
		}
		return expunge(set)
	}
	var firstErr error
	for i, g := range groups {
		err := apply(g)
		if err == nil {
			s.mu.Lock()
			for _, e := range g.entries {
				delete(s.unfinished, e.uid)
				delete(s.attempts, e.uid)
				delete(s.mode, e.uid)
			}
			s.advanceLocked()
			s.mu.Unlock()
			continue
		}
		if connBroken(err) {
			s.dropIO()
			// Retried after reconnecting (if UIDVALIDITY holds).
			var rest []*entry
			for _, g := range groups[i:] {
				rest = append(rest, g.entries...)
			}
			s.mu.Lock()
			s.pending = append(rest, s.pending...)
			s.reExpunge = append(s.reExpunge, reExpunge...)
			s.mu.Unlock()
			return fmt.Errorf("imapsource: after-commit action: %w", err)
		}
		// Refused by the server: the mail stays where it is, filed, and
		// is not handed out again; the action is retried after a backoff.
		s.mu.Lock()
		var delay time.Duration
		for _, e := range g.entries {
			e.failures++
			delay = min(s.opts.RetryDelay<<min(e.failures-1, 16), max(s.opts.RetryDelay, maxActionDelay))
			e.retryAt = now.Add(delay)
			s.failed[e.uid] = e
		}
		s.mu.Unlock()
		select {
		case s.rearm <- struct{}{}:
		default:
		}
		what := "delete"
		switch g.folder {
		case "":
		case "+":
			what = "flag"
		default:
			what = "move to " + g.folder
		}
		s.opts.Logger.Error("imapsource: server refused after-commit action; mail kept, retried later",
			"mailbox", s.opts.Mailbox, "action", what, "mails", len(g.entries), "retry_in", delay, "err", err)
		if firstErr == nil {
			firstErr = fmt.Errorf("imapsource: after-commit action (%s): %w: %w", what, errRefused, err)
		}
	}
	if len(reExpunge) > 0 && uidExpunge {
		if err := c.UIDExpunge(reExpunge).Close(); err != nil {
			if connBroken(err) {
				s.dropIO()
				s.mu.Lock()
				s.reExpunge = append(s.reExpunge, reExpunge...)
				s.mu.Unlock()
				return fmt.Errorf("imapsource: expunge of filed mail left \\Deleted: %w", err)
			}
			// Still unfinished: the next scan tries again.
			s.opts.Logger.Warn("imapsource: expunge of filed mail left \\Deleted failed", "mailbox", s.opts.Mailbox, "err", err)
		} else if uids, ok := reExpunge.Nums(); ok {
			s.mu.Lock()
			for _, uid := range uids {
				delete(s.unfinished, uid)
			}
			s.advanceLocked()
			s.mu.Unlock()
		}
	}
	return firstErr
}

// Close stops the background fetch, applies pending actions, logs out and
// closes the connection. Mail in flight is left on the server.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	s.io.Lock()
	defer s.io.Unlock()
	s.stopIdleIO()
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommandTimeout)
	defer cancel()
	defer s.persistIO(ctx)
	// flushIO reconnects when actions are pending.
	err = s.flushIO(ctx)
	if s.c != nil {
		_ = s.c.Logout().Wait()
		_ = s.raw.Close()
		_ = s.c.Close()
		s.c, s.raw = nil, nil
	}
	s.signal()
	return err
}
