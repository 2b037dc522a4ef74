package mailcase

import (
	"context"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// CanSLA reports whether the store keeps service-level timers with its
// cases (driver.SLAStore).
func (s *Store) CanSLA() bool {
	_, ok := s.d.(driver.SLAStore)
	return ok
}

func (s *Store) slaStore(op string) (driver.SLAStore, error) {
	o, ok := s.d.(driver.SLAStore)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	return o, nil
}

// PutSLATimers replaces the service-level timers of case id (see
// driver.SLAStore for the rule that keeps the stored claims, confirmations
// and releases of timers not started again). Each
// timer needs a known Level and Kind, one timer per pair. A missing case
// is NotFound.
func (s *Store) PutSLATimers(ctx context.Context, id CaseID, timers []driver.SLATimer) error {
	const op = "PutSLATimers"
	o, err := s.slaStore(op)
	if err != nil {
		return err
	}
	if id == "" {
		return invalid(op, "empty case ID")
	}
	seen := map[[2]string]bool{}
	for _, t := range timers {
		switch {
		case t.Level != driver.SLAMailbox && t.Level != driver.SLAQueue:
			return invalid(op, "timer level %q", t.Level)
		case t.Kind != driver.SLAFirstResponse && t.Kind != driver.SLANextResponse && t.Kind != driver.SLAResolution:
			return invalid(op, "timer kind %q", t.Kind)
		case seen[[2]string{string(t.Level), string(t.Kind)}]:
			return invalid(op, "two %s timers of kind %s", t.Level, t.Kind)
		case t.Due <= 0 || t.Warn < 0 || t.Elapsed < 0:
			return invalid(op, "timer %s %s: durations", t.Level, t.Kind)
		}
		seen[[2]string{string(t.Level), string(t.Kind)}] = true
	}
	in := append([]driver.SLATimer{}, timers...)
	return s.do(ctx, op, true, func(ctx context.Context) error { return o.PutSLATimers(ctx, id, in) })
}

// GetSLATimers returns the service-level timers of case id; ok is false
// when the case does not exist.
func (s *Store) GetSLATimers(ctx context.Context, id CaseID) (timers []driver.SLATimer, ok bool, err error) {
	const op = "GetSLATimers"
	o, err := s.slaStore(op)
	if err != nil {
		return nil, false, err
	}
	if id == "" {
		return nil, false, invalid(op, "empty case ID")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		timers, err = o.GetSLATimers(ctx, id)
		return err
	})
	ok, err = notFound(err)
	return timers, ok, err
}

// ClaimSLAAlerts claims up to limit alerts due at now, each for one
// claimer at a time (see driver.SLAStore), held for lease: an alert not
// confirmed (ConfirmSLAAlert) or released before now + lease is claimable
// again from then on (from now + lease rounded up to the microsecond),
// measured on the now of the later claim. lease 0
// makes the claims permanent at once (an alert whose claimer dies before
// queueing its notification is lost); a negative lease is
// InvalidArgument. It is not retried: a claim whose answer was lost is
// not answered again by a retry (its alerts are claimed until their lease
// ends, see the package sla documentation).
func (s *Store) ClaimSLAAlerts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]driver.SLAAlert, error) {
	const op = "ClaimSLAAlerts"
	o, err := s.slaStore(op)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || now.IsZero() || lease < 0 {
		return nil, invalid(op, "a limit that is not positive, no time, or a negative lease")
	}
	var out []driver.SLAAlert
	err = s.do(ctx, op, false, func(ctx context.Context) (err error) {
		out, err = o.ClaimSLAAlerts(ctx, now, lease, limit)
		return err
	})
	return out, err
}

// ConfirmSLAAlert makes the claim of alert a, whose notification was
// queued, permanent: no later claim returns it (see driver.SLAStore). It
// changes nothing when the timer was restarted meanwhile or the claim
// was taken over after its lease ran out. A missing case is NotFound.
func (s *Store) ConfirmSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	const op = "ConfirmSLAAlert"
	o, err := s.slaStore(op)
	if err != nil {
		return err
	}
	if a == nil || a.CaseID == "" || (a.Alert != driver.SLAWarning && a.Alert != driver.SLABreach) || a.At.IsZero() {
		return invalid(op, "an alert needs a case, a kind and a time")
	}
	c := *a
	return s.do(ctx, op, true, func(ctx context.Context) error { return o.ConfirmSLAAlert(ctx, &c) })
}

// ReleaseSLAAlert undoes the claim of alert a, whose notification could
// not be sent, so that a later claim returns it again at once (see
// driver.SLAStore); a timer recomputed meanwhile keeps its flags, and so
// does a claim confirmed or taken over by another claimer. A missing case
// is NotFound.
func (s *Store) ReleaseSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	const op = "ReleaseSLAAlert"
	o, err := s.slaStore(op)
	if err != nil {
		return err
	}
	if a == nil || a.CaseID == "" || (a.Alert != driver.SLAWarning && a.Alert != driver.SLABreach) || a.At.IsZero() {
		return invalid(op, "an alert needs a case, a kind and a time")
	}
	c := *a
	return s.do(ctx, op, true, func(ctx context.Context) error { return o.ReleaseSLAAlert(ctx, &c) })
}
