package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

// filingWiring is what every command that files mail wires the same way
// from its configuration (run, pipe, lmtp, import and quarantine retry):
// the recorder of the mails' lifecycle events (the events section; see
// eventsConfig) and the service-level hook that starts and stops their
// clocks (the sla section). A nil *filingWiring, for a command run without
// a configuration file, records nothing and starts no clock.
type filingWiring struct {
	events *eventWiring
	hook   *tracker.Hook
}

// wireFiling returns the filing wiring of cfg (nil for a nil cfg). With
// deliver (run) the events wiring reads the sinks' secrets, connects them
// and has deliverers; otherwise it only records each event with a delivery
// per sink, for run to send. The caller closes it.
func wireFiling(ctx context.Context, cfg *runConfig, store *mailcase.Store, log *slog.Logger, deliver bool) (*filingWiring, error) {
	if cfg == nil {
		return nil, nil
	}
	var (
		ev  *eventWiring
		err error
	)
	if deliver {
		ev, err = cfg.Events.wire(ctx, store, log)
	} else {
		ev, err = cfg.Events.recorder(store, log)
	}
	if err != nil {
		return nil, err
	}
	tr, err := cfg.slaTracker(store, log)
	if err != nil {
		_ = ev.Close()
		return nil, err
	}
	w := &filingWiring{events: ev}
	if tr != nil {
		w.hook = tracker.NewHook(tr)
	}
	return w, nil
}

// Close releases the events wiring.
func (w *filingWiring) Close() error {
	if w == nil {
		return nil
	}
	return w.events.Close()
}

// eventWiring returns the events wiring (nil without events), for run's
// deliverers and the OnEvent callbacks.
func (w *filingWiring) eventWiring() *eventWiring {
	if w == nil {
		return nil
	}
	return w.events
}

// apply sets the events recorder of wc and adds the service-level hook
// after its Responders.
func (w *filingWiring) apply(wc *wireConfig) {
	if w == nil {
		return
	}
	wc.Events = w.events.recorder()
	if w.hook != nil {
		wc.Extra = append(wc.Extra, w.hook)
	}
}

// filedQuietly gives the service-level hook the result of a quiet
// (backlog) mail of mailbox mb, for which the pipeline calls no Responder:
// import's cases are open work whose clocks run like those of mail run
// files (the alerts go to the owners; the customer is sent nothing). A
// failure is logged; the mail is filed all the same.
func (w *filingWiring) filedQuietly(ctx context.Context, log *slog.Logger, mb *mailcase.Mailbox, r *mailcase.Result) {
	if w == nil || w.hook == nil || r.Outcome.Disposition != mailcase.Done {
		return
	}
	d := &mailcase.Delivery{Mailbox: mb, Message: r.Message, Auto: r.Outcome.Auto, Bounce: r.Outcome.Bounce}
	if r.Outcome.Sender != nil {
		d.Sender = *r.Outcome.Sender
	}
	if _, err := w.hook.Respond(ctx, d, r); err != nil {
		log.WarnContext(ctx, "sla: the clocks of an imported mail were not started", "case_id", r.Outcome.CaseID, "err", err)
	}
}

// changeWiring is what the commands that change cases outside the pipeline
// (reply, worklist) wire from their configuration: the recorder of the
// changes' lifecycle events (record only; run delivers them) and the
// service-level tracker that the changes pause, resume or stop.
type changeWiring struct {
	store  *mailcase.Store
	events *eventWiring
	tr     *tracker.Tracker
	log    *slog.Logger
}

// wireChanges returns the change wiring of cfg; the caller closes it.
func wireChanges(cfg *runConfig, store *mailcase.Store, log *slog.Logger) (*changeWiring, error) {
	ev, err := cfg.Events.recorder(store, log)
	if err != nil {
		return nil, err
	}
	tr, err := cfg.slaTracker(store, log)
	if err != nil {
		_ = ev.Close()
		return nil, err
	}
	return &changeWiring{store: store, events: ev, tr: tr, log: log}, nil
}

// Close releases the events wiring.
func (w *changeWiring) Close() error { return w.events.Close() }

// worklistOptions returns the worklist options of a store whose changes
// are recorded (the events of one change in one append) and reported to
// the service-level clocks.
func (w *changeWiring) worklistOptions(autoAccept bool) *mailcase.WorklistOptions {
	return &mailcase.WorklistOptions{AutoAccept: autoAccept, Events: w.events.recorder(), OnEvent: w.clocks}
}

// replyQueued records that an agent's reply on case id was queued in the
// outbox (reply.queued, as the worklist's reply records it; the outbox ID
// makes a repeat of the same reply one event) and stops the case's
// response clocks started before the reply was first queued.
func (w *changeWiring) replyQueued(ctx context.Context, id mailcase.CaseID, outboxID, kind, mailbox string) {
	data := map[string]any{"outbox_id": outboxID, "kind": kind, "mailbox": mailbox}
	if rec := w.events.onEvent(); rec != nil {
		rec(ctx, mailcase.EventReplyQueued, id, data)
	}
	w.clocks(ctx, mailcase.EventReplyQueued, id, data)
}

// queuedAt returns when outbox message id was first queued: a command
// repeated with the same reply gets the message queued the first time,
// whose reply answered only the clocks that ran then. Now when the
// message cannot be read.
func (w *changeWiring) queuedAt(ctx context.Context, id string) time.Time {
	if id != "" && w.store.CanOutbox() {
		if m, ok, err := w.store.GetOutbox(ctx, id); err == nil && ok && !m.CreatedAt.IsZero() {
			return m.CreatedAt
		}
	}
	return time.Now()
}

// clocks reports a change to the service-level clocks (when the
// configuration has policies): a status change pauses or resumes them, a
// reassignment recomputes the queue's, a reply stops the response clocks.
// A failure is logged; the change is made all the same.
func (w *changeWiring) clocks(ctx context.Context, kind string, id mailcase.CaseID, data map[string]any) {
	if w.tr == nil {
		return
	}
	var err error
	switch kind {
	case mailcase.EventCaseStatusChanged:
		st, _ := data["status"].(string)
		err = w.tr.StatusChanged(ctx, id, mailcase.CaseStatus(st))
	case mailcase.EventCaseAssigned:
		if q, _ := data["queue"].(string); q != data["previous_queue"] {
			err = w.tr.QueueChanged(ctx, id, q)
		}
	case mailcase.EventReplyQueued:
		oid, _ := data["outbox_id"].(string)
		err = w.tr.AgentReplied(ctx, id, w.queuedAt(ctx, oid))
	}
	if err != nil {
		w.log.WarnContext(ctx, "sla: the clocks of a case change were not updated", "case_id", id, "event", kind, "err", err)
	}
}
