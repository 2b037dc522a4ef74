package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// A bounce of the owner's own notification notifies nobody (else an owner
// address that bounces gets one more notification per bounce, forever);
// the bounce of a reply to the customer notifies the owner once.
func TestNotifier_BounceOfItsOwnNotification(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	owner := "owner@company.example"
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "Order", First: &mailcase.Email{IdempotencyKey: "support\x00first",
		MessageID: "first@customer.example", From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Order"}})
	require.NoError(t, err)
	_, err = s.UpdateCase(ctx, c.ID, &mailcase.CaseUpdate{Owner: &owner})
	require.NoError(t, err)
	for _, m := range []struct{ key, kind, id string }{{"n1", outbox.KindNotification, "note1@company.example"}, {"r1", outbox.KindLogEmail, "reply1@company.example"}} {
		_, err = s.Enqueue(ctx, &driver.OutboxMessage{Key: m.key, CaseID: c.ID, Kind: m.kind, From: "support@company.example",
			To: []string{owner}, MessageID: m.id, Raw: []byte("Subject: x\r\n\r\nx\r\n")})
		require.NoError(t, err)
	}
	n, err := outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", NotifyOwner: true})
	require.NoError(t, err)
	bounce := func(orig string) (string, error) {
		return n.Respond(ctx, &mailcase.Delivery{Key: "support\x00bounce-of-" + orig, Mailbox: &mailcase.Mailbox{Name: "support"}},
			&mailcase.Result{Message: &mailcase.Message{ID: "dsn-" + orig, From: mailcase.Address{Email: "mailer-daemon@mx.company.example"}},
				Outcome: mailcase.Outcome{Action: mailcase.ActionAppended, CaseID: c.ID,
					Bounce: mailcase.BounceInfo{IsBounce: true, OriginalMessageID: orig, Recipient: owner}}})
	}
	what, err := bounce("note1@company.example")
	require.NoError(t, err)
	assert.Empty(t, what)
	l, err := s.ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindNotification})
	require.NoError(t, err)
	assert.Len(t, l, 1, "no notification about the bounce of a notification")

	what, err = bounce("reply1@company.example")
	require.NoError(t, err)
	assert.Equal(t, "notification to owner@company.example (bounce) queued", what)
}

// The installation's own addresses are never notified, and a failing
// owner lookup is an error, not a silently dropped notification.
func TestNotifier_OwnAddressesAndOwnerLookup(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	lookupErr := errors.New("directory down")
	n, err := outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test",
		OwnAddresses: []string{"Billing@Company.example"}, NotifyOwner: true,
		OwnerAddress: func(context.Context, string) (string, error) { return "", lookupErr },
		QueueMembers: map[string][]string{"general": {"support@company.example", "billing@company.example", "alice@company.example"}}})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "general"},
		Responders: []mailcase.Responder{n}})
	require.NoError(t, err)
	res, err := p.Process(ctx, inbound("own1@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	l, err := s.ListOutbox(ctx, &driver.OutboxListOptions{})
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, []string{"alice@company.example"}, l[0].To, "never the mailbox itself nor another of our addresses")

	owner := "bob"
	_, err = s.UpdateCase(ctx, res.Outcome.CaseID, &mailcase.CaseUpdate{Owner: &owner})
	require.NoError(t, err)
	reply, err := p.Process(ctx, inbound("own2@customer.example", "ann@customer.example", "Re: Printer jams", "In-Reply-To: <own1@customer.example>\r\n"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionAppended, reply.Outcome.Action)
	assert.Contains(t, respondStep(reply), "failed: outbox: notification: owner address of \"bob\": directory down")
}

// The ladder per case stops a flood of replies from notifying the owner
// without end; the internal address is not limited.
func TestNotifier_CaseLimits(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	n, err := outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test",
		NotifyOwner: true, ForwardReplies: true, Internal: mail.Address{Address: "internal@company.example"},
		CaseLimits: []outbox.Limit{{Window: time.Hour, Max: 2}}})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Responders: []mailcase.Responder{n}})
	require.NoError(t, err)
	res, err := p.Process(ctx, inbound("cl0@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	owner := "owner@company.example"
	_, err = s.UpdateCase(ctx, res.Outcome.CaseID, &mailcase.CaseUpdate{Owner: &owner})
	require.NoError(t, err)
	var last *mailcase.Result
	for i := 1; i <= 4; i++ {
		last, err = p.Process(ctx, inbound(fmt.Sprintf("cl%d@customer.example", i), "ann@customer.example", "Re: Printer jams", "In-Reply-To: <cl0@customer.example>\r\n"), nil)
		require.NoError(t, err)
		require.Equal(t, mailcase.ActionAppended, last.Outcome.Action)
	}
	toOwner, err := s.ListOutbox(ctx, &driver.OutboxListOptions{Recipient: owner})
	require.NoError(t, err)
	assert.Len(t, toOwner, 2, "the owner is told of 2 replies an hour on this case")
	toInternal, err := s.ListOutbox(ctx, &driver.OutboxListOptions{Recipient: "internal@company.example"})
	require.NoError(t, err)
	assert.Len(t, toInternal, 4, "every reply is forwarded to the internal address")
	assert.Contains(t, respondStep(last), "no notification to owner@company.example: 2 already sent in 1h0m0s on this case (limit)")
}
