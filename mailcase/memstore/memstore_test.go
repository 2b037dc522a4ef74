package memstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, newHarness)
}

type harness struct{}

func newHarness(context.Context, *testing.T) (drivertest.Harness, error) { return harness{}, nil }

func (harness) MakeDriver(context.Context) (driver.CaseStore, error) {
	s, err := memstore.OpenStore(nil)
	if err != nil {
		return nil, err
	}
	return s.Driver(), nil
}

func (harness) Capabilities() drivertest.Capabilities {
	return drivertest.Capabilities{Directory: true, Aser: true, Lister: true, Quarantine: true, State: true, DirectoryWriter: true, Lease: true, RawKeeper: true, EmailUpdater: true, Outbox: true, Records: true, RecordBatcher: true, Worklist: true, WorkItemOutbox: true, SLA: true, EventLog: true, EventFiler: true}
}

func (harness) Close() {}

// AsCheck implements drivertest.AsTester: errors expose *memstore.Error.
func (harness) AsCheck(s *mailcase.Store, err error) error {
	var me *memstore.Error
	if !s.ErrorAs(err, &me) || me.Code != driver.NotFound {
		return errors.New("Store.ErrorAs(err, **memstore.Error) did not expose the NotFound error")
	}
	return nil
}

func BenchmarkMemstore(b *testing.B) {
	s, err := memstore.OpenStore(nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	drivertest.RunBenchmarks(b, s)
}

func TestURLOpener(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr mailcase.ErrorCode
	}{
		{name: "plain", url: "mem://"},
		{name: "with host", url: "mem://anything"},
		{name: "unknown query parameter", url: "mem://?cache=1", wantErr: mailcase.InvalidArgument},
		{name: "unknown scheme", url: "nosuch://x", wantErr: mailcase.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := mailcase.OpenStore(t.Context(), tc.url)
			if tc.wantErr != mailcase.OK {
				require.Error(t, err)
				assert.Equal(t, tc.wantErr, mailcase.Code(err))
				assert.ErrorIs(t, err, mailcase.ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			_, err = s.CreateContact(t.Context(), &mailcase.NewContact{Email: "a@example.com"})
			require.NoError(t, err)
		})
	}
	assert.Contains(t, mailcase.DefaultURLMux().Schemes(), memstore.Scheme)

	_, err := (&memstore.URLOpener{}).OpenStoreURL(t.Context(), &url.URL{Scheme: "other"})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = mailcase.OpenStore(ctx, "mem://")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestOptions(t *testing.T) {
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	s, err := memstore.OpenStore(&memstore.Options{
		Now:     func() time.Time { return clock },
		URLBase: "https://crm.example/case/",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:   &mailcase.StoreOptions{MaxAttempts: -1},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	c, err := s.CreateCase(ctx, &mailcase.NewCase{First: mail("k1", "m1@x")})
	require.NoError(t, err)
	assert.Equal(t, clock, c.CreatedAt)
	assert.Equal(t, "1000", c.Number, "numbers start at FirstCaseNumber")
	assert.Equal(t, "Hello", c.Subject, "an empty case subject is taken from the first mail")
	u, err := s.CaseURL(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, "https://crm.example/case/"+string(c.ID), u)

	c2, err := s.CreateCase(ctx, &mailcase.NewCase{First: mail("k2", "m2@x")})
	require.NoError(t, err)
	assert.Equal(t, "1001", c2.Number)

	clock = clock.Add(time.Hour)
	closed := mailcase.StatusClosed
	c, err = s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	assert.Equal(t, clock, c.ClosedAt)
	assert.Equal(t, clock, c.UpdatedAt)
	cancelled := mailcase.StatusCancelled
	clock = clock.Add(time.Hour)
	c, err = s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Status: &cancelled})
	require.NoError(t, err)
	assert.Equal(t, clock.Add(-time.Hour), c.ClosedAt, "closed to cancelled keeps the first closing time")
}

func mail(key, id string) *mailcase.Email {
	return &mailcase.Email{
		IdempotencyKey: key, MessageID: id, Subject: "Hello",
		From: mailcase.Address{Email: "alice@example.com"},
	}
}

func TestSeeding(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	require.True(t, s.CanWriteDirectory())
	acc, err := s.CreateAccount(ctx, &mailcase.NewAccount{Name: "Acme", Domains: []string{"ACME.example", "acme.example"}, SupportLevel: "gold"})
	require.NoError(t, err)
	got, err := s.FindAccounts(ctx, "acme.example")
	require.NoError(t, err)
	require.Len(t, got, 1, "a domain listed twice indexes the account once")
	assert.Equal(t, acc.ID, got[0].ID)
	assert.Equal(t, []string{"acme.example", "acme.example"}, got[0].Domains)

	emp, err := s.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Agent", Email: "Agent@Corp.example", Active: true})
	require.NoError(t, err)
	assert.Equal(t, "agent@corp.example", emp.Email)
	_, err = s.CreateEmployee(ctx, &mailcase.NewEmployee{Email: "agent@corp.example"})
	assert.Equal(t, mailcase.AlreadyExists, mailcase.Code(err))

	_, err = s.CreateAccount(ctx, &mailcase.NewAccount{Name: "Bad", Domains: []string{"bad domain"}})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	_, err = s.CreateAccount(ctx, &mailcase.NewAccount{Domains: []string{"x.example"}})
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "an account needs a name")
}

func TestCaselessInteractions(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	e := mail("k", "m@x")
	require.NoError(t, s.RecordInteraction(ctx, &mailcase.Interaction{ContactID: "c1", Email: e}))
	require.NoError(t, s.RecordInteraction(ctx, &mailcase.Interaction{ContactID: "c1", Email: e}))
	in, err := s.ListInteractions(ctx, "")
	require.NoError(t, err)
	require.Len(t, in, 1)
	assert.Equal(t, "c1", in[0].ContactID)
	assert.Equal(t, mailcase.KindEmail, in[0].Kind)
	assert.Equal(t, "m@x", in[0].Email.MessageID)
}

// everyCall calls every method of d once, for tests of behaviour common to
// all of them.
func everyCall(d driver.CaseStore) map[string]func(context.Context) error {
	l, q, st, dw := d.(driver.Lister), d.(driver.Quarantiner), d.(driver.StateStore), d.(driver.DirectoryWriter)
	dir := d.(driver.Directory)
	ls := d.(driver.Leaser)
	return map[string]func(context.Context) error{
		"FindContacts": func(ctx context.Context) error { _, err := dir.FindContacts(ctx, "a@b.c"); return err },
		"FindAccounts": func(ctx context.Context) error { _, err := dir.FindAccounts(ctx, "b.c"); return err },
		"FindEmployee": func(ctx context.Context) error { _, err := dir.FindEmployee(ctx, "a@b.c"); return err },
		"CreateContact": func(ctx context.Context) error {
			_, err := dir.CreateContact(ctx, &driver.NewContact{Email: "a@b.c"})
			return err
		},
		"CreateCase": func(ctx context.Context) error {
			_, err := d.CreateCase(ctx, &driver.NewCase{First: mail("k", "m@x")})
			return err
		},
		"GetCase":          func(ctx context.Context) error { _, err := d.GetCase(ctx, "x"); return err },
		"FindCaseByNumber": func(ctx context.Context) error { _, err := d.FindCaseByNumber(ctx, "1000"); return err },
		"LookupThread":     func(ctx context.Context) error { _, err := d.LookupThread(ctx, []string{"m@x"}); return err },
		"AppendEmail":      func(ctx context.Context) error { return d.AppendEmail(ctx, "x", mail("k2", "m2@x")) },
		"AddNote":          func(ctx context.Context) error { return d.AddNote(ctx, "x", &driver.Note{Body: "b"}) },
		"UpdateCase":       func(ctx context.Context) error { _, err := d.UpdateCase(ctx, "x", &driver.CaseUpdate{}); return err },
		"CaseURL":          func(ctx context.Context) error { _, err := d.CaseURL(ctx, "x"); return err },
		"RecordInteraction": func(ctx context.Context) error {
			return d.RecordInteraction(ctx, &driver.Interaction{Email: mail("k3", "m3@x")})
		},
		"LookupProcessed":  func(ctx context.Context) error { _, err := d.LookupProcessed(ctx, "k"); return err },
		"ListCases":        func(ctx context.Context) error { _, err := l.ListCases(ctx, &driver.ListOptions{}); return err },
		"ListInteractions": func(ctx context.Context) error { _, err := l.ListInteractions(ctx, ""); return err },
		"PutQuarantine": func(ctx context.Context) error {
			_, err := q.PutQuarantine(ctx, &driver.QuarantineItem{Raw: []byte("x")})
			return err
		},
		"GetQuarantine":    func(ctx context.Context) error { _, err := q.GetQuarantine(ctx, "q"); return err },
		"ListQuarantine":   func(ctx context.Context) error { _, err := q.ListQuarantine(ctx, ""); return err },
		"DeleteQuarantine": func(ctx context.Context) error { return q.DeleteQuarantine(ctx, "q") },
		"GetState":         func(ctx context.Context) error { _, err := st.GetState(ctx, "k"); return err },
		"PutState":         func(ctx context.Context) error { return st.PutState(ctx, "k", nil) },
		"CreateAccount": func(ctx context.Context) error {
			_, err := dw.CreateAccount(ctx, &driver.NewAccount{Name: "A"})
			return err
		},
		"AcquireLease": func(ctx context.Context) error { _, err := ls.AcquireLease(ctx, "n", "h", time.Second); return err },
		"RenewLease":   func(ctx context.Context) error { _, err := ls.RenewLease(ctx, "n", "h", time.Second); return err },
		"ReleaseLease": func(ctx context.Context) error { return ls.ReleaseLease(ctx, "n", "h") },
		"CreateEmployee": func(ctx context.Context) error {
			_, err := dw.CreateEmployee(ctx, &driver.NewEmployee{Email: "e@b.c"})
			return err
		},
	}
}

func TestDriver_CanceledContext(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	d := s.Driver()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range everyCall(d) {
		err := call(ctx)
		assert.ErrorIs(t, err, context.Canceled, name)
		assert.Equal(t, driver.Canceled, d.ErrorCode(err), name)
	}
	cs, err := s.ListCases(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, cs, "a cancelled call changes nothing")
}

func TestDriver_AfterClose(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	d := s.Driver()
	require.NoError(t, s.Close())
	calls := everyCall(d)
	calls["Close"] = func(context.Context) error { return d.Close() }
	for name, call := range calls {
		err := call(t.Context())
		require.Error(t, err, name)
		assert.Equal(t, driver.FailedPrecondition, d.ErrorCode(err), name)
	}
	var me *memstore.Error
	_, err = d.GetCase(t.Context(), "x")
	assert.True(t, s.ErrorAs(err, &me))
	assert.Equal(t, driver.FailedPrecondition, me.Code)
	assert.False(t, s.As(new(int)))
	assert.False(t, s.ErrorAs(err, new(int)))
	assert.Equal(t, driver.OK, d.ErrorCode(nil))
	assert.Equal(t, driver.Unknown, d.ErrorCode(errors.New("foreign")))
}

func TestDriver_RejectsWhatTheStoreWouldReject(t *testing.T) {
	// The Store validates first; the driver still refuses records that
	// would break its invariants when called directly.
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	d, ctx := s.Driver(), t.Context()
	c, err := d.CreateCase(ctx, &driver.NewCase{First: mail("k", "m@x")})
	require.NoError(t, err)
	empty := driver.CaseStatus("")
	errs := map[string]error{}
	_, errs["CreateCase without mail"] = d.CreateCase(ctx, &driver.NewCase{})
	_, errs["CreateCase without key"] = d.CreateCase(ctx, &driver.NewCase{First: mail("", "m@x")})
	errs["AppendEmail without key"] = d.AppendEmail(ctx, c.ID, mail("", "m@x"))
	errs["RecordInteraction without mail"] = d.RecordInteraction(ctx, &driver.Interaction{})
	_, errs["UpdateCase empty status"] = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Status: &empty})
	_, errs["CreateContact without address"] = d.(driver.Directory).CreateContact(ctx, &driver.NewContact{})
	_, errs["CreateEmployee without address"] = d.(driver.DirectoryWriter).CreateEmployee(ctx, &driver.NewEmployee{})
	for name, err := range errs {
		assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err), name)
	}
	_, err = d.CaseURL(ctx, "missing")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
}

func TestDriver_CreateCaseDetails(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "Imported", Description: "Imported from the old system.",
		Status: mailcase.StatusClosed, First: mail("k", "m@x")})
	require.NoError(t, err)
	assert.False(t, c.ClosedAt.IsZero(), "a case created closed has ClosedAt")
	tl, err := s.ListInteractions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, tl, 2, "the description is kept as the first note, then the first mail")
	assert.Equal(t, "Imported from the old system.", tl[0].Note.Body)
	assert.Equal(t, "m@x", tl[1].Email.MessageID)
}

func TestErrorAsThroughStore(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	err = s.AppendEmail(t.Context(), "missing", mail("k", "m@x"))
	require.Error(t, err)
	var me *memstore.Error
	require.True(t, s.ErrorAs(err, &me))
	assert.Equal(t, driver.NotFound, me.Code)
	assert.Contains(t, err.Error(), "memstore: no case")
}

func TestLeaseExpiryFollowsTheClock(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := memstore.OpenStore(&memstore.Options{Now: func() time.Time { return clock }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	require.True(t, s.CanLease())
	got, err := s.AcquireLease(ctx, "mail:support/1", "w1", time.Minute)
	require.NoError(t, err)
	require.True(t, got)

	clock = clock.Add(time.Minute) // at the expiry instant the lease still holds
	got, err = s.AcquireLease(ctx, "mail:support/1", "w2", time.Minute)
	require.NoError(t, err)
	assert.False(t, got)

	clock = clock.Add(time.Second)
	kept, err := s.RenewLease(ctx, "mail:support/1", "w1", time.Minute)
	require.NoError(t, err)
	assert.False(t, kept, "an expired lease cannot be renewed")
	got, err = s.AcquireLease(ctx, "mail:support/1", "w2", time.Minute)
	require.NoError(t, err)
	assert.True(t, got, "an expired lease can be taken")
}
