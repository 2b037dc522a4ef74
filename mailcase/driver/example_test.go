package driver_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// This file is the driver author's guide in code: mapstore is a complete
// driver written from the package documentation alone. It implements only
// the required driver.CaseStore (no Directory, no optional interfaces) over
// a few maps under one mutex, registers itself under the URL scheme
// "mapstore", and passes mailcase/drivertest (see TestMapstoreConformance).

// mapError is the driver's error type: a code and a message. Drivers return
// raw errors like this one and never wrap them; mailcase.Store wraps them
// once.
type mapError struct {
	code driver.ErrorCode
	msg  string
}

func (e *mapError) Error() string { return "mapstore: " + e.msg }

func errf(code driver.ErrorCode, format string, args ...any) error {
	return &mapError{code: code, msg: fmt.Sprintf(format, args...)}
}

// mapstore keeps cases, Message-IDs and idempotency keys in maps. Keys are
// Go strings used as map keys, so any bytes work, NUL included.
type mapstore struct {
	mu       sync.Mutex
	closed   bool
	n        int                            // last case number issued
	cases    map[driver.CaseID]*driver.Case // participants kept sorted
	byNumber map[string]driver.CaseID
	byMsgID  map[string]driver.CaseID    // first filing wins
	keys     map[string]driver.Processed // one key space for every filing
	notes    map[string]bool             // note keys, their own space
}

var _ driver.CaseStore = (*mapstore)(nil)

func newMapstore() *mapstore {
	return &mapstore{cases: map[driver.CaseID]*driver.Case{}, byNumber: map[string]driver.CaseID{},
		byMsgID: map[string]driver.CaseID{}, keys: map[string]driver.Processed{}, notes: map[string]bool{}}
}

// lock checks the context first (a done context is Canceled or
// DeadlineExceeded), then the closed flag.
func (s *mapstore) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errf(driver.FailedPrecondition, "closed")
	}
	return nil
}

// out returns a copy: callers never alias the store's memory.
func out(c *driver.Case) driver.Case {
	r := *c
	r.Participants = slices.Clone(c.Participants)
	return r
}

// file records e's key, Message-ID and addresses on c.
func (s *mapstore) file(c *driver.Case, e *driver.Email, now time.Time) {
	s.keys[e.IdempotencyKey] = driver.Processed{Key: e.IdempotencyKey, CaseID: c.ID, At: now, Fingerprint: e.Fingerprint}
	if _, ok := s.byMsgID[e.MessageID]; !ok {
		s.byMsgID[e.MessageID] = c.ID
	}
	if e.NoParticipants { // the sender was not accepted for the case
		c.UpdatedAt = now
		return
	}
	for _, a := range append([]driver.Address{e.From}, append(e.To, e.Cc...)...) {
		if i, found := slices.BinarySearch(c.Participants, a.Email); a.Email != "" && !found {
			c.Participants = slices.Insert(c.Participants, i, a.Email)
		}
	}
	c.UpdatedAt = now
}

func (s *mapstore) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	if p, ok := s.keys[req.First.IdempotencyKey]; ok { // a redelivery
		if p.CaseID == "" {
			return driver.Case{}, errf(driver.AlreadyExists, "key filed on no case")
		}
		return out(s.cases[p.CaseID]), nil
	}
	// Subject, Status and Priority arrive filled by mailcase.Store.
	s.n++
	now := time.Now()
	num := strconv.Itoa(s.n)
	c := &driver.Case{ID: driver.CaseID("case-" + num), Number: num, Subject: req.Subject, Status: req.Status,
		Priority: req.Priority, Queue: req.Queue, Origin: req.Origin, Category: req.Category,
		ContactID: req.ContactID, AccountID: req.AccountID, ParentID: req.ParentID, LinkedID: req.LinkedID,
		CreatedAt: now}
	if c.Status.IsClosed() {
		c.ClosedAt = now
	}
	s.cases[c.ID], s.byNumber[num] = c, c.ID
	s.file(c, req.First, now)
	return out(c), nil
}

func (s *mapstore) get(id driver.CaseID) (*driver.Case, error) {
	c, ok := s.cases[id]
	if !ok {
		return nil, errf(driver.NotFound, "no case %q", id)
	}
	return c, nil
}

func (s *mapstore) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return driver.Case{}, err
	}
	return out(c), nil
}

func (s *mapstore) FindCaseByNumber(ctx context.Context, number string) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	c, err := s.get(s.byNumber[number])
	if err != nil {
		return driver.Case{}, err
	}
	return out(c), nil
}

func (s *mapstore) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- { // the last ID is the most specific
		if id, ok := s.byMsgID[ids[i]]; ok {
			return out(s.cases[id]), nil
		}
	}
	return driver.Case{}, errf(driver.NotFound, "no thread")
}

func (s *mapstore) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, dup := s.keys[e.IdempotencyKey]; dup {
		return nil // filed once, filed forever
	}
	c, err := s.get(id)
	if err != nil {
		return err
	}
	s.file(c, e, time.Now())
	return nil
}

func (s *mapstore) AddNote(ctx context.Context, id driver.CaseID, n *driver.Note) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return err
	}
	if n.IdempotencyKey != "" {
		s.notes[n.IdempotencyKey] = true // a real store keeps the note too
	}
	c.UpdatedAt = time.Now()
	return nil
}

func (s *mapstore) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, err
	}
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return driver.Case{}, err
	}
	now := time.Now()
	if u.Status != nil {
		if !u.Status.IsClosed() {
			c.ClosedAt = time.Time{}
		} else if !c.Status.IsClosed() {
			c.ClosedAt = now
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
	return out(c), nil
}

func (s *mapstore) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if _, err := s.get(id); err != nil {
		return "", err
	}
	return "mapstore://cases/" + url.PathEscape(string(id)), nil
}

func (s *mapstore) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := in.Email.IdempotencyKey
	if _, dup := s.keys[k]; !dup {
		s.keys[k] = driver.Processed{Key: k, At: time.Now(), Fingerprint: in.Email.Fingerprint}
	}
	return nil
}

func (s *mapstore) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Processed{}, err
	}
	defer s.mu.Unlock()
	p, ok := s.keys[key]
	if !ok {
		return driver.Processed{}, errf(driver.NotFound, "key never filed")
	}
	return p, nil
}

// ErrorCode: nil is OK, our errors carry their code, context errors (also
// wrapped) are Canceled and DeadlineExceeded, anything else is Unknown.
func (s *mapstore) ErrorCode(err error) driver.ErrorCode {
	var me *mapError
	switch {
	case err == nil:
		return driver.OK
	case errors.As(err, &me):
		return me.code
	case errors.Is(err, context.Canceled):
		return driver.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return driver.DeadlineExceeded
	}
	return driver.Unknown
}

func (s *mapstore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// opener opens "mapstore://" URLs, each a new empty store.
type opener struct{}

func (opener) OpenStoreURL(ctx context.Context, u *url.URL) (*mailcase.Store, error) {
	if err := mailcase.CheckQuery(u); err != nil {
		return nil, err
	}
	return mailcase.NewStore(newMapstore(), nil), nil
}

// A driver package registers its scheme in init, usually in
// mailcase.DefaultURLMux(); this example uses a mux of its own.
func Example() {
	mux := new(mailcase.URLMux)
	mux.RegisterStore("mapstore", opener{})

	ctx := context.Background()
	store, err := mux.OpenStore(ctx, "mapstore://")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	// The pipeline's idempotency keys hold NUL: mailbox + "\x00" + Message-ID.
	first := &mailcase.Email{IdempotencyKey: "support\x00m1@example.com", MessageID: "<m1@example.com>",
		Subject: "Printer on fire", From: mailcase.Address{Email: "Alice@Example.com"}}
	c, err := store.CreateCase(ctx, &mailcase.NewCase{First: first})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The Store filled the defaults before the driver saw the request.
	fmt.Println(c.Number, c.Subject, c.Status, c.Priority, c.Participants)

	again, _ := store.CreateCase(ctx, &mailcase.NewCase{First: first}) // a redelivery
	fmt.Println("same case:", again.ID == c.ID)

	found, ok, _ := store.LookupThread(ctx, "m1@example.com")
	fmt.Println("thread:", ok, found.ID == c.ID)
	// Output:
	// 1 Printer on fire new normal [alice@example.com]
	// same case: true
	// thread: true true
}
