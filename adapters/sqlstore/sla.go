package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The service-level timers (driver.SLAStore, schema v10) are one row per
// case, level and kind. PutSLATimers locks the case's rows (SELECT ... FOR
// UPDATE on PostgreSQL and MySQL; SQLite has one writer) before replacing
// them, so a claim, confirmation or release committed meanwhile is seen
// and kept. A claim is a conditional single-row UPDATE per alert (warned
// = 0 AND warn_at, started_at and policy = the values read), made in key
// order: whichever claimer's UPDATE finds the row still unclaimed wins,
// the others change nothing. A release (ReleaseSLAAlert) is the reverse
// conditional UPDATE, on the alert time, start, policy and lease the
// claim returned. Closed (schema v12) is the stopped_closed column. The
// lease of a claim not yet confirmed (schema v13) is warn_lease
// (breach_lease), Unix microseconds, 0 for a permanent claim: a claim of
// an alert whose lease ran out is the same conditional UPDATE on the flag
// and lease read, so exactly one claimer takes it over; a confirmation
// (ConfirmSLAAlert) sets the lease to 0 where it still is the claim's.

var _ driver.SLAStore = (*store)(nil)

const slaCols = `case_id, level, kind, scope, policy, calendar, warn, due, elapsed, started_at, running_since,
 paused, stopped, overridden, warn_at, due_at, warned, breached, stopped_closed, warn_lease, breach_lease`

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func scanSLA(sc interface{ Scan(...any) error }) (driver.CaseID, driver.SLATimer, error) {
	var t driver.SLATimer
	var id, warn, due, elapsed, started, running, warnAt, dueAt, warnLease, breachLease int64
	var paused, stopped, over, warned, breached, closed int
	var level, kind string
	if err := sc.Scan(&id, &level, &kind, &t.Scope, &t.Policy, &t.Calendar, &warn, &due, &elapsed, &started, &running,
		&paused, &stopped, &over, &warnAt, &dueAt, &warned, &breached, &closed, &warnLease, &breachLease); err != nil {
		return "", t, err
	}
	t.Level, t.Kind = driver.SLALevel(level), driver.SLAKind(kind)
	t.Warn, t.Due, t.Elapsed = time.Duration(warn)*time.Microsecond, time.Duration(due)*time.Microsecond, time.Duration(elapsed)*time.Microsecond
	t.StartedAt, t.RunningSince, t.WarnAt, t.DueAt = fromMicros(started), fromMicros(running), fromMicros(warnAt), fromMicros(dueAt)
	t.Paused, t.Stopped, t.Overridden, t.Warned, t.Breached = paused != 0, stopped != 0, over != 0, warned != 0, breached != 0
	t.Closed = closed != 0
	t.WarnLease, t.BreachLease = fromMicros(warnLease), fromMicros(breachLease)
	return driver.CaseID(fmtID(id)), t, nil
}

// forUpdate is the locking suffix of a SELECT in a transaction.
func (s *store) forUpdate() string {
	if s.d == SQLite {
		return ""
	}
	return " FOR UPDATE"
}

// caseExists reports whether case n exists, locking it in tx where the
// dialect can.
func (s *store) caseExists(ctx context.Context, tx *sql.Tx, n int64) (bool, error) {
	var id int64
	err := s.on(tx).QueryRowContext(ctx, s.d.rebind(`SELECT id FROM cases WHERE id = ?`+s.forUpdate()), n).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func slaKey(level driver.SLALevel, kind driver.SLAKind) string {
	return string(level) + "\x00" + string(kind)
}

// PutSLATimers replaces the timers of a case, keeping the stored claims
// (flags and leases) of timers not started again.
func (s *store) PutSLATimers(ctx context.Context, id driver.CaseID, timers []driver.SLATimer) error {
	n, ok := parseID(string(id))
	if !ok {
		return errorf(driver.NotFound, "no case %q", id)
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if ok, err := s.caseExists(ctx, tx, n); err != nil {
			return err
		} else if !ok {
			return errorf(driver.NotFound, "no case %q", id)
		}
		old := map[string]driver.SLATimer{}
		rows, err := s.on(tx).QueryContext(ctx, s.d.rebind(`SELECT `+slaCols+` FROM sla_timers WHERE case_id = ?`+s.forUpdate()), n)
		if err != nil {
			return err
		}
		for rows.Next() {
			_, t, err := scanSLA(rows)
			if err != nil {
				rows.Close()
				return err
			}
			old[slaKey(t.Level, t.Kind)] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := s.on(tx).ExecContext(ctx, s.d.rebind(`DELETE FROM sla_timers WHERE case_id = ?`), n); err != nil {
			return err
		}
		ins := s.d.rebind(`INSERT INTO sla_timers (` + slaCols + `) VALUES (` + placeholders(21) + `)`)
		seen := map[string]bool{}
		for _, t := range timers {
			k := slaKey(t.Level, t.Kind)
			if seen[k] {
				return errorf(driver.InvalidArgument, "two timers %s %s", t.Level, t.Kind)
			}
			seen[k] = true
			warned, breached := t.Warned, t.Breached
			var warnLease, breachLease int64
			if warned {
				warnLease = micros(t.WarnLease)
			}
			if breached {
				breachLease = micros(t.BreachLease)
			}
			if o, ok := old[k]; ok && micros(o.StartedAt) == micros(t.StartedAt) && o.Policy == s.text(t.Policy) {
				// The stored claims win, set or not: they may be newer than
				// the caller's copy (a claim, confirmation or release since).
				warned, warnLease = o.Warned, micros(o.WarnLease)
				breached, breachLease = o.Breached, micros(o.BreachLease)
			}
			if _, err := s.on(tx).ExecContext(ctx, ins, n, string(t.Level), string(t.Kind), s.text(t.Scope), s.text(t.Policy), s.text(t.Calendar),
				t.Warn.Microseconds(), t.Due.Microseconds(), t.Elapsed.Microseconds(), micros(t.StartedAt), micros(t.RunningSince),
				b2i(t.Paused), b2i(t.Stopped), b2i(t.Overridden), micros(t.WarnAt), micros(t.DueAt), b2i(warned), b2i(breached), b2i(t.Closed), warnLease, breachLease); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetSLATimers returns the timers of a case by level, then kind.
func (s *store) GetSLATimers(ctx context.Context, id driver.CaseID) ([]driver.SLATimer, error) {
	n, ok := parseID(string(id))
	if !ok {
		return nil, errorf(driver.NotFound, "no case %q", id)
	}
	if ok, err := s.caseExists(ctx, nil, n); err != nil {
		return nil, err
	} else if !ok {
		return nil, errorf(driver.NotFound, "no case %q", id)
	}
	rows, err := s.on(nil).QueryContext(ctx, s.d.rebind(`SELECT `+slaCols+` FROM sla_timers WHERE case_id = ? ORDER BY level, kind`), n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.SLATimer{}
	for rows.Next() {
		_, t, err := scanSLA(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// slaLive is the condition of a timer that may alert, on a case that is
// not closed; it takes no parameters.
const slaLive = `stopped = 0 AND paused = 0 AND overridden = 0
 AND EXISTS (SELECT 1 FROM cases c WHERE c.id = sla_timers.case_id AND c.status NOT IN ('closed', 'cancelled'))`

// ClaimSLAAlerts claims due alerts one conditional UPDATE each.
func (s *store) ClaimSLAAlerts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]driver.SLAAlert, error) {
	at := micros(now)
	var end int64 // a permanent claim without a lease
	if lease > 0 {
		// Rounded up to the microsecond: no claim before now + lease
		// returns the alert.
		e := now.Add(lease)
		if end = micros(e); time.UnixMicro(end).Before(e) {
			end++
		}
	}
	var out []driver.SLAAlert
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = nil
		var cand []driver.SLAAlert
		for _, q := range []struct {
			alert driver.SLAAlertKind
			where string
		}{
			{driver.SLAWarning, `(warned = 0 OR (warn_lease > 0 AND warn_lease <= ?)) AND warn_at <> 0 AND warn_at <= ? AND ` + slaLive + ` ORDER BY warn_at, case_id, level, kind LIMIT ?`},
			{driver.SLABreach, `(breached = 0 OR (breach_lease > 0 AND breach_lease <= ?)) AND due_at <> 0 AND due_at <= ? AND ` + slaLive + ` ORDER BY due_at, case_id, level, kind LIMIT ?`},
		} {
			rows, err := s.on(tx).QueryContext(ctx, s.d.rebind(`SELECT `+slaCols+` FROM sla_timers WHERE `+q.where), at, at, limit)
			if err != nil {
				return err
			}
			for rows.Next() {
				id, t, err := scanSLA(rows)
				if err != nil {
					rows.Close()
					return err
				}
				a := driver.SLAAlert{CaseID: id, Alert: q.alert, Timer: t, At: t.WarnAt}
				if q.alert == driver.SLABreach {
					a.At = t.DueAt
				}
				cand = append(cand, a)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		slices.SortStableFunc(cand, func(a, b driver.SLAAlert) int { return a.At.Compare(b.At) })
		if len(cand) > limit {
			cand = cand[:limit]
		}
		// Update in key order, so concurrent claimers lock rows in one order.
		slices.SortStableFunc(cand, func(a, b driver.SLAAlert) int {
			return cmp.Or(cmp.Compare(len(a.CaseID), len(b.CaseID)), cmp.Compare(a.CaseID, b.CaseID),
				cmp.Compare(a.Timer.Level, b.Timer.Level), cmp.Compare(a.Timer.Kind, b.Timer.Kind), cmp.Compare(a.Alert, b.Alert))
		})
		if s.slaClaimHook != nil {
			s.slaClaimHook()
		}
		// The flag and lease read must still be there: of claimers that
		// read one unclaimed (or expired) alert, one changes the row. So
		// must the start and policy read: a timer started again meanwhile
		// (with the same alert time) is not claimed with the old start the
		// alert returns, which its confirmation and release would not find.
		warn := s.d.rebind(`UPDATE sla_timers SET warned = 1, warn_lease = ? WHERE case_id = ? AND level = ? AND kind = ? AND warned = ? AND warn_lease = ? AND warn_at = ? AND started_at = ? AND policy = ? AND ` + slaLive)
		breach := s.d.rebind(`UPDATE sla_timers SET breached = 1, breach_lease = ? WHERE case_id = ? AND level = ? AND kind = ? AND breached = ? AND breach_lease = ? AND due_at = ? AND started_at = ? AND policy = ? AND ` + slaLive)
		var won []driver.SLAAlert
		for _, a := range cand {
			n, _ := parseID(string(a.CaseID))
			q, flag := warn, a.Timer.Warned
			if a.Alert == driver.SLABreach {
				q, flag = breach, a.Timer.Breached
			}
			res, err := s.on(tx).ExecContext(ctx, q, end, n, string(a.Timer.Level), string(a.Timer.Kind), b2i(flag), micros(a.Timer.Lease(a.Alert)), micros(a.At),
				micros(a.Timer.StartedAt), a.Timer.Policy)
			if err != nil {
				return err
			}
			if c, err := res.RowsAffected(); err != nil {
				return err
			} else if c == 0 {
				continue // another worker claimed it, or the timer changed
			}
			if a.Alert == driver.SLAWarning {
				a.Timer.Warned, a.Timer.WarnLease = true, fromMicros(end)
			} else {
				a.Timer.Breached, a.Timer.BreachLease = true, fromMicros(end)
			}
			won = append(won, a)
		}
		// Every alert carries its timer as stored after the whole claim:
		// a warning and a breach of one timer both show both flags.
		for i := range won {
			for j := range won {
				if won[j].CaseID != won[i].CaseID || won[j].Timer.Level != won[i].Timer.Level || won[j].Timer.Kind != won[i].Timer.Kind {
					continue
				}
				if won[j].Alert == driver.SLAWarning {
					won[i].Timer.Warned, won[i].Timer.WarnLease = true, won[j].Timer.WarnLease
				} else {
					won[i].Timer.Breached, won[i].Timer.BreachLease = true, won[j].Timer.BreachLease
				}
			}
		}
		slices.SortStableFunc(won, func(a, b driver.SLAAlert) int { return a.At.Compare(b.At) })
		out = won
		return nil
	})
	return out, err
}

// ConfirmSLAAlert makes a claim permanent (lease 0) where the timer
// still has the start, policy and lease of the claim.
func (s *store) ConfirmSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	q := `UPDATE sla_timers SET warn_lease = 0 WHERE case_id = ? AND level = ? AND kind = ? AND warned = 1 AND warn_lease = ? AND started_at = ? AND policy = ?`
	if a.Alert == driver.SLABreach {
		q = `UPDATE sla_timers SET breach_lease = 0 WHERE case_id = ? AND level = ? AND kind = ? AND breached = 1 AND breach_lease = ? AND started_at = ? AND policy = ?`
	}
	return s.slaClaimUpdate(ctx, a, q, micros(a.Timer.Lease(a.Alert)), micros(a.Timer.StartedAt), s.text(a.Timer.Policy))
}

// ReleaseSLAAlert clears the flag of a claimed alert whose timer still has
// the alert time, start, policy and lease of the claim.
func (s *store) ReleaseSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	q := `UPDATE sla_timers SET warned = 0, warn_lease = 0 WHERE case_id = ? AND level = ? AND kind = ? AND warned = 1 AND warn_at = ? AND started_at = ? AND policy = ? AND warn_lease = ?`
	if a.Alert == driver.SLABreach {
		q = `UPDATE sla_timers SET breached = 0, breach_lease = 0 WHERE case_id = ? AND level = ? AND kind = ? AND breached = 1 AND due_at = ? AND started_at = ? AND policy = ? AND breach_lease = ?`
	}
	return s.slaClaimUpdate(ctx, a, q, micros(a.At), micros(a.Timer.StartedAt), s.text(a.Timer.Policy), micros(a.Timer.Lease(a.Alert)))
}

// slaClaimUpdate runs q, an UPDATE of the timer of a's case, level and
// kind (the first three parameters) followed by args; a missing case is
// NotFound.
func (s *store) slaClaimUpdate(ctx context.Context, a *driver.SLAAlert, q string, args ...any) error {
	n, ok := parseID(string(a.CaseID))
	if !ok {
		return errorf(driver.NotFound, "no case %q", a.CaseID)
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if ok, err := s.caseExists(ctx, tx, n); err != nil {
			return err
		} else if !ok {
			return errorf(driver.NotFound, "no case %q", a.CaseID)
		}
		_, err := s.on(tx).ExecContext(ctx, s.d.rebind(q), append([]any{n, string(a.Timer.Level), string(a.Timer.Kind)}, args...)...)
		return err
	})
}
