package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// outboxRec is a queued message and its claim.
type outboxRec struct {
	m      driver.OutboxMessage
	holder string
	until  time.Time
}

func copyOutbox(m driver.OutboxMessage, withRaw bool) driver.OutboxMessage {
	m.To = slices.Clone(m.To)
	if withRaw {
		m.Raw = slices.Clone(m.Raw)
	} else {
		m.Raw = nil
	}
	return m
}

func (s *store) outboxByID(id string) *outboxRec {
	for _, r := range s.outbox {
		if r.m.ID == id {
			return r
		}
	}
	return nil
}

// Enqueue queues m unless its key was queued before.
func (s *store) Enqueue(ctx context.Context, m *driver.OutboxMessage) (string, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if r, ok := s.outboxKeys[m.Key]; ok {
		return r.m.ID, nil
	}
	return s.enqueueLocked(m), nil
}

// enqueueLocked queues m, whose key is new; the caller holds the lock.
func (s *store) enqueueLocked(m *driver.OutboxMessage) string {
	now := s.now()
	r := &outboxRec{m: copyOutbox(*m, true)}
	r.m.ID = s.nextID("outbox")
	r.m.Status = driver.OutboxPending
	r.m.Attempts = 0
	r.m.CreatedAt = now
	r.m.SentAt = time.Time{}
	r.m.LastError = ""
	if r.m.NextAttemptAt.Before(now) {
		r.m.NextAttemptAt = now
	}
	s.outbox = append(s.outbox, r)
	s.outboxKeys[m.Key] = r
	return r.m.ID
}

// ClaimOutbox claims the due messages, oldest due first.
func (s *store) ClaimOutbox(ctx context.Context, holder string, limit int, ttl time.Duration) ([]driver.OutboxMessage, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now := s.now()
	var due []*outboxRec
	for _, r := range s.outbox {
		switch {
		case r.m.Status == driver.OutboxPending && !r.m.NextAttemptAt.After(now):
		case r.m.Status == driver.OutboxSending && r.until.Before(now):
		default:
			continue
		}
		due = append(due, r)
	}
	slices.SortStableFunc(due, func(a, b *outboxRec) int { return a.m.NextAttemptAt.Compare(b.m.NextAttemptAt) })
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	out := make([]driver.OutboxMessage, 0, len(due))
	for _, r := range due {
		r.m.Status = driver.OutboxSending
		r.m.Attempts++
		r.holder, r.until = holder, now.Add(ttl)
		out = append(out, copyOutbox(r.m, true))
	}
	return out, nil
}

// FinishOutbox records the result of a claimed attempt.
func (s *store) FinishOutbox(ctx context.Context, id, holder string, res *driver.OutboxResult) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r := s.outboxByID(id)
	if r == nil {
		return errorf(driver.NotFound, "no outgoing message %q", id)
	}
	now := s.now()
	if r.m.Status != driver.OutboxSending || r.holder != holder || r.until.Before(now) {
		return errorf(driver.FailedPrecondition, "outgoing message %q is not claimed by %q", id, holder)
	}
	switch res.Status {
	case driver.OutboxSent:
		r.m.SentAt = now
	case driver.OutboxPending:
		r.m.NextAttemptAt = now.Add(res.RetryAfter)
	case driver.OutboxFailed:
	default:
		return errorf(driver.InvalidArgument, "result status %q", res.Status)
	}
	r.m.Status = res.Status
	r.m.LastError = res.Error
	r.holder, r.until = "", time.Time{}
	return nil
}

// SetOutboxStatus retries, cancels or marks bounced a message.
func (s *store) SetOutboxStatus(ctx context.Context, id string, status driver.OutboxStatus, reason string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r := s.outboxByID(id)
	if r == nil {
		return errorf(driver.NotFound, "no outgoing message %q", id)
	}
	var from []driver.OutboxStatus
	switch status {
	case driver.OutboxPending:
		from = []driver.OutboxStatus{driver.OutboxPending, driver.OutboxFailed, driver.OutboxCancelled, driver.OutboxBounced}
	case driver.OutboxCancelled:
		from = []driver.OutboxStatus{driver.OutboxPending}
	case driver.OutboxBounced:
		from = []driver.OutboxStatus{driver.OutboxSent, driver.OutboxBounced}
	default:
		return errorf(driver.InvalidArgument, "status %q cannot be set", status)
	}
	if !slices.Contains(from, r.m.Status) {
		return errorf(driver.FailedPrecondition, "outgoing message %q is %s", id, r.m.Status)
	}
	r.m.Status = status
	switch status {
	case driver.OutboxPending:
		r.m.NextAttemptAt = s.now()
		r.m.Attempts = 0
	case driver.OutboxBounced:
		r.m.LastError = reason
	}
	return nil
}

// GetOutbox returns a copy of message id with its raw bytes.
func (s *store) GetOutbox(ctx context.Context, id string) (driver.OutboxMessage, error) {
	if err := s.lock(ctx); err != nil {
		return driver.OutboxMessage{}, err
	}
	defer s.mu.Unlock()
	r := s.outboxByID(id)
	if r == nil {
		return driver.OutboxMessage{}, errorf(driver.NotFound, "no outgoing message %q", id)
	}
	return copyOutbox(r.m, true), nil
}

// FindOutbox returns the first message queued with messageID.
func (s *store) FindOutbox(ctx context.Context, messageID string) (driver.OutboxMessage, error) {
	if err := s.lock(ctx); err != nil {
		return driver.OutboxMessage{}, err
	}
	defer s.mu.Unlock()
	for _, r := range s.outbox {
		if r.m.MessageID == messageID {
			return copyOutbox(r.m, true), nil
		}
	}
	return driver.OutboxMessage{}, errorf(driver.NotFound, "no outgoing message with Message-ID %q", messageID)
}

// ListOutbox lists messages newest first, without raw bytes.
func (s *store) ListOutbox(ctx context.Context, opts *driver.OutboxListOptions) ([]driver.OutboxMessage, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var o driver.OutboxListOptions
	if opts != nil {
		o = *opts
	}
	var out []driver.OutboxMessage
	for i := len(s.outbox) - 1; i >= 0; i-- {
		m := s.outbox[i].m
		if (o.Status != "" && m.Status != o.Status) || (o.CaseID != "" && m.CaseID != o.CaseID) ||
			(o.Kind != "" && m.Kind != o.Kind) || (o.Recipient != "" && !slices.Contains(m.To, o.Recipient)) ||
			(!o.Since.IsZero() && m.CreatedAt.Before(o.Since)) {
			continue
		}
		out = append(out, copyOutbox(m, false))
		if o.Limit > 0 && len(out) == o.Limit {
			break
		}
	}
	return out, nil
}
