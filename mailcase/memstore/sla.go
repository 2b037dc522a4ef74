package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// slaKey orders and identifies a timer within a case.
func slaKey(t *driver.SLATimer) string { return string(t.Level) + "\x00" + string(t.Kind) }

// truncSLA keeps the times of t to the microsecond, as SQL stores do.
func truncSLA(t driver.SLATimer) driver.SLATimer {
	for _, p := range []*time.Time{&t.StartedAt, &t.RunningSince, &t.WarnAt, &t.DueAt, &t.WarnLease, &t.BreachLease} {
		*p = p.Truncate(time.Microsecond)
	}
	return t
}

// PutSLATimers replaces the timers of a case, keeping the stored claims
// (flags and leases) of timers not started again (driver.SLAStore).
func (s *store) PutSLATimers(ctx context.Context, id driver.CaseID, timers []driver.SLATimer) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.cases[id]; !ok {
		return errorf(driver.NotFound, "no case %q", id)
	}
	old := map[string]driver.SLATimer{}
	for _, t := range s.sla[id] {
		old[slaKey(&t)] = t
	}
	out := make([]driver.SLATimer, 0, len(timers))
	seen := map[string]bool{}
	for _, t := range timers {
		t = truncSLA(t)
		k := slaKey(&t)
		if seen[k] {
			return errorf(driver.InvalidArgument, "two timers %s %s", t.Level, t.Kind)
		}
		seen[k] = true
		if !t.Warned {
			t.WarnLease = time.Time{}
		}
		if !t.Breached {
			t.BreachLease = time.Time{}
		}
		if o, ok := old[k]; ok && o.StartedAt.Equal(t.StartedAt) && o.Policy == t.Policy {
			// The stored claims win, set or not: they may be newer than
			// the caller's copy (a claim, confirmation or release since).
			t.Warned, t.WarnLease = o.Warned, o.WarnLease
			t.Breached, t.BreachLease = o.Breached, o.BreachLease
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b driver.SLATimer) int { return cmp.Compare(slaKey(&a), slaKey(&b)) })
	if s.sla == nil {
		s.sla = map[driver.CaseID][]driver.SLATimer{}
	}
	s.sla[id] = out
	return nil
}

// GetSLATimers returns the timers of a case (driver.SLAStore).
func (s *store) GetSLATimers(ctx context.Context, id driver.CaseID) ([]driver.SLATimer, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if _, ok := s.cases[id]; !ok {
		return nil, errorf(driver.NotFound, "no case %q", id)
	}
	return append([]driver.SLATimer{}, s.sla[id]...), nil
}

// ClaimSLAAlerts claims the due alerts under the store's lock, so
// concurrent claims never share one (driver.SLAStore).
func (s *store) ClaimSLAAlerts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]driver.SLAAlert, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	type ref struct {
		id driver.CaseID
		i  int
		a  driver.SLAAlert
	}
	var due []ref
	for _, id := range s.caseOrder {
		if s.cases[id].c.Status.IsClosed() {
			continue
		}
		for i := range s.sla[id] {
			t := &s.sla[id][i]
			if t.AlertDue(driver.SLAWarning, now) {
				due = append(due, ref{id, i, driver.SLAAlert{CaseID: id, Alert: driver.SLAWarning, At: t.WarnAt}})
			}
			if t.AlertDue(driver.SLABreach, now) {
				due = append(due, ref{id, i, driver.SLAAlert{CaseID: id, Alert: driver.SLABreach, At: t.DueAt}})
			}
		}
	}
	slices.SortStableFunc(due, func(a, b ref) int { return a.a.At.Compare(b.a.At) })
	if len(due) > limit {
		due = due[:limit]
	}
	var end time.Time // a permanent claim without a lease
	if lease > 0 {
		// Rounded up to the microsecond the store keeps: no claim before
		// now + lease returns the alert.
		end = now.Add(lease)
		if t := end.Truncate(time.Microsecond); t.Before(end) {
			end = t.Add(time.Microsecond)
		} else {
			end = t
		}
	}
	for _, r := range due {
		t := &s.sla[r.id][r.i]
		if r.a.Alert == driver.SLAWarning {
			t.Warned, t.WarnLease = true, end
		} else {
			t.Breached, t.BreachLease = true, end
		}
	}
	// Every alert carries its timer as stored after the whole claim.
	out := make([]driver.SLAAlert, 0, len(due))
	for _, r := range due {
		r.a.Timer = s.sla[r.id][r.i]
		out = append(out, r.a)
	}
	return out, nil
}

// slaClaimOf returns the timer of a's claim: same case, level, kind,
// start and policy, and the flag of a set with a's lease (nil for none).
func (s *store) slaClaimOf(a *driver.SLAAlert) *driver.SLATimer {
	lease := a.Timer.Lease(a.Alert).Truncate(time.Microsecond)
	for i := range s.sla[a.CaseID] {
		t := &s.sla[a.CaseID][i]
		if t.Level != a.Timer.Level || t.Kind != a.Timer.Kind || t.Policy != a.Timer.Policy ||
			!t.StartedAt.Equal(a.Timer.StartedAt.Truncate(time.Microsecond)) {
			continue
		}
		claimed := t.Warned
		if a.Alert == driver.SLABreach {
			claimed = t.Breached
		}
		if claimed && t.Lease(a.Alert).Equal(lease) {
			return t
		}
	}
	return nil
}

// ConfirmSLAAlert makes the claim of an alert permanent while the claim
// is still the one returned (driver.SLAStore).
func (s *store) ConfirmSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.cases[a.CaseID]; !ok {
		return errorf(driver.NotFound, "no case %q", a.CaseID)
	}
	if t := s.slaClaimOf(a); t != nil {
		if a.Alert == driver.SLAWarning {
			t.WarnLease = time.Time{}
		} else {
			t.BreachLease = time.Time{}
		}
	}
	return nil
}

// ReleaseSLAAlert undoes the claim of an alert whose timer is unchanged
// and whose claim is still the one returned (driver.SLAStore).
func (s *store) ReleaseSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.cases[a.CaseID]; !ok {
		return errorf(driver.NotFound, "no case %q", a.CaseID)
	}
	at := a.At.Truncate(time.Microsecond)
	t := s.slaClaimOf(a)
	switch {
	case t == nil:
	case a.Alert == driver.SLAWarning && t.WarnAt.Equal(at):
		t.Warned, t.WarnLease = false, time.Time{}
	case a.Alert == driver.SLABreach && t.DueAt.Equal(at):
		t.Breached, t.BreachLease = false, time.Time{}
	}
	return nil
}
