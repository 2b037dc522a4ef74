// Package events records the lifecycle events of cases and mail, hands them
// to in-process observers, and delivers them from a durable log to signed
// webhooks and to NATS JetStream.
//
// # Recording
//
// A [Recorder] is the one place events enter. The pipeline takes it as
// mailcase.Options.Events, and a store's worklist as
// mailcase.WorklistOptions.Events (the events of one worklist change, an
// accept that also moves the status, in one append); its
// [Recorder.OnEvent] method value has the shape of the OnEvent callbacks
// of the outbox deliverer and the SLA packages, so wiring any of them is
// one line:
//
//	rec, err := events.NewRecorder(store, &events.RecorderOptions{Sinks: sinks})
//	opts.Events = rec              // the pipeline
//	wl.Events = rec                // the worklist
//	d.OnEvent = rec.OnEvent        // the others
//
// Each event is appended to the store's event log (driver.EventLog)
// together with one delivery per sink whose filter accepts its kind, in one
// transaction: the outbox pattern. The events of a filed mail are kept in
// the transaction that files it when the store can (driver.EventFiler, as
// the SQL and memory stores do): a crash never leaves a filed mail without
// its events nor events of a mail that was not filed, and the mail path
// pays no transaction for them. A store with a log but without that gets
// the events of each filed mail in one append right after the filing. Any
// other event is appended before OnEvent returns. An event is thus never
// lost once its change was reported, and never delivered when it was not
// recorded. A store without an event log gets observers only. A failed
// append is logged at Error and counted ([Recorder.Stats]); it never fails
// the caller's operation (the mail is filed already).
//
// Event IDs make recording idempotent: an event whose payload names a mail
// (the fields "mailbox" and "message_id") or an outgoing message
// ("outbox_id") gets an ID derived from its kind, its case and those
// fields, so a mail processed twice (redelivered after a crash) records its
// events once. Other events get a random ID.
//
// # Observers
//
// [Recorder.Observe] registers an in-process observer with a bounded
// buffer of its own, fed after the event was appended. A full buffer drops
// the event for that observer (counted per observer and logged at Warn):
// an observer never slows down or blocks mail processing. Observers see
// events in the order they were recorded; durable consumers use sinks.
//
// # Envelope and payloads
//
// Every event is sent as one JSON object (the webhook body, the NATS
// message data, a line of `mailcase events tail`):
//
//	{"id":"…","seq":42,"kind":"case.created","version":1,
//	 "case_id":"17","time":"2026-12-07T11:23:11.123456Z","data":{…}}
//
// seq is the position in the store's log. version is the version of the
// payload's schema for the kind: fields are only ever added within a
// version; a field removed or changed in meaning makes a new version. The
// payloads of version 1, field by field (absent fields are omitted):
//
//   - mail.received: mailbox, message_id, action (created, appended,
//     reopened, rejected), from_domain. Recorded once the mail is filed.
//     Every event the pipeline records carries mailbox and message_id,
//     plus mail_fingerprint when the mail reused the Message-ID of
//     another (the two are different mails, and different events).
//   - case.created: mailbox, message_id, number, queue, priority, status.
//   - note.appended: mailbox, message_id, number (a mail logged on an
//     existing case); the note itself stays in the store.
//   - case.routed: mailbox, message_id, queue, priority, rule, reason.
//   - case.assigned: queue, owner, previous_queue, previous_owner.
//   - case.accepted: owner, queue.
//   - case.status_changed: status, previous_status (a mail reopening a
//     closed case records it too, with the mail's fields).
//   - reply.queued: outbox_id, kind, mailbox.
//   - reply.sent: outbox_id, kind, mailbox, attempts.
//   - reply.bounced: outbox_id, message_id, kind, mailbox, status (the
//     delivery status code of the bounce, "5.1.1"; never the recipient or
//     the bounced mail).
//   - sla.warning and sla.breach: target (first_response, next_response,
//     resolution), due_at (RFC 3339), queue, owner.
//
// Payloads carry identifiers and routing facts, never bodies, subjects or
// full addresses (the receiver fetches what it needs from the store).
//
// # Webhooks
//
// A [Deliverer] claims the due deliveries of each sink from the log with a
// lease (several deliverers in one process or on many machines never send
// one event to a sink twice at the same time), sends them, and records the
// outcome: delivered; retried after an exponential backoff with jitter;
// failed after MaxAttempts, with the last error kept on the delivery
// (`mailcase events deliveries --status failed`). Delivery is at least once: a
// deliverer killed mid-send leaves the lease to expire and the event is
// sent again, with the same idempotency key.
//
// A [Webhook] POSTs the envelope with these headers:
//
//	Content-Type: application/json
//	Emailcrm-Event: case.created
//	Emailcrm-Idempotency-Key: <event id>   (the same on every attempt)
//	Emailcrm-Delivery-Attempt: 1
//	Emailcrm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// The signature is HMAC-SHA256, keyed with the webhook's secret, over the
// decimal timestamp, a ".", and the body as sent. [Verify] checks it and
// rejects a signature whose timestamp is more than the tolerance
// (DefaultTolerance, 5 minutes, when 0) away from the receiver's clock, so
// a recorded delivery replayed later than that is refused. A replay within
// the tolerance passes Verify: a receiver that must not act twice uses a
// [Verifier], which also remembers the deliveries it accepted within the
// tolerance and returns ErrReplayed for the same request again and
// ErrDuplicate for a retry of an accepted event (a new timestamp, the same
// event ID: the "id" of the signed body, which the idempotency key header
// repeats); its documentation lists what a receiver must do with each
// answer. Deduplication beyond the tolerance (retries come for hours) is
// the receiver's, by the event ID. Any 2xx answer is success; any other
// answer, a timeout or a network error is retried (honouring Retry-After
// up to BackoffMax), 410 Gone fails at once. Secrets never appear in logs
// or error texts, and neither does the webhook's URL (it may carry a
// token): both name the webhook by its Name.
//
// # NATS JetStream
//
// [NATSSink] publishes each event to "<prefix>.<kind>" with the event ID
// as Nats-Msg-Id, so JetStream's duplicate window drops a redelivery.
package events
