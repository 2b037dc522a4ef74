package mailcase

import (
	"context"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// An EventRecorder records the lifecycle events of filed mail in a
// store's event log (Options.Events), and those of worklist changes
// (WorklistOptions.Events); package events' Recorder implements it. Its
// methods may be called concurrently.
type EventRecorder interface {
	// PrepareEvent returns the record of an event: its ID (the same for
	// the same kind, case and mail, so a repeat is kept once), Kind,
	// Version, Time, Data and the Sinks that get a delivery. It must not
	// call a store: the pipeline may call it inside the transaction that
	// files the mail, and more than once when that transaction is retried.
	// An error drops the event (the recorder logs and counts it).
	PrepareEvent(kind string, caseID CaseID, data map[string]any) (*driver.EventRecord, error)
	// EventStore returns the store whose event log keeps the records, or
	// nil when the recorder keeps no log (it only notifies).
	EventStore() *Store
	// EventsFiled is called after a filing, on the goroutine that filed
	// the mail, with the records of the mail's events in order (or after
	// a worklist change, with the records of its events, kept false). kept
	// reports whether the store committed them in the filing's
	// transaction; when false the recorder keeps them itself, in one
	// batch. It then notifies in-process listeners without blocking.
	EventsFiled(ctx context.Context, recs []*driver.EventRecord, kept bool)
}

// mailEvent is one lifecycle event of the mail being filed.
type mailEvent struct {
	kind string
	id   CaseID
	data map[string]any
}

// eventsInTx reports whether the events of a filing are kept in its
// transaction: the recorder keeps them in the pipeline's store and the
// store can (driver.EventFiler).
func (j *job) eventsInTx() bool {
	ev := j.p.opts.Events
	return ev != nil && ev.EventStore() == j.p.store && j.p.store.CanFileEvents()
}

// wantsEvents reports whether filed mail announces events.
func (j *job) wantsEvents() bool {
	return !j.po.DryRun && (j.p.opts.Events != nil || j.p.opts.OnEvent != nil)
}

// mailEvents returns the events of a mail filed with action on case id:
// evs, then "mail.received", each with the mail's identifying fields.
func (j *job) mailEvents(action Action, id CaseID, evs ...mailEvent) []mailEvent {
	if !j.wantsEvents() {
		return nil
	}
	evs = append(evs, mailEvent{"mail.received", id, map[string]any{"action": string(action), "from_domain": domainOf(j.m.From.Email)}})
	return j.withMail(evs)
}

// withMail adds the mail's identifying fields to the payload of each of
// evs (from which the recorder derives the events' IDs) and returns evs;
// nil when filed mail announces no events.
func (j *job) withMail(evs []mailEvent) []mailEvent {
	if !j.wantsEvents() {
		return nil
	}
	for _, e := range evs {
		e.data["mailbox"], e.data["message_id"] = j.p.mb.Name, j.m.ID
		if j.reusedID {
			e.data["mail_fingerprint"] = j.fp // another mail reused the Message-ID
		}
	}
	return evs
}

// eventRecords returns the records of evs for the recorder's log (the
// events it could not prepare left out).
func (j *job) eventRecords(evs []mailEvent) []*driver.EventRecord {
	ev := j.p.opts.Events
	if ev == nil || len(evs) == 0 {
		return nil
	}
	recs := make([]*driver.EventRecord, 0, len(evs))
	for _, e := range evs {
		if r, err := ev.PrepareEvent(e.kind, e.id, e.data); err == nil && r != nil {
			recs = append(recs, r)
		}
	}
	return recs
}

// announce hands the events of a filed mail to Options.Events (recs are
// their records, kept tells whether the filing committed them) and to
// Options.OnEvent.
func (j *job) announce(ctx context.Context, evs []mailEvent, recs []*driver.EventRecord, kept bool) {
	if len(evs) == 0 {
		return
	}
	if ev := j.p.opts.Events; ev != nil {
		if recs == nil && !kept {
			recs = j.eventRecords(evs)
		}
		if len(recs) > 0 {
			ev.EventsFiled(ctx, recs, kept)
		}
	}
	if f := j.p.opts.OnEvent; f != nil {
		for _, e := range evs {
			f(ctx, e.kind, e.id, e.data)
		}
	}
}
