package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// worklists holds the group queues and the handled marks; the work items
// themselves are the cases (their Queue, Owner and Status). The maps are
// made on first use, under the store's lock.
type worklists struct {
	queues  map[string]*driver.Queue
	handled map[driver.CaseID]int // case -> timeline length when marked handled
}

var (
	_ driver.Queues   = (*store)(nil)
	_ driver.Worklist = (*store)(nil)
)

func copyQueue(q *driver.Queue) driver.Queue {
	c := *q
	c.Members = slices.Clone(q.Members)
	if c.Members == nil {
		c.Members = []string{}
	}
	return c
}

func (s *store) CreateQueue(ctx context.Context, q *driver.Queue) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.wl.queues == nil {
		s.wl.queues = map[string]*driver.Queue{}
	}
	if _, ok := s.wl.queues[q.Name]; ok {
		return errorf(driver.AlreadyExists, "queue %q exists", q.Name)
	}
	c := copyQueue(q)
	c.Members = uniqueSorted(c.Members)
	s.wl.queues[q.Name] = &c
	return nil
}

func (s *store) UpdateQueue(ctx context.Context, q *driver.Queue) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, ok := s.wl.queues[q.Name]
	if !ok {
		return errorf(driver.NotFound, "no queue %q", q.Name)
	}
	cur.Owner, cur.Address = q.Owner, q.Address
	return nil
}

func (s *store) ListQueues(ctx context.Context) ([]driver.Queue, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := []driver.Queue{}
	for _, q := range s.wl.queues {
		out = append(out, copyQueue(q))
	}
	slices.SortFunc(out, func(a, b driver.Queue) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

func (s *store) SetQueueMember(ctx context.Context, queue, agent string, member bool) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	q, ok := s.wl.queues[queue]
	if !ok {
		return errorf(driver.NotFound, "no queue %q", queue)
	}
	i, found := slices.BinarySearch(q.Members, agent)
	switch {
	case member && !found:
		q.Members = slices.Insert(q.Members, i, agent)
	case !member && found:
		q.Members = slices.Delete(q.Members, i, i+1)
	}
	return nil
}

// isMember reports whether agent is a member of queue; the caller holds
// the lock.
func (s *store) isMember(queue, agent string) bool {
	q, ok := s.wl.queues[queue]
	return ok && slices.Contains(q.Members, agent)
}

// queueOwner returns the owner of queue ("" when none or no such queue).
func (s *store) queueOwner(queue string) string {
	if q, ok := s.wl.queues[queue]; ok {
		return q.Owner
	}
	return ""
}

// item returns rec's work item; the caller holds the lock.
func (s *store) item(rec *caseRec) driver.WorkItem {
	last := map[driver.Direction]int{driver.Inbound: -1, driver.Outbound: -1}
	for i, in := range rec.timeline {
		if in.Email != nil && !in.Email.Auto {
			last[in.Email.Direction] = i
		}
	}
	handled, marked := s.wl.handled[rec.c.ID]
	open := last[driver.Inbound] > last[driver.Outbound] && (!marked || last[driver.Inbound] >= handled)
	c := rec.c
	return driver.WorkItem{CaseID: c.ID, Number: c.Number, Subject: c.Subject, Queue: c.Queue, Owner: c.Owner,
		Status: c.Status, MailOpen: open, UpdatedAt: c.UpdatedAt}
}

func (s *store) GetWorkItem(ctx context.Context, id driver.CaseID) (driver.WorkItem, error) {
	if err := s.lock(ctx); err != nil {
		return driver.WorkItem{}, err
	}
	defer s.mu.Unlock()
	rec, ok := s.cases[id]
	if !ok {
		return driver.WorkItem{}, errorf(driver.NotFound, "no case %q", id)
	}
	return s.item(rec), nil
}

func (s *store) ListWorkItems(ctx context.Context, f *driver.WorkItemFilter) ([]driver.WorkItem, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := []driver.WorkItem{}
	for i := len(s.caseOrder) - 1; i >= 0; i-- {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		c := &s.cases[s.caseOrder[i]].c
		switch {
		case f.Queue != "" && c.Queue != f.Queue, f.Owner != "" && c.Owner != f.Owner, f.Unowned && c.Owner != "",
			f.Status != "" && c.Status != f.Status, f.Status == "" && !f.Done && c.Status.IsClosed():
			continue
		}
		out = append(out, s.item(s.cases[s.caseOrder[i]]))
	}
	return out, nil
}

func (s *store) ChangeWorkItem(ctx context.Context, id driver.CaseID, ch *driver.WorkChange) (driver.WorkItem, error) {
	// The change is checked before the case is looked up
	// (driver.Worklist).
	if ch.Agent == "" {
		return driver.WorkItem{}, errorf(driver.InvalidArgument, "a work item change needs an agent")
	}
	switch ch.Action {
	case driver.WorkAccept, driver.WorkRelease, driver.WorkReassign, driver.WorkHandled:
	case driver.WorkSetStatus:
		if !workStatus(ch.Status) {
			return driver.WorkItem{}, errorf(driver.InvalidArgument, "status %q cannot be set on a work item", ch.Status)
		}
	default:
		return driver.WorkItem{}, errorf(driver.InvalidArgument, "unknown work action %q", ch.Action)
	}
	if err := s.lock(ctx); err != nil {
		return driver.WorkItem{}, err
	}
	defer s.mu.Unlock()
	rec, ok := s.cases[id]
	if !ok {
		return driver.WorkItem{}, errorf(driver.NotFound, "no case %q", id)
	}
	c := &rec.c
	now := s.now()
	setStatus := func(st driver.CaseStatus) {
		switch {
		case st.IsClosed() && !c.Status.IsClosed():
			c.ClosedAt = now
		case !st.IsClosed():
			c.ClosedAt = time.Time{}
		}
		c.Status = st
	}
	done := c.Status.IsClosed()
	switch ch.Action {
	case driver.WorkAccept:
		switch {
		case !s.isMember(c.Queue, ch.Agent):
			return driver.WorkItem{}, errorf(driver.PermissionDenied, "%s is not a member of queue %q", ch.Agent, c.Queue)
		case done:
			return driver.WorkItem{}, errorf(driver.FailedPrecondition, "case %s is %s", c.ID, c.Status)
		case c.Owner == ch.Agent:
			return s.item(rec), nil
		case c.Owner != "":
			return driver.WorkItem{}, errorf(driver.AlreadyExists, "case %s is owned by another agent", c.ID)
		}
		c.Owner = ch.Agent
		setStatus(driver.NextWorkStatus(c.Status, true))
	case driver.WorkRelease:
		switch {
		case c.Owner == "" || done:
			return driver.WorkItem{}, errorf(driver.FailedPrecondition, "case %s is not owned or is done", c.ID)
		case ch.Agent != c.Owner && ch.Agent != s.queueOwner(c.Queue):
			return driver.WorkItem{}, errorf(driver.PermissionDenied, "%s does not own case %s", ch.Agent, c.ID)
		}
		c.Owner = ""
		setStatus(driver.NextWorkStatus(c.Status, false))
	case driver.WorkReassign:
		target, ok := s.wl.queues[ch.Queue]
		allowed := ch.Agent == s.queueOwner(c.Queue) || ch.Agent == c.Owner ||
			c.Owner == "" && s.isMember(c.Queue, ch.Agent)
		if _, group := s.wl.queues[c.Queue]; !group && c.Owner == "" && ok {
			allowed = allowed || ch.Agent == target.Owner || slices.Contains(target.Members, ch.Agent)
		}
		switch {
		case !allowed:
			return driver.WorkItem{}, errorf(driver.PermissionDenied, "%s may not reassign case %s", ch.Agent, c.ID)
		case !ok:
			return driver.WorkItem{}, errorf(driver.NotFound, "no queue %q", ch.Queue)
		case ch.Member != "" && !slices.Contains(target.Members, ch.Member):
			return driver.WorkItem{}, errorf(driver.FailedPrecondition, "%s is not a member of queue %q", ch.Member, ch.Queue)
		case done:
			return driver.WorkItem{}, errorf(driver.FailedPrecondition, "case %s is %s", c.ID, c.Status)
		}
		c.Queue, c.Owner = ch.Queue, ch.Member
		setStatus(driver.NextWorkStatus(c.Status, ch.Member != ""))
	case driver.WorkSetStatus, driver.WorkHandled:
		if c.Owner == "" || ch.Agent != c.Owner {
			return driver.WorkItem{}, errorf(driver.PermissionDenied, "only the owner may modify case %s", c.ID)
		}
		if ch.Action == driver.WorkHandled {
			if s.wl.handled == nil {
				s.wl.handled = map[driver.CaseID]int{}
			}
			s.wl.handled[c.ID] = len(rec.timeline)
			break
		}
		if ch.Status == c.Status {
			return s.item(rec), nil
		}
		if ch.Status == driver.StatusClosed && s.item(rec).MailOpen {
			return driver.WorkItem{}, errorf(driver.FailedPrecondition, "case %s has open mail: answer it or mark it handled first", c.ID)
		}
		setStatus(ch.Status)
	default:
		return driver.WorkItem{}, errorf(driver.InvalidArgument, "unknown work action %q", ch.Action)
	}
	c.UpdatedAt = now
	return s.item(rec), nil
}

// workStatus reports whether st may be set on a work item.
func workStatus(st driver.CaseStatus) bool {
	switch st {
	case driver.StatusOpen, driver.StatusInProgress, driver.StatusWaiting, driver.StatusClosed, driver.StatusCancelled:
		return true
	}
	return false
}

var _ driver.WorkItemOutbox = (*store)(nil)

// EnqueueAsOwner queues m under the store's lock when agent owns the item
// of case id, so no change of the item comes between the check and the
// enqueue (driver.WorkItemOutbox).
func (s *store) EnqueueAsOwner(ctx context.Context, id driver.CaseID, agent string, m *driver.OutboxMessage) (string, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if r, ok := s.outboxKeys[m.Key]; ok {
		return r.m.ID, nil
	}
	rec, ok := s.cases[id]
	if !ok {
		return "", errorf(driver.NotFound, "no case %q", id)
	}
	if rec.c.Owner == "" || rec.c.Owner != agent {
		return "", errorf(driver.PermissionDenied, "%s does not own case %s", agent, id)
	}
	return s.enqueueLocked(m), nil
}
