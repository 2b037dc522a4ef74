package mailcase_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

type wlEvents struct {
	mu  sync.Mutex
	got []string
	dat []map[string]any
}

func (e *wlEvents) on(_ context.Context, kind string, _ driver.CaseID, data map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got, e.dat = append(e.got, kind), append(e.dat, data)
}

func newWorklistStore(t *testing.T, auto bool) (*mailcase.Store, *wlEvents, mailcase.Case) {
	t.Helper()
	ev := &wlEvents{}
	s, err := memstore.OpenStore(&memstore.Options{Store: &mailcase.StoreOptions{Worklist: &mailcase.WorklistOptions{AutoAccept: auto, OnEvent: ev.on}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	require.True(t, s.CanWorklist())
	require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "tier1", Owner: "Boss@Company.Example",
		Members: []string{"bob@company.example", "AMY@company.example", "bob@company.example"}}))
	require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "tier2", Members: []string{"cat@company.example"}}))
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Queue: "tier1", First: &mailcase.Email{IdempotencyKey: "k1", MessageID: "m1@customer.example",
		From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Printer"}})
	require.NoError(t, err)
	return s, ev, c
}

func TestWorklist_QueuesNormalisedAndPersonsRefused(t *testing.T) {
	s, _, _ := newWorklistStore(t, false)
	ctx := t.Context()
	q, ok, err := s.GetQueue(ctx, "tier1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "boss@company.example", q.Owner)
	assert.Equal(t, []string{"amy@company.example", "bob@company.example"}, q.Members)
	for _, bad := range []*mailcase.GroupQueue{
		{Name: "bob@company.example"}, // a person, not a group
		{Name: " "},
		{Name: "ok", Owner: "not an address"},
		{Name: "ok", Members: []string{"bob"}},
	} {
		err := s.CreateQueue(ctx, bad)
		assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "queue %+v", bad)
	}
	assert.Equal(t, mailcase.AlreadyExists, mailcase.Code(s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "tier1"})))
	require.NoError(t, s.AddQueueMember(ctx, "tier1", "Dan@Company.example"))
	require.NoError(t, s.RemoveQueueMember(ctx, "tier1", "bob@company.example"))
	q, _, err = s.GetQueue(ctx, "tier1")
	require.NoError(t, err)
	assert.Equal(t, []string{"amy@company.example", "dan@company.example"}, q.Members)
	assert.Equal(t, mailcase.NotFound, mailcase.Code(s.AddQueueMember(ctx, "nope", "dan@company.example")))
	_, err = s.ReassignWorkItem(ctx, "1000", "boss@company.example", "cat@company.example", "")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "a reassign to a person is refused")
}

func TestWorklist_EventsAndAgentsNormalised(t *testing.T) {
	s, ev, c := newWorklistStore(t, false)
	ctx := t.Context()
	it, err := s.AcceptWorkItem(ctx, c.ID, "Bob@Company.Example")
	require.NoError(t, err)
	assert.Equal(t, "bob@company.example", it.Owner)
	_, err = s.AcceptWorkItem(ctx, c.ID, "bob@company.example")
	require.NoError(t, err, "accepting again is a no-op")
	_, err = s.AcceptWorkItem(ctx, c.ID, "amy@company.example")
	assert.Equal(t, mailcase.AlreadyExists, mailcase.Code(err))
	_, err = s.ReassignWorkItem(ctx, c.ID, "bob@company.example", "tier2", "cat@company.example")
	require.NoError(t, err)
	_, err = s.ReleaseWorkItem(ctx, c.ID, "cat@company.example")
	require.NoError(t, err)
	_, err = s.AcceptWorkItem(ctx, c.ID, "nobody")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.Equal(t, []string{
		mailcase.EventCaseAccepted, mailcase.EventCaseStatusChanged, // open -> in progress
		mailcase.EventCaseAssigned,                                  // to cat on tier2, still in progress
		mailcase.EventCaseAssigned, mailcase.EventCaseStatusChanged, // released: open
	}, ev.got)
	assert.Equal(t, map[string]any{"queue": "tier2", "owner": "cat@company.example",
		"previous_queue": "tier1", "previous_owner": "bob@company.example"}, ev.dat[2])
	assert.Equal(t, map[string]any{"owner": "bob@company.example", "queue": "tier1", "auto": false}, ev.dat[0])
	items, err := s.ListWorkItems(ctx, &mailcase.WorkItemFilter{Queue: "tier2", Unowned: true})
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, c.ID, items[0].CaseID)
}

func TestWorklist_AutoAcceptOnOpen(t *testing.T) {
	s, ev, c := newWorklistStore(t, true)
	ctx := t.Context()
	it, err := s.OpenWorkItem(ctx, c.ID, "cat@company.example")
	require.NoError(t, err, "a non-member opening reads only")
	assert.Empty(t, it.Owner)
	it, err = s.OpenWorkItem(ctx, c.ID, "amy@company.example")
	require.NoError(t, err)
	assert.Equal(t, "amy@company.example", it.Owner, "a member opening an unowned item accepts it")
	it, err = s.OpenWorkItem(ctx, c.ID, "bob@company.example")
	require.NoError(t, err, "opening an item another owns reads it")
	assert.Equal(t, "amy@company.example", it.Owner)
	assert.Equal(t, map[string]any{"owner": "amy@company.example", "queue": "tier1", "auto": true}, ev.dat[0])
	_, err = s.OpenWorkItem(ctx, "missing", "amy@company.example")
	assert.Equal(t, mailcase.NotFound, mailcase.Code(err))

	plain, _, c2 := newWorklistStore(t, false)
	it, err = plain.OpenWorkItem(ctx, c2.ID, "amy@company.example")
	require.NoError(t, err)
	assert.Empty(t, it.Owner, "without AutoAccept, opening only reads")
}

func TestWorklist_UnimplementedWithoutTheRole(t *testing.T) {
	s, _ := newFaultStore(t, nil)
	ctx := t.Context()
	assert.False(t, s.CanWorklist())
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "q"})))
	_, err := s.ListQueues(ctx)
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
	_, err = s.AcceptWorkItem(ctx, "1", "bob@company.example")
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
	_, _, err = s.GetWorkItem(ctx, "1")
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
	_, err = s.ListWorkItems(ctx, nil)
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
	_, err = s.ReplyFromWorkItem(ctx, "1", "bob@company.example", func(context.Context) (string, error) { return "x", nil })
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
}

// wlRecorder is an EventRecorder over a store's log; it records the kinds
// of each EventsFiled call.
type wlRecorder struct {
	store *mailcase.Store
	mu    sync.Mutex
	calls [][]string
	n     int
}

func (r *wlRecorder) PrepareEvent(kind string, id mailcase.CaseID, data map[string]any) (*driver.EventRecord, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return &driver.EventRecord{ID: fmt.Sprintf("wl-%d", r.n), Kind: kind, CaseID: id, Version: 1, Data: raw}, nil
}

func (r *wlRecorder) EventStore() *mailcase.Store { return r.store }

func (r *wlRecorder) EventsFiled(ctx context.Context, recs []*driver.EventRecord, kept bool) {
	if kept {
		panic("a worklist change keeps no event in its transaction")
	}
	if err := r.store.AppendEvents(ctx, recs); err != nil {
		panic(err)
	}
	var kinds []string
	for _, e := range recs {
		kinds = append(kinds, e.Kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, kinds)
}

// WorklistOptions.Events gets the events of one change in one call (one
// append to the log), and OnEvent still hears each of them.
func TestWorklist_EventsOfAChangeRecordedInOneBatch(t *testing.T) {
	ctx := t.Context()
	on := &wlEvents{}
	rec := &wlRecorder{}
	s, err := memstore.OpenStore(&memstore.Options{Store: &mailcase.StoreOptions{Worklist: &mailcase.WorklistOptions{OnEvent: on.on, Events: rec}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	rec.store = s
	require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "tier1", Members: []string{"bob@company.example"}}))
	require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "tier2", Members: []string{"cat@company.example"}}))
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Queue: "tier1", First: &mailcase.Email{IdempotencyKey: "k1", MessageID: "m1@customer.example",
		From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Printer"}})
	require.NoError(t, err)

	_, err = s.AcceptWorkItem(ctx, c.ID, "bob@company.example")
	require.NoError(t, err)
	_, err = s.ReassignWorkItem(ctx, c.ID, "bob@company.example", "tier2", "")
	require.NoError(t, err)
	_, err = s.SetWorkItemStatus(ctx, c.ID, "bob@company.example", mailcase.StatusWaiting)
	require.Error(t, err, "bob owns the item no more: nothing changed, nothing recorded")

	assert.Equal(t, [][]string{
		{mailcase.EventCaseAccepted, mailcase.EventCaseStatusChanged},
		{mailcase.EventCaseAssigned, mailcase.EventCaseStatusChanged},
	}, rec.calls, "one call per change, its events in order")
	assert.Equal(t, []string{mailcase.EventCaseAccepted, mailcase.EventCaseStatusChanged,
		mailcase.EventCaseAssigned, mailcase.EventCaseStatusChanged}, on.got)
	logged, err := s.ReadEvents(ctx, 0, 0)
	require.NoError(t, err)
	var kinds []string
	for _, e := range logged {
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, on.got, kinds, "the log holds them all")
}
