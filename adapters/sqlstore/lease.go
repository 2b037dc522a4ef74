package sqlstore

import (
	"context"
	"time"
)

// Leases (driver.Leaser) are rows of the leases table keyed by the hash of
// their name. Every statement is a single atomic row operation judged by
// the database clock, so leases need no transaction, no clock agreement
// between workers and no home-made protocol: the row lock and the primary
// key decide.

// AcquireLease takes name for holder: it updates the row when holder
// already has it or it expired, else inserts it if absent.
func (s *store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	h, us := hashOf(name), ttl.Microseconds()
	res, err := s.on(nil).ExecContext(ctx, s.q.renewLease, s.text(holder), us, h, s.text(holder))
	if err != nil {
		return false, err
	}
	if held, err := s.matched(ctx, s.on(nil), res, s.heldLeaseQuery(), h, s.text(holder)); err != nil || held {
		return held, err
	}
	res, err = s.on(nil).ExecContext(ctx, s.q.insertLease, h, s.text(name), s.text(holder), us)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RenewLease extends name when holder holds it and it has not expired.
func (s *store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	q := s.d.rebind(`UPDATE leases SET expires_at = ` + s.d.nowMicros() + ` + ? WHERE name_hash = ? AND holder = ? AND expires_at >= ` + s.d.nowMicros())
	res, err := s.on(nil).ExecContext(ctx, q, ttl.Microseconds(), hashOf(name), s.text(holder))
	if err != nil {
		return false, err
	}
	return s.matched(ctx, s.on(nil), res, s.heldLeaseQuery(), hashOf(name), s.text(holder))
}

// heldLeaseQuery is the check (see matched) of an UPDATE of a lease that
// set its row to what it holds: the holder taking or renewing it, with the
// same TTL, in the microsecond of the database clock of its last renewal.
func (s *store) heldLeaseQuery() string {
	return `SELECT 1 FROM leases WHERE name_hash = ? AND holder = ? AND expires_at >= ` + s.d.nowMicros()
}

// ReleaseLease deletes name's row when holder holds it.
func (s *store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.on(nil).ExecContext(ctx, s.q.releaseLease, hashOf(name), s.text(holder))
	return err
}
