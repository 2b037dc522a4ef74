package mailcase

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// StoreOptions configures a Store. A nil *StoreOptions is equivalent to a
// zero value.
type StoreOptions struct {
	// Logger receives store logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxAttempts bounds the attempts of an operation that fails with a
	// retryable error (IsRetryable); 0 means 4, -1 means no retry.
	MaxAttempts int
	// RetryBase is the first back-off delay, doubled on each attempt up to
	// RetryMax; 0 means 50ms and 2s.
	RetryBase, RetryMax time.Duration
	// CallTimeout bounds each driver call; 0 means 30s, -1 means none.
	CallTimeout time.Duration
	// DiscardRaw turns off keeping the original raw mail of filed mails.
	// The zero value keeps it, in stores that can (driver.RawKeeper), so
	// that any mail can be parsed again after a parser fix (Reparse); with
	// DiscardRaw, Email.Raw is dropped before filing, PutRaw does nothing
	// and KeepsRaw reports false. Raw mail kept earlier stays readable.
	DiscardRaw bool
	// Worklist configures the worklist methods (auto-accept, lifecycle
	// events); nil means the zero WorklistOptions.
	Worklist *WorklistOptions
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 4
	}
	if o.MaxAttempts < 0 {
		o.MaxAttempts = 1
	}
	if o.RetryBase == 0 {
		o.RetryBase = 50 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 2 * time.Second
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 30 * time.Second
	}
	return o
}

// Store is the portable case store over a driver (a CRM adapter). It
// validates and normalises arguments, retries retryable failures of
// idempotent operations, applies call timeouts, and wraps every driver error
// exactly once in an *Error with a code. A Store is safe for concurrent use.
//
// Construct one with a driver package's OpenStore, or with OpenStore and a
// URL.
type Store struct {
	d    driver.CaseStore
	opts StoreOptions
	log  *slog.Logger

	mu     sync.RWMutex
	closed bool
}

// NewStore is intended for drivers. Applications call a driver package's
// OpenStore or mailcase.OpenStore. It panics if d is nil.
func NewStore(d driver.CaseStore, opts *StoreOptions) *Store {
	if d == nil {
		panic("mailcase: NewStore with nil driver")
	}
	var o StoreOptions
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	return &Store{d: d, opts: o, log: o.Logger.With("component", "store")}
}

// do runs f with the call timeout, retrying retryable failures when retry is
// true, and wraps the final error once.
func (s *Store) do(ctx context.Context, op string, retry bool, f func(context.Context) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return &Error{Code: FailedPrecondition, Op: op, Err: ErrClosed}
	}
	attempts := 1
	if retry {
		attempts = s.opts.MaxAttempts
	}
	delay := s.opts.RetryBase
	var err error
	for a := 1; ; a++ {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if s.opts.CallTimeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, s.opts.CallTimeout)
		}
		err = f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr // the caller's context: do not wrap
		}
		// An error that already holds an *Error anywhere in its chain (a
		// driver using the mailcase helpers, maybe adding context with
		// fmt.Errorf("...: %w", err)) keeps its code and is returned as
		// it is: errors are wrapped exactly once.
		werr := err
		var inner *Error
		if !errors.As(err, &inner) {
			code := s.classify(err)
			if code == Canceled || code == DeadlineExceeded {
				code = DeadlineExceeded // our call timeout, not the caller's ctx
			}
			werr = &Error{Code: code, Op: op, Err: err}
		}
		if a >= attempts || !IsRetryable(werr) {
			return werr
		}
		s.log.WarnContext(ctx, "store call failed; retrying", "op", op, "attempt", a, "err", werr)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay *= 2
		if delay > s.opts.RetryMax {
			delay = s.opts.RetryMax
		}
	}
}

func (s *Store) classify(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return DeadlineExceeded
	}
	c := s.d.ErrorCode(err)
	if c == OK {
		return Unknown
	}
	return c
}

func invalid(op, format string, args ...any) error {
	return &Error{Code: InvalidArgument, Op: op, Err: fmt.Errorf(format, args...)}
}

// notFound turns a NotFound error into ok == false.
func notFound(err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if Code(err) == NotFound {
		return false, nil
	}
	return false, err
}

// HasDirectory reports whether the driver knows contacts, accounts and
// employees (driver.Directory). Without one, FindContacts, FindAccounts and
// FindEmployee find nothing and CreateContact is Unimplemented.
func (s *Store) HasDirectory() bool {
	_, ok := s.d.(driver.Directory)
	return ok
}

// FindContacts returns the contacts whose address is addr; none
// when the driver has no directory.
func (s *Store) FindContacts(ctx context.Context, addr string) ([]Contact, error) {
	const op = "FindContacts"
	a := NormalizeAddress(addr)
	if a == "" {
		return nil, invalid(op, "invalid address %q", addr)
	}
	dir, ok := s.d.(driver.Directory)
	if !ok {
		return []Contact{}, nil
	}
	var out []Contact
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = dir.FindContacts(ctx, a)
		return err
	})
	return out, err
}

// FindAccounts returns the accounts that own domain; none when the driver
// has no directory.
func (s *Store) FindAccounts(ctx context.Context, domain string) ([]Account, error) {
	const op = "FindAccounts"
	d := NormalizeDomain(domain)
	if d == "" {
		return nil, invalid(op, "invalid domain %q", domain)
	}
	dir, ok := s.d.(driver.Directory)
	if !ok {
		return []Account{}, nil
	}
	var out []Account
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = dir.FindAccounts(ctx, d)
		return err
	})
	return out, err
}

// FindEmployee returns the employee with address addr; ok is false when
// there is none (always, when the driver has no directory).
func (s *Store) FindEmployee(ctx context.Context, addr string) (e Employee, ok bool, err error) {
	const op = "FindEmployee"
	a := NormalizeAddress(addr)
	if a == "" {
		return e, false, invalid(op, "invalid address %q", addr)
	}
	dir, has := s.d.(driver.Directory)
	if !has {
		return e, false, nil
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		e, err = dir.FindEmployee(ctx, a)
		return err
	})
	ok, err = notFound(err)
	return e, ok, err
}

// CreateContact creates a contact. It is not retried (a lost reply could
// create two); callers look the address up again before retrying. It is
// Unimplemented when the driver has no directory (driver.Directory).
func (s *Store) CreateContact(ctx context.Context, c *NewContact) (Contact, error) {
	const op = "CreateContact"
	dir, ok := s.d.(driver.Directory)
	if !ok {
		return Contact{}, &Error{Code: Unimplemented, Op: op, Err: errors.New("the store has no contact directory")}
	}
	if c == nil {
		return Contact{}, invalid(op, "nil contact")
	}
	n := *c
	n.Email = NormalizeAddress(c.Email)
	if n.Email == "" {
		return Contact{}, invalid(op, "invalid address %q", c.Email)
	}
	n.Name = cleanLine(n.Name)
	n.SupportLevel = cleanLine(n.SupportLevel)
	var out Contact
	err := s.do(ctx, op, false, func(ctx context.Context) (err error) {
		out, err = dir.CreateContact(ctx, &n)
		return err
	})
	return out, err
}

// NewAccount and NewEmployee are the requests of CreateAccount and
// CreateEmployee.
type (
	NewAccount  = driver.NewAccount
	NewEmployee = driver.NewEmployee
)

// CanWriteDirectory reports whether the driver can create accounts and
// employees (driver.DirectoryWriter).
func (s *Store) CanWriteDirectory() bool {
	_, ok := s.d.(driver.DirectoryWriter)
	return ok
}

// CreateAccount creates an account owning a.Domains (seeding, demos, tests).
// It is Unimplemented when the driver is not a driver.DirectoryWriter, and
// it is not retried (a lost reply could create two).
func (s *Store) CreateAccount(ctx context.Context, a *NewAccount) (Account, error) {
	const op = "CreateAccount"
	dw, ok := s.d.(driver.DirectoryWriter)
	if !ok {
		return Account{}, &Error{Code: Unimplemented, Op: op}
	}
	if a == nil {
		return Account{}, invalid(op, "nil account")
	}
	n := *a
	n.Name = cleanLine(a.Name)
	if n.Name == "" {
		return Account{}, invalid(op, "an account needs a name")
	}
	n.Domains = make([]string, 0, len(a.Domains))
	for _, d := range a.Domains {
		nd := NormalizeDomain(d)
		if nd == "" {
			return Account{}, invalid(op, "invalid domain %q", d)
		}
		n.Domains = append(n.Domains, nd)
	}
	n.SupportLevel = cleanLine(a.SupportLevel)
	var out Account
	err := s.do(ctx, op, false, func(ctx context.Context) (err error) {
		out, err = dw.CreateAccount(ctx, &n)
		return err
	})
	return out, err
}

// CreateEmployee creates an employee (seeding, demos, tests). It is
// Unimplemented when the driver is not a driver.DirectoryWriter, and it is
// not retried.
func (s *Store) CreateEmployee(ctx context.Context, e *NewEmployee) (Employee, error) {
	const op = "CreateEmployee"
	dw, ok := s.d.(driver.DirectoryWriter)
	if !ok {
		return Employee{}, &Error{Code: Unimplemented, Op: op}
	}
	if e == nil {
		return Employee{}, invalid(op, "nil employee")
	}
	n := *e
	n.Email = NormalizeAddress(e.Email)
	if n.Email == "" {
		return Employee{}, invalid(op, "invalid address %q", e.Email)
	}
	n.Name = cleanLine(e.Name)
	var out Employee
	err := s.do(ctx, op, false, func(ctx context.Context) (err error) {
		out, err = dw.CreateEmployee(ctx, &n)
		return err
	})
	return out, err
}

// CreateCase creates a case whose first activity is c.First. It is retried
// on transient failures because the first mail's idempotency key makes a
// repeated create return the same case. The defaults are applied here, once
// for every driver: an empty Subject is the first mail's subject, an empty
// Status is StatusNew, an empty Priority is PriorityNormal.
func (s *Store) CreateCase(ctx context.Context, c *NewCase) (Case, error) {
	const op = "CreateCase"
	n, err := s.newCaseRequest(op, c)
	if err != nil {
		return Case{}, err
	}
	var out Case
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = s.d.CreateCase(ctx, n)
		return err
	})
	return out, err
}

// newCaseRequest validates c and returns the request a driver is given
// (first mail normalised, defaults filled in).
func (s *Store) newCaseRequest(op string, c *NewCase) (*NewCase, error) {
	if c == nil || c.First == nil {
		return nil, invalid(op, "a case needs its first mail")
	}
	n := *c
	e, err := normalizeEmail(op, c.First)
	if err != nil {
		return nil, err
	}
	s.rawPolicy(e)
	n.First = e
	n.Subject = cleanLine(n.Subject)
	if n.Subject == "" {
		n.Subject = e.Subject
	}
	if n.Status == "" {
		n.Status = StatusNew
	}
	if n.Priority == "" {
		n.Priority = PriorityNormal
	}
	if !validStatus(n.Status) || !validPriority(n.Priority) {
		return nil, invalid(op, "unknown status %q or priority %q", n.Status, n.Priority)
	}
	return &n, nil
}

// GetCase returns a case by ID; ok is false when it does not exist.
func (s *Store) GetCase(ctx context.Context, id CaseID) (c Case, ok bool, err error) {
	const op = "GetCase"
	if id == "" {
		return c, false, invalid(op, "empty case ID")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		c, err = s.d.GetCase(ctx, id)
		return err
	})
	ok, err = notFound(err)
	return c, ok, err
}

// FindCaseByNumber returns the case with the human number (leading zeros
// are significant only to the driver); ok is false when none has it.
func (s *Store) FindCaseByNumber(ctx context.Context, number string) (c Case, ok bool, err error) {
	const op = "FindCaseByNumber"
	number = strings.TrimSpace(number)
	if number == "" {
		return c, false, invalid(op, "empty case number")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		c, err = s.d.FindCaseByNumber(ctx, number)
		return err
	})
	ok, err = notFound(err)
	return c, ok, err
}

// LookupThread returns the case holding a mail whose Message-ID is in ids,
// preferring the last ids; ok is false when none does.
func (s *Store) LookupThread(ctx context.Context, ids ...string) (c Case, ok bool, err error) {
	const op = "LookupThread"
	norm := make([]string, 0, len(ids))
	for _, id := range ids {
		if n := NormalizeMessageID(id); n != "" {
			norm = append(norm, n)
		}
	}
	if len(norm) == 0 {
		return c, false, nil
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		c, err = s.d.LookupThread(ctx, norm)
		return err
	})
	ok, err = notFound(err)
	return c, ok, err
}

// CanLookupReference reports whether the store indexes the Message-IDs
// filed mails refer to (driver.ReferenceFinder).
func (s *Store) CanLookupReference() bool {
	_, ok := s.d.(driver.ReferenceFinder)
	return ok
}

// LookupReference returns the case of the earliest filed mail that refers
// (In-Reply-To, References) to one of ids, the last ID preferred; ok is
// false when none does or the driver keeps no such index (see
// driver.ReferenceFinder). It lets two replies to a mail the mailbox never
// received meet on one case.
func (s *Store) LookupReference(ctx context.Context, ids ...string) (c Case, ok bool, err error) {
	const op = "LookupReference"
	rf, can := s.d.(driver.ReferenceFinder)
	if !can {
		return c, false, nil
	}
	norm := make([]string, 0, len(ids))
	for _, id := range ids {
		if n := NormalizeMessageID(id); n != "" {
			norm = append(norm, n)
		}
	}
	if len(norm) == 0 {
		return c, false, nil
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		c, err = rf.LookupReference(ctx, norm)
		return err
	})
	ok, err = notFound(err)
	return c, ok, err
}

// AppendEmail files e on case id. A second call with the same idempotency
// key is a no-op, so it is retried.
func (s *Store) AppendEmail(ctx context.Context, id CaseID, e *Email) error {
	const op = "AppendEmail"
	if id == "" {
		return invalid(op, "empty case ID")
	}
	n, err := normalizeEmail(op, e)
	if err != nil {
		return err
	}
	s.rawPolicy(n)
	return s.do(ctx, op, true, func(ctx context.Context) error { return s.d.AppendEmail(ctx, id, n) })
}

// AddNote adds a note to case id. It is retried only when the note has an
// idempotency key.
func (s *Store) AddNote(ctx context.Context, id CaseID, n *Note) error {
	const op = "AddNote"
	if id == "" || n == nil || strings.TrimSpace(n.Body) == "" {
		return invalid(op, "a note needs a case and a body")
	}
	c := *n
	c.Author = cleanLine(n.Author)
	return s.do(ctx, op, n.IdempotencyKey != "", func(ctx context.Context) error { return s.d.AddNote(ctx, id, &c) })
}

// UpdateCase applies u to case id and returns the updated case.
func (s *Store) UpdateCase(ctx context.Context, id CaseID, u *CaseUpdate) (Case, error) {
	const op = "UpdateCase"
	if id == "" || u == nil {
		return Case{}, invalid(op, "an update needs a case and fields")
	}
	if u.Status != nil && !validStatus(*u.Status) || u.Priority != nil && !validPriority(*u.Priority) {
		return Case{}, invalid(op, "empty or unknown status or priority")
	}
	c := *u
	if u.Queue != nil {
		q := cleanLine(*u.Queue)
		c.Queue = &q
	}
	if u.Owner != nil {
		o := cleanLine(*u.Owner)
		c.Owner = &o
	}
	var out Case
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = s.d.UpdateCase(ctx, id, &c)
		return err
	})
	return out, err
}

// CaseURL returns the address of case id for an agent.
func (s *Store) CaseURL(ctx context.Context, id CaseID) (string, error) {
	const op = "CaseURL"
	if id == "" {
		return "", invalid(op, "empty case ID")
	}
	var out string
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = s.d.CaseURL(ctx, id)
		return err
	})
	return out, err
}

// RecordInteraction files a mail on the sender's record without a case. It is idempotent by the mail's key, so it is retried.
func (s *Store) RecordInteraction(ctx context.Context, in *Interaction) error {
	const op = "RecordInteraction"
	if in == nil || in.Email == nil {
		return invalid(op, "an interaction needs a mail")
	}
	n := *in
	e, err := normalizeEmail(op, in.Email)
	if err != nil {
		return err
	}
	s.rawPolicy(e)
	n.Email = e
	if n.Kind == "" {
		n.Kind = KindEmail
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return s.d.RecordInteraction(ctx, &n) })
}

// LookupProcessed reports whether a mail with idempotency key was filed.
func (s *Store) LookupProcessed(ctx context.Context, key string) (p Processed, ok bool, err error) {
	const op = "LookupProcessed"
	if key == "" {
		return p, false, invalid(op, "empty key")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		p, err = s.d.LookupProcessed(ctx, key)
		return err
	})
	ok, err = notFound(err)
	return p, ok, err
}

// ListCases lists cases; Unimplemented when the driver cannot list.
func (s *Store) ListCases(ctx context.Context, opts *ListOptions) ([]Case, error) {
	const op = "ListCases"
	l, ok := s.d.(driver.Lister)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	if opts == nil {
		opts = &ListOptions{}
	}
	var out []Case
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = l.ListCases(ctx, opts)
		return err
	})
	return out, err
}

// ListInteractions lists the activities on case id, oldest first.
func (s *Store) ListInteractions(ctx context.Context, id CaseID) ([]Interaction, error) {
	const op = "ListInteractions"
	l, ok := s.d.(driver.Lister)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	var out []Interaction
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = l.ListInteractions(ctx, id)
		return err
	})
	return out, err
}

// CanQuarantine reports whether the store keeps quarantined mail.
func (s *Store) CanQuarantine() bool {
	_, ok := s.d.(driver.Quarantiner)
	return ok
}

// PutQuarantine keeps a mail that could not be processed, with its raw
// bytes and reason, and returns its quarantine ID.
func (s *Store) PutQuarantine(ctx context.Context, q *QuarantineItem) (string, error) {
	const op = "PutQuarantine"
	qs, ok := s.d.(driver.Quarantiner)
	if !ok {
		return "", &Error{Code: Unimplemented, Op: op}
	}
	if q == nil || len(q.Raw) == 0 && q.Reason == "" {
		return "", invalid(op, "empty quarantine item")
	}
	var id string
	err := s.do(ctx, op, false, func(ctx context.Context) (err error) {
		id, err = qs.PutQuarantine(ctx, q)
		return err
	})
	return id, err
}

// GetQuarantine returns the quarantined mail id, raw bytes included; ok is
// false when there is none.
func (s *Store) GetQuarantine(ctx context.Context, id string) (q QuarantineItem, ok bool, err error) {
	const op = "GetQuarantine"
	qs, has := s.d.(driver.Quarantiner)
	if !has {
		return q, false, &Error{Code: Unimplemented, Op: op}
	}
	if id == "" {
		return q, false, invalid(op, "empty quarantine ID")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		q, err = qs.GetQuarantine(ctx, id)
		return err
	})
	ok, err = notFound(err)
	return q, ok, err
}

// ListQuarantine lists quarantined mail of a mailbox ("" for all).
func (s *Store) ListQuarantine(ctx context.Context, mailbox string) ([]QuarantineItem, error) {
	const op = "ListQuarantine"
	qs, ok := s.d.(driver.Quarantiner)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	var out []QuarantineItem
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = qs.ListQuarantine(ctx, mailbox)
		return err
	})
	return out, err
}

// DeleteQuarantine removes a quarantined mail (after it was re-processed).
func (s *Store) DeleteQuarantine(ctx context.Context, id string) error {
	const op = "DeleteQuarantine"
	qs, ok := s.d.(driver.Quarantiner)
	if !ok {
		return &Error{Code: Unimplemented, Op: op}
	}
	if id == "" {
		return invalid(op, "empty quarantine ID")
	}
	// Retried: a retry after a lost reply finds the item already deleted,
	// so NotFound on a retry attempt means the delete succeeded.
	attempt := 0
	return s.do(ctx, op, true, func(ctx context.Context) error {
		attempt++
		err := qs.DeleteQuarantine(ctx, id)
		if err != nil && attempt > 1 && s.classify(err) == NotFound {
			return nil
		}
		return err
	})
}

// validStatus reports whether st is one of the known case statuses.
func validStatus(st CaseStatus) bool {
	switch st {
	case StatusNew, StatusOpen, StatusInProgress, StatusWaiting, StatusClosed, StatusCancelled:
		return true
	}
	return false
}

// validPriority reports whether p is one of the known priorities.
func validPriority(p Priority) bool {
	switch p {
	case PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent:
		return true
	}
	return false
}

// GetState returns a source state value; ok is false when unset.
func (s *Store) GetState(ctx context.Context, key string) (v []byte, ok bool, err error) {
	const op = "GetState"
	ss, has := s.d.(driver.StateStore)
	if !has {
		return nil, false, &Error{Code: Unimplemented, Op: op}
	}
	if key == "" {
		return nil, false, invalid(op, "empty state key")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		v, err = ss.GetState(ctx, key)
		return err
	})
	ok, err = notFound(err)
	return v, ok, err
}

// PutState stores a source state value.
func (s *Store) PutState(ctx context.Context, key string, v []byte) error {
	const op = "PutState"
	ss, has := s.d.(driver.StateStore)
	if !has {
		return &Error{Code: Unimplemented, Op: op}
	}
	if key == "" {
		return invalid(op, "empty state key")
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return ss.PutState(ctx, key, v) })
}

// As exposes driver-specific types (see each driver's # As section).
func (s *Store) As(i any) bool {
	if a, ok := s.d.(driver.Aser); ok {
		return a.As(i)
	}
	return false
}

// ErrorAs exposes driver-specific error types.
func (s *Store) ErrorAs(err error, i any) bool {
	if a, ok := s.d.(driver.Aser); ok {
		return a.ErrorAs(err, i)
	}
	return false
}

// Driver returns the underlying driver, for adapters' own tests and for
// packages that type-assert optional driver interfaces.
func (s *Store) Driver() driver.CaseStore { return s.d }

// Close releases the driver. A second Close returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.d.Close(); err != nil {
		return &Error{Code: s.classify(err), Op: "Close", Err: err}
	}
	return nil
}

// cleanLine removes CR, LF and other control characters from a one-line
// field (names, subjects), so no stored value can inject header lines.
func cleanLine(s string) string {
	if strings.IndexFunc(s, isCtl) < 0 {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if isCtl(r) {
			return ' '
		}
		return r
	}, s))
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

func normalizeEmail(op string, e *Email) (*Email, error) {
	if e == nil {
		return nil, invalid(op, "nil email")
	}
	if e.IdempotencyKey == "" {
		return nil, invalid(op, "email without idempotency key")
	}
	n := *e
	n.MessageID = NormalizeMessageID(e.MessageID)
	if n.MessageID == "" {
		return nil, invalid(op, "email without a valid Message-ID")
	}
	n.InReplyTo = normIDs(e.InReplyTo)
	n.References = normIDs(e.References)
	n.From = normAddr(e.From)
	n.To = normAddrs(e.To)
	n.Cc = normAddrs(e.Cc)
	n.Subject = cleanLine(e.Subject)
	if n.Direction == "" {
		n.Direction = Inbound
	}
	return &n, nil
}

// normIDs normalises Message-IDs into a new slice, dropping unusable ones.
func normIDs(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, id := range in {
		if n := NormalizeMessageID(id); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func normAddr(a Address) Address {
	return Address{Name: cleanLine(a.Name), Email: NormalizeAddress(a.Email)}
}

func normAddrs(in []Address) []Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]Address, 0, len(in))
	for _, a := range in {
		if n := normAddr(a); n.Email != "" {
			out = append(out, n)
		}
	}
	return out
}
