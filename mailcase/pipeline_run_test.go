package mailcase_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// plRunCorpus runs n generated mails through a fresh pipeline with the given
// concurrency and returns the store, pipeline and source.
func plRunCorpus(t *testing.T, corpus [][]byte, concurrency int) (*mailcase.Store, *mailcase.Pipeline, *mailcasetest.Source) {
	t.Helper()
	s := plStore(t)
	p := plPipeline(t, s, &mailcase.Options{MaxConcurrency: concurrency,
		Mailbox: mailcase.Mailbox{Name: "support", Address: mailcasetest.CorpusMailbox}})
	src := mailcasetest.NewSource(corpus...)
	require.NoError(t, p.Run(t.Context(), src))
	return s, p, src
}

func TestPipeline_RunCorpusConcurrentExactlyOnce(t *testing.T) {
	corpus := mailcasetest.GenerateCorpus(200, 7)
	s, p, src := plRunCorpus(t, corpus, 4)
	acks := src.Acks()
	require.Len(t, acks, len(corpus))
	assert.Zero(t, src.InFlight())
	for _, a := range acks {
		assert.Equal(t, mailcase.Done, a.Disposition, a.Reason)
	}
	st := p.Stats()
	t.Logf("corpus stats: %+v", st)
	assert.Equal(t, int64(200), st.Received)
	assert.Equal(t, int64(200), st.Created+st.Appended+st.Reopened+st.Recorded+st.Filtered+st.Rejected+st.Duplicates+st.Structured, "%+v", st)
	assert.Zero(t, st.Quarantined)
	assert.Zero(t, st.Errors)

	// Every plMail is filed exactly once: its key is known, and the number of
	// filed mails equals the number of distinct keys.
	keys := map[string]bool{}
	for _, raw := range corpus {
		m, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err)
		k := mailcase.IdempotencyKey("support", m)
		keys[k] = true
		_, ok, err := s.LookupProcessed(t.Context(), k)
		require.NoError(t, err)
		assert.True(t, ok, "plMail %s not filed", m.ID)
	}
	filed := len(plCaseless(t, s))
	cases := plCases(t, s)
	for _, c := range cases {
		filed += len(plCaseMails(t, s, c.ID))
	}
	assert.Equal(t, len(keys), filed, "each plMail filed exactly once")
	assert.Equal(t, int(st.Created), len(cases))

	// The same corpus run sequentially gives the same cases: concurrency
	// changes nothing (per-thread serialisation).
	s1, p1, _ := plRunCorpus(t, corpus, 1)
	assert.Equal(t, p1.Stats(), st)
	assert.Len(t, plCases(t, s1), len(cases))

	// Running the corpus again files nothing new.
	src2 := mailcasetest.NewSource(corpus...)
	require.NoError(t, p.Run(t.Context(), src2))
	assert.Equal(t, int64(200), p.Stats().Duplicates-st.Duplicates)
	assert.Len(t, plCases(t, s), len(cases))
}

func TestPipeline_RunSerialisesThread(t *testing.T) {
	s := plStore(t)
	var inRouter atomic.Int32
	var overlap atomic.Bool
	slow := mailcase.RouterFunc(func(ctx context.Context, d *mailcase.Delivery) (mailcase.Route, error) {
		if inRouter.Add(1) > 1 {
			overlap.Store(true)
		}
		defer inRouter.Add(-1)
		time.Sleep(30 * time.Millisecond)
		return mailcase.Route{Queue: "q"}, nil
	})
	p := plPipeline(t, s, &mailcase.Options{Router: slow, MaxConcurrency: 4})
	src := mailcasetest.NewSource(
		plMail("ann@c.example", "New thread", "root@c.example", "first"),
		plReply("ann@c.example", "New thread", "r1@c.example", "root@c.example"),
		plReply("bob@c.example", "New thread", "r2@c.example", "root@c.example"),
		plMail("zed@c.example", "Other thread", "other@c.example", "parallel"),
	)
	require.NoError(t, p.Run(t.Context(), src))
	cases := plCases(t, s)
	require.Len(t, cases, 2, "the replies are appended to the thread's one case")
	st := p.Stats()
	assert.Equal(t, int64(2), st.Created)
	assert.Equal(t, int64(2), st.Appended)
	assert.True(t, overlap.Load(), "mails of different threads run in parallel")
}

// plCtxSource wraps a Source and records whether Ack saw a live context.
type plCtxSource struct {
	*mailcasetest.Source
	mu       sync.Mutex
	ackCtxOK []bool
}

func (c *plCtxSource) Ack(ctx context.Context, r *mailcase.Received, d mailcase.Disposition, reason string) error {
	c.mu.Lock()
	c.ackCtxOK = append(c.ackCtxOK, ctx.Err() == nil)
	c.mu.Unlock()
	return c.Source.Ack(ctx, r, d, reason)
}

func TestPipeline_RunStopsOnCancel(t *testing.T) {
	s := plStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{}, 10)
	router := mailcase.RouterFunc(func(context.Context, *mailcase.Delivery) (mailcase.Route, error) {
		started <- struct{}{}
		time.Sleep(50 * time.Millisecond) // in flight when ctx is cancelled
		return mailcase.Route{}, nil
	})
	p := plPipeline(t, s, &mailcase.Options{Router: router, MaxConcurrency: 2})
	src := &plCtxSource{Source: mailcasetest.NewSource(plMail("a@b.example", "1", "s1@b", "x"), plMail("c@b.example", "2", "s2@b", "x"))}
	src.Endless = true
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, src) }()
	<-started
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a clean stop returns nil")
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	assert.Zero(t, src.InFlight(), "every received plMail is acknowledged")
	for _, a := range src.Acks() {
		assert.Equal(t, mailcase.Done, a.Disposition, "committed plMail is acknowledged Done during shutdown")
	}
	assert.NotEmpty(t, src.Acks())
	for _, ok := range src.ackCtxOK {
		assert.True(t, ok, "Ack runs without the cancelled context")
	}
}

func TestPipeline_RunDrainTimeout(t *testing.T) {
	s := plStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	router := mailcase.RouterFunc(func(ctx context.Context, _ *mailcase.Delivery) (mailcase.Route, error) {
		close(started)
		<-ctx.Done() // stuck until the drain timeout cancels it
		return mailcase.Route{}, ctx.Err()
	})
	p := plPipeline(t, s, &mailcase.Options{Router: router, DrainTimeout: 20 * time.Millisecond})
	src := mailcasetest.NewSource(plMail("a@b.example", "1", "dt1@b", "x"))
	src.Endless = true
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, src) }()
	<-started
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after the drain timeout")
	}
	acks := src.Acks()
	require.Len(t, acks, 1)
	assert.Equal(t, mailcase.Retry, acks[0].Disposition)
	q, err := s.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Empty(t, q)
}

func TestPipeline_RunCloseStops(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	src := mailcasetest.NewSource()
	src.Endless = true
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context(), src) }()
	src.Add(plMail("a@b.example", "1", "cl1@b", "x"))
	require.Eventually(t, func() bool { return len(src.Acks()) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on Close")
	}
}

func TestPipeline_RunSourceErrors(t *testing.T) {
	fatal := errors.New("mailbox gone")
	t.Run("fatal receive error", func(t *testing.T) {
		p := plPipeline(t, plStore(t), nil)
		src := mailcasetest.NewSource(plMail("a@b.example", "1", "se1@b", "x"), plMail("a@b.example", "2", "se2@b", "x"))
		src.ReceiveErr, src.ReceiveErrAfter = fatal, 1
		err := p.Run(t.Context(), src)
		require.ErrorIs(t, err, fatal)
		assert.Len(t, src.Acks(), 1, "the plMail in flight was finished")
		assert.Equal(t, int64(1), p.Stats().Errors)
	})
	t.Run("transient receive error", func(t *testing.T) {
		p := plPipeline(t, plStore(t), nil)
		src := mailcasetest.NewSource(plMail("a@b.example", "1", "se3@b", "x"))
		src.ReceiveErr = mailcase.NewError(mailcase.Unavailable, "fetch", errors.New("timeout"))
		src.ReceiveErrTimes = 2
		require.NoError(t, p.Run(t.Context(), src))
		assert.Len(t, src.Acks(), 1)
	})
	t.Run("persistent transient error is fatal", func(t *testing.T) {
		p := plPipeline(t, plStore(t), &mailcase.Options{MaxAttempts: 2})
		src := mailcasetest.NewSource()
		src.ReceiveErr = mailcase.NewError(mailcase.Unavailable, "fetch", errors.New("timeout"))
		assert.Equal(t, mailcase.Unavailable, mailcase.Code(p.Run(t.Context(), src)))
	})
	t.Run("ack error is not fatal", func(t *testing.T) {
		p := plPipeline(t, plStore(t), nil)
		src := mailcasetest.NewSource(plMail("a@b.example", "1", "se4@b", "x"), plMail("a@b.example", "2", "se5@b", "x"))
		src.AckErr = errors.New("flag failed")
		var results atomic.Int32
		p2 := plPipeline(t, plStore(t), &mailcase.Options{OnResult: func(_ context.Context, r *mailcase.Result) {
			results.Add(1)
			panic("OnResult bug") // recovered
		}})
		require.NoError(t, p.Run(t.Context(), src))
		assert.Len(t, src.Acks(), 2)
		assert.Equal(t, int64(2), p.Stats().Errors)
		require.NoError(t, p2.Run(t.Context(), mailcasetest.NewSource(plMail("a@b.example", "1", "se6@b", "x"))))
		assert.Equal(t, int32(1), results.Load())
	})
	t.Run("nil source", func(t *testing.T) {
		p := plPipeline(t, plStore(t), nil)
		assert.ErrorIs(t, p.Run(t.Context(), nil), mailcase.ErrInvalidArgument)
	})
}

func TestPipeline_RunQuietAndAttempt(t *testing.T) {
	s := plStore(t)
	var got *mailcase.Result
	p := plPipeline(t, s, &mailcase.Options{OnResult: func(_ context.Context, r *mailcase.Result) { got = r }})
	src := mailcasetest.NewSource(plMail("a@b.example", "1", "qa1@b", "x"))
	src.Quiet = true
	require.NoError(t, p.Run(t.Context(), src))
	require.NotNil(t, got)
	st, ok := plStepOf(got, "receive")
	require.True(t, ok)
	assert.Contains(t, st.Reason, "quiet")
	ack, ok := plStepOf(got, "ack")
	require.True(t, ok)
	assert.Equal(t, "done", ack.Decision)
}

func TestPipeline_ProcessSerialisesThread(t *testing.T) {
	s := plStore(t)
	var in atomic.Int32
	var overlap atomic.Bool
	router := mailcase.RouterFunc(func(context.Context, *mailcase.Delivery) (mailcase.Route, error) {
		if in.Add(1) > 1 {
			overlap.Store(true)
		}
		time.Sleep(20 * time.Millisecond)
		in.Add(-1)
		return mailcase.Route{}, nil
	})
	p := plPipeline(t, s, &mailcase.Options{Router: router})
	run := func(raws ...[]byte) {
		var wg sync.WaitGroup
		for _, raw := range raws {
			wg.Go(func() {
				_, err := p.Process(context.Background(), raw, nil)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
	}
	// Two replies to a thread whose root is unknown: same thread key.
	run(plReply("a@b.example", "T", "ps1@b", "root@elsewhere"), plReply("c@b.example", "T", "ps2@b", "root@elsewhere"))
	assert.False(t, overlap.Load(), "mails of one thread never run at once in Process")
	run(plMail("a@b.example", "T1", "ps3@b", "x"), plMail("c@b.example", "T2", "ps4@b", "x"))
	assert.True(t, overlap.Load(), "mails of different threads run at once")
}
