package mailcase_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

func TestPipeline_PanickingPluginQuarantined(t *testing.T) {
	s := plStore(t)
	router := &mailcasetest.Router{Fault: mailcasetest.Fault{Panic: "router exploded"}}
	p := plPipeline(t, s, &mailcase.Options{Router: router})
	raw := plMail("a@b.example", "boom", "p1@b.example", "x")
	res, err := p.Process(t.Context(), raw, nil)
	require.NoError(t, err)
	o := res.Outcome
	assert.Equal(t, mailcase.ActionQuarantined, o.Action)
	assert.Equal(t, mailcase.Quarantine, o.Disposition)
	assert.True(t, strings.HasPrefix(o.Error, "panic: router exploded"), o.Error)
	assert.Contains(t, o.Error, "stage file")
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, raw, q[0].Raw)
	assert.Equal(t, o.Key, q[0].Key)
	assert.Equal(t, 1, router.Calls(), "a panic is not retried")
	st := p.Stats()
	assert.Equal(t, int64(1), st.Quarantined)
	assert.Equal(t, int64(1), st.Errors)
}

func TestPipeline_RetryThenSuccess(t *testing.T) {
	s, f := plFaultyStore(t)
	f.Fail("CreateCase", mailcase.Unavailable, 2)
	p := plPipeline(t, s, &mailcase.Options{MaxAttempts: 3})
	res := plProcess(t, p, plMail("a@b.example", "retry", "rt1@b.example", "x"))
	assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	assert.Equal(t, mailcase.Done, res.Outcome.Disposition)
	assert.Equal(t, 3, f.Calls("CreateCase"))
	assert.Equal(t, int64(2), p.Stats().Retried)
	n := 0
	for _, st := range res.Outcome.Steps {
		if st.Stage == "retry" {
			n++
		}
	}
	assert.Equal(t, 2, n, plSteps(res))
	assert.Len(t, plCases(t, s), 1)
}

func TestPipeline_PluginRetryThenSuccess(t *testing.T) {
	s := plStore(t)
	router := &mailcasetest.Router{Result: mailcase.Route{Queue: "q"},
		Fault: mailcasetest.Fault{Err: mailcase.NewError(mailcase.ResourceExhausted, "classify", errors.New("quota")), Times: 1}}
	p := plPipeline(t, s, &mailcase.Options{Router: router})
	res := plProcess(t, p, plMail("a@b.example", "retry", "rt2@b.example", "x"))
	assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	assert.Equal(t, "q", res.Outcome.Route.Queue)
	assert.Equal(t, 2, router.Calls())
}

// A transient cause still failing after MaxAttempts is never quarantined:
// the mail goes back to its source (Retry) with the cause and its code.
func TestPipeline_RetryExhaustedLeftForRetry(t *testing.T) {
	tests := []struct {
		name string
		noQ  bool
	}{
		{name: "store with quarantine"},
		{name: "store without quarantine", noQ: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, f := plFaultyStore(t)
			f.Fail("CreateCase", mailcase.Unavailable, 0)
			store := s
			if tc.noQ {
				store = mailcase.NewStore(f, &mailcase.StoreOptions{MaxAttempts: -1, Logger: plLogger(t)})
			}
			p := plPipeline(t, store, &mailcase.Options{MaxAttempts: 3})
			raw := plMail("a@b.example", "never", "rx@b.example", "x")
			res, err := p.Process(t.Context(), raw, nil)
			require.Error(t, err)
			assert.Equal(t, mailcase.Unavailable, mailcase.Code(err))
			o := res.Outcome
			assert.Equal(t, mailcase.Retry, o.Disposition, plSteps(res))
			assert.Equal(t, mailcase.ActionRetry, o.Action)
			assert.Contains(t, o.Error, "code Unavailable")
			assert.Contains(t, o.Error, "injected Unavailable")
			assert.Equal(t, 3, f.Calls("CreateCase"))
			_, stored := plStepOf(res, "quarantine")
			assert.False(t, stored, plSteps(res))
			q, err := s.ListQuarantine(t.Context(), "")
			require.NoError(t, err)
			assert.Empty(t, q, "a transient failure is never quarantined")
			assert.Zero(t, p.Stats().Quarantined)

			// Run acknowledges it Retry: the source keeps it.
			src := mailcasetest.NewSource(plMail("a@b.example", "never", "rx2@b.example", "x"))
			require.NoError(t, p.Run(t.Context(), src))
			acks := src.Acks()
			require.Len(t, acks, 1)
			assert.Equal(t, mailcase.Retry, acks[0].Disposition)
		})
	}
}

func TestPipeline_NonRetryableQuarantinedAtOnce(t *testing.T) {
	s, f := plFaultyStore(t)
	f.Fail("CreateCase", mailcase.PermissionDenied, 0)
	p := plPipeline(t, s, &mailcase.Options{MaxAttempts: 5})
	res, err := p.Process(t.Context(), plMail("a@b.example", "denied", "pd@b.example", "x"), nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.Quarantine, res.Outcome.Disposition)
	assert.Equal(t, 1, f.Calls("CreateCase"))
}

func TestPipeline_QuarantineFailureLeavesForRetry(t *testing.T) {
	s, f := plFaultyStore(t)
	f.Fail("CreateCase", mailcase.PermissionDenied, 0)
	f.Fail("PutQuarantine", mailcase.Unavailable, 0)
	p := plPipeline(t, s, nil)
	res, err := p.Process(t.Context(), plMail("a@b.example", "x", "qf@b.example", "x"), nil)
	require.Error(t, err)
	o := res.Outcome
	assert.Equal(t, mailcase.Retry, o.Disposition, plSteps(res))
	assert.Equal(t, mailcase.ActionRetry, o.Action)
	assert.Contains(t, o.Error, "writing the quarantine failed")
	src := mailcasetest.NewSource(plMail("a@b.example", "x", "qf2@b.example", "x"))
	require.NoError(t, p.Run(t.Context(), src))
	acks := src.Acks()
	require.Len(t, acks, 1)
	assert.Equal(t, mailcase.Retry, acks[0].Disposition)
	assert.NotEmpty(t, acks[0].Reason)
}

func TestPipeline_CancelledContextIsRetry(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := p.Process(ctx, plMail("a@b.example", "x", "cc@b.example", "x"), nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, mailcase.Retry, res.Outcome.Disposition)
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Empty(t, q, "a shutdown never quarantines")
}

func TestPipeline_NoQuarantineStore(t *testing.T) {
	s := plStore(t)
	noq := mailcase.NewStore(mailcasetest.NewFaultDriver(s.Driver()), nil)
	p := plPipeline(t, noq, nil)

	// Nobody keeps the mail: it stays with the caller.
	res, err := p.Process(t.Context(), []byte(" "), nil)
	require.Error(t, err)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.Equal(t, mailcase.Retry, res.Outcome.Disposition, plSteps(res))
	assert.Contains(t, res.Outcome.Error, "the store keeps no quarantine")
	_, ok := plStepOf(res, "quarantine")
	assert.False(t, ok, "nothing claims the mail is quarantined")

	// A caller that sets mail aside itself (a Source) gets Quarantine.
	res, err = p.Process(t.Context(), []byte(" "), &mailcase.ProcessOptions{SourceQuarantines: true})
	require.NoError(t, err)
	assert.Equal(t, mailcase.Quarantine, res.Outcome.Disposition)
	st, ok := plStepOf(res, "quarantine")
	require.True(t, ok)
	assert.Equal(t, "source", st.Decision)

	// A refusal by the mailbox policy is a refusal, not a quarantine.
	pr := plPipeline(t, noq, &mailcase.Options{Mailbox: mailcase.Mailbox{MaxSize: 10, RejectOversized: true}})
	res, err = pr.Process(t.Context(), plMail("a@b.example", "big", "big@b.example", "xxxxxxxx"), nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.Quarantine, res.Outcome.Disposition, plSteps(res))
	assert.Equal(t, mailcase.ActionRejected, res.Outcome.Action)
	st, ok = plStepOf(res, "quarantine")
	require.True(t, ok)
	assert.Equal(t, "refused", st.Decision)

	_, err = p.Reprocess(t.Context(), "x")
	assert.Equal(t, mailcase.Unimplemented, mailcase.Code(err))
}

func TestPipeline_OneBadMailNeverBlocksOthers(t *testing.T) {
	s := plStore(t)
	bad := func(m *mailcase.Message) bool { return strings.Contains(m.Subject, "poison") }
	router := &mailcasetest.Router{Result: mailcase.Route{Queue: "ok"}, Fault: mailcasetest.Fault{Panic: "poisoned", Match: bad}}
	filter := &mailcasetest.Filter{Fault: mailcasetest.Fault{Err: errors.New("filter broke"), Match: func(m *mailcase.Message) bool {
		return strings.Contains(m.Subject, "broken")
	}}}
	p := plPipeline(t, s, &mailcase.Options{Router: router, Filters: []mailcase.Filter{filter}, MaxConcurrency: 4})
	var raws [][]byte
	want := map[string]mailcase.Disposition{}
	for i := range 100 {
		subj := "normal " + strconv.Itoa(i)
		d := mailcase.Done
		switch {
		case i%10 == 3:
			subj, d = "poison "+strconv.Itoa(i), mailcase.Quarantine
		case i%10 == 7:
			subj, d = "broken "+strconv.Itoa(i), mailcase.Quarantine
		}
		id := "b" + strconv.Itoa(i) + "@b.example"
		want[id] = d
		raws = append(raws, plMail("c"+strconv.Itoa(i)+"@b.example", subj, id, "x"))
	}
	src := mailcasetest.NewSource(raws...)
	require.NoError(t, p.Run(t.Context(), src))
	acks := src.Acks()
	require.Len(t, acks, 100)
	for _, a := range acks {
		id := mailcase.ThreadKey(a.Raw)
		assert.Equal(t, want[id], a.Disposition, id+": "+a.Reason)
	}
	assert.Len(t, plCases(t, s), 80)
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Len(t, q, 20)
	st := p.Stats()
	assert.Equal(t, int64(100), st.Received)
	assert.Equal(t, int64(80), st.Created)
	assert.Equal(t, int64(20), st.Quarantined)
}

func TestPipeline_Reprocess(t *testing.T) {
	s := plStore(t)
	router := &mailcasetest.Router{Result: mailcase.Route{Queue: "fixed"}, Fault: mailcasetest.Fault{Err: errors.New("rule bug"), Times: 1}}
	p := plPipeline(t, s, &mailcase.Options{Router: router})
	raw := plMail("a@b.example", "later", "rp1@b.example", "x")
	res := plProcess(t, p, raw)
	require.Equal(t, mailcase.Quarantine, res.Outcome.Disposition)
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, q, 1)

	_, err = p.Reprocess(t.Context(), "no-such-id")
	assert.ErrorIs(t, err, mailcase.ErrNotFound)

	res, err = p.Reprocess(t.Context(), q[0].ID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	assert.Equal(t, "fixed", res.Outcome.Route.Queue)
	q, err = s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Empty(t, q, "deleted from quarantine on success")
}

func TestPipeline_ReprocessStillFailing(t *testing.T) {
	s := plStore(t)
	router := &mailcasetest.Router{Fault: mailcasetest.Fault{Err: errors.New("rule bug")}}
	p := plPipeline(t, s, &mailcase.Options{Router: router})
	plProcess(t, p, plMail("a@b.example", "later", "rp2@b.example", "x"))
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, q, 1)
	res, err := p.Reprocess(t.Context(), q[0].ID)
	require.Error(t, err)
	assert.Equal(t, mailcase.Quarantine, res.Outcome.Disposition)
	q2, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Len(t, q2, 1, "no second quarantine item")
	assert.Equal(t, q[0].ID, q2[0].ID)
}

func TestPipeline_PanicOutsideStagesIsRetry(t *testing.T) {
	s, f := plFaultyStore(t)
	f.Fail("CreateCase", mailcase.PermissionDenied, 0)
	f.Panic("PutQuarantine")
	p := plPipeline(t, s, nil)
	res, err := p.Process(t.Context(), plMail("a@b.example", "x", "po@b.example", "x"), nil)
	require.Error(t, err)
	require.NotNil(t, res)
	assert.Equal(t, mailcase.Retry, res.Outcome.Disposition, plSteps(res))
	assert.Contains(t, res.Outcome.Error, "panic: driver bug in PutQuarantine")
	// The thread lock was released: the next mail of the thread goes on.
	f.Fail("CreateCase", mailcase.PermissionDenied, 1)
	res, err = p.Process(t.Context(), plReply("a@b.example", "x", "po2@b.example", "po@b.example"), nil)
	require.Error(t, err)
	assert.Equal(t, mailcase.Retry, res.Outcome.Disposition)
}

type plPanickingSource struct{ *mailcasetest.Source }

func (plPanickingSource) Receive(context.Context) (*mailcase.Received, error) { panic("source bug") }

func TestPipeline_RunSourcePanic(t *testing.T) {
	p := plPipeline(t, plStore(t), nil)
	err := p.Run(t.Context(), plPanickingSource{mailcasetest.NewSource()})
	assert.Equal(t, mailcase.Internal, mailcase.Code(err))
}
