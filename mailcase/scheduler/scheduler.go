// Package scheduler runs many mailboxes from one process: each
// mailbox has a source, a pipeline and its own polling interval; polls that
// fall due together are coalesced into one wake-up (a mailbox already being
// read is not started twice); every mailbox runs in its own goroutine with a
// time limit, so one slow or failing mailbox never delays the others.
//
// A polling mailbox is read by one pipeline run per interval: the run ends
// when its source returns io.EOF (imapsource and pop3source do so at the end
// of a scan). A mailbox with no interval (an IMAP source in Watch mode, an
// LMTP listener) is run continuously and restarted with backoff when its run
// ends.
//
// Statistics per mailbox and per run come from each pipeline's
// counters; every run is logged with slog and Stats returns a snapshot.
//
// The package is pure orchestration over mailcase.Source and the Runner
// interface, which *mailcase.Pipeline implements.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Runner runs a pipeline over a source; *mailcase.Pipeline implements it.
type Runner interface {
	// Run reads src until it returns io.EOF or ctx is done, and
	// acknowledges every mail it received.
	Run(ctx context.Context, src mailcase.Source) error
	// Stats returns the runner's counters since it was created.
	Stats() mailcase.Stats
}

var _ Runner = (*mailcase.Pipeline)(nil)

// flusher is implemented by sources that batch their after-commit actions
// (imapsource); the scheduler flushes them after each run.
type flusher interface {
	Flush(ctx context.Context) error
}

// Job is one mailbox.
type Job struct {
	// Name identifies the mailbox in statistics and logs; it must be
	// unique.
	Name string
	// Source delivers the mailbox's mail. The scheduler does not close it.
	Source mailcase.Source
	// Pipeline files it.
	Pipeline Runner
	// Interval is the polling period; 0 runs the mailbox continuously.
	Interval time.Duration
	// Timeout bounds one run of a polling mailbox (the pipeline then
	// drains the mail in flight); 0 means the larger of Interval and 5
	// minutes.
	Timeout time.Duration
}

// Options configures a Scheduler. A nil *Options means defaults.
type Options struct {
	// Coalesce is the window within which due polls are started by one
	// wake-up (at most half a mailbox's interval); 0 means 1s.
	Coalesce time.Duration
	// RestartDelay is the first pause before a continuous mailbox whose
	// run ended is started again (doubled while runs keep failing, at
	// most 5 minutes); 0 means 1s.
	RestartDelay time.Duration
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Coalesce <= 0 {
		o.Coalesce = time.Second
	}
	if o.RestartDelay <= 0 {
		o.RestartDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Counts are the pipeline counters. Every fetched mail is counted once in
// one of Filtered, Created, Appended (reopened cases included), Recorded
// (filed on the sender's record, no case), Rejected, Structured,
// Duplicates, Quarantined and Deferred (left for redelivery), so that they
// add up to Fetched; Auto counts automatic mail and bounces among them, and
// Errors counts failures (some of them also Quarantined or Deferred).
type Counts struct {
	Fetched     int64 `json:"fetched"`
	Filtered    int64 `json:"filtered"`
	Created     int64 `json:"created"`
	Appended    int64 `json:"appended"`
	Recorded    int64 `json:"recorded"`
	Rejected    int64 `json:"rejected"`
	Structured  int64 `json:"structured"`
	Duplicates  int64 `json:"duplicates"`
	Quarantined int64 `json:"quarantined"`
	Deferred    int64 `json:"deferred"`
	Auto        int64 `json:"auto"`
	Errors      int64 `json:"errors"`
}

func countsOf(s mailcase.Stats) Counts {
	return Counts{
		Fetched: s.Received, Filtered: s.Filtered, Created: s.Created,
		Appended: s.Appended + s.Reopened, Recorded: s.Recorded, Rejected: s.Rejected,
		Structured: s.Structured, Duplicates: s.Duplicates, Quarantined: s.Quarantined,
		Deferred: s.Deferred, Auto: s.Auto, Errors: s.Errors,
	}
}

func (c Counts) sub(o Counts) Counts {
	o.neg()
	c.add(o)
	return c
}

func (c *Counts) neg() {
	for _, p := range c.fields() {
		*p = -*p
	}
}

func (c *Counts) add(o Counts) {
	of := o.fields()
	for i, p := range c.fields() {
		*p += *of[i]
	}
}

func (c *Counts) fields() []*int64 {
	return []*int64{&c.Fetched, &c.Filtered, &c.Created, &c.Appended, &c.Recorded, &c.Rejected,
		&c.Structured, &c.Duplicates, &c.Quarantined, &c.Deferred, &c.Auto, &c.Errors}
}

// logAttrs returns the counters as log attributes.
func (c Counts) logAttrs() []any {
	return []any{"fetched", c.Fetched, "filtered", c.Filtered, "created", c.Created, "appended", c.Appended,
		"recorded", c.Recorded, "rejected", c.Rejected, "structured", c.Structured, "duplicates", c.Duplicates,
		"quarantined", c.Quarantined, "deferred", c.Deferred, "auto", c.Auto, "errors", c.Errors}
}

// RunStats describes one run of one mailbox.
type RunStats struct {
	Mailbox string    `json:"mailbox"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Counts
	// Err is the run's error ("" for a clean end).
	Err string `json:"error,omitempty"`
}

// MailboxStats are one mailbox's statistics.
type MailboxStats struct {
	Name string `json:"name"`
	// Counts are the totals of the mailbox's pipeline, including a run in
	// progress.
	Counts
	Runs     int64 `json:"runs"`
	Failures int64 `json:"failures"`
	// Skipped counts polls that fell due while the previous run was
	// still going (coalesced with it).
	Skipped int64     `json:"skipped"`
	Running bool      `json:"running"`
	NextDue time.Time `json:"next_due,omitzero"`
	// LastRun is the last finished run, nil before the first.
	LastRun *RunStats `json:"last_run,omitempty"`
}

// Stats is a snapshot of the scheduler.
type Stats struct {
	// Wakeups counts timer wake-ups that started at least one poll; polls
	// falling due together share one.
	Wakeups   int64          `json:"wakeups"`
	Total     Counts         `json:"total"`
	Mailboxes []MailboxStats `json:"mailboxes"`
}

type job struct {
	Job
	running  bool
	next     time.Time
	runs     int64
	failures int64
	skipped  int64
	last     *RunStats
}

// Scheduler runs jobs. Add jobs, then call Run once. Stats may be called
// from any goroutine at any time.
type Scheduler struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	jobs    []*job
	byName  map[string]*job
	wakeups int64
	started bool
	done    chan struct{} // a polling run ended
}

// New returns a scheduler.
func New(opts *Options) *Scheduler {
	var o Options
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	return &Scheduler{opts: o, log: o.Logger.With("component", "scheduler"), byName: map[string]*job{}, done: make(chan struct{}, 1)}
}

// Add registers a mailbox; it fails after Run has started or for a
// duplicate name.
func (s *Scheduler) Add(j Job) error {
	if j.Name == "" || j.Source == nil || j.Pipeline == nil {
		return fmt.Errorf("scheduler: job needs a name, a source and a pipeline")
	}
	if j.Interval < 0 || j.Timeout < 0 {
		return fmt.Errorf("scheduler: mailbox %s: negative interval or timeout", j.Name)
	}
	if j.Timeout == 0 {
		j.Timeout = max(j.Interval, 5*time.Minute)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("scheduler: Add after Run")
	}
	if _, dup := s.byName[j.Name]; dup {
		return fmt.Errorf("scheduler: duplicate mailbox %s", j.Name)
	}
	jb := &job{Job: j}
	s.jobs = append(s.jobs, jb)
	s.byName[j.Name] = jb
	return nil
}

// Run polls every mailbox at once, then each at its interval, until ctx is
// done; it then stops starting runs, lets the runs in progress drain (each
// pipeline finishes the mail in flight and acknowledges only what is
// committed) and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("scheduler: Run called twice")
	}
	s.started = true
	now := time.Now()
	for _, j := range s.jobs {
		j.next = now
	}
	jobs := slices.Clone(s.jobs)
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, j := range jobs {
		if j.Interval == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.continuous(ctx, j)
			}()
		}
	}
	s.log.Info("scheduler started", "mailboxes", len(jobs))
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			s.log.Info("scheduler stopped")
			return nil
		case <-t.C:
		case <-s.done:
		}
		now := time.Now()
		s.mu.Lock()
		var due []*job
		var next time.Time
		for _, j := range jobs {
			if j.Interval == 0 {
				continue
			}
			// A poll due within the coalescing window (at most half the
			// mailbox's interval) starts with this wake-up.
			window := min(s.opts.Coalesce, j.Interval/2)
			if !j.next.After(now.Add(window)) {
				if j.running {
					j.skipped++
				} else {
					due = append(due, j)
					j.running = true
				}
				// Next poll on the mailbox's own grid, skipping missed ones.
				for !j.next.After(now.Add(window)) {
					j.next = j.next.Add(j.Interval)
				}
			}
			if next.IsZero() || j.next.Before(next) {
				next = j.next
			}
		}
		if len(due) > 0 {
			s.wakeups++
		}
		s.mu.Unlock()
		if len(due) > 0 {
			names := make([]string, len(due))
			for i, j := range due {
				names[i] = j.Name
			}
			s.log.Debug("poll", "mailboxes", names)
		}
		for _, j := range due {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.poll(ctx, j)
			}()
		}
		if !next.IsZero() {
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(max(time.Until(next), 0))
		}
	}
}

// poll runs one bounded pipeline run of a polling mailbox.
func (s *Scheduler) poll(ctx context.Context, j *job) {
	rctx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	s.runOnce(rctx, j)
	s.mu.Lock()
	j.running = false
	s.mu.Unlock()
	select {
	case s.done <- struct{}{}:
	default:
	}
}

// continuous keeps a mailbox without interval running.
func (s *Scheduler) continuous(ctx context.Context, j *job) {
	s.mu.Lock()
	j.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		j.running = false
		s.mu.Unlock()
	}()
	delay := s.opts.RestartDelay
	for ctx.Err() == nil {
		err := s.runOnce(ctx, j)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			delay = s.opts.RestartDelay
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err != nil {
			delay = min(delay*2, 5*time.Minute)
		}
	}
}

func (s *Scheduler) runOnce(ctx context.Context, j *job) error {
	before := countsOf(j.Pipeline.Stats())
	start := time.Now()
	err := j.Pipeline.Run(ctx, j.Source)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		err = fmt.Errorf("run timed out after %v: %w", j.Timeout, err)
	} else if err == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("run timed out after %v", j.Timeout)
	}
	if f, ok := j.Source.(flusher); ok {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if ferr := f.Flush(fctx); ferr != nil {
			s.log.Warn("after-commit actions deferred", "mailbox", j.Name, "err", ferr)
		}
		cancel()
	}
	rs := &RunStats{Mailbox: j.Name, Start: start, End: time.Now(), Counts: countsOf(j.Pipeline.Stats()).sub(before)}
	if err != nil {
		rs.Err = err.Error()
	}
	s.mu.Lock()
	j.runs++
	if err != nil {
		j.failures++
	}
	j.last = rs
	s.mu.Unlock()
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	args := append([]any{"mailbox", j.Name, "duration", rs.End.Sub(rs.Start)}, rs.logAttrs()...)
	if err != nil {
		args = append(args, "err", err)
	}
	s.log.Log(context.WithoutCancel(ctx), level, "mailbox run", args...)
	return err
}

// RunOnce runs every mailbox once, all at the same time, each bounded by
// its Timeout, flushes their sources and returns the runs' errors joined.
// A mailbox without interval is run once too: its source must end its run
// (an IMAP source in Watch mode never does; open it without Watch). It is
// the single pass of a cron job and is not combined with Run.
func (s *Scheduler) RunOnce(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("scheduler: RunOnce after Run")
	}
	s.started = true
	jobs := slices.Clone(s.jobs)
	for _, j := range jobs {
		j.running = true
	}
	s.mu.Unlock()
	s.log.Info("scheduler single pass", "mailboxes", len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, j.Timeout)
			defer cancel()
			if err := s.runOnce(rctx, j); err != nil {
				errs[i] = fmt.Errorf("mailbox %s: %w", j.Name, err)
			}
			s.mu.Lock()
			j.running = false
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stats returns a snapshot of every mailbox's statistics, in the order the
// mailboxes were added.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Wakeups: s.wakeups, Mailboxes: make([]MailboxStats, 0, len(s.jobs))}
	for _, j := range s.jobs {
		ms := MailboxStats{
			Name: j.Name, Counts: countsOf(j.Pipeline.Stats()), Runs: j.runs, Failures: j.failures,
			Skipped: j.skipped, Running: j.running,
		}
		if j.Interval > 0 {
			ms.NextDue = j.next
		}
		if j.last != nil {
			l := *j.last
			ms.LastRun = &l
		}
		st.Total.add(ms.Counts)
		st.Mailboxes = append(st.Mailboxes, ms)
	}
	return st
}
