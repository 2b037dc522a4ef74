package mailcase_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// faultDriver is mailcasetest's fault-injecting driver over memstore's. It
// exposes only the Directory of memstore's optional interfaces (a driver
// without Lister, Quarantiner, ...).
type faultDriver = mailcasetest.FaultDriver

// faultError is a driver error with a code, as a real adapter returns.
type faultError = mailcasetest.FaultError

func newFaultDriver(t *testing.T) *faultDriver {
	t.Helper()
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	return mailcasetest.NewFaultDriver(s.Driver())
}

// newFaultStore returns a Store over a fault driver with fast retries.
func newFaultStore(t *testing.T, opts *mailcase.StoreOptions) (*mailcase.Store, *faultDriver) {
	t.Helper()
	fd := newFaultDriver(t)
	o := mailcase.StoreOptions{RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := mailcase.NewStore(fd, &o)
	t.Cleanup(func() { _ = s.Close() })
	return s, fd
}

func testMail(key, id string) *mailcase.Email {
	return &mailcase.Email{
		IdempotencyKey: key, MessageID: id, Subject: "Help",
		From: mailcase.Address{Name: "Alice", Email: "alice@example.com"},
		To:   []mailcase.Address{{Email: "support@example.com"}},
	}
}

var unavailable = &faultError{Code: driver.Unavailable}

func TestStore_ValidationFailsBeforeDriver(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	ctx := t.Context()
	empty := mailcase.CaseStatus("")
	tests := []struct {
		name string
		call func() error
	}{
		{name: "FindContacts bad address", call: func() error { _, err := s.FindContacts(ctx, "nobody"); return err }},
		{name: "FindAccounts bad domain", call: func() error { _, err := s.FindAccounts(ctx, "bad domain"); return err }},
		{name: "FindEmployee bad address", call: func() error { _, _, err := s.FindEmployee(ctx, "@x"); return err }},
		{name: "CreateContact nil", call: func() error { _, err := s.CreateContact(ctx, nil); return err }},
		{name: "CreateContact bad address", call: func() error {
			_, err := s.CreateContact(ctx, &mailcase.NewContact{Email: "x y@z"})
			return err
		}},
		{name: "CreateCase nil", call: func() error { _, err := s.CreateCase(ctx, nil); return err }},
		{name: "CreateCase without first mail", call: func() error {
			_, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "x"})
			return err
		}},
		{name: "CreateCase without key", call: func() error {
			_, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail("", "a@b")})
			return err
		}},
		{name: "CreateCase without Message-ID", call: func() error {
			_, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail("k", "<>")})
			return err
		}},
		{name: "GetCase empty ID", call: func() error { _, _, err := s.GetCase(ctx, ""); return err }},
		{name: "FindCaseByNumber blank", call: func() error { _, _, err := s.FindCaseByNumber(ctx, "  "); return err }},
		{name: "AppendEmail empty ID", call: func() error { return s.AppendEmail(ctx, "", testMail("k", "a@b")) }},
		{name: "AppendEmail nil mail", call: func() error { return s.AppendEmail(ctx, "c1", nil) }},
		{name: "AddNote blank body", call: func() error { return s.AddNote(ctx, "c1", &mailcase.Note{Body: " \n"}) }},
		{name: "AddNote nil", call: func() error { return s.AddNote(ctx, "c1", nil) }},
		{name: "UpdateCase nil", call: func() error { _, err := s.UpdateCase(ctx, "c1", nil); return err }},
		{name: "UpdateCase empty status", call: func() error {
			_, err := s.UpdateCase(ctx, "c1", &mailcase.CaseUpdate{Status: &empty})
			return err
		}},
		{name: "CaseURL empty ID", call: func() error { _, err := s.CaseURL(ctx, ""); return err }},
		{name: "RecordInteraction nil", call: func() error { return s.RecordInteraction(ctx, nil) }},
		{name: "RecordInteraction without mail", call: func() error {
			return s.RecordInteraction(ctx, &mailcase.Interaction{ContactID: "x"})
		}},
		{name: "LookupProcessed empty key", call: func() error { _, _, err := s.LookupProcessed(ctx, ""); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err)
			assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
			assert.ErrorIs(t, err, mailcase.ErrInvalidArgument)
			assert.Zero(t, fd.TotalCalls(), "the driver must not be called")
		})
	}
}

func TestStore_LookupThreadWithoutUsableIDs(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	_, ok, err := s.LookupThread(t.Context(), "", "<>", "no id")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Zero(t, fd.TotalCalls(), "nothing to look up: no driver call")
}

func TestStore_RetriesRetryableErrors(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error
		max       int
		wantCalls int
		wantCode  mailcase.ErrorCode
	}{
		{name: "recovers after two failures", errs: []error{unavailable, unavailable}, max: 4, wantCalls: 3},
		{name: "resource exhausted is retried", errs: []error{&faultError{Code: driver.ResourceExhausted}}, max: 4, wantCalls: 2},
		{name: "gives up after max attempts", errs: []error{unavailable, unavailable, unavailable, unavailable, unavailable}, max: 3, wantCalls: 3, wantCode: mailcase.Unavailable},
		{name: "no retry with MaxAttempts -1", errs: []error{unavailable}, max: -1, wantCalls: 1, wantCode: mailcase.Unavailable},
		{name: "permanent error not retried", errs: []error{&faultError{Code: driver.PermissionDenied}}, max: 4, wantCalls: 1, wantCode: mailcase.PermissionDenied},
		{name: "unclassified error not retried", errs: []error{errors.New("boom")}, max: 4, wantCalls: 1, wantCode: mailcase.Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, fd := newFaultStore(t, &mailcase.StoreOptions{MaxAttempts: tc.max, RetryBase: time.Millisecond, RetryMax: time.Millisecond})
			fd.FailNext("CreateCase", tc.errs...)
			c, err := s.CreateCase(t.Context(), &mailcase.NewCase{First: testMail("k1", "m1@x")})
			assert.Equal(t, tc.wantCalls, fd.Calls("CreateCase"))
			if tc.wantCode == mailcase.OK {
				require.NoError(t, err)
				assert.NotEmpty(t, c.ID)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantCode, mailcase.Code(err))
		})
	}
}

func TestStore_NonIdempotentCallsAreNotRetried(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	ctx := t.Context()
	fd.FailNext("CreateContact", unavailable)
	_, err := s.CreateContact(ctx, &mailcase.NewContact{Email: "a@example.com"})
	assert.Equal(t, mailcase.Unavailable, mailcase.Code(err))
	assert.Equal(t, 1, fd.Calls("CreateContact"), "CreateContact must not be retried")

	c, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail("k1", "m1@x")})
	require.NoError(t, err)
	fd.FailNext("AddNote", unavailable)
	err = s.AddNote(ctx, c.ID, &mailcase.Note{Body: "no key"})
	assert.Equal(t, mailcase.Unavailable, mailcase.Code(err))
	assert.Equal(t, 1, fd.Calls("AddNote"), "a note without a key must not be retried")
	fd.FailNext("AddNote", unavailable)
	require.NoError(t, s.AddNote(ctx, c.ID, &mailcase.Note{Body: "keyed", IdempotencyKey: "n1"}))
	assert.Equal(t, 3, fd.Calls("AddNote"), "a keyed note is retried")
}

func TestStore_WrapsExactlyOnce(t *testing.T) {
	s, fd := newFaultStore(t, &mailcase.StoreOptions{MaxAttempts: -1})
	underlying := &faultError{Code: driver.Unavailable}
	fd.FailNext("GetCase", underlying)
	_, _, err := s.GetCase(t.Context(), "c1")
	require.Error(t, err)
	assert.ErrorIs(t, err, mailcase.ErrUnavailable, "the code's sentinel")
	assert.ErrorIs(t, err, underlying, "the driver's error")
	assert.True(t, mailcase.IsRetryable(err))
	var me *mailcase.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "GetCase", me.Op)
	assert.Same(t, underlying, me.Err, "the driver error is wrapped once, directly")
	assert.Equal(t, "mailcase: GetCase: Unavailable: injected Unavailable", err.Error())

	// A driver returning an already wrapped *mailcase.Error is not wrapped again.
	inner := mailcase.NewError(mailcase.FailedPrecondition, "driverOp", errors.New("closed case"))
	fd.FailNext("GetCase", inner)
	_, _, err = s.GetCase(t.Context(), "c1")
	assert.Same(t, inner, err)

	// NotFound from GetCase becomes ok == false, not an error.
	_, ok, err := s.GetCase(t.Context(), "missing")
	require.NoError(t, err)
	assert.False(t, ok)
}

// okCoder reports OK for every error, a driver bug the Store must survive.
type okCoder struct{ *faultDriver }

func (okCoder) ErrorCode(error) driver.ErrorCode { return driver.OK }

func TestStore_ErrorCodeOKIsUnknown(t *testing.T) {
	fd := newFaultDriver(t)
	s := mailcase.NewStore(okCoder{fd}, &mailcase.StoreOptions{MaxAttempts: -1})
	t.Cleanup(func() { _ = s.Close() })
	fd.FailNext("CaseURL", errors.New("odd"))
	_, err := s.CaseURL(t.Context(), "c1")
	require.Error(t, err)
	assert.Equal(t, mailcase.Unknown, mailcase.Code(err))
}

func TestStore_ContextErrorsAreNotWrapped(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.FindContacts(ctx, "a@example.com")
	assert.Equal(t, context.Canceled, err, "the caller's cancellation comes back as is")
	assert.Equal(t, mailcase.Canceled, mailcase.Code(err))
	assert.Zero(t, fd.TotalCalls())

	// Cancelled while the driver works.
	fd.Block("GetCase")
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	_, _, err = s.GetCase(ctx2, "c1")
	assert.Equal(t, context.DeadlineExceeded, err, "the caller's deadline comes back as is")
	assert.Equal(t, mailcase.DeadlineExceeded, mailcase.Code(err))
	assert.False(t, errors.As(err, new(*mailcase.Error)))
}

func TestStore_CancelDuringBackoff(t *testing.T) {
	s, fd := newFaultStore(t, &mailcase.StoreOptions{MaxAttempts: 10, RetryBase: time.Hour, RetryMax: time.Hour})
	fd.FailNext("GetCase", unavailable, unavailable)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, _, err := s.GetCase(ctx, "c1")
	assert.Equal(t, context.Canceled, err)
	assert.Equal(t, 1, fd.Calls("GetCase"))
}

func TestStore_CallTimeout(t *testing.T) {
	s, fd := newFaultStore(t, &mailcase.StoreOptions{CallTimeout: 10 * time.Millisecond, MaxAttempts: 2, RetryBase: time.Millisecond})
	fd.Block("LookupProcessed")
	_, _, err := s.LookupProcessed(t.Context(), "k")
	require.Error(t, err)
	assert.Equal(t, mailcase.DeadlineExceeded, mailcase.Code(err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var me *mailcase.Error
	require.ErrorAs(t, err, &me, "our own call timeout is a wrapped store error")
	assert.Equal(t, 2, fd.Calls("LookupProcessed"), "a call timeout is retryable")
	assert.NoError(t, t.Context().Err())
}

func TestStore_Close(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	require.NoError(t, s.Close())
	err := s.Close()
	assert.ErrorIs(t, err, mailcase.ErrClosed)
	assert.Equal(t, mailcase.FailedPrecondition, mailcase.Code(err))

	_, err = s.FindContacts(t.Context(), "a@example.com")
	assert.ErrorIs(t, err, mailcase.ErrClosed)
	assert.ErrorIs(t, err, mailcase.ErrFailedPrecondition)
	assert.Equal(t, mailcase.FailedPrecondition, mailcase.Code(err))
	assert.Zero(t, fd.TotalCalls(), "no driver call after Close")
}

func TestStore_CloseReportsDriverError(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	fd.SetCloseError(&faultError{Code: driver.Internal})
	err := s.Close()
	assert.Equal(t, mailcase.Internal, mailcase.Code(err))
	assert.ErrorIs(t, err, mailcase.ErrInternal)
}

func TestStore_OptionalInterfacesUnimplemented(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	ctx := t.Context()
	assert.False(t, s.CanQuarantine())
	assert.False(t, s.CanWriteDirectory())
	errs := map[string]error{}
	_, errs["ListCases"] = s.ListCases(ctx, nil)
	_, errs["ListInteractions"] = s.ListInteractions(ctx, "c1")
	_, errs["PutQuarantine"] = s.PutQuarantine(ctx, &mailcase.QuarantineItem{Raw: []byte("x")})
	_, _, errs["GetQuarantine"] = s.GetQuarantine(ctx, "q1")
	_, errs["ListQuarantine"] = s.ListQuarantine(ctx, "")
	errs["DeleteQuarantine"] = s.DeleteQuarantine(ctx, "q1")
	_, _, errs["GetState"] = s.GetState(ctx, "k")
	errs["PutState"] = s.PutState(ctx, "k", []byte("v"))
	_, errs["CreateAccount"] = s.CreateAccount(ctx, &mailcase.NewAccount{Name: "A"})
	_, errs["CreateEmployee"] = s.CreateEmployee(ctx, &mailcase.NewEmployee{Email: "a@b.example"})
	for op, err := range errs {
		assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err), op)
		assert.ErrorIs(t, err, mailcase.ErrUnimplemented, op)
	}
	assert.Zero(t, fd.TotalCalls())
	assert.False(t, s.As(new(int)))
	assert.False(t, s.ErrorAs(errors.New("x"), new(int)))
	assert.Same(t, fd, s.Driver())
}

func TestStore_OptionalInterfacesValidate(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	_, err = s.PutQuarantine(ctx, &mailcase.QuarantineItem{})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	_, err = s.PutQuarantine(ctx, nil)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(s.DeleteQuarantine(ctx, "")))
	_, _, err = s.GetState(ctx, "")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(s.PutState(ctx, "", nil)))
	_, err = s.CreateEmployee(ctx, nil)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	_, err = s.CreateEmployee(ctx, &mailcase.NewEmployee{Email: "bad"})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	_, err = s.CreateAccount(ctx, nil)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.True(t, s.CanQuarantine())
}

func TestStore_Normalisation(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()

	ct, err := s.CreateContact(ctx, &mailcase.NewContact{Name: "Jörg\r\nBcc: evil@example.com", Email: " <Jörg@BÜCHER.Example> "})
	require.NoError(t, err)
	assert.Equal(t, "jörg@xn--bcher-kva.example", ct.Email)
	assert.Equal(t, "Jörg  Bcc: evil@example.com", ct.Name, "control characters become spaces")
	for _, form := range []string{"jörg@bücher.example", "JÖRG@xn--BCHER-kva.example", "jörg@bücher.example."} {
		got, err := s.FindContacts(ctx, form)
		require.NoError(t, err)
		assert.Len(t, got, 1, form)
	}

	e := testMail("k1", "  <Root.ID@Example.COM> ")
	e.InReplyTo = []string{"<parent@x>", "<>", "bad id"}
	e.References = []string{"<grand@x>", "<parent@x>"}
	e.Subject = "  Subject\r\nInjected: header "
	e.From = mailcase.Address{Name: " Alice ", Email: "ALICE@EXAMPLE.COM"}
	e.To = []mailcase.Address{{Email: "Support@Example.com"}, {Email: "not-an-address"}}
	e.Direction = ""
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: " Case\nsubject ", First: e})
	require.NoError(t, err)
	assert.Equal(t, "Case subject", c.Subject)
	assert.Equal(t, mailcase.StatusNew, c.Status)
	assert.Equal(t, mailcase.PriorityNormal, c.Priority)
	assert.Equal(t, []string{"alice@example.com", "support@example.com"}, c.Participants)

	got, ok, err := s.LookupThread(ctx, "Root.ID@Example.COM")
	require.NoError(t, err)
	require.True(t, ok, "Message-IDs are stored without brackets, case kept")
	assert.Equal(t, c.ID, got.ID)

	tl, err := s.ListInteractions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, tl, 1)
	filed := tl[0].Email
	assert.Equal(t, "Root.ID@Example.COM", filed.MessageID)
	assert.Equal(t, []string{"parent@x"}, filed.InReplyTo)
	assert.Equal(t, []string{"grand@x", "parent@x"}, filed.References)
	assert.Equal(t, "Subject  Injected: header", filed.Subject)
	assert.Equal(t, mailcase.Address{Name: "Alice", Email: "alice@example.com"}, filed.From)
	assert.Equal(t, []mailcase.Address{{Email: "support@example.com"}}, filed.To, "unusable addresses are dropped")
	assert.Equal(t, mailcase.Inbound, filed.Direction)
	assert.Equal(t, "  <Root.ID@Example.COM> ", e.MessageID, "the caller's mail is not modified")
	assert.Equal(t, []string{"<parent@x>", "<>", "bad id"}, e.InReplyTo, "the caller's slices are not modified")

	ri := &mailcase.Interaction{Email: testMail("k2", "<other@x>")}
	require.NoError(t, s.RecordInteraction(ctx, ri))
	assert.Empty(t, ri.Kind, "the caller's interaction is not modified")
	p, ok, err := s.LookupProcessed(ctx, "k2")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Empty(t, p.CaseID)
}

func TestStore_ConcurrentUse(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			key := string(rune('a' + i))
			c, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail(key, key+"@x")})
			assert.NoError(t, err)
			assert.NoError(t, s.AppendEmail(ctx, c.ID, testMail(key+"2", key+"2@x")))
			_, _, err = s.GetCase(ctx, c.ID)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	cs, err := s.ListCases(ctx, &mailcase.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, cs, 8)
}

func TestDisposition_String(t *testing.T) {
	tests := []struct {
		name string
		d    mailcase.Disposition
		want string
	}{
		{name: "done", d: mailcase.Done, want: "done"},
		{name: "retry", d: mailcase.Retry, want: "retry"},
		{name: "quarantine", d: mailcase.Quarantine, want: "quarantine"},
		{name: "zero", d: 0, want: "Disposition(0)"},
		{name: "unknown", d: 42, want: "Disposition(42)"},
		{name: "negative", d: -1, want: "Disposition(-1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.d.String())
			b, err := tc.d.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}

func TestStore_OptionalInterfacesThroughMemstore(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()

	acc, err := s.CreateAccount(ctx, &mailcase.NewAccount{Name: " Acme\n", Domains: []string{"Acme.EXAMPLE."}})
	require.NoError(t, err)
	assert.Equal(t, "Acme", acc.Name)
	assert.Equal(t, []string{"acme.example"}, acc.Domains)
	accs, err := s.FindAccounts(ctx, "ACME.example")
	require.NoError(t, err)
	require.Len(t, accs, 1)
	_, err = s.FindAccounts(ctx, "")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))

	emp, err := s.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Agent", Email: "Agent@Acme.example", Active: true})
	require.NoError(t, err)
	got, ok, err := s.FindEmployee(ctx, "agent@ACME.example")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, emp, got)

	c, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail("k1", "m1@x")})
	require.NoError(t, err)
	byNum, ok, err := s.FindCaseByNumber(ctx, " "+c.Number+"\n")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, c.ID, byNum.ID)
	_, ok, err = s.FindCaseByNumber(ctx, "99999")
	require.NoError(t, err)
	assert.False(t, ok)

	q, owner := " billing\r\n", "agent"
	u, err := s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Queue: &q, Owner: &owner})
	require.NoError(t, err)
	assert.Equal(t, "billing", u.Queue, "one-line fields are cleaned")
	assert.Equal(t, " billing\r\n", q, "the caller's value is not modified")
	require.NoError(t, s.AddNote(ctx, c.ID, &mailcase.Note{Author: "bot\nX-Evil: 1", Body: "multi\nline body"}))
	tl, err := s.ListInteractions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, tl, 2)
	assert.Equal(t, "bot X-Evil: 1", tl[1].Note.Author)
	assert.Equal(t, "multi\nline body", tl[1].Note.Body, "bodies keep their lines")
	_, err = s.UpdateCase(ctx, "missing", &mailcase.CaseUpdate{Queue: &q})
	assert.Equal(t, mailcase.NotFound, mailcase.Code(err))
	assert.ErrorIs(t, err, mailcase.ErrNotFound)

	id, err := s.PutQuarantine(ctx, &mailcase.QuarantineItem{Mailbox: "support", Reason: "broken", Raw: []byte{0, 1, 2}})
	require.NoError(t, err)
	items, err := s.ListQuarantine(ctx, "support")
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, []byte{0, 1, 2}, items[0].Raw)
	require.NoError(t, s.DeleteQuarantine(ctx, id))
	assert.Equal(t, mailcase.NotFound, mailcase.Code(s.DeleteQuarantine(ctx, id)))

	_, ok, err = s.GetState(ctx, "imap/INBOX")
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, s.PutState(ctx, "imap/INBOX", []byte("42")))
	v, ok, err := s.GetState(ctx, "imap/INBOX")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []byte("42"), v)

	_, err = s.ListInteractions(ctx, "missing")
	var me *memstore.Error
	require.True(t, s.ErrorAs(err, &me), "ErrorAs reaches the driver's error type through the Store's wrapping")
	assert.Equal(t, mailcase.NotFound, me.Code)
	assert.False(t, s.As(new(int)))
}

func TestNewStore_NilDriverPanics(t *testing.T) {
	assert.PanicsWithValue(t, "mailcase: NewStore with nil driver", func() { mailcase.NewStore(nil, nil) })
}

// A driver error that wraps an *Error with context keeps its code and is
// not wrapped in a second *Error.
func TestStore_WrappedInnerErrorIsNotWrappedTwice(t *testing.T) {
	s, fd := newFaultStore(t, &mailcase.StoreOptions{MaxAttempts: -1})
	inner := mailcase.NewError(mailcase.FailedPrecondition, "driverOp", errors.New("closed case"))
	outer := fmt.Errorf("update row: %w", inner)
	fd.FailNext("GetCase", outer)
	_, _, err := s.GetCase(t.Context(), "c1")
	require.Error(t, err)
	assert.Same(t, outer, err, "the driver's chain is returned as it is")
	assert.Equal(t, mailcase.FailedPrecondition, mailcase.Code(err))
	assert.ErrorIs(t, err, mailcase.ErrFailedPrecondition)
	layers := 0
	for e := error(err); e != nil; {
		if _, ok := e.(*mailcase.Error); ok {
			layers++
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			e = u.Unwrap()[0] // the *Error's underlying error comes first
		default:
			e = nil
		}
	}
	assert.Equal(t, 1, layers, "exactly one *mailcase.Error in the chain")

	// A retryable inner code is still retried.
	s2, fd2 := newFaultStore(t, &mailcase.StoreOptions{MaxAttempts: 3})
	fd2.FailNext("GetCase", fmt.Errorf("ctx: %w", mailcase.NewError(mailcase.Unavailable, "drv", errors.New("down"))))
	_, ok, err := s2.GetCase(t.Context(), "missing")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, 2, fd2.Calls("GetCase"))
}

// lostReplyQuarantiner deletes for real but loses the reply of the first
// lost calls (the driver reports Unavailable after the delete committed).
type lostReplyQuarantiner struct {
	*faultDriver
	q     driver.Quarantiner
	lost  int
	calls int
}

func (l *lostReplyQuarantiner) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	return l.q.PutQuarantine(ctx, q)
}

func (l *lostReplyQuarantiner) GetQuarantine(ctx context.Context, id string) (driver.QuarantineItem, error) {
	return l.q.GetQuarantine(ctx, id)
}

func (l *lostReplyQuarantiner) ListQuarantine(ctx context.Context, mailbox string) ([]driver.QuarantineItem, error) {
	return l.q.ListQuarantine(ctx, mailbox)
}

func (l *lostReplyQuarantiner) DeleteQuarantine(ctx context.Context, id string) error {
	l.calls++
	err := l.q.DeleteQuarantine(ctx, id)
	if err == nil && l.lost > 0 {
		l.lost--
		return unavailable
	}
	return err
}

func TestStore_DeleteQuarantineRetryAfterLostReply(t *testing.T) {
	mem, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	fd := mailcasetest.NewFaultDriver(mem.Driver())
	q, ok := mem.Driver().(driver.Quarantiner)
	require.True(t, ok, "memstore's driver is a Quarantiner")
	lr := &lostReplyQuarantiner{faultDriver: fd, q: q, lost: 1}
	s := mailcase.NewStore(lr, &mailcase.StoreOptions{RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	id, err := s.PutQuarantine(ctx, &mailcase.QuarantineItem{Mailbox: "support", Raw: []byte("x"), Reason: "test"})
	require.NoError(t, err)

	require.NoError(t, s.DeleteQuarantine(ctx, id), "NotFound on the retry means the first delete succeeded")
	assert.Equal(t, 2, lr.calls)
	items, err := s.ListQuarantine(ctx, "support")
	require.NoError(t, err)
	assert.Empty(t, items)

	// NotFound on the first attempt is still NotFound.
	err = s.DeleteQuarantine(ctx, id)
	assert.Equal(t, mailcase.NotFound, mailcase.Code(err))
}

func TestStore_CaseStatusAndPriorityAreValidated(t *testing.T) {
	s, fd := newFaultStore(t, nil)
	ctx := t.Context()
	bad := mailcase.CaseStatus("reopened")
	badP := mailcase.Priority("p1")
	_, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "x", Status: bad, First: testMail("k1", "m1@x")})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	_, err = s.CreateCase(ctx, &mailcase.NewCase{Subject: "x", Priority: badP, First: testMail("k2", "m2@x")})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.Zero(t, fd.Calls("CreateCase"), "refused before the driver")

	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "x", Status: mailcase.StatusOpen, Priority: mailcase.PriorityHigh, First: testMail("k3", "m3@x")})
	require.NoError(t, err)
	_, err = s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Status: &bad})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	_, err = s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Priority: &badP})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.Zero(t, fd.Calls("UpdateCase"))
	closed := mailcase.StatusClosed
	got, err := s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	assert.Equal(t, mailcase.StatusClosed, got.Status)
}

// A driver without a driver.Directory: the Store knows nobody, creating a
// contact is Unimplemented, and a pipeline whose unknown-sender policy must
// create contacts is refused at construction.
func TestStore_WithoutDirectory(t *testing.T) {
	mem, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	s := mailcase.NewStore(struct{ driver.CaseStore }{mem.Driver()}, nil)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	assert.False(t, s.HasDirectory())
	assert.True(t, mem.HasDirectory())

	cs, err := s.FindContacts(ctx, "a@example.com")
	require.NoError(t, err)
	assert.Empty(t, cs)
	as, err := s.FindAccounts(ctx, "example.com")
	require.NoError(t, err)
	assert.Empty(t, as)
	_, ok, err := s.FindEmployee(ctx, "a@example.com")
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = s.CreateContact(ctx, &mailcase.NewContact{Email: "a@example.com"})
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
	assert.ErrorIs(t, err, mailcase.ErrUnimplemented)

	for _, mb := range []mailcase.Mailbox{
		{Name: "placeholder", UnknownSender: mailcase.UnknownPlaceholder},
		{Name: "create", UnknownSender: mailcase.UnknownCreateContact},
	} {
		_, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mb})
		assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), mb.Name)
		assert.ErrorContains(t, err, "no contact directory", mb.Name)
	}
	for _, mb := range []mailcase.Mailbox{
		{Name: "reject", UnknownSender: mailcase.UnknownReject},
		{Name: "fixed", UnknownContactID: "contact-1"},
		{Name: "no policy chosen"},
	} {
		p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mb})
		require.NoError(t, err, mb.Name)
		p.Close()
	}
	// With no policy chosen, an unknown sender's case has no contact.
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}})
	require.NoError(t, err)
	r, err := p.Process(ctx, []byte("From: zed@nowhere.example\r\nTo: support@example.com\r\nSubject: hi\r\nMessage-ID: <nd1@nowhere.example>\r\n\r\nhello\r\n"), nil)
	require.NoError(t, err)
	p.Close()
	assert.Equal(t, mailcase.ActionCreated, r.Outcome.Action)
	assert.Equal(t, "unknown sender: none: the store has no contact directory, the case has no contact", r.Outcome.SenderPolicy)
	nd, ok, err := s.GetCase(ctx, r.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Empty(t, nd.ContactID)

	// Cases are filed all the same, the defaults applied by the Store.
	c, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail("k1", "m1@example.com")})
	require.NoError(t, err)
	assert.Equal(t, "Help", c.Subject)
	assert.Equal(t, mailcase.StatusNew, c.Status)
	assert.Equal(t, mailcase.PriorityNormal, c.Priority)
}

func TestStore_GetQuarantine(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	raw := []byte("From: x\r\n\r\n\x00\xff")
	id, err := s.PutQuarantine(ctx, &mailcase.QuarantineItem{Mailbox: "support", Reason: "broken", Raw: raw})
	require.NoError(t, err)
	q, ok, err := s.GetQuarantine(ctx, id)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, raw, q.Raw)
	assert.Equal(t, "broken", q.Reason)
	_, ok, err = s.GetQuarantine(ctx, "no-such-item")
	require.NoError(t, err)
	assert.False(t, ok)
	_, _, err = s.GetQuarantine(ctx, "")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
}
