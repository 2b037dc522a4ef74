// Package memstore is the in-memory reference case store.
//
// It keeps everything in process memory and loses it on exit. It serves
// tests, demos and the examples, and it defines the semantics that the
// conformance suite in mailcase/drivertest checks: when an adapter and
// memstore disagree, memstore is right (or both are fixed together). It is
// deliberately short so that adapter authors can read it as a template:
//
//   - every method checks the context and the closed flag first;
//   - records are deep-copied on the way in and out, so callers can never
//     alias the store's memory;
//   - errors are raw *Error values classified by ErrorCode; the portable
//     mailcase.Store wraps them, retries and validates;
//   - idempotency keys are recorded atomically with the record they file.
//
// Open one with OpenStore, or with mailcase.OpenStore(ctx, "mem://") after
// importing this package (it registers the "mem" scheme).
//
// # Semantics
//
// The rules every driver follows (idempotency, threads, participants, error
// codes, defaults) are documented in package mailcase/driver; memstore
// implements them and adds only these choices of its own:
//
//   - Case numbers are decimal and sequential from FirstCaseNumber ("1000").
//   - Idempotency keys are Go map keys, so any bytes (NUL included) work.
//   - Leases expire by Options.Now: with a fixed clock they never do.
//   - The raw mail handed over with a filed Email (Email.Raw) is kept once
//     under its idempotency key (driver.RawKeeper); a duplicate filing
//     keeps nothing. Parsed content can be replaced (driver.EmailUpdater).
//   - Accounts, contacts and assets (driver.Records) share the Directory's
//     records; a batch (driver.RecordBatcher) is all-or-nothing: the
//     record state is snapshotted under the lock and restored when an
//     action fails.
//   - ListCases returns newest first; ListInteractions returns a case's
//     timeline oldest first, and with id "" the interactions filed on no
//     case (an extension for tests and demos).
//
// # As
//
// Store.As supports nothing; Store.ErrorAs supports **memstore.Error.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Scheme is the URL scheme memstore registers in mailcase.DefaultURLMux.
const Scheme = "mem"

// FirstCaseNumber is the human number of the first case; later cases count
// up from it.
const FirstCaseNumber = 1000

// Options configures a memstore. A nil *Options means defaults.
type Options struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// URLBase prefixes case IDs in CaseURL; "" means "mem://cases/".
	URLBase string
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
	// Store configures the portable layer (retries, timeouts); its Logger
	// defaults to Logger.
	Store *mailcase.StoreOptions
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.URLBase == "" {
		r.URLBase = "mem://cases/"
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	so := mailcase.StoreOptions{}
	if r.Store != nil {
		so = *r.Store
	}
	if so.Logger == nil {
		so.Logger = r.Logger
	}
	r.Store = &so
	return r
}

// OpenStore returns a new, empty in-memory store. The Store is safe for
// concurrent use; everything it holds is lost when it is closed or the
// process exits.
func OpenStore(opts *Options) (*mailcase.Store, error) {
	o := opts.withDefaults()
	return mailcase.NewStore(newDriver(o), o.Store), nil
}

// URLOpener opens "mem://" URLs. It accepts no query parameters: every
// opened store is new and empty. It is safe for concurrent use.
type URLOpener struct {
	// Options are used for every store opened; nil means defaults.
	Options *Options
}

// OpenStoreURL implements mailcase.StoreURLOpener.
func (o *URLOpener) OpenStoreURL(ctx context.Context, u *url.URL) (*mailcase.Store, error) {
	if u.Scheme != Scheme {
		return nil, mailcase.NewError(mailcase.InvalidArgument, "OpenStore",
			fmt.Errorf("memstore: scheme %q is not %q", u.Scheme, Scheme))
	}
	if err := mailcase.CheckQuery(u); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return OpenStore(o.Options)
}

func init() {
	mailcase.DefaultURLMux().RegisterStore(Scheme, &URLOpener{})
}

// Error is the error type of memstore drivers; Code classifies it. Reach
// it through a mailcase.Store with Store.ErrorAs.
type Error struct {
	Code driver.ErrorCode
	Msg  string
}

func (e *Error) Error() string { return "memstore: " + e.Msg }

func errorf(code driver.ErrorCode, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errClosed is returned by every method after Close.
var errClosed = &Error{Code: driver.FailedPrecondition, Msg: "store is closed"}

// caseRec is a case with its timeline. c.Participants is kept sorted and
// unique; it is never handed out without a copy.
type caseRec struct {
	c        driver.Case
	timeline []driver.Interaction
}

// addParticipant inserts addr into the sorted participants.
func (r *caseRec) addParticipant(addr string) {
	if i, found := slices.BinarySearch(r.c.Participants, addr); !found {
		r.c.Participants = slices.Insert(r.c.Participants, i, addr)
	}
}

// store implements driver.CaseStore and the optional interfaces. One mutex
// guards everything: simple and obviously correct, which is what a
// reference needs.
type store struct {
	now     func() time.Time
	urlBase string

	mu     sync.Mutex
	closed bool
	seq    int // last ID issued, shared by all record kinds

	contacts        []driver.Contact           // creation order
	contactsByEmail map[string][]int           // address -> indexes in contacts
	contactByID     map[string]int             // ID -> index in contacts
	accounts        []driver.Account           // creation order
	accountsByDom   map[string][]int           // domain -> indexes in accounts
	accountByID     map[string]int             // ID -> index in accounts
	employees       map[string]driver.Employee // by address
	recs            records                    // fields, assets and keys of driver.Records

	cases      map[driver.CaseID]*caseRec
	caseOrder  []driver.CaseID             // creation order
	byNumber   map[string]driver.CaseID    // human number -> case
	byMsgID    map[string]driver.CaseID    // Message-ID of a filed mail -> case (first filing wins)
	byRef      map[string]driver.CaseID    // reference of a filed mail -> case (first filing wins)
	processed  map[string]driver.Processed // mail idempotency keys
	noteKeys   map[string]bool             // note idempotency keys
	caseless   []driver.Interaction        // interactions filed on no case
	quarantine []driver.QuarantineItem
	state      map[string][]byte
	leases     map[string]lease
	raw        map[string][]byte // raw mail by idempotency key
	rawOrder   []string          // keys of raw, in the order kept
	rawAt      map[string]int    // key -> index in rawOrder
	outbox     []*outboxRec      // queue order
	outboxKeys map[string]*outboxRec
	wl         worklists                           // group queues and handled marks (worklist.go)
	sla        map[driver.CaseID][]driver.SLATimer // service-level timers by case (sla.go)
	events     eventLog                            // lifecycle events and their deliveries (events.go)
}

// lease is a granted driver.Leaser lease.
type lease struct {
	holder  string
	expires time.Time
}

var (
	_ driver.CaseStore       = (*store)(nil)
	_ driver.Directory       = (*store)(nil)
	_ driver.ReferenceFinder = (*store)(nil)
	_ driver.Lister          = (*store)(nil)
	_ driver.Quarantiner     = (*store)(nil)
	_ driver.StateStore      = (*store)(nil)
	_ driver.DirectoryWriter = (*store)(nil)
	_ driver.Aser            = (*store)(nil)
	_ driver.Leaser          = (*store)(nil)
	_ driver.RawKeeper       = (*store)(nil)
	_ driver.EmailUpdater    = (*store)(nil)
	_ driver.Outbox          = (*store)(nil)
	_ driver.Records         = (*store)(nil)
	_ driver.RecordBatcher   = (*store)(nil)
	_ driver.SLAStore        = (*store)(nil)
)

func newDriver(o Options) *store {
	return &store{
		now:             o.Now,
		urlBase:         o.URLBase,
		contactsByEmail: map[string][]int{},
		contactByID:     map[string]int{},
		accountsByDom:   map[string][]int{},
		accountByID:     map[string]int{},
		recs:            newRecords(),
		employees:       map[string]driver.Employee{},
		cases:           map[driver.CaseID]*caseRec{},
		byNumber:        map[string]driver.CaseID{},
		byMsgID:         map[string]driver.CaseID{},
		byRef:           map[string]driver.CaseID{},
		processed:       map[string]driver.Processed{},
		noteKeys:        map[string]bool{},
		state:           map[string][]byte{},
		leases:          map[string]lease{},
		raw:             map[string][]byte{},
		rawAt:           map[string]int{},
		outboxKeys:      map[string]*outboxRec{},
	}
}

// lock checks ctx, takes the lock and checks the closed flag. On success
// the caller must unlock.
func (s *store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	return nil
}

// nextID returns a new record ID with a kind prefix ("case-7").
func (s *store) nextID(kind string) string {
	s.seq++
	return kind + "-" + strconv.Itoa(s.seq)
}

// ---- directory ----

func (s *store) FindContacts(ctx context.Context, email string) ([]driver.Contact, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]driver.Contact, 0, len(s.contactsByEmail[email]))
	for _, i := range s.contactsByEmail[email] {
		out = append(out, s.contacts[i])
	}
	return out, nil
}

func (s *store) FindAccounts(ctx context.Context, domain string) ([]driver.Account, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]driver.Account, 0, len(s.accountsByDom[domain]))
	for _, i := range s.accountsByDom[domain] {
		out = append(out, copyAccount(s.accounts[i]))
	}
	return out, nil
}

func (s *store) FindEmployee(ctx context.Context, email string) (driver.Employee, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Employee{}, err
	}
	defer s.mu.Unlock()
	e, ok := s.employees[email]
	if !ok {
		return driver.Employee{}, errorf(driver.NotFound, "no employee %q", email)
	}
	return e, nil
}

func (s *store) CreateContact(ctx context.Context, c *driver.NewContact) (driver.Contact, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Contact{}, err
	}
	defer s.mu.Unlock()
	if c.Email == "" {
		return driver.Contact{}, errorf(driver.InvalidArgument, "contact without address")
	}
	rec := driver.Contact{
		ID: s.nextID("contact"), Name: c.Name, Email: c.Email, AccountID: c.AccountID,
		Placeholder: c.Placeholder, Internal: c.Internal, SupportLevel: c.SupportLevel,
	}
	s.contacts = append(s.contacts, rec)
	s.contactsByEmail[rec.Email] = append(s.contactsByEmail[rec.Email], len(s.contacts)-1)
	s.contactByID[rec.ID] = len(s.contacts) - 1
	return rec, nil
}

func (s *store) CreateAccount(ctx context.Context, a *driver.NewAccount) (driver.Account, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Account{}, err
	}
	defer s.mu.Unlock()
	rec := driver.Account{ID: s.nextID("account"), Name: a.Name,
		Domains: slices.Clone(a.Domains), SupportLevel: a.SupportLevel}
	s.accounts = append(s.accounts, rec)
	s.accountByID[rec.ID] = len(s.accounts) - 1
	for _, d := range uniqueSorted(rec.Domains) {
		s.accountsByDom[d] = append(s.accountsByDom[d], len(s.accounts)-1)
	}
	return copyAccount(rec), nil
}

func (s *store) CreateEmployee(ctx context.Context, e *driver.NewEmployee) (driver.Employee, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Employee{}, err
	}
	defer s.mu.Unlock()
	if e.Email == "" {
		return driver.Employee{}, errorf(driver.InvalidArgument, "employee without address")
	}
	if _, dup := s.employees[e.Email]; dup {
		return driver.Employee{}, errorf(driver.AlreadyExists, "employee %q exists", e.Email)
	}
	rec := driver.Employee{ID: s.nextID("employee"), Name: e.Name, Email: e.Email, Active: e.Active}
	s.employees[rec.Email] = rec
	return rec, nil
}

// ---- cases ----

func (s *store) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	c, _, err := s.createCase(req, nil)
	return c, err
}

// createCase creates the case of req; when it does, it calls then (when
// not nil) with the new case before keeping anything, and an error of then
// keeps nothing. created is false for a mail filed before. The caller
// holds the lock.
func (s *store) createCase(req *driver.NewCase, then func(driver.Case) error) (c driver.Case, created bool, err error) {
	if req.First == nil || req.First.IdempotencyKey == "" {
		return driver.Case{}, false, errorf(driver.InvalidArgument, "a case needs a first mail with an idempotency key")
	}
	// Idempotency: the first mail's key identifies the case.
	if p, ok := s.processed[req.First.IdempotencyKey]; ok {
		if rec := s.cases[p.CaseID]; rec != nil {
			return s.caseOut(rec), false, nil
		}
		return driver.Case{}, false, errorf(driver.AlreadyExists,
			"mail %q was already filed on no case", req.First.IdempotencyKey)
	}
	now := s.now()
	id := driver.CaseID(s.nextID("case"))
	c = driver.Case{
		ID:        id,
		Number:    strconv.Itoa(FirstCaseNumber + len(s.caseOrder)),
		Subject:   req.Subject,
		Status:    req.Status,
		Priority:  req.Priority,
		Queue:     req.Queue,
		Origin:    req.Origin,
		Category:  req.Category,
		ContactID: req.ContactID,
		AccountID: req.AccountID,
		ParentID:  req.ParentID,
		LinkedID:  req.LinkedID,
		CreatedAt: now,
		UpdatedAt: now,
	}
	// Subject, Status and Priority arrive filled (mailcase.Store's defaults).
	if c.Status.IsClosed() {
		c.ClosedAt = now
	}
	rec := &caseRec{c: c}
	if i, ok := s.contactByID[c.ContactID]; ok && !s.contacts[i].Placeholder {
		rec.addParticipant(s.contacts[i].Email)
	}
	if req.Description != "" {
		rec.timeline = append(rec.timeline, driver.Interaction{
			ID: s.nextID("interaction"), Kind: driver.KindNote, CaseID: id,
			ContactID: c.ContactID, AccountID: c.AccountID, CreatedAt: now,
			Note: &driver.Note{Author: "system", Body: req.Description, CreatedAt: now},
		})
	}
	if then != nil {
		// The case as it will be returned, before anything is kept.
		preview := &caseRec{c: s.caseOut(rec)}
		for _, a := range addresses(req.First) {
			preview.addParticipant(a)
		}
		if err := then(preview.c); err != nil {
			return driver.Case{}, false, err
		}
	}
	s.cases[id] = rec
	s.caseOrder = append(s.caseOrder, id)
	s.byNumber[c.Number] = id
	s.file(rec, req.First, now)
	return s.caseOut(rec), true, nil
}

// file records e on rec with its key, Message-ID and addresses. The caller
// holds the lock and has checked the key is new.
func (s *store) file(rec *caseRec, e *driver.Email, now time.Time) {
	s.keepRaw(e.IdempotencyKey, e.Raw)
	e = copyEmail(e)
	rec.timeline = append(rec.timeline, driver.Interaction{
		ID: s.nextID("interaction"), Kind: driver.KindEmail, CaseID: rec.c.ID,
		ContactID: rec.c.ContactID, AccountID: rec.c.AccountID, Email: e, CreatedAt: now,
	})
	s.processed[e.IdempotencyKey] = driver.Processed{Key: e.IdempotencyKey, CaseID: rec.c.ID, At: now, Fingerprint: e.Fingerprint}
	if _, ok := s.byMsgID[e.MessageID]; !ok && e.MessageID != "" {
		s.byMsgID[e.MessageID] = rec.c.ID
	}
	for _, ref := range driver.IndexedReferences(e) {
		if _, ok := s.byRef[ref]; !ok {
			s.byRef[ref] = rec.c.ID
		}
	}
	for _, a := range addresses(e) {
		rec.addParticipant(a)
	}
	rec.c.UpdatedAt = now
}

// caseOut returns a copy of rec's case.
func (s *store) caseOut(rec *caseRec) driver.Case {
	c := rec.c
	c.Participants = slices.Clone(c.Participants)
	return c
}

func (s *store) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	rec, ok := s.cases[id]
	if !ok {
		return driver.Case{}, errorf(driver.NotFound, "no case %q", id)
	}
	return s.caseOut(rec), nil
}

func (s *store) FindCaseByNumber(ctx context.Context, number string) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	id, ok := s.byNumber[number]
	if !ok {
		return driver.Case{}, errorf(driver.NotFound, "no case number %q", number)
	}
	return s.caseOut(s.cases[id]), nil
}

func (s *store) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- { // the last ID is the most specific
		if id, ok := s.byMsgID[ids[i]]; ok {
			return s.caseOut(s.cases[id]), nil
		}
	}
	return driver.Case{}, errorf(driver.NotFound, "no case holds any of %d Message-IDs", len(ids))
}

// LookupReference implements driver.ReferenceFinder.
func (s *store) LookupReference(ctx context.Context, ids []string) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- { // the last ID is the most specific
		if id, ok := s.byRef[ids[i]]; ok {
			return s.caseOut(s.cases[id]), nil
		}
	}
	return driver.Case{}, errorf(driver.NotFound, "no filed mail refers to any of %d Message-IDs", len(ids))
}

func (s *store) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	_, err := s.appendEmail(id, e)
	return err
}

// appendEmail files e on case id; filed is false for a mail filed before.
// The caller holds the lock.
func (s *store) appendEmail(id driver.CaseID, e *driver.Email) (filed bool, err error) {
	if e.IdempotencyKey == "" {
		return false, errorf(driver.InvalidArgument, "mail without idempotency key")
	}
	if _, dup := s.processed[e.IdempotencyKey]; dup {
		return false, nil // filed once, filed forever
	}
	rec, ok := s.cases[id]
	if !ok {
		return false, errorf(driver.NotFound, "no case %q", id)
	}
	s.file(rec, e, s.now())
	return true, nil
}

func (s *store) AddNote(ctx context.Context, id driver.CaseID, n *driver.Note) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	rec, ok := s.cases[id]
	if !ok {
		return errorf(driver.NotFound, "no case %q", id)
	}
	if n.IdempotencyKey != "" {
		if s.noteKeys[n.IdempotencyKey] {
			return nil
		}
		s.noteKeys[n.IdempotencyKey] = true
	}
	now := s.now()
	note := *n
	if note.CreatedAt.IsZero() {
		note.CreatedAt = now
	}
	rec.timeline = append(rec.timeline, driver.Interaction{
		ID: s.nextID("interaction"), Kind: driver.KindNote, CaseID: id,
		ContactID: rec.c.ContactID, AccountID: rec.c.AccountID, Note: &note, CreatedAt: now,
	})
	rec.c.UpdatedAt = now
	return nil
}

func (s *store) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	rec, ok := s.cases[id]
	if !ok {
		return driver.Case{}, errorf(driver.NotFound, "no case %q", id)
	}
	if u.Status != nil && *u.Status == "" || u.Priority != nil && *u.Priority == "" {
		return driver.Case{}, errorf(driver.InvalidArgument, "empty status or priority")
	}
	now := s.now()
	c := &rec.c
	if u.Status != nil {
		switch closing := u.Status.IsClosed(); {
		case closing && !c.Status.IsClosed():
			c.ClosedAt = now
		case !closing:
			c.ClosedAt = time.Time{} // reopened
		}
		c.Status = *u.Status
	}
	if u.Priority != nil {
		c.Priority = *u.Priority
	}
	if u.Queue != nil {
		c.Queue = *u.Queue
	}
	if u.Owner != nil {
		c.Owner = *u.Owner
	}
	c.UpdatedAt = now
	return s.caseOut(rec), nil
}

func (s *store) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if _, ok := s.cases[id]; !ok {
		return "", errorf(driver.NotFound, "no case %q", id)
	}
	return s.urlBase + url.PathEscape(string(id)), nil
}

func (s *store) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if in.Email == nil || in.Email.IdempotencyKey == "" {
		return errorf(driver.InvalidArgument, "an interaction needs a mail with an idempotency key")
	}
	key := in.Email.IdempotencyKey
	if _, dup := s.processed[key]; dup {
		return nil
	}
	now := s.now()
	rec := copyInteraction(*in)
	rec.ID = s.nextID("interaction")
	if rec.Kind == "" {
		rec.Kind = driver.KindEmail
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	s.caseless = append(s.caseless, rec)
	s.processed[key] = driver.Processed{Key: key, CaseID: in.CaseID, At: now, Fingerprint: in.Email.Fingerprint}
	s.keepRaw(key, in.Email.Raw)
	return nil
}

// keepRaw keeps a copy of raw under key unless raw is empty or a raw mail
// is kept for key already. The caller holds the lock.
func (s *store) keepRaw(key string, raw []byte) {
	if len(raw) == 0 {
		return
	}
	if _, ok := s.raw[key]; ok {
		return
	}
	s.raw[key] = slices.Clone(raw)
	s.rawAt[key] = len(s.rawOrder)
	s.rawOrder = append(s.rawOrder, key)
}

// PutRaw keeps raw under key unless one is kept already (first write wins).
func (s *store) PutRaw(ctx context.Context, key string, raw []byte) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if key == "" || len(raw) == 0 {
		return errorf(driver.InvalidArgument, "empty key or raw mail")
	}
	s.keepRaw(key, raw)
	return nil
}

// GetRaw returns a copy of the raw mail kept under key, or NotFound.
func (s *store) GetRaw(ctx context.Context, key string) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	raw, ok := s.raw[key]
	if !ok {
		return nil, errorf(driver.NotFound, "no raw mail kept for %q", key)
	}
	return slices.Clone(raw), nil
}

// RawKeys lists the keys with a raw mail in the order kept.
func (s *store) RawKeys(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	start := 0
	if after != "" {
		i, ok := s.rawAt[after]
		if !ok {
			return nil, errorf(driver.NotFound, "no raw mail kept for %q", after)
		}
		start = i + 1
	}
	rest := s.rawOrder[start:]
	if limit > 0 && len(rest) > limit {
		rest = rest[:limit]
	}
	return slices.Clone(rest), nil
}

// filed returns the Email filed under key, in the store's memory, or nil.
// The caller holds the lock.
func (s *store) filed(key string) *driver.Email {
	if _, ok := s.processed[key]; !ok {
		return nil
	}
	for _, in := range s.caseless {
		if in.Email != nil && in.Email.IdempotencyKey == key {
			return in.Email
		}
	}
	for _, id := range s.caseOrder {
		for _, in := range s.cases[id].timeline {
			if in.Email != nil && in.Email.IdempotencyKey == key {
				return in.Email
			}
		}
	}
	return nil
}

// GetEmail returns a copy of the Email filed under key, or NotFound.
func (s *store) GetEmail(ctx context.Context, key string) (driver.Email, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Email{}, err
	}
	defer s.mu.Unlock()
	e := s.filed(key)
	if e == nil {
		return driver.Email{}, errorf(driver.NotFound, "no mail filed under %q", key)
	}
	return *copyEmail(e), nil
}

// UpdateParsed replaces the parsed content of the Email filed under key.
func (s *store) UpdateParsed(ctx context.Context, key string, c *driver.ParsedContent) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e := s.filed(key)
	if e == nil {
		return errorf(driver.NotFound, "no mail filed under %q", key)
	}
	n := copyEmail(&driver.Email{Attachments: c.Attachments, Problems: c.Problems})
	e.Subject, e.Text, e.ReplyText, e.HTML = c.Subject, c.Text, c.ReplyText, c.HTML
	e.Attachments, e.Problems = n.Attachments, n.Problems
	return nil
}

func (s *store) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Processed{}, err
	}
	defer s.mu.Unlock()
	p, ok := s.processed[key]
	if !ok {
		return driver.Processed{}, errorf(driver.NotFound, "key %q was never filed", key)
	}
	return p, nil
}

// ErrorCode classifies memstore errors and context errors.
func (s *store) ErrorCode(err error) driver.ErrorCode {
	var e *Error
	switch {
	case err == nil:
		return driver.OK
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return driver.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return driver.DeadlineExceeded
	}
	return driver.Unknown
}

// Close marks the store closed; its memory is released with the store.
func (s *store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.closed = true
	return nil
}

// ---- optional interfaces ----

// ListCases lists cases newest first (see driver.Lister).
func (s *store) ListCases(ctx context.Context, opts *driver.ListOptions) ([]driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []driver.Case
	for i := len(s.caseOrder) - 1; i >= 0; i-- {
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
		rec := s.cases[s.caseOrder[i]]
		if opts.Status != "" && rec.c.Status != opts.Status || opts.Queue != "" && rec.c.Queue != opts.Queue {
			continue
		}
		out = append(out, s.caseOut(rec))
	}
	return out, nil
}

// ListInteractions lists a case's timeline oldest first. As a memstore
// extension, id "" lists the interactions filed on no case.
func (s *store) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	src := s.caseless
	if id != "" {
		rec, ok := s.cases[id]
		if !ok {
			return nil, errorf(driver.NotFound, "no case %q", id)
		}
		src = rec.timeline
	}
	out := make([]driver.Interaction, len(src))
	for i, in := range src {
		out[i] = copyInteraction(in)
	}
	return out, nil
}

func (s *store) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	item := *q
	item.ID = s.nextID("quarantine")
	item.Raw = slices.Clone(q.Raw)
	if item.CreatedAt.IsZero() {
		item.CreatedAt = s.now()
	}
	s.quarantine = append(s.quarantine, item)
	return item.ID, nil
}

// GetQuarantine returns a copy of quarantined mail id, or NotFound.
func (s *store) GetQuarantine(ctx context.Context, id string) (driver.QuarantineItem, error) {
	if err := s.lock(ctx); err != nil {
		return driver.QuarantineItem{}, err
	}
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.quarantine, func(q driver.QuarantineItem) bool { return q.ID == id })
	if i < 0 {
		return driver.QuarantineItem{}, errorf(driver.NotFound, "no quarantined mail %q", id)
	}
	q := s.quarantine[i]
	q.Raw = slices.Clone(q.Raw)
	return q, nil
}

// ListQuarantine lists quarantined mail oldest first.
func (s *store) ListQuarantine(ctx context.Context, mailbox string) ([]driver.QuarantineItem, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := []driver.QuarantineItem{}
	for _, q := range s.quarantine {
		if mailbox == "" || q.Mailbox == mailbox {
			q.Raw = slices.Clone(q.Raw)
			out = append(out, q)
		}
	}
	return out, nil
}

func (s *store) DeleteQuarantine(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.quarantine, func(q driver.QuarantineItem) bool { return q.ID == id })
	if i < 0 {
		return errorf(driver.NotFound, "no quarantined mail %q", id)
	}
	s.quarantine = slices.Delete(s.quarantine, i, i+1)
	return nil
}

func (s *store) GetState(ctx context.Context, key string) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, ok := s.state[key]
	if !ok {
		return nil, errorf(driver.NotFound, "no state %q", key)
	}
	return slices.Clone(v), nil
}

func (s *store) PutState(ctx context.Context, key string, value []byte) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.state[key] = append([]byte{}, value...) // never nil, so an empty value is set
	return nil
}

// AcquireLease grants name to holder for ttl when it is free, expired or
// already held by holder. Expiry is judged by Options.Now.
func (s *store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := s.now()
	if l, ok := s.leases[name]; ok && l.holder != holder && !now.After(l.expires) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, expires: now.Add(ttl)}
	return true, nil
}

// RenewLease extends name when holder holds it and it has not expired.
func (s *store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := s.now()
	if l, ok := s.leases[name]; !ok || l.holder != holder || now.After(l.expires) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, expires: now.Add(ttl)}
	return true, nil
}

// ReleaseLease gives name up when holder holds it.
func (s *store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}

// As supports no driver-specific types.
func (s *store) As(any) bool { return false }

// ErrorAs supports **memstore.Error.
func (s *store) ErrorAs(err error, i any) bool {
	p, ok := i.(**Error)
	if !ok {
		return false
	}
	return errors.As(err, p)
}

// ---- copies ----

// addresses returns the addresses of e's From, To and Cc.
func addresses(e *driver.Email) []string {
	if e.NoParticipants {
		return nil
	}
	out := make([]string, 0, 1+len(e.To)+len(e.Cc))
	for _, a := range append(append([]driver.Address{e.From}, e.To...), e.Cc...) {
		if a.Email != "" {
			out = append(out, a.Email)
		}
	}
	return out
}

func uniqueSorted(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func copyAccount(a driver.Account) driver.Account {
	a.Domains = slices.Clone(a.Domains)
	return a
}

// copyEmail returns a deep copy of e: no slice or attachment data is shared.
func copyEmail(e *driver.Email) *driver.Email {
	if e == nil {
		return nil
	}
	c := *e
	c.InReplyTo = slices.Clone(e.InReplyTo)
	c.References = slices.Clone(e.References)
	c.To = slices.Clone(e.To)
	c.Cc = slices.Clone(e.Cc)
	c.Problems = slices.Clone(e.Problems)
	c.Raw = nil // kept apart (RawKeeper)
	if e.Attachments != nil {
		c.Attachments = make([]driver.Attachment, len(e.Attachments))
		for i, a := range e.Attachments {
			a.Data = slices.Clone(a.Data)
			c.Attachments[i] = a
		}
	}
	return &c
}

func copyInteraction(in driver.Interaction) driver.Interaction {
	in.Email = copyEmail(in.Email)
	if in.Note != nil {
		n := *in.Note
		in.Note = &n
	}
	return in
}
