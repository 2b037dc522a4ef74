package driver

import (
	"context"
	"time"
)

// EventRecord is one lifecycle event kept by an EventLog: something that
// happened to a case or a mail (a case created, a reply sent), with its
// payload as JSON.
type EventRecord struct {
	// Seq is the event's position in the log, issued by AppendEvents:
	// positive and increasing in the order the log committed the events.
	// It is the cursor of ReadEvents.
	Seq int64
	// ID identifies the event; never empty, at most 128 bytes of printable
	// ASCII. An event appended with an ID the log holds is kept once.
	ID string
	// Kind is the event kind ("case.created"); never empty.
	Kind string
	// CaseID is the case the event is about; "" for none.
	CaseID CaseID
	// Time is when the event happened, by the recorder's clock; the log
	// keeps it to the microsecond.
	Time time.Time
	// Version is the version of the payload's schema for Kind (1 or more).
	Version int
	// Data is the payload, a JSON object, kept byte for byte.
	Data []byte
	// Sinks, on AppendEvents only, names the sinks (webhooks, brokers) that
	// get a delivery of the event. ReadEvents returns it empty.
	Sinks []string
}

// DeliveryStatus is the state of the delivery of one event to one sink.
type DeliveryStatus string

// Delivery statuses. Pending and Delivering are not final; the others are.
const (
	// DeliveryPending waits for its next attempt (NextAttemptAt).
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivering is claimed by a worker until its lease expires.
	DeliveryDelivering DeliveryStatus = "delivering"
	// DeliveryDelivered was accepted by the sink.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed was refused for good, or its last attempt failed.
	DeliveryFailed DeliveryStatus = "failed"
)

// EventDelivery is the delivery of one event to one sink.
type EventDelivery struct {
	// Event is the event delivered (Sinks empty).
	Event EventRecord
	// Sink is the name of the sink.
	Sink string
	// Status, Attempts (attempts started: a claim counts one),
	// NextAttemptAt (when a pending delivery is due), LastError (the last
	// failure's text) and DeliveredAt are kept by the driver.
	Status        DeliveryStatus
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	DeliveredAt   time.Time
}

// DeliveryResult is the outcome of one attempt of a claimed delivery.
type DeliveryResult struct {
	// Status is DeliveryDelivered, DeliveryFailed, or DeliveryPending to
	// try again after RetryAfter.
	Status     DeliveryStatus
	RetryAfter time.Duration
	// Error is the failure's text ("" when delivered); it never holds
	// secrets.
	Error string
}

// DeliveryListOptions filters ListDeliveries. Zero values mean no filter.
type DeliveryListOptions struct {
	Sink   string
	Status DeliveryStatus
	// Limit keeps the Limit deliveries of the newest events; zero or less
	// means all.
	Limit int
}

// EventLog is an optional interface for stores that keep a durable log of
// lifecycle events and the delivery of each to named sinks (the outbox
// pattern: a webhook or broker is fed from the log, never from memory, so
// a crash loses no event). Several workers, in one process or on many
// machines, share the deliveries of a sink without delivering an event to
// it twice at the same time: a delivery is claimed with a lease measured by
// the store's clock, and only the claim's holder records its result.
//
//   - AppendEvents keeps each event (Data byte for byte, Time to the
//     microsecond) with a new Seq, and for each name in its Sinks (repeated
//     names count once) a DeliveryPending delivery due at once with
//     Attempts 0, all in one transaction: either every event and delivery
//     is kept or none. An event whose ID the log holds (appended before, or
//     earlier in the same call) keeps nothing, not even new deliveries, and
//     is no error: of an ID repeated within one call the first event is
//     kept, with its deliveries.
//   - ReadEvents returns up to limit events with Seq greater than after,
//     in Seq order (limit zero or less means 100). Events appended
//     concurrently may commit out of Seq order, so a reader following the
//     log by cursor can miss one; a consumer that must see every event
//     reads it from its sink's deliveries.
//   - ClaimDeliveries claims up to limit deliveries of sink that are due:
//     DeliveryPending with NextAttemptAt not after now, or
//     DeliveryDelivering whose claim expired (its worker died). Each is set
//     to DeliveryDelivering, held by holder until now + ttl, its Attempts
//     incremented, and returned with its event, in Seq order. Two
//     concurrent claims never return the same delivery.
//   - FinishDelivery records r for the delivery of event seq to sink
//     claimed by holder: DeliveryDelivered sets DeliveredAt;
//     DeliveryPending makes it due again after r.RetryAfter;
//     DeliveryFailed is final. LastError is set to r.Error. When holder
//     no longer holds the claim (it expired) or the delivery is not
//     DeliveryDelivering, nothing changes and the error is classified
//     FailedPrecondition; an unknown sink and seq is NotFound; any other
//     r.Status is InvalidArgument.
//   - ListDeliveries returns deliveries filtered by opts (never nil),
//     newest event first, and by sink name for one event.
type EventLog interface {
	AppendEvents(ctx context.Context, events []*EventRecord) error
	ReadEvents(ctx context.Context, after int64, limit int) ([]EventRecord, error)
	ClaimDeliveries(ctx context.Context, sink, holder string, limit int, ttl time.Duration) ([]EventDelivery, error)
	FinishDelivery(ctx context.Context, sink string, seq int64, holder string, r *DeliveryResult) error
	ListDeliveries(ctx context.Context, opts *DeliveryListOptions) ([]EventDelivery, error)
}

// EventFiler is an optional interface for stores that are an EventLog and
// keep cases in the same database: the events of a filed mail (a case
// created and routed, a mail appended, the mail received) are kept in the
// transaction that files the mail, so a crash never leaves a filed mail
// without its events, nor events of a mail that was never filed, and the
// mail path pays no transaction of its own for them. A store without it
// (a CRM paired with a local event log) gets the events of each filed mail
// appended in one AppendEvents call right after the filing, idempotent by
// event ID, and a crash between the two loses the events, never the mail.
//
// The events are appended exactly as AppendEvents would append them, in
// the filing's transaction: when the call returns an error, none of them
// is kept; when it returns nil, all of them are (or were before). Each
// named sink gets one pending delivery. An event whose ID the log already
// holds (appended before, on its own or with another filing) does not
// fail the filing, which commits: the event is not kept again (the log
// keeps its first data) and no delivery is created for it, not even to a
// sink the first did not name. Of an ID repeated within one call the first
// event is kept, with its deliveries, and the others keep nothing.
//
//   - CreateCaseEvents is CreateCase (every rule of CreateCase applies)
//     that, when it creates the case, calls then once with the case as it
//     will be returned (ID, Number, Participants set) inside the same
//     transaction, and keeps what then returns in that transaction: the
//     messages as CreateCaseQueue (OutboxFiler) enqueues them, their IDs
//     returned in order, and the events. When the first mail's key was
//     filed before, nothing is created, then is not called, no event is
//     appended and no ID is returned (the events were kept with the first
//     filing). When then returns an error, nothing is filed (no case, no
//     key, no message, no event) and that error is returned as it is. then
//     never calls the store (it may run while the store holds a lock, and
//     more than once when a transaction is retried). A store that is not
//     an OutboxFiler must return an error classified InvalidArgument, and
//     file nothing, when then returns a message (mailcase.Store never
//     gives it one).
//   - AppendEmailEvents is AppendEmail (every rule of AppendEmail applies)
//     that appends events in the transaction that files e, and reports
//     whether it filed e (true). When e's key was filed before, it is the
//     no-op AppendEmail is, keeps no event (they were kept with the first
//     filing) and returns false and a nil error, so that its caller
//     announces nothing, as CreateCaseEvents tells it by not calling then.
//     When the case does not exist (NotFound) or the append fails
//     otherwise, no event is kept.
type EventFiler interface {
	CreateCaseEvents(ctx context.Context, req *NewCase, then func(Case) ([]*OutboxMessage, []*EventRecord, error)) (Case, []string, error)
	AppendEmailEvents(ctx context.Context, id CaseID, e *Email, events []*EventRecord) (filed bool, err error)
}
