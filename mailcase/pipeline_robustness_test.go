package mailcase_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// Regression tests of the pipeline review: header order of the
// Authentication-Results fields, transient failures never quarantined,
// Run's back-off and nil receives, quarantine floods, and the employee trust
// rule for filtered, automatic and oversized mail.

const plOurMX = "mx.ours.example"

// plHeaderMail builds a raw mail whose header starts with top (in order),
// then From, To, Subject, Message-ID.
func plHeaderMail(from, msgID string, top ...string) []byte {
	var b []byte
	for _, h := range top {
		b = append(b, h+"\r\n"...)
	}
	b = append(b, "From: "+from+"\r\nTo: support@example.com\r\nSubject: internal\r\nMessage-ID: <"+msgID+">\r\n"+
		"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nhello\r\n"...)
	return b
}

func TestPipeline_AuthResultsOnlyAboveFirstReceived(t *testing.T) {
	const received = "Received: from attacker.example (attacker.example [192.0.2.1]) by mx.ours.example; Mon, 02 Mar 2026 10:00:00 +0000"
	tests := []struct {
		name    string
		top     []string
		trusted bool
	}{
		{name: "forged pass below our Received, our fail above", top: []string{
			plAuthResults(plOurMX, "dkim=fail header.d=company.example"),
			received,
			plAuthResults(plOurMX, "dkim=pass header.d=company.example"),
		}},
		{name: "forged pass below our Received, nothing above", top: []string{
			received,
			plAuthResults(plOurMX, "dkim=pass header.d=company.example"),
		}},
		{name: "only the topmost trusted field counts", top: []string{
			plAuthResults(plOurMX, "dkim=fail header.d=company.example"),
			plAuthResults(plOurMX, "dkim=pass header.d=company.example"),
			received,
		}},
		{name: "our pass above Received", trusted: true, top: []string{
			plAuthResults(plOurMX, "dkim=pass header.d=company.example"),
			received,
			plAuthResults(plOurMX, "dkim=fail header.d=company.example"),
		}},
		{name: "untrusted field above ours is skipped", trusted: true, top: []string{
			plAuthResults("other.example", "dkim=fail header.d=company.example"),
			"Authentication-Results: " + plOurMX + ";\r\n\tspf=pass smtp.mailfrom=eve@company.example",
			received,
		}},
		{name: "case of the field name", trusted: true, top: []string{
			"authentication-results: MX.OURS.EXAMPLE; dmarc=pass header.from=company.example",
			"RECEIVED: by mx.ours.example",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			plSeed(t, s)
			p := plPipeline(t, s, &mailcase.Options{TrustedAuthServIDs: []string{plOurMX},
				Mailbox: mailcase.Mailbox{UnknownContactID: "placeholder"}})
			r := plProcess(t, p, plHeaderMail("eve@company.example", "ar@company.example", tc.top...))
			require.NotNil(t, r.Outcome.Sender, plSteps(r))
			if tc.trusted {
				assert.Equal(t, mailcase.SenderEmployee, r.Outcome.Sender.Kind, plSteps(r))
				assert.NotNil(t, r.Outcome.Sender.Employee)
			} else {
				assert.NotEqual(t, mailcase.SenderEmployee, r.Outcome.Sender.Kind, plSteps(r))
				assert.Nil(t, r.Outcome.Sender.Employee)
			}
		})
	}
}

// Filtered, automatic and oversized mail link the sender without policies,
// but the employee identity still needs authentication.
func TestPipeline_EmployeeTrustWithoutPolicies(t *testing.T) {
	auth := plAuthResults(plOurMX, "dkim=pass header.d=company.example")
	tests := []struct {
		name  string
		mb    mailcase.Mailbox
		extra []string
		body  string
		act   mailcase.Action
	}{
		{name: "filtered", mb: mailcase.Mailbox{BlockAddresses: []string{"both@company.example"}}, act: mailcase.ActionFiltered},
		{name: "automatic", extra: []string{"Auto-Submitted: auto-replied"}, act: mailcase.ActionRecorded},
		{name: "oversized", mb: mailcase.Mailbox{MaxSize: 200}, body: string(make([]byte, 400)), act: mailcase.ActionCreated},
	}
	for _, tc := range tests {
		for _, authenticated := range []bool{false, true} {
			t.Run(tc.name+"/authenticated="+strconv.FormatBool(authenticated), func(t *testing.T) {
				s := plStore(t)
				d := plSeed(t, s)
				p := plPipeline(t, s, &mailcase.Options{TrustedAuthServIDs: []string{plOurMX}, Mailbox: tc.mb})
				headers := append([]string(nil), tc.extra...)
				if authenticated {
					headers = append(headers, auth)
				}
				body := tc.body
				if body == "" {
					body = "x"
				}
				r := plProcess(t, p, plMail("both@company.example", "note", "emp-"+tc.name+"@company.example", body, headers...))
				require.Equal(t, tc.act, r.Outcome.Action, plSteps(r))
				require.NotNil(t, r.Outcome.Sender, plSteps(r))
				st, _ := plStepOf(r, "sender")
				if authenticated {
					assert.Equal(t, mailcase.SenderEmployee, r.Outcome.Sender.Kind, plSteps(r))
					assert.Contains(t, st.Reason, "employee trusted")
				} else {
					assert.Equal(t, mailcase.SenderContact, r.Outcome.Sender.Kind, plSteps(r))
					assert.Nil(t, r.Outcome.Sender.Employee)
					assert.Contains(t, st.Reason, "not trusted")
				}
				// Either way the mail is linked to the contact having the
				// address, never to the employee.
				var contact string
				if r.Outcome.CaseID != "" {
					c, ok, err := s.GetCase(t.Context(), r.Outcome.CaseID)
					require.NoError(t, err)
					require.True(t, ok)
					contact = c.ContactID
				} else {
					in := plCaseless(t, s)
					require.Len(t, in, 1)
					contact = in[0].ContactID
				}
				assert.Equal(t, d.emp.ID, contact)
			})
		}
	}
}

// plRedeliverSource hands out the same mail again after every Retry (as
// IMAP does on its next scan), counting receives.
type plRedeliverSource struct {
	raw      []byte
	receives atomic.Int64
	mu       sync.Mutex
	acks     []mailcase.Disposition
}

func (s *plRedeliverSource) Receive(ctx context.Context) (*mailcase.Received, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := s.receives.Add(1)
	return &mailcase.Received{Raw: s.raw, ID: strconv.FormatInt(n, 10), Attempt: int(n)}, nil
}

func (s *plRedeliverSource) Ack(_ context.Context, _ *mailcase.Received, d mailcase.Disposition, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, d)
	return nil
}

func TestPipeline_RunBacksOffOnTransientFailures(t *testing.T) {
	s, f := plFaultyStore(t)
	f.Fail("CreateCase", mailcase.Unavailable, 0)
	p := plPipeline(t, s, &mailcase.Options{MaxAttempts: 1, RetryDelay: 10 * time.Millisecond})
	src := &plRedeliverSource{raw: plMail("a@b.example", "outage", "out@b.example", "x")}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	require.NoError(t, p.Run(ctx, src))
	n := src.receives.Load()
	// 10+20+40+80+160+320ms: at most 7 receives in 500ms; a hot loop
	// makes thousands.
	assert.LessOrEqual(t, n, int64(10), "receives during an outage")
	assert.GreaterOrEqual(t, n, int64(2))
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, d := range src.acks {
		assert.Equal(t, mailcase.Retry, d)
	}
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Empty(t, q)
}

func TestPipeline_RunBackoffEndsOnSuccess(t *testing.T) {
	s, f := plFaultyStore(t)
	f.Fail("CreateCase", mailcase.Unavailable, 2)
	p := plPipeline(t, s, &mailcase.Options{MaxAttempts: 1, RetryDelay: time.Millisecond})
	var raws [][]byte
	for i := range 20 {
		raws = append(raws, plMail("a@b.example", "m", "bo"+strconv.Itoa(i)+"@b.example", "x"))
	}
	src := mailcasetest.NewSource(raws...)
	start := time.Now()
	require.NoError(t, p.Run(t.Context(), src))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, 2, src.Count(mailcase.Retry))
	assert.Equal(t, 18, src.Count(mailcase.Done))
}

// plNilSource returns (nil, nil): a Source bug.
type plNilSource struct{ calls atomic.Int64 }

func (s *plNilSource) Receive(context.Context) (*mailcase.Received, error) {
	s.calls.Add(1)
	return nil, nil
}

func (s *plNilSource) Ack(context.Context, *mailcase.Received, mailcase.Disposition, string) error {
	return errors.New("nothing handed out")
}

func TestPipeline_RunNilReceiveIsAnError(t *testing.T) {
	p := plPipeline(t, plStore(t), nil)
	src := &plNilSource{}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := p.Run(ctx, src)
	require.Error(t, err)
	assert.ErrorIs(t, err, mailcase.ErrNilReceived)
	assert.Equal(t, mailcase.Internal, mailcase.Code(err))
	assert.Equal(t, int64(1), src.calls.Load())
	assert.NoError(t, ctx.Err(), "Run stopped by itself")
}

// A source that cannot set a mail aside delivers it again; the second
// failure adds no second quarantine item.
func TestPipeline_NoQuarantineFlood(t *testing.T) {
	s := plStore(t)
	router := &mailcasetest.Router{Fault: mailcasetest.Fault{Err: errors.New("rule bug")}}
	p := plPipeline(t, s, &mailcase.Options{Router: router})
	raw := plMail("a@b.example", "poison", "flood@b.example", "x")
	for range 3 {
		src := mailcasetest.NewSource(raw)
		require.NoError(t, p.Run(t.Context(), src))
		acks := src.Acks()
		require.Len(t, acks, 1)
		assert.Equal(t, mailcase.Quarantine, acks[0].Disposition)
	}
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, q, 1)

	// Reprocess still works, and then a redelivery is a duplicate.
	router.Fault = mailcasetest.Fault{}
	res, err := p.Reprocess(t.Context(), q[0].ID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	src := mailcasetest.NewSource(raw)
	require.NoError(t, p.Run(t.Context(), src))
	assert.Equal(t, 1, src.Count(mailcase.Done))

	// Unparseable mail (no key) is recognised by its bytes.
	for range 2 {
		src := mailcasetest.NewSource([]byte(" "))
		require.NoError(t, p.Run(t.Context(), src))
		assert.Equal(t, 1, src.Count(mailcase.Quarantine))
	}
	q, err = s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Len(t, q, 1)
}

// FuzzEmployeeTrust: whatever header precedes the From of an employee, a
// Received field at the very top (nothing our MTA added above it) means
// the employee is never trusted, and processing never panics.
func FuzzEmployeeTrust(f *testing.F) {
	f.Add([]byte(plAuthResults(plOurMX, "dkim=pass header.d=company.example") + "\r\n"))
	f.Add([]byte("Authentication-Results: mx.ours.example; dkim=pass header.d=company.example\r\n\tspf=pass\r\nReceived: x\r\n"))
	f.Add([]byte("X: y\r\nauthentication-results:mx.ours.example;dmarc=pass header.from=company.example\n"))
	s := plStore(f)
	_, err := s.CreateEmployee(context.Background(), &mailcase.NewEmployee{Name: "Eve", Email: "eve@company.example", Active: true})
	require.NoError(f, err)
	p := plPipeline(f, s, &mailcase.Options{TrustedAuthServIDs: []string{plOurMX}})
	mail := []byte("From: eve@company.example\r\nTo: support@example.com\r\nSubject: s\r\nMessage-ID: <fz@company.example>\r\n\r\nbody\r\n")
	f.Fuzz(func(t *testing.T, header []byte) {
		for _, top := range []string{"", "Received: by relay.example\r\n"} {
			raw := append(append([]byte(top), header...), mail...)
			res, err := p.Process(context.Background(), raw, &mailcase.ProcessOptions{DryRun: true})
			if err != nil || res == nil {
				t.Fatalf("Process: %v", err)
			}
			if top != "" && res.Outcome.Sender != nil && res.Outcome.Sender.Kind == mailcase.SenderEmployee {
				t.Fatalf("employee trusted from a field below the first Received: %q", raw)
			}
		}
	})
}
