package events_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/events"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func newVerifier(t *testing.T, opts *events.VerifierOptions) (*events.Verifier, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	o := events.VerifierOptions{}
	if opts != nil {
		o = *opts
	}
	o.Now = clock.Now
	return events.NewVerifier(testSecret, &o), clock
}

func envelope(id string) []byte {
	return []byte(`{"id":"` + id + `","kind":"case.created","version":1,"time":"2027-01-15T08:00:00Z","data":{}}`)
}

// A delivery replayed within the tolerance passes Verify (the timestamp is
// recent) but is rejected by the Verifier; once out of the tolerance
// both reject it.
func TestVerifier_ReplayWithinTolerance(t *testing.T) {
	v, clock := newVerifier(t, nil)
	body := envelope("ev_1")
	h := events.Sign(testSecret, clock.Now(), body)

	e, err := v.Verify(h, body)
	require.NoError(t, err)
	assert.Equal(t, "ev_1", e.ID)
	assert.Equal(t, "case.created", e.Kind)

	clock.Add(4 * time.Minute)
	require.NoError(t, events.Verify(testSecret, h, body, clock.Now(), 0), "the stateless check lets the replay through")
	_, err = v.Verify(h, body)
	assert.ErrorIs(t, err, events.ErrReplayed)

	clock.Add(time.Minute + time.Second)
	_, err = v.Verify(h, body)
	assert.ErrorIs(t, err, events.ErrSignatureExpired)
}

// A retry of the sender (the same event, a new timestamp, so a new
// signature) is recognised by the event ID of the signed body (the
// Emailcrm-Idempotency-Key of the request) as ErrDuplicate; a different
// event is accepted.
func TestVerifier_RetryIsDuplicateByEventID(t *testing.T) {
	v, clock := newVerifier(t, nil)
	body := envelope("ev_1")
	_, err := v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	require.NoError(t, err)

	clock.Add(2 * time.Second)
	retry := events.Sign(testSecret, clock.Now(), body)
	e, err := v.Verify(retry, body)
	assert.ErrorIs(t, err, events.ErrDuplicate)
	assert.Equal(t, "ev_1", e.ID, "the duplicate names its event")
	_, err = v.Verify(retry, body)
	assert.ErrorIs(t, err, events.ErrReplayed, "the retry's own replay")

	other := envelope("ev_2")
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), other), other)
	assert.NoError(t, err)
}

// Forget makes the next delivery of an event acceptable, even one signed
// in the same second as the failed one (the same signature).
func TestVerifier_Forget(t *testing.T) {
	v, clock := newVerifier(t, nil)
	body := envelope("ev_1")
	h := events.Sign(testSecret, clock.Now(), body)
	_, err := v.Verify(h, body)
	require.NoError(t, err)
	v.Forget("ev_1") // acting on it failed; answered 500
	_, err = v.Verify(h, body)
	require.NoError(t, err, "the retry within the same second is accepted")
	_, err = v.Verify(h, body)
	assert.ErrorIs(t, err, events.ErrReplayed)
	clock.Add(time.Second)
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	assert.ErrorIs(t, err, events.ErrDuplicate)
}

// Event IDs are remembered for the tolerance after their last delivery:
// a retry arriving later is accepted again (durable deduplication is the
// receiver's, see Verifier).
func TestVerifier_MemoryIsTheTolerance(t *testing.T) {
	v, clock := newVerifier(t, &events.VerifierOptions{Tolerance: time.Minute})
	body := envelope("ev_1")
	_, err := v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	require.NoError(t, err)
	clock.Add(59 * time.Second)
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	require.ErrorIs(t, err, events.ErrDuplicate)
	clock.Add(59 * time.Second)
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	require.ErrorIs(t, err, events.ErrDuplicate, "each delivery extends the memory")
	clock.Add(61 * time.Second)
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	assert.NoError(t, err)
}

// The memory is bounded: a full Verifier refuses new deliveries (the
// sender retries) instead of forgetting ones that could be replayed, and
// takes them again once the remembered ones leave the tolerance.
func TestVerifier_Bounded(t *testing.T) {
	v, clock := newVerifier(t, &events.VerifierOptions{Tolerance: time.Minute, MaxEntries: 2})
	for _, id := range []string{"ev_1", "ev_2"} {
		b := envelope(id)
		_, err := v.Verify(events.Sign(testSecret, clock.Now(), b), b)
		require.NoError(t, err)
	}
	b1, b3 := envelope("ev_1"), envelope("ev_3")
	h1 := events.Sign(testSecret, clock.Now(), b1)
	_, err := v.Verify(h1, b1)
	assert.ErrorIs(t, err, events.ErrReplayed, "a replay is still recognised when full")
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), b3), b3)
	assert.ErrorIs(t, err, events.ErrVerifierFull)
	clock.Add(time.Minute + time.Second)
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), b3), b3)
	assert.NoError(t, err)
}

// Bodies that are not event envelopes and bad signatures are refused.
func TestVerifier_Refuses(t *testing.T) {
	v, clock := newVerifier(t, nil)
	for _, b := range [][]byte{[]byte(`{"kind":"x"}`), []byte(`not json`)} {
		_, err := v.Verify(events.Sign(testSecret, clock.Now(), b), b)
		assert.ErrorIs(t, err, events.ErrSignatureMalformed, "%s", b)
	}
	body := envelope("ev_1")
	_, err := v.Verify(events.Sign([]byte("another-secret-0123456789"), clock.Now(), body), body)
	assert.ErrorIs(t, err, events.ErrSignatureMismatch)
	_, err = v.Verify("", body)
	assert.ErrorIs(t, err, events.ErrSignatureMalformed)
	// None of them was remembered.
	_, err = v.Verify(events.Sign(testSecret, clock.Now(), body), body)
	assert.NoError(t, err)
}

// Many copies of one delivery verified at once: exactly one is accepted.
func TestVerifier_Concurrent(t *testing.T) {
	v, clock := newVerifier(t, nil)
	body := envelope("ev_1")
	h := events.Sign(testSecret, clock.Now(), body)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.Verify(h, body) })
	}
	wg.Wait()
	accepted := 0
	for _, err := range errs {
		if err == nil {
			accepted++
		} else {
			assert.ErrorIs(t, err, events.ErrReplayed)
		}
	}
	assert.Equal(t, 1, accepted)
}

// A receiver written as the Verifier's documentation says acts once on an
// event the Webhook sends twice (a retry with a new timestamp) and on a
// replay of the recorded request.
func TestVerifier_Receiver(t *testing.T) {
	v, clock := newVerifier(t, nil)
	var mu sync.Mutex
	var acted []string
	var recorded *http.Request
	var recordedBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		if recorded == nil {
			recorded, recordedBody = r.Clone(context.Background()), body
		}
		mu.Unlock()
		e, err := v.Verify(r.Header.Get(events.SignatureHeader), body)
		switch {
		case err == nil:
			mu.Lock()
			acted = append(acted, e.ID)
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, events.ErrDuplicate), errors.Is(err, events.ErrReplayed):
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, events.ErrVerifierFull):
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	hook := &events.Webhook{Name: "crm", URL: srv.URL, Secret: testSecret, Now: clock.Now}
	e := &events.Event{ID: "ev_42", Kind: events.CaseCreated, Version: 1, Time: clock.Now().UTC()}
	require.NoError(t, hook.Send(t.Context(), e, 1))
	clock.Add(3 * time.Second)
	require.NoError(t, hook.Send(t.Context(), e, 2))

	// The first request, recorded on the wire and replayed a minute later.
	clock.Add(time.Minute)
	mu.Lock()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(recordedBody))
	require.NoError(t, err)
	req.Header = recorded.Header.Clone()
	req.Header.Set(events.IdempotencyHeader, "ev_forged") // headers are not signed
	mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"ev_42"}, acted, "acted on once")
}
