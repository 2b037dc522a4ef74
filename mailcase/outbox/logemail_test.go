package outbox_test

import (
	"fmt"
	"io"
	"net/mail"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

type logRig struct {
	s      *mailcase.Store
	p      *mailcase.Pipeline
	mailer *outbox.Mailer
	tr     *scripted
	d      *outbox.Deliverer
	c      mailcase.Case
}

func newLogRig(t *testing.T, subjectToken bool) *logRig {
	t.Helper()
	r := &logRig{s: newStore(t), tr: &scripted{}}
	key, domain := []byte("log-email-test-key-0123456789abcdef"), "company.example"
	codec, err := threading.NewCodec(key, domain)
	require.NoError(t, err)
	res, err := threading.NewResolver(r.s, &threading.Options{Key: key, Domain: domain, OwnAddresses: []string{"support@company.example"}})
	require.NoError(t, err)
	r.p, err = mailcase.NewPipeline(r.s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Threads: res, Extractor: threading.NewExtractor(nil)})
	require.NoError(t, err)
	r.mailer, err = outbox.NewMailer(r.s, &outbox.MailerOptions{From: mail.Address{Name: "Support", Address: "support@company.example"},
		Codec: codec, SubjectToken: subjectToken})
	require.NoError(t, err)
	r.d, err = outbox.NewDeliverer(r.s, r.tr, nil)
	require.NoError(t, err)
	first, err := r.p.Process(t.Context(), inbound("first@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, first.Outcome.Action)
	var ok bool
	r.c, ok, err = r.s.GetCase(t.Context(), first.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	return r
}

// send writes a Log Email, delivers it and returns the message received.
func (r *logRig) send(t *testing.T, key string) *mail.Message {
	t.Helper()
	_, err := r.mailer.LogEmail(t.Context(), &outbox.LogEmail{Key: key, Case: r.c.ID,
		Agent: mailcase.Employee{Name: "Bob Agent", Email: "bob@company.example"}, Body: "We replaced the drum."})
	require.NoError(t, err)
	_, err = r.d.DeliverDue(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, r.tr.got)
	m, err := mail.ReadMessage(strings.NewReader(r.tr.got[len(r.tr.got)-1].raw))
	require.NoError(t, err)
	return m
}

func TestLogEmail_Headers(t *testing.T) {
	r := newLogRig(t, false)
	m := r.send(t, "le-1")
	assert.Equal(t, []string{"ann@customer.example"}, r.tr.got[0].to, "To defaults to the sender of the last inbound mail")
	assert.Equal(t, "Re: About Case "+r.c.Number+" :: Printer jams", m.Header.Get("Subject"))
	assert.Equal(t, "<first@customer.example>", m.Header.Get("In-Reply-To"))
	assert.Equal(t, "<first@customer.example>", m.Header.Get("References"))
	assert.NotEmpty(t, m.Header.Get("Thread-Index"))
	body, err := io.ReadAll(m.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), "We replaced the drum.")
	assert.Contains(t, string(body), "Bob Agent")
	assert.Contains(t, string(body), "Case reference: ")

	// The Log Email is on the case's timeline, as an outbound mail.
	ins, err := r.s.ListInteractions(t.Context(), r.c.ID)
	require.NoError(t, err)
	var out []string
	for _, in := range ins {
		if in.Email != nil && in.Email.Direction == driver.Outbound {
			out = append(out, in.Email.MessageID)
		}
	}
	assert.Equal(t, []string{strings.Trim(m.Header.Get("Message-Id"), "<>")}, out)

	// The same key again: nothing filed or queued twice.
	_, err = r.mailer.LogEmail(t.Context(), &outbox.LogEmail{Key: "le-1", Case: r.c.ID, Body: "We replaced the drum."})
	require.NoError(t, err)
	l, err := r.s.ListOutbox(t.Context(), &driver.OutboxListOptions{Kind: outbox.KindLogEmail})
	require.NoError(t, err)
	assert.Len(t, l, 1)

	_, err = r.mailer.LogEmail(t.Context(), &outbox.LogEmail{Key: "le-2", Case: r.c.ID, Body: "x",
		Cc: []mail.Address{{Address: "evil@x\r\nBcc: a@b"}}})
	require.ErrorIs(t, err, outbox.ErrInvalidAddress)
	l, err = r.s.ListOutbox(t.Context(), &driver.OutboxListOptions{})
	require.NoError(t, err)
	assert.Len(t, l, 1, "nothing queued for a refused recipient")
}

// A reply to a Log Email threads back through each signal on its own.
func TestLogEmail_ReplyThreadsBack(t *testing.T) {
	tests := []struct {
		name   string
		token  bool
		reply  func(m *mail.Message, body string) (headers, subject, text string)
		signal string
	}{
		{"signed Message-ID", false, func(m *mail.Message, _ string) (string, string, string) {
			return "In-Reply-To: " + m.Header.Get("Message-Id") + "\r\n", "Thanks", "Works now."
		}, threading.SignalMessageIDSigned},
		{"References only", false, func(m *mail.Message, _ string) (string, string, string) {
			return "References: " + m.Header.Get("Message-Id") + "\r\n", "Thanks", "Works now."
		}, threading.SignalMessageIDSigned},
		{"Apple Mail's rewritten References", false, func(m *mail.Message, _ string) (string, string, string) {
			return "References: " + m.Header.Get("Message-Id") + " <7A1C9E2F-0B3D-4E5F-8A9B-1C2D3E4F5A6B@icloud.com>\r\n" +
				"In-Reply-To: <7A1C9E2F-0B3D-4E5F-8A9B-1C2D3E4F5A6B@icloud.com>\r\n", "Re: " + m.Header.Get("Subject"), "Works now."
		}, threading.SignalMessageIDSigned},
		{"subject number only", false, func(m *mail.Message, _ string) (string, string, string) {
			return "", m.Header.Get("Subject"), "Works now."
		}, threading.SignalSubjectNumber},
		{"subject token only", true, func(m *mail.Message, _ string) (string, string, string) {
			s := m.Header.Get("Subject")
			return "", "Fwd: something else " + s[strings.Index(s, "[ref:"):], "Works now."
		}, threading.SignalTokenSubject},
		{"body context ID only", false, func(_ *mail.Message, body string) (string, string, string) {
			i := strings.Index(body, "Case reference: ")
			return "", "Different subject", "Works now.\r\n\r\n> " + strings.TrimSpace(body[i:])
		}, threading.SignalContextID},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newLogRig(t, tc.token)
			m := r.send(t, "le")
			b, err := io.ReadAll(m.Body)
			require.NoError(t, err)
			headers, subject, text := tc.reply(m, string(b))
			raw := fmt.Sprintf("From: Ann <ann@customer.example>\r\nTo: support@company.example\r\nSubject: %s\r\nMessage-ID: <reply-%d@customer.example>\r\n%s\r\n%s\r\n",
				subject, i, headers, text)
			res, err := r.p.Process(t.Context(), []byte(raw), nil)
			require.NoError(t, err)
			assert.Equal(t, mailcase.ActionAppended, res.Outcome.Action)
			assert.Equal(t, r.c.ID, res.Outcome.CaseID)
			require.NotNil(t, res.Outcome.Thread)
			assert.Equal(t, tc.signal, res.Outcome.Thread.Signal)
		})
	}
}

// A Mailer over a paired outbox (MailerOptions.Cases) reads and files the
// Log Email on the case store and queues it in the outbox's store only.
func TestLogEmail_PairedOutbox(t *testing.T) {
	r := newLogRig(t, false)
	ob := newStore(t)
	key, domain := []byte("log-email-test-key-0123456789abcdef"), "company.example"
	codec, err := threading.NewCodec(key, domain)
	require.NoError(t, err)
	m, err := outbox.NewMailer(ob, &outbox.MailerOptions{From: mail.Address{Address: "support@company.example"},
		Codec: codec, Cases: r.s})
	require.NoError(t, err)
	id, err := m.LogEmail(t.Context(), &outbox.LogEmail{Key: "paired-1", Case: r.c.ID, Body: "Fixed."})
	require.NoError(t, err)

	tl, err := r.s.ListInteractions(t.Context(), r.c.ID)
	require.NoError(t, err)
	var out *mailcase.Email
	for _, in := range tl {
		if in.Email != nil && in.Email.Direction == driver.Outbound {
			out = in.Email
		}
	}
	require.NotNil(t, out, "the Log Email is filed on the case store")
	got, ok, err := ob.GetOutbox(t.Context(), id)
	require.NoError(t, err)
	require.True(t, ok, "queued in the paired outbox")
	assert.Equal(t, out.MessageID, got.MessageID)
	_, ok, err = r.s.GetOutbox(t.Context(), id)
	if err == nil {
		assert.False(t, ok, "nothing queued in the case store")
	}
}
