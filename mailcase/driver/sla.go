package driver

import (
	"context"
	"time"
)

// SLALevel says what a service-level timer measures from: the mailbox the
// mail came in by (from when the mail server received it) or the queue the
// case was routed to (from when it was routed).
type SLALevel string

// Service-level timer levels.
const (
	SLAMailbox SLALevel = "mailbox"
	SLAQueue   SLALevel = "queue"
)

// SLAKind is the target a service-level timer measures.
type SLAKind string

// Service-level targets.
const (
	// SLAFirstResponse runs until the first agent reply.
	SLAFirstResponse SLAKind = "first_response"
	// SLANextResponse runs from a customer mail that follows an agent
	// reply until the next agent reply.
	SLANextResponse SLAKind = "next_response"
	// SLAResolution runs until the case is closed or cancelled.
	SLAResolution SLAKind = "resolution"
)

// SLAAlertKind is the alert of a timer: its warning or its final time.
type SLAAlertKind string

// Alert kinds.
const (
	SLAWarning SLAAlertKind = "warning"
	SLABreach  SLAAlertKind = "breach"
)

// SLATimer is one service-level clock of a case, as stored with the case.
// A case has at most one timer per (Level, Kind). The timer's arithmetic
// (business hours, pauses) is done by package mailcase/sla; a driver only
// keeps the values and judges which alerts are due (see SLAStore).
type SLATimer struct {
	Level SLALevel `json:"level"`
	Kind  SLAKind  `json:"kind"`
	// Scope is the mailbox (SLAMailbox) or queue (SLAQueue) the timer was
	// computed for; Policy names the policy it came from and Calendar the
	// business calendar its durations count on ("" for around the clock).
	Scope    string `json:"scope"`
	Policy   string `json:"policy,omitempty"`
	Calendar string `json:"calendar,omitempty"`
	// Warn and Due are the targets measured from the start: the warning
	// (0 for none) and the final time.
	Warn time.Duration `json:"warn,omitempty"`
	Due  time.Duration `json:"due"`
	// StartedAt is when the clock started; Elapsed is the time counted up
	// to RunningSince (zero when the clock is not running).
	StartedAt    time.Time     `json:"started_at"`
	Elapsed      time.Duration `json:"elapsed"`
	RunningSince time.Time     `json:"running_since,omitzero"`
	// Paused clocks resume later; Stopped clocks do not run again, except
	// those Closed: stopped because the case was closed or cancelled (not
	// because the target was met), which run again when the case is
	// reopened (see package mailcase/sla).
	Paused  bool `json:"paused,omitempty"`
	Stopped bool `json:"stopped,omitempty"`
	Closed  bool `json:"closed,omitempty"`
	// Overridden marks a mailbox-level timer whose target the case's
	// queue also sets: the queue's timer alerts, this one does not.
	Overridden bool `json:"overridden,omitempty"`
	// WarnAt and DueAt are when the warning and the final alert are due
	// (zero for none, and while paused).
	WarnAt time.Time `json:"warn_at,omitzero"`
	DueAt  time.Time `json:"due_at,omitzero"`
	// Warned and Breached record that the alert was claimed.
	Warned   bool `json:"warned,omitempty"`
	Breached bool `json:"breached,omitempty"`
	// WarnLease and BreachLease are when the lease of a claim not yet
	// confirmed ends (see SLAStore): a claimed alert (Warned, Breached)
	// with a lease is claimable again from that time on. Zero means the
	// claim is permanent (confirmed, or claimed without a lease), and
	// always for an alert not claimed.
	WarnLease   time.Time `json:"warn_lease,omitzero"`
	BreachLease time.Time `json:"breach_lease,omitzero"`
}

// Lease returns the end of the lease of alert kind k of t (zero for a
// permanent claim or none).
func (t *SLATimer) Lease(k SLAAlertKind) time.Time {
	if k == SLABreach {
		return t.BreachLease
	}
	return t.WarnLease
}

// AlertDue reports whether alert kind k of t is due at now by the rule of
// SLAStore.ClaimSLAAlerts (the case's status aside).
func (t *SLATimer) AlertDue(k SLAAlertKind, now time.Time) bool {
	if t.Stopped || t.Paused || t.Overridden {
		return false
	}
	free := func(claimed bool, lease time.Time) bool {
		return !claimed || (!lease.IsZero() && !lease.After(now))
	}
	switch k {
	case SLAWarning:
		return free(t.Warned, t.WarnLease) && !t.WarnAt.IsZero() && !t.WarnAt.After(now)
	case SLABreach:
		return free(t.Breached, t.BreachLease) && !t.DueAt.IsZero() && !t.DueAt.After(now)
	}
	return false
}

// SLAAlert is a claimed alert: the case it belongs to and its timer as the
// store holds it when the claim returns, with the flag and lease of every
// alert the same call claimed set: when one call claims both the warning
// and the breach of a timer, both alerts carry Warned and Breached and
// both leases. The timer's lease of the alert's kind identifies the claim
// to ConfirmSLAAlert and ReleaseSLAAlert.
type SLAAlert struct {
	CaseID CaseID       `json:"case_id"`
	Alert  SLAAlertKind `json:"alert"`
	// At is the alert's time (the timer's WarnAt or DueAt).
	At    time.Time `json:"at"`
	Timer SLATimer  `json:"timer"`
}

// SLAStore is an optional interface for stores that keep the service-level
// timers of cases with the cases, so that alerts survive restarts and
// several alert workers share them. An alert is claimed with a lease and
// confirmed once its notification is queued, so that a claimer that dies
// between the two does not lose it. The rules:
//
//   - PutSLATimers replaces every timer of case id with timers (at most
//     one per Level and Kind; an empty slice removes them all), kept value
//     for value (times to the microsecond). A missing case is NotFound.
//     One rule protects claims made meanwhile: when the new timer has the
//     same Level, Kind, StartedAt and Policy as a stored one, the stored
//     Warned, Breached, WarnLease and BreachLease are kept, whatever the
//     new value says (set or not: a caller cannot claim, confirm or
//     release through PutSLATimers), so a caller that read the timers
//     before a claim, its confirmation or its release and writes them
//     back after it (a pause, which clears WarnAt and DueAt, and the
//     resume that sets them again included) neither drops a pending
//     lease, nor undoes a confirmation, nor undoes a release (a released
//     alert stays claimable at once), and never makes an alert fire
//     twice. A new timer, or one started again (another StartedAt) or
//     under another Policy, takes the new flags and leases. A lease given
//     with a flag that is not set is not kept (stored as zero).
//   - GetSLATimers returns the timers of case id ordered by Level, then
//     Kind (an empty slice when it has none); a missing case is NotFound.
//   - ClaimSLAAlerts claims, at most limit (limit > 0), alerts due at now:
//     for each timer that is neither Stopped, Paused nor Overridden, of a
//     case whose status is not closed or cancelled, the warning when
//     WarnAt is set and not after now and it is not Warned, or Warned
//     with a WarnLease that is set and not after now (a claim whose lease
//     ran out unconfirmed); the breach likewise with DueAt, Breached and
//     BreachLease (see SLATimer.AlertDue). Claiming sets Warned
//     (Breached) and WarnLease (BreachLease) to now + lease, rounded up
//     to the microsecond, in the store atomically, lease > 0; lease == 0
//     makes the claim permanent at once (lease zero, no confirmation
//     needed). Leases are measured on the now passed in, never on the
//     store's clock: a claim made at now with lease d is not returned by
//     any claim at a time before now + d, and is returned again by the
//     first claim at a time not before that lease end (now + d rounded up
//     to the microsecond) unless it was confirmed or released meanwhile. Concurrent claims, in one
//     process or on many machines, never return the same alert, so each
//     alert is returned to exactly one claimer per claim (again after its
//     lease ran out, to one claimer only). Alerts are returned earliest At
//     first, each with its timer as stored after the claim (see SLAAlert;
//     its lease is the claim's). A claim changes the timers only: the
//     case's UpdatedAt stays as it is.
//   - ConfirmSLAAlert makes the claim of a, an alert returned by
//     ClaimSLAAlerts whose notification was queued, permanent: it clears
//     WarnLease (a.Alert SLAWarning) or BreachLease of the timer of
//     a.CaseID with a.Timer's Level and Kind, when that timer still has
//     a.Timer's StartedAt and Policy, its flag is set and its lease still
//     equals a.Timer's (the claim was not taken over after its lease ran
//     out). The alert is then never returned again by a claim (until a
//     timer started again, see PutSLATimers). When the timer was removed
//     or restarted meanwhile, the claim was taken over, or it is already
//     permanent, nothing changes and the error is nil. A missing case is
//     NotFound. It leaves the case's UpdatedAt alone.
//   - ReleaseSLAAlert undoes the claim of a, an alert returned by
//     ClaimSLAAlerts whose notification could not be sent: it clears
//     Warned and WarnLease (a.Alert SLAWarning) or Breached and
//     BreachLease of the timer of a.CaseID with a.Timer's Level and Kind,
//     when that timer still has a.Timer's StartedAt and Policy, its
//     WarnAt (DueAt) still equals a.At and its lease still equals
//     a.Timer's, so the next claim returns the alert again at once (to
//     one claimer: the rule of ClaimSLAAlerts holds). When the timer was
//     removed, recomputed or restarted meanwhile, the claim was confirmed
//     or taken over by another claimer, or the flag is not set, nothing
//     changes and the error is nil. A missing case is NotFound. Like a
//     claim, it leaves the case's UpdatedAt alone.
type SLAStore interface {
	PutSLATimers(ctx context.Context, id CaseID, timers []SLATimer) error
	GetSLATimers(ctx context.Context, id CaseID) ([]SLATimer, error)
	ClaimSLAAlerts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]SLAAlert, error)
	ConfirmSLAAlert(ctx context.Context, a *SLAAlert) error
	ReleaseSLAAlert(ctx context.Context, a *SLAAlert) error
}
