package mailcase

import (
	"context"
	"strconv"
	"strings"
)

// filter is stage 5: the mailbox block lists, then Options.Filters.
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
	who, err := j.linkSender(ctx, "no sender policy applied")
	if err != nil {
		return true, err
	}
	e := j.email()
	e.Summary = true
	if !j.p.mb.KeepFilteredBody {
		e.Text, e.ReplyText, e.HTML, e.Attachments = "Filtered ("+v.Rule+"): "+v.Reason, "", "", nil
	}
	if err := j.record(ctx, who, e, ""); err != nil {
		return true, err
	}
	j.out.Action = ActionFiltered
	j.out.Record(stageFile, "filtered", "summary recorded on the sender's record")
	return true, nil
}

// detectAuto is stage 6.
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
		if h := j.p.opts.Bounces; h != nil && !j.po.DryRun {
			if err := h.HandleBounce(ctx, &j.d); err != nil {
				return true, err
			}
		}
	}
	j.out.Record(stageAuto, "automatic", reason+"; filed, never answered, never reopens a case")
	return true, j.fileAuto(ctx)
}

func (j *job) isAuto() bool { return j.d.Auto.IsAuto || j.d.Bounce.IsBounce }

// fileAuto files automatic mail: on the case it threads to, without
// reopening it, else on the sender's record.
func (j *job) fileAuto(ctx context.Context) error {
	who, err := j.linkSender(ctx, "no sender policy for automatic mail")
	if err != nil {
		return err
	}
	t, c, err := j.resolveThread(ctx)
	if err != nil {
		return err
	}
	if t.CaseID != "" && (t.Found() || t.Action == ThreadNewLinked) {
		if t.Action != ThreadAppend {
			j.out.Record(stageFile, "no reopen", "automatic mail never reopens a case; filed on "+string(t.CaseID)+" as it is")
		}
		return j.appendTo(ctx, who, t, c)
	}
	if err := j.record(ctx, who, j.email(), ""); err != nil {
		return err
	}
	j.out.Action = ActionRecorded
	j.out.Record(stageFile, "recorded", "automatic mail without a case, recorded on the sender's record")
	return nil
}

// structured is stage 7.
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
	if a := r.Auth; a != nil && a.Method != j.d.Auth.Method {
		decision := "not authenticated"
		if a.Pass {
			decision = "authenticated"
		}
		j.out.Record(stageAuth, decision, "structured handler: "+string(a.Method)+": "+a.Reason)
	}
	// Mark the key as filed so a redelivery is a duplicate.
	e := j.email()
	e.Summary = true
	e.Text, e.ReplyText, e.HTML, e.Attachments = "Structured mail: "+r.Action+" "+r.Reason, "", "", nil
	if err := j.record(ctx, party{}, e, r.CaseID); err != nil {
		return true, err
	}
	j.out.Action = ActionStructured
	j.out.StructuredReply = r.Reply
	j.out.Record(stageStructured, r.Action, r.Reason)
	return true, nil
}
