package mailcase

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Worklist types (see driver.Worklist for the rules).
type (
	GroupQueue     = driver.Queue
	WorkItem       = driver.WorkItem
	WorkItemFilter = driver.WorkItemFilter
)

// Lifecycle event kinds passed to WorklistOptions.OnEvent.
const (
	// EventCaseAssigned: the item moved to a group queue, owned by nobody
	// or by a member the reassigning agent named (release and reassign).
	// Data: "queue", "owner", "previous_queue", "previous_owner" (the
	// case.assigned payload of package events).
	EventCaseAssigned = "case.assigned"
	// EventCaseAccepted: an agent accepted ownership (explicitly or by
	// opening an unowned item under AutoAccept). Data: "owner", "queue",
	// "auto" (bool).
	EventCaseAccepted = "case.accepted"
	// EventCaseStatusChanged: the item's status changed. Data: "status",
	// "previous_status".
	EventCaseStatusChanged = "case.status_changed"
	// EventReplyQueued: the owner's reply was queued in the outbox. Data:
	// "outbox_id", "kind" ("worklist-reply"; a call repeated with the same
	// key is heard again, with the same outbox_id).
	EventReplyQueued = "reply.queued"
)

// ErrNotOwner is matched (errors.Is) by the PermissionDenied error of a
// reply from a work item by an agent who does not own it.
var ErrNotOwner = errors.New("mailcase: only the owner of the work item may do that")

// WorklistOptions configures the worklist methods of a Store. A nil
// *WorklistOptions (StoreOptions.Worklist) means the zero value.
type WorklistOptions struct {
	// AutoAccept makes OpenWorkItem accept ownership of an unowned item
	// for the agent who opens it, when the agent is a member of its queue;
	// false only reads the item.
	AutoAccept bool
	// OnEvent, when not nil, is called after every change that succeeded,
	// with one of the Event* kinds, the case and the kind's data (never
	// secrets). It runs on the caller's goroutine and must not block for
	// long; nil means no events.
	OnEvent func(ctx context.Context, kind string, caseID driver.CaseID, data map[string]any)
	// Events, when not nil, records the same events in its store's event
	// log (package events' Recorder implements it): the events of one
	// change (an accept that also moves the status records two) are
	// prepared with PrepareEvent and handed to EventsFiled in one call,
	// kept false, so that the recorder appends them in one batch, before
	// OnEvent hears them. nil means no recording. With Events set, OnEvent
	// must not be the same recorder's own callback (package events'
	// Recorder.OnEvent): the change's events, which carry no mail or
	// outbox ID to dedupe them by, would be recorded twice.
	Events EventRecorder
}

// CanWorklist reports whether the store keeps group queues and worklists
// (driver.Queues and driver.Worklist). Without them the worklist methods
// return errors classified Unimplemented.
func (s *Store) CanWorklist() bool {
	_, q := s.d.(driver.Queues)
	_, w := s.d.(driver.Worklist)
	return q && w
}

func (s *Store) worklist(op string) (driver.Queues, driver.Worklist, error) {
	q, okq := s.d.(driver.Queues)
	w, okw := s.d.(driver.Worklist)
	if !okq || !okw {
		return nil, nil, &Error{Code: Unimplemented, Op: op}
	}
	return q, w, nil
}

func (s *Store) wlOpts() WorklistOptions {
	if s.opts.Worklist == nil {
		return WorklistOptions{}
	}
	return *s.opts.Worklist
}

// emit reports the events of one change: their records to
// WorklistOptions.Events in one call, then each to OnEvent.
func (s *Store) emit(ctx context.Context, evs ...mailEvent) {
	o := s.wlOpts()
	if len(evs) == 0 {
		return
	}
	if o.Events != nil {
		recs := make([]*driver.EventRecord, 0, len(evs))
		for _, e := range evs {
			if r, err := o.Events.PrepareEvent(e.kind, e.id, e.data); err == nil && r != nil {
				recs = append(recs, r)
			}
		}
		if len(recs) > 0 {
			o.Events.EventsFiled(ctx, recs, false)
		}
	}
	if o.OnEvent != nil {
		for _, e := range evs {
			o.OnEvent(ctx, e.kind, e.id, e.data)
		}
	}
}

// agentAddr normalises an agent's address; "" when it is not one.
func agentAddr(a string) string { return NormalizeAddress(a) }

// checkQueue validates and normalises a queue for CreateQueue and
// UpdateQueue. A queue is a group: a name that is a mail address (a
// person) is refused, so that mail is never routed to a person.
func checkQueue(op string, q *GroupQueue) (*GroupQueue, error) {
	if q == nil {
		return nil, invalid(op, "no queue")
	}
	c := *q
	c.Name = cleanLine(q.Name)
	if c.Name == "" || len(c.Name) > 200 {
		return nil, invalid(op, "a queue needs a name of at most 200 bytes")
	}
	if IsPersonQueue(c.Name) {
		return nil, invalid(op, "queue %q is a person's address: mail goes to group queues only", c.Name)
	}
	if q.Owner != "" {
		if c.Owner = agentAddr(q.Owner); c.Owner == "" {
			return nil, invalid(op, "queue %q: owner %q is not an address", c.Name, cleanLine(q.Owner))
		}
	}
	if q.Address != "" {
		if c.Address = NormalizeAddress(q.Address); c.Address == "" {
			return nil, invalid(op, "queue %q: address %q is not an address", c.Name, cleanLine(q.Address))
		}
	}
	c.Members = nil
	for _, m := range q.Members {
		a := agentAddr(m)
		if a == "" {
			return nil, invalid(op, "queue %q: member %q is not an address", c.Name, cleanLine(m))
		}
		c.Members = append(c.Members, a)
	}
	slices.Sort(c.Members)
	c.Members = slices.Compact(c.Members)
	return &c, nil
}

// IsPersonQueue reports whether a queue name names a person (it is a mail
// address) rather than a group. Routes and queues naming a person are
// refused: mail is routed to group queues only.
func IsPersonQueue(name string) bool {
	return strings.Contains(name, "@") && NormalizeAddress(name) != ""
}

// CreateQueue creates a group queue with its owner and members (an
// existing name is AlreadyExists).
func (s *Store) CreateQueue(ctx context.Context, q *GroupQueue) error {
	const op = "CreateQueue"
	qs, _, err := s.worklist(op)
	if err != nil {
		return err
	}
	c, err := checkQueue(op, q)
	if err != nil {
		return err
	}
	return s.do(ctx, op, false, func(ctx context.Context) error { return qs.CreateQueue(ctx, c) })
}

// UpdateQueue sets the owner and address of an existing queue (its members
// change with AddQueueMember and RemoveQueueMember).
func (s *Store) UpdateQueue(ctx context.Context, q *GroupQueue) error {
	const op = "UpdateQueue"
	qs, _, err := s.worklist(op)
	if err != nil {
		return err
	}
	c, err := checkQueue(op, q)
	if err != nil {
		return err
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return qs.UpdateQueue(ctx, c) })
}

// ListQueues returns the group queues by name, with their members.
func (s *Store) ListQueues(ctx context.Context) ([]GroupQueue, error) {
	const op = "ListQueues"
	qs, _, err := s.worklist(op)
	if err != nil {
		return nil, err
	}
	var out []GroupQueue
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = qs.ListQueues(ctx)
		return err
	})
	return out, err
}

// GetQueue returns the queue named name; ok is false when there is none.
func (s *Store) GetQueue(ctx context.Context, name string) (q GroupQueue, ok bool, err error) {
	all, err := s.ListQueues(ctx)
	if err != nil {
		return q, false, err
	}
	for _, q := range all {
		if q.Name == name {
			return q, true, nil
		}
	}
	return q, false, nil
}

// AddQueueMember makes agent a member of queue (a no-op when it is one).
func (s *Store) AddQueueMember(ctx context.Context, queue, agent string) error {
	return s.setMember(ctx, "AddQueueMember", queue, agent, true)
}

// RemoveQueueMember removes agent from queue (a no-op when not a member).
// Items the agent owns stay theirs until released or reassigned.
func (s *Store) RemoveQueueMember(ctx context.Context, queue, agent string) error {
	return s.setMember(ctx, "RemoveQueueMember", queue, agent, false)
}

func (s *Store) setMember(ctx context.Context, op, queue, agent string, member bool) error {
	qs, _, err := s.worklist(op)
	if err != nil {
		return err
	}
	a := agentAddr(agent)
	if queue == "" || a == "" {
		return invalid(op, "a queue and an agent address are needed")
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return qs.SetQueueMember(ctx, queue, a, member) })
}

// GetWorkItem returns the work item of case id; ok is false when there is
// no such case.
func (s *Store) GetWorkItem(ctx context.Context, id CaseID) (it WorkItem, ok bool, err error) {
	const op = "GetWorkItem"
	_, w, err := s.worklist(op)
	if err != nil {
		return it, false, err
	}
	if id == "" {
		return it, false, nil
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		it, err = w.GetWorkItem(ctx, id)
		return err
	})
	ok, err = notFound(err)
	return it, ok, err
}

// ListWorkItems returns the work items matching f (nil: every item not
// done), newest case first. Owner is normalised.
func (s *Store) ListWorkItems(ctx context.Context, f *WorkItemFilter) ([]WorkItem, error) {
	const op = "ListWorkItems"
	_, w, err := s.worklist(op)
	if err != nil {
		return nil, err
	}
	var c WorkItemFilter
	if f != nil {
		c = *f
	}
	if c.Owner != "" {
		if c.Owner = agentAddr(f.Owner); c.Owner == "" {
			return nil, invalid(op, "owner %q is not an address", cleanLine(f.Owner))
		}
	}
	if c.Status != "" && !validStatus(c.Status) {
		return nil, invalid(op, "unknown status %q", cleanLine(string(c.Status)))
	}
	var out []WorkItem
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = w.ListWorkItems(ctx, &c)
		return err
	})
	return out, err
}

// change runs ch on case id and emits the events of what changed.
func (s *Store) change(ctx context.Context, op string, id CaseID, ch *driver.WorkChange, retry bool) (WorkItem, error) {
	_, w, err := s.worklist(op)
	if err != nil {
		return WorkItem{}, err
	}
	if id == "" {
		return WorkItem{}, invalid(op, "no case")
	}
	agent := ch.Agent
	if ch.Agent = agentAddr(agent); ch.Agent == "" {
		return WorkItem{}, invalid(op, "agent %q is not an address", cleanLine(agent))
	}
	if ch.Member != "" {
		m := ch.Member
		if ch.Member = agentAddr(m); ch.Member == "" {
			return WorkItem{}, invalid(op, "member %q is not an address", cleanLine(m))
		}
	}
	ch.Queue = cleanLine(ch.Queue)
	var before WorkItem
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		before, err = w.GetWorkItem(ctx, id)
		return err
	})
	if err != nil {
		return WorkItem{}, err
	}
	var after WorkItem
	err = s.do(ctx, op, retry, func(ctx context.Context) (err error) {
		after, err = w.ChangeWorkItem(ctx, id, ch)
		return err
	})
	if err != nil {
		return WorkItem{}, err
	}
	var evs []mailEvent
	switch ch.Action {
	case driver.WorkAccept:
		if before.Owner != after.Owner {
			evs = append(evs, mailEvent{EventCaseAccepted, id, map[string]any{"owner": after.Owner, "queue": after.Queue, "auto": op == "OpenWorkItem"}})
		}
	case driver.WorkRelease, driver.WorkReassign:
		evs = append(evs, mailEvent{EventCaseAssigned, id, map[string]any{"queue": after.Queue, "owner": after.Owner,
			"previous_queue": before.Queue, "previous_owner": before.Owner}})
	}
	if before.Status != after.Status {
		evs = append(evs, mailEvent{EventCaseStatusChanged, id, map[string]any{"status": string(after.Status), "previous_status": string(before.Status)}})
	}
	s.emit(ctx, evs...)
	return after, nil
}

// AcceptWorkItem gives agent ownership of the unowned item of case id
// (agent must be a member of its queue). Concurrent accepts: exactly one
// agent wins, the others get an error classified AlreadyExists. See
// driver.Worklist for every rule and error code.
func (s *Store) AcceptWorkItem(ctx context.Context, id CaseID, agent string) (WorkItem, error) {
	return s.change(ctx, "AcceptWorkItem", id, &driver.WorkChange{Action: driver.WorkAccept, Agent: agent}, true)
}

// OpenWorkItem returns the item of case id as agent opens it. Under
// WorklistOptions.AutoAccept an unowned, not done item of a queue agent is
// a member of is accepted for agent first; losing that accept to another
// agent is not an error (the item is returned with its owner).
func (s *Store) OpenWorkItem(ctx context.Context, id CaseID, agent string) (WorkItem, error) {
	const op = "OpenWorkItem"
	it, ok, err := s.GetWorkItem(ctx, id)
	if err != nil {
		return it, err
	}
	if !ok {
		return it, &Error{Code: NotFound, Op: op, Err: fmt.Errorf("no case %s", id)}
	}
	if !s.wlOpts().AutoAccept || it.Owner != "" || it.Status.IsClosed() {
		return it, nil
	}
	got, err := s.change(ctx, op, id, &driver.WorkChange{Action: driver.WorkAccept, Agent: agent}, true)
	switch Code(err) {
	case OK:
		return got, nil
	case AlreadyExists, PermissionDenied, FailedPrecondition:
		// Another agent won, agent is no member, or the item closed:
		// opening only reads.
		it, _, err = s.GetWorkItem(ctx, id)
		return it, err
	}
	return WorkItem{}, err
}

// ReleaseWorkItem puts the item agent owns (or, for the queue's owner, any
// item of the queue) back on its group worklist.
func (s *Store) ReleaseWorkItem(ctx context.Context, id CaseID, agent string) (WorkItem, error) {
	return s.change(ctx, "ReleaseWorkItem", id, &driver.WorkChange{Action: driver.WorkRelease, Agent: agent}, false)
}

// ReassignWorkItem moves the item of case id to group queue queue, owned
// by member (a member of queue) or, with member "", by nobody.
func (s *Store) ReassignWorkItem(ctx context.Context, id CaseID, agent, queue, member string) (WorkItem, error) {
	const op = "ReassignWorkItem"
	if cleanLine(queue) == "" || IsPersonQueue(queue) {
		return WorkItem{}, invalid(op, "reassign needs a group queue (a person's address is not one)")
	}
	return s.change(ctx, op, id, &driver.WorkChange{Action: driver.WorkReassign, Agent: agent, Queue: queue, Member: member}, false)
}

// SetWorkItemStatus sets the status of the item agent owns. Closing while
// the case has open mail is FailedPrecondition (answer or MarkMailHandled
// first).
func (s *Store) SetWorkItemStatus(ctx context.Context, id CaseID, agent string, st CaseStatus) (WorkItem, error) {
	return s.change(ctx, "SetWorkItemStatus", id, &driver.WorkChange{Action: driver.WorkSetStatus, Agent: agent, Status: st}, true)
}

// MarkMailHandled marks the open mail of the item agent owns handled
// without an answer (a mail that needs none).
func (s *Store) MarkMailHandled(ctx context.Context, id CaseID, agent string) (WorkItem, error) {
	return s.change(ctx, "MarkMailHandled", id, &driver.WorkChange{Action: driver.WorkHandled, Agent: agent}, true)
}

// CanEnqueueAsOwner reports whether the store queues a work item's reply
// and checks its ownership in one atomic step (driver.WorkItemOutbox).
func (s *Store) CanEnqueueAsOwner() bool {
	_, ok := s.d.(driver.WorkItemOutbox)
	_, o := s.d.(driver.Outbox)
	return ok && o && s.CanWorklist()
}

// EnqueueAsOwner queues m (as Enqueue does) only when agent owns the work
// item of case id, checked in the same atomic step as the enqueue, so that
// no accept, release or reassign by someone else comes between them (see
// driver.WorkItemOutbox). A key queued before returns its ID. When agent
// does not own the item, nothing is queued and the error is classified
// PermissionDenied and matches ErrNotOwner; a missing case is NotFound;
// a store without driver.WorkItemOutbox is Unimplemented.
func (s *Store) EnqueueAsOwner(ctx context.Context, id CaseID, agent string, m *driver.OutboxMessage) (string, error) {
	const op = "EnqueueAsOwner"
	wo, ok := s.d.(driver.WorkItemOutbox)
	if !ok || !s.CanEnqueueAsOwner() {
		return "", &Error{Code: Unimplemented, Op: op}
	}
	a := agentAddr(agent)
	if a == "" || id == "" {
		return "", invalid(op, "a reply needs a case and the agent's address")
	}
	c, err := checkOutgoing(op, m)
	if err != nil {
		return "", err
	}
	c.CaseID = id
	var out string
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = wo.EnqueueAsOwner(ctx, id, a, c)
		return err
	})
	if Code(err) == PermissionDenied {
		return "", &Error{Code: PermissionDenied, Op: op, Err: ErrNotOwner}
	}
	return out, err
}

// ReplyFromWorkItem runs send, which queues agent's reply on case id
// (outbox.Mailer.ReplyFromItem), when agent owns the item, and returns the
// outbox ID send returned. Otherwise nothing is sent and the error is
// classified PermissionDenied and matches ErrNotOwner. Ownership is
// checked before send runs; that check alone is not atomic with the
// queueing, so send queues with EnqueueAsOwner (as the outbox package's
// Mailer does where CanEnqueueAsOwner), which checks it again in the
// same atomic step as the enqueue.
func (s *Store) ReplyFromWorkItem(ctx context.Context, id CaseID, agent string, send func(ctx context.Context) (string, error)) (string, error) {
	const op = "ReplyFromWorkItem"
	a := agentAddr(agent)
	if a == "" || send == nil {
		return "", invalid(op, "a reply needs the agent's address")
	}
	it, ok, err := s.GetWorkItem(ctx, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &Error{Code: NotFound, Op: op, Err: fmt.Errorf("no case %s", id)}
	}
	if it.Owner == "" || it.Owner != a {
		return "", &Error{Code: PermissionDenied, Op: op, Err: ErrNotOwner}
	}
	oid, err := send(ctx)
	if err != nil {
		return "", err
	}
	s.emit(ctx, mailEvent{EventReplyQueued, id, map[string]any{"outbox_id": oid, "kind": "worklist-reply"}})
	return oid, nil
}
