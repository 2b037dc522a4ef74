// Package tracker keeps the service-level timers of cases in the store as
// the cases change (Tracker), mails the alerts when their times come
// (Alerter: claim with a lease, queue the notification, confirm), and ties
// the tracker to the pipeline (Hook). The arithmetic lives in package sla;
// the timers live in the store (driver.SLAStore).
package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/sla"
)

// Options configures a Tracker. A nil *Options is equivalent to a zero
// value.
type Options struct {
	// Now is the clock of the events; nil means time.Now.
	Now func() time.Time
	// Logger receives the tracker's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Tracker updates the service-level timers of cases on the events of a
// case. Each method reads the case and its timers, applies the event and
// writes the timers back; it is safe for concurrent use, and events of one
// case are expected one at a time (the pipeline processes the mails of a
// thread one at a time). A claim by an alert worker meanwhile is kept,
// with its lease or its confirmation (see driver.SLAStore).
type Tracker struct {
	store *mailcase.Store
	pol   *sla.Policies
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Tracker over store with the policies pol. The store must
// keep service-level timers (mailcase.Store.CanSLA).
func New(store *mailcase.Store, pol *sla.Policies, opts *Options) (*Tracker, error) {
	if store == nil || pol == nil {
		return nil, errors.New("sla: a tracker needs a store and policies")
	}
	if !store.CanSLA() {
		return nil, errors.New("sla: the store keeps no service-level timers")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Tracker{store: store, pol: pol, now: o.Now, log: o.Logger.With("component", "sla")}, nil
}

// Policies returns the tracker's policies.
func (t *Tracker) Policies() *sla.Policies { return t.pol }

// calendar returns the calendar of a timer: nil for real time, and for a
// calendar no longer configured (logged).
func (t *Tracker) calendar(ctx context.Context, tm *sla.Timer) *sla.Calendar {
	cal, ok := t.pol.Calendar(tm.Calendar)
	if !ok {
		t.log.WarnContext(ctx, "sla: timer names an unknown calendar; counting around the clock", "calendar", tm.Calendar)
	}
	return cal
}

// state is a case with its timers while an event is applied.
type state struct {
	c      mailcase.Case
	timers []sla.Timer
}

func (t *Tracker) load(ctx context.Context, id mailcase.CaseID) (*state, error) {
	c, ok, err := t.store.GetCase(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sla: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("sla: case %s: %w", id, mailcase.ErrNotFound)
	}
	ts, ok, err := t.store.GetSLATimers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sla: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("sla: case %s: %w", id, mailcase.ErrNotFound)
	}
	st := &state{c: c}
	for _, tm := range ts {
		st.timers = append(st.timers, sla.Timer(tm))
	}
	return st, nil
}

func (t *Tracker) save(ctx context.Context, st *state, queue string) error {
	t.overrides(st, queue)
	out := make([]driver.SLATimer, 0, len(st.timers))
	for _, tm := range st.timers {
		out = append(out, driver.SLATimer(tm))
	}
	if err := t.store.PutSLATimers(ctx, st.c.ID, out); err != nil {
		return fmt.Errorf("sla: %w", err)
	}
	return nil
}

// overrides marks the mailbox-level timers whose target the queue's
// policy sets.
func (t *Tracker) overrides(st *state, queue string) {
	_, qp, onQueue := t.pol.Queue(queue)
	for i := range st.timers {
		tm := &st.timers[i]
		if tm.Level == driver.SLAMailbox {
			tm.Overridden = onQueue && queue != "" && qpTarget(qp, tm.Kind).Set()
		}
	}
}

func qpTarget(p sla.Policy, k driver.SLAKind) sla.Target {
	switch k {
	case driver.SLAFirstResponse:
		return p.FirstResponse
	case driver.SLANextResponse:
		return p.NextResponse
	}
	return p.Resolution
}

// responded reports whether an agent replied on the case: a first-response
// timer stopped by its target (not by the case's closing), or a
// next-response timer exists.
func (st *state) responded() bool {
	for _, tm := range st.timers {
		if tm.Kind == driver.SLANextResponse || (tm.Kind == driver.SLAFirstResponse && tm.Stopped && !tm.Closed) {
			return true
		}
	}
	return false
}

// without returns the timers not of level.
func (st *state) without(level driver.SLALevel) []sla.Timer {
	var out []sla.Timer
	for _, tm := range st.timers {
		if tm.Level != level {
			out = append(out, tm)
		}
	}
	return out
}

// find returns the timer of level and kind, or nil.
func (st *state) find(level driver.SLALevel, kind driver.SLAKind) *sla.Timer {
	for i := range st.timers {
		if st.timers[i].Level == level && st.timers[i].Kind == kind {
			return &st.timers[i]
		}
	}
	return nil
}

// paused reports whether status pauses the clocks of a policy.
func (t *Tracker) paused(policy string, status mailcase.CaseStatus) bool {
	p, ok := t.pol.Policy(policy)
	if !ok {
		return false
	}
	for _, s := range p.PauseStatuses {
		if s == status {
			return true
		}
	}
	return false
}

// build returns the timers of one level for scope, started at start,
// brought to the case's status at now: no first-response timer once
// responded; next, when not zero, starts a next-response timer at next.
func (t *Tracker) build(ctx context.Context, st *state, level driver.SLALevel, scope string, responded bool, start, next, now time.Time) []sla.Timer {
	var name string
	var p sla.Policy
	var ok bool
	if level == driver.SLAMailbox {
		name, p, ok = t.pol.Mailbox(scope)
	} else {
		name, p, ok = t.pol.Queue(scope)
	}
	if !ok {
		return nil
	}
	cal, _ := t.pol.Calendar(p.Calendar)
	var out []sla.Timer
	add := func(kind driver.SLAKind, target sla.Target, at time.Time) {
		if !target.Set() || at.IsZero() {
			return
		}
		tm := sla.NewTimer(level, kind, scope, name, target, cal, p.Calendar, at)
		out = append(out, t.bring(ctx, tm, st.c.Status, now))
	}
	if !responded {
		add(driver.SLAFirstResponse, p.FirstResponse, start)
	}
	add(driver.SLANextResponse, p.NextResponse, next)
	add(driver.SLAResolution, p.Resolution, start)
	return out
}

// bring applies the case's status to a timer: stopped by the closing when
// closed, paused in a pause status.
func (t *Tracker) bring(ctx context.Context, tm sla.Timer, status mailcase.CaseStatus, now time.Time) sla.Timer {
	cal := t.calendar(ctx, &tm)
	switch {
	case status.IsClosed():
		return tm.Close(cal, now)
	case t.paused(tm.Policy, status):
		return tm.Pause(cal, now)
	}
	return tm
}

// CaseCreated starts the clocks of a new case: the mailbox-level ones of
// mailbox from received (when the mail server received the mail; zero
// means now) and, when the case was routed to queue, the queue-level ones
// from now.
func (t *Tracker) CaseCreated(ctx context.Context, id mailcase.CaseID, mailbox string, received time.Time, queue string) error {
	st, err := t.load(ctx, id)
	if err != nil {
		return err
	}
	now := t.now()
	if received.IsZero() || received.After(now) {
		received = now
	}
	responded := st.responded()
	st.timers = append(st.without(driver.SLAMailbox), t.build(ctx, st, driver.SLAMailbox, mailbox, responded, received, time.Time{}, now)...)
	if queue != "" {
		st.timers = append(st.without(driver.SLAQueue), t.build(ctx, st, driver.SLAQueue, queue, responded, now, time.Time{}, now)...)
	}
	return t.save(ctx, st, queue)
}

// QueueChanged recomputes the queue-level clocks of a case routed or
// reassigned to queue ("" for none: the queue-level clocks end), from now.
// The mailbox-level clocks are kept.
func (t *Tracker) QueueChanged(ctx context.Context, id mailcase.CaseID, queue string) error {
	st, err := t.load(ctx, id)
	if err != nil {
		return err
	}
	now := t.now()
	var next time.Time
	if old := st.find(driver.SLAQueue, driver.SLANextResponse); old != nil && !old.Stopped {
		next = now
	}
	responded := st.responded()
	st.timers = st.without(driver.SLAQueue)
	if queue != "" {
		st.timers = append(st.timers, t.build(ctx, st, driver.SLAQueue, queue, responded, now, next, now)...)
	}
	return t.save(ctx, st, queue)
}

// MailboxChanged recomputes the mailbox-level clocks of a case moved to
// mailbox, from when its mail was received (the start of the old
// mailbox-level clocks, or now when it had none).
func (t *Tracker) MailboxChanged(ctx context.Context, id mailcase.CaseID, mailbox string) error {
	st, err := t.load(ctx, id)
	if err != nil {
		return err
	}
	now := t.now()
	received, next := now, time.Time{}
	for _, tm := range st.timers {
		if tm.Level != driver.SLAMailbox {
			continue
		}
		if tm.Kind == driver.SLANextResponse {
			if !tm.Stopped {
				next = tm.StartedAt
			}
		} else if tm.StartedAt.Before(received) {
			received = tm.StartedAt
		}
	}
	responded := st.responded()
	st.timers = append(st.without(driver.SLAMailbox), t.build(ctx, st, driver.SLAMailbox, mailbox, responded, received, next, now)...)
	return t.save(ctx, st, st.c.Queue)
}

// reopen runs again, from at, the clocks the closing of the case stopped
// (see the package sla documentation, Reopened cases); a closed case
// changes nothing.
func (t *Tracker) reopen(ctx context.Context, st *state, status mailcase.CaseStatus, at time.Time) {
	if status.IsClosed() {
		return
	}
	for i := range st.timers {
		tm := &st.timers[i]
		if tm.Closed {
			*tm = t.bring(ctx, tm.Reopen(t.calendar(ctx, tm), at), status, at)
		}
	}
}

// StatusChanged applies a new status of a case: closed or cancelled stop
// every clock (no alert while closed); a pause status of a timer's policy
// pauses it; any other status resumes it. A status that reopens a closed
// case runs again the clocks the closing stopped: resolution, and the
// response clocks that had not met their target.
func (t *Tracker) StatusChanged(ctx context.Context, id mailcase.CaseID, status mailcase.CaseStatus) error {
	st, err := t.load(ctx, id)
	if err != nil {
		return err
	}
	now := t.now()
	t.reopen(ctx, st, status, now)
	for i := range st.timers {
		tm := &st.timers[i]
		cal := t.calendar(ctx, tm)
		switch {
		case status.IsClosed():
			*tm = tm.Close(cal, now)
		case t.paused(tm.Policy, status):
			*tm = tm.Pause(cal, now)
		default:
			*tm = tm.Resume(cal, now)
		}
	}
	return t.save(ctx, st, st.c.Queue)
}

// AgentReplied stops the first-response and next-response clocks at at
// (zero means now), the time the reply was queued. A reply answers only
// the clocks started before it: a clock started after at (a customer's
// mail that came after the reply) keeps running, so a reply reported
// again later (a repeated command) does not stop it. On a case the reply
// reopened, the clocks its closing stopped run again first, so resolution
// counts on.
func (t *Tracker) AgentReplied(ctx context.Context, id mailcase.CaseID, at time.Time) error {
	st, err := t.load(ctx, id)
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = t.now()
	}
	t.reopen(ctx, st, st.c.Status, at)
	for i := range st.timers {
		tm := &st.timers[i]
		if tm.Kind != driver.SLAResolution && !tm.StartedAt.After(at) {
			*tm = tm.Stop(t.calendar(ctx, tm), at)
		}
	}
	return t.save(ctx, st, st.c.Queue)
}

// CustomerMailed handles a customer's mail on a case at at (zero means
// now): on a case the mail reopened, the clocks its closing stopped run
// again; paused clocks resume, and after an agent reply the next-response
// clocks start (a running one keeps its start: it measures from the
// first unanswered mail). Mail on a case still closed changes nothing.
func (t *Tracker) CustomerMailed(ctx context.Context, id mailcase.CaseID, at time.Time) error {
	st, err := t.load(ctx, id)
	if err != nil {
		return err
	}
	if st.c.Status.IsClosed() {
		return nil
	}
	if at.IsZero() {
		at = t.now()
	}
	t.reopen(ctx, st, st.c.Status, at)
	for i := range st.timers {
		tm := &st.timers[i]
		*tm = tm.Resume(t.calendar(ctx, tm), at)
	}
	if st.responded() {
		mailbox := ""
		for _, tm := range st.timers {
			if tm.Level == driver.SLAMailbox {
				mailbox = tm.Scope
			}
		}
		for _, lv := range []struct {
			level driver.SLALevel
			scope string
		}{{driver.SLAMailbox, mailbox}, {driver.SLAQueue, st.c.Queue}} {
			if lv.scope == "" {
				continue
			}
			if cur := st.find(lv.level, driver.SLANextResponse); cur != nil && !cur.Stopped {
				continue
			}
			var name string
			var p sla.Policy
			var ok bool
			if lv.level == driver.SLAMailbox {
				name, p, ok = t.pol.Mailbox(lv.scope)
			} else {
				name, p, ok = t.pol.Queue(lv.scope)
			}
			if !ok || !p.NextResponse.Set() {
				continue
			}
			cal, _ := t.pol.Calendar(p.Calendar)
			tm := sla.NewTimer(lv.level, driver.SLANextResponse, lv.scope, name, p.NextResponse, cal, p.Calendar, at)
			if cur := st.find(lv.level, driver.SLANextResponse); cur != nil {
				*cur = tm
			} else {
				st.timers = append(st.timers, tm)
			}
		}
	}
	return t.save(ctx, st, st.c.Queue)
}

// TimerStatus is a timer as `mailcase sla status` shows it.
type TimerStatus struct {
	sla.Timer
	// ElapsedNow and Remaining are measured at the time of the call.
	ElapsedNow time.Duration `json:"elapsed_now"`
	Remaining  time.Duration `json:"remaining"`
	// State is "running", "paused", "met", "breached" or "overridden".
	State string `json:"state"`
}

// Status returns the timers of a case as of now.
func (t *Tracker) Status(ctx context.Context, id mailcase.CaseID) ([]TimerStatus, error) {
	st, err := t.load(ctx, id)
	if err != nil {
		return nil, err
	}
	now := t.now()
	out := make([]TimerStatus, 0, len(st.timers))
	for _, tm := range st.timers {
		cal := t.calendar(ctx, &tm)
		s := TimerStatus{Timer: tm, ElapsedNow: tm.ElapsedAt(cal, now), Remaining: tm.Remaining(cal, now)}
		switch {
		case tm.Breached || (tm.Stopped && tm.Elapsed > tm.Due):
			s.State = "breached"
		case tm.Stopped:
			s.State = "met"
		case tm.Overridden:
			s.State = "overridden"
		case tm.Paused:
			s.State = "paused"
		default:
			s.State = "running"
		}
		out = append(out, s)
	}
	return out, nil
}
