package outbox_test

import (
	"context"
	"errors"
	"net/mail"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// failingAnswer is a CaseResponder whose answer cannot be composed.
type failingAnswer struct{ responded int }

func (f *failingAnswer) Respond(context.Context, *mailcase.Delivery, *mailcase.Result) (string, error) {
	f.responded++
	return "", nil
}

func (f *failingAnswer) PrepareNewCase(context.Context, *mailcase.Delivery, *mailcase.Result) (func(mailcase.Case) (*driver.OutboxMessage, error), string, error) {
	return func(c mailcase.Case) (*driver.OutboxMessage, error) {
		return nil, errors.New("template exploded for case " + c.Number)
	}, "", nil
}

func sqliteStore(t *testing.T) *mailcase.Store {
	t.Helper()
	s, err := sqlstore.OpenURL(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "cases.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// On an SQL store the acknowledgement is queued in the transaction that
// creates the case; a redelivery queues nothing more, and an answer that
// cannot be composed never stops the filing.
func TestAcknowledger_QueuedWithTheCase(t *testing.T) {
	s := sqliteStore(t)
	require.True(t, s.CanQueueWithFiling())
	ack, err := outbox.NewAcknowledger(s, &outbox.AckOptions{From: mail.Address{Name: "Support", Address: "support@company.example"}, LoopID: "emailcrm test"})
	require.NoError(t, err)
	bad := &failingAnswer{}
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Responders: []mailcase.Responder{ack, bad}})
	require.NoError(t, err)

	res, err := p.Process(t.Context(), inbound("tx1@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
	var steps []string
	for _, st := range res.Outcome.Steps {
		if st.Stage == "respond" {
			steps = append(steps, st.Decision+": "+st.Reason)
		}
	}
	require.Len(t, steps, 2, "one step per answer: %q", steps)
	assert.Regexp(t, `^responded: acknowledgement queued for ann@customer\.example with the case \(outbox \d+\)$`, steps[0])
	assert.Equal(t, "failed: template exploded for case "+res.Outcome.CaseNumber, steps[1])
	assert.Zero(t, bad.responded, "a CaseResponder answered with the case is not called again after filing")

	acks, err := s.ListOutbox(t.Context(), &driver.OutboxListOptions{Kind: outbox.KindAcknowledgement})
	require.NoError(t, err)
	require.Len(t, acks, 1)
	assert.Equal(t, res.Outcome.CaseID, acks[0].CaseID)

	// Redelivered: a duplicate, no second acknowledgement.
	res, err = p.Process(t.Context(), inbound("tx1@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionDuplicate, res.Outcome.Action)
	acks, err = s.ListOutbox(t.Context(), &driver.OutboxListOptions{Kind: outbox.KindAcknowledgement})
	require.NoError(t, err)
	assert.Len(t, acks, 1)
}

// A queue's own template answers the cases routed to it; other queues get
// the mailbox's.
func TestAcknowledger_QueueTemplate(t *testing.T) {
	s := sqliteStore(t)
	billing, err := outbox.ParseTemplate(outbox.KindAcknowledgement, outbox.TemplateSource{
		Subject: "Billing received case {{.Case.Number}}", Text: "Our billing team ({{.Queue}}) answers within a day."})
	require.NoError(t, err)
	ack, err := outbox.NewAcknowledger(s, &outbox.AckOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test",
		QueueTemplates: map[string]*outbox.Template{"billing": billing}})
	require.NoError(t, err)
	for _, q := range []string{"billing", "general"} {
		p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: q, Address: "support@company.example", DefaultQueue: q},
			Responders: []mailcase.Responder{ack}})
		require.NoError(t, err)
		res, err := p.Process(t.Context(), inbound("qt-"+q+"@customer.example", "ann@customer.example", "Invoice"), nil)
		require.NoError(t, err)
		l, err := s.ListOutbox(t.Context(), &driver.OutboxListOptions{CaseID: res.Outcome.CaseID})
		require.NoError(t, err)
		require.Len(t, l, 1)
		m, _, err := s.GetOutbox(t.Context(), l[0].ID)
		require.NoError(t, err)
		if q == "billing" {
			assert.Contains(t, string(m.Raw), "Subject: Billing received case "+res.Outcome.CaseNumber+"\r\n")
			assert.Contains(t, string(m.Raw), "Our billing team (billing)")
		} else {
			assert.NotContains(t, string(m.Raw), "Billing received")
		}
	}
}

// The only answer of a new case failing to compose is recorded as failed,
// not taken for an answer queued by an earlier filing.
func TestCaseResponder_OnlyAnswerFails(t *testing.T) {
	s := sqliteStore(t)
	bad := &failingAnswer{}
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Responders: []mailcase.Responder{bad}})
	require.NoError(t, err)
	res, err := p.Process(t.Context(), inbound("only@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
	assert.Equal(t, "failed: template exploded for case "+res.Outcome.CaseNumber, respondStep(res))
}
