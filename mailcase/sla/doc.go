// Package sla keeps service-level clocks on cases: business calendars
// (weekly hours, holidays, a time zone), policies with first-response,
// next-response and resolution targets (each with a warning and a final
// time, in business or real time) per mailbox and per queue, and timers
// whose transitions are pure functions of the calendar and the event's
// time.
//
// The timers live with the case in the store (driver.SLAStore), never in
// memory, so alerts survive restarts and several alert workers can share
// them: a Tracker updates them on the events of a case (created, routed,
// moved to another queue or mailbox, status changed, agent reply, customer
// mail) and an Alerter claims the due alerts, each exactly once, and mails
// them through the outbox.
//
// # Levels
//
// Like the email alerts of the ERMS the package follows, a case has
// mailbox-level timers, started when the mail server received the mail and
// recomputed when the case moves to another mailbox, and queue-level
// timers, started when the case is routed and recomputed when it moves to
// another queue. A queue's policy overrides the mailbox's for the targets
// it sets: the mailbox-level timer of such a target is kept, but gives no
// alert while the case is on that queue.
//
// # Clocks
//
// A clock pauses while the case is in one of its policy's pause statuses
// (by default "waiting", waiting on the customer) and resumes when the status changes
// back or the customer writes again. The first-response and next-response
// clocks stop on an agent reply; every clock stops, for good and without
// alert, when the case is closed or cancelled.
package sla
