package mailcase

import (
	"context"
	"errors"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// CanOutbox reports whether the store keeps a queue of outgoing mail
// (driver.Outbox).
func (s *Store) CanOutbox() bool {
	_, ok := s.d.(driver.Outbox)
	return ok
}

func (s *Store) outbox(op string) (driver.Outbox, error) {
	o, ok := s.d.(driver.Outbox)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	return o, nil
}

// Enqueue queues a composed outgoing mail and returns its ID; a message
// queued before under m.Key is not queued again (its ID is returned). Key,
// From, To and Raw are required; MessageID is normalised.
func (s *Store) Enqueue(ctx context.Context, m *driver.OutboxMessage) (string, error) {
	const op = "Enqueue"
	o, err := s.outbox(op)
	if err != nil {
		return "", err
	}
	c, err := checkOutgoing(op, m)
	if err != nil {
		return "", err
	}
	var id string
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		id, err = o.Enqueue(ctx, c)
		return err
	})
	return id, err
}

// ClaimOutbox claims up to limit due messages for holder for ttl (see
// driver.Outbox). It is not retried: a claim whose answer was lost expires
// after ttl and the messages are claimed again.
func (s *Store) ClaimOutbox(ctx context.Context, holder string, limit int, ttl time.Duration) ([]driver.OutboxMessage, error) {
	const op = "ClaimOutbox"
	o, err := s.outbox(op)
	if err != nil {
		return nil, err
	}
	if holder == "" || limit <= 0 || ttl <= 0 {
		return nil, invalid(op, "empty holder, or a limit or TTL that is not positive")
	}
	var out []driver.OutboxMessage
	err = s.do(ctx, op, false, func(ctx context.Context) (err error) {
		out, err = o.ClaimOutbox(ctx, holder, limit, ttl)
		return err
	})
	return out, err
}

// FinishOutbox records the result of an attempt at a message holder
// claimed. An error classified FailedPrecondition means the claim was lost
// (it expired and another sender took the message).
func (s *Store) FinishOutbox(ctx context.Context, id, holder string, r *driver.OutboxResult) error {
	const op = "FinishOutbox"
	o, err := s.outbox(op)
	if err != nil {
		return err
	}
	if id == "" || holder == "" || r == nil {
		return invalid(op, "empty message ID, holder or result")
	}
	switch r.Status {
	case driver.OutboxSent, driver.OutboxFailed, driver.OutboxPending:
	default:
		return invalid(op, "result status %q", r.Status)
	}
	c := *r
	c.Error = clip(cleanLine(r.Error), 2000)
	return s.do(ctx, op, false, func(ctx context.Context) error { return o.FinishOutbox(ctx, id, holder, &c) })
}

// SetOutboxStatus retries (OutboxPending), cancels (OutboxCancelled) or
// marks bounced (OutboxBounced, with reason) a message outside a claim.
func (s *Store) SetOutboxStatus(ctx context.Context, id string, status driver.OutboxStatus, reason string) error {
	const op = "SetOutboxStatus"
	o, err := s.outbox(op)
	if err != nil {
		return err
	}
	switch status {
	case driver.OutboxPending, driver.OutboxCancelled, driver.OutboxBounced:
	default:
		return invalid(op, "status %q cannot be set", status)
	}
	if id == "" {
		return invalid(op, "empty message ID")
	}
	reason = clip(cleanLine(reason), 2000)
	// A cancel is not retried: a retry after a cancel whose answer was
	// lost would be refused (cancelled is not pending any more).
	return s.do(ctx, op, status != driver.OutboxCancelled, func(ctx context.Context) error { return o.SetOutboxStatus(ctx, id, status, reason) })
}

// GetOutbox returns an outgoing message with its raw bytes; ok is false
// when there is none.
func (s *Store) GetOutbox(ctx context.Context, id string) (m driver.OutboxMessage, ok bool, err error) {
	const op = "GetOutbox"
	o, err := s.outbox(op)
	if err != nil {
		return m, false, err
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		m, err = o.GetOutbox(ctx, id)
		return err
	})
	ok, err = notFound(err)
	return m, ok, err
}

// FindOutbox returns the outgoing message with a Message-ID (brackets
// allowed); ok is false when none was queued with it.
func (s *Store) FindOutbox(ctx context.Context, messageID string) (m driver.OutboxMessage, ok bool, err error) {
	const op = "FindOutbox"
	o, err := s.outbox(op)
	if err != nil {
		return m, false, err
	}
	id := NormalizeMessageID(messageID)
	if id == "" {
		return m, false, nil
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		m, err = o.FindOutbox(ctx, id)
		return err
	})
	ok, err = notFound(err)
	return m, ok, err
}

// ListOutbox lists outgoing messages, newest first, without raw bytes.
func (s *Store) ListOutbox(ctx context.Context, opts *driver.OutboxListOptions) ([]driver.OutboxMessage, error) {
	const op = "ListOutbox"
	o, err := s.outbox(op)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &driver.OutboxListOptions{}
	}
	var out []driver.OutboxMessage
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = o.ListOutbox(ctx, opts)
		return err
	})
	return out, err
}

// checkOutgoing validates an outgoing message and returns the copy a
// driver is given (Message-ID normalised).
func checkOutgoing(op string, m *driver.OutboxMessage) (*driver.OutboxMessage, error) {
	switch {
	case m == nil || m.Key == "":
		return nil, invalid(op, "outgoing message without a key")
	case m.From == "" || len(m.To) == 0:
		return nil, invalid(op, "outgoing message without envelope sender or recipients")
	case len(m.Raw) == 0:
		return nil, invalid(op, "outgoing message without content")
	}
	c := *m
	c.MessageID = NormalizeMessageID(m.MessageID)
	return &c, nil
}

// CanQueueWithFiling reports whether the store queues outgoing mail in the
// transaction that creates a case (driver.OutboxFiler).
func (s *Store) CanQueueWithFiling() bool {
	_, ok := s.d.(driver.OutboxFiler)
	return ok
}

// CreateCaseQueue is CreateCase that queues the messages then composes for
// the new case in the same transaction (driver.OutboxFiler): both are kept
// or neither. then is called only when the case is created (not for a mail
// filed before), possibly more than once, and must not call the store; a
// nil message is skipped. An error of then files nothing and is returned
// wrapped once. A store without OutboxFiler returns Unimplemented.
func (s *Store) CreateCaseQueue(ctx context.Context, c *NewCase, then func(Case) ([]*driver.OutboxMessage, error)) (Case, []string, error) {
	const op = "CreateCaseQueue"
	f, ok := s.d.(driver.OutboxFiler)
	if !ok {
		return Case{}, nil, &Error{Code: Unimplemented, Op: op}
	}
	if then == nil {
		return Case{}, nil, invalid(op, "no function composing the messages")
	}
	n, err := s.newCaseRequest(op, c)
	if err != nil {
		return Case{}, nil, err
	}
	var thenErr error
	checked := func(dc Case) ([]*driver.OutboxMessage, error) {
		thenErr = nil
		msgs, err := then(dc)
		if err != nil {
			thenErr = err
			return nil, err
		}
		out := make([]*driver.OutboxMessage, 0, len(msgs))
		for _, m := range msgs {
			if m == nil {
				continue
			}
			cm, err := checkOutgoing(op, m)
			if err != nil {
				thenErr = err
				return nil, err
			}
			out = append(out, cm)
		}
		return out, nil
	}
	var (
		out Case
		ids []string
	)
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, ids, err = f.CreateCaseQueue(ctx, n, checked)
		return thenInvalid(op, err, thenErr)
	})
	return out, ids, err
}

// thenInvalid returns err, made InvalidArgument when it is thenErr (the
// refusal of a filing's callback) not yet carrying a code.
func thenInvalid(op string, err, thenErr error) error {
	if err != nil && thenErr != nil && errors.Is(err, thenErr) {
		var e *Error
		if !errors.As(err, &e) {
			return &Error{Code: InvalidArgument, Op: op, Err: err}
		}
	}
	return err
}
