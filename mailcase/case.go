package mailcase

import "github.com/emailcrm/emailcrm/mailcase/driver"

// Record types shared with drivers. They are plain data, so mailcase uses the
// driver definitions directly instead of keeping a second copy in step.
type (
	CaseID          = driver.CaseID
	CaseStatus      = driver.CaseStatus
	Priority        = driver.Priority
	Case            = driver.Case
	NewCase         = driver.NewCase
	Contact         = driver.Contact
	NewContact      = driver.NewContact
	Account         = driver.Account
	Employee        = driver.Employee
	Email           = driver.Email
	Note            = driver.Note
	CaseUpdate      = driver.CaseUpdate
	Interaction     = driver.Interaction
	InteractionKind = driver.InteractionKind
	Direction       = driver.Direction
	Processed       = driver.Processed
	QuarantineItem  = driver.QuarantineItem
	ListOptions     = driver.ListOptions
)

// Case statuses, priorities, directions and interaction kinds.
const (
	StatusNew        = driver.StatusNew
	StatusOpen       = driver.StatusOpen
	StatusInProgress = driver.StatusInProgress
	StatusWaiting    = driver.StatusWaiting
	StatusClosed     = driver.StatusClosed
	StatusCancelled  = driver.StatusCancelled

	PriorityLow    = driver.PriorityLow
	PriorityNormal = driver.PriorityNormal
	PriorityHigh   = driver.PriorityHigh
	PriorityUrgent = driver.PriorityUrgent

	Inbound  = driver.Inbound
	Outbound = driver.Outbound

	KindEmail = driver.KindEmail
	KindNote  = driver.KindNote
)

// Queue is a group queue (worklist). Mail is always routed to a queue, never
// to a person; an agent takes ownership later.
type Queue struct {
	Name  string `json:"name" yaml:"name"`
	Owner string `json:"owner,omitempty" yaml:"owner,omitempty"`
	// Address is the queue's notification address.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
}
