package outbox_test

import (
	"net/mail"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

type notifyRig struct {
	s *mailcase.Store
	p *mailcase.Pipeline
}

func newNotifyRig(t *testing.T) *notifyRig {
	t.Helper()
	r := &notifyRig{s: newStore(t)}
	_, err := r.s.CreateEmployee(t.Context(), &mailcase.NewEmployee{Name: "Bob Agent", Email: "bob@company.example", Active: true})
	require.NoError(t, err)
	n, err := outbox.NewNotifier(r.s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test",
		Internal: mail.Address{Address: "internal@company.example"}, ForwardReplies: true, ConfirmAgents: true, NotifyOwner: true,
		QueueMembers: map[string][]string{"general": {"alice@company.example", "ann@customer.example"}}})
	require.NoError(t, err)
	r.p, err = mailcase.NewPipeline(r.s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "general"},
		Responders: []mailcase.Responder{n}, Authenticated: func(*mailcase.Message) bool { return true }})
	require.NoError(t, err)
	return r
}

// sent returns "kind to recipient" of every queued message, in order.
func (r *notifyRig) sent(t *testing.T) []string {
	t.Helper()
	l, err := r.s.ListOutbox(t.Context(), &driver.OutboxListOptions{})
	require.NoError(t, err)
	var out []string
	for _, m := range l {
		out = append(out, m.Kind+" to "+m.To[0])
	}
	slices.Reverse(out)
	return out
}

func TestNotifier(t *testing.T) {
	r := newNotifyRig(t)
	ctx := t.Context()
	res, err := r.p.Process(ctx, inbound("n1@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
	assert.Equal(t, []string{"notification to alice@company.example"}, r.sent(t),
		"the queue's members are notified of a new case, except the sender herself")

	owner := "owner@company.example"
	_, err = r.s.UpdateCase(ctx, res.Outcome.CaseID, &mailcase.CaseUpdate{Owner: &owner})
	require.NoError(t, err)
	reply, err := r.p.Process(ctx, inbound("n2@customer.example", "ann@customer.example", "Re: Printer jams", "In-Reply-To: <n1@customer.example>\r\n"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionAppended, reply.Outcome.Action)
	assert.Equal(t, []string{"notification to alice@company.example", "forward to internal@company.example", "notification to owner@company.example"}, r.sent(t),
		"a customer reply is forwarded to the internal address and notifies the owner")

	agent, err := r.p.Process(ctx, inbound("n3@company.example", "bob@company.example", "Re: Printer jams", "In-Reply-To: <n2@customer.example>\r\n"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionAppended, agent.Outcome.Action, "%+v", agent.Outcome.Steps)
	require.Len(t, r.sent(t), 4, "steps %+v", agent.Outcome.Steps)
	assert.Equal(t, "confirmation to bob@company.example", r.sent(t)[3], "the agent gets a confirmation; no forward, no owner notification")
	assert.Len(t, r.sent(t), 4)

	auto, err := r.p.Process(ctx, inbound("n4@customer.example", "ann@customer.example", "Out of office", "In-Reply-To: <n1@customer.example>\r\nAuto-Submitted: auto-replied\r\n"), nil)
	require.NoError(t, err)
	assert.True(t, auto.Outcome.Auto.IsAuto)
	assert.Len(t, r.sent(t), 4, "nothing about automatic mail")

	// The same reply again: a duplicate, nothing queued twice.
	_, err = r.p.Process(ctx, inbound("n2@customer.example", "ann@customer.example", "Re: Printer jams", "In-Reply-To: <n1@customer.example>\r\n"), nil)
	require.NoError(t, err)
	assert.Len(t, r.sent(t), 4)
}

func TestNewNotifier_Errors(t *testing.T) {
	s := newStore(t)
	_, err := outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "x", ForwardReplies: true})
	assert.EqualError(t, err, "outbox: forwards need the internal support address")
	_, err = outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}})
	assert.EqualError(t, err, "outbox: notifications need a loop ID (one line) naming the installation")
}
