package mailcase

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// parse is stage 3: the mail is parsed once (a retry keeps it) and its
// idempotency key computed.
func (j *job) parse() error {
	if j.m != nil {
		return nil
	}
	m, err := ParseMessage(j.raw, nil)
	if err != nil {
		j.out.Record(stageParse, "failed", err.Error())
		var e *Error
		if !errors.As(err, &e) {
			err = &Error{Code: InvalidArgument, Op: stageParse, Err: err}
		}
		return err
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
	return nil
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

// dedupe is stage 4. A key already filed is a duplicate when the
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
