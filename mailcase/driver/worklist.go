package driver

import (
	"context"
	"time"
)

// Queue is a group queue (a group worklist): mail is routed to it, its
// members take ownership of its items, and its owner (a supervisor) is
// told about what nobody handles. Names are unique in a store; Owner and
// Members are normalised addresses of employees.
type Queue struct {
	Name string `json:"name"`
	// Owner is the queue's owner (supervisor); "" for none.
	Owner string `json:"owner,omitempty"`
	// Address is the queue's notification address; "" for none.
	Address string `json:"address,omitempty"`
	// Members may accept ownership of the queue's items; sorted, unique.
	Members []string `json:"members,omitempty"`
}

// WorkItem is the worklist entry of a case: every case is one. Its queue,
// owner and status are the case's Queue, Owner and Status, so a case read
// with GetCase shows the same values.
type WorkItem struct {
	CaseID  CaseID `json:"case_id"`
	Number  string `json:"number"`
	Subject string `json:"subject,omitempty"`
	// Queue is the group queue the item is on.
	Queue string `json:"queue,omitempty"`
	// Owner is the agent who accepted ownership ("" while the item is on
	// the group worklist only); the item is then on the agent's own
	// worklist.
	Owner  string     `json:"owner,omitempty"`
	Status CaseStatus `json:"status"`
	// MailOpen reports that the case has open mail (see Worklist).
	MailOpen  bool      `json:"mail_open"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WorkItemFilter selects work items in ListWorkItems. Zero values mean no
// filter.
type WorkItemFilter struct {
	// Queue keeps the items of a queue; Owner those an agent owns.
	Queue string
	Owner string
	// Unowned keeps the items nobody owns (the group worklist).
	Unowned bool
	// Status keeps the items with that status; without it closed and
	// cancelled items are left out unless Done is set.
	Status CaseStatus
	Done   bool
	// Limit keeps the newest Limit items; zero or less means all.
	Limit int
}

// WorkAction is a change of a work item.
type WorkAction string

// Work actions (see Worklist for their rules).
const (
	// WorkAccept takes ownership of an unowned item.
	WorkAccept WorkAction = "accept"
	// WorkRelease puts an owned item back on its group worklist.
	WorkRelease WorkAction = "release"
	// WorkReassign moves an item to a group queue (WorkChange.Queue),
	// owned by nobody or by one of its members (WorkChange.Member).
	WorkReassign WorkAction = "reassign"
	// WorkSetStatus sets the item's status (WorkChange.Status).
	WorkSetStatus WorkAction = "status"
	// WorkHandled marks the case's open mail handled without a reply.
	WorkHandled WorkAction = "handled"
)

// WorkChange is one change of a work item by an agent.
type WorkChange struct {
	Action WorkAction
	// Agent is who makes the change: the normalised address of an
	// employee. It is never empty.
	Agent string
	// Queue and Member are the target of WorkReassign; Member "" leaves
	// the item unowned on Queue.
	Queue  string
	Member string
	// Status is the target of WorkSetStatus.
	Status CaseStatus
}

// Queues is an optional interface for stores that keep group queues and
// their members; a driver implementing Worklist implements Queues too.
//
//   - CreateQueue keeps q (its Members too); a queue of that name is
//     AlreadyExists.
//   - UpdateQueue replaces the Owner and Address of queue q.Name (its
//     members are left alone); an unknown queue is NotFound.
//   - ListQueues returns every queue by name (byte order), with members.
//   - SetQueueMember makes agent a member of queue (member true) or not;
//     adding a member twice or removing a non-member is a no-op; an
//     unknown queue is NotFound.
type Queues interface {
	CreateQueue(ctx context.Context, q *Queue) error
	UpdateQueue(ctx context.Context, q *Queue) error
	ListQueues(ctx context.Context) ([]Queue, error)
	SetQueueMember(ctx context.Context, queue, agent string, member bool) error
}

// Worklist is an optional interface for stores that keep worklists: every
// case is a work item on the group queue of its Queue, owned by nobody
// until an agent accepts ownership. Mail is routed to group queues only,
// never to a person: an item gets an owner only through WorkAccept or a
// WorkReassign naming a member, never when it is filed.
//
// Statuses map onto CaseStatus: open is StatusNew or StatusOpen, in
// progress StatusInProgress, waiting on customer StatusWaiting, closed
// StatusClosed, cancelled StatusCancelled. Closed and cancelled items are
// done.
//
// Open mail: a case has open mail when its last received mail (Inbound and
// not Auto) was filed after its last answer (an Outbound mail that is not
// Auto, such as a Log Email) and after the last WorkHandled mark, in
// filing order (never by Date fields, which senders write). A case without
// received mail has none; automatic mail neither opens nor answers it.
//
// ChangeWorkItem applies ch to the item of case id and returns the item
// as changed. The change itself is checked first: an unknown action, an
// empty Agent, and for WorkSetStatus StatusNew, an unknown or an empty
// status are InvalidArgument whether or not the case exists; then a
// missing case is NotFound. Its rules:
//
//   - WorkAccept: only a member of the item's queue may accept
//     (PermissionDenied otherwise, also when the queue does not exist); a
//     done item is FailedPrecondition; an item owned by another agent is
//     AlreadyExists, and so is the loser of concurrent accepts: exactly one
//     agent wins. Accepting an item one owns already changes nothing and
//     returns nil. The owner becomes ch.Agent; an open status becomes
//     StatusInProgress, waiting stays waiting.
//   - WorkRelease: only the owner, or the owner of the item's queue,
//     may release (PermissionDenied); an unowned or done item is
//     FailedPrecondition. The owner is cleared and StatusInProgress
//     becomes StatusOpen.
//   - WorkReassign: an owned item may be moved by its owner or the owner
//     of its queue; an unowned item by a member or the owner of its queue,
//     or, when its queue is no group queue, of the target queue
//     (PermissionDenied otherwise). An unknown target queue is NotFound, a
//     Member who is not a member of it FailedPrecondition, a done item
//     FailedPrecondition. The item moves to ch.Queue, owned by ch.Member
//     (open statuses become StatusInProgress) or by nobody
//     (StatusInProgress becomes StatusOpen).
//   - WorkSetStatus and WorkHandled: only the owner may modify an item
//     (PermissionDenied, also for an unowned item). StatusClosed while the
//     case has open mail is FailedPrecondition. The owner may reopen a
//     done item. Reaching a done status sets the case's ClosedAt, leaving
//     it clears it (as UpdateCase does). WorkHandled marks the mail filed
//     so far handled, even when none is open.
//
// Every change that succeeds sets the case's UpdatedAt (the item's too) to
// the time of the change, a WorkHandled mark included; a change that
// changes nothing (a status set to the status it has, an accept by the
// owner) leaves it and returns the item and nil. Every change is atomic: a concurrent change
// of the same item sees the item before or after it, never a mix.
// GetWorkItem returns the item of case id, or NotFound. ListWorkItems
// returns the items matching f (never nil), newest case first.
//
// CaseStore.UpdateCase is not bound by these rules: it is the system's path
// (pipeline, import, administration); agents change items through
// ChangeWorkItem.
type Worklist interface {
	GetWorkItem(ctx context.Context, id CaseID) (WorkItem, error)
	ListWorkItems(ctx context.Context, f *WorkItemFilter) ([]WorkItem, error)
	ChangeWorkItem(ctx context.Context, id CaseID, ch *WorkChange) (WorkItem, error)
}

// WorkItemOutbox is an optional interface for stores that keep worklists
// and an Outbox in one database, so that a reply from a work item is
// queued only while its author owns the item: the ownership check and the
// enqueue are one atomic step, and no accept, release or reassign by
// someone else can come between them.
//
// EnqueueAsOwner is Outbox.Enqueue of m (every rule of it applies; m.CaseID
// is id) made only when agent is the Owner of the work item of case id,
// judged in the same transaction (or under the same lock) as the insert:
// a concurrent ChangeWorkItem of the item is ordered wholly before it,
// and then judged, or wholly after it. When m.Key was queued before, it
// returns the ID queued under it and a nil error, whoever owns the item
// now (the reply was accepted when it was queued). Otherwise, when agent
// does not own the item (also when nobody does) nothing is queued and the
// error is PermissionDenied; a missing case is NotFound.
type WorkItemOutbox interface {
	EnqueueAsOwner(ctx context.Context, id CaseID, agent string, m *OutboxMessage) (string, error)
}

// IsOpenStatus reports whether s is an open worklist status (StatusNew or
// StatusOpen).
func (s CaseStatus) IsOpenStatus() bool { return s == StatusNew || s == StatusOpen }

// NextWorkStatus is the status an item with status cur gets when it moves
// to an owner (owned true) or to nobody: the mapping of Worklist's rules,
// shared by drivers. Done and waiting statuses are kept.
func NextWorkStatus(cur CaseStatus, owned bool) CaseStatus {
	switch {
	case owned && cur.IsOpenStatus():
		return StatusInProgress
	case !owned && cur == StatusInProgress:
		return StatusOpen
	}
	return cur
}
