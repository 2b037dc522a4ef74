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
// mail) and an Alerter claims the due alerts, each for one worker at a
// time, and mails them through the outbox.
//
// # Alerts
//
// An alert is claimed with a lease (tracker.AlertOptions.Lease, 5 minutes
// by default), its notification is queued, and then the claim is confirmed,
// which makes it permanent: the alert never fires again (until its timer is
// started again). A worker that dies after its claim and before the
// confirmation does not lose the alert: when the lease ends (measured on
// the claimers' clocks, the now each claim passes to the store), the next
// claim of any worker takes it over, one worker only. The notification is
// queued under a key made of the case, timer and alert time, so a takeover
// of an alert whose notification was queued before the worker died does
// not mail it twice. A notification that could not be queued is released
// and tried again by the next run. A caller that writes back timers it read
// before a claim keeps the claim, its lease and its confirmation (see
// driver.SLAStore).
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
// clocks stop on an agent reply; every clock stops, without alert, when
// the case is closed or cancelled.
//
// # Reopened cases
//
// A closed or cancelled case that is reopened, by a customer's reply (the
// pipeline sets it open) or by an agent (a status change), gets its clocks
// back as Request Tracker and Zammad do:
//
//   - Resolution counts on from what it had counted when the case was
//     closed: the time spent closed does not count, and its start stays, so
//     a warning or breach that fired before the closing does not fire again.
//   - First response, when the case was closed before any agent reply,
//     counts on the same way; once met (an agent replied) it stays met.
//   - Next response is due again when a customer's reply reopened the case
//     after an agent had replied: a new next-response clock starts at that
//     mail. A next-response clock the closing cut short (the customer was
//     waiting) counts on. An agent who reopens a case starts none (nobody
//     is waiting for an answer).
//
// A timer records why it stopped (driver.SLATimer.Closed): stopped by the
// closing runs again on reopening (Timer.Reopen), stopped by its target
// does not. A reopening into a pause status leaves the revived clocks
// paused.
package sla
