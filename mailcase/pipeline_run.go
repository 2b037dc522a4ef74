package mailcase

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Run receives mail from src and processes it until ctx is done, the
// pipeline is closed, or a finite source is exhausted (io.EOF):
//
//   - up to Options.MaxConcurrency mails are in flight at once (received and
//     not yet acknowledged); mails of one thread (the root of References /
//     In-Reply-To, else the Message-ID) are processed one at a time, in the
//     order received, so two replies to a new thread never race into two
//     cases;
//   - every mail is acknowledged after its outcome is committed (Done),
//     set aside (Quarantine) or left for redelivery (Retry); Ack runs
//     without ctx's cancellation, bounded by Options.AckTimeout, so a
//     committed mail is acknowledged even on shutdown;
//   - when ctx is done (or Close is called) Run stops calling Receive and
//     waits for the mails in flight, at most Options.DrainTimeout; after
//     that their processing context is cancelled and they are left for
//     redelivery (Retry).
//
// A mail left for Retry goes back to the source (IMAP leaves it on the
// server and delivers it again later); while mails keep ending in Retry,
// Run pauses before each receive (Options.RetryDelay doubled per mail, at
// most 64 times it and 30s) so that a store outage does not become a hot
// loop; the first mail filed or set aside ends the pause. Quarantine is
// acknowledged to the source, which sets the mail aside
// (ProcessOptions.SourceQuarantines).
//
// Run returns nil after a clean stop (ctx done, Close, or io.EOF from the
// source) and the first fatal Source error otherwise. A Source returning
// neither a mail nor an error is a bug: Run stops with an Internal error
// wrapping ErrNilReceived. A Receive error that
// IsRetryable is retried with back-off up to Options.MaxAttempts times in a
// row before it is fatal. A failed Ack is logged at Error level and counted
// in Stats.Errors; it is not fatal (the mail is redelivered and recognised
// as a duplicate).
func (p *Pipeline) Run(ctx context.Context, src Source) error {
	const op = "Run"
	if src == nil {
		return &Error{Code: InvalidArgument, Op: op, Err: errors.New("nil source")}
	}
	if p.isClosed() {
		return errClosed(op)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	// The processing context outlives ctx by at most DrainTimeout.
	procCtx, stopProc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProc()
	drained := make(chan struct{})
	var watchers sync.WaitGroup
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		select {
		case <-p.done:
			stopRun()
		case <-runCtx.Done():
		case <-drained:
			return
		}
		t := time.NewTimer(p.opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			p.log.Warn("drain timeout; cancelling mails in flight", "timeout", p.opts.DrainTimeout)
			stopProc()
		case <-drained:
		}
	}()

	p.log.InfoContext(ctx, "pipeline run started", "concurrency", p.opts.MaxConcurrency)
	before := p.Stats()
	slots := make(chan struct{}, p.opts.MaxConcurrency)
	sched := &threadScheduler{active: map[string][]*Received{}}
	var (
		workers  sync.WaitGroup
		fatal    error
		failures int
		seq      atomic.Int64
		retries  atomic.Int64 // mails left for Retry in a row (not shutdown)
	)
	delay := p.opts.RetryDelay
loop:
	for {
		// Back off while mails keep failing transiently (a store outage):
		// a source such as IMAP redelivers a Retry mail on its next
		// receive, which must not turn into a hot loop.
		if n := retries.Load(); n > 0 {
			if !sleepCtx(runCtx, p.retryBackoff(n)) {
				break loop
			}
		}
		select {
		case slots <- struct{}{}:
		case <-runCtx.Done():
			break loop
		}
		r, err := p.receive(runCtx, src)
		if err != nil {
			<-slots
			switch {
			case runCtx.Err() != nil:
				break loop
			case errors.Is(err, io.EOF):
				break loop
			case IsRetryable(err) && failures+1 < p.opts.MaxAttempts:
				failures++
				p.stats.errors.Add(1)
				p.log.WarnContext(ctx, "receive failed; retrying", logKeyErr, err, logKeyAttempt, failures)
				if !sleepCtx(runCtx, delay) {
					break loop
				}
				delay *= 2
				continue
			}
			p.stats.errors.Add(1)
			fatal = err
			p.log.ErrorContext(ctx, "receive failed; stopping", logKeyErr, err)
			break loop
		}
		failures, delay = 0, p.opts.RetryDelay
		if r == nil {
			// A Source must block until it has a mail; (nil, nil) again
			// and again would spin this loop.
			<-slots
			p.stats.errors.Add(1)
			fatal = &Error{Code: Internal, Op: "Receive", Err: ErrNilReceived}
			p.log.ErrorContext(ctx, "source returned neither a mail nor an error; stopping", logKeyErr, fatal)
			break loop
		}
		key := ThreadKey(r.Raw)
		if key == "" {
			key = "\x00" + strconv.FormatInt(seq.Add(1), 10) // no IDs: its own thread
		}
		if !sched.enqueue(key, r) {
			continue // queued behind the running mail of its thread
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			for r := r; r != nil; r = sched.next(key) {
				switch p.handle(procCtx, src, r, key) {
				case Retry:
					if procCtx.Err() == nil && runCtx.Err() == nil {
						retries.Add(1)
					}
				default:
					retries.Store(0)
				}
				<-slots
			}
		}()
	}
	workers.Wait()
	close(drained)
	watchers.Wait()
	p.log.InfoContext(ctx, "pipeline run stopped", "run", p.Stats().sub(before), logKeyErr, fatal)
	return fatal
}

// receive calls src.Receive, turning a panic of the source into an error.
func (p *Pipeline) receive(ctx context.Context, src Source) (r *Received, err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.ErrorContext(ctx, "recovered panic in Source.Receive", logKeyErr, fmt.Sprint(v), "stack", string(debug.Stack()))
			r, err = nil, &Error{Code: Internal, Op: "Receive", Err: fmt.Errorf("panic: %v", v)}
		}
	}()
	return src.Receive(ctx)
}

// ErrNilReceived is wrapped by the error of Run when its Source's Receive
// returned neither a mail nor an error (a Source bug: Receive must block
// until a mail is available, or return an error such as io.EOF).
var ErrNilReceived = errors.New("mailcase: Source.Receive returned no mail and no error")

// maxRunBackoff bounds the pause of Run between receives while mails keep
// failing transiently (also bounded by 64 × Options.RetryDelay).
const maxRunBackoff = 30 * time.Second

// retryBackoff is the pause before the next receive after n mails in a row
// were left for Retry: RetryDelay doubled per mail, at most 64 × RetryDelay
// and maxRunBackoff.
func (p *Pipeline) retryBackoff(n int64) time.Duration {
	d := p.opts.RetryDelay << min(n-1, 6)
	return min(d, maxRunBackoff)
}

// handle processes and acknowledges one received mail and returns its
// disposition.
func (p *Pipeline) handle(ctx context.Context, src Source, r *Received, key string) Disposition {
	attempt := r.Attempt
	if attempt == 0 {
		attempt = 1
	}
	if strings.HasPrefix(key, "\x00") {
		key = "" // no IDs: nothing to serialise with
	}
	res, perr := p.process(ctx, r.Raw, ProcessOptions{Quiet: r.Quiet, Attempt: attempt, Size: r.Size,
		Truncated: r.Truncated, SourceQuarantines: true}, "", key)
	p.countDeferred(res, false)
	o := &res.Outcome
	if o.Disposition == Retry {
		// Process returns the failure instead of logging it; Run handles
		// it here, once. A transient cause or a shutdown is expected to
		// clear; a permanent one nobody could quarantine needs an operator.
		level := slog.LevelError
		switch {
		case ctx.Err() != nil:
			level = slog.LevelDebug
		case IsRetryable(perr):
			level = slog.LevelWarn
		}
		p.log.Log(ctx, level, "mail left for redelivery", logKeySource, r.Mailbox, "source_id", r.ID,
			logKeyMsgID, res.msgID(), logKeyAttempt, attempt, logKeyErr, perr)
	}
	reason := ""
	if o.Disposition != Done {
		reason = o.Error
	}
	if err := p.ack(ctx, src, r, o.Disposition, reason); err != nil {
		p.stats.errors.Add(1)
		o.Record(stageAck, "failed", err.Error())
		p.log.ErrorContext(ctx, "ack failed; the mail will be redelivered", logKeySource, r.Mailbox,
			"source_id", r.ID, logKeyDisposition, o.Disposition.String(), logKeyThreadKey, key, logKeyErr, err)
	} else {
		o.Record(stageAck, o.Disposition.String(), reason)
	}
	p.log.DebugContext(ctx, "mail processed", logKeyMsgID, res.msgID(), logKeyAction, string(o.Action),
		logKeyDisposition, o.Disposition.String(), logKeyCaseID, string(o.CaseID))
	if f := p.opts.OnResult; f != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					p.log.ErrorContext(ctx, "recovered panic in OnResult", logKeyErr, fmt.Sprint(v), "stack", string(debug.Stack()))
				}
			}()
			f(ctx, res)
		}()
	}
	return o.Disposition
}

func (r *Result) msgID() string {
	if r.Message != nil {
		return r.Message.ID
	}
	return ""
}

// ack calls src.Ack without ctx's cancellation, bounded by AckTimeout,
// recovering a panic of the source.
func (p *Pipeline) ack(ctx context.Context, src Source, r *Received, d Disposition, reason string) (err error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.AckTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			p.log.ErrorContext(ctx, "recovered panic in Source.Ack", logKeyErr, fmt.Sprint(v), "stack", string(debug.Stack()))
			err = &Error{Code: Internal, Op: "Ack", Err: fmt.Errorf("panic: %v", v)}
		}
	}()
	return src.Ack(actx, r, d, reason)
}

// threadScheduler serialises mails of one thread: the first mail of a key
// starts a worker, later ones queue behind it in arrival order.
type threadScheduler struct {
	mu     sync.Mutex
	active map[string][]*Received // present while a worker runs the key
}

// enqueue reports whether r must start a worker (its key was idle).
func (s *threadScheduler) enqueue(key string, r *Received) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, busy := s.active[key]; busy {
		s.active[key] = append(q, r)
		return false
	}
	s.active[key] = []*Received{}
	return true
}

// next pops the next mail of key, or marks the key idle and returns nil.
func (s *threadScheduler) next(key string) *Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.active[key]
	if len(q) == 0 {
		delete(s.active, key)
		return nil
	}
	r := q[0]
	q[0] = nil
	s.active[key] = q[1:]
	return r
}

// ThreadKey returns the key under which Run serialises a raw mail: the
// root (first) Message-ID of its References, else of its In-Reply-To, else
// its own Message-ID, or "" when it has none. Only the header is read,
// at most 256 KiB of it.
func ThreadKey(raw []byte) string {
	var refs, irt, mid string
	scanHeader(raw[:min(len(raw), maxHeaderScan)], func(name, value []byte) {
		switch {
		case refs == "" && bytes.EqualFold(name, []byte("References")):
			refs = string(value)
		case irt == "" && bytes.EqualFold(name, []byte("In-Reply-To")):
			irt = string(value)
		case mid == "" && bytes.EqualFold(name, []byte("Message-Id")):
			mid = string(value)
		}
	})
	for _, v := range [...]string{refs, irt} {
		if ids := ParseMessageIDList(v); len(ids) > 0 {
			return ids[0]
		}
	}
	return NormalizeMessageID(mid)
}

// scanHeader calls f for each header field of b (name trimmed, value
// unfolded), stopping at the first empty line. It tolerates LF or CRLF and
// malformed lines. The slices passed to f are only valid during the call.
func scanHeader(b []byte, f func(name, value []byte)) {
	var name []byte
	var val []byte
	flush := func() {
		if len(name) > 0 {
			f(name, bytes.TrimSpace(val))
		}
		name, val = nil, val[:0]
	}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(name) > 0 {
				val = append(val, ' ')
				val = append(val, bytes.TrimSpace(line)...)
			}
			continue
		}
		flush()
		if c := bytes.IndexByte(line, ':'); c > 0 {
			name = bytes.TrimSpace(line[:c])
			val = append(val, line[c+1:]...)
		}
	}
	flush()
}
