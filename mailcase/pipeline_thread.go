package mailcase

import (
	"context"
	"fmt"
	"strconv"
)

// extractReply is stage 9: the new text of a reply into Message.ReplyText.
func (j *job) extractReply() {
	x := j.p.opts.Extractor
	if x == nil {
		j.out.Record(stageExtract, "none", "no reply extractor; reply text is the whole text")
		return
	}
	j.m.ReplyText = x.ExtractReply(j.m)
	j.out.Record(stageExtract, "extracted", strconv.Itoa(len(j.m.ReplyText))+" of "+strconv.Itoa(len(j.m.Text))+" bytes are new text")
}

// resolveThread is stage 10: which case the mail continues. It returns
// the decision (also set in Delivery.Thread, which the router reads) and
// the case when the resolver read it (nil otherwise).
func (j *job) resolveThread(ctx context.Context) (ThreadDecision, *Case, error) {
	var (
		t   ThreadDecision
		c   *Case
		err error
	)
	if j.p.threads != nil {
		t, err = j.p.threads.ResolveThread(ctx, &j.d)
	} else {
		t, c, err = j.storeThread(ctx)
	}
	if err != nil {
		return ThreadDecision{}, nil, err
	}
	switch t.Action {
	case ThreadNew, ThreadReject:
	case ThreadAppend, ThreadReopen, ThreadNewLinked:
		if t.CaseID == "" {
			return ThreadDecision{}, nil, &Error{Code: Internal, Op: stageThread, Err: fmt.Errorf("thread resolver decided %q without a case", t.Action)}
		}
	case "":
		t.Action = ThreadNew
	default:
		return ThreadDecision{}, nil, &Error{Code: Internal, Op: stageThread, Err: fmt.Errorf("thread resolver decided unknown action %q", t.Action)}
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
	return t, c, nil
}

// storeThread is the built-in resolver: the mail's References and
// In-Reply-To (and a bounce's original Message-ID) looked up in the store,
// the latest preferred; then the references of filed mails, for a sender on
// the case.
func (j *job) storeThread(ctx context.Context) (ThreadDecision, *Case, error) {
	ids := j.m.ThreadIDs()
	if o := j.d.Bounce.OriginalMessageID; o != "" {
		ids = append(ids, o)
	}
	if len(ids) == 0 {
		return ThreadDecision{Action: ThreadNew, Reason: "no In-Reply-To or References"}, nil, nil
	}
	c, ok, err := j.p.store.LookupThread(ctx, ids...)
	if err != nil {
		return ThreadDecision{}, nil, err
	}
	signal := "references"
	if !ok {
		// A thread whose first mail we never received: a filed mail of a
		// case refers to the same Message-ID. Unsigned and naming no mail
		// we hold, so only a sender on the case threads through it.
		reason := "no case holds the " + strconv.Itoa(len(ids)) + " referenced Message-IDs"
		if c, ok, err = j.p.store.LookupReference(ctx, ids...); err != nil {
			return ThreadDecision{}, nil, err
		}
		if !ok {
			return ThreadDecision{Action: ThreadNew, Reason: reason}, nil, nil
		}
		if why, on := SenderOnCase(&j.d, c, nil); !on {
			return ThreadDecision{Action: ThreadNew, Reason: join(reason, "anti-hijack: shared reference with case "+string(c.ID)+" refused: "+why)}, nil, nil
		}
		signal = "shared-reference"
	}
	t := ThreadDecision{Action: ThreadAppend, CaseID: c.ID, CaseNumber: c.Number, Signal: signal}
	var why string
	if why, t.SenderOnCase = SenderOnCase(&j.d, c, nil); !t.SenderOnCase {
		t.Reason = "sender is not on the case: its addresses do not join the participants (" + why + ")"
	}
	if j.d.Bounce.OriginalMessageID != "" && signal == "references" {
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
	return t, &c, nil
}
