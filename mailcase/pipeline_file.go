package mailcase

import (
	"context"
	"fmt"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// file is stage 11: append, reopen, create or reject, by the thread
// decision t (c is the case it names, when read). The events of a filed
// mail (see Options.Events and Options.OnEvent) are kept with the filing
// where the store can, and announced after it.
func (j *job) file(ctx context.Context, who party, t ThreadDecision, c *Case) error {
	return j.fileMail(ctx, who, t, c)
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

func (j *job) fileMail(ctx context.Context, who party, t ThreadDecision, c *Case) error {
	switch t.Action {
	case ThreadAppend:
		return j.appendTo(ctx, who, t, c)
	case ThreadReopen:
		if j.po.DryRun {
			j.out.Action, j.out.CaseID = ActionReopened, t.CaseID
			j.out.Record(stageFile, "would reopen", "case "+string(t.CaseID))
			return nil
		}
		open := StatusOpen
		reopened, err := j.p.store.UpdateCase(ctx, t.CaseID, &CaseUpdate{Status: &open})
		if err != nil {
			if Code(err) == NotFound {
				return j.caseGone(ctx, who, t.CaseID)
			}
			return err
		}
		data := map[string]any{"status": string(StatusOpen)}
		if c != nil {
			data["previous_status"] = string(c.Status)
		}
		// The reopening is announced with the mail's filing, in its
		// transaction where the store can; alone when that filing fails
		// (see appendMail).
		reopen := &mailEvent{"case.status_changed", t.CaseID, data}
		if err := j.appendMail(ctx, who, t, &reopened, reopen); err != nil {
			return err
		}
		j.out.Action = ActionReopened
		j.out.Record(stageFile, "reopened", "case "+string(t.CaseID)+" set to open")
		return nil
	case ThreadReject:
		if err := j.record(ctx, who, j.email(), ""); err != nil {
			return err
		}
		j.out.Action = ActionRejected
		j.announce(ctx, j.mailEvents(ActionRejected, j.out.CaseID), nil, false)
		j.out.Record(stageFile, "rejected", "thread policy refused the mail; recorded on the sender's record")
		return nil
	}
	route, err := j.route(ctx)
	if err != nil {
		return err
	}
	linked := CaseID("")
	if t.Action == ThreadNewLinked {
		linked = t.CaseID
	}
	return j.createCase(ctx, who, route, linked)
}

// caseGone handles a case that vanished between resolution and filing: a
// new case is created instead.
func (j *job) caseGone(ctx context.Context, who party, id CaseID) error {
	j.out.Record(stageFile, "case missing", "case "+string(id)+" no longer exists; creating a new case")
	route, err := j.route(ctx)
	if err != nil {
		return err
	}
	return j.createCase(ctx, who, route, "")
}

// route decides the queue of a new case by the pipeline's router (see
// mailboxRouter) and records the decision.
func (j *job) route(ctx context.Context) (Route, error) {
	r, err := j.p.router.Route(ctx, &j.d)
	if err != nil {
		return Route{}, err
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
func (j *job) createCase(ctx context.Context, who party, r Route, linked CaseID) error {
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
		Origin: origin, Category: r.Category, ContactID: who.contactID, AccountID: who.accountID,
		LinkedID: linked, First: j.email(),
	}
	nc.First.NoParticipants = fromPlaceholder(&j.d)
	if j.po.DryRun {
		j.out.Action = ActionCreated
		j.out.Record(stageFile, "would create", "new case in queue "+r.Queue)
		return nil
	}
	events := func(c Case) []mailEvent {
		return j.mailEvents(ActionCreated, c.ID,
			mailEvent{"case.created", c.ID, map[string]any{"number": c.Number, "queue": c.Queue, "priority": string(c.Priority), "status": string(c.Status)}},
			mailEvent{"case.routed", c.ID, map[string]any{"queue": r.Queue, "priority": string(r.Priority), "rule": r.Rule, "reason": r.Reason}})
	}
	c, answers, err := j.createWithAnswers(ctx, nc, events)
	if err != nil {
		return err
	}
	j.out.Action, j.out.CaseID, j.out.CaseNumber = ActionCreated, c.ID, c.Number
	defer answers()
	reason := "case " + string(c.ID) + " (" + c.Number + ") in queue " + c.Queue
	if linked != "" {
		reason += ", linked to closed case " + string(linked)
	}
	if who.contactID != "" {
		reason += ", contact " + who.contactID
	}
	j.out.Record(stageFile, "created", reason)
	j.logger().DebugContext(ctx, "case created", logKeyCaseID, c.ID)
	return nil
}

// appendTo files the mail on the case of t (c when read; see
// senderInteraction).
func (j *job) appendTo(ctx context.Context, who party, t ThreadDecision, c *Case) error {
	return j.appendMail(ctx, who, t, c, nil)
}

// appendMail is appendTo; reopen, when not nil, is the event of the
// reopening, kept and announced with the mail's. The reopening itself was
// committed on its own before (UpdateCase): when the append fails, the
// mail's retry finds the case open and has no reopening to announce, so the
// event is announced at once, alone (the recorder keeps it itself); its ID
// is derived from the mail, so a later filing that reopens the case again
// with it keeps it once.
//
// A mail that another delivery filed first (the store's append is a
// no-op) announces nothing: its events were announced with that filing,
// as on the create path (storeCreate). Only a store that files events
// (EventFiler) tells; on another store the recorder keeps them once by ID.
func (j *job) appendMail(ctx context.Context, who party, t ThreadDecision, c *Case, reopen *mailEvent) error {
	id, number := t.CaseID, t.CaseNumber
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
	if number == "" {
		number = j.out.CaseNumber
	}
	var (
		evs    []mailEvent
		action = ActionAppended
	)
	if reopen != nil {
		evs, action = append(evs, *reopen), ActionReopened
	}
	evs = j.mailEvents(action, id, append(evs, mailEvent{"note.appended", id, map[string]any{"number": number}})...)
	var (
		recs  []*driver.EventRecord
		err   error
		filed = true
	)
	if len(evs) > 0 && j.eventsInTx() {
		recs = j.eventRecords(evs)
		filed, err = j.p.store.AppendEmailEvents(ctx, id, e, recs)
	} else {
		err = j.p.store.AppendEmail(ctx, id, e)
	}
	if err != nil {
		if Code(err) == NotFound {
			return j.caseGone(ctx, who, id)
		}
		if reopen != nil {
			j.announce(ctx, j.withMail([]mailEvent{*reopen}), nil, false)
		}
		return err
	}
	j.out.Action, j.out.CaseID, j.out.CaseNumber = ActionAppended, id, number
	if !filed {
		j.out.Record(stageFile, "appended", "case "+string(id)+" (filed before by another delivery; its events were announced then)")
		return j.senderInteraction(ctx, who, id, c)
	}
	j.out.Record(stageFile, "appended", "case "+string(id))
	j.announce(ctx, evs, recs, recs != nil)
	return j.senderInteraction(ctx, who, id, c)
}

// senderInteraction keeps the sender's history complete for a mail filed
// on an existing case whose contact is not the sender: the case's activity
// is linked to the case's contact, so the sender's own record gets a
// summary interaction (no body) referring to the case, under the mail's
// key suffixed with "\x00sender", so the mail itself is filed exactly
// once. c is the case when already read.
func (j *job) senderInteraction(ctx context.Context, who party, id CaseID, c *Case) error {
	if who.contactID == "" && who.accountID == "" {
		return nil
	}
	if c == nil || c.ID != id {
		got, ok, err := j.p.store.GetCase(ctx, id)
		if err != nil || !ok {
			return err
		}
		c = &got
	}
	if c.ContactID == who.contactID && (who.contactID != "" || c.AccountID == who.accountID) {
		return nil
	}
	e := j.email()
	e.IdempotencyKey = j.key + "\x00sender"
	e.Summary = true
	e.Text, e.ReplyText, e.HTML, e.Attachments = "Filed on case "+c.Number+" ("+string(c.ID)+")", "", "", nil
	e.Raw = nil // the mail's raw is kept once, under its own key
	if err := j.p.store.RecordInteraction(ctx, &Interaction{Kind: KindEmail, CaseID: id,
		ContactID: who.contactID, AccountID: who.accountID, Email: e}); err != nil {
		return err
	}
	j.out.Record(stageFile, "sender record", "summary on the sender's record (case contact differs)")
	return nil
}

// record files the mail on the sender's record (who) without a case.
func (j *job) record(ctx context.Context, who party, e *Email, caseID CaseID) error {
	if j.po.DryRun {
		return nil
	}
	return j.p.store.RecordInteraction(ctx, &Interaction{Kind: KindEmail, CaseID: caseID,
		ContactID: who.contactID, AccountID: who.accountID, Email: e})
}

// caseAnswer is a CaseResponder's answer to a new case, composed inside
// the filing's transaction.
type caseAnswer struct {
	index   int
	compose func(Case) (*driver.OutboxMessage, error)
	msg     *driver.OutboxMessage
	err     error
}

// createWithAnswers creates the case; when the store can, the answers of
// the CaseResponders are queued, and the events of the filing (events)
// kept, in the same transaction. answers records them in the outcome once
// the case is recorded. The events are announced once the case is filed.
func (j *job) createWithAnswers(ctx context.Context, nc *NewCase, events func(Case) []mailEvent) (c Case, answers func(), err error) {
	answers = func() {}
	if j.po.Quiet || !j.p.store.CanQueueWithFiling() {
		c, _, _, err = j.storeCreate(ctx, nc, nil, events)
		return c, answers, err
	}
	var (
		preps []*caseAnswer
		notes [][2]string
	)
	j.res.Message = j.m
	for i, r := range j.p.opts.Responders {
		cr, ok := r.(CaseResponder)
		if !ok {
			continue
		}
		compose, why, err := cr.PrepareNewCase(ctx, &j.d, j.res)
		switch {
		case err != nil:
			notes = append(notes, [2]string{"failed", err.Error()})
		case compose == nil:
			if why != "" {
				notes = append(notes, [2]string{"responded", why})
			}
		default:
			preps = append(preps, &caseAnswer{index: i, compose: compose})
			continue
		}
		j.markAnswered(i)
	}
	if len(preps) == 0 {
		if c, _, _, err = j.storeCreate(ctx, nc, nil, events); err != nil {
			j.answered = nil
			return c, answers, err
		}
	} else {
		var (
			ids    []string
			called bool // false: the mail was filed before, its answer with it
		)
		c, ids, called, err = j.storeCreate(ctx, nc, func(c Case) ([]*driver.OutboxMessage, error) {
			msgs := make([]*driver.OutboxMessage, 0, len(preps))
			for _, p := range preps {
				p.msg, p.err = p.compose(c)
				if p.err == nil && p.msg != nil {
					_, p.err = checkOutgoing(stageRespond, p.msg)
				}
				if p.err != nil {
					p.msg = nil // a bad answer never stops the filing
				}
				msgs = append(msgs, p.msg)
			}
			return msgs, nil
		}, events)
		if err != nil {
			j.answered = nil // a retried filing asks again
			return c, answers, err
		}
		queued := 0
		for _, p := range preps {
			j.markAnswered(p.index)
			switch {
			case !called:
				// The mail was filed before: its answer was queued then.
			case p.err != nil:
				notes = append(notes, [2]string{"failed", p.err.Error()})
			case p.msg != nil && queued < len(ids):
				notes = append(notes, [2]string{"responded", fmt.Sprintf("%s queued for %s with the case (outbox %s)",
					p.msg.Kind, strings.Join(p.msg.To, ", "), ids[queued])})
				queued++
			}
		}
	}
	answers = func() {
		for _, n := range notes {
			j.out.Record(stageRespond, n[0], n[1])
			if n[0] == "failed" {
				j.logger().WarnContext(ctx, "responder failed; the mail is filed without its answer", logKeyErr, n[1])
			}
		}
	}
	return c, answers, err
}

// storeCreate files nc with the messages queue composes (nil: none; the
// store CanQueueWithFiling) and the events of the filing: in its
// transaction where the store can keep them (eventsInTx), else announced
// right after it. called is false when the mail was filed before (queue
// not called, nothing queued, no event kept).
func (j *job) storeCreate(ctx context.Context, nc *NewCase, queue func(Case) ([]*driver.OutboxMessage, error), events func(Case) []mailEvent) (c Case, ids []string, called bool, err error) {
	if j.wantsEvents() && j.eventsInTx() {
		var (
			evs  []mailEvent
			recs []*driver.EventRecord
		)
		c, ids, err = j.p.store.CreateCaseEvents(ctx, nc, func(c Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
			called = true
			var msgs []*driver.OutboxMessage
			if queue != nil {
				var err error
				if msgs, err = queue(c); err != nil {
					return nil, nil, err
				}
			}
			evs = events(c)
			recs = j.eventRecords(evs)
			return msgs, recs, nil
		})
		if err == nil && called {
			j.announce(ctx, evs, recs, true)
		}
		return c, ids, called, err
	}
	if queue != nil {
		c, ids, err = j.p.store.CreateCaseQueue(ctx, nc, func(c Case) ([]*driver.OutboxMessage, error) {
			called = true
			return queue(c)
		})
	} else {
		c, err = j.p.store.CreateCase(ctx, nc)
		called = err == nil
	}
	if err == nil {
		j.announce(ctx, events(c), nil, false)
	}
	return c, ids, called, err
}

func (j *job) markAnswered(i int) {
	if j.answered == nil {
		j.answered = map[int]bool{}
	}
	j.answered[i] = true
}
