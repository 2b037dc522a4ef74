package mailcase_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// evRecorder is an EventRecorder writing to store's log with IDs derived
// from the kind, case and Message-ID; it records what EventsFiled got.
type evRecorder struct {
	store *mailcase.Store
	mu    sync.Mutex
	filed [][]string // kinds of each EventsFiled call
	kept  []bool
}

func (r *evRecorder) PrepareEvent(kind string, id mailcase.CaseID, data map[string]any) (*driver.EventRecord, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return &driver.EventRecord{ID: kind + "/" + string(id) + "/" + data["message_id"].(string), Kind: kind, CaseID: id,
		Time: time.Now(), Version: 1, Data: raw, Sinks: []string{"hook"}}, nil
}

func (r *evRecorder) EventStore() *mailcase.Store { return r.store }

func (r *evRecorder) EventsFiled(ctx context.Context, recs []*driver.EventRecord, kept bool) {
	if !kept {
		if err := r.store.AppendEvents(ctx, recs); err != nil {
			panic(err)
		}
	}
	var kinds []string
	for _, e := range recs {
		kinds = append(kinds, e.Kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.filed, r.kept = append(r.filed, kinds), append(r.kept, kept)
}

// evFailingDriver is a memstore driver whose next CreateCaseEvents calls
// fail after composing the events (the filing's transaction failing), whose
// next appendFails appends (AppendEmail or AppendEmailEvents) fail without
// filing, and whose LookupProcessed answers NotFound while hideFiled is set
// (a mail filed by another pipeline after this one's dedupe looked).
type evFailingDriver struct {
	driver.CaseStore
	driver.EventLog
	ef          driver.EventFiler
	fails       int
	appendFails int
	hideFiled   bool
}

func (d *evFailingDriver) failAppend() error {
	if d.appendFails > 0 {
		d.appendFails--
		return &mailcasetest.FaultError{Code: driver.Unavailable, Method: "AppendEmail"}
	}
	return nil
}

func (d *evFailingDriver) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := d.failAppend(); err != nil {
		return err
	}
	return d.CaseStore.AppendEmail(ctx, id, e)
}

func (d *evFailingDriver) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	if d.hideFiled {
		return driver.Processed{}, &mailcasetest.FaultError{Code: driver.NotFound, Method: "LookupProcessed"}
	}
	return d.CaseStore.LookupProcessed(ctx, key)
}

func (d *evFailingDriver) CreateCaseEvents(ctx context.Context, req *driver.NewCase, then func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error)) (driver.Case, []string, error) {
	if d.fails > 0 {
		d.fails--
		if _, _, err := then(driver.Case{ID: "doomed", Number: "0"}); err != nil {
			return driver.Case{}, nil, err
		}
		return driver.Case{}, nil, &mailcasetest.FaultError{Code: driver.Unavailable, Method: "CreateCaseEvents"}
	}
	return d.ef.CreateCaseEvents(ctx, req, then)
}

func (d *evFailingDriver) AppendEmailEvents(ctx context.Context, id driver.CaseID, e *driver.Email, events []*driver.EventRecord) (bool, error) {
	if err := d.failAppend(); err != nil {
		return false, err
	}
	return d.ef.AppendEmailEvents(ctx, id, e, events)
}

func (d *evFailingDriver) ErrorCode(err error) driver.ErrorCode {
	var fe *mailcasetest.FaultError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return d.CaseStore.ErrorCode(err)
}

func logKinds(t *testing.T, s *mailcase.Store) []string {
	t.Helper()
	log, err := s.ReadEvents(t.Context(), 0, 100)
	require.NoError(t, err)
	var kinds []string
	for _, e := range log {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// TestPipeline_EventsKeptWithTheFiling: with Options.Events over a store
// that can, the events of a new case and of a reply are committed with the
// filing (EventsFiled hears kept); a filing that fails keeps none and its
// retry keeps them once.
func TestPipeline_EventsKeptWithTheFiling(t *testing.T) {
	inner := plStore(t)
	d := &evFailingDriver{CaseStore: inner.Driver(), EventLog: inner.Driver().(driver.EventLog),
		ef: inner.Driver().(driver.EventFiler), fails: 1}
	s := mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: -1, Logger: plLogger(t)})
	require.True(t, s.CanFileEvents())
	rec := &evRecorder{store: s}
	var onEvent []string
	p := plPipeline(t, s, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "tier1"},
		Events:  rec,
		OnEvent: func(_ context.Context, kind string, _ mailcase.CaseID, _ map[string]any) {
			onEvent = append(onEvent, kind)
		},
	})
	res := plProcess(t, p, plMail("ann@customer.example", "Printer", "1@customer.example", "It burns."))
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	assert.Equal(t, 0, d.fails, "the first filing failed")
	res = plProcess(t, p, plReply("ann@customer.example", "Re: Printer", "2@customer.example", "1@customer.example"))
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action, plSteps(res))

	want := []string{"case.created", "case.routed", "mail.received", "note.appended", "mail.received"}
	assert.Equal(t, want, logKinds(t, s), "the failed filing kept nothing, its retry everything once")
	assert.Equal(t, [][]string{want[:3], want[3:]}, rec.filed, "one EventsFiled per filed mail, none for the failed filing")
	assert.Equal(t, []bool{true, true}, rec.kept, "committed with the filing")
	assert.Equal(t, want, onEvent, "OnEvent hears the same events after the filing")
	ds, err := s.ListDeliveries(t.Context(), &driver.DeliveryListOptions{Sink: "hook"})
	require.NoError(t, err)
	assert.Len(t, ds, len(want))
}

// TestPipeline_EventsAfterTheFiling: a recorder logging to another store
// gets the events of each filed mail in one EventsFiled call, not kept,
// and the pipeline's store keeps none.
func TestPipeline_EventsAfterTheFiling(t *testing.T) {
	s, other := plStore(t), plStore(t)
	rec := &evRecorder{store: other}
	p := plPipeline(t, s, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "tier1"},
		Events:  rec,
	})
	res := plProcess(t, p, plMail("ann@customer.example", "Printer", "1@customer.example", "It burns."))
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	assert.Empty(t, logKinds(t, s))
	assert.Equal(t, []string{"case.created", "case.routed", "mail.received"}, logKinds(t, other))
	assert.Equal(t, []bool{false}, rec.kept)
}

// evPipeline returns a pipeline over a memstore driver injecting faults
// (evFailingDriver), its store, and a recorder keeping events in the
// pipeline's store (inTx: in the filing's transaction) or in another store;
// OnEvent's kinds are appended to onEvent.
func evPipeline(t *testing.T, inTx bool, onEvent *[]string) (*mailcase.Pipeline, *mailcase.Store, *evFailingDriver, *evRecorder) {
	t.Helper()
	inner := plStore(t)
	d := &evFailingDriver{CaseStore: inner.Driver(), EventLog: inner.Driver().(driver.EventLog), ef: inner.Driver().(driver.EventFiler)}
	s := mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: -1, Logger: plLogger(t)})
	rec := &evRecorder{store: s}
	if !inTx {
		rec.store = plStore(t)
	}
	p := plPipeline(t, s, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "tier1"},
		Events:  rec,
		OnEvent: func(_ context.Context, kind string, _ mailcase.CaseID, _ map[string]any) {
			*onEvent = append(*onEvent, kind)
		},
	})
	return p, s, d, rec
}

// TestPipeline_ReopenKeptWhenTheAppendFails: the reopening of a closed case
// is committed on its own (UpdateCase) before the mail's append; when that
// append fails, the retry finds the case open and announces no reopening,
// so the pipeline records the status change at once, alone, with an ID
// derived from the mail: it is kept once, and the retry keeps the mail's
// other events.
func TestPipeline_ReopenKeptWhenTheAppendFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		inTx bool
	}{
		{name: "events kept with the filing", inTx: true},
		{name: "events kept after the filing", inTx: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var onEvent []string
			p, s, d, rec := evPipeline(t, tc.inTx, &onEvent)
			first := plProcess(t, p, plMail("ann@customer.example", "Question", "q1@customer.example", "?"))
			require.Equal(t, mailcase.ActionCreated, first.Outcome.Action, plSteps(first))
			closed := mailcase.StatusClosed
			_, err := s.UpdateCase(t.Context(), first.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
			require.NoError(t, err)

			d.appendFails = 1
			res := plProcess(t, p, plReply("ann@customer.example", "Question", "q2@customer.example", "q1@customer.example"))
			assert.Equal(t, 0, d.appendFails, "the first append failed")
			require.Equal(t, mailcase.ActionAppended, res.Outcome.Action, "the retry finds the case open: %s", plSteps(res))
			c, _, err := s.GetCase(t.Context(), first.Outcome.CaseID)
			require.NoError(t, err)
			assert.Equal(t, mailcase.StatusOpen, c.Status)

			want := []string{"case.created", "case.routed", "mail.received", "case.status_changed", "note.appended", "mail.received"}
			assert.Equal(t, want, logKinds(t, rec.store), "the status change is kept once, before the retried append's events")
			assert.Equal(t, want, onEvent)
			assert.Equal(t, [][]string{want[:3], want[3:4], want[4:]}, rec.filed)
			assert.Equal(t, []bool{tc.inTx, false, tc.inTx}, rec.kept, "the status change is not kept with a filing")

			// The same mail again (its redelivery reopening the case closed
			// again meanwhile): the status event's ID is the same, kept once.
			_, err = s.UpdateCase(t.Context(), first.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
			require.NoError(t, err)
			d.appendFails, d.hideFiled = 1, true
			res = plProcess(t, p, plReply("ann@customer.example", "Question", "q2@customer.example", "q1@customer.example"))
			require.NotEqual(t, mailcase.Retry, res.Outcome.Disposition, plSteps(res))
			assert.Equal(t, want, logKinds(t, rec.store), "nothing kept twice")
		})
	}
}

// TestPipeline_DuplicateFilingAnnouncesNothing: a mail that another
// pipeline filed after this one's dedupe looked (hideFiled) is a no-op of
// the store, on the append path as on the create path: nothing is reported
// kept (EventsFiled), nothing notified (OnEvent), nothing kept twice.
func TestPipeline_DuplicateFilingAnnouncesNothing(t *testing.T) {
	var onEvent []string
	p, s, d, rec := evPipeline(t, true, &onEvent)
	require.True(t, s.CanFileEvents())
	first := plMail("ann@customer.example", "Printer", "1@customer.example", "It burns.")
	reply := plReply("ann@customer.example", "Printer", "2@customer.example", "1@customer.example")
	res := plProcess(t, p, first)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	id := res.Outcome.CaseID
	res = plProcess(t, p, reply)
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action, plSteps(res))
	want := []string{"case.created", "case.routed", "mail.received", "note.appended", "mail.received"}
	require.Equal(t, want, logKinds(t, s))
	require.Equal(t, [][]string{want[:3], want[3:]}, rec.filed)

	d.hideFiled = true
	for _, tc := range []struct {
		raw  []byte
		path mailcase.Action
	}{
		{raw: reply, path: mailcase.ActionAppended},
		{raw: first, path: mailcase.ActionCreated},
	} {
		res = plProcess(t, p, tc.raw)
		require.Equal(t, mailcase.Done, res.Outcome.Disposition, plSteps(res))
		require.Equal(t, tc.path, res.Outcome.Action, "the dedupe did not see the mail filed: %s", plSteps(res))
		assert.Equal(t, id, res.Outcome.CaseID, "the mail is on its case, no new one")
	}
	assert.Equal(t, want, logKinds(t, s), "nothing kept twice")
	assert.Equal(t, [][]string{want[:3], want[3:]}, rec.filed, "no EventsFiled for a mail filed before")
	assert.Equal(t, want, onEvent, "no OnEvent for a mail filed before")
}

// lostAnswerDriver files its next lose appends and then fails them, as a
// commit whose answer was lost.
type lostAnswerDriver struct {
	*evFailingDriver
	lose int
}

func (d *lostAnswerDriver) AppendEmailEvents(ctx context.Context, id driver.CaseID, e *driver.Email, events []*driver.EventRecord) (bool, error) {
	filed, err := d.evFailingDriver.AppendEmailEvents(ctx, id, e, events)
	if err == nil && d.lose > 0 {
		d.lose--
		return false, &mailcasetest.FaultError{Code: driver.Unavailable, Method: "AppendEmailEvents"}
	}
	return filed, err
}

// TestStore_AppendEmailEventsFiled: Store.AppendEmailEvents reports a mail
// filed by the call, also when the attempt that filed it lost its answer
// and the retry found it filed, and not filed for a mail filed before.
func TestStore_AppendEmailEventsFiled(t *testing.T) {
	inner := plStore(t)
	ev := &evFailingDriver{CaseStore: inner.Driver(), EventLog: inner.Driver().(driver.EventLog), ef: inner.Driver().(driver.EventFiler)}
	d := &lostAnswerDriver{evFailingDriver: ev}
	s := mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: 3, RetryBase: time.Millisecond, Logger: plLogger(t)})
	ctx := t.Context()
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Queue: "q", First: &mailcase.Email{IdempotencyKey: "k1", MessageID: "1@example.com",
		From: mailcase.Address{Email: "ann@example.com"}, Subject: "s"}})
	require.NoError(t, err)
	mail := func(n string) *mailcase.Email {
		return &mailcase.Email{IdempotencyKey: "k" + n, MessageID: n + "@example.com", From: mailcase.Address{Email: "ann@example.com"}, Subject: "s"}
	}
	event := func(n string) []*driver.EventRecord {
		return []*driver.EventRecord{{ID: "ev" + n, Kind: "note.appended", CaseID: c.ID, Version: 1, Data: []byte(`{}`)}}
	}

	filed, err := s.AppendEmailEvents(ctx, c.ID, mail("2"), event("2"))
	require.NoError(t, err)
	assert.True(t, filed, "a new mail")
	filed, err = s.AppendEmailEvents(ctx, c.ID, mail("2"), event("2"))
	require.NoError(t, err)
	assert.False(t, filed, "a mail filed before")

	d.lose = 1
	filed, err = s.AppendEmailEvents(ctx, c.ID, mail("3"), event("3"))
	require.NoError(t, err)
	assert.Equal(t, 0, d.lose)
	assert.True(t, filed, "filed by the attempt whose answer was lost")
	assert.Equal(t, []string{"note.appended", "note.appended"}, logKinds(t, s), "each event kept once")
}
