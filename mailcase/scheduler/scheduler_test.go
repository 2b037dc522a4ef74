package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

// freshSource hands out one new mail per run, then io.EOF; it records when
// each run started. With block set, Receive waits for ctx instead (a hung
// server); with fail set, it returns an error.
type freshSource struct {
	name  string
	block bool
	fail  bool
	delay time.Duration // processing time simulated in Receive

	mu     sync.Mutex
	n      int
	eof    bool
	starts []time.Time
	acks   map[mailcase.Disposition]int
}

func (s *freshSource) Receive(ctx context.Context) (*mailcase.Received, error) {
	s.mu.Lock()
	if !s.eof {
		s.starts = append(s.starts, time.Now())
	}
	if s.eof {
		s.eof = false
		s.mu.Unlock()
		return nil, io.EOF
	}
	s.eof = !s.block && !s.fail
	s.n++
	n := s.n
	s.mu.Unlock()
	switch {
	case s.block:
		<-ctx.Done()
		return nil, ctx.Err()
	case s.fail:
		return nil, errors.New("connection refused")
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	raw := fmt.Appendf(nil, "From: c@customer.example\r\nSubject: run %d\r\nMessage-ID: <%s-%d@x.example>\r\n\r\nhello\r\n", n, s.name, n)
	return &mailcase.Received{Raw: raw, Mailbox: s.name, ID: fmt.Sprint(n), Attempt: 1}, nil
}

func (s *freshSource) Ack(_ context.Context, _ *mailcase.Received, d mailcase.Disposition, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acks == nil {
		s.acks = map[mailcase.Disposition]int{}
	}
	s.acks[d]++
	return nil
}

func (s *freshSource) runStarts() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.starts...)
}

func pipeline(t *testing.T, name string) *mailcase.Pipeline {
	t.Helper()
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: name}})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func runFor(t *testing.T, s *scheduler.Scheduler, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(d)
	cancel()
	require.NoError(t, <-done)
}

// The ERMS example: mailboxes polled every 10, 15 and 20 minutes; the
// 12:20 wake-up reads A and C together, 12:30 A and B, 13:00 all three.
func TestIntervalsAndCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.New(nil)
		srcs := map[string]*freshSource{}
		for name, every := range map[string]time.Duration{"a": 10 * time.Minute, "b": 15 * time.Minute, "c": 20 * time.Minute} {
			srcs[name] = &freshSource{name: name}
			require.NoError(t, s.Add(scheduler.Job{Name: name, Source: srcs[name], Pipeline: pipeline(t, name), Interval: every}))
		}
		start := time.Now()
		runFor(t, s, time.Hour+time.Second)

		offsets := func(name string) []time.Duration {
			var out []time.Duration
			for _, at := range srcs[name].runStarts() {
				out = append(out, at.Sub(start).Round(time.Second))
			}
			return out
		}
		m := time.Minute
		assert.Equal(t, []time.Duration{0, 10 * m, 20 * m, 30 * m, 40 * m, 50 * m, 60 * m}, offsets("a"))
		assert.Equal(t, []time.Duration{0, 15 * m, 30 * m, 45 * m, 60 * m}, offsets("b"))
		assert.Equal(t, []time.Duration{0, 20 * m, 40 * m, 60 * m}, offsets("c"))

		st := s.Stats()
		assert.EqualValues(t, 9, st.Wakeups, "0,10,15,20,30,40,45,50,60: coalesced")
		assert.EqualValues(t, 16, st.Total.Fetched)
		assert.EqualValues(t, 16, st.Total.Created)
		for _, mb := range st.Mailboxes {
			require.NotNil(t, mb.LastRun, mb.Name)
			assert.EqualValues(t, 1, mb.LastRun.Fetched, mb.Name)
			assert.EqualValues(t, 1, mb.LastRun.Created, mb.Name)
			assert.Empty(t, mb.LastRun.Err)
			assert.Zero(t, mb.Failures)
		}
	})
}

// A mailbox whose server hangs times out run after run; another keeps its
// interval exactly, and a failing one does not disturb it either.
func TestSlowMailboxDoesNotDelayOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.New(nil)
		slow := &freshSource{name: "slow", block: true}
		failing := &freshSource{name: "failing", fail: true}
		fast := &freshSource{name: "fast", delay: 2 * time.Second}
		require.NoError(t, s.Add(scheduler.Job{Name: "slow", Source: slow, Pipeline: pipeline(t, "slow"), Interval: time.Minute, Timeout: 5 * time.Minute}))
		require.NoError(t, s.Add(scheduler.Job{Name: "failing", Source: failing, Pipeline: pipeline(t, "failing"), Interval: time.Minute}))
		require.NoError(t, s.Add(scheduler.Job{Name: "fast", Source: fast, Pipeline: pipeline(t, "fast"), Interval: time.Minute}))
		start := time.Now()
		runFor(t, s, 20*time.Minute+time.Second)

		starts := fast.runStarts()
		require.Len(t, starts, 21)
		for i, at := range starts {
			assert.Equal(t, time.Duration(i)*time.Minute, at.Sub(start), "fast run %d on time", i)
		}
		st := s.Stats()
		byName := map[string]scheduler.MailboxStats{}
		for _, mb := range st.Mailboxes {
			byName[mb.Name] = mb
		}
		assert.EqualValues(t, 20, byName["fast"].Created, "the 21st run was cut by the shutdown")
		assert.Zero(t, byName["fast"].Failures)
		// The hung mailbox: one run per 5-minute timeout, the polls that
		// fell due meanwhile coalesced with it.
		assert.GreaterOrEqual(t, byName["slow"].Failures, int64(3))
		assert.LessOrEqual(t, byName["slow"].Runs, int64(5))
		assert.GreaterOrEqual(t, byName["slow"].Skipped, int64(12))
		assert.EqualValues(t, 21, byName["failing"].Failures)
		assert.Contains(t, byName["failing"].LastRun.Err, "connection refused")
		assert.Positive(t, byName["failing"].Errors)
	})
}

func TestRunTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.New(nil)
		src := &freshSource{name: "hung", block: true}
		require.NoError(t, s.Add(scheduler.Job{Name: "hung", Source: src, Pipeline: pipeline(t, "hung"), Interval: 10 * time.Minute, Timeout: time.Minute}))
		runFor(t, s, 2*time.Minute)
		st := s.Stats()
		require.NotNil(t, st.Mailboxes[0].LastRun)
		assert.Contains(t, st.Mailboxes[0].LastRun.Err, "timed out after 1m0s")
		assert.Equal(t, time.Minute, st.Mailboxes[0].LastRun.End.Sub(st.Mailboxes[0].LastRun.Start))
	})
}

// A continuous mailbox (no interval) is restarted after its run ends.
func TestContinuousRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.New(&scheduler.Options{RestartDelay: time.Second})
		src := &freshSource{name: "push"}
		require.NoError(t, s.Add(scheduler.Job{Name: "push", Source: src, Pipeline: pipeline(t, "push")}))
		runFor(t, s, 10*time.Second+time.Millisecond)
		st := s.Stats()
		assert.EqualValues(t, 11, st.Mailboxes[0].Runs)
		assert.EqualValues(t, 11, st.Mailboxes[0].Created)
		assert.True(t, st.Mailboxes[0].NextDue.IsZero())
	})
}

// Shutdown while a mail is being processed: the mail finishes and is
// acknowledged, nothing else is started.
func TestGracefulShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.New(nil)
		src := &freshSource{name: "a", delay: 10 * time.Second}
		require.NoError(t, s.Add(scheduler.Job{Name: "a", Source: src, Pipeline: pipeline(t, "a"), Interval: time.Minute}))
		runFor(t, s, 65*time.Second) // second run in progress (Receive delayed)
		src.mu.Lock()
		defer src.mu.Unlock()
		assert.Equal(t, 1, src.acks[mailcase.Done], "only the committed mail is acknowledged")
		assert.Zero(t, src.acks[mailcase.Retry]+src.acks[mailcase.Quarantine])
	})
}

func TestAddValidation(t *testing.T) {
	s := scheduler.New(nil)
	src := &freshSource{name: "a"}
	p := pipeline(t, "a")
	require.Error(t, s.Add(scheduler.Job{Name: "", Source: src, Pipeline: p}))
	require.Error(t, s.Add(scheduler.Job{Name: "a", Source: src, Pipeline: p, Interval: -1}))
	require.NoError(t, s.Add(scheduler.Job{Name: "a", Source: src, Pipeline: p, Interval: time.Minute}))
	require.Error(t, s.Add(scheduler.Job{Name: "a", Source: src, Pipeline: p, Interval: time.Minute}))
}

// An interval shorter than the coalescing window keeps its own pace.
func TestShortInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.New(nil) // 1s coalescing window
		src := &freshSource{name: "fast"}
		require.NoError(t, s.Add(scheduler.Job{Name: "fast", Source: src, Pipeline: pipeline(t, "fast"), Interval: 100 * time.Millisecond}))
		runFor(t, s, time.Second+time.Millisecond)
		assert.Len(t, src.runStarts(), 11)
	})
}
