package mailcase

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"net/textproto"
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
	stageStructured  = "structured"
	stageSender      = "sender"
	stageExtract     = "extract"
	stageThread      = "thread"
	stageRoute       = "route"
	stageFile        = "file"
	stageRetry       = "retry"
	stageQuarantine  = "quarantine"
	stageAck         = "ack"
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

	// Filled by the sender stage.
	contactID, accountID string
	forceQueue           string // set by AmbiguousInternal
	forceReason          string
	// threadCase is the case found by the built-in thread resolver.
	threadCase *Case
	// threadKey is the mail's ThreadKey, threadKeyUnknown until the header
	// is read; unlock releases the thread lock taken by lockThread.
	threadKey string
	unlock    func()
}

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
			j.retryLater(fmt.Errorf("code %s, still failing after %d attempts: %w", Code(err), attempt, err))
			j.logger().WarnContext(ctx, "mail failed with a transient error; left for redelivery",
				logKeyAttempt, attempt, logKeyErr, err)
			break
		}
		err = j.quarantine(ctx, err, attempt)
		break
	}
	j.count()
	j.res.Message = j.m
	if j.out.Disposition == Retry {
		if err == nil {
			err = errors.New(j.out.Error)
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
	for _, s := range stages {
		j.stage = s.name
		done, err := s.run(j, ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return nil
}

// stages are the stages after receive, in order (see the package
// documentation). Method expressions: no allocation per mail.
var stages = [...]struct {
	name string
	run  func(*job, context.Context) (bool, error)
}{
	{stageSize, (*job).checkSize},
	{stageParse, (*job).parse},
	{stageIdempotency, (*job).lockThread},
	{stageIdempotency, (*job).dedupe},
	{stageFilter, (*job).filter},
	{stageAuto, (*job).detectAuto},
	{stageStructured, (*job).structured},
	{stageSender, (*job).identifySender},
	{stageExtract, (*job).extractReply},
	{stageThread, (*job).resolveThread},
	{stageFile, (*job).file},
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

// quarantine sets the mail aside (M-1.9) after a permanent failure (a
// transient one never gets here: see process). Where it goes:
//
//   - the store's quarantine when the store keeps one (Store.CanQuarantine),
//     with the Quarantine disposition; under Run, a mail whose key is
//     already quarantined (a redelivery by a source that could not set it
//     aside) is not written twice;
//   - else, when the caller sets mail aside itself
//     (ProcessOptions.SourceQuarantines, set by Run), the Quarantine
//     disposition only;
//   - else a mail refused by the mailbox policy (ErrTooLarge with
//     RejectOversized) is refused: Quarantine disposition, ActionRejected,
//     nothing kept;
//   - else nobody could keep it: Retry, the mail stays with the caller.
//
// When the quarantine cannot be written the mail is left for redelivery
// (Retry): it is never dropped.
func (j *job) quarantine(ctx context.Context, cause error, attempts int) error {
	reason := reasonOf(cause)
	canStore := j.p.store.CanQuarantine()
	if !canStore && !j.po.SourceQuarantines && !j.po.DryRun && j.reprocess == "" && !errors.Is(cause, ErrTooLarge) {
		err := fmt.Errorf("%w; the store keeps no quarantine and the caller sets no mail aside: the mail is left with it", cause)
		j.retryLater(err)
		j.logger().ErrorContext(ctx, "mail cannot be filed nor quarantined; left for redelivery",
			logKeyErr, reason, logKeyAttempt, attempts)
		return err
	}
	j.out.Action = ActionQuarantined
	j.out.Disposition = Quarantine
	j.out.Error = reason
	// A mail refused for its content (too large, unparseable) is a decision,
	// not a failure; everything else counts as an error and needs an
	// operator (Error level).
	level := slog.LevelWarn
	if !(j.stage == stageSize || j.stage == stageParse) || Code(cause) != InvalidArgument {
		level = slog.LevelError
		if !j.po.DryRun {
			j.p.stats.errors.Add(1)
		}
	}
	switch {
	case j.po.DryRun:
		j.out.Record(stageQuarantine, "would quarantine", reason)
		return nil
	case j.reprocess != "":
		j.out.Record(stageQuarantine, "kept", "still failing; stays quarantined as "+j.reprocess+": "+reason)
		return nil
	case !canStore && j.po.SourceQuarantines:
		j.out.Record(stageQuarantine, "source", "the store keeps no quarantine; the source sets the mail aside: "+reason)
		j.logger().Log(ctx, level, "mail quarantined by the source", logKeyErr, reason, logKeyAttempt, attempts)
		return nil
	case !canStore:
		// ErrTooLarge: refused by the mailbox policy; an MTA bounces it.
		j.out.Action = ActionRejected
		j.out.Record(stageQuarantine, "refused", "the store keeps no quarantine; the mail is refused, not kept: "+reason)
		j.logger().Log(ctx, level, "mail refused", logKeyErr, reason)
		return nil
	}
	qkey := ""
	if j.po.SourceQuarantines {
		// Only a source redelivers a mail it was told to set aside (a
		// source that cannot); the same source keeps it, so skipping the
		// second item loses nothing. A caller without its own quarantine
		// (an MTA answered 5xx) never redelivers it.
		qkey = j.quarantineStateKey()
	}
	if id, ok := j.quarantinedBefore(ctx, qkey); ok {
		j.out.Record(stageQuarantine, "already", "already quarantined as "+id+"; no second item: "+reason)
		j.logger().Log(ctx, level, "mail already quarantined", "quarantine_id", id, logKeyErr, reason, logKeyAttempt, attempts)
		return nil
	}
	id, err := j.p.store.PutQuarantine(ctx, &QuarantineItem{
		Mailbox: j.p.mb.Name, Key: j.key, Reason: reason, Attempts: attempts,
		Raw: j.raw, CreatedAt: j.p.opts.Now(),
	})
	if err != nil {
		j.retryLater(fmt.Errorf("%s; writing the quarantine failed: %w", reason, err))
		j.logger().ErrorContext(ctx, "cannot quarantine mail; leaving it for redelivery", logKeyErr, err)
		return err
	}
	j.out.Record(stageQuarantine, "stored", "quarantine "+id+": "+reason)
	j.logger().Log(ctx, level, "mail quarantined", "quarantine_id", id, logKeyErr, reason, logKeyAttempt, attempts)
	if qkey != "" {
		if err := j.p.store.PutState(ctx, qkey, []byte(id)); err != nil && Code(err) != Unimplemented {
			j.logger().WarnContext(ctx, "cannot remember the quarantined key; a redelivery may be quarantined again", logKeyErr, err)
		}
	}
	return nil
}

// quarantineStatePrefix prefixes the store state entries (Store.PutState)
// remembering which mails are quarantined, so that a redelivered mail
// failing again adds no second quarantine item.
const quarantineStatePrefix = "mailcase/quarantined/"

// quarantineStateKey is the state key of the mail's quarantine record:
// the hex SHA-256 of its idempotency key, or of its bytes when it has none
// (unparseable mail).
func (j *job) quarantineStateKey() string {
	var sum [sha256.Size]byte
	if j.key != "" {
		sum = sha256.Sum256([]byte(j.key))
	} else {
		sum = sha256.Sum256(j.raw)
	}
	return quarantineStatePrefix + hex.EncodeToString(sum[:])
}

// quarantinedBefore returns the quarantine ID recorded under qkey. A store
// without state (Unimplemented) or failing to answer gives false: a second
// item is better than a lost mail. An item deleted from the quarantine by
// Reprocess is filed by then, so a redelivery is a duplicate before it
// gets here; one deleted by hand is not written again, which loses nothing
// since only a source that sets the mail aside itself is checked.
func (j *job) quarantinedBefore(ctx context.Context, qkey string) (string, bool) {
	if qkey == "" {
		return "", false
	}
	v, ok, err := j.p.store.GetState(ctx, qkey)
	if err != nil {
		if Code(err) != Unimplemented {
			j.logger().WarnContext(ctx, "cannot check whether the mail is already quarantined", logKeyErr, err)
		}
		return "", false
	}
	if !ok || len(v) == 0 {
		return "", false
	}
	return string(v), true
}

// checkSize is stage 2 (M-2.2).
func (j *job) checkSize(ctx context.Context) (bool, error) {
	size := max(int64(len(j.raw)), j.po.Size)
	limit := j.p.mb.MaxSize
	if !j.po.Truncated && (limit < 0 || size <= limit) {
		if j.m == nil { // recorded once, not on every attempt
			j.out.Record(stageSize, "ok", strconv.FormatInt(size, 10)+" bytes within the limit")
		}
		return false, nil
	}
	why := strconv.FormatInt(size, 10) + " bytes over the limit of " + strconv.FormatInt(limit, 10)
	if j.po.Truncated {
		why = "the source did not download the body (" + strconv.FormatInt(size, 10) + " bytes)"
	}
	if j.p.mb.RejectOversized {
		j.out.Record(stageSize, "reject", why)
		return true, &Error{Code: InvalidArgument, Op: stageSize, Err: fmt.Errorf("%w: %s", ErrTooLarge, why)}
	}
	j.out.Record(stageSize, "oversized", why+"; filed unanalysed in the default queue")
	return true, j.fileOversized(ctx, size, why)
}

// maxHeaderScan bounds the bytes read for the header of an oversized mail.
const maxHeaderScan = 256 << 10

// headerOnly parses only the header of raw (at most maxHeaderScan bytes),
// tolerating errors: whatever was read is returned.
func headerOnly(raw []byte) Header {
	b := raw[:min(len(raw), maxHeaderScan)]
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = b[:i+2]
	} else if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		b = b[:i+1]
	}
	r := textproto.NewReader(bufio.NewReader(headerReader(b)))
	h, _ := r.ReadMIMEHeader()
	if h == nil {
		h = Header{}
	}
	return Header(h)
}

// headerReader returns a reader over b followed by an empty line, so the
// header reader always finds its end.
func headerReader(b []byte) *bytes.Reader {
	out := make([]byte, 0, len(b)+4)
	out = append(out, b...)
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\r', '\n')
	}
	out = append(out, '\r', '\n')
	return bytes.NewReader(out)
}

// fileOversized files a mail over the size limit without analysing it: a
// case in the default queue whose first mail carries the raw mail as the
// attachment original.eml.
func (j *job) fileOversized(ctx context.Context, size int64, why string) error {
	j.oversized = true
	if j.m == nil {
		h := headerOnly(j.raw)
		dec := new(mime.WordDecoder)
		decode := func(s string) string {
			if d, err := dec.DecodeHeader(s); err == nil {
				return d
			}
			return s
		}
		m := &Message{Raw: j.raw, Size: size, Header: h}
		m.ID = NormalizeMessageID(h.Get("Message-Id"))
		if m.ID == "" {
			m.ID, m.IDDerived = DerivedMessageID(j.raw), true
		}
		if a, err := mail.ParseAddress(h.Get("From")); err == nil {
			m.From = Address{Name: a.Name, Email: NormalizeAddress(a.Address)}
		}
		if l, err := mail.ParseAddressList(h.Get("To")); err == nil {
			for _, a := range l {
				m.To = append(m.To, Address{Name: a.Name, Email: NormalizeAddress(a.Address)})
			}
		}
		m.Subject = decode(h.Get("Subject"))
		if d, err := mail.ParseDate(h.Get("Date")); err == nil {
			m.Date = d
		}
		m.InReplyTo = ParseMessageIDList(h.Get("In-Reply-To"))
		m.References = ParseMessageIDList(h.Get("References"))
		name := "original.eml"
		if j.po.Truncated {
			name = "original-header.eml"
		}
		m.Text = "This mail (" + strconv.FormatInt(size, 10) + " bytes) was not analysed: " + why +
			". The original is attached as " + name + "."
		m.ReplyText = m.Text
		m.Attachments = []Attachment{{Filename: name, ContentType: "message/rfc822", Size: int64(len(j.raw)), Data: j.raw}}
		j.m = m
		j.key = IdempotencyKey(j.p.mb.Name, m)
		j.out.Key, j.d.Key = j.key, j.key
		j.d.Message = m
	}
	if done, err := j.lockThread(ctx); done || err != nil {
		return err
	}
	if done, err := j.dedupe(ctx); done || err != nil {
		return err
	}
	route := Route{Queue: j.p.mb.DefaultQueue, Rule: "oversized", Reason: "oversized mail goes to the default queue unanalysed (M-2.2)"}
	j.out.Route = &route
	j.out.Record(stageRoute, route.Queue, route.Reason)
	if err := j.linkSender(ctx, "no sender policy applied"); err != nil {
		return err
	}
	return j.createCase(ctx, route, "")
}

// parse is stage 3.
func (j *job) parse(context.Context) (bool, error) {
	if j.m != nil {
		return false, nil
	}
	m, err := ParseMessage(j.raw, nil)
	if err != nil {
		j.out.Record(stageParse, "failed", err.Error())
		var e *Error
		if !errors.As(err, &e) {
			err = &Error{Code: InvalidArgument, Op: stageParse, Err: err}
		}
		return true, err
	}
	j.m = m
	j.d.Message = m
	j.key = IdempotencyKey(j.p.mb.Name, m)
	j.out.Key, j.d.Key = j.key, j.key
	reason := "Message-ID " + m.ID
	if m.IDDerived {
		reason = "no Message-ID; derived " + m.ID + " from the bytes"
	}
	if len(m.Problems) > 0 {
		reason += "; " + strconv.Itoa(len(m.Problems)) + " problems: " + strings.Join(m.Warnings(), "; ")
		j.logger().Debug("soft parse problems", "problems", len(m.Problems))
	}
	j.out.Record(stageParse, "ok", reason)
	return false, nil
}

// lockThread takes the lock of the mail's thread (the same key as
// ThreadKey, from the parsed header), so that mails of one thread are
// filed one at a time whoever calls Process. It is part of stage 4: the
// stateful stages start here.
func (j *job) lockThread(ctx context.Context) (bool, error) {
	if j.unlock != nil || j.po.DryRun {
		return false, nil
	}
	if j.threadKey == threadKeyUnknown {
		j.threadKey = j.m.ID
		if len(j.m.References) > 0 {
			j.threadKey = j.m.References[0]
		} else if len(j.m.InReplyTo) > 0 {
			j.threadKey = j.m.InReplyTo[0]
		}
	}
	if j.threadKey == "" {
		return false, nil
	}
	unlock, err := j.p.threadLocks.lock(ctx, j.threadKey)
	if err != nil {
		return true, err
	}
	j.unlock = unlock
	return false, nil
}

// dedupe is stage 4 (M-1.8). A key already filed is a duplicate when the
// content fingerprints agree (a redelivery: other trace fields, envelope
// or folding). A different mail under a reused Message-ID is filed as a
// new mail under a key derived from its fingerprint (reusedIDKey), with a
// warning, so its own redelivery is a duplicate of it.
func (j *job) dedupe(ctx context.Context) (bool, error) {
	if j.fp == "" {
		j.fp = ContentFingerprint(j.raw)
	}
	p, ok, err := j.p.store.LookupProcessed(ctx, j.key)
	if err != nil {
		return true, err
	}
	if ok && !sameContent(p.Fingerprint, j.fp) && !j.reusedID {
		orig := p
		j.key = reusedIDKey(j.key, j.fp)
		j.out.Key = j.key
		j.d.Key = j.key
		j.reusedID = true
		if p, ok, err = j.p.store.LookupProcessed(ctx, j.key); err != nil {
			return true, err
		}
		if !ok {
			w := "Message-ID " + j.m.ID + " is already filed for a different mail"
			if orig.CaseID != "" {
				w += " (case " + string(orig.CaseID) + ")"
			}
			w += "; filed as a new mail under a key derived from its content"
			j.out.Warnings = append(j.out.Warnings, w)
			j.out.Record(stageIdempotency, "reused Message-ID", w)
			j.logger().WarnContext(ctx, "Message-ID reused by a different mail; filed as a new mail")
			return false, nil
		}
	}
	if !ok {
		j.out.Record(stageIdempotency, "new", "key not filed before")
		return false, nil
	}
	j.out.Action = ActionDuplicate
	j.out.CaseID = p.CaseID
	reason := "already filed"
	if j.reusedID {
		reason = "redelivery of a mail with a reused Message-ID, already filed"
	}
	if p.CaseID != "" {
		reason += " on case " + string(p.CaseID)
	}
	if !p.At.IsZero() {
		reason += " at " + p.At.UTC().Format(time.RFC3339)
	}
	j.out.Record(stageIdempotency, "duplicate", reason)
	return true, nil
}

// filter is stage 5 (M-2.4): the mailbox block lists, then Options.Filters.
func (j *job) filter(ctx context.Context) (bool, error) {
	v, err := j.p.block.FilterMail(ctx, &j.d)
	if err != nil {
		return true, err
	}
	for i := 0; !v.Drop && i < len(j.p.opts.Filters); i++ {
		if v, err = j.p.opts.Filters[i].FilterMail(ctx, &j.d); err != nil {
			return true, err
		}
		if v.Drop && v.Rule == "" {
			v.Rule = "filter " + strconv.Itoa(i)
		}
	}
	if !v.Drop {
		j.out.Record(stageFilter, "pass", "no exception rule matched")
		return false, nil
	}
	j.out.Filter = &v
	j.out.Record(stageFilter, "drop", v.Rule+": "+v.Reason)
	if err := j.linkSender(ctx, "no sender policy applied"); err != nil {
		return true, err
	}
	e := j.email()
	e.Summary = true
	if !j.p.mb.KeepFilteredBody {
		e.Text, e.ReplyText, e.HTML, e.Attachments = "Filtered ("+v.Rule+"): "+v.Reason, "", "", nil
	}
	if err := j.record(ctx, e, ""); err != nil {
		return true, err
	}
	j.out.Action = ActionFiltered
	j.out.Record(stageFile, "filtered", "summary recorded on the sender's record")
	return true, nil
}

// detectAuto is stage 6 (M-2.5).
func (j *job) detectAuto(ctx context.Context) (bool, error) {
	j.d.Auto, j.d.Bounce = detectAutoBounce(j.m)
	j.out.Auto, j.out.Bounce = j.d.Auto, j.d.Bounce
	if !j.isAuto() {
		if j.d.Auto.NoReply {
			// List, bulk or foreign-loop signals: processed as human mail,
			// never answered automatically (Outcome.Auto.NoReply).
			j.out.Record(stageAuto, "human, no reply", j.d.Auto.Reason)
			return false, nil
		}
		j.out.Record(stageAuto, "human", "no automatic-mail signal")
		return false, nil
	}
	reason := j.d.Auto.Reason
	if j.d.Bounce.IsBounce {
		reason = strings.TrimPrefix(reason+"; delivery status notification for "+j.d.Bounce.OriginalMessageID, "; ")
	}
	j.out.Record(stageAuto, "automatic", reason+"; filed, never answered, never reopens a case")
	return true, j.fileAuto(ctx)
}

func (j *job) isAuto() bool { return j.d.Auto.IsAuto || j.d.Bounce.IsBounce }

// fileAuto files automatic mail: on the case it threads to, without
// reopening it, else on the sender's record.
func (j *job) fileAuto(ctx context.Context) error {
	if err := j.linkSender(ctx, "no sender policy for automatic mail"); err != nil {
		return err
	}
	if _, err := j.resolveThread(ctx); err != nil {
		return err
	}
	t := j.d.Thread
	if t.CaseID != "" && (t.Found() || t.Action == ThreadNewLinked) {
		if t.Action != ThreadAppend {
			j.out.Record(stageFile, "no reopen", "automatic mail never reopens a case; filed on "+string(t.CaseID)+" as it is")
		}
		return j.appendTo(ctx, t.CaseID, t.CaseNumber)
	}
	if err := j.record(ctx, j.email(), ""); err != nil {
		return err
	}
	j.out.Action = ActionRecorded
	j.out.Record(stageFile, "recorded", "automatic mail without a case, recorded on the sender's record")
	return nil
}

// structured is stage 7 (M-2.3).
func (j *job) structured(ctx context.Context) (bool, error) {
	h := j.p.opts.Structured
	if h == nil || !h.IsStructured(j.m) {
		j.out.Record(stageStructured, "unstructured", "")
		return false, nil
	}
	j.out.Structured = true
	if j.po.DryRun {
		j.out.Action = ActionStructured
		j.out.Record(stageStructured, "would handle", "dry run: the structured handler is not called")
		return true, nil
	}
	r, err := h.HandleStructured(ctx, &j.d)
	if err != nil {
		j.out.Record(stageStructured, "failed", err.Error())
		return true, err
	}
	j.out.CaseID = r.CaseID
	// Mark the key as filed so a redelivery is a duplicate.
	e := j.email()
	e.Summary = true
	e.Text, e.ReplyText, e.HTML, e.Attachments = "Structured mail: "+r.Action+" "+r.Reason, "", "", nil
	if err := j.record(ctx, e, r.CaseID); err != nil {
		return true, err
	}
	j.out.Action = ActionStructured
	j.out.Record(stageStructured, r.Action, r.Reason)
	return true, nil
}

// senderAddress is the address identifying the sender: From, else Sender,
// else the first Reply-To, else the Return-Path.
func (j *job) senderAddress() Address {
	m := j.m
	switch {
	case m.From.Email != "":
		return m.From
	case m.Sender.Email != "":
		return m.Sender
	case len(m.ReplyTo) > 0 && m.ReplyTo[0].Email != "":
		return m.ReplyTo[0]
	case IsNullSender(m.ReturnPath): // "" too; MAILER-DAEMON@host, #@[]
		return Address{}
	}
	return Address{Email: m.ReturnPath}
}

func (j *job) setSender(m SenderMatch, note string) {
	j.d.Sender = m
	j.out.Sender = &m
	r := m.Reason
	if note != "" {
		r += "; " + note
	}
	j.out.Record(stageSender, string(m.Kind), r)
}

// useMatch links the mail to the matched contact or account, without any
// policy (automatic and filtered mail).
func (j *job) useMatch(m SenderMatch) {
	switch m.Kind {
	case SenderContact:
		if m.Contact != nil {
			j.contactID, j.accountID = m.Contact.ID, m.Contact.AccountID
		}
	case SenderAccount:
		if m.Account != nil {
			j.accountID = m.Account.ID
		}
	case SenderEmployee:
		if m.Contact != nil && len(m.Candidates) == 0 {
			j.contactID, j.accountID = m.Contact.ID, m.Contact.AccountID
		}
	}
}

// linkSender identifies the sender without applying policies (filtered,
// automatic and oversized mail). The employee trust rule applies all the
// same (trustMatch): an unauthenticated employee address is linked as the
// contact having it, if any, never as the employee.
func (j *job) linkSender(ctx context.Context, note string) error {
	m, err := j.p.senders.MatchSender(ctx, j.senderAddress())
	if err != nil {
		return err
	}
	if m.Address == "" {
		m.Address = NormalizeAddress(j.senderAddress().Email)
	}
	m, trust := j.trustMatch(ctx, m)
	j.setSender(m, join(trust, note))
	j.useMatch(m)
	return nil
}

// trustMatch applies M-3.3 to a match: an employee match is kept only when
// the From address is authenticated (see Options.Authenticated); otherwise
// the employee is dropped and the match falls back to the contacts having
// the address (SenderContact for one, SenderAmbiguous for several) or to
// SenderUnknown. note says what was decided ("" for other kinds).
func (j *job) trustMatch(ctx context.Context, m SenderMatch) (SenderMatch, string) {
	if m.Kind != SenderEmployee {
		return placeholderMatch(m, "")
	}
	ok, why := j.authenticated()
	if ok {
		return m, "employee trusted: " + why
	}
	note := "employee identity not trusted (" + why + ")"
	j.logger().WarnContext(ctx, "employee address without authentication; not trusted", "from", RedactAddress(m.Address))
	m.Employee = nil
	switch {
	case len(m.Candidates) > 1:
		m.Kind = SenderAmbiguous
		note += "; matched as ambiguous contacts"
	case m.Contact != nil:
		m.Kind = SenderContact
		note += "; matched as contact " + m.Contact.ID
	default:
		m.Kind = SenderUnknown
		note += "; handled as unknown sender"
	}
	return placeholderMatch(m, note)
}

// placeholderMatch downgrades a match on the unknown-sender placeholder's
// own address to SenderUnknown, keeping the placeholder in Contact so the
// thread resolver (SenderOnCase) and the filing know: anyone can write
// that From, so it identifies nobody, never continues a case by number and
// never adds participants.
func placeholderMatch(m SenderMatch, note string) (SenderMatch, string) {
	if m.Kind != SenderContact || m.Contact == nil || !m.Contact.Placeholder {
		return m, note
	}
	m.Kind = SenderUnknown
	return m, join(note, "the address is the unknown-sender placeholder's: handled as unknown sender")
}

// fromPlaceholder reports whether the mail's From is the unknown-sender
// placeholder's address (see placeholderMatch).
func fromPlaceholder(d *Delivery) bool {
	ct := d.Sender.Contact
	return d.Sender.Kind == SenderUnknown && ct != nil && ct.Placeholder
}

// identifySender is stage 8 (M-3): match, trust check, then the mailbox's
// ambiguity and unknown-sender policies.
func (j *job) identifySender(ctx context.Context) (bool, error) {
	j.contactID, j.accountID, j.forceQueue, j.forceReason = "", "", "", ""
	from := j.senderAddress()
	m, err := j.p.senders.MatchSender(ctx, from)
	if err != nil {
		return true, err
	}
	if m.Address == "" {
		m.Address = NormalizeAddress(from.Email)
	}
	m, note := j.trustMatch(ctx, m)
	mb := &j.p.mb
	switch m.Kind {
	case SenderContact, SenderAccount, SenderEmployee:
		j.useMatch(m)
	case SenderAmbiguous:
		switch mb.Ambiguity {
		case AmbiguousFirst:
			if m.Contact != nil {
				j.contactID, j.accountID = m.Contact.ID, m.Contact.AccountID
				note = join(note, j.policy("ambiguous sender", "first: contact "+m.Contact.ID))
			} else if m.Account != nil {
				j.accountID = m.Account.ID
				note = join(note, j.policy("ambiguous sender", "first: account "+m.Account.ID))
			} else {
				note = join(note, j.policy("ambiguous sender", "first: no candidate record, left unassigned"))
			}
		case AmbiguousInternal:
			j.forceQueue = mb.InternalQueue
			j.forceReason = "ambiguous sender handed to the internal-support queue (M-3.2)"
			note = join(note, j.policy("ambiguous sender", "internal: unassigned, queue "+mb.InternalQueue))
		default:
			note = join(note, j.policy("ambiguous sender", "unassigned: no contact or account"))
		}
	case SenderUnknown:
		switch {
		case j.p.noContacts:
			note = join(note, j.policy("unknown sender", "none: the store has no contact directory, the case has no contact"))
		case mb.UnknownSender == UnknownReject:
			j.setSender(m, join(note, j.policy("unknown sender", "reject")))
			if err := j.record(ctx, j.email(), ""); err != nil {
				return true, err
			}
			j.out.Action = ActionRejected
			j.out.Record(stageFile, "rejected", "unknown sender refused by the mailbox policy; mail recorded")
			return true, nil
		case mb.UnknownSender == UnknownCreateContact:
			c, created, err := j.findOrCreateContact(ctx, from, mb.Internal, false)
			if err != nil {
				return true, err
			}
			j.contactID, j.accountID = c.ID, c.AccountID
			note = join(note, j.policy("unknown sender", "create: "+createdWord(created, j.po.DryRun)+" contact "+c.ID))
		default:
			id, why, err := j.placeholder(ctx)
			if err != nil {
				return true, err
			}
			j.contactID = id
			note = join(note, j.policy("unknown sender", "placeholder: "+why))
		}
	}
	j.setSender(m, note)
	return false, nil
}

// policy records which mailbox policy decided the sender (Outcome.SenderPolicy)
// and returns the note for the sender step.
func (j *job) policy(what, decision string) string {
	j.out.SenderPolicy = what + ": " + decision
	return "policy " + decision
}

func createdWord(created, dry bool) string {
	switch {
	case created && dry:
		return "would create"
	case created:
		return "created"
	}
	return "found"
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// authenticated says whether the From address is authenticated.
func (j *job) authenticated() (bool, string) {
	if f := j.p.opts.Authenticated; f != nil {
		if f(j.m) {
			return true, "Options.Authenticated"
		}
		return false, "Options.Authenticated refused"
	}
	return authenticatedFrom(j.m, j.p.trusted)
}

// senderForgetter is implemented by matchers with a cache (see
// StoreSenderMatcher.ForgetSender).
type senderForgetter interface{ ForgetSender(addr string) }

// findOrCreateContact looks addr up again and creates a contact when none
// has it. Creation is serialised in the pipeline so two mails from one new
// sender do not create two contacts.
func (j *job) findOrCreateContact(ctx context.Context, a Address, internal, placeholder bool) (Contact, bool, error) {
	addr := NormalizeAddress(a.Email)
	if addr == "" {
		return Contact{}, false, &Error{Code: InvalidArgument, Op: "CreateContact", Err: errors.New("no usable sender address")}
	}
	p := j.p
	p.contactMu.Lock()
	defer p.contactMu.Unlock()
	cs, err := p.store.FindContacts(ctx, addr)
	if err != nil {
		return Contact{}, false, err
	}
	if len(cs) > 0 {
		return cs[0], false, nil
	}
	if j.po.DryRun {
		return Contact{ID: "(new)", Email: addr, Name: a.Name}, true, nil
	}
	c, err := p.store.CreateContact(ctx, &NewContact{Name: a.Name, Email: addr, Internal: internal, Placeholder: placeholder})
	if err != nil {
		return Contact{}, false, err
	}
	if f, ok := p.senders.(senderForgetter); ok {
		f.ForgetSender(addr)
	}
	j.logger().InfoContext(ctx, "contact created for a sender", "contact_id", c.ID, "placeholder", placeholder)
	return c, true, nil
}

// placeholder returns the unknown-sender placeholder contact (M-3.4).
func (j *job) placeholder(ctx context.Context) (id, why string, err error) {
	mb := &j.p.mb
	if mb.UnknownContactID != "" {
		return mb.UnknownContactID, "configured contact " + mb.UnknownContactID, nil
	}
	j.p.contactMu.Lock()
	id = j.p.placeholderID
	j.p.contactMu.Unlock()
	if id != "" {
		return id, "contact " + id, nil
	}
	c, created, err := j.findOrCreateContact(ctx, Address{Name: "Unknown sender", Email: j.p.placeholderAddress()}, false, true)
	if err != nil {
		return "", "", err
	}
	if !j.po.DryRun {
		j.p.contactMu.Lock()
		j.p.placeholderID = c.ID
		j.p.contactMu.Unlock()
	}
	return c.ID, createdWord(created, j.po.DryRun) + " placeholder contact " + c.ID, nil
}

// placeholderAddress is the address of the placeholder contact, in the
// reserved domain "invalid" (RFC 2606) so that it routes nowhere. It is
// never a participant of a case (stores leave a placeholder contact's
// address out) and mail claiming it is handled as from an unknown sender.
func (p *Pipeline) placeholderAddress() string {
	return "unknown-sender@invalid"
}

// extractReply is stage 9 (M-4.6).
func (j *job) extractReply(context.Context) (bool, error) {
	x := j.p.opts.Extractor
	if x == nil {
		j.out.Record(stageExtract, "none", "no reply extractor; reply text is the whole text")
		return false, nil
	}
	j.m.ReplyText = x.ExtractReply(j.m)
	j.out.Record(stageExtract, "extracted", strconv.Itoa(len(j.m.ReplyText))+" of "+strconv.Itoa(len(j.m.Text))+" bytes are new text")
	return false, nil
}

// resolveThread is stage 10 (M-4).
func (j *job) resolveThread(ctx context.Context) (bool, error) {
	var (
		t   ThreadDecision
		err error
	)
	if j.p.threads != nil {
		t, err = j.p.threads.ResolveThread(ctx, &j.d)
	} else {
		t, err = j.storeThread(ctx)
	}
	if err != nil {
		return true, err
	}
	switch t.Action {
	case ThreadNew, ThreadReject:
	case ThreadAppend, ThreadReopen, ThreadNewLinked:
		if t.CaseID == "" {
			return true, &Error{Code: Internal, Op: stageThread, Err: fmt.Errorf("thread resolver decided %q without a case", t.Action)}
		}
	case "":
		t.Action = ThreadNew
	default:
		return true, &Error{Code: Internal, Op: stageThread, Err: fmt.Errorf("thread resolver decided unknown action %q", t.Action)}
	}
	j.d.Thread = t
	j.out.Thread = &t
	j.out.CaseNumber = t.CaseNumber
	r := t.Reason
	if t.Signal != "" {
		r = join("signal "+t.Signal, r)
	}
	if t.CaseID != "" {
		r = join("case "+string(t.CaseID), r)
	}
	j.out.Record(stageThread, string(t.Action), r)
	return false, nil
}

// storeThread is the built-in resolver: the mail's References and
// In-Reply-To (and a bounce's original Message-ID) looked up in the store,
// the latest preferred.
func (j *job) storeThread(ctx context.Context) (ThreadDecision, error) {
	ids := j.m.ThreadIDs()
	if o := j.d.Bounce.OriginalMessageID; o != "" {
		ids = append(ids, o)
	}
	if len(ids) == 0 {
		return ThreadDecision{Action: ThreadNew, Reason: "no In-Reply-To or References"}, nil
	}
	c, ok, err := j.p.store.LookupThread(ctx, ids...)
	if err != nil {
		return ThreadDecision{}, err
	}
	if !ok {
		return ThreadDecision{Action: ThreadNew, Reason: "no case holds the " + strconv.Itoa(len(ids)) + " referenced Message-IDs"}, nil
	}
	j.threadCase = &c
	t := ThreadDecision{Action: ThreadAppend, CaseID: c.ID, CaseNumber: c.Number, Signal: "references"}
	var why string
	if why, t.SenderOnCase = SenderOnCase(&j.d, c, nil); !t.SenderOnCase {
		t.Reason = "sender is not on the case: its addresses do not join the participants (" + why + ")"
	}
	if j.d.Bounce.OriginalMessageID != "" {
		t.Signal = "bounce-original"
	}
	if c.Status.IsClosed() {
		if j.isAuto() {
			t.Reason = join("case is "+string(c.Status)+"; automatic mail is filed without reopening", t.Reason)
		} else {
			t.Action = ThreadReopen
			t.Reason = join("case is "+string(c.Status)+"; a reply reopens it", t.Reason)
		}
	}
	return t, nil
}

// file is stage 11: append, reopen, create or reject.
func (j *job) file(ctx context.Context) (bool, error) {
	t := j.d.Thread
	switch t.Action {
	case ThreadAppend:
		return true, j.appendTo(ctx, t.CaseID, t.CaseNumber)
	case ThreadReopen:
		if j.po.DryRun {
			j.out.Action, j.out.CaseID = ActionReopened, t.CaseID
			j.out.Record(stageFile, "would reopen", "case "+string(t.CaseID))
			return true, nil
		}
		open := StatusOpen
		c, err := j.p.store.UpdateCase(ctx, t.CaseID, &CaseUpdate{Status: &open})
		if err != nil {
			if Code(err) == NotFound {
				return true, j.caseGone(ctx, t.CaseID)
			}
			return true, err
		}
		j.threadCase = &c
		if err := j.appendTo(ctx, t.CaseID, t.CaseNumber); err != nil {
			return true, err
		}
		j.out.Action = ActionReopened
		j.out.Record(stageFile, "reopened", "case "+string(t.CaseID)+" set to open")
		return true, nil
	case ThreadReject:
		if err := j.record(ctx, j.email(), ""); err != nil {
			return true, err
		}
		j.out.Action = ActionRejected
		j.out.Record(stageFile, "rejected", "thread policy refused the mail; recorded on the sender's record")
		return true, nil
	}
	route, err := j.route(ctx)
	if err != nil {
		return true, err
	}
	linked := CaseID("")
	if t.Action == ThreadNewLinked {
		linked = t.CaseID
	}
	return true, j.createCase(ctx, route, linked)
}

// caseGone handles a case that vanished between resolution and filing: a
// new case is created instead.
func (j *job) caseGone(ctx context.Context, id CaseID) error {
	j.out.Record(stageFile, "case missing", "case "+string(id)+" no longer exists; creating a new case")
	route, err := j.route(ctx)
	if err != nil {
		return err
	}
	return j.createCase(ctx, route, "")
}

// route decides the queue of a new case (M-5).
func (j *job) route(ctx context.Context) (Route, error) {
	mb := &j.p.mb
	var r Route
	switch {
	case j.forceQueue != "":
		r = Route{Queue: j.forceQueue, Rule: "ambiguous-sender", Reason: j.forceReason}
	case mb.Bypass:
		r = Route{Queue: mb.DefaultQueue, Rule: "bypass", Reason: "mailbox bypasses routing"}
	case j.p.opts.Router == nil:
		r = Route{Queue: mb.DefaultQueue, Rule: "default", Reason: "no router; default queue"}
	default:
		var err error
		if r, err = j.p.opts.Router.Route(ctx, &j.d); err != nil {
			return Route{}, err
		}
		if strings.TrimSpace(r.Queue) == "" {
			r.Queue = mb.DefaultQueue
			r.Reason = join(r.Reason, "no queue decided; default queue (M-5.8)")
		}
	}
	j.out.Route = &r
	j.out.Record(stageRoute, r.Queue, join(r.Rule, r.Reason))
	return r, nil
}

// email builds the record of the mail.
func (j *job) email() *Email {
	e := j.m.ToEmail(j.key, j.p.mb.Name)
	e.Auto = j.isAuto()
	e.Fingerprint = j.fp
	if !j.oversized {
		e.Raw = j.raw // kept by stores that keep raw mail, for re-parsing
	}
	return e
}

// createCase creates a case whose first mail is this one.
func (j *job) createCase(ctx context.Context, r Route, linked CaseID) error {
	subject := j.m.Subject
	if strings.TrimSpace(subject) == "" {
		subject = "(no subject)"
	}
	origin := r.Origin
	if origin == "" {
		origin = "email"
	}
	nc := &NewCase{
		Subject: subject, Status: StatusNew, Priority: r.Priority, Queue: r.Queue,
		Origin: origin, Category: r.Category, ContactID: j.contactID, AccountID: j.accountID,
		LinkedID: linked, First: j.email(),
	}
	nc.First.NoParticipants = fromPlaceholder(&j.d)
	if j.po.DryRun {
		j.out.Action = ActionCreated
		j.out.Record(stageFile, "would create", "new case in queue "+r.Queue)
		return nil
	}
	c, err := j.p.store.CreateCase(ctx, nc)
	if err != nil {
		return err
	}
	j.out.Action, j.out.CaseID, j.out.CaseNumber = ActionCreated, c.ID, c.Number
	reason := "case " + string(c.ID) + " (" + c.Number + ") in queue " + c.Queue
	if linked != "" {
		reason += ", linked to closed case " + string(linked)
	}
	if j.contactID != "" {
		reason += ", contact " + j.contactID
	}
	j.out.Record(stageFile, "created", reason)
	j.logger().DebugContext(ctx, "case created", logKeyCaseID, c.ID)
	return nil
}

// appendTo files the mail on case id (M-6.7: see senderInteraction).
func (j *job) appendTo(ctx context.Context, id CaseID, number string) error {
	if j.po.DryRun {
		j.out.Action, j.out.CaseID = ActionAppended, id
		j.out.Record(stageFile, "would append", "case "+string(id))
		return nil
	}
	e := j.email()
	// Only a sender the anti-hijack rule put on the case adds addresses:
	// a Cc on a mail that a signed token (or any signal) filed from a
	// stranger makes nobody a participant.
	e.NoParticipants = !j.d.Thread.SenderOnCase || fromPlaceholder(&j.d)
	if err := j.p.store.AppendEmail(ctx, id, e); err != nil {
		if Code(err) == NotFound {
			return j.caseGone(ctx, id)
		}
		return err
	}
	j.out.Action, j.out.CaseID = ActionAppended, id
	if number != "" {
		j.out.CaseNumber = number
	}
	j.out.Record(stageFile, "appended", "case "+string(id))
	return j.senderInteraction(ctx, id)
}

// senderInteraction meets M-6.7 for a mail filed on an existing case whose
// contact is not the sender: the case's activity is linked to the case's
// contact, so the sender's own record gets a summary interaction (no body)
// referring to the case, under the mail's key suffixed with "\x00sender",
// so the mail itself is filed exactly once.
func (j *job) senderInteraction(ctx context.Context, id CaseID) error {
	if j.contactID == "" && j.accountID == "" {
		return nil
	}
	c := j.threadCase
	if c == nil || c.ID != id {
		got, ok, err := j.p.store.GetCase(ctx, id)
		if err != nil || !ok {
			return err
		}
		c = &got
	}
	if c.ContactID == j.contactID && (j.contactID != "" || c.AccountID == j.accountID) {
		return nil
	}
	e := j.email()
	e.IdempotencyKey = j.key + "\x00sender"
	e.Summary = true
	e.Text, e.ReplyText, e.HTML, e.Attachments = "Filed on case "+c.Number+" ("+string(c.ID)+")", "", "", nil
	e.Raw = nil // the mail's raw is kept once, under its own key
	if err := j.p.store.RecordInteraction(ctx, &Interaction{Kind: KindEmail, CaseID: id,
		ContactID: j.contactID, AccountID: j.accountID, Email: e}); err != nil {
		return err
	}
	j.out.Record(stageFile, "sender record", "summary on the sender's record (case contact differs)")
	return nil
}

// record files the mail on the sender's record without a case (M-6.7).
func (j *job) record(ctx context.Context, e *Email, caseID CaseID) error {
	if j.po.DryRun {
		return nil
	}
	return j.p.store.RecordInteraction(ctx, &Interaction{Kind: KindEmail, CaseID: caseID,
		ContactID: j.contactID, AccountID: j.accountID, Email: e})
}
