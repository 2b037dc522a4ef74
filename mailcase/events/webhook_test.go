package events_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
)

func TestWebhook_SignedDeliveryVerifies(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, nil)
	hook := rc.webhook("crm")
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	e1, err := rec.Record(ctx, events.CaseCreated, "17", map[string]any{"mailbox": "support", "message_id": "a@x", "queue": "billing"})
	require.NoError(t, err)
	_, err = rec.Record(ctx, events.CaseStatusChanged, "17", map[string]any{"status": "closed", "previous_status": "open"})
	require.NoError(t, err)
	d, err := events.NewDeliverer(s, []events.Sink{hook}, &events.DelivererOptions{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	n, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	reqs := rc.requests()
	require.Len(t, reqs, 2)
	r := reqs[0] // sends are parallel: find the case.created one
	if r.header.Get(events.IdempotencyHeader) != e1.ID {
		r = reqs[1]
	}
	require.NoError(t, events.Verify(testSecret, r.header.Get(events.SignatureHeader), r.body, time.Now(), 0), "the helper verifies the delivery")
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, events.CaseCreated, r.header.Get("Emailcrm-Event"))
	assert.Equal(t, e1.ID, r.header.Get(events.IdempotencyHeader))
	assert.Equal(t, "1", r.header.Get("Emailcrm-Delivery-Attempt"))
	var env struct {
		ID      string         `json:"id"`
		Seq     int64          `json:"seq"`
		Kind    string         `json:"kind"`
		Version int            `json:"version"`
		CaseID  string         `json:"case_id"`
		Time    time.Time      `json:"time"`
		Data    map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &env))
	assert.Equal(t, e1.ID, env.ID)
	assert.Positive(t, env.Seq)
	assert.Equal(t, "case.created", env.Kind)
	assert.Equal(t, 1, env.Version)
	assert.Equal(t, "17", env.CaseID)
	assert.Equal(t, "billing", env.Data["queue"])
	assert.WithinDuration(t, time.Now(), env.Time, time.Minute)
	assert.Error(t, events.Verify([]byte("not-the-secret-123456"), r.header.Get(events.SignatureHeader), r.body, time.Now(), 0))

	ds, err := s.ListDeliveries(ctx, nil)
	require.NoError(t, err)
	for _, x := range ds {
		assert.Equal(t, driver.DeliveryDelivered, x.Status)
		assert.Equal(t, 1, x.Attempts)
	}
	n, err = d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a delivered event is not sent again")
}

func TestWebhook_ReplayOutsideToleranceRejected(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, nil)
	hook := rc.webhook("crm")
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	_, err = rec.Record(ctx, events.ReplySent, "3", map[string]any{"outbox_id": "9"})
	require.NoError(t, err)
	d, err := events.NewDeliverer(s, []events.Sink{hook}, &events.DelivererOptions{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = d.RunOnce(ctx)
	require.NoError(t, err)
	reqs := rc.requests()
	require.Len(t, reqs, 1)
	sig, body := reqs[0].header.Get(events.SignatureHeader), reqs[0].body
	require.NoError(t, events.Verify(testSecret, sig, body, reqs[0].at, 0))
	// An attacker who recorded the request replays it ten minutes later.
	assert.ErrorIs(t, events.Verify(testSecret, sig, body, reqs[0].at.Add(10*time.Minute), 0), events.ErrSignatureExpired)
	assert.ErrorIs(t, events.Verify(testSecret, sig, body, reqs[0].at.Add(2*time.Minute), time.Minute), events.ErrSignatureExpired)
}

// TestWebhook_RetriesOn500AndTimeout: a 500, then a reply slower than the
// webhook's timeout, then success: three attempts with the same
// idempotency key, and a fresh signature each time.
func TestWebhook_RetriesOn500AndTimeout(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			select { // hold the request past the client's timeout
			case <-release:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	defer close(release)
	hook := rc.webhook("crm")
	hook.Timeout = 200 * time.Millisecond
	logs := &logBuffer{}
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	e, err := rec.Record(ctx, events.CaseRouted, "5", map[string]any{"mailbox": "m", "message_id": "r@x", "queue": "q"})
	require.NoError(t, err)
	d, err := events.NewDeliverer(s, []events.Sink{hook}, &events.DelivererOptions{
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	drain(t, ctx, d, s, hook.SinkName())

	reqs := rc.requests()
	require.Len(t, reqs, 3)
	for i, r := range reqs {
		assert.Equal(t, e.ID, r.header.Get(events.IdempotencyHeader), "attempt %d", i+1)
		assert.Equal(t, strconv.Itoa(i+1), r.header.Get("Emailcrm-Delivery-Attempt"))
		assert.NoError(t, events.Verify(testSecret, r.header.Get(events.SignatureHeader), r.body, r.at, 0))
	}
	ds, err := s.ListDeliveries(ctx, nil)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, driver.DeliveryDelivered, ds[0].Status)
	assert.Equal(t, 3, ds[0].Attempts)
	assert.Contains(t, logs.String(), "HTTP 500")
	assert.Contains(t, logs.String(), "timed out")
	assert.NotContains(t, logs.String(), "url-token-xyz", "the webhook URL (it may carry a token) is never logged")
	assert.NotContains(t, logs.String(), string(testSecret))
}

// TestWebhook_GivesUpAfterMaxAttempts: a receiver that always fails gets
// MaxAttempts attempts, then the delivery fails with its last error kept;
// neither the secret nor the URL is in the error or the logs.
func TestWebhook_GivesUpAfterMaxAttempts(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	hook := rc.webhook("crm")
	logs := &logBuffer{}
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	_, err = rec.Record(ctx, events.ReplyBounced, "8", map[string]any{"outbox_id": "4", "reason": "5.1.1"})
	require.NoError(t, err)
	d, err := events.NewDeliverer(s, []events.Sink{hook}, &events.DelivererOptions{MaxAttempts: 4,
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	drain(t, ctx, d, s, hook.SinkName())
	assert.Len(t, rc.requests(), 4)
	failed, err := s.ListDeliveries(ctx, &driver.DeliveryListOptions{Status: driver.DeliveryFailed})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	assert.Equal(t, 4, failed[0].Attempts)
	assert.Equal(t, "events: webhook crm: HTTP 502", failed[0].LastError)
	assert.Contains(t, logs.String(), "event delivery failed")
	for _, secret := range []string{string(testSecret), "url-token-xyz", rc.srv.URL} {
		assert.NotContains(t, logs.String(), secret)
		assert.NotContains(t, failed[0].LastError, secret)
	}
}

func TestWebhook_GoneFailsAtOnceAndUnreachableIsRetried(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	gone := rc.webhook("gone")
	down := &events.Webhook{Name: "down", URL: "http://127.0.0.1:1/hook?token=url-token-xyz", Secret: testSecret}
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{gone, down}})
	require.NoError(t, err)
	_, err = rec.Record(ctx, events.CaseAccepted, "1", map[string]any{"owner": "amy"})
	require.NoError(t, err)
	d, err := events.NewDeliverer(s, []events.Sink{gone, down}, &events.DelivererOptions{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = d.RunOnce(ctx)
	require.NoError(t, err)
	ds, err := s.ListDeliveries(ctx, nil)
	require.NoError(t, err)
	byName := map[string]driver.EventDelivery{}
	for _, x := range ds {
		byName[x.Sink] = x
	}
	assert.Equal(t, driver.DeliveryFailed, byName["webhook:gone"].Status, "410 Gone is permanent")
	assert.Equal(t, driver.DeliveryPending, byName["webhook:down"].Status, "a refused connection is retried")
	assert.True(t, byName["webhook:down"].NextAttemptAt.After(time.Now().Add(500*time.Millisecond)), "after a backoff")
	assert.NotContains(t, byName["webhook:down"].LastError, "url-token-xyz")
	assert.True(t, strings.HasPrefix(byName["webhook:down"].LastError, "events: webhook down: "), byName["webhook:down"].LastError)
}

func TestWebhook_FilterPerWebhook(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, nil)
	all, cases := rc.webhook("all"), rc.webhook("cases")
	cases.Kinds = []string{"case.*", events.ReplySent}
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{all, cases}})
	require.NoError(t, err)
	for _, k := range []string{events.MailReceived, events.CaseCreated, events.ReplySent, events.SLABreach} {
		_, err := rec.Record(ctx, k, "2", nil)
		require.NoError(t, err)
	}
	count := func(sink string) []string {
		ds, err := s.ListDeliveries(ctx, &driver.DeliveryListOptions{Sink: sink})
		require.NoError(t, err)
		var kinds []string
		for _, x := range ds {
			kinds = append(kinds, x.Event.Kind)
		}
		return kinds
	}
	assert.Len(t, count(all.SinkName()), 4)
	assert.ElementsMatch(t, []string{events.CaseCreated, events.ReplySent}, count(cases.SinkName()))
}

// TestDeliverer_SeveralWorkersNeverDoubleDeliver: three deliverers on one
// log deliver 120 events, each exactly once.
func TestDeliverer_SeveralWorkersNeverDoubleDeliver(t *testing.T) {
	ctx := t.Context()
	s := memStore(t)
	rc := newReceiver(t, nil)
	hook := rc.webhook("crm")
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	const n = 120
	for i := range n {
		_, err := rec.Record(ctx, events.CaseCreated, driver.CaseID(strconv.Itoa(i)), map[string]any{"mailbox": "m", "message_id": strconv.Itoa(i)})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for w := range 3 {
		d, err := events.NewDeliverer(s, []events.Sink{hook}, &events.DelivererOptions{Holder: "w" + strconv.Itoa(w), Batch: 7, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		wg.Go(func() {
			for range 100 {
				got, err := d.RunOnce(ctx)
				if err != nil || got == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range rc.requests() {
		seen[r.header.Get(events.IdempotencyHeader)]++
	}
	assert.Len(t, seen, n)
	for k, c := range seen {
		assert.Equal(t, 1, c, "event %s delivered %d times", k, c)
	}
}

func TestWebhook_Check(t *testing.T) {
	ok := &events.Webhook{Name: "a", URL: "https://example.com/h", Secret: testSecret}
	require.NoError(t, ok.Check())
	for _, w := range []*events.Webhook{
		{URL: "https://example.com/h", Secret: testSecret},
		{Name: "a", URL: "ftp://example.com/h", Secret: testSecret},
		{Name: "a", URL: "/relative", Secret: testSecret},
		{Name: "a", URL: "https://example.com/h", Secret: []byte("short")},
	} {
		err := w.Check()
		assert.Error(t, err)
		if err != nil {
			assert.NotContains(t, err.Error(), string(testSecret))
		}
	}
}
