package outbox_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// A permanent bounce of a message the outbox sent marks it bounced, notes
// the case and suppresses automatic mail to the recipient; the same
// notification delivered again changes nothing more.
func TestBounces_ClosesTheLoop(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "Order", First: &mailcase.Email{
		IdempotencyKey: "support\x00first", MessageID: "first@customer.example",
		From: mailcase.Address{Email: "gone@customer.example"}, Subject: "Order"}})
	require.NoError(t, err)
	id, err := s.Enqueue(ctx, &driver.OutboxMessage{Key: "support\x00reply1", CaseID: c.ID, Mailbox: "support", Kind: "log-email",
		From: "support@example.com", To: []string{"gone@customer.example"}, MessageID: "<case42.reply1@support.example.com>",
		Raw: []byte("Subject: reply\r\n\r\nx\r\n")})
	require.NoError(t, err)
	d, err := outbox.NewDeliverer(s, &scripted{}, nil)
	require.NoError(t, err)
	_, err = d.DeliverDue(ctx)
	require.NoError(t, err)

	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b := outbox.NewBounces(s, &outbox.BounceOptions{Suppress: 48 * time.Hour, Now: func() time.Time { return now }})
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Bounces: b, Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com"}})
	require.NoError(t, err)
	raw, err := os.ReadFile("../testdata/corpus/dsn-postfix.eml")
	require.NoError(t, err)

	res, err := p.Process(ctx, raw, nil)
	require.NoError(t, err)
	assert.True(t, res.Outcome.Bounce.IsBounce)
	// Redelivered: the pipeline knows the mail; the bounce handler is idempotent
	// on its own too (called again directly).
	res, err = p.Process(ctx, raw, nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionDuplicate, res.Outcome.Action)
	require.NoError(t, b.HandleBounce(ctx, &mailcase.Delivery{Bounce: mailcase.BounceInfo{IsBounce: true, Permanent: true,
		OriginalMessageID: "case42.reply1@support.example.com", Recipient: "gone@customer.example", Status: "5.1.1"}}))
	m, _, err := s.GetOutbox(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxBounced, m.Status)
	assert.Equal(t, "bounced 5.1.1 for gone@customer.example", m.LastError)
	n := notes(t, s, c.ID)
	require.Len(t, n, 1, "one note, however often the notification comes")
	assert.Contains(t, n[0], `The mail "case42.reply1@support.example.com" bounced 5.1.1 for gone@customer.example`)

	until, sup, err := b.Suppressed(ctx, "Gone@Customer.example")
	require.NoError(t, err)
	assert.True(t, sup, "the recipient is suppressed, whatever the address's case")
	assert.Equal(t, now.Add(48*time.Hour), until)
	_, sup, err = b.Suppressed(ctx, "other@customer.example")
	require.NoError(t, err)
	assert.False(t, sup)
	later := outbox.NewBounces(s, &outbox.BounceOptions{Now: func() time.Time { return now.Add(49 * time.Hour) }})
	_, sup, err = later.Suppressed(ctx, "gone@customer.example")
	require.NoError(t, err)
	assert.False(t, sup, "the suppression ends")
}

// A forged report naming a recipient the message was never sent to
// suppresses nobody.
func TestBounces_ForgedRecipient(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	c, id := queue(t, s, 1)
	d, err := outbox.NewDeliverer(s, &scripted{}, nil)
	require.NoError(t, err)
	_, err = d.DeliverDue(ctx)
	require.NoError(t, err)
	b := outbox.NewBounces(s, nil)
	require.NoError(t, b.HandleBounce(ctx, &mailcase.Delivery{Bounce: mailcase.BounceInfo{IsBounce: true, Permanent: true,
		OriginalMessageID: "ack-1@company.example", Recipient: "victim@elsewhere.example", Status: "5.1.1"}}))
	_, sup, err := b.Suppressed(ctx, "victim@elsewhere.example")
	require.NoError(t, err)
	assert.False(t, sup)
	m, _, err := s.GetOutbox(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, driver.OutboxSent, m.Status)
	assert.Empty(t, notes(t, s, c.ID))
}

// A bounce about mail the outbox never sent changes nothing.
func TestBounces_ForeignMessage(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	b := outbox.NewBounces(s, nil)
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Bounces: b, Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com"}})
	require.NoError(t, err)
	raw, err := os.ReadFile("../testdata/corpus/dsn-postfix.eml")
	require.NoError(t, err)
	res, err := p.Process(ctx, raw, nil)
	require.NoError(t, err)
	assert.True(t, res.Outcome.Bounce.IsBounce)
	_, sup, err := b.Suppressed(ctx, "gone@customer.example")
	require.NoError(t, err)
	assert.False(t, sup)
}
