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
)

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
	headerOnly map[imap.UID]struct{}  // download only the header
	skip       map[imap.UID]struct{}  // quarantined and left in place
	runCount   int
	eof        bool
	closed     bool
	fetching   bool          // a fill goroutine runs
	fillDone   chan struct{} // closed when it ends
	fillRes    *fillResult   // outcome of the last fill
	closing    chan struct{} // closed by Close
	wg         sync.WaitGroup

	wake chan struct{}
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
}

type fillResult struct {
	added int
	err   error
}

type state struct {
	UIDValidity uint32 `json:"uidvalidity"`
	NextUID     uint32 `json:"next_uid"`
}

// Dial connects, logs in and selects the folder, so that bad credentials or
// a missing folder are reported at once. Close releases the connection.
func Dial(ctx context.Context, opts *Options) (*Source, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	if o.Addr == "" {
		return nil, fmt.Errorf("imapsource: no server address")
	}
	if o.Username == "" {
		return nil, fmt.Errorf("imapsource: no user name")
	}
	switch o.Security {
	case TLS, StartTLS, Insecure:
	default:
		return nil, fmt.Errorf("imapsource: unknown security %q", o.Security)
	}
	switch o.After.Kind {
	case Delete, Flag:
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
		headerOnly: make(map[imap.UID]struct{}),
		skip:       make(map[imap.UID]struct{}),
		closing:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
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

func (s *Source) saveStateLocked(ctx context.Context) {
	if !s.stateOK {
		return
	}
	v, _ := json.Marshal(state{UIDValidity: s.validity, NextUID: uint32(s.next)})
	if err := s.opts.State.PutState(ctx, s.opts.StateKey, v); err != nil {
		// Losing the watermark only costs a rescan: idempotency keys
		// make redelivery safe.
		s.opts.Logger.Warn("imapsource: save state", "mailbox", s.opts.Mailbox, "err", err)
	}
}

func (s *Source) signal() {
	select {
	case s.wake <- struct{}{}:
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
		tcfg.ServerName, _, _ = net.SplitHostPort(o.Addr)
	}
	copts.TLSConfig = tcfg
	d := &net.Dialer{Timeout: o.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("imapsource: connect %s: %w", o.Addr, err)
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
		return fmt.Errorf("imapsource: connect %s: %w", o.Addr, err)
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
	for _, f := range []string{o.QuarantineFolder, o.OversizeFolder, o.After.Folder} {
		if f == "" || o.After.Kind != Move && f == o.After.Folder {
			continue
		}
		// Ensure the folder exists; an "already exists" answer is fine.
		_ = c.Create(f, nil).Wait()
	}
	s.mu.Lock()
	if s.validity != 0 && sel.UIDValidity != s.validity {
		o.Logger.Warn("imapsource: UIDVALIDITY changed, rescanning from UID 1",
			"mailbox", o.Mailbox, "folder", o.Folder, "old", s.validity, "new", sel.UIDValidity)
		s.next, s.scanMax = 1, 0
		s.todo, s.queue, s.pending = nil, nil, nil
		clear(s.retryAt)
		clear(s.unfinished)
		clear(s.headerOnly)
		clear(s.skip)
		// In-flight mail keeps its old UIDVALIDITY in its ID: Ack ignores
		// the server action for it and the rescan hands it out again,
		// where the idempotency key makes it a duplicate.
	}
	if sel.UIDValidity != s.validity {
		s.validity = sel.UIDValidity
		s.saveStateLocked(ctx)
	}
	s.mu.Unlock()
	s.c, s.raw = c, raw
	return nil
}

func (s *Source) login(c *imapclient.Client) error {
	o := s.opts
	var err error
	switch {
	case o.TokenSource != nil:
		tok, terr := o.TokenSource.Token()
		if terr != nil {
			return fmt.Errorf("imapsource: oauth2 token: %w", terr)
		}
		err = c.Authenticate(&xoauth2{user: o.Username, token: tok.AccessToken})
	case c.Caps().Has(imap.CapLoginDisabled):
		err = c.Authenticate(newPlain(o.Username, o.Password))
	default:
		err = c.Login(o.Username, o.Password).Wait()
	}
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return fmt.Errorf("%w: %s@%s: %s", ErrAuth, o.Username, o.Addr, ie.Text)
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
		_ = s.raw.Close()
		_ = s.c.Close()
		s.c, s.raw = nil, nil
	}
}

// stopIdleIO ends a running IDLE. s.io is held.
func (s *Source) stopIdleIO() {
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
// In Watch mode it waits for new mail with IDLE (or polling).
func (s *Source) Receive(ctx context.Context) (*mailcase.Received, error) {
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
			done := s.fillDone
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-done:
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
		case res.added > 0:
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

// wait waits for new mail (IDLE), a due retry, an Ack or the poll
// interval.
func (s *Source) wait(ctx context.Context) error {
	s.mu.Lock()
	wait := s.opts.PollInterval
	now := s.opts.Now()
	for _, at := range s.retryAt {
		wait = min(wait, max(at.Sub(now), 10*time.Millisecond))
	}
	s.mu.Unlock()
	s.io.Lock()
	// (Another Receive may already be idling: then just wait with it.)
	if s.c != nil && s.idle == nil && (s.c.Caps().Has(imap.CapIdle) || s.c.Caps().Has(imap.CapIMAP4rev2)) {
		idle, err := s.c.Idle()
		if err != nil {
			s.opts.Logger.Warn("imapsource: IDLE failed, polling", "mailbox", s.opts.Mailbox, "err", err)
			if connBroken(err) {
				s.dropIO()
			}
		} else {
			s.idle = idle
		}
	}
	s.io.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.wake:
	case <-t.C:
	case <-s.closing:
	}
	s.io.Lock()
	s.stopIdleIO()
	s.io.Unlock()
	return err
}

func (s *Source) handOutLocked() *mailcase.Received {
	e := s.queue[0]
	s.queue = s.queue[1:]
	s.attempts[e.uid]++
	e.r.Attempt = s.attempts[e.uid]
	s.inflight[e.r.ID] = e
	s.runCount++
	return e.r
}

// prefetchLocked starts fetching the next batch when the queue runs low.
func (s *Source) prefetchLocked() {
	if s.fetching || s.closed || len(s.todo) == 0 || len(s.queue) > s.opts.BatchSize/2 {
		return
	}
	if !s.opts.Watch && s.runCount+len(s.queue) >= s.opts.MaxPerRun {
		return
	}
	s.startFillLocked()
}

// startFillLocked runs fillIO in a goroutine; its outcome lands in
// s.fillRes and s.queue. Close stops it.
func (s *Source) startFillLocked() {
	s.fetching = true
	done := make(chan struct{})
	s.fillDone = done
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
		s.io.Unlock()
		s.mu.Lock()
		s.fetching = false
		s.fillRes = &fillResult{added: added, err: err}
		close(done)
		s.mu.Unlock()
	}()
}

// fillIO applies pending actions, scans when nothing is left to fetch and
// fetches the next batch into the queue. s.io is held.
func (s *Source) fillIO(ctx context.Context) (int, error) {
	if s.c == nil {
		if err := s.connectIO(ctx); err != nil {
			return 0, err
		}
	}
	if err := s.flushIO(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	needScan := len(s.todo) == 0
	s.mu.Unlock()
	if needScan {
		if err := s.scanIO(ctx); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	n := min(s.opts.BatchSize, len(s.todo))
	if !s.opts.Watch {
		n = min(n, s.opts.MaxPerRun-s.runCount-len(s.queue))
	}
	if n <= 0 {
		s.mu.Unlock()
		return 0, nil
	}
	batch := slices.Clone(s.todo[:n])
	headerOnly := make(map[imap.UID]bool)
	for _, m := range batch {
		if _, ok := s.headerOnly[m.uid]; ok {
			headerOnly[m.uid] = true
		}
	}
	s.mu.Unlock()
	fetched, err := s.fetchIO(ctx, batch, headerOnly)
	// Whatever was fully read is queued; the rest stays to do.
	s.mu.Lock()
	s.todo = slices.DeleteFunc(s.todo, func(m meta) bool { return fetched[m.uid] })
	s.mu.Unlock()
	return len(fetched), err
}

// scanIO lists the folder's mail at or above the watermark with its size
// in one UID FETCH. s.io is held.
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
	msgs, err := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true}).Collect()
	if err != nil {
		if connBroken(err) {
			s.dropIO()
		}
		return fmt.Errorf("imapsource: scan %s: %w", s.opts.Folder, err)
	}
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
		if s.opts.After.Kind == Flag && hasFlag(m.Flags, imap.Flag(s.opts.After.Flag)) {
			continue // filed earlier
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
		todo = append(todo, meta{uid: m.UID, size: m.RFC822Size})
	}
	for uid := range s.retryAt {
		if _, ok := unfinished[uid]; !ok {
			delete(s.retryAt, uid) // gone from the server
		}
	}
	slices.SortFunc(todo, func(a, b meta) int { return int(a.uid) - int(b.uid) })
	s.todo = todo
	s.unfinished = unfinished
	s.advanceLocked(ctx)
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
func (s *Source) advanceLocked(ctx context.Context) {
	w := s.scanMax + 1
	for uid := range s.unfinished {
		w = min(w, uid)
	}
	if w > s.next {
		s.next = w
		s.saveStateLocked(ctx)
		for uid := range s.skip {
			if uid < w {
				delete(s.skip, uid)
			}
		}
	}
}

// fetchIO downloads batch: whole mails up to MaxSize, headers only above
// it (or when headerOnly says so). It returns the UIDs queued. s.io is
// held.
func (s *Source) fetchIO(ctx context.Context, batch []meta, headerOnly map[imap.UID]bool) (map[imap.UID]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	raw := s.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var whole, header imap.UIDSet
	sizes := make(map[imap.UID]int64, len(batch))
	for _, m := range batch {
		sizes[m.uid] = m.size
		if headerOnly[m.uid] || s.opts.MaxSize >= 0 && m.size > s.opts.MaxSize {
			header.AddNum(m.uid)
		} else {
			whole.AddNum(m.uid)
		}
	}
	fetched := make(map[imap.UID]bool, len(batch))
	if len(whole) > 0 {
		sec := &imap.FetchItemBodySection{Peek: true}
		if err := s.fetchSet(ctx, whole, sec, sizes, false, fetched); err != nil {
			return fetched, err
		}
	}
	if len(header) > 0 {
		sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
		if err := s.fetchSet(ctx, header, sec, sizes, true, fetched); err != nil {
			return fetched, err
		}
	}
	return fetched, nil
}

func (s *Source) fetchSet(ctx context.Context, set imap.UIDSet, sec *imap.FetchItemBodySection, sizes map[imap.UID]int64, truncated bool, fetched map[imap.UID]bool) error {
	// A literal may not exceed the largest announced size of the batch
	// nor MaxSize, with some slack.
	var limit int64
	for _, sz := range sizes {
		limit = max(limit, sz)
	}
	limit += limit/10 + slack
	if truncated {
		limit = min(limit, 4<<20)
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
			if errors.Is(rerr, errTooLarge) {
				if uid != 0 {
					s.mu.Lock()
					s.headerOnly[uid] = struct{}{}
					s.mu.Unlock()
				}
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
		fetched[uid] = true
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.mu.Unlock()
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
		s.opts.Logger.Info("imapsource: ack after UIDVALIDITY change ignored", "mailbox", s.opts.Mailbox, "id", r.ID, "disposition", d)
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
			s.finishLocked(ctx, e.uid)
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
	flush := len(s.pending) >= s.opts.BatchSize || len(s.inflight) == 0 && len(s.queue) == 0 && !s.fetching
	s.mu.Unlock()
	// Flush now unless a fetch holds the connection (it flushes next).
	if flush && s.io.TryLock() {
		s.stopIdleIO()
		err := s.flushIO(ctx)
		s.io.Unlock()
		if err != nil {
			s.opts.Logger.Warn("imapsource: after-commit action deferred", "mailbox", s.opts.Mailbox, "err", err)
		}
		if s.opts.Watch {
			s.signal()
		}
	}
	return nil
}

func (s *Source) finishLocked(ctx context.Context, uid imap.UID) {
	delete(s.unfinished, uid)
	delete(s.attempts, uid)
	delete(s.retryAt, uid)
	delete(s.headerOnly, uid)
	s.advanceLocked(ctx)
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
	s.stopIdleIO()
	return s.flushIO(ctx)
}

// flushIO applies the pending actions, grouped into as few commands as
// possible. s.io is held.
func (s *Source) flushIO(ctx context.Context) error {
	s.mu.Lock()
	n := len(s.pending)
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
	validity := s.validity
	s.mu.Unlock()
	batch = slices.DeleteFunc(batch, func(e *entry) bool { return e.validity != validity })
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	c, raw := s.c, s.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	var del imap.UIDSet
	moves := map[string]imap.UIDSet{}
	flags := map[string]imap.UIDSet{}
	for _, e := range batch {
		switch {
		case e.d == mailcase.Quarantine:
			set := moves[s.opts.QuarantineFolder]
			set.AddNum(e.uid)
			moves[s.opts.QuarantineFolder] = set
		case e.r.Truncated && s.opts.OversizeFolder != "":
			set := moves[s.opts.OversizeFolder]
			set.AddNum(e.uid)
			moves[s.opts.OversizeFolder] = set
		case e.r.Truncated || s.opts.After.Kind == Flag:
			// The body of a truncated mail was never downloaded: keep it.
			set := flags[s.opts.After.Flag]
			set.AddNum(e.uid)
			flags[s.opts.After.Flag] = set
		case s.opts.After.Kind == Move:
			set := moves[s.opts.After.Folder]
			set.AddNum(e.uid)
			moves[s.opts.After.Folder] = set
		default:
			del.AddNum(e.uid)
		}
	}
	var err error
	for f, set := range flags {
		if err == nil {
			err = c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.Flag(f)}}, nil).Close()
		}
	}
	for folder, set := range moves {
		if err == nil {
			_, err = c.Move(set, folder).Wait()
		}
	}
	if err == nil && len(del) > 0 {
		err = c.Store(del, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
		if err == nil {
			if c.Caps().Has(imap.CapUIDPlus) || c.Caps().Has(imap.CapIMAP4rev2) {
				err = c.UIDExpunge(del).Close()
			} else {
				err = c.Expunge().Close()
			}
		}
	}
	if err != nil {
		if connBroken(err) {
			s.dropIO()
			// Retried after reconnecting (if UIDVALIDITY holds).
			s.mu.Lock()
			s.pending = append(batch, s.pending...)
			s.mu.Unlock()
		}
		// Refused by the server: the mail stays where it is and the next
		// scan hands it out again.
		return fmt.Errorf("imapsource: after-commit action: %w", err)
	}
	s.mu.Lock()
	for _, e := range batch {
		delete(s.unfinished, e.uid)
		delete(s.attempts, e.uid)
		delete(s.headerOnly, e.uid)
	}
	s.advanceLocked(ctx)
	s.mu.Unlock()
	return nil
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
	if s.c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommandTimeout)
		err = s.flushIO(ctx)
		cancel()
		if s.c != nil {
			_ = s.c.Logout().Wait()
			_ = s.raw.Close()
			_ = s.c.Close()
			s.c, s.raw = nil, nil
		}
	}
	s.signal()
	return err
}
