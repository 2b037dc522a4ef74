// Package driver defines the interface implemented by case store drivers
// (CRM adapters) and the plain record types they exchange with package
// mailcase. Application code uses *mailcase.Store, which validates and
// normalises arguments, retries, and wraps errors exactly once before and
// after calling a driver.
//
// # Contract
//
// mailcase.Store guarantees that ctx and pointer arguments are never nil,
// that Message-IDs carry no angle brackets and are normalised by
// mailcase.NormalizeMessageID, that addresses are normalised by
// mailcase.NormalizeAddress (lower-case, IDNA domain) and that domains are
// lower-case ASCII (punycode). Methods may be called concurrently.
//
// Drivers must not retry and must not wrap errors with fmt.Errorf: they return
// raw errors and classify them with ErrorCode. "Not found" is an error for
// which ErrorCode returns NotFound.
//
// Idempotency is part of the contract because mailbox delivery is
// at-least-once (a crash between filing and acknowledging redelivers the
// mail). Every Email and Interaction carries an IdempotencyKey; a driver must
// record the key atomically with the record it files and must make a second
// filing with the same key a no-op (CreateCase returns the case the key
// already created). The drivertest package checks all of this.
package driver

import (
	"context"
	"strconv"
	"time"
)

// ErrorCode classifies errors. Callers branch on codes, never on messages.
type ErrorCode int

// Error codes, modelled on gRPC's and the Go CDK's.
const (
	OK                 ErrorCode = iota // not an error
	Unknown                             // unclassified
	NotFound                            // the record does not exist
	AlreadyExists                       // a record with that key exists
	InvalidArgument                     // the request can never succeed as given
	FailedPrecondition                  // the system is not in a state to do it (closed case, ...)
	PermissionDenied                    // authentication or authorisation failed
	ResourceExhausted                   // quota or API limit; retry later
	Unavailable                         // transient: network, server down, deadlock; retry
	Unimplemented                       // the driver cannot do this
	Canceled                            // the context was cancelled
	DeadlineExceeded                    // the context deadline passed
	Internal                            // a bug or a broken invariant
)

var codeNames = [...]string{"OK", "Unknown", "NotFound", "AlreadyExists", "InvalidArgument",
	"FailedPrecondition", "PermissionDenied", "ResourceExhausted", "Unavailable",
	"Unimplemented", "Canceled", "DeadlineExceeded", "Internal"}

func (c ErrorCode) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// CaseID is a store's identifier of a case (a CRM record ID).
type CaseID string

// CaseStatus is the lifecycle state of a case. It crosses the wire (CRM
// picklists, XML), so it is a string.
type CaseStatus string

// Case statuses (M-9.1).
const (
	StatusNew        CaseStatus = "new"
	StatusOpen       CaseStatus = "open"
	StatusInProgress CaseStatus = "in_progress"
	StatusClosed     CaseStatus = "closed"
	StatusCancelled  CaseStatus = "cancelled"
)

// IsClosed reports whether s is a terminal status (closed or cancelled).
func (s CaseStatus) IsClosed() bool { return s == StatusClosed || s == StatusCancelled }

// Priority of a case.
type Priority string

// Priorities.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Address is a mailbox address as stored: Email is normalised (see the
// package comment); Name is the display name, possibly empty.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Contact is a person known to the CRM.
type Contact struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email"`
	AccountID string `json:"account_id,omitempty"`
	// Placeholder marks a record created by the unknown-sender policy.
	Placeholder bool `json:"placeholder,omitempty"`
	// Internal marks a worker record created for an internal mailbox.
	Internal bool `json:"internal,omitempty"`
	// SupportLevel is free text used by routing hooks (for example "gold").
	SupportLevel string `json:"support_level,omitempty"`
}

// Account is an organisation, matched by its mail domains.
type Account struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Domains      []string `json:"domains,omitempty"`
	SupportLevel string   `json:"support_level,omitempty"`
}

// Employee is an agent or other worker of the company running the store.
type Employee struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email"`
	Active bool   `json:"active"`
}

// NewContact is the request to create a contact.
type NewContact struct {
	Name        string
	Email       string
	AccountID   string
	Placeholder bool
	Internal    bool
	// SupportLevel is copied to Contact.SupportLevel.
	SupportLevel string
}

// NewAccount is the request to create an account (see DirectoryWriter).
type NewAccount struct {
	Name         string
	Domains      []string // normalised domains
	SupportLevel string
}

// NewEmployee is the request to create an employee (see DirectoryWriter).
type NewEmployee struct {
	Name   string
	Email  string // normalised address
	Active bool
}

// Attachment is a file carried by an email.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline"`
	Size        int64  `json:"size"`
	Data        []byte `json:"-"`
}

// Direction of an email relative to the support mailbox.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// Email is one mail as filed on a case or on a sender's record.
type Email struct {
	// IdempotencyKey is unique per filed mail (mailbox + Message-ID, or a hash
	// of the raw bytes). Filing twice with the same key must be a no-op.
	IdempotencyKey string
	Mailbox        string
	Direction      Direction
	MessageID      string
	InReplyTo      []string
	References     []string
	From           Address
	To             []Address
	Cc             []Address
	Subject        string
	Date           time.Time
	Text           string
	ReplyText      string
	HTML           string
	Attachments    []Attachment
	// Auto marks automatic mail (auto-replies, bounces, lists).
	Auto bool
	// Summary is set when only a summary is filed (exception mail).
	Summary bool
	// NoParticipants says the mail's addresses (From, To, Cc) do not join
	// the case's participants: the pipeline sets it for mail whose sender
	// the anti-hijack rule did not accept for the case, and for mail from
	// the unknown-sender placeholder's address.
	NoParticipants bool `json:"no_participants,omitempty"`
	// Fingerprint identifies the mail's content (mailcase.ContentFingerprint;
	// "" when unknown). A driver stores it with the idempotency key and
	// returns it in Processed.
	Fingerprint string
	// Problems are the soft parse problems of the mail, one line each
	// ("Name: detail"); stores that cannot keep them ignore them.
	Problems []string
	// Raw is the original mail, handed over on filing. It is not part of
	// the filed record: a driver that implements RawKeeper keeps it apart
	// (see RawKeeper), others ignore it; records read back have Raw nil.
	Raw []byte `json:"-"`
}

// Case is a support case.
type Case struct {
	ID        CaseID     `json:"id"`
	Number    string     `json:"number"`
	Subject   string     `json:"subject"`
	Status    CaseStatus `json:"status"`
	Priority  Priority   `json:"priority,omitempty"`
	Queue     string     `json:"queue,omitempty"`
	Owner     string     `json:"owner,omitempty"`
	Origin    string     `json:"origin,omitempty"`
	Category  string     `json:"category,omitempty"`
	ContactID string     `json:"contact_id,omitempty"`
	AccountID string     `json:"account_id,omitempty"`
	// ParentID is the parent of a sub-case (M-4.7).
	ParentID CaseID `json:"parent_id,omitempty"`
	// LinkedID is an earlier case this one continues (a reply to a closed case
	// under the "new linked case" policy).
	LinkedID CaseID `json:"linked_id,omitempty"`
	// Participants holds the normalised addresses that sent or received mail
	// filed on the case (From, To and Cc of every filed Email without
	// NoParticipants), plus the contact's address unless the contact is a
	// placeholder (anti-hijack: a placeholder stands for many senders).
	Participants []string  `json:"participants,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
}

// NewCase is the request to create a case whose first activity is First.
type NewCase struct {
	Subject     string
	Description string
	Status      CaseStatus
	Priority    Priority
	Queue       string
	Origin      string
	Category    string
	ContactID   string
	AccountID   string
	ParentID    CaseID
	LinkedID    CaseID
	// First is the mail that opened the case. Its IdempotencyKey is the
	// case's idempotency key: if a case was already created with it,
	// CreateCase must return that case and a nil error.
	First *Email
}

// Note is a free-text entry on a case (an internal comment, a routing
// explanation, a summary).
type Note struct {
	// IdempotencyKey, when set, makes AddNote a no-op on a second call.
	IdempotencyKey string
	Author         string
	Body           string
	// Public notes are visible to the customer in CRMs that distinguish.
	Public    bool
	CreatedAt time.Time
}

// CaseUpdate changes fields of a case; nil fields are left alone.
type CaseUpdate struct {
	Status   *CaseStatus
	Priority *Priority
	Queue    *string
	Owner    *string
}

// InteractionKind says what an Interaction records.
type InteractionKind string

// Interaction kinds.
const (
	KindEmail InteractionKind = "email"
	KindNote  InteractionKind = "note"
)

// Interaction is an activity on a case or on a sender's record (M-6.7: every
// mail is saved on the sender's record, whether or not it is tied to a case).
type Interaction struct {
	ID        string          `json:"id"`
	Kind      InteractionKind `json:"kind"`
	CaseID    CaseID          `json:"case_id,omitempty"`
	ContactID string          `json:"contact_id,omitempty"`
	AccountID string          `json:"account_id,omitempty"`
	Email     *Email          `json:"-"`
	Note      *Note           `json:"-"`
	CreatedAt time.Time       `json:"created_at"`
}

// Processed is what a store remembers of a filed idempotency key.
type Processed struct {
	Key    string
	CaseID CaseID // empty when the mail was filed on no case
	At     time.Time
	// Fingerprint is the Email.Fingerprint filed with the key; "" for a
	// key filed without one (before the store kept fingerprints).
	Fingerprint string
}

// CaseStore is implemented by CRM adapters. See the package comment for the
// contract every method follows.
type CaseStore interface {
	// FindContacts returns every contact whose address is email (possibly
	// none: an empty slice and a nil error).
	FindContacts(ctx context.Context, email string) ([]Contact, error)
	// FindAccounts returns every account that owns domain.
	FindAccounts(ctx context.Context, domain string) ([]Account, error)
	// FindEmployee returns the active or inactive employee with address
	// email, or a NotFound error.
	FindEmployee(ctx context.Context, email string) (Employee, error)
	// CreateContact creates a contact and returns it with its ID.
	CreateContact(ctx context.Context, c *NewContact) (Contact, error)

	// CreateCase creates a case and files req.First on it, atomically with
	// the first mail's idempotency key (see NewCase.First). The case's
	// participants are req.First's addresses (unless NoParticipants) and
	// the contact's address, unless the contact is a placeholder.
	CreateCase(ctx context.Context, req *NewCase) (Case, error)
	// GetCase returns a case by ID, or NotFound.
	GetCase(ctx context.Context, id CaseID) (Case, error)
	// FindCaseByNumber returns the case with the human number, or NotFound.
	FindCaseByNumber(ctx context.Context, number string) (Case, error)
	// LookupThread returns the case holding a mail whose Message-ID is in
	// ids (received or sent), preferring the ID that comes last in ids, or
	// NotFound.
	LookupThread(ctx context.Context, ids []string) (Case, error)
	// AppendEmail files e on case id and adds its addresses to the case's
	// participants (none when e.NoParticipants). A second call with the
	// same e.IdempotencyKey is a no-op.
	// A missing case is NotFound.
	AppendEmail(ctx context.Context, id CaseID, e *Email) error
	// AddNote adds a note to case id (NotFound if missing).
	AddNote(ctx context.Context, id CaseID, n *Note) error
	// UpdateCase applies u and returns the updated case (NotFound if missing).
	UpdateCase(ctx context.Context, id CaseID, u *CaseUpdate) (Case, error)
	// CaseURL returns the address of the case for an agent.
	CaseURL(ctx context.Context, id CaseID) (string, error)

	// RecordInteraction files an interaction that belongs to no case, on the
	// sender's record (contact or account), idempotently by
	// in.Email.IdempotencyKey.
	RecordInteraction(ctx context.Context, in *Interaction) error
	// LookupProcessed returns the record of an idempotency key already filed,
	// or NotFound.
	LookupProcessed(ctx context.Context, key string) (Processed, error)

	// ErrorCode classifies an error returned by the methods above.
	ErrorCode(error) ErrorCode
	// Close releases resources. After Close, only ErrorCode is called.
	Close() error
}

// DirectoryWriter is an optional interface for stores that can create
// accounts and employees (seeding, demos and tests; contacts are created with
// CaseStore.CreateContact). FindAccounts and FindEmployee see the records
// at once.
type DirectoryWriter interface {
	CreateAccount(ctx context.Context, a *NewAccount) (Account, error)
	CreateEmployee(ctx context.Context, e *NewEmployee) (Employee, error)
}

// Lister is an optional interface for stores that can list what they hold
// (used by `mailcase cases` and tests). ListCases returns the newest case
// first (reverse creation order), filtered by opts.Status and opts.Queue
// when set, at most opts.Limit cases when it is positive. ListInteractions
// returns the interactions filed on a case (mails and notes), oldest first;
// a missing case is NotFound.
type Lister interface {
	ListCases(ctx context.Context, opts *ListOptions) ([]Case, error)
	ListInteractions(ctx context.Context, id CaseID) ([]Interaction, error)
}

// ListOptions bounds ListCases. Zero values mean no bound.
type ListOptions struct {
	Limit  int
	Status CaseStatus
	Queue  string
}

// QuarantineItem is a mail that could not be processed, kept with its raw
// bytes intact and its reason (M-1.9).
type QuarantineItem struct {
	ID        string
	Mailbox   string
	Key       string // idempotency key when one could be computed
	Reason    string
	Attempts  int
	Raw       []byte
	CreatedAt time.Time
}

// Quarantiner is an optional interface for stores that keep quarantined mail.
type Quarantiner interface {
	PutQuarantine(ctx context.Context, q *QuarantineItem) (string, error)
	ListQuarantine(ctx context.Context, mailbox string) ([]QuarantineItem, error)
	DeleteQuarantine(ctx context.Context, id string) error
}

// StateStore is an optional interface for stores that persist small pieces
// of source state (IMAP UIDVALIDITY and last UID, POP3 seen-sets) so that a
// restarted worker resumes where the last one committed.
type StateStore interface {
	GetState(ctx context.Context, key string) ([]byte, error) // NotFound if unset
	PutState(ctx context.Context, key string, value []byte) error
}

// Aser is an optional interface exposing driver-specific types.
type Aser interface {
	As(i any) bool
	ErrorAs(err error, i any) bool
}

// Leaser is an optional interface for stores that grant named leases with
// an expiry (M-10.1): several workers, in one process or on many machines,
// coordinate through the store's database instead of a home-made protocol.
// A lease is held by at most one holder at a time until it expires; a
// holder that dies stops renewing and another takes over after the TTL.
// Times are measured by the store (the database clock), never by callers.
//
// AcquireLease grants name to holder for ttl when it is free, expired or
// already held by holder (then it is extended), and reports whether it was
// granted. RenewLease extends a lease holder still holds, and reports false
// when the lease was lost (expired and taken, or released). ReleaseLease
// gives a lease up; releasing a lease not held is not an error.
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// RawKeeper is an optional interface for stores that keep the original raw
// mail of every filed mail, so that a mail can be parsed again after a
// parser fix (`mailcase reparse`). Raw mails are keyed by the idempotency
// key of the Email they were filed with. The rules:
//
//   - Filing keeps Raw. When CreateCase, AppendEmail or RecordInteraction
//     files an Email whose Raw is not empty, the driver keeps Raw under the
//     Email's IdempotencyKey in the same transaction as the filing where it
//     can, otherwise with PutRaw right after it.
//   - Once per mail. A filing that is a no-op (the key was filed before, a
//     duplicate or a redelivery) never writes the raw mail again, and PutRaw
//     for a key whose raw mail is kept is a no-op returning nil: the first
//     bytes kept for a key are the ones kept, never replaced.
//   - Exact bytes. GetRaw returns exactly the bytes kept (a driver may
//     compress them, transparently), or a NotFound error when none are kept
//     for key (the store does not keep raw mail, or the mail was filed
//     before it did).
//   - RawKeys lists the keys that have a raw mail, in the order they were
//     kept, at most limit of them (limit <= 0 means all), starting after the
//     key after ("" starts at the first; an unknown after is NotFound).
type RawKeeper interface {
	PutRaw(ctx context.Context, key string, raw []byte) error
	GetRaw(ctx context.Context, key string) ([]byte, error)
	RawKeys(ctx context.Context, after string, limit int) ([]string, error)
}

// ParsedContent is what parsing produced for a filed mail: the fields that
// EmailUpdater.UpdateParsed replaces.
type ParsedContent struct {
	Subject     string
	Text        string
	ReplyText   string
	HTML        string
	Attachments []Attachment
	Problems    []string
}

// EmailUpdater is an optional interface for stores that can read a filed
// mail by its idempotency key and replace its parsed content (used by
// `mailcase reparse` after a parser fix).
//
// A driver implementing EmailUpdater keeps Email.Problems of the mails it
// files. GetEmail returns the Email filed under key (Raw nil, attachments
// with their data), or NotFound.
// UpdateParsed replaces the Subject, Text, ReplyText, HTML, Attachments and
// Problems of the Email filed under key with c, atomically, and leaves
// everything else alone: the case, its subject and participants, the
// Message-IDs, the addresses and the idempotency record do not change. A
// key never filed is NotFound. Calling it twice with the same content is
// harmless (the second call changes nothing).
type EmailUpdater interface {
	GetEmail(ctx context.Context, key string) (Email, error)
	UpdateParsed(ctx context.Context, key string, c *ParsedContent) error
}
