package tracker_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

func rawMail(from, id, inReplyTo string, received time.Time) []byte {
	h := ""
	if !received.IsZero() {
		h = "Received: from mx.customer.example by mx.company.example; " + received.Format(time.RFC1123Z) + "\r\n"
	}
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + ">\r\n"
	}
	return fmt.Appendf(nil, "%sFrom: %s\r\nTo: support@company.example\r\nSubject: Printer\r\nMessage-ID: <%s>\r\n\r\nIt jams.\r\n", h, from, id)
}

// Through the pipeline: a new case starts its clocks from the Received
// time and the routing; a trusted agent's mail stops the first response; a
// customer's next mail starts the next response.
func TestHook_Pipeline(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	_, err := r.store.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Bob", Email: "bob@company.example", Active: true})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(r.store, &mailcase.Options{
		Mailbox:    mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "billing"},
		Responders: []mailcase.Responder{tracker.NewHook(r.tr)}, Now: r.clock.Now,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticated: func(m *mailcase.Message) bool { return m.From.Email == "bob@company.example" }})
	require.NoError(t, err)

	res, err := p.Process(ctx, rawMail("Ann <ann@customer.example>", "a1@customer.example", "", monday.Add(-7*time.Minute)), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
	id := res.Outcome.CaseID
	mb := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, mb.StartedAt.Equal(monday.Add(-7*time.Minute)), "mailbox level from the Received time, got %s", mb.StartedAt)
	q := r.timer(id, driver.SLAQueue, driver.SLAFirstResponse)
	assert.True(t, q.StartedAt.Equal(monday), "queue level from the routing")
	assert.Equal(t, "billing", q.Scope)

	r.at(monday.Add(5 * time.Minute))
	res, err = p.Process(ctx, rawMail("Bob <bob@company.example>", "b1@company.example", "a1@customer.example", time.Time{}), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action)
	assert.True(t, r.timer(id, driver.SLAQueue, driver.SLAFirstResponse).Stopped, "the agent's reply stops the first response")
	assert.True(t, r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse).Stopped)

	r.at(monday.Add(time.Hour))
	res, err = p.Process(ctx, rawMail("Ann <ann@customer.example>", "a2@customer.example", "b1@company.example", monday.Add(time.Hour)), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action)
	nr := r.timer(id, driver.SLAMailbox, driver.SLANextResponse)
	assert.True(t, nr.DueAt.Equal(monday.Add(2*time.Hour)), "next response from the customer's mail, got %s", nr.DueAt)
	assert.Empty(t, r.at(monday.Add(20*time.Minute)).run(), "no first-response alert after the agent's reply")
}

// An untrusted mail claiming to be the agent's is the customer's: it
// never stops a clock.
func TestHook_UntrustedAgentIsCustomer(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	_, err := r.store.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Bob", Email: "bob@company.example", Active: true})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(r.store, &mailcase.Options{
		Mailbox:    mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Responders: []mailcase.Responder{tracker.NewHook(r.tr)}, Now: r.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	res, err := p.Process(ctx, rawMail("Ann <ann@customer.example>", "a1@customer.example", "", time.Time{}), nil)
	require.NoError(t, err)
	id := res.Outcome.CaseID
	_, err = p.Process(ctx, rawMail("Bob <bob@company.example>", "b1@company.example", "a1@customer.example", time.Time{}), nil)
	require.NoError(t, err)
	assert.False(t, r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse).Stopped)
}

func TestReceivedAt(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	msg := func(fields ...string) *mailcase.Message {
		return &mailcase.Message{Header: mailcase.Header{"Received": fields}}
	}
	for _, tc := range []struct {
		name string
		m    *mailcase.Message
		want time.Time
	}{
		{"topmost", msg("from a by b; Mon, 02 Mar 2026 10:55:00 +0100", "from c by a; Mon, 02 Mar 2026 08:00:00 +0000"), now.Add(-5 * time.Minute)},
		{"none", msg(), now},
		{"no date", msg("from a by b"), now},
		{"garbage", msg("from a by b; yesterday"), now},
		{"future", msg("from a by b; Mon, 02 Mar 2026 11:00:00 +0000"), now},
		{"too old", msg("from a by b; Mon, 02 Feb 2026 10:00:00 +0000"), now},
		{"nil", nil, now},
	} {
		assert.True(t, tracker.ReceivedAt(tc.m, now).Equal(tc.want), tc.name)
	}
}

func FuzzReceivedAt(f *testing.F) {
	f.Add("from a by b; Mon, 02 Mar 2026 10:55:00 +0100")
	f.Add("from a by b; 2 Mar 2026 10:55 -0000 (UTC)")
	f.Add(";;;")
	f.Add("")
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		got := tracker.ReceivedAt(&mailcase.Message{Header: mailcase.Header{"Received": {v}}}, now)
		if got.After(now) || now.Sub(got) > 7*24*time.Hour {
			t.Fatalf("ReceivedAt(%q) = %s, outside the week before now", v, got)
		}
	})
}

// Through the pipeline: a customer's reply reopens a closed case, and its
// clocks run again (resolution counts on, the next response is due).
func TestHook_ReopenedByCustomerMail(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	_, err := r.store.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Bob", Email: "bob@company.example", Active: true})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(r.store, &mailcase.Options{
		Mailbox:    mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Responders: []mailcase.Responder{tracker.NewHook(r.tr)}, Now: r.clock.Now,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticated: func(m *mailcase.Message) bool { return m.From.Email == "bob@company.example" }})
	require.NoError(t, err)
	res, err := p.Process(ctx, rawMail("Ann <ann@customer.example>", "a1@customer.example", "", monday), nil)
	require.NoError(t, err)
	id := res.Outcome.CaseID
	r.at(monday.Add(10 * time.Minute))
	_, err = p.Process(ctx, rawMail("Bob <bob@company.example>", "b1@company.example", "a1@customer.example", time.Time{}), nil)
	require.NoError(t, err)
	r.at(monday.Add(2*time.Hour)).setStatus(id, mailcase.StatusClosed)

	reopen := monday.Add(50 * time.Hour)
	r.at(reopen)
	res, err = p.Process(ctx, rawMail("Ann <ann@customer.example>", "a2@customer.example", "b1@company.example", reopen), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionReopened, res.Outcome.Action)
	resolution := r.timer(id, driver.SLAMailbox, driver.SLAResolution)
	assert.False(t, resolution.Stopped, "resolution runs again")
	assert.Equal(t, 2*time.Hour, resolution.Elapsed)
	assert.True(t, resolution.DueAt.Equal(reopen.Add(22*time.Hour)), "resolution DueAt %s", resolution.DueAt)
	nr := r.timer(id, driver.SLAMailbox, driver.SLANextResponse)
	assert.True(t, nr.DueAt.Equal(reopen.Add(time.Hour)), "next response due an hour after the reopening mail, got %s", nr.DueAt)
	// The case is on the pipeline's default queue, which has no owner to
	// mail: the alert is heard as an event.
	r.at(reopen.Add(30 * time.Minute)).run()
	assert.Equal(t, []string{"sla.warning " + string(id) + " mailbox next_response"}, r.events)
}
