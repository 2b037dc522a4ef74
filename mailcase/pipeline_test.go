package mailcase_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

func TestNewPipeline_Validation(t *testing.T) {
	s := plStore(t)
	tests := []struct {
		name string
		opts mailcase.Options
	}{
		{name: "negative attempts", opts: mailcase.Options{MaxAttempts: -1}},
		{name: "negative delay", opts: mailcase.Options{RetryDelay: -1}},
		{name: "negative concurrency", opts: mailcase.Options{MaxConcurrency: -2}},
		{name: "negative drain", opts: mailcase.Options{DrainTimeout: -1}},
		{name: "negative ack timeout", opts: mailcase.Options{AckTimeout: -1}},
		{name: "bad unknown policy", opts: mailcase.Options{Mailbox: mailcase.Mailbox{UnknownSender: "bounce"}}},
		{name: "bad ambiguity policy", opts: mailcase.Options{Mailbox: mailcase.Mailbox{Ambiguity: "random"}}},
		{name: "bad max size", opts: mailcase.Options{Mailbox: mailcase.Mailbox{MaxSize: -5}}},
		{name: "bad address", opts: mailcase.Options{Mailbox: mailcase.Mailbox{Address: "not an address"}}},
		{name: "bad blocked address", opts: mailcase.Options{Mailbox: mailcase.Mailbox{BlockAddresses: []string{"nobody"}}}},
		{name: "bad blocked domain", opts: mailcase.Options{Mailbox: mailcase.Mailbox{BlockDomains: []string{"a b"}}}},
		{name: "control char in name", opts: mailcase.Options{Mailbox: mailcase.Mailbox{Name: "a\x00b"}}},
		{name: "nil filter", opts: mailcase.Options{Filters: []mailcase.Filter{nil}}},
		{name: "empty auth id", opts: mailcase.Options{TrustedAuthServIDs: []string{" "}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mailcase.NewPipeline(s, &tc.opts)
			require.Error(t, err)
			assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
		})
	}
	_, err := mailcase.NewPipeline(nil, nil)
	assert.ErrorIs(t, err, mailcase.ErrInvalidArgument)

	p, err := mailcase.NewPipeline(s, nil)
	require.NoError(t, err)
	mb := p.Mailbox()
	assert.Equal(t, "default", mb.Name)
	assert.Equal(t, "default", mb.DefaultQueue)
}

func TestPipeline_OptionsCopied(t *testing.T) {
	s := plStore(t)
	o := &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", BlockDomains: []string{"spam.example"}}}
	p := plPipeline(t, s, o)
	o.Mailbox.Name = "changed"
	o.Mailbox.BlockDomains[0] = "other.example"
	assert.Equal(t, "support", p.Mailbox().Name)
	res := plProcess(t, p, plMail("x@spam.example", "hi", "c1@x", "body"))
	assert.Equal(t, mailcase.ActionFiltered, res.Outcome.Action)
}

func TestPipeline_NewCase(t *testing.T) {
	s := plStore(t)
	ctx := t.Context()
	c, err := s.CreateContact(ctx, &mailcase.NewContact{Name: "Ann", Email: "ann@customer.example"})
	require.NoError(t, err)
	p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", DefaultQueue: "first-line"}})

	res := plProcess(t, p, plMail("Ann <Ann@Customer.example>", "Printer on fire", "m1@customer.example", "It burns."))
	o := res.Outcome
	assert.Equal(t, mailcase.ActionCreated, o.Action, plSteps(res))
	assert.Equal(t, mailcase.Done, o.Disposition)
	assert.Equal(t, "support\x00m1@customer.example", o.Key)
	require.NotNil(t, o.Sender)
	assert.Equal(t, mailcase.SenderContact, o.Sender.Kind)
	require.NotNil(t, o.Route)
	assert.Equal(t, "first-line", o.Route.Queue)
	require.NotNil(t, o.Thread)
	assert.Equal(t, mailcase.ThreadNew, o.Thread.Action)
	assert.NotEmpty(t, o.CaseNumber)

	got, ok, err := s.GetCase(ctx, o.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "Printer on fire", got.Subject)
	assert.Equal(t, c.ID, got.ContactID)
	assert.Equal(t, "first-line", got.Queue)
	assert.Equal(t, "email", got.Origin)
	mails := plCaseMails(t, s, o.CaseID)
	require.Len(t, mails, 1)
	assert.Equal(t, "m1@customer.example", mails[0].MessageID)
	assert.Contains(t, mails[0].Text, "It burns.")
	assert.Equal(t, mailcase.Inbound, mails[0].Direction)

	wantStages := []string{"receive", "size", "parse", "idempotency", "filter", "auto", "auth", "structured", "sender", "extract", "thread", "route", "file"}
	var stages []string
	for _, st := range o.Steps {
		stages = append(stages, st.Stage)
	}
	assert.Equal(t, wantStages, stages)
	assert.Equal(t, mailcase.Stats{Received: 1, Created: 1}, p.Stats())
}

func TestPipeline_ReplyAppendedViaReferences(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	first := plProcess(t, p, plMail("ann@customer.example", "Login broken", "a1@customer.example", "help"))
	require.Equal(t, mailcase.ActionCreated, first.Outcome.Action)

	// Only References points at the first plMail (In-Reply-To names an
	// unknown plMail): the latest known ID wins.
	raw := plMail("ann@customer.example", "Re: Login broken", "a2@customer.example", "still broken",
		"In-Reply-To: <unknown@elsewhere>", "References: <a1@customer.example> <unknown@elsewhere>")
	res := plProcess(t, p, raw)
	assert.Equal(t, mailcase.ActionAppended, res.Outcome.Action, plSteps(res))
	assert.Equal(t, first.Outcome.CaseID, res.Outcome.CaseID)
	assert.Equal(t, "references", res.Outcome.Thread.Signal)
	assert.Len(t, plCaseMails(t, s, first.Outcome.CaseID), 2)
	assert.Len(t, plCases(t, s), 1)
}

func TestPipeline_ReplyToClosedCaseReopens(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	first := plProcess(t, p, plMail("ann@customer.example", "Question", "q1@customer.example", "?"))
	closed := mailcase.StatusClosed
	_, err := s.UpdateCase(t.Context(), first.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)

	res := plProcess(t, p, plReply("ann@customer.example", "Question", "q2@customer.example", "q1@customer.example"))
	assert.Equal(t, mailcase.ActionReopened, res.Outcome.Action, plSteps(res))
	c, _, err := s.GetCase(t.Context(), first.Outcome.CaseID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.StatusOpen, c.Status)
	assert.Len(t, plCaseMails(t, s, c.ID), 2)
	assert.Equal(t, int64(1), p.Stats().Reopened)
}

func TestPipeline_DuplicateDelivery(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	raw := plMail("ann@customer.example", "Twice", "d1@customer.example", "once")
	first := plProcess(t, p, raw)
	second := plProcess(t, p, raw)
	assert.Equal(t, mailcase.ActionDuplicate, second.Outcome.Action)
	assert.Equal(t, mailcase.Done, second.Outcome.Disposition)
	assert.Equal(t, first.Outcome.CaseID, second.Outcome.CaseID)
	assert.Len(t, plCases(t, s), 1)

	// Without Message-ID the key is derived from the bytes.
	noID := plMail("bob@customer.example", "No id", "", "body")
	r1 := plProcess(t, p, noID)
	r2 := plProcess(t, p, noID)
	assert.Equal(t, mailcase.ActionCreated, r1.Outcome.Action)
	assert.Equal(t, mailcase.ActionDuplicate, r2.Outcome.Action)
	assert.True(t, r1.Message.IDDerived)
	r3 := plProcess(t, p, plMail("bob@customer.example", "No id", "", "other body"))
	assert.Equal(t, mailcase.ActionCreated, r3.Outcome.Action)
	assert.Equal(t, int64(2), p.Stats().Duplicates)
}

func TestPipeline_Filtered(t *testing.T) {
	tests := []struct {
		name     string
		from     string
		keepBody bool
		rule     string
	}{
		{name: "blocked address", from: "Spammer <SPAM@Example.org>", rule: "block-address"},
		{name: "blocked domain", from: "news@junk.example", rule: "block-domain"},
		{name: "blocked subdomain", from: "news@plMail.junk.example", rule: "block-domain"},
		{name: "blocked IDN domain", from: "x@bücher.example", rule: "block-domain"},
		{name: "custom filter keeps body", from: "alerts@monitoring.example", keepBody: true, rule: "monitoring"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			f := &mailcasetest.Filter{Rule: "monitoring", Reason: "monitoring noise",
				Drop: func(m *mailcase.Message) bool { return strings.HasPrefix(m.From.Email, "alerts@") }}
			p := plPipeline(t, s, &mailcase.Options{
				Mailbox: mailcase.Mailbox{
					BlockAddresses:   []string{"spam@example.org"},
					BlockDomains:     []string{"junk.example", "BÜCHER.example"},
					KeepFilteredBody: tc.keepBody,
				},
				Filters: []mailcase.Filter{f},
			})
			res := plProcess(t, p, plMail(tc.from, "Offer", "f1@x.example", "secret body"))
			o := res.Outcome
			assert.Equal(t, mailcase.ActionFiltered, o.Action, plSteps(res))
			assert.Equal(t, mailcase.Done, o.Disposition)
			require.NotNil(t, o.Filter)
			assert.Equal(t, tc.rule, o.Filter.Rule)
			assert.Empty(t, plCases(t, s))
			in := plCaseless(t, s)
			require.Len(t, in, 1)
			assert.True(t, in[0].Email.Summary)
			assert.Equal(t, tc.keepBody, strings.Contains(in[0].Email.Text, "secret body"))
			// A redelivery is a duplicate.
			assert.Equal(t, mailcase.ActionDuplicate, plProcess(t, p, plMail(tc.from, "Offer", "f1@x.example", "secret body")).Outcome.Action)
			assert.Equal(t, int64(1), p.Stats().Filtered)
		})
	}
}

func TestPipeline_FilterNotBlockedParentDomain(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{BlockDomains: []string{"plMail.junk.example"}}})
	res := plProcess(t, p, plMail("a@junk.example", "hi", "p1@x", "b"))
	assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action, "a parent of a blocked domain is not blocked")
	res = plProcess(t, p, plMail("a@notjunk.example", "hi", "p2@x", "b"))
	assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
}

const plAutoReplyHeader = "Auto-Submitted: auto-replied"

func TestPipeline_AutoReplyNeverReopens(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	first := plProcess(t, p, plMail("ann@customer.example", "Question", "r1@customer.example", "?"))
	closed := mailcase.StatusClosed
	_, err := s.UpdateCase(t.Context(), first.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)

	raw := plMail("ann@customer.example", "Out of office: Question", "r2@customer.example", "I am away.",
		plAutoReplyHeader, "In-Reply-To: <r1@customer.example>")
	res := plProcess(t, p, raw)
	o := res.Outcome
	assert.True(t, o.Auto.IsAuto, plSteps(res))
	assert.Equal(t, mailcase.ActionAppended, o.Action, plSteps(res))
	assert.Equal(t, first.Outcome.CaseID, o.CaseID)
	c, _, err := s.GetCase(t.Context(), first.Outcome.CaseID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.StatusClosed, c.Status, "a closed case stays closed")
	mails := plCaseMails(t, s, c.ID)
	require.Len(t, mails, 2)
	assert.True(t, mails[1].Auto)

	// An auto-plReply threading nowhere is recorded on the sender's record.
	res = plProcess(t, p, plMail("bob@customer.example", "Automatic reply", "r3@customer.example", "away", plAutoReplyHeader))
	assert.Equal(t, mailcase.ActionRecorded, res.Outcome.Action, plSteps(res))
	assert.Len(t, plCases(t, s), 1)
	assert.Len(t, plCaseless(t, s), 1)
	st := p.Stats()
	assert.Equal(t, int64(2), st.Auto)
	assert.Equal(t, int64(1), st.Recorded)
}

func TestPipeline_AutoWithCustomResolverReopenDecision(t *testing.T) {
	s := plStore(t)
	first := plProcess(t, plPipeline(t, s, nil), plMail("ann@customer.example", "Q", "x1@c.example", "?"))
	closed := mailcase.StatusClosed
	_, err := s.UpdateCase(t.Context(), first.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	tr := &mailcasetest.ThreadResolver{Decision: mailcase.ThreadDecision{Action: mailcase.ThreadReopen, CaseID: first.Outcome.CaseID}}
	p := plPipeline(t, s, &mailcase.Options{Threads: tr})
	res := plProcess(t, p, plMail("ann@customer.example", "Auto: Q", "x2@c.example", "away", plAutoReplyHeader))
	assert.Equal(t, mailcase.ActionAppended, res.Outcome.Action, plSteps(res))
	c, _, _ := s.GetCase(t.Context(), first.Outcome.CaseID)
	assert.Equal(t, mailcase.StatusClosed, c.Status)
}

func plBounce(origID string) []byte {
	return []byte("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n" +
		"To: support@example.com\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <bounce1@mx.example.net>\r\n" +
		"Date: Mon, 02 Mar 2026 11:00:00 +0000\r\n" +
		"Return-Path: <>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n" +
		"--BB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--BB\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" +
		"--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		"From: support@example.com\r\nTo: gone@customer.example\r\nSubject: Re: Your case\r\n" +
		"Message-ID: <" + origID + ">\r\n\r\n" +
		"--BB--\r\n")
}

func TestPipeline_BounceThreadsToOriginalCase(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	first := plProcess(t, p, plMail("gone@customer.example", "Your case", "orig1@customer.example", "hello"))
	require.Equal(t, mailcase.ActionCreated, first.Outcome.Action)

	res := plProcess(t, p, plBounce("orig1@customer.example"))
	o := res.Outcome
	require.True(t, o.Bounce.IsBounce, plSteps(res))
	assert.Equal(t, "orig1@customer.example", o.Bounce.OriginalMessageID)
	assert.Equal(t, mailcase.ActionAppended, o.Action, plSteps(res))
	assert.Equal(t, first.Outcome.CaseID, o.CaseID)
	assert.Equal(t, "bounce-original", o.Thread.Signal)
	assert.Len(t, plCases(t, s), 1)
}

func TestPipeline_Oversized(t *testing.T) {
	big := plMail("Ann <ann@customer.example>", "=?utf-8?q?Gro=C3=9Fe_Datei?=", "big1@customer.example", strings.Repeat("x", 5000))
	t.Run("filed unanalysed", func(t *testing.T) {
		s := plStore(t)
		router := &mailcasetest.Router{Result: mailcase.Route{Queue: "billing"}}
		p := plPipeline(t, s, &mailcase.Options{Router: router, Mailbox: mailcase.Mailbox{MaxSize: 1000, DefaultQueue: "inbox"}})
		res := plProcess(t, p, big)
		o := res.Outcome
		assert.Equal(t, mailcase.ActionCreated, o.Action, plSteps(res))
		assert.Equal(t, "inbox", o.Route.Queue)
		assert.Zero(t, router.Calls(), "oversized plMail is not routed")
		c, _, err := s.GetCase(t.Context(), o.CaseID)
		require.NoError(t, err)
		assert.Equal(t, "Große Datei", c.Subject)
		mails := plCaseMails(t, s, o.CaseID)
		require.Len(t, mails, 1)
		require.Len(t, mails[0].Attachments, 1)
		assert.Equal(t, "original.eml", mails[0].Attachments[0].Filename)
		assert.Equal(t, big, mails[0].Attachments[0].Data, "raw plMail kept intact")
		assert.Equal(t, "big1@customer.example", mails[0].MessageID)
		// Redelivery is a duplicate.
		assert.Equal(t, mailcase.ActionDuplicate, plProcess(t, p, big).Outcome.Action)
	})
	t.Run("rejected to quarantine", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{MaxSize: 1000, RejectOversized: true}})
		res := plProcess(t, p, big)
		o := res.Outcome
		assert.Equal(t, mailcase.ActionQuarantined, o.Action)
		assert.Equal(t, mailcase.Quarantine, o.Disposition)
		assert.Contains(t, o.Error, "too large")
		q, err := s.ListQuarantine(t.Context(), "")
		require.NoError(t, err)
		require.Len(t, q, 1)
		assert.Equal(t, big, q[0].Raw)
		assert.Empty(t, plCases(t, s))
	})
	t.Run("truncated by the source", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, nil)
		hdr := big[:bytes.Index(big, []byte("\r\n\r\n"))+4]
		res, err := p.Process(t.Context(), hdr, &mailcase.ProcessOptions{Truncated: true, Size: 80 << 20})
		require.NoError(t, err)
		assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
		mails := plCaseMails(t, s, res.Outcome.CaseID)
		require.Len(t, mails, 1)
		assert.Equal(t, "original-header.eml", mails[0].Attachments[0].Filename)
	})
}

func TestPipeline_UnparseableQuarantined(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	raw := []byte("   \r\n\r\n  ")
	res, err := p.Process(t.Context(), raw, nil)
	require.NoError(t, err)
	o := res.Outcome
	assert.Equal(t, mailcase.ActionQuarantined, o.Action)
	assert.Equal(t, mailcase.Quarantine, o.Disposition)
	assert.NotEmpty(t, o.Error)
	assert.Nil(t, res.Message)
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, raw, q[0].Raw)
	assert.Equal(t, int64(1), p.Stats().Quarantined)
}

func TestPipeline_Structured(t *testing.T) {
	s := plStore(t)
	h := &plStructured{}
	p := plPipeline(t, s, &mailcase.Options{Structured: h})
	raw := plMail("api@partner.example", "xml", "s1@partner.example", "<?xml version=\"1.0\"?><case/>")
	res := plProcess(t, p, raw)
	assert.Equal(t, mailcase.ActionStructured, res.Outcome.Action, plSteps(res))
	assert.True(t, res.Outcome.Structured)
	assert.Equal(t, 1, h.calls)
	assert.Equal(t, mailcase.ActionDuplicate, plProcess(t, p, raw).Outcome.Action)
	assert.Equal(t, 1, h.calls, "a redelivered structured plMail is not handled twice")
	assert.Equal(t, mailcase.ActionCreated, plProcess(t, p, plMail("a@b.example", "plain", "s2@b.example", "hello")).Outcome.Action)

	h.err = mailcase.NewError(mailcase.InvalidArgument, "xmlapi", errors.New("bad document"))
	res = plProcess(t, p, plMail("api@partner.example", "xml", "s3@partner.example", "<?xml version=\"1.0\"?><bad/>"))
	assert.Equal(t, mailcase.ActionQuarantined, res.Outcome.Action)
}

type plStructured struct {
	calls int
	err   error
}

func (f *plStructured) IsStructured(m *mailcase.Message) bool {
	return strings.HasPrefix(strings.TrimSpace(m.Text), "<?xml")
}

func (f *plStructured) HandleStructured(_ context.Context, d *mailcase.Delivery) (mailcase.StructuredResult, error) {
	f.calls++
	if f.err != nil {
		return mailcase.StructuredResult{}, f.err
	}
	return mailcase.StructuredResult{Action: "create", Reason: "from " + d.Message.From.Email}, nil
}

func TestPipeline_RouterAndBypass(t *testing.T) {
	router := &mailcasetest.Router{Result: mailcase.Route{Queue: "billing", Priority: mailcase.PriorityHigh, Rule: "invoice", Category: "billing"}}
	empty := &mailcasetest.Router{Result: mailcase.Route{Rule: "nothing"}}
	tests := []struct {
		name   string
		router mailcase.Router
		bypass bool
		queue  string
		prio   mailcase.Priority
	}{
		{name: "router decides", router: router, queue: "billing", prio: mailcase.PriorityHigh},
		{name: "bypass", router: router, bypass: true, queue: "triage", prio: mailcase.PriorityNormal},
		{name: "empty queue falls back", router: empty, queue: "triage", prio: mailcase.PriorityNormal},
		{name: "no router", queue: "triage", prio: mailcase.PriorityNormal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			p := plPipeline(t, s, &mailcase.Options{Router: tc.router, Mailbox: mailcase.Mailbox{DefaultQueue: "triage", Bypass: tc.bypass}})
			res := plProcess(t, p, plMail("a@b.example", "Invoice", "rt1@b.example", "pay"))
			c, _, err := s.GetCase(t.Context(), res.Outcome.CaseID)
			require.NoError(t, err)
			assert.Equal(t, tc.queue, c.Queue)
			assert.Equal(t, tc.prio, c.Priority)
		})
	}
}

func TestPipeline_ExtractorAndDryRun(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, &mailcase.Options{Extractor: mailcase.ReplyExtractorFunc(func(m *mailcase.Message) string {
		before, _, _ := strings.Cut(m.Text, "\n>")
		return strings.TrimSpace(before)
	})})
	raw := plReply("ann@customer.example", "Topic", "e2@c.example", "e1@c.example")
	dry, err := p.Process(t.Context(), raw, &mailcase.ProcessOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionCreated, dry.Outcome.Action, plSteps(dry))
	assert.Empty(t, plCases(t, s), "a dry run writes nothing")
	assert.Equal(t, mailcase.Stats{}, p.Stats(), "a dry run is not counted")

	res := plProcess(t, p, raw)
	mails := plCaseMails(t, s, res.Outcome.CaseID)
	require.Len(t, mails, 1)
	assert.Equal(t, "Thanks, more details below.", mails[0].ReplyText)
	assert.Contains(t, mails[0].Text, "> earlier text")
}

func TestPipeline_Close(t *testing.T) {
	s := plStore(t)
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Logger: plLogger(t)})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	assert.ErrorIs(t, p.Close(), mailcase.ErrClosed)
	_, err = p.Process(t.Context(), plMail("a@b.example", "x", "c@b", "y"), nil)
	assert.ErrorIs(t, err, mailcase.ErrClosed)
	assert.ErrorIs(t, p.Run(t.Context(), mailcasetest.NewSource()), mailcase.ErrClosed)
	_, err = p.Reprocess(t.Context(), "q1")
	assert.ErrorIs(t, err, mailcase.ErrClosed)
}

func TestThreadKey(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{name: "references root", raw: "Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x>\r\n <b@x>\r\n\r\nbody", want: "a@x"},
		{name: "in-reply-to", raw: "message-id: <c@x>\nin-reply-to: <b@x>\n\nbody", want: "b@x"},
		{name: "own id", raw: "Message-ID: <c@x>\r\n\r\nReferences: <z@x>", want: "c@x"},
		{name: "none", raw: "Subject: hi\r\n\r\n", want: ""},
		{name: "garbage", raw: "\x00\x01:::\n\n", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, mailcase.ThreadKey([]byte(tc.raw)))
		})
	}
}
