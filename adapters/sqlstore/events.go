package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The event log (driver.EventLog, schema v11) is one event_log row per
// event and one event_deliveries row per event and sink, written in one
// group-commit transaction. A claim is a conditional single-row UPDATE
// judged by the database clock, like the outbox's: the row lock decides
// which of two concurrent claims finds the delivery still due.

var (
	_ driver.EventLog   = (*store)(nil)
	_ driver.EventFiler = (*store)(nil)
)

// CreateCaseEvents creates a case and keeps then's messages and events in
// its transaction (driver.EventFiler).
func (s *store) CreateCaseEvents(ctx context.Context, req *driver.NewCase, then func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error)) (driver.Case, []string, error) {
	return s.createCase(ctx, req, then)
}

// AppendEmailEvents files e on case id and appends events in its
// transaction (driver.EventFiler); a mail filed before keeps nothing and
// reports false.
func (s *store) AppendEmailEvents(ctx context.Context, id driver.CaseID, e *driver.Email, events []*driver.EventRecord) (bool, error) {
	return s.appendEmail(ctx, id, e, events)
}

const eventCols = `l.seq, l.event_id, l.kind, l.case_id, l.occurred_at, l.version, l.data`

const deliveryCols = eventCols + `, d.sink, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at`

func scanEvent(sc interface{ Scan(...any) error }, extra ...any) (driver.EventRecord, error) {
	var e driver.EventRecord
	var caseID string
	var at int64
	if err := sc.Scan(append([]any{&e.Seq, &e.ID, &e.Kind, &caseID, &at, &e.Version, &e.Data}, extra...)...); err != nil {
		return e, err
	}
	e.CaseID = driver.CaseID(caseID)
	e.Time = time.UnixMicro(at).UTC()
	if e.Data == nil {
		e.Data = []byte{}
	}
	return e, nil
}

func scanDelivery(sc interface{ Scan(...any) error }) (driver.EventDelivery, error) {
	var d driver.EventDelivery
	var status string
	var next, delivered int64
	ev, err := scanEvent(sc, &d.Sink, &status, &d.Attempts, &next, &d.LastError, &delivered)
	if err != nil {
		return d, err
	}
	d.Event, d.Status = ev, driver.DeliveryStatus(status)
	if next > 0 {
		d.NextAttemptAt = time.UnixMicro(next)
	}
	if delivered > 0 {
		d.DeliveredAt = time.UnixMicro(delivered)
	}
	return d, nil
}

// AppendEvents inserts the events unless their ID is known, with their
// deliveries, in one transaction.
func (s *store) AppendEvents(ctx context.Context, events []*driver.EventRecord) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.appendEventsTx(ctx, tx, events) })
}

// appendEventsTx appends events in tx (AppendEvents' rules); a filing can
// call it inside its own transaction. On SQLite and PostgreSQL the events
// of a call take two statements whatever their number (a multi-row INSERT
// ... RETURNING of the new ones, then their deliveries); MySQL, without
// RETURNING, takes two or three per event.
func (s *store) appendEventsTx(ctx context.Context, tx *sql.Tx, events []*driver.EventRecord) error {
	if len(events) == 0 {
		return nil
	}
	if s.d != MySQL && len(events)*6 <= maxParams {
		return s.appendEventsReturning(ctx, tx, events)
	}
	ins := s.d.rebind(s.d.insertIgnore("event_log", "event_id", "event_id", "kind", "case_id", "occurred_at", "version", "data"))
	get := s.d.rebind(`SELECT seq FROM event_log WHERE event_id = ?`)
	insD := s.d.rebind(`INSERT INTO event_deliveries (sink, seq, status, next_attempt_at, last_error) VALUES (?, ?, 'pending', ` + s.d.nowMicros() + `, '')`)
	for _, e := range events {
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		res, err := s.on(tx).ExecContext(ctx, ins, e.ID, s.text(e.Kind), s.text(string(e.CaseID)), e.Time.UnixMicro(), e.Version, data)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			continue // appended before (or earlier in this call)
		}
		var seq int64
		if err := s.on(tx).QueryRowContext(ctx, get, e.ID).Scan(&seq); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, sink := range e.Sinks {
			if seen[sink] {
				continue
			}
			seen[sink] = true
			if _, err := s.on(tx).ExecContext(ctx, insD, s.text(sink), seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendEventsReturning is appendEventsTx in two statements, for dialects
// with INSERT ... RETURNING. An ID repeated in the call keeps its first
// event; the database skips IDs it holds and returns the Seq of the rest.
func (s *store) appendEventsReturning(ctx context.Context, tx *sql.Tx, events []*driver.EventRecord) error {
	byID := make(map[string]*driver.EventRecord, len(events))
	args := make([]any, 0, 6*len(events))
	for _, e := range events {
		if byID[e.ID] != nil {
			continue
		}
		byID[e.ID] = e
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		args = append(args, e.ID, s.text(e.Kind), s.text(string(e.CaseID)), e.Time.UnixMicro(), e.Version, data)
	}
	q := `INSERT INTO event_log (event_id, kind, case_id, occurred_at, version, data) VALUES ` + valuesRows(len(byID), 6) +
		` ON CONFLICT (event_id) DO NOTHING RETURNING seq, event_id`
	rows, err := s.on(tx).QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return err
	}
	var dargs []any
	for rows.Next() {
		var (
			seq int64
			id  string
		)
		if err := rows.Scan(&seq, &id); err != nil {
			rows.Close()
			return err
		}
		e := byID[id]
		if e == nil {
			continue
		}
		seen := map[string]bool{}
		for _, sink := range e.Sinks {
			if !seen[sink] {
				seen[sink] = true
				dargs = append(dargs, s.text(sink), seq)
			}
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for start := 0; start < len(dargs); start += maxParams {
		chunk := dargs[start:min(start+maxParams, len(dargs))]
		row := `(?, ?, 'pending', ` + s.d.nowMicros() + `, '')`
		q := `INSERT INTO event_deliveries (sink, seq, status, next_attempt_at, last_error) VALUES ` +
			strings.Repeat(row+", ", len(chunk)/2-1) + row
		if _, err := s.on(tx).ExecContext(ctx, s.d.rebind(q), chunk...); err != nil {
			return err
		}
	}
	return nil
}

// ReadEvents returns the events after the cursor, in Seq order.
func (s *store) ReadEvents(ctx context.Context, after int64, limit int) ([]driver.EventRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.scan().QueryContext(ctx, s.d.rebind(`SELECT `+eventCols+` FROM event_log l WHERE l.seq > ? ORDER BY l.seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.EventRecord
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// deliveryDue is the condition of a claimable delivery row.
func (s *store) deliveryDue() string {
	now := s.d.nowMicros()
	return `((status = 'pending' AND next_attempt_at <= ` + now + `) OR (status = 'delivering' AND lease_until < ` + now + `))`
}

// ClaimDeliveries claims due deliveries of sink one conditional UPDATE each.
func (s *store) ClaimDeliveries(ctx context.Context, sink, holder string, limit int, ttl time.Duration) ([]driver.EventDelivery, error) {
	due := s.deliveryDue()
	sink = s.text(sink)
	rows, err := s.scan().QueryContext(ctx, s.d.rebind(`SELECT seq FROM event_deliveries WHERE sink = ? AND `+due+` ORDER BY seq LIMIT ?`), sink, limit)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	// The conditional UPDATEs share one group-commit transaction (one
	// commit for the batch); each still claims only a row that is due when
	// its lock is taken.
	claim := s.d.rebind(`UPDATE event_deliveries SET status = 'delivering', holder = ?, lease_until = ` + s.d.nowMicros() + ` + ?, attempts = attempts + 1
 WHERE sink = ? AND seq = ? AND ` + due)
	var got []int64
	err = s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		got = got[:0]
		for _, seq := range seqs {
			res, err := s.on(tx).ExecContext(ctx, claim, s.text(holder), ttl.Microseconds(), sink, seq)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				got = append(got, seq)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, nil
	}
	args := []any{sink, s.text(holder)}
	for _, seq := range got {
		args = append(args, seq)
	}
	q := `SELECT ` + deliveryCols + ` FROM event_deliveries d JOIN event_log l ON l.seq = d.seq
 WHERE d.sink = ? AND d.holder = ? AND d.status = 'delivering' AND d.seq IN (` + placeholders(len(got)) + `) ORDER BY d.seq`
	rows, err = s.on(nil).QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.EventDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// FinishDelivery records the result of a claimed attempt.
func (s *store) FinishDelivery(ctx context.Context, sink string, seq int64, holder string, r *driver.DeliveryResult) error {
	now := s.d.nowMicros()
	held := ` WHERE sink = ? AND seq = ? AND status = 'delivering' AND holder = ? AND lease_until >= ` + now
	var q string
	var args []any
	switch r.Status {
	case driver.DeliveryDelivered:
		q, args = `UPDATE event_deliveries SET status = 'delivered', delivered_at = `+now+`, last_error = ?, holder = '', lease_until = 0`+held, []any{s.text(r.Error)}
	case driver.DeliveryPending:
		q, args = `UPDATE event_deliveries SET status = 'pending', next_attempt_at = `+now+` + ?, last_error = ?, holder = '', lease_until = 0`+held, []any{r.RetryAfter.Microseconds(), s.text(r.Error)}
	case driver.DeliveryFailed:
		q, args = `UPDATE event_deliveries SET status = 'failed', last_error = ?, holder = '', lease_until = 0`+held, []any{s.text(r.Error)}
	default:
		return errorf(driver.InvalidArgument, "result status %q", r.Status)
	}
	sink = s.text(sink)
	// Through the group committer: the results of a batch's concurrent
	// sends commit together.
	var n int64
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.on(tx).ExecContext(ctx, s.d.rebind(q), append(args, sink, seq, s.text(holder))...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var status string
	err = s.on(nil).QueryRowContext(ctx, s.d.rebind(`SELECT status FROM event_deliveries WHERE sink = ? AND seq = ?`), sink, seq).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return errorf(driver.NotFound, "no delivery of event %d to this sink", seq)
	}
	if err != nil {
		return err
	}
	return errorf(driver.FailedPrecondition, "delivery of event %d is %s, not claimed by this holder", seq, status)
}

// ListDeliveries returns deliveries, newest event first.
func (s *store) ListDeliveries(ctx context.Context, opts *driver.DeliveryListOptions) ([]driver.EventDelivery, error) {
	var where []string
	var args []any
	if opts.Sink != "" {
		where, args = append(where, `d.sink = ?`), append(args, s.text(opts.Sink))
	}
	if opts.Status != "" {
		where, args = append(where, `d.status = ?`), append(args, string(opts.Status))
	}
	q := `SELECT ` + deliveryCols + ` FROM event_deliveries d JOIN event_log l ON l.seq = d.seq`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY d.seq DESC, d.sink`
	if opts.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, opts.Limit)
	}
	rows, err := s.scan().QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.EventDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
