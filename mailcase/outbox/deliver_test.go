package outbox_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// sendErr is a transport error with the optional methods of Transport.
type sendErr struct {
	msg             string
	permanent, part bool
}

func (e *sendErr) Error() string         { return e.msg }
func (e *sendErr) Permanent() bool       { return e.permanent }
func (e *sendErr) PartlyDelivered() bool { return e.part }

// scripted is a transport answering from a script, one error per call
// (nil when the script is exhausted), recording what it was given.
type scripted struct {
	mu     sync.Mutex
	script []error
	got    []sent
}

type sent struct {
	from string
	to   []string
	raw  string
}

func (s *scripted) Send(_ context.Context, from string, to []string, raw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, sent{from, append([]string(nil), to...), string(raw)})
	if len(s.script) == 0 {
		return nil
	}
	err := s.script[0]
	s.script = s.script[1:]
	return err
}

func newStore(t *testing.T) *mailcase.Store {
	t.Helper()
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// queue files a case and queues one message about it.
func queue(t *testing.T, s *mailcase.Store, n int) (mailcase.Case, string) {
	t.Helper()
	ctx := t.Context()
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "Printer", First: &mailcase.Email{
		IdempotencyKey: "support\x00in-" + strconv.Itoa(n), MessageID: "in-" + strconv.Itoa(n) + "@customer.example",
		From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Printer"}})
	require.NoError(t, err)
	id, err := s.Enqueue(ctx, &driver.OutboxMessage{Key: "support\x00ack\x00" + strconv.Itoa(n), CaseID: c.ID, Mailbox: "support",
		Kind: "acknowledgement", From: "support@company.example", To: []string{"ann@customer.example"},
		MessageID: "<ack-" + strconv.Itoa(n) + "@company.example>", Raw: []byte("To: Ann <ann@customer.example>\r\nSubject: ack\r\n\r\nhello\r\n")})
	require.NoError(t, err)
	return c, id
}

func notes(t *testing.T, s *mailcase.Store, id mailcase.CaseID) []string {
	t.Helper()
	in, err := s.ListInteractions(t.Context(), id)
	require.NoError(t, err)
	var out []string
	for _, i := range in {
		if i.Kind == driver.KindNote {
			out = append(out, i.Note.Body)
		}
	}
	return out
}

func TestDeliverer_Sent(t *testing.T) {
	s := newStore(t)
	c, id := queue(t, s, 1)
	tr := &scripted{}
	d, err := outbox.NewDeliverer(s, tr, nil)
	require.NoError(t, err)
	st, err := d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Sent: 1}, st)
	require.Len(t, tr.got, 1)
	assert.Equal(t, sent{"support@company.example", []string{"ann@customer.example"}, "To: Ann <ann@customer.example>\r\nSubject: ack\r\n\r\nhello\r\n"}, tr.got[0])
	m, ok, err := s.GetOutbox(t.Context(), id)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, driver.OutboxSent, m.Status)
	assert.Equal(t, "ack-1@company.example", m.MessageID, "the Message-ID is kept without brackets, for bounce matching")
	assert.Empty(t, notes(t, s, c.ID))

	st, err = d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Zero(t, st, "a sent message is not sent again")
	assert.Len(t, tr.got, 1)
}

func TestDeliverer_RetriesThenFails(t *testing.T) {
	s := newStore(t)
	c, id := queue(t, s, 1)
	temp := &sendErr{msg: "451 4.3.0 try again later"}
	tr := &scripted{script: []error{temp, temp, temp}}
	d, err := outbox.NewDeliverer(s, tr, &outbox.DelivererOptions{MaxAttempts: 3, BackoffMin: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
	require.NoError(t, err)
	ctx := t.Context()

	st, err := d.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Retried: 1}, st)
	m, _, err := s.GetOutbox(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxPending, m.Status)
	assert.Equal(t, "451 4.3.0 try again later", m.LastError)
	assert.Equal(t, 1, m.Attempts)
	assert.True(t, m.NextAttemptAt.After(time.Now()), "the retry waits for its backoff")

	st, err = d.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Zero(t, st, "nothing is due during the backoff")

	var total outbox.Stats
	require.Eventually(t, func() bool {
		st, err := d.DeliverDue(ctx)
		require.NoError(t, err)
		total.Retried += st.Retried
		total.Failed += st.Failed
		return total.Failed == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, outbox.Stats{Retried: 1, Failed: 1}, total, "attempt 2 retried, attempt 3 (the last) failed")
	assert.Len(t, tr.got, 3)
	m, _, err = s.GetOutbox(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxFailed, m.Status)
	n := notes(t, s, c.ID)
	require.Len(t, n, 1, "the final failure is noted on the case")
	assert.Contains(t, n[0], "could not be delivered (3 attempts failed): 451 4.3.0 try again later")
	assert.Contains(t, n[0], "ann@customer.example")
}

func TestDeliverer_PermanentFailsAtOnce(t *testing.T) {
	s := newStore(t)
	c, id := queue(t, s, 1)
	tr := &scripted{script: []error{&sendErr{msg: "550 5.1.1 no such user", permanent: true}}}
	d, err := outbox.NewDeliverer(s, tr, nil)
	require.NoError(t, err)
	st, err := d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Failed: 1}, st)
	m, _, err := s.GetOutbox(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxFailed, m.Status)
	assert.Equal(t, 1, m.Attempts)
	n := notes(t, s, c.ID)
	require.Len(t, n, 1)
	assert.Contains(t, n[0], "the server refused it): 550 5.1.1 no such user")

	// An agent retries it (mailcase outbox retry): it is due at once, and
	// a second failure does not note the case twice.
	require.NoError(t, s.SetOutboxStatus(t.Context(), id, driver.OutboxPending, ""))
	tr.script = []error{&sendErr{msg: "550 5.1.1 no such user", permanent: true}}
	_, err = d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Len(t, notes(t, s, c.ID), 1)
}

func TestDeliverer_PartlyDelivered(t *testing.T) {
	s := newStore(t)
	c, id := queue(t, s, 1)
	tr := &scripted{script: []error{&sendErr{msg: "550 bob@x.example: no such user", permanent: true, part: true}}}
	d, err := outbox.NewDeliverer(s, tr, nil)
	require.NoError(t, err)
	st, err := d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Sent: 1}, st, "accepted for some recipients: sent, never again to them")
	m, _, err := s.GetOutbox(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxSent, m.Status)
	n := notes(t, s, c.ID)
	require.Len(t, n, 1)
	assert.Contains(t, n[0], "refused some recipients: 550 bob@x.example")
}

// A sender that dies between the server's acceptance and recording the
// result: its claim expires and the message is sent again, byte for byte
// (same Message-ID): delivery is at least once, never lost.
func TestDeliverer_CrashAfterAcceptSendsAgainSameBytes(t *testing.T) {
	s := newStore(t)
	_, id := queue(t, s, 1)
	ctx := t.Context()
	tr := &scripted{}
	claimed, err := s.ClaimOutbox(ctx, "dead-sender", 10, 100*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, tr.Send(ctx, claimed[0].From, claimed[0].To, claimed[0].Raw)) // accepted; then the process dies

	d, err := outbox.NewDeliverer(s, tr, nil)
	require.NoError(t, err)
	st, err := d.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Zero(t, st, "a live claim is left alone")
	time.Sleep(200 * time.Millisecond)
	st, err = d.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Sent: 1}, st)
	require.Len(t, tr.got, 2)
	assert.Equal(t, tr.got[0], tr.got[1], "the second send is the same message")
	m, _, err := s.GetOutbox(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxSent, m.Status)
	assert.Equal(t, 2, m.Attempts)
}

func TestDeliverer_Run(t *testing.T) {
	s := newStore(t)
	tr := &scripted{}
	d, err := outbox.NewDeliverer(s, tr, &outbox.DelivererOptions{PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	queue(t, s, 1)
	queue(t, s, 2)
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.got) == 2
	}, 5*time.Second, 5*time.Millisecond, "Run delivers messages queued while it runs")
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
}

func TestNewDeliverer_Errors(t *testing.T) {
	_, err := outbox.NewDeliverer(nil, &scripted{}, nil)
	assert.EqualError(t, err, "outbox: a deliverer needs a store and a transport")
	s := mailcase.NewStore(noOutbox{}, nil)
	_, err = outbox.NewDeliverer(s, &scripted{}, nil)
	assert.EqualError(t, err, "outbox: the store keeps no outbox")
	assert.False(t, outbox.IsPermanent(errors.New("x")))
	assert.True(t, outbox.IsPermanent(&sendErr{permanent: true}))
}

// noOutbox is a driver without driver.Outbox.
type noOutbox struct{ driver.CaseStore }

// slow is a transport that blocks until its context ends.
type slow struct{ calls int }

func (s *slow) Send(ctx context.Context, _ string, _ []string, _ []byte) error {
	s.calls++
	<-ctx.Done()
	return ctx.Err()
}

// A send never outlives its claim: with a 300ms claim, a transport that
// hangs is cut off before the claim ends, and the rest of the batch waits
// for the next claim.
func TestDeliverer_SendEndsBeforeTheClaim(t *testing.T) {
	s := newStore(t)
	_, id := queue(t, s, 1)
	queue(t, s, 2)
	tr := &slow{}
	d, err := outbox.NewDeliverer(s, tr, &outbox.DelivererOptions{ClaimTTL: 300 * time.Millisecond, BackoffMin: time.Hour})
	require.NoError(t, err)
	start := time.Now()
	st, err := d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 300*time.Millisecond, "the send is cut off before the claim ends")
	assert.Equal(t, 1, tr.calls, "the second message of the batch waits for a claim of its own")
	assert.Equal(t, 1, st.Retried)
	m, _, err := s.GetOutbox(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxPending, m.Status, "the cut-off send is retried later")
}
