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
	for _, p := range []*time.Time{&t.StartedAt, &t.RunningSince, &t.WarnAt, &t.DueAt} {
		*p = p.Truncate(time.Microsecond)
	}
	return t
}

// PutSLATimers replaces the timers of a case, keeping the alerts already
// claimed for unchanged alert times (driver.SLAStore).
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
		if o, ok := old[k]; ok {
			same := o.StartedAt.Equal(t.StartedAt) && o.Policy == t.Policy
			t.Warned = t.Warned || (o.Warned && same)
			t.Breached = t.Breached || (o.Breached && same)
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
func (s *store) ClaimSLAAlerts(ctx context.Context, now time.Time, limit int) ([]driver.SLAAlert, error) {
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
	for _, r := range due {
		t := &s.sla[r.id][r.i]
		if r.a.Alert == driver.SLAWarning {
			t.Warned = true
		} else {
			t.Breached = true
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

// ReleaseSLAAlert undoes the claim of an alert whose timer is unchanged
// (driver.SLAStore).
func (s *store) ReleaseSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.cases[a.CaseID]; !ok {
		return errorf(driver.NotFound, "no case %q", a.CaseID)
	}
	at := a.At.Truncate(time.Microsecond)
	for i := range s.sla[a.CaseID] {
		t := &s.sla[a.CaseID][i]
		if t.Level != a.Timer.Level || t.Kind != a.Timer.Kind || t.Policy != a.Timer.Policy ||
			!t.StartedAt.Equal(a.Timer.StartedAt.Truncate(time.Microsecond)) {
			continue
		}
		switch {
		case a.Alert == driver.SLAWarning && t.WarnAt.Equal(at):
			t.Warned = false
		case a.Alert == driver.SLABreach && t.DueAt.Equal(at):
			t.Breached = false
		}
	}
	return nil
}
