package mailcase_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

func TestPipeline_ThreadDecisions(t *testing.T) {
	s := plStore(t)
	base := plProcess(t, plPipeline(t, s, nil), plMail("ann@c.example", "Base", "base@c.example", "x"))
	baseID := base.Outcome.CaseID
	closed := mailcase.StatusClosed
	_, err := s.UpdateCase(t.Context(), baseID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)

	tests := []struct {
		name     string
		decision mailcase.ThreadDecision
		dry      bool
		action   mailcase.Action
		check    func(t *testing.T, res *mailcase.Result)
	}{
		{name: "new linked", decision: mailcase.ThreadDecision{Action: mailcase.ThreadNewLinked, CaseID: baseID, Reason: "closed too long"},
			action: mailcase.ActionCreated, check: func(t *testing.T, res *mailcase.Result) {
				c, _, err := s.GetCase(t.Context(), res.Outcome.CaseID)
				require.NoError(t, err)
				assert.Equal(t, baseID, c.LinkedID)
				assert.NotEqual(t, baseID, c.ID)
			}},
		{name: "reject", decision: mailcase.ThreadDecision{Action: mailcase.ThreadReject, CaseID: baseID, Reason: "closed case policy"},
			action: mailcase.ActionRejected},
		{name: "append to vanished case", decision: mailcase.ThreadDecision{Action: mailcase.ThreadAppend, CaseID: "no-such-case"},
			action: mailcase.ActionCreated, check: func(t *testing.T, res *mailcase.Result) {
				st, ok := plStepOf(res, "file")
				require.True(t, ok)
				assert.Equal(t, "case missing", st.Decision)
			}},
		{name: "reopen vanished case", decision: mailcase.ThreadDecision{Action: mailcase.ThreadReopen, CaseID: "no-such-case"},
			action: mailcase.ActionCreated},
		{name: "dry reopen", dry: true, decision: mailcase.ThreadDecision{Action: mailcase.ThreadReopen, CaseID: baseID},
			action: mailcase.ActionReopened, check: func(t *testing.T, _ *mailcase.Result) {
				c, _, _ := s.GetCase(t.Context(), baseID)
				assert.Equal(t, mailcase.StatusClosed, c.Status)
			}},
		{name: "dry append", dry: true, decision: mailcase.ThreadDecision{Action: mailcase.ThreadAppend, CaseID: baseID},
			action: mailcase.ActionAppended},
		{name: "empty action is new", decision: mailcase.ThreadDecision{}, action: mailcase.ActionCreated},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &mailcasetest.ThreadResolver{Func: func(context.Context, *mailcase.Delivery) (mailcase.ThreadDecision, error) {
				return tc.decision, nil
			}}
			p := plPipeline(t, s, &mailcase.Options{Threads: tr})
			raw := plMail("ann@c.example", "Re: Base", "td"+string(rune('a'+i))+"@c.example", "x")
			res, err := p.Process(t.Context(), raw, &mailcase.ProcessOptions{DryRun: tc.dry})
			require.NoError(t, err)
			assert.Equal(t, tc.action, res.Outcome.Action, plSteps(res))
			assert.Equal(t, mailcase.Done, res.Outcome.Disposition)
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func TestPipeline_BadThreadDecisionQuarantined(t *testing.T) {
	for _, d := range []mailcase.ThreadDecision{
		{Action: mailcase.ThreadAppend},
		{Action: "sideways", CaseID: "x"},
	} {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Threads: &mailcasetest.ThreadResolver{Decision: d}})
		res := plProcess(t, p, plMail("a@b.example", "x", "bad-"+string(d.Action)+"@b", "x"))
		assert.Equal(t, mailcase.Quarantine, res.Outcome.Disposition, plSteps(res))
		assert.Contains(t, res.Outcome.Error, "thread resolver")
	}
}

func TestPipeline_PluginErrors(t *testing.T) {
	broken := errors.New("plugin broken")
	tests := []struct {
		name string
		opts mailcase.Options
	}{
		{name: "filter", opts: mailcase.Options{Filters: []mailcase.Filter{&mailcasetest.Filter{Fault: mailcasetest.Fault{Err: broken}}}}},
		{name: "sender matcher", opts: mailcase.Options{Senders: &mailcasetest.SenderMatcher{Fault: mailcasetest.Fault{Err: broken}}}},
		{name: "thread resolver", opts: mailcase.Options{Threads: &mailcasetest.ThreadResolver{Fault: mailcasetest.Fault{Err: broken}}}},
		{name: "extractor panic", opts: mailcase.Options{Extractor: mailcase.ReplyExtractorFunc(func(*mailcase.Message) string { panic("nil map") })}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			p := plPipeline(t, s, &tc.opts)
			res := plProcess(t, p, plMail("a@b.example", "x", "pe@b.example", "x"))
			assert.Equal(t, mailcase.Quarantine, res.Outcome.Disposition, plSteps(res))
			assert.Empty(t, plCases(t, s))
		})
	}
}

func TestPipeline_FakeSenderMatcher(t *testing.T) {
	s := plStore(t)
	m := &mailcasetest.SenderMatcher{}
	m.Set("vip@b.example", mailcase.SenderMatch{Kind: mailcase.SenderAccount, Account: &mailcase.Account{ID: "acct-1"}, Reason: "fake"})
	p := plPipeline(t, s, &mailcase.Options{Senders: m})
	res := plProcess(t, p, plMail("VIP@b.example", "x", "fs@b.example", "x"))
	c, _, err := s.GetCase(t.Context(), res.Outcome.CaseID)
	require.NoError(t, err)
	assert.Equal(t, "acct-1", c.AccountID)
	assert.Equal(t, 1, m.Calls())
}

func TestPipeline_SenderFallbackAddresses(t *testing.T) {
	s := plStore(t)
	c, err := s.CreateContact(t.Context(), &mailcase.NewContact{Email: "real@b.example"})
	require.NoError(t, err)
	p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{UnknownSender: mailcase.UnknownReject}})
	raw := []byte("Sender: real@b.example\r\nSubject: no from\r\nMessage-ID: <nf@b>\r\n\r\nbody\r\n")
	res := plProcess(t, p, raw)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	got, _, _ := s.GetCase(t.Context(), res.Outcome.CaseID)
	assert.Equal(t, c.ID, got.ContactID)
}

func TestBlockList(t *testing.T) {
	b, err := mailcase.NewBlockList(nil, nil)
	require.NoError(t, err)
	assert.True(t, b.Empty())
	v, err := b.FilterMail(t.Context(), nil)
	require.NoError(t, err)
	assert.False(t, v.Drop)
	b, err = mailcase.NewBlockList([]string{"<Boss@Corp.example>"}, []string{"@spam.example"})
	require.NoError(t, err)
	assert.False(t, b.Empty())
	tests := []struct {
		name   string
		from   string
		sender string
		drop   bool
	}{
		{name: "address any case", from: "boss@CORP.example", drop: true},
		{name: "other at same domain", from: "staff@corp.example"},
		{name: "domain with @ prefix", from: "x@spam.example", drop: true},
		{name: "deep subdomain", from: "x@a.b.spam.example", drop: true},
		{name: "lookalike", from: "x@notspam.example"},
		{name: "sender field", from: "ok@fine.example", sender: "x@spam.example", drop: true},
		{name: "no address", from: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &mailcase.Message{From: mailcase.Address{Email: tc.from}, Sender: mailcase.Address{Email: tc.sender}}
			v, err := b.FilterMail(t.Context(), &mailcase.Delivery{Message: m})
			require.NoError(t, err)
			assert.Equal(t, tc.drop, v.Drop, v.Reason)
		})
	}
}

// The built-in thread lookup (no ThreadResolver): a reply that shares an
// unknown root with a mail of a case joins that case when its sender is on
// the case (a Cc of the first reply), and opens a new case for a stranger.
func TestPipeline_SharedReferenceBuiltIn(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	const refs = "References: <root-unseen@c.example>"
	first := plProcess(t, p, plMail("ann@c.example", "Re: Outage", "r1@c.example", "down", refs, "Cc: bea@c.example"))
	require.Equal(t, mailcase.ActionCreated, first.Outcome.Action)
	second := plProcess(t, p, plMail("bea@c.example", "Re: Outage", "r2@c.example", "here too", refs))
	assert.Equal(t, mailcase.ActionAppended, second.Outcome.Action, plSteps(second))
	assert.Equal(t, first.Outcome.CaseID, second.Outcome.CaseID)
	st, ok := plStepOf(second, "thread")
	require.True(t, ok)
	assert.Contains(t, st.Reason, "signal shared-reference")
	stranger := plProcess(t, p, plMail("eve@evil.example", "Re: Outage", "r3@evil.example", "let me in", refs))
	assert.Equal(t, mailcase.ActionCreated, stranger.Outcome.Action)
	assert.NotEqual(t, first.Outcome.CaseID, stranger.Outcome.CaseID)
	st, ok = plStepOf(stranger, "thread")
	require.True(t, ok)
	assert.Contains(t, st.Reason, "anti-hijack: shared reference")
}
