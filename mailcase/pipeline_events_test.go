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
// fail after composing the events (the filing's transaction failing).
type evFailingDriver struct {
	driver.CaseStore
	driver.EventLog
	ef    driver.EventFiler
	fails int
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

func (d *evFailingDriver) AppendEmailEvents(ctx context.Context, id driver.CaseID, e *driver.Email, events []*driver.EventRecord) error {
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
