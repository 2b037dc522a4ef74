package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// eventLog is the store's driver.EventLog: the events in Seq order (Seq
// is the index + 1) and the deliveries by sink and Seq. Its zero value is
// an empty log.
type eventLog struct {
	events []driver.EventRecord
	ids    map[string]bool
	// deliveries by sink, then by Seq
	deliveries map[string]map[int64]*deliveryRec
}

// deliveryRec is one delivery and its claim.
type deliveryRec struct {
	d      driver.EventDelivery // Event left empty: it is events[Seq-1]
	holder string
	until  time.Time
}

func copyEvent(e driver.EventRecord) driver.EventRecord {
	e.Data = slices.Clone(e.Data)
	e.Sinks = nil
	return e
}

func (s *store) delivery(r *deliveryRec) driver.EventDelivery {
	d := r.d
	d.Event = copyEvent(s.events.events[d.Event.Seq-1])
	return d
}

// AppendEvents keeps the events and their deliveries; known IDs are kept
// once. Holding the lock makes the call all or nothing.
func (s *store) AppendEvents(ctx context.Context, events []*driver.EventRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.appendEvents(events)
	return nil
}

// appendEvents keeps events (AppendEvents' rules); the caller holds the
// lock, so a filing keeps its events with it.
func (s *store) appendEvents(events []*driver.EventRecord) {
	l := &s.events
	if l.ids == nil {
		l.ids = map[string]bool{}
		l.deliveries = map[string]map[int64]*deliveryRec{}
	}
	now := s.now()
	for _, e := range events {
		if l.ids[e.ID] {
			continue
		}
		l.ids[e.ID] = true
		c := copyEvent(*e)
		c.Seq = int64(len(l.events) + 1)
		c.Time = c.Time.Truncate(time.Microsecond)
		l.events = append(l.events, c)
		for _, sink := range e.Sinks {
			m := l.deliveries[sink]
			if m == nil {
				m = map[int64]*deliveryRec{}
				l.deliveries[sink] = m
			}
			if m[c.Seq] != nil {
				continue
			}
			m[c.Seq] = &deliveryRec{d: driver.EventDelivery{Event: driver.EventRecord{Seq: c.Seq}, Sink: sink,
				Status: driver.DeliveryPending, NextAttemptAt: now}}
		}
	}
}

// CreateCaseEvents creates a case and keeps then's events with it
// (driver.EventFiler); memstore is no OutboxFiler, so a message is
// refused. Holding the lock makes the filing and its events one step.
func (s *store) CreateCaseEvents(ctx context.Context, req *driver.NewCase, then func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error)) (driver.Case, []string, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Case{}, nil, err
	}
	defer s.mu.Unlock()
	c, _, err := s.createCase(req, func(c driver.Case) error {
		msgs, events, err := then(c)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m != nil {
				return errorf(driver.InvalidArgument, "memstore queues no mail with a filing")
			}
		}
		s.appendEvents(events)
		return nil
	})
	return c, nil, err
}

// AppendEmailEvents files e on case id and keeps events with it
// (driver.EventFiler); a mail filed before keeps nothing and reports false.
func (s *store) AppendEmailEvents(ctx context.Context, id driver.CaseID, e *driver.Email, events []*driver.EventRecord) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	filed, err := s.appendEmail(id, e)
	if err != nil {
		return false, err
	}
	if filed {
		s.appendEvents(events)
	}
	return filed, nil
}

// ReadEvents returns the events after the cursor.
func (s *store) ReadEvents(ctx context.Context, after int64, limit int) ([]driver.EventRecord, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if limit <= 0 {
		limit = 100
	}
	var out []driver.EventRecord
	for i := max(after, 0); i < int64(len(s.events.events)) && len(out) < limit; i++ {
		out = append(out, copyEvent(s.events.events[i]))
	}
	return out, nil
}

// ClaimDeliveries claims the due deliveries of sink, in Seq order.
func (s *store) ClaimDeliveries(ctx context.Context, sink, holder string, limit int, ttl time.Duration) ([]driver.EventDelivery, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now := s.now()
	var due []*deliveryRec
	for _, r := range s.events.deliveries[sink] {
		switch {
		case r.d.Status == driver.DeliveryPending && !r.d.NextAttemptAt.After(now):
		case r.d.Status == driver.DeliveryDelivering && r.until.Before(now):
		default:
			continue
		}
		due = append(due, r)
	}
	slices.SortFunc(due, func(a, b *deliveryRec) int { return int(a.d.Event.Seq - b.d.Event.Seq) })
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	out := make([]driver.EventDelivery, 0, len(due))
	for _, r := range due {
		r.d.Status = driver.DeliveryDelivering
		r.d.Attempts++
		r.holder, r.until = holder, now.Add(ttl)
		out = append(out, s.delivery(r))
	}
	return out, nil
}

// FinishDelivery records the result of a claimed attempt.
func (s *store) FinishDelivery(ctx context.Context, sink string, seq int64, holder string, res *driver.DeliveryResult) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r := s.events.deliveries[sink][seq]
	if r == nil {
		return errorf(driver.NotFound, "no delivery of event %d to %q", seq, sink)
	}
	now := s.now()
	if r.d.Status != driver.DeliveryDelivering || r.holder != holder || r.until.Before(now) {
		return errorf(driver.FailedPrecondition, "delivery of event %d to %q is not claimed by %s", seq, sink, holder)
	}
	switch res.Status {
	case driver.DeliveryDelivered:
		r.d.DeliveredAt = now
	case driver.DeliveryPending:
		r.d.NextAttemptAt = now.Add(res.RetryAfter)
	case driver.DeliveryFailed:
	default:
		return errorf(driver.InvalidArgument, "result status %q", res.Status)
	}
	r.d.Status, r.d.LastError = res.Status, res.Error
	r.holder, r.until = "", time.Time{}
	return nil
}

// ListDeliveries returns the deliveries, newest event first.
func (s *store) ListDeliveries(ctx context.Context, opts *driver.DeliveryListOptions) ([]driver.EventDelivery, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var all []*deliveryRec
	for sink, m := range s.events.deliveries {
		if opts.Sink != "" && sink != opts.Sink {
			continue
		}
		for _, r := range m {
			if opts.Status == "" || r.d.Status == opts.Status {
				all = append(all, r)
			}
		}
	}
	slices.SortFunc(all, func(a, b *deliveryRec) int {
		if a.d.Event.Seq != b.d.Event.Seq {
			return int(b.d.Event.Seq - a.d.Event.Seq)
		}
		if a.d.Sink < b.d.Sink {
			return -1
		}
		return 1
	})
	if opts.Limit > 0 && len(all) > opts.Limit {
		all = all[:opts.Limit]
	}
	out := make([]driver.EventDelivery, 0, len(all))
	for _, r := range all {
		out = append(out, s.delivery(r))
	}
	return out, nil
}

var (
	_ driver.EventLog   = (*store)(nil)
	_ driver.EventFiler = (*store)(nil)
)
