package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// appendFailingDriver is a memstore driver (with its event log and event
// filer) whose next fails appends of a mail fail without filing.
type appendFailingDriver struct {
	driver.CaseStore
	driver.EventLog
	ef    driver.EventFiler
	fails int
}

func (d *appendFailingDriver) CreateCaseEvents(ctx context.Context, req *driver.NewCase, then func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error)) (driver.Case, []string, error) {
	return d.ef.CreateCaseEvents(ctx, req, then)
}

func (d *appendFailingDriver) AppendEmailEvents(ctx context.Context, id driver.CaseID, e *driver.Email, evs []*driver.EventRecord) (bool, error) {
	if d.fails > 0 {
		d.fails--
		return false, &mailcasetest.FaultError{Code: driver.Unavailable, Method: "AppendEmailEvents"}
	}
	return d.ef.AppendEmailEvents(ctx, id, e, evs)
}

func (d *appendFailingDriver) ErrorCode(err error) driver.ErrorCode {
	var fe *mailcasetest.FaultError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return d.CaseStore.ErrorCode(err)
}

// TestPipeline_ReopenRecordedWhenTheAppendFails: a reply reopens a closed
// case and its append fails once; the Recorder keeps the status change at
// once (the retry finds the case open), with an ID derived from the mail,
// and the observer and the webhook's deliveries get every event once.
func TestPipeline_ReopenRecordedWhenTheAppendFails(t *testing.T) {
	ctx := t.Context()
	inner, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = inner.Close() })
	d := &appendFailingDriver{CaseStore: inner.Driver(), EventLog: inner.Driver().(driver.EventLog), ef: inner.Driver().(driver.EventFiler)}
	s := mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: -1, Logger: slog.New(slog.DiscardHandler)})
	require.True(t, s.CanFileEvents())
	rc := newReceiver(t, nil)
	hook := rc.webhook("crm")
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	seen := make(chan string, 16)
	stop := rec.Observe("test", 16, func(_ context.Context, e events.Event) { seen <- e.Kind })
	defer stop()
	p, err := mailcase.NewPipeline(s, &mailcase.Options{
		Mailbox:    mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "first-line"},
		Logger:     slog.New(slog.DiscardHandler),
		Events:     rec,
		RetryDelay: time.Millisecond,
	})
	require.NoError(t, err)
	defer p.Close()

	first, err := p.Process(ctx, []byte(firstMail), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, first.Outcome.Action)
	closed := mailcase.StatusClosed
	_, err = s.UpdateCase(ctx, first.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	d.fails = 1
	res, err := p.Process(ctx, []byte(replyMail), nil)
	require.NoError(t, err)
	require.Equal(t, 0, d.fails, "the first append failed")
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action, "the retry finds the case open")

	log, err := s.ReadEvents(ctx, 0, 100)
	require.NoError(t, err)
	var kinds []string
	for _, e := range log {
		kinds = append(kinds, e.Kind)
	}
	want := []string{events.CaseCreated, events.CaseRouted, events.MailReceived, events.CaseStatusChanged, events.NoteAppended, events.MailReceived}
	require.Equal(t, want, kinds)
	st := log[3]
	var data map[string]any
	require.NoError(t, json.Unmarshal(st.Data, &data))
	assert.Equal(t, "2@customer.example", data["message_id"])
	assert.Equal(t, "closed", data["previous_status"])
	again, err := rec.PrepareEvent(st.Kind, st.CaseID, data)
	require.NoError(t, err)
	assert.Equal(t, st.ID, again.ID, "the status change's ID is derived from the mail: a repeat is kept once")

	ds, err := s.ListDeliveries(ctx, &driver.DeliveryListOptions{Sink: hook.SinkName()})
	require.NoError(t, err)
	assert.Len(t, ds, len(want))
	var heard []string
	for range want {
		select {
		case k := <-seen:
			heard = append(heard, k)
		case <-time.After(5 * time.Second):
			t.Fatalf("the observer heard %q, want %q", heard, want)
		}
	}
	assert.Equal(t, want, heard)
	assert.Equal(t, uint64(len(want)), rec.Stats().Recorded)
}
