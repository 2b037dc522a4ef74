package events_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
)

// TestRecorder_SlowObserverNeverBlocks: an observer stuck in its callback
// fills its buffer, and recording goes on, dropping (and counting) what
// does not fit; another observer sees everything.
func TestRecorder_SlowObserverNeverBlocks(t *testing.T) {
	ctx := t.Context()
	logs := &logBuffer{}
	rec, err := events.NewRecorder(nil, &events.RecorderOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	block := make(chan struct{})
	var slowGot int
	stopSlow := rec.Observe("slow", 10, func(ctx context.Context, e events.Event) {
		slowGot++
		select {
		case <-block:
		case <-ctx.Done():
		}
	})
	var mu sync.Mutex
	var fast []string
	done := make(chan struct{})
	const n = 200
	stopFast := rec.Observe("fast", n, func(ctx context.Context, e events.Event) {
		mu.Lock()
		defer mu.Unlock()
		fast = append(fast, e.ID)
		if len(fast) == n {
			close(done)
		}
	})
	for i := range n {
		_, err := rec.Record(ctx, events.CaseCreated, driver.CaseID(strconv.Itoa(i)), map[string]any{"i": i})
		require.NoError(t, err)
	}
	<-done
	st := rec.Stats()
	assert.Equal(t, uint64(n), st.Recorded)
	assert.GreaterOrEqual(t, st.Dropped["slow"], uint64(n-11), "the buffer (10) and the event in the callback are all the slow observer holds")
	assert.LessOrEqual(t, st.Dropped["slow"], uint64(n-10))
	assert.Zero(t, st.Dropped["fast"])
	assert.Contains(t, logs.String(), "event observer too slow")
	close(block)
	stopSlow()
	stopFast()
	assert.LessOrEqual(t, slowGot, 11)
	require.NoError(t, rec.Close())
	// After Close, observing is a no-op and recording still works.
	rec.Observe("late", 1, func(context.Context, events.Event) { t.Error("observer called after Close") })()
	_, err = rec.Record(ctx, events.CaseCreated, "x", nil)
	require.NoError(t, err)
}

// TestRecorder_MailEventsRecordedOnce: the same mail's event recorded twice
// (a redelivery) is kept once, with one delivery; events that name no mail
// are each kept.
func TestRecorder_MailEventsRecordedOnce(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, nil)
	hook := rc.webhook("crm")
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	data := map[string]any{"mailbox": "support", "message_id": "m1@x"}
	a, err := rec.Record(ctx, events.CaseCreated, "1", data)
	require.NoError(t, err)
	b, err := rec.Record(ctx, events.CaseCreated, "1", data)
	require.NoError(t, err)
	assert.Equal(t, a.ID, b.ID)
	c, err := rec.Record(ctx, events.CaseRouted, "1", data)
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, c.ID, "another kind for the same mail is another event")
	o1, err := rec.Record(ctx, events.ReplySent, "1", map[string]any{"outbox_id": "7"})
	require.NoError(t, err)
	o2, err := rec.Record(ctx, events.ReplySent, "1", map[string]any{"outbox_id": "7"})
	require.NoError(t, err)
	assert.Equal(t, o1.ID, o2.ID)
	x, err := rec.Record(ctx, events.CaseStatusChanged, "1", map[string]any{"status": "open"})
	require.NoError(t, err)
	y, err := rec.Record(ctx, events.CaseStatusChanged, "1", map[string]any{"status": "open"})
	require.NoError(t, err)
	assert.NotEqual(t, x.ID, y.ID)
	log, err := s.ReadEvents(ctx, 0, 100)
	require.NoError(t, err)
	assert.Len(t, log, 5)
	ds, err := s.ListDeliveries(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, ds, 5)
}

func TestRecorder_Errors(t *testing.T) {
	ctx := t.Context()
	logs := &logBuffer{}
	rec, err := events.NewRecorder(memStore(t), &events.RecorderOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	_, err = rec.Record(ctx, "Bad Kind", "1", nil)
	assert.Error(t, err)
	_, err = rec.Record(ctx, events.CaseCreated, "1", map[string]any{"f": func() {}})
	assert.Error(t, err)
	rec.OnEvent(ctx, "also..bad", "1", nil) // logged, not returned
	assert.Equal(t, uint64(3), rec.Stats().Failed)
	assert.Contains(t, logs.String(), "event not recorded")

	_, err = events.NewRecorder(nil, &events.RecorderOptions{Sinks: []events.Sink{&events.Webhook{Name: "a"}}})
	assert.Error(t, err, "sinks need an event log")
	_, err = events.NewRecorder(memStore(t), &events.RecorderOptions{Sinks: []events.Sink{&events.Webhook{Name: "a"}, &events.Webhook{Name: "a"}}})
	assert.Error(t, err, "duplicate sink names")
}

func TestMatchKind(t *testing.T) {
	assert.True(t, events.MatchKind(nil, "case.created"))
	assert.True(t, events.MatchKind([]string{"*"}, "sla.breach"))
	assert.True(t, events.MatchKind([]string{"case.*"}, "case.created"))
	assert.False(t, events.MatchKind([]string{"case.*"}, "cases.x"))
	assert.False(t, events.MatchKind([]string{"case.created"}, "case.routed"))
	assert.Len(t, events.Kinds(), 12)
	for _, k := range events.Kinds() {
		assert.Equal(t, 1, events.Version(k))
	}
}
