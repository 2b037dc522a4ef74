package mailcase_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
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
	f := &plFaultyDriver{CaseStore: inner.Driver(), faults: map[string]*plFault{}}
	s := mailcase.NewStore(f, &mailcase.StoreOptions{MaxAttempts: -1, Logger: plLogger(t)})
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

type plFault struct {
	panic bool
	err   error
	times int // 0: always
	n     int
}

type plInjectedError struct{ code driver.ErrorCode }

func (e plInjectedError) Error() string { return "injected " + e.code.String() }

// plFaultyDriver wraps memstore's driver and fails chosen operations.
type plFaultyDriver struct {
	driver.CaseStore
	mu     sync.Mutex
	faults map[string]*plFault
	calls  map[string]int
}

// failOp makes op fail with code, times times (0: always).
func (f *plFaultyDriver) failOp(op string, code driver.ErrorCode, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = &plFault{err: plInjectedError{code}, times: times}
}

// panicOp makes op panic.
func (f *plFaultyDriver) panicOp(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = &plFault{panic: true}
}

func (f *plFaultyDriver) hit(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	ft := f.faults[op]
	if ft == nil || ft.times > 0 && ft.n >= ft.times {
		return nil
	}
	ft.n++
	if ft.panic {
		panic("driver bug in " + op)
	}
	return ft.err
}

func (f *plFaultyDriver) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *plFaultyDriver) ErrorCode(err error) driver.ErrorCode {
	var ie plInjectedError
	if errors.As(err, &ie) {
		return ie.code
	}
	return f.CaseStore.ErrorCode(err)
}

func (f *plFaultyDriver) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	if err := f.hit("CreateCase"); err != nil {
		return driver.Case{}, err
	}
	return f.CaseStore.CreateCase(ctx, req)
}

func (f *plFaultyDriver) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := f.hit("AppendEmail"); err != nil {
		return err
	}
	return f.CaseStore.AppendEmail(ctx, id, e)
}

func (f *plFaultyDriver) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	if err := f.hit("LookupProcessed"); err != nil {
		return driver.Processed{}, err
	}
	return f.CaseStore.LookupProcessed(ctx, key)
}

func (f *plFaultyDriver) FindContacts(ctx context.Context, email string) ([]driver.Contact, error) {
	if err := f.hit("FindContacts"); err != nil {
		return nil, err
	}
	return f.CaseStore.FindContacts(ctx, email)
}

func (f *plFaultyDriver) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	if err := f.hit("PutQuarantine"); err != nil {
		return "", err
	}
	return f.CaseStore.(driver.Quarantiner).PutQuarantine(ctx, q)
}

func (f *plFaultyDriver) ListQuarantine(ctx context.Context, mailbox string) ([]driver.QuarantineItem, error) {
	return f.CaseStore.(driver.Quarantiner).ListQuarantine(ctx, mailbox)
}

func (f *plFaultyDriver) DeleteQuarantine(ctx context.Context, id string) error {
	return f.CaseStore.(driver.Quarantiner).DeleteQuarantine(ctx, id)
}

func (f *plFaultyDriver) ListCases(ctx context.Context, o *driver.ListOptions) ([]driver.Case, error) {
	return f.CaseStore.(driver.Lister).ListCases(ctx, o)
}

func (f *plFaultyDriver) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	return f.CaseStore.(driver.Lister).ListInteractions(ctx, id)
}

var (
	_ driver.Quarantiner = (*plFaultyDriver)(nil)
	_ driver.Lister      = (*plFaultyDriver)(nil)
)

// plDriver names driver.CaseStore for embedding without the optional
// interfaces of the wrapped driver.
type plDriver = driver.CaseStore
