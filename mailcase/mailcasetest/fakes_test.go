package mailcasetest_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

func TestSource(t *testing.T) {
	ctx := t.Context()
	s := mailcasetest.NewSource([]byte("a"), []byte("b"))
	s.Mailbox, s.Quiet = "mb", true
	r1, err := s.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "1", r1.ID)
	assert.Equal(t, "mb", r1.Mailbox)
	assert.True(t, r1.Quiet)
	assert.Equal(t, 1, r1.Attempt)
	r2, err := s.Receive(ctx)
	require.NoError(t, err)
	_, err = s.Receive(ctx)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, 2, s.InFlight())
	require.NoError(t, s.Ack(ctx, r2, mailcase.Quarantine, "bad"))
	require.NoError(t, s.Ack(ctx, r1, mailcase.Done, ""))
	assert.Error(t, s.Ack(ctx, r1, mailcase.Done, ""), "double ack")
	assert.Error(t, s.Ack(ctx, nil, mailcase.Done, ""))
	acks := s.Acks()
	require.Len(t, acks, 2)
	assert.Equal(t, mailcasetest.Ack{ID: "2", Raw: []byte("b"), Disposition: mailcase.Quarantine, Reason: "bad"}, acks[0])
	assert.Equal(t, 1, s.Count(mailcase.Done))
	assert.Zero(t, s.InFlight())
	assert.Zero(t, s.Remaining())
}

func TestSource_Injection(t *testing.T) {
	ctx := t.Context()
	boom := errors.New("boom")
	s := mailcasetest.NewSource([]byte("a"), []byte("b"))
	s.ReceiveErr, s.ReceiveErrAfter, s.ReceiveErrTimes = boom, 1, 1
	s.AckErr = boom
	r, err := s.Receive(ctx)
	require.NoError(t, err)
	_, err = s.Receive(ctx)
	assert.ErrorIs(t, err, boom)
	_, err = s.Receive(ctx)
	require.NoError(t, err, "the error is injected once")
	assert.ErrorIs(t, s.Ack(ctx, r, mailcase.Done, ""), boom)
	assert.Len(t, s.Acks(), 1, "a failed ack is still recorded")
}

func TestSource_Endless(t *testing.T) {
	s := mailcasetest.NewSource()
	s.Endless = true
	got := make(chan *mailcase.Received)
	go func() {
		r, err := s.Receive(context.Background())
		assert.NoError(t, err)
		got <- r
	}()
	time.Sleep(10 * time.Millisecond)
	s.Add([]byte("late"))
	select {
	case r := <-got:
		assert.Equal(t, []byte("late"), r.Raw)
	case <-time.After(5 * time.Second):
		t.Fatal("Receive did not wake on Add")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := s.Receive(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFault(t *testing.T) {
	boom := errors.New("boom")
	r := &mailcasetest.Router{Result: mailcase.Route{Queue: "q"}, Fault: mailcasetest.Fault{Err: boom, Times: 2}}
	d := &mailcase.Delivery{Message: &mailcase.Message{Subject: "x"}}
	for range 2 {
		_, err := r.Route(t.Context(), d)
		assert.ErrorIs(t, err, boom)
	}
	got, err := r.Route(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "q", got.Queue)
	assert.Equal(t, 3, r.Calls())
	assert.Equal(t, 3, r.Fault.Fired())

	p := &mailcasetest.Router{Fault: mailcasetest.Fault{Panic: "bang", Match: func(m *mailcase.Message) bool { return m.Subject == "bad" }}}
	_, err = p.Route(t.Context(), d)
	require.NoError(t, err)
	assert.PanicsWithValue(t, "bang", func() {
		_, _ = p.Route(t.Context(), &mailcase.Delivery{Message: &mailcase.Message{Subject: "bad"}})
	})
}

func TestPluginFakes(t *testing.T) {
	ctx := t.Context()
	f := &mailcasetest.Filter{Rule: "r", Reason: "why", Drop: func(m *mailcase.Message) bool { return m.Subject == "spam" }}
	v, err := f.FilterMail(ctx, &mailcase.Delivery{Message: &mailcase.Message{Subject: "spam"}})
	require.NoError(t, err)
	assert.Equal(t, mailcase.FilterVerdict{Drop: true, Rule: "r", Reason: "why"}, v)
	v, err = f.FilterMail(ctx, &mailcase.Delivery{Message: &mailcase.Message{Subject: "ham"}})
	require.NoError(t, err)
	assert.False(t, v.Drop)
	assert.Equal(t, 2, f.Calls())

	m := &mailcasetest.SenderMatcher{}
	m.Set("Ann@Example.com", mailcase.SenderMatch{Kind: mailcase.SenderContact, Reason: "fake"})
	got, err := m.MatchSender(ctx, mailcase.Address{Email: "ann@example.com"})
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderContact, got.Kind)
	assert.Equal(t, "ann@example.com", got.Address)
	got, err = m.MatchSender(ctx, mailcase.Address{Email: "bob@example.com"})
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderUnknown, got.Kind)
	assert.Equal(t, 2, m.Calls())

	tr := &mailcasetest.ThreadResolver{}
	dec, err := tr.ResolveThread(ctx, &mailcase.Delivery{})
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action)
	tr.Decision = mailcase.ThreadDecision{Action: mailcase.ThreadAppend, CaseID: "c1"}
	dec, err = tr.ResolveThread(ctx, &mailcase.Delivery{})
	require.NoError(t, err)
	assert.Equal(t, mailcase.CaseID("c1"), dec.CaseID)
	assert.Equal(t, 2, tr.Calls())
}

func TestClock(t *testing.T) {
	var c mailcasetest.Clock
	assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), c.Now())
	c.Advance(time.Hour)
	assert.Equal(t, 4, c.Now().Hour())
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(at)
	assert.Equal(t, at, c.Now())
	assert.Equal(t, at, mailcasetest.NewClock(at).Now())
}
