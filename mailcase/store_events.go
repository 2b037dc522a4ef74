package mailcase

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// CanEventLog reports whether the store keeps a durable log of lifecycle
// events (driver.EventLog).
func (s *Store) CanEventLog() bool {
	_, ok := s.d.(driver.EventLog)
	return ok
}

func (s *Store) eventLog(op string) (driver.EventLog, error) {
	l, ok := s.d.(driver.EventLog)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	return l, nil
}

// validEventID reports whether id is 1 to 128 bytes of printable ASCII.
func validEventID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// AppendEvents keeps events in the store's event log, each with a
// delivery to every sink it names, in one transaction (see
// driver.EventLog); events whose ID was appended before are kept once. ID,
// Kind and a positive Version are required; Data must be a JSON object;
// Time defaults to now. It is retried: the IDs make a repeat harmless.
func (s *Store) AppendEvents(ctx context.Context, events []*driver.EventRecord) error {
	const op = "AppendEvents"
	l, err := s.eventLog(op)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	cp, err := checkEvents(op, events)
	if err != nil {
		return err
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return l.AppendEvents(ctx, cp) })
}

// checkEvents validates events (AppendEvents' rules) and returns copies
// with Time defaulted to now.
func checkEvents(op string, events []*driver.EventRecord) ([]*driver.EventRecord, error) {
	cp := make([]*driver.EventRecord, len(events))
	for i, e := range events {
		if e == nil || !validEventID(e.ID) || e.Kind == "" || len(e.Kind) > 64 || e.Version <= 0 {
			return nil, invalid(op, "an event needs an ID of 1 to 128 printable ASCII bytes, a kind of at most 64 bytes and a positive version")
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(e.Data, &obj); err != nil || obj == nil {
			return nil, invalid(op, "event data is not a JSON object")
		}
		c := *e
		c.Data = slices.Clone(e.Data)
		c.Sinks = slices.Clone(e.Sinks)
		if c.Time.IsZero() {
			c.Time = time.Now()
		}
		for _, sk := range c.Sinks {
			if sk == "" || len(sk) > 128 {
				return nil, invalid(op, "a sink name is empty or longer than 128 bytes")
			}
		}
		cp[i] = &c
	}
	return cp, nil
}

// CanFileEvents reports whether the store keeps the events of a filed mail
// in the transaction that files it (driver.EventFiler).
func (s *Store) CanFileEvents() bool {
	_, ok := s.d.(driver.EventFiler)
	return ok
}

// CreateCaseEvents is CreateCase that keeps what then returns for the new
// case in the same transaction (driver.EventFiler): the outgoing messages
// (as CreateCaseQueue; only on a store that CanQueueWithFiling) and the
// events (as AppendEvents); all are kept or nothing is. then is called only
// when the case is created (not for a mail filed before), possibly more
// than once, and must not call the store; a nil message is skipped. An
// error of then, or an invalid message or event, files nothing and is
// returned wrapped once. A store without EventFiler returns Unimplemented.
func (s *Store) CreateCaseEvents(ctx context.Context, c *NewCase, then func(Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error)) (Case, []string, error) {
	const op = "CreateCaseEvents"
	f, ok := s.d.(driver.EventFiler)
	if !ok {
		return Case{}, nil, &Error{Code: Unimplemented, Op: op}
	}
	if then == nil {
		return Case{}, nil, invalid(op, "no function composing the events")
	}
	n, err := s.newCaseRequest(op, c)
	if err != nil {
		return Case{}, nil, err
	}
	queues := s.CanQueueWithFiling()
	var thenErr error
	checked := func(dc Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		thenErr = nil
		msgs, evs, err := then(dc)
		if err != nil {
			thenErr = err
			return nil, nil, err
		}
		out := make([]*driver.OutboxMessage, 0, len(msgs))
		for _, m := range msgs {
			if m == nil {
				continue
			}
			if !queues {
				thenErr = invalid(op, "the store queues no mail with a filing")
				return nil, nil, thenErr
			}
			cm, err := checkOutgoing(op, m)
			if err != nil {
				thenErr = err
				return nil, nil, err
			}
			out = append(out, cm)
		}
		ce, err := checkEvents(op, evs)
		if err != nil {
			thenErr = err
			return nil, nil, err
		}
		return out, ce, nil
	}
	var (
		out Case
		ids []string
	)
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, ids, err = f.CreateCaseEvents(ctx, n, checked)
		return thenInvalid(op, err, thenErr)
	})
	return out, ids, err
}

// AppendEmailEvents is AppendEmail that appends events (as AppendEvents)
// in the transaction that files e (driver.EventFiler): both are kept or
// neither. filed reports whether this call filed e: for a mail filed
// before (another delivery of it filed first), it is a no-op that keeps no
// event and reports false, so its events are not announced again. A call
// retried after a failed attempt reports true when the last attempt finds
// e filed, as CreateCaseEvents calls then in the attempt whose answer was
// lost: the failed attempt may have committed, and its events are kept
// once whatever follows. A store without EventFiler returns Unimplemented.
func (s *Store) AppendEmailEvents(ctx context.Context, id CaseID, e *Email, events []*driver.EventRecord) (filed bool, err error) {
	const op = "AppendEmailEvents"
	f, ok := s.d.(driver.EventFiler)
	if !ok {
		return false, &Error{Code: Unimplemented, Op: op}
	}
	if id == "" {
		return false, invalid(op, "empty case ID")
	}
	n, err := normalizeEmail(op, e)
	if err != nil {
		return false, err
	}
	cp, err := checkEvents(op, events)
	if err != nil {
		return false, err
	}
	s.rawPolicy(n)
	failed := false // an attempt failed: it may have filed e, its answer lost
	err = s.do(ctx, op, true, func(ctx context.Context) error {
		ok, err := f.AppendEmailEvents(ctx, id, n, cp)
		filed = ok || failed
		failed = failed || err != nil
		return err
	})
	return filed && err == nil, err
}

// ReadEvents returns up to limit events after the cursor (a Seq; 0 for
// the start of the log), in log order; limit zero or less means 100.
func (s *Store) ReadEvents(ctx context.Context, after int64, limit int) ([]driver.EventRecord, error) {
	const op = "ReadEvents"
	l, err := s.eventLog(op)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	var out []driver.EventRecord
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = l.ReadEvents(ctx, after, limit)
		return err
	})
	return out, err
}

// ClaimDeliveries claims up to limit due deliveries of sink for holder for
// ttl (see driver.EventLog). It is not retried: a claim whose answer was
// lost expires after ttl and the deliveries are claimed again.
func (s *Store) ClaimDeliveries(ctx context.Context, sink, holder string, limit int, ttl time.Duration) ([]driver.EventDelivery, error) {
	const op = "ClaimDeliveries"
	l, err := s.eventLog(op)
	if err != nil {
		return nil, err
	}
	if sink == "" || holder == "" || limit <= 0 || ttl <= 0 {
		return nil, invalid(op, "empty sink or holder, or a limit or TTL that is not positive")
	}
	var out []driver.EventDelivery
	err = s.do(ctx, op, false, func(ctx context.Context) (err error) {
		out, err = l.ClaimDeliveries(ctx, sink, holder, limit, ttl)
		return err
	})
	return out, err
}

// FinishDelivery records the result of an attempt at a delivery holder
// claimed. An error classified FailedPrecondition means the claim was lost
// (it expired, and another worker may deliver the event again).
func (s *Store) FinishDelivery(ctx context.Context, sink string, seq int64, holder string, r *driver.DeliveryResult) error {
	const op = "FinishDelivery"
	l, err := s.eventLog(op)
	if err != nil {
		return err
	}
	if sink == "" || seq <= 0 || holder == "" || r == nil {
		return invalid(op, "empty sink, holder or result, or a sequence number that is not positive")
	}
	switch r.Status {
	case driver.DeliveryDelivered, driver.DeliveryFailed, driver.DeliveryPending:
	default:
		return invalid(op, "result status must be delivered, failed or pending")
	}
	if r.RetryAfter < 0 {
		return invalid(op, "negative retry delay")
	}
	c := *r
	return s.do(ctx, op, true, func(ctx context.Context) error { return l.FinishDelivery(ctx, sink, seq, holder, &c) })
}

// ListDeliveries returns the deliveries filtered by opts (nil means all),
// newest event first.
func (s *Store) ListDeliveries(ctx context.Context, opts *driver.DeliveryListOptions) ([]driver.EventDelivery, error) {
	const op = "ListDeliveries"
	l, err := s.eventLog(op)
	if err != nil {
		return nil, err
	}
	var o driver.DeliveryListOptions
	if opts != nil {
		o = *opts
	}
	var out []driver.EventDelivery
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = l.ListDeliveries(ctx, &o)
		return err
	})
	return out, err
}
