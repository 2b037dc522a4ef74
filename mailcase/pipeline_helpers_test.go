package mailcase_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// plLogger logs to the test output at Warn level and above (Debug with -v
// would be noisy for corpus runs).
func plLogger(t testing.TB) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// plStore returns an empty memstore without store-level retries, so the
// pipeline's own retries are what a test observes.
func plStore(t testing.TB) *mailcase.Store {
	t.Helper()
	s, err := memstore.OpenStore(&memstore.Options{Logger: plLogger(t), Store: &mailcase.StoreOptions{MaxAttempts: -1, Logger: plLogger(t)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// plFaultyStore returns a memstore wrapped by a driver injecting faults.
func plFaultyStore(t testing.TB) (*mailcase.Store, *plFaultyDriver) {
	t.Helper()
	inner := plStore(t)
	f := mailcasetest.NewFaultDriver(inner.Driver())
	s := mailcase.NewStore(f.With(mailcasetest.Quarantiner, mailcasetest.Lister), &mailcase.StoreOptions{MaxAttempts: -1, Logger: plLogger(t)})
	return s, f
}

// plPipeline returns a pipeline with fast retries and the test logger.
func plPipeline(t testing.TB, s *mailcase.Store, o *mailcase.Options) *mailcase.Pipeline {
	t.Helper()
	var opts mailcase.Options
	if o != nil {
		opts = *o
	}
	if opts.Logger == nil {
		opts.Logger = plLogger(t)
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Millisecond
	}
	p, err := mailcase.NewPipeline(s, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// plMail builds a raw plMail. headers are "Name: value" lines.
func plMail(from, subject, msgID, body string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@example.com\r\nSubject: %s\r\n", from, subject)
	if msgID != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", msgID)
	}
	b.WriteString("Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(body + "\r\n")
	return []byte(b.String())
}

func plReply(from, subject, msgID, parent string, refs ...string) []byte {
	all := strings.Join(append(refs, parent), "> <")
	return plMail(from, "Re: "+subject, msgID, "Thanks, more details below.\r\n\r\n> earlier text",
		"In-Reply-To: <"+parent+">", "References: <"+all+">")
}

func plProcess(t testing.TB, p *mailcase.Pipeline, raw []byte) *mailcase.Result {
	t.Helper()
	res, err := p.Process(context.Background(), raw, nil)
	require.NoError(t, err)
	require.NotNil(t, res)
	return res
}

func plSteps(res *mailcase.Result) string {
	var b strings.Builder
	for _, s := range res.Outcome.Steps {
		fmt.Fprintf(&b, "%s=%s (%s)\n", s.Stage, s.Decision, s.Reason)
	}
	return b.String()
}

func plStepOf(res *mailcase.Result, stage string) (mailcase.Step, bool) {
	for _, s := range res.Outcome.Steps {
		if s.Stage == stage {
			return s, true
		}
	}
	return mailcase.Step{}, false
}

func plCases(t testing.TB, s *mailcase.Store) []mailcase.Case {
	t.Helper()
	cs, err := s.ListCases(context.Background(), nil)
	require.NoError(t, err)
	return cs
}

func plCaseless(t testing.TB, s *mailcase.Store) []mailcase.Interaction {
	t.Helper()
	in, err := s.ListInteractions(context.Background(), "")
	require.NoError(t, err)
	return in
}

func plCaseMails(t testing.TB, s *mailcase.Store, id mailcase.CaseID) []*mailcase.Email {
	t.Helper()
	in, err := s.ListInteractions(context.Background(), id)
	require.NoError(t, err)
	var out []*mailcase.Email
	for _, i := range in {
		if i.Email != nil {
			out = append(out, i.Email)
		}
	}
	return out
}

// ---- fault-injecting driver ----

// plFaultyDriver is mailcasetest's fault-injecting driver over memstore's.
// Used bare it hides memstore's quarantine (a store without one);
// plFaultyStore exposes quarantine and listing.
type plFaultyDriver = mailcasetest.FaultDriver
