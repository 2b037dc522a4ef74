package mailcase

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Stage names, in processing order; they appear in Outcome.Steps.
const (
	stageReceive     = "receive"
	stageSize        = "size"
	stageParse       = "parse"
	stageIdempotency = "idempotency"
	stageFilter      = "filter"
	stageAuto        = "auto"
	stageAuth        = "auth"
	stageStructured  = "structured"
	stageSender      = "sender"
	stageExtract     = "extract"
	stageThread      = "thread"
	stageRoute       = "route"
	stageFile        = "file"
	stageRetry       = "retry"
	stageQuarantine  = "quarantine"
	stageAck         = "ack"
	stageRespond     = "respond"
)

// job is one mail in flight. It is owned by one goroutine.
type job struct {
	p         *Pipeline
	raw       []byte
	po        ProcessOptions
	reprocess string // quarantine ID when re-processing: never quarantine again
	oversized bool   // filed unanalysed: the raw mail is its attachment, not kept apart
	res       *Result
	out       *Outcome
	m         *Message
	d         Delivery
	key       string
	fp        string // content fingerprint (ContentFingerprint), set by dedupe
	reusedID  bool   // key is derived: the Message-ID was filed for another mail
	stage     string
	log       *slog.Logger // with the Message-ID once parsed; see logger
	logID     string

	// threadKey is the mail's ThreadKey, threadKeyUnknown until the header
	// is read; unlock releases the thread lock taken by lockThread.
	threadKey string
	unlock    func()

	// answered marks the Responders whose answer was queued with the new
	// case (CaseResponder): respond skips them.
	answered map[int]bool
}

// party is what the sender stage hands the filing stages: the contact
// and account the mail is filed under (either may be "").
type party struct{ contactID, accountID string }

// logger returns the pipeline logger with the mail's Message-ID, built on
// first use (most mails log nothing).
func (j *job) logger() *slog.Logger {
	if j.log == nil || j.logID != j.msgID() {
		j.log, j.logID = j.p.log, j.msgID()
		if j.logID != "" {
			j.log = j.p.log.With(logKeyMsgID, j.logID)
		}
	}
	return j.log
}

func (j *job) msgID() string {
	if j.m != nil {
		return j.m.ID
	}
	return ""
}

// panicError marks an error made from a recovered panic.
type panicError struct {
	stage string
	v     any
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v (stage %s)", e.v, e.stage) }

// process runs one mail with retries, quarantine and panic recovery.
// threadKey is the mail's ThreadKey ("" for none, threadKeyUnknown to
// compute it); mails of one thread are processed one at a time.
func (p *Pipeline) process(ctx context.Context, raw []byte, po ProcessOptions, reprocess, threadKey string) (res *Result, err error) {
	j := &job{p: p, raw: raw, po: po, reprocess: reprocess, res: &Result{}}
	j.out = &j.res.Outcome
	j.out.Mailbox = p.mb.Name
	j.out.Steps = make([]Step, 0, 16)
	j.d.Mailbox = &p.mb
	if !po.DryRun {
		p.stats.received.Add(1)
	}
	j.receive()
	j.threadKey = threadKey
	defer func() {
		if j.unlock != nil {
			j.unlock()
		}
		// Last resort: a panic outside the stages (a driver panicking while
		// the quarantine is written) leaves the mail for redelivery.
		if v := recover(); v != nil {
			j.logger().ErrorContext(ctx, "recovered panic outside the stages; mail left for redelivery",
				logKeyErr, fmt.Sprint(v), "stack", string(debug.Stack()))
			err = &Error{Code: Internal, Op: "process", Err: &panicError{stage: j.stage, v: v}}
			j.retryLater(err)
			res = j.res
		}
	}()

	delay := p.opts.RetryDelay
	for attempt := 1; ; attempt++ {
		err = j.attempt(ctx)
		if err == nil {
			j.out.Disposition = Done
			break
		}
		if ctx.Err() != nil {
			// Shutdown or caller deadline: nothing was committed that a
			// redelivery would not find again (idempotency).
			j.retryLater(err)
			break
		}
		if IsRetryable(err) && attempt < p.opts.MaxAttempts {
			if !po.DryRun {
				p.stats.retried.Add(1)
			}
			j.out.Record(stageRetry, "attempt "+strconv.Itoa(attempt+1), "after "+delay.String()+": "+err.Error())
			j.logger().WarnContext(ctx, "mail failed; retrying", logKeyAttempt, attempt, logKeyErr, err)
			if !sleepCtx(ctx, delay) {
				j.retryLater(ctx.Err())
				err = ctx.Err()
				break
			}
			delay *= 2
			continue
		}
		if IsRetryable(err) {
			// A transient cause (store outage, Unavailable plugin) is never
			// a reason to set the mail aside: it goes back to the source,
			// which delivers it again later.
			err = fmt.Errorf("code %s, still failing after %d attempts: %w", Code(err), attempt, err)
			j.retryLater(err)
			break
		}
		err = j.quarantine(ctx, err, attempt)
		break
	}
	j.count()
	j.res.Message = j.m
	if j.out.Disposition == Done && !po.DryRun && !po.Quiet {
		j.respond(ctx)
	}
	if j.out.Disposition == Retry {
		if err == nil {
			err = &Error{Code: Internal, Op: "Process", Err: errors.New(j.out.Error)}
		}
		return j.res, err
	}
	return j.res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// count updates the statistics from the final outcome.
func (j *job) count() {
	if j.po.DryRun {
		return
	}
	s := &j.p.stats
	if j.out.Auto.IsAuto || j.out.Bounce.IsBounce {
		s.auto.Add(1)
	}
	switch j.out.Action {
	case ActionCreated:
		s.created.Add(1)
	case ActionAppended:
		s.appended.Add(1)
	case ActionReopened:
		s.reopened.Add(1)
	case ActionFiltered:
		s.filtered.Add(1)
	case ActionRecorded:
		s.recorded.Add(1)
	case ActionRejected:
		s.rejected.Add(1)
	case ActionDuplicate:
		s.duplicates.Add(1)
	case ActionStructured:
		s.structured.Add(1)
	case ActionQuarantined:
		s.quarantined.Add(1)
	}
	if j.reusedID && j.out.Action != ActionDuplicate && j.out.Disposition != Retry {
		s.reusedMessageID.Add(1)
	}
}

// attempt runs the stages once, recovering panics.
func (j *job) attempt(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe := &panicError{stage: j.stage, v: r}
			j.logger().ErrorContext(ctx, "recovered panic while processing a mail",
				logKeyStage, j.stage, logKeyErr, fmt.Sprint(r), "stack", string(debug.Stack()))
			err = &Error{Code: Internal, Op: j.stage, Err: pe}
		}
	}()
	return j.run(ctx)
}

// run is the stages after receive, in order (see the package
// documentation). What a stage hands the next is a value: the parsed mail
// and its key (on the job: they identify it), the sender's party, the
// thread decision and the case it names, the route. Stages that finish
// the mail (a duplicate, a filtered or automatic mail) return done.
func (j *job) run(ctx context.Context) error {
	j.stage = stageSize
	if done, err := j.checkSize(ctx); done || err != nil {
		return err
	}
	j.stage = stageParse
	if err := j.parse(); err != nil {
		return err
	}
	j.stage = stageIdempotency
	if done, err := j.lockThread(ctx); done || err != nil {
		return err
	}
	if done, err := j.dedupe(ctx); done || err != nil {
		return err
	}
	j.stage = stageFilter
	if done, err := j.filter(ctx); done || err != nil {
		return err
	}
	j.stage = stageAuto
	if done, err := j.detectAuto(ctx); done || err != nil {
		return err
	}
	j.stage = stageAuth
	if _, err := j.authenticate(ctx); err != nil {
		return err
	}
	j.stage = stageStructured
	if done, err := j.structured(ctx); done || err != nil {
		return err
	}
	j.stage = stageSender
	who, done, err := j.identifySender(ctx)
	if done || err != nil {
		return err
	}
	j.stage = stageExtract
	j.extractReply()
	j.stage = stageThread
	t, c, err := j.resolveThread(ctx)
	if err != nil {
		return err
	}
	j.stage = stageFile
	return j.file(ctx, who, t, c)
}

// receive records the receive stage.
func (j *job) receive() {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(j.raw)))
	b.WriteString(" bytes")
	if j.po.Attempt > 1 {
		b.WriteString(", delivery attempt ")
		b.WriteString(strconv.Itoa(j.po.Attempt))
	}
	if j.po.Quiet {
		b.WriteString(", quiet (backlog import: nothing is sent about it)")
	}
	if j.po.DryRun {
		b.WriteString(", dry run (nothing is written)")
	}
	if j.reprocess != "" {
		b.WriteString(", re-processing quarantined " + j.reprocess)
	}
	j.out.Record(stageReceive, "accepted", b.String())
}

// retryLater sets the Retry disposition.
func (j *job) retryLater(err error) {
	j.out.Action = ActionRetry
	j.out.Disposition = Retry
	j.out.Error = reasonOf(err)
	j.out.Record(stageRetry, "later", j.out.Error)
	if !j.po.DryRun {
		j.p.stats.errors.Add(1)
	}
}

// reasonOf is the operator text for a failure.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var pe *panicError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return err.Error()
}

// respond runs the Responders on a filed mail. A responder's error is
// logged and recorded, never a reason to file the mail again: the mail is
// filed, and a redelivery would be a duplicate that no responder answers.
func (j *job) respond(ctx context.Context) {
	for i, r := range j.p.opts.Responders {
		if j.answered[i] {
			continue
		}
		what, err := r.Respond(ctx, &j.d, j.res)
		if err != nil {
			j.out.Record(stageRespond, "failed", err.Error())
			j.logger().WarnContext(ctx, "responder failed; the mail is filed without its answer", logKeyErr, err)
			continue
		}
		if what != "" {
			j.out.Record(stageRespond, "responded", what)
		}
	}
}
