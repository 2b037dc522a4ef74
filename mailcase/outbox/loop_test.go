package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

// instance is one complete installation: its store, its pipeline with
// threading, bounces and acknowledgements, and a deliverer sending through
// SMTP to the server its outgoing mail goes to. Its own mailbox is fed
// from the SMTP server that receives mail for it (inbox).
type instance struct {
	name, addr string
	store      *mailcase.Store
	pipe       *mailcase.Pipeline
	deliver    *outbox.Deliverer
	inbox      *smtptest.Server
	fed        int // messages of inbox already processed
}

func newInstance(t *testing.T, name, addr string, relay *smtptest.Server) *instance {
	t.Helper()
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	key, domain := []byte(name+"-key-0123456789abcdef0123456789"), strings.Split(addr, "@")[1]
	codec, err := threading.NewCodec(key, domain)
	require.NoError(t, err)
	res, err := threading.NewResolver(st, &threading.Options{Key: key, Domain: domain, OwnAddresses: []string{addr}})
	require.NoError(t, err)
	b := outbox.NewBounces(st, nil)
	ack, err := outbox.NewAcknowledger(st, &outbox.AckOptions{From: mail.Address{Name: name + " Support", Address: addr},
		LoopID: "emailcrm " + name, Codec: codec, Bounces: b})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: addr},
		Threads: res, Bounces: b, Responders: []mailcase.Responder{ack}})
	require.NoError(t, err)
	tr, err := smtpsender.New(relay.Addr, smtpsender.Login{}, &smtpsender.Options{Security: smtpsender.Insecure})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	d, err := outbox.NewDeliverer(st, tr, nil)
	require.NoError(t, err)
	return &instance{name: name, addr: addr, store: st, pipe: p, deliver: d}
}

// step feeds the instance's new inbound mail to its pipeline and delivers
// its outbox; it returns how many messages it sent.
func (in *instance) step(t *testing.T, ctx context.Context) int {
	t.Helper()
	msgs := in.inbox.Messages()
	for ; in.fed < len(msgs); in.fed++ {
		_, err := in.pipe.Process(ctx, msgs[in.fed].Data, nil)
		require.NoError(t, err)
	}
	st, err := in.deliver.DeliverDue(ctx)
	require.NoError(t, err)
	return st.Sent
}

func human(from, to, id, subject, extra string) []byte {
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n%s\r\nHello.\r\n", from, to, subject, id, extra))
}

// Two installations acknowledging each other's mail through real SMTP: the
// exchange stops by itself, and a human reply afterwards still gets
// through.
func TestLoop_TwoInstances(t *testing.T) {
	ctx := t.Context()
	srvA := smtptest.Start(t, &smtptest.Options{Security: "insecure"}) // receives mail for A
	srvB := smtptest.Start(t, &smtptest.Options{Security: "insecure"}) // receives mail for B
	a := newInstance(t, "alpha", "support@alpha.example", srvB)
	b := newInstance(t, "beta", "support@beta.example", srvA)
	a.inbox, b.inbox = srvA, srvB

	// Someone at B's support writes to A's support (a forwarding rule, a
	// misconfigured alias): each side now talks to the other's robot.
	_, err := a.pipe.Process(ctx, human("support@beta.example", "support@alpha.example", "start@beta.example", "Partner question", ""), nil)
	require.NoError(t, err)
	total := 0
	for range 50 {
		n := a.step(t, ctx) + b.step(t, ctx)
		total += n
		if n == 0 {
			break
		}
	}
	t.Logf("messages exchanged between the two instances: %d", total)
	assert.LessOrEqual(t, total, 20)
	assert.Equal(t, 1, total, "A acknowledges once; B files the acknowledgement as automatic mail and answers nothing")

	// A human at B now replies to A's acknowledgement: it threads to A's case.
	ackMsg := srvB.Messages()[0].Data
	m, err := mail.ReadMessage(bytes.NewReader(ackMsg))
	require.NoError(t, err)
	reply := human("support@beta.example", "support@alpha.example", "human-reply@beta.example", "Re: "+m.Header.Get("Subject"),
		"In-Reply-To: "+m.Header.Get("Message-Id")+"\r\n")
	res, err := a.pipe.Process(ctx, reply, nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionAppended, res.Outcome.Action, "a human reply still gets through")
	list, err := a.store.ListOutbox(ctx, &driver.OutboxListOptions{})
	require.NoError(t, err)
	assert.Len(t, list, 1, "and is not acknowledged again")
}

// Against an out-of-office responder that ignores every header: it
// answers every mail with a new mail (new Message-ID, no In-Reply-To, no
// Auto-Submitted). The per-address limit ends the exchange.
func TestLoop_OutOfOfficeIgnoringHeaders(t *testing.T) {
	ctx := t.Context()
	srvA := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	srvOOO := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	a := newInstance(t, "alpha", "support@alpha.example", srvOOO)
	a.inbox = srvA
	ooo, err := smtpsender.New(srvA.Addr, smtpsender.Login{}, &smtpsender.Options{Security: smtpsender.Insecure})
	require.NoError(t, err)
	defer ooo.Close()

	_, err = a.pipe.Process(ctx, human("bob@partner.example", "support@alpha.example", "q1@partner.example", "Question", ""), nil)
	require.NoError(t, err)
	total, answered := 0, 0
	for i := range 100 {
		n := a.step(t, ctx)
		total += n
		got := srvOOO.Messages()
		for ; answered < len(got); answered++ {
			_, err := mail.ReadMessage(bytes.NewReader(got[answered].Data))
			require.NoError(t, err)
			// A fresh subject and Message-ID, nothing of the mail it answers:
			// every answer opens a new case.
			raw := human("bob@partner.example", "support@alpha.example", fmt.Sprintf("ooo-%d-%d@partner.example", i, answered),
				fmt.Sprintf("I am away until Monday (%d)", answered), "")
			require.NoError(t, ooo.Send(ctx, "bob@partner.example", []string{"support@alpha.example"}, raw))
			total++
		}
		if n == 0 && answered == len(got) && a.fed == len(srvA.Messages()) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("messages exchanged with a header-blind out-of-office responder: %d", total)
	assert.LessOrEqual(t, total, 20)
	acks, err := a.store.ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindAcknowledgement})
	require.NoError(t, err)
	assert.Len(t, acks, 3, "the per-address limit (3 in 10 minutes) ends the exchange")
}
