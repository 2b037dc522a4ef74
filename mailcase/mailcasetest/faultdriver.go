package mailcasetest

import (
	"context"
	"errors"
	"sync"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// FaultError is the error a FaultDriver injects with Fail: a driver error
// with a code, as a real adapter returns one. FaultDriver.ErrorCode
// classifies it as Code.
type FaultError struct {
	Code   driver.ErrorCode
	Method string
	// Err, when set, is the cause, as a backend would report it (its text
	// is part of the error's).
	Err error
}

func (e *FaultError) Error() string {
	s := "injected " + e.Code.String()
	if e.Method != "" {
		s += " in " + e.Method
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns e.Err.
func (e *FaultError) Unwrap() error { return e.Err }

// FaultDriver wraps a driver (usually memstore's, via mailcase.Store.Driver)
// and makes chosen calls fail, panic or block, counting the calls of every
// method. It is a driver.CaseStore and a driver.Directory; the wrapped
// driver's other optional interfaces are hidden, unless the driver is
// exposed through With (quarantine, listing). Method names are the driver
// interfaces' ("CreateCase", "FindContacts", "PutQuarantine", ...).
//
// Faults are consumed in order: the errors queued by FailNext first, then
// the standing fault set by Fail or Panic. A FaultDriver is safe for
// concurrent use; set faults before or during use.
type FaultDriver struct {
	inner driver.CaseStore

	mu       sync.Mutex
	calls    map[string]int
	next     map[string][]error
	standing map[string]*standing
	block    map[string]bool
	closeErr error
}

type standing struct {
	err   error
	panic bool
	times int // 0: always
	n     int
}

var (
	_ driver.CaseStore = (*FaultDriver)(nil)
	_ driver.Directory = (*FaultDriver)(nil)
)

// NewFaultDriver returns a FaultDriver over inner, injecting nothing yet.
// Directory calls on an inner driver without a driver.Directory fail with
// Unimplemented.
func NewFaultDriver(inner driver.CaseStore) *FaultDriver {
	return &FaultDriver{inner: inner, calls: map[string]int{}, next: map[string][]error{},
		standing: map[string]*standing{}, block: map[string]bool{}}
}

// Optional names an optional driver interface a FaultDriver can expose.
type Optional int

// The optional interfaces With can expose (the wrapped driver must have
// them).
const (
	Quarantiner Optional = iota + 1 // driver.Quarantiner
	Lister                          // driver.Lister
)

// With returns f as a driver that also implements the named optional
// interfaces, forwarded (with fault injection) to the wrapped driver. It
// panics if the wrapped driver lacks one of them.
func (f *FaultDriver) With(opts ...Optional) driver.CaseStore {
	var q, l bool
	for _, o := range opts {
		switch o {
		case Quarantiner:
			_ = f.inner.(driver.Quarantiner)
			q = true
		case Lister:
			_ = f.inner.(driver.Lister)
			l = true
		}
	}
	switch {
	case q && l:
		return faultQuarantineLister{faultQuarantiner{f}, faultLister{f}}
	case q:
		return faultQuarantiner{f}
	case l:
		return faultLister{f}
	}
	return f
}

// Fail makes the next times calls of method (0: every call) fail with a
// *FaultError of code.
func (f *FaultDriver) Fail(method string, code driver.ErrorCode, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.standing[method] = &standing{err: &FaultError{Code: code, Method: method}, times: times}
}

// FailWith makes the next times calls of method (0: every call) fail with
// err (usually a *FaultError carrying a code and a cause).
func (f *FaultDriver) FailWith(method string, err error, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.standing[method] = &standing{err: err, times: times}
}

// FailNext makes the next len(errs) calls of method return errs, in order,
// before any standing fault.
func (f *FaultDriver) FailNext(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next[method] = append(f.next[method], errs...)
}

// Panic makes every call of method panic (a driver bug).
func (f *FaultDriver) Panic(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.standing[method] = &standing{panic: true}
}

// Block makes every call of method wait until its context is done and
// return the context's error (a hung backend).
func (f *FaultDriver) Block(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block[method] = true
}

// SetCloseError makes Close return err after closing the wrapped driver.
func (f *FaultDriver) SetCloseError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeErr = err
}

// Calls returns how many times method was called.
func (f *FaultDriver) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// TotalCalls returns how many driver calls were made, all methods together
// (ErrorCode and Close excluded).
func (f *FaultDriver) TotalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// hit records a call of method and returns the injected error, if any.
func (f *FaultDriver) hit(ctx context.Context, method string) error {
	f.mu.Lock()
	f.calls[method]++
	block := f.block[method]
	var err error
	var panicking bool
	if q := f.next[method]; len(q) > 0 {
		err, f.next[method] = q[0], q[1:]
	} else if st := f.standing[method]; st != nil && (st.times == 0 || st.n < st.times) {
		st.n++
		err, panicking = st.err, st.panic
	}
	f.mu.Unlock()
	if panicking {
		panic("driver bug in " + method)
	}
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (f *FaultDriver) dir() (driver.Directory, error) {
	d, ok := f.inner.(driver.Directory)
	if !ok {
		return nil, &FaultError{Code: driver.Unimplemented, Method: "Directory"}
	}
	return d, nil
}

// FindContacts implements driver.Directory.
func (f *FaultDriver) FindContacts(ctx context.Context, a string) ([]driver.Contact, error) {
	if err := f.hit(ctx, "FindContacts"); err != nil {
		return nil, err
	}
	d, err := f.dir()
	if err != nil {
		return nil, err
	}
	return d.FindContacts(ctx, a)
}

// FindAccounts implements driver.Directory.
func (f *FaultDriver) FindAccounts(ctx context.Context, domain string) ([]driver.Account, error) {
	if err := f.hit(ctx, "FindAccounts"); err != nil {
		return nil, err
	}
	d, err := f.dir()
	if err != nil {
		return nil, err
	}
	return d.FindAccounts(ctx, domain)
}

// FindEmployee implements driver.Directory.
func (f *FaultDriver) FindEmployee(ctx context.Context, a string) (driver.Employee, error) {
	if err := f.hit(ctx, "FindEmployee"); err != nil {
		return driver.Employee{}, err
	}
	d, err := f.dir()
	if err != nil {
		return driver.Employee{}, err
	}
	return d.FindEmployee(ctx, a)
}

// CreateContact implements driver.Directory.
func (f *FaultDriver) CreateContact(ctx context.Context, c *driver.NewContact) (driver.Contact, error) {
	if err := f.hit(ctx, "CreateContact"); err != nil {
		return driver.Contact{}, err
	}
	d, err := f.dir()
	if err != nil {
		return driver.Contact{}, err
	}
	return d.CreateContact(ctx, c)
}

// CreateCase implements driver.CaseStore.
func (f *FaultDriver) CreateCase(ctx context.Context, c *driver.NewCase) (driver.Case, error) {
	if err := f.hit(ctx, "CreateCase"); err != nil {
		return driver.Case{}, err
	}
	return f.inner.CreateCase(ctx, c)
}

// GetCase implements driver.CaseStore.
func (f *FaultDriver) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	if err := f.hit(ctx, "GetCase"); err != nil {
		return driver.Case{}, err
	}
	return f.inner.GetCase(ctx, id)
}

// FindCaseByNumber implements driver.CaseStore.
func (f *FaultDriver) FindCaseByNumber(ctx context.Context, n string) (driver.Case, error) {
	if err := f.hit(ctx, "FindCaseByNumber"); err != nil {
		return driver.Case{}, err
	}
	return f.inner.FindCaseByNumber(ctx, n)
}

// LookupThread implements driver.CaseStore.
func (f *FaultDriver) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	if err := f.hit(ctx, "LookupThread"); err != nil {
		return driver.Case{}, err
	}
	return f.inner.LookupThread(ctx, ids)
}

// AppendEmail implements driver.CaseStore.
func (f *FaultDriver) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := f.hit(ctx, "AppendEmail"); err != nil {
		return err
	}
	return f.inner.AppendEmail(ctx, id, e)
}

// AddNote implements driver.CaseStore.
func (f *FaultDriver) AddNote(ctx context.Context, id driver.CaseID, n *driver.Note) error {
	if err := f.hit(ctx, "AddNote"); err != nil {
		return err
	}
	return f.inner.AddNote(ctx, id, n)
}

// UpdateCase implements driver.CaseStore.
func (f *FaultDriver) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	if err := f.hit(ctx, "UpdateCase"); err != nil {
		return driver.Case{}, err
	}
	return f.inner.UpdateCase(ctx, id, u)
}

// CaseURL implements driver.CaseStore.
func (f *FaultDriver) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	if err := f.hit(ctx, "CaseURL"); err != nil {
		return "", err
	}
	return f.inner.CaseURL(ctx, id)
}

// RecordInteraction implements driver.CaseStore.
func (f *FaultDriver) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if err := f.hit(ctx, "RecordInteraction"); err != nil {
		return err
	}
	return f.inner.RecordInteraction(ctx, in)
}

// LookupProcessed implements driver.CaseStore.
func (f *FaultDriver) LookupProcessed(ctx context.Context, k string) (driver.Processed, error) {
	if err := f.hit(ctx, "LookupProcessed"); err != nil {
		return driver.Processed{}, err
	}
	return f.inner.LookupProcessed(ctx, k)
}

// ErrorCode classifies injected *FaultError values by their code and
// everything else with the wrapped driver.
func (f *FaultDriver) ErrorCode(err error) driver.ErrorCode {
	var fe *FaultError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return f.inner.ErrorCode(err)
}

// Close closes the wrapped driver, then returns the error set by
// SetCloseError, if any.
func (f *FaultDriver) Close() error {
	if err := f.inner.Close(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closeErr
}

// faultQuarantiner exposes the wrapped driver's driver.Quarantiner.
type faultQuarantiner struct{ *FaultDriver }

func (f faultQuarantiner) q() driver.Quarantiner { return f.inner.(driver.Quarantiner) }

func (f faultQuarantiner) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	if err := f.hit(ctx, "PutQuarantine"); err != nil {
		return "", err
	}
	return f.q().PutQuarantine(ctx, q)
}

func (f faultQuarantiner) GetQuarantine(ctx context.Context, id string) (driver.QuarantineItem, error) {
	if err := f.hit(ctx, "GetQuarantine"); err != nil {
		return driver.QuarantineItem{}, err
	}
	return f.q().GetQuarantine(ctx, id)
}

func (f faultQuarantiner) ListQuarantine(ctx context.Context, mailbox string) ([]driver.QuarantineItem, error) {
	if err := f.hit(ctx, "ListQuarantine"); err != nil {
		return nil, err
	}
	return f.q().ListQuarantine(ctx, mailbox)
}

func (f faultQuarantiner) DeleteQuarantine(ctx context.Context, id string) error {
	if err := f.hit(ctx, "DeleteQuarantine"); err != nil {
		return err
	}
	return f.q().DeleteQuarantine(ctx, id)
}

// faultLister exposes the wrapped driver's driver.Lister.
type faultLister struct{ *FaultDriver }

func (f faultLister) ListCases(ctx context.Context, o *driver.ListOptions) ([]driver.Case, error) {
	if err := f.hit(ctx, "ListCases"); err != nil {
		return nil, err
	}
	return f.inner.(driver.Lister).ListCases(ctx, o)
}

func (f faultLister) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	if err := f.hit(ctx, "ListInteractions"); err != nil {
		return nil, err
	}
	return f.inner.(driver.Lister).ListInteractions(ctx, id)
}

// faultQuarantineLister exposes both. The embedded *FaultDriver is reached
// through faultQuarantiner (the two embeddings would be ambiguous).
type faultQuarantineLister struct {
	faultQuarantiner
	l faultLister
}

func (f faultQuarantineLister) ListCases(ctx context.Context, o *driver.ListOptions) ([]driver.Case, error) {
	return f.l.ListCases(ctx, o)
}

func (f faultQuarantineLister) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	return f.l.ListInteractions(ctx, id)
}

var (
	_ driver.Quarantiner = faultQuarantiner{}
	_ driver.Lister      = faultLister{}
	_ driver.Quarantiner = faultQuarantineLister{}
	_ driver.Lister      = faultQuarantineLister{}
)
