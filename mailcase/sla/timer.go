package sla

import (
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Timer is one service-level clock of a case: the stored record
// (driver.SLATimer) with its transitions. Every transition is pure: it
// takes the timer's calendar (nil for around the clock) and the time of
// the event, and returns the new value, leaving the receiver alone.
//
// A running timer counts business time from RunningSince; Elapsed holds
// what was counted before. WarnAt and DueAt are recomputed on every
// transition that runs the clock, and are zero while it is paused; Warned
// and Breached survive pauses, so an alert fires once per timer.
type Timer driver.SLATimer

// NewTimer returns a timer of level and kind for scope with the targets of
// t, started at start.
func NewTimer(level driver.SLALevel, kind driver.SLAKind, scope, policy string, t Target, cal *Calendar, calName string, start time.Time) Timer {
	tm := Timer{Level: level, Kind: kind, Scope: scope, Policy: policy, Warn: t.Warn, Due: t.Due}
	if t.Business {
		tm.Calendar = calName
	} else {
		cal = nil
	}
	return tm.Start(cal, start)
}

// Running reports whether the clock runs.
func (t Timer) Running() bool { return !t.RunningSince.IsZero() && !t.Stopped && !t.Paused }

// Start (re)starts the clock at at: nothing counted, no alert fired.
func (t Timer) Start(cal *Calendar, at time.Time) Timer {
	t.StartedAt, t.Elapsed, t.RunningSince = at, 0, at
	t.Paused, t.Stopped, t.Closed, t.Warned, t.Breached = false, false, false, false, false
	return t.schedule(cal)
}

// Pause stops counting at at until Resume; a timer that is not running is
// returned unchanged.
func (t Timer) Pause(cal *Calendar, at time.Time) Timer {
	if !t.Running() {
		return t
	}
	t.Elapsed += cal.Between(t.RunningSince, at)
	t.RunningSince, t.Paused = time.Time{}, true
	t.WarnAt, t.DueAt = time.Time{}, time.Time{}
	return t
}

// Resume counts again from at; only a paused timer changes.
func (t Timer) Resume(cal *Calendar, at time.Time) Timer {
	if !t.Paused || t.Stopped {
		return t
	}
	t.Paused, t.RunningSince = false, at
	return t.schedule(cal)
}

// Stop ends the clock at at for good (the target was met, or the case
// closed): no alert is due any more. A stopped timer is returned
// unchanged.
func (t Timer) Stop(cal *Calendar, at time.Time) Timer {
	if t.Stopped {
		return t
	}
	if t.Running() {
		t.Elapsed += cal.Between(t.RunningSince, at)
	}
	t.RunningSince, t.Stopped, t.Paused = time.Time{}, true, false
	return t
}

// Close stops the clock at at because the case was closed or cancelled:
// Stop, with the timer marked Closed so that Reopen runs it again. A
// timer stopped already (its target met) is returned unchanged.
func (t Timer) Close(cal *Calendar, at time.Time) Timer {
	if t.Stopped {
		return t
	}
	t = t.Stop(cal, at)
	t.Closed = true
	return t
}

// Reopen runs a timer that Close stopped again from at, counting on from
// what it had counted: the time the case spent closed does not count, and
// an alert that fired before does not fire again (Warned and Breached
// are kept, and so is StartedAt, which keeps a claim made meanwhile; see
// driver.SLAStore). Any other timer is returned unchanged.
func (t Timer) Reopen(cal *Calendar, at time.Time) Timer {
	if !t.Stopped || !t.Closed {
		return t
	}
	t.Stopped, t.Closed, t.Paused, t.RunningSince = false, false, false, at
	return t.schedule(cal)
}

// ElapsedAt returns the business time counted at now.
func (t Timer) ElapsedAt(cal *Calendar, now time.Time) time.Duration {
	if t.Running() {
		return t.Elapsed + cal.Between(t.RunningSince, now)
	}
	return t.Elapsed
}

// Remaining returns the business time left until the final time at now
// (negative when over).
func (t Timer) Remaining(cal *Calendar, now time.Time) time.Duration {
	return t.Due - t.ElapsedAt(cal, now)
}

// Met reports whether the timer stopped within its final time.
func (t Timer) Met() bool { return t.Stopped && !t.Breached && t.Elapsed <= t.Due }

// schedule sets WarnAt and DueAt of a running timer from what is left.
func (t Timer) schedule(cal *Calendar) Timer {
	t.WarnAt = time.Time{}
	if t.Warn > 0 {
		t.WarnAt = cal.Add(t.RunningSince, t.Warn-t.Elapsed)
	}
	t.DueAt = cal.Add(t.RunningSince, t.Due-t.Elapsed)
	return t
}
