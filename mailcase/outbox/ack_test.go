package outbox_test

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

func inbound(id, from, subject string, extra ...string) []byte {
	return []byte(fmt.Sprintf("From: Ann <%s>\r\nTo: support@company.example\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n%s\r\nThe printer jams.\r\n",
		from, subject, id, strings.Join(extra, "")))
}

type ackRig struct {
	s    *mailcase.Store
	p    *mailcase.Pipeline
	b    *outbox.Bounces
	now  time.Time
	code *threading.Codec
}

func newAckRig(t *testing.T) *ackRig {
	t.Helper()
	r := &ackRig{now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return r.now }
	var err error
	// The limits count by the store's clock: one clock for both.
	r.s, err = memstore.OpenStore(&memstore.Options{Now: clock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.s.Close() })
	r.code, err = threading.NewCodec([]byte("0123456789abcdef0123456789abcdef"), "company.example")
	require.NoError(t, err)
	r.b = outbox.NewBounces(r.s, &outbox.BounceOptions{Now: clock})
	ack, err := outbox.NewAcknowledger(r.s, &outbox.AckOptions{From: mail.Address{Name: "Support", Address: "support@company.example"},
		LoopID: "emailcrm test-install", Codec: r.code, OwnAddresses: []string{"billing@company.example"}, Bounces: r.b, Now: clock})
	require.NoError(t, err)
	r.p, err = mailcase.NewPipeline(r.s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Responders: []mailcase.Responder{ack}, Bounces: r.b, Now: clock})
	require.NoError(t, err)
	return r
}

func (r *ackRig) process(t *testing.T, raw []byte) *mailcase.Result {
	t.Helper()
	res, err := r.p.Process(t.Context(), raw, nil)
	require.NoError(t, err)
	return res
}

func (r *ackRig) acks(t *testing.T) []driver.OutboxMessage {
	t.Helper()
	l, err := r.s.ListOutbox(t.Context(), &driver.OutboxListOptions{Kind: outbox.KindAcknowledgement})
	require.NoError(t, err)
	return l
}

func respondStep(res *mailcase.Result) string {
	for _, s := range res.Outcome.Steps {
		if s.Stage == "respond" {
			return s.Decision + ": " + s.Reason
		}
	}
	return ""
}

func TestAcknowledger_NewCase(t *testing.T) {
	r := newAckRig(t)
	res := r.process(t, inbound("m1@customer.example", "ann@customer.example", "Printer jams"))
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
	assert.Contains(t, respondStep(res), "responded: acknowledgement queued for ann@customer.example")
	acks := r.acks(t)
	require.Len(t, acks, 1)
	a, _, err := r.s.GetOutbox(t.Context(), acks[0].ID)
	require.NoError(t, err)
	assert.Equal(t, res.Outcome.CaseID, a.CaseID)
	assert.Equal(t, []string{"ann@customer.example"}, a.To)
	assert.Equal(t, "support@company.example", a.From)
	msg, err := mail.ReadMessage(bytes.NewReader(a.Raw))
	require.NoError(t, err)
	assert.Equal(t, "auto-replied", msg.Header.Get("Auto-Submitted"))
	assert.Equal(t, "All", msg.Header.Get("X-Auto-Response-Suppress"))
	assert.Equal(t, "bulk", msg.Header.Get("Precedence"))
	assert.Equal(t, "emailcrm test-install", msg.Header.Get(mailcase.LoopHeader))
	assert.Equal(t, "<m1@customer.example>", msg.Header.Get("In-Reply-To"))
	assert.Equal(t, "Re: About Case "+res.Outcome.CaseNumber+" :: Printer jams", msg.Header.Get("Subject"), "the threading package's subject, with the case number")
	cid, ok := r.code.ParseMessageID(strings.Trim(msg.Header.Get("Message-Id"), "<>"))
	assert.True(t, ok, "the Message-ID is signed")
	assert.Equal(t, res.Outcome.CaseID, cid)

	// The same mail again: a duplicate, no second acknowledgement.
	r.process(t, inbound("m1@customer.example", "ann@customer.example", "Printer jams"))
	assert.Len(t, r.acks(t), 1)
	// A reply on the case: no acknowledgement.
	res = r.process(t, inbound("m2@customer.example", "ann@customer.example", "Re: Printer jams", "In-Reply-To: <m1@customer.example>\r\n"))
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action)
	assert.Len(t, r.acks(t), 1)

	// The acknowledgement comes back to the mailbox (a loop through a
	// forwarding rule): automatic mail, filed, never acknowledged.
	res = r.process(t, a.Raw)
	assert.True(t, res.Outcome.Auto.IsAuto)
	assert.Len(t, r.acks(t), 1)
}

func TestAcknowledger_NeverAnswers(t *testing.T) {
	tests := []struct {
		name, from string
		extra      []string
		why        string
	}{
		{"no-reply address", "no-reply@shop.example", nil, "no-reply@shop.example is a no-reply or system address"},
		{"mailer-daemon", "MAILER-DAEMON@mx.example", nil, ""}, // automatic mail already
		{"list request", "announce-request@lists.example", nil, "is a no-reply or system address"},
		{"own address", "billing@company.example", nil, "billing@company.example is one of our own addresses"},
		{"auto-submitted", "ann@customer.example", []string{"Auto-Submitted: auto-generated\r\n"}, ""},
		{"list mail", "ann@customer.example", []string{"List-Id: <news.customer.example>\r\n"}, "no acknowledgement: list or bulk mail"},
		{"empty return path", "ann@customer.example", []string{"Return-Path: <>\r\n"}, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newAckRig(t)
			res := r.process(t, inbound(fmt.Sprintf("n%d@x.example", i), tc.from, "Hello", tc.extra...))
			assert.Empty(t, r.acks(t))
			if tc.why != "" {
				assert.Contains(t, respondStep(res), tc.why)
			}
		})
	}
}

func TestAcknowledger_Limits(t *testing.T) {
	r := newAckRig(t)
	for i := range 5 {
		res := r.process(t, inbound(fmt.Sprintf("l%d@customer.example", i), "ann@customer.example", fmt.Sprintf("Issue %d", i)))
		require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
		if i >= 3 {
			assert.Contains(t, respondStep(res), "no acknowledgement: 3 already sent to ann@customer.example in 10m0s (limit)")
		}
	}
	assert.Len(t, r.acks(t), 3, "at most 3 acknowledgements to one address in 10 minutes")
	r.now = r.now.Add(11 * time.Minute)
	res := r.process(t, inbound("l9@customer.example", "ann@customer.example", "Later"))
	assert.Contains(t, respondStep(res), "acknowledgement queued", "the 10-minute window has passed (5 an hour still allows it)")
	r.now = r.now.Add(time.Minute)
	res = r.process(t, inbound("l10@customer.example", "ann@customer.example", "Later still"))
	assert.Contains(t, respondStep(res), "acknowledgement queued", "the fifth in the hour")
	r.now = r.now.Add(time.Minute)
	res = r.process(t, inbound("l11@customer.example", "ann@customer.example", "Sixth"))
	assert.Contains(t, respondStep(res), "no acknowledgement: 5 already sent to ann@customer.example in 1h0m0s (limit)")
	res = r.process(t, inbound("other@customer.example", "bob@customer.example", "Other"))
	assert.Contains(t, respondStep(res), "acknowledgement queued for bob@customer.example", "the limit is per address")
}

func TestAcknowledger_SuppressedAfterBounce(t *testing.T) {
	r := newAckRig(t)
	res := r.process(t, inbound("b1@customer.example", "gone@customer.example", "First"))
	acks := r.acks(t)
	require.Len(t, acks, 1, respondStep(res))
	claimed, err := r.s.ClaimOutbox(t.Context(), "t", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, r.s.FinishOutbox(t.Context(), claimed[0].ID, "t", &driver.OutboxResult{Status: driver.OutboxSent}))
	require.NoError(t, r.b.HandleBounce(t.Context(), &mailcase.Delivery{Bounce: mailcase.BounceInfo{IsBounce: true, Permanent: true,
		OriginalMessageID: acks[0].MessageID, Recipient: "gone@customer.example", Status: "5.1.1"}}))
	res = r.process(t, inbound("b2@customer.example", "gone@customer.example", "Second"))
	assert.Contains(t, respondStep(res), "no acknowledgement: mail to gone@customer.example bounced; suppressed until 2027-02-05")
	assert.Len(t, r.acks(t), 1)
}
