package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The outbox (driver.Outbox, schema v6) is one row per queued message. A
// claim is a conditional single-row UPDATE judged by the database clock, so
// concurrent senders never claim one message twice, whatever the dialect:
// the row lock decides which UPDATE finds the row still due.

const outboxCols = `id, idem_key, case_id, mailbox, kind, mail_from, rcpt_to, message_id, status, attempts,
 next_attempt_at, last_error, created_at, sent_at`

// outboxDue is the condition of a claimable row; it takes no parameters.
func (s *store) outboxDue() string {
	now := s.d.nowMicros()
	return `((status = 'pending' AND next_attempt_at <= ` + now + `) OR (status = 'sending' AND lease_until < ` + now + `))`
}

func (s *store) scanOutbox(sc interface{ Scan(...any) error }, raw *[]byte) (driver.OutboxMessage, error) {
	var m driver.OutboxMessage
	var id, attempts, next, created, sent int64
	var key []byte
	var to, caseID, status string
	dest := []any{&id, &key, &caseID, &m.Mailbox, &m.Kind, &m.From, &to, &m.MessageID, &status, &attempts, &next, &m.LastError, &created, &sent}
	if raw != nil {
		dest = append(dest, raw)
	}
	if err := sc.Scan(dest...); err != nil {
		return m, err
	}
	m.ID, m.Key, m.CaseID, m.Status, m.Attempts = fmtID(id), string(key), driver.CaseID(caseID), driver.OutboxStatus(status), int(attempts)
	if err := json.Unmarshal([]byte(to), &m.To); err != nil {
		return m, errorf(driver.Internal, "outgoing message %d: recipients: %v", id, err)
	}
	if next > 0 {
		m.NextAttemptAt = time.UnixMicro(next)
	}
	m.CreatedAt = time.Unix(0, created)
	if sent > 0 {
		m.SentAt = time.Unix(0, sent)
	}
	if raw != nil {
		m.Raw = *raw
	}
	return m, nil
}

// Enqueue inserts m unless its key is queued, and returns the row's ID.
func (s *store) Enqueue(ctx context.Context, m *driver.OutboxMessage) (string, error) {
	var out string
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		out, err = s.enqueueTx(ctx, tx, m)
		return err
	})
	return out, err
}

// enqueueTx queues m in tx (Enqueue's rules) and returns its ID.
func (s *store) enqueueTx(ctx context.Context, tx *sql.Tx, m *driver.OutboxMessage) (string, error) {
	to, err := json.Marshal(m.To)
	if err != nil {
		return "", errorf(driver.InvalidArgument, "recipients: %v", err)
	}
	raw := m.Raw
	if raw == nil {
		raw = []byte{}
	}
	var next int64
	if !m.NextAttemptAt.IsZero() {
		next = m.NextAttemptAt.UnixMicro()
	}
	kh := hashOf(m.Key)
	ins := s.d.rebind(s.d.insertIgnore("outbox", "key_hash", "key_hash", "idem_key", "case_id", "mailbox", "kind",
		"mail_from", "rcpt_to", "message_id", "message_id_hash", "raw", "status", "next_attempt_at", "last_error", "created_at"))
	res, err := s.on(tx).ExecContext(ctx, ins, kh, []byte(m.Key), s.text(string(m.CaseID)), s.text(m.Mailbox), s.text(m.Kind),
		s.text(m.From), s.text(string(to)), s.text(m.MessageID), hashOf(m.MessageID), raw, string(driver.OutboxPending), next, "", nanos(s.now()))
	if err != nil {
		return "", err
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return "", err
	}
	var id int64
	if err := s.on(tx).QueryRowContext(ctx, s.d.rebind(`SELECT id FROM outbox WHERE key_hash = ?`), kh).Scan(&id); err != nil {
		return "", err
	}
	if inserted == 0 {
		return fmtID(id), nil // queued before (MySQL counts the no-op update as 0 rows changed)
	}
	seen := map[string]bool{}
	for _, r := range m.To {
		h := hashOf(r)
		if seen[h] {
			continue
		}
		seen[h] = true
		if _, err := s.on(tx).ExecContext(ctx, s.d.rebind(`INSERT INTO outbox_recipients (outbox_id, rcpt_hash) VALUES (?, ?)`), id, h); err != nil {
			return "", err
		}
	}
	return fmtID(id), nil
}

// ClaimOutbox claims due rows one conditional UPDATE each.
func (s *store) ClaimOutbox(ctx context.Context, holder string, limit int, ttl time.Duration) ([]driver.OutboxMessage, error) {
	due := s.outboxDue()
	rows, err := s.scan().QueryContext(ctx, s.d.rebind(`SELECT id FROM outbox WHERE `+due+` ORDER BY next_attempt_at, id LIMIT ?`), limit)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	claim := s.d.rebind(`UPDATE outbox SET status = 'sending', holder = ?, lease_until = ` + s.d.nowMicros() + ` + ?, attempts = attempts + 1
 WHERE id = ? AND ` + due)
	get := s.d.rebind(`SELECT ` + outboxCols + `, raw FROM outbox WHERE id = ? AND holder = ?`)
	var out []driver.OutboxMessage
	for _, id := range ids {
		res, err := s.on(nil).ExecContext(ctx, claim, s.text(holder), ttl.Microseconds(), id)
		if err != nil {
			return out, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return out, err
		} else if n == 0 {
			continue // another sender claimed it first
		}
		var raw []byte
		m, err := s.scanOutbox(s.on(nil).QueryRowContext(ctx, get, id, s.text(holder)), &raw)
		if errors.Is(err, sql.ErrNoRows) {
			continue // claimed, expired and taken meanwhile
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// FinishOutbox records the result of a claimed attempt.
func (s *store) FinishOutbox(ctx context.Context, id, holder string, r *driver.OutboxResult) error {
	n, ok := parseID(id)
	if !ok {
		return errorf(driver.NotFound, "no outgoing message %q", id)
	}
	now := s.d.nowMicros()
	held := ` WHERE id = ? AND status = 'sending' AND holder = ? AND lease_until >= ` + now
	var q string
	var args []any
	switch r.Status {
	case driver.OutboxSent:
		q, args = `UPDATE outbox SET status = 'sent', sent_at = ?, last_error = ?, holder = '', lease_until = 0`+held, []any{nanos(s.now()), s.text(r.Error)}
	case driver.OutboxPending:
		q, args = `UPDATE outbox SET status = 'pending', next_attempt_at = `+now+` + ?, last_error = ?, holder = '', lease_until = 0`+held, []any{r.RetryAfter.Microseconds(), s.text(r.Error)}
	case driver.OutboxFailed:
		q, args = `UPDATE outbox SET status = 'failed', last_error = ?, holder = '', lease_until = 0`+held, []any{s.text(r.Error)}
	default:
		return errorf(driver.InvalidArgument, "result status %q", r.Status)
	}
	res, err := s.on(nil).ExecContext(ctx, s.d.rebind(q), append(args, n, s.text(holder))...)
	if err != nil {
		return err
	}
	if c, err := res.RowsAffected(); err != nil {
		return err
	} else if c > 0 {
		return nil
	}
	return s.outboxMiss(ctx, n, "is not claimed by "+holder)
}

// outboxMiss explains an UPDATE that matched no row: NotFound or
// FailedPrecondition.
func (s *store) outboxMiss(ctx context.Context, id int64, why string) error {
	var status string
	err := s.on(nil).QueryRowContext(ctx, s.d.rebind(`SELECT status FROM outbox WHERE id = ?`), id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return errorf(driver.NotFound, "no outgoing message %d", id)
	}
	if err != nil {
		return err
	}
	return errorf(driver.FailedPrecondition, "outgoing message %d (%s) %s", id, status, why)
}

// SetOutboxStatus retries, cancels or marks bounced a message.
func (s *store) SetOutboxStatus(ctx context.Context, id string, status driver.OutboxStatus, reason string) error {
	n, ok := parseID(id)
	if !ok {
		return errorf(driver.NotFound, "no outgoing message %q", id)
	}
	var q string
	var args []any
	switch status {
	case driver.OutboxPending:
		q = `UPDATE outbox SET status = 'pending', next_attempt_at = 0, attempts = 0 WHERE id = ? AND status IN ('pending', 'failed', 'cancelled', 'bounced')`
	case driver.OutboxCancelled:
		q = `UPDATE outbox SET status = 'cancelled' WHERE id = ? AND status = 'pending'`
	case driver.OutboxBounced:
		q, args = `UPDATE outbox SET status = 'bounced', last_error = ? WHERE id = ? AND status IN ('sent', 'bounced')`, []any{s.text(reason)}
	default:
		return errorf(driver.InvalidArgument, "status %q cannot be set", status)
	}
	res, err := s.on(nil).ExecContext(ctx, s.d.rebind(q), append(args, n)...)
	if err != nil {
		return err
	}
	if c, err := res.RowsAffected(); err != nil {
		return err
	} else if c > 0 {
		return nil
	}
	// MySQL counts rows changed, not matched: a bounce recorded twice with
	// the same reason changes nothing; look before calling it a refusal.
	var cur, last string
	err = s.on(nil).QueryRowContext(ctx, s.d.rebind(`SELECT status, last_error FROM outbox WHERE id = ?`), n).Scan(&cur, &last)
	if err == nil && driver.OutboxStatus(cur) == status && (status != driver.OutboxBounced || last == s.text(reason)) && status != driver.OutboxCancelled {
		return nil
	}
	return s.outboxMiss(ctx, n, "cannot become "+string(status))
}

// GetOutbox returns message id with its raw bytes.
func (s *store) GetOutbox(ctx context.Context, id string) (driver.OutboxMessage, error) {
	n, ok := parseID(id)
	if !ok {
		return driver.OutboxMessage{}, errorf(driver.NotFound, "no outgoing message %q", id)
	}
	var raw []byte
	m, err := s.scanOutbox(s.on(nil).QueryRowContext(ctx, s.d.rebind(`SELECT `+outboxCols+`, raw FROM outbox WHERE id = ?`), n), &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return m, errorf(driver.NotFound, "no outgoing message %q", id)
	}
	return m, err
}

// FindOutbox returns the first message queued with messageID.
func (s *store) FindOutbox(ctx context.Context, messageID string) (driver.OutboxMessage, error) {
	var raw []byte
	q := s.d.rebind(`SELECT ` + outboxCols + `, raw FROM outbox WHERE message_id_hash = ? AND message_id = ? ORDER BY id LIMIT 1`)
	m, err := s.scanOutbox(s.on(nil).QueryRowContext(ctx, q, hashOf(messageID), s.text(messageID)), &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return m, errorf(driver.NotFound, "no outgoing message with Message-ID %q", messageID)
	}
	return m, err
}

// ListOutbox lists messages newest first, without raw bytes.
func (s *store) ListOutbox(ctx context.Context, opts *driver.OutboxListOptions) ([]driver.OutboxMessage, error) {
	var where []string
	var args []any
	if opts.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(opts.Status))
	}
	if opts.CaseID != "" {
		where, args = append(where, "case_id = ?"), append(args, s.text(string(opts.CaseID)))
	}
	if opts.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, s.text(opts.Kind))
	}
	if opts.Recipient != "" {
		where, args = append(where, "id IN (SELECT outbox_id FROM outbox_recipients WHERE rcpt_hash = ?)"), append(args, hashOf(opts.Recipient))
	}
	if !opts.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, nanos(opts.Since))
	}
	q := `SELECT ` + outboxCols + ` FROM outbox`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC`
	if opts.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, opts.Limit)
	}
	rows, err := s.scan().QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.OutboxMessage
	for rows.Next() {
		m, err := s.scanOutbox(rows, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
