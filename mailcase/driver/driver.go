// Package driver defines the interfaces implemented by case store drivers
// (CRM adapters) and the plain record types they exchange with package
// mailcase. Application code uses *mailcase.Store, which validates and
// normalises arguments, applies defaults, retries, and wraps errors exactly
// once before and after calling a driver. A driver author needs this package
// comment, the per-method docs below and the conformance suite in
// mailcase/drivertest; the runnable example in this package (a map-backed
// store registered under a URL scheme) passes that suite.
//
// # The split: what a driver must write
//
// A driver implements CaseStore, and only CaseStore is required. It is what
// every CRM has and what the pipeline cannot work without: cases and their
// timeline (create, read, thread lookup, append, note, update, link) and the
// pipeline's bookkeeping (the idempotency record of every filed mail, which
// makes at-least-once delivery safe). Everything else is an optional
// interface that mailcase.Store type-asserts, degrading or failing early when
// it is missing:
//
//   - Directory (contacts, accounts, employees: the sender lookup and the
//     placeholder contacts of the unknown-sender policy). A CRM whose cases
//     carry no contact records, or a ticket system addressed by mail alone,
//     leaves it out: mailcase.Store then knows no contacts, accounts or
//     employees; unknown senders get no contact unless the mailbox names a
//     policy, and mailcase.NewPipeline refuses the policies that must
//     create a contact (set Mailbox.UnknownContactID or use UnknownReject). The directory is a separate interface because it is a
//     separate product area in every CRM (Salesforce Contact/Account/User,
//     Dynamics contact/account/systemuser) with its own permissions, and
//     because a company often keeps it elsewhere (LDAP, an ERP) while the
//     cases live in the CRM.
//   - DirectoryWriter (create accounts and employees: seeding and demos).
//   - Records and RecordBatcher (create, update and find accounts,
//     contacts and assets; apply several such actions all-or-nothing).
//   - Lister, Quarantiner, StateStore, Leaser, RawKeeper, EmailUpdater,
//     Outbox, ReferenceFinder, Aser: listing for the CLI, the quarantine of
//     unprocessable mail, source state, worker leases, raw mail for
//     re-parsing, the queue of outgoing mail, the references of filed mails
//     (threads whose first mail was never received), driver-specific types. A CRM driver without an
//     Outbox pairs with a local SQL store that has one (the outbox package
//     takes its own Store).
//   - Queues and Worklist: group queues with members and an owner, and the
//     work item of every case (accept ownership, release, reassign,
//     statuses, open mail); see Worklist for the rules.
//
// CaseStore stays one interface rather than cases plus a "bookkeeping"
// interface because idempotency must be atomic with the filing: the key of
// a mail is recorded in the same transaction as the mail (see Idempotency),
// so one type has to own both. Each optional interface is small and
// complete for its feature: Quarantiner has GetQuarantine so that
// re-processing one item never lists the whole quarantine with its raw bytes.
//
// # Contract
//
// mailcase.Store guarantees, for every call:
//
//   - ctx and pointer arguments are never nil; methods may be called
//     concurrently, from many goroutines.
//   - Message-IDs carry no angle brackets and are normalised by
//     mailcase.NormalizeMessageID; addresses are normalised by
//     mailcase.NormalizeAddress (lower-case, IDNA domain); domains are
//     lower-case ASCII (punycode); names, subjects, note authors and the
//     Queue and Owner of a CaseUpdate hold no control characters and no
//     surrounding space.
//   - Defaults are filled in before the driver sees a request: NewCase.Status
//     is never empty (StatusNew by default), NewCase.Priority is never empty
//     (PriorityNormal), NewCase.Subject is never empty when the first mail
//     has a subject (it defaults to First.Subject), Email.Direction is never
//     empty (Inbound), Interaction.Kind is never empty (KindEmail). A driver
//     stores what it is given and applies no defaults of its own.
//   - Status and Priority values are among the constants of this package.
//
// A driver must:
//
//   - not retry and not wrap errors with fmt.Errorf: it returns raw errors and
//     classifies them with ErrorCode; mailcase.Store retries what is
//     retryable (Unavailable, ResourceExhausted, DeadlineExceeded of its own
//     call timeout) and wraps every error once.
//   - report "not found" as an error for which ErrorCode returns NotFound, for
//     any ID it never issued, whatever its shape ("missing-3f2a" given to a
//     store with integer keys is NotFound, not a syntax error).
//   - classify with ErrorCode(nil) == OK, an error it did not make as Unknown
//     (never OK), and context errors, also wrapped ones
//     (fmt.Errorf("...: %w", context.Canceled)), as Canceled and
//     DeadlineExceeded. A method called with a done context returns an error
//     classified Canceled or DeadlineExceeded.
//   - never alias caller memory: records are copied on the way in and out.
//   - keep every string literally (quotes, SQL, OData and SOQL syntax,
//     Unicode of any length) and attachment data byte for byte.
//
// # Idempotency
//
// Mailbox delivery is at-least-once: a crash between filing and
// acknowledging redelivers the mail. So every Email carries an
// IdempotencyKey, and one key space covers CreateCase, AppendEmail and
// RecordInteraction: a key filed once is filed forever.
//
//   - The driver records the key atomically with the record it files (one
//     transaction, an upsert on an external ID or alternate key, a unique
//     constraint).
//   - CreateCase with a key already filed on a case returns that case and a
//     nil error; with a key filed on no case (RecordInteraction) it returns
//     an error classified AlreadyExists.
//   - AppendEmail and RecordInteraction with a known key do nothing and
//     return nil, even when offered to another case.
//   - Concurrent filings of one key file it once.
//
// Idempotency keys are opaque byte strings. They are not text: the pipeline
// builds them as mailbox + "\x00" + Message-ID, key + "\x00sender" for the
// copy filed on the sender's record, and key + "\x00fp:" + a fingerprint for
// a Message-ID reused by different content, so they contain NUL bytes; a
// driver treats every key as arbitrary bytes. A driver stores them in a
// binary column (bytea, VARBINARY, BLOB), hashes them (SHA-256 as a unique
// index, the key itself in a binary column), or escapes them reversibly
// where a CRM field takes only text (base64, hex); LookupProcessed and
// Lister must return them exactly. A PostgreSQL text column rejects NUL, and
// a driver storing keys there passes no real mail: drivertest uses keys
// shaped like the pipeline's and says so when they fail. Note keys
// (Note.IdempotencyKey) are a separate key space with the same rules.
//
// # Threads and participants
//
//   - Every filed mail's Message-ID, inbound or outbound, leads to its case
//     (LookupThread); IDs a mail only refers to (In-Reply-To, References) do
//     not. When two cases hold the same Message-ID, the first filing wins:
//     later filings never move the Message-ID to another case.
//   - Case.Participants is the case contact's address (when the case has a
//     contact in the Directory that is not a placeholder: a placeholder
//     stands for many senders) plus the From, To and Cc addresses of every
//     mail filed on the case without Email.NoParticipants: normalised,
//     sorted and unique. It is the anti-hijack list of the threading
//     resolvers.
//   - NewCase.Description, when set, is kept as the first note of the case.
//   - ClosedAt is set when a case reaches a closed status and cleared when it
//     is reopened.
//
// The drivertest package checks all of this; mailcase/memstore is the
// reference implementation and a short template to start from.
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

// Case statuses.
const (
	StatusNew        CaseStatus = "new"
	StatusOpen       CaseStatus = "open"
	StatusInProgress CaseStatus = "in_progress"
	// StatusWaiting is waiting on the customer: an agent answered and the
	// next move is the customer's (see Worklist).
	StatusWaiting   CaseStatus = "waiting"
	StatusClosed    CaseStatus = "closed"
	StatusCancelled CaseStatus = "cancelled"
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
	// IdempotencyKey is unique per filed mail: opaque bytes that may
	// contain NUL (the pipeline builds mailbox + "\x00" + Message-ID, and
	// key + "\x00sender" for the sender's copy). Filing twice with the same
	// key must be a no-op. See "Idempotency" in the package comment.
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
	// ParentID is the parent of a sub-case.
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
// mailcase.Store fills the defaults before a driver sees it: Subject is
// First.Subject when empty, Status is StatusNew and Priority PriorityNormal
// when empty.
type NewCase struct {
	Subject string
	// Description, when set, is kept as the first note of the case.
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
	// First is the mail that opened the case (never nil). Its
	// IdempotencyKey is the case's idempotency key: if a case was already
	// created with it, CreateCase must return that case and a nil error.
	First *Email
}

// Note is a free-text entry on a case (an internal comment, a routing
// explanation, a summary).
type Note struct {
	// IdempotencyKey, when set, makes AddNote a no-op on a second call.
	// Like Email.IdempotencyKey it is opaque bytes (its own key space).
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

// Interaction is an activity on a case or on a sender's record (every
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

// CaseStore is the interface every driver implements: cases, their
// timeline and the idempotency record of filed mail. See the package comment
// for the rules every method follows (normalised arguments, filled defaults,
// error classification, idempotency keys as opaque bytes).
type CaseStore interface {
	// CreateCase creates a case from req and files req.First on it,
	// atomically with the first mail's idempotency key, and returns the case
	// as stored (with ID, Number, timestamps and Participants). The case
	// number is a short human token without spaces, unique in the store.
	// req.Status, req.Priority and (when the first mail has a subject)
	// req.Subject are never empty. When req.First.IdempotencyKey is already
	// filed on a case, CreateCase creates nothing and returns that case with
	// a nil error; when it is filed on no case (RecordInteraction), it
	// returns an error classified AlreadyExists. The participants are the
	// contact's address (req.ContactID, when the driver has a Directory;
	// never a placeholder contact's) and the addresses of req.First (none
	// when req.First.NoParticipants), sorted and unique. A non-empty
	// req.Description is kept as the case's first note. A closed req.Status
	// sets ClosedAt.
	CreateCase(ctx context.Context, req *NewCase) (Case, error)
	// GetCase returns a case by ID, or NotFound.
	GetCase(ctx context.Context, id CaseID) (Case, error)
	// FindCaseByNumber returns the case with the human number, or NotFound.
	FindCaseByNumber(ctx context.Context, number string) (Case, error)
	// LookupThread returns the case holding a filed mail (received or sent)
	// whose Message-ID is in ids, preferring the ID that comes last in ids
	// (the most specific reference), or NotFound. Only the Message-IDs of
	// filed mails count, not the IDs they refer to (the optional
	// ReferenceFinder finds those); a Message-ID filed on
	// two cases leads to the case it was filed on first.
	LookupThread(ctx context.Context, ids []string) (Case, error)
	// AppendEmail files e on case id, adds its From, To and Cc addresses to
	// the case's participants (kept sorted and unique; none when
	// e.NoParticipants) and moves UpdatedAt
	// forward. When e.IdempotencyKey was filed before (on this case, another
	// case or no case) it does nothing and returns nil. A missing case is
	// NotFound.
	AppendEmail(ctx context.Context, id CaseID, e *Email) error
	// AddNote adds a note to case id (NotFound if missing). A note whose
	// IdempotencyKey was added before is not added again (nil error); a
	// note without a key is always added.
	AddNote(ctx context.Context, id CaseID, n *Note) error
	// UpdateCase applies the non-nil fields of u and returns the updated
	// case (NotFound if missing). A status change to a closed status sets
	// ClosedAt, to an open one clears it. An empty update changes nothing
	// but may move UpdatedAt.
	UpdateCase(ctx context.Context, id CaseID, u *CaseUpdate) (Case, error)
	// CaseURL returns the address of the case for an agent (a non-empty URL
	// without spaces), or NotFound.
	CaseURL(ctx context.Context, id CaseID) (string, error)

	// RecordInteraction files an interaction that belongs to no case, on the
	// sender's record (contact or account), idempotently by
	// in.Email.IdempotencyKey (in.Email is never nil): a key filed before is
	// a no-op, and a key filed here can never open or join a case.
	RecordInteraction(ctx context.Context, in *Interaction) error
	// LookupProcessed returns the record of an idempotency key already filed
	// by CreateCase, AppendEmail or RecordInteraction (Key exactly as filed,
	// the case or "" for none, the time, the Fingerprint filed with the
	// first filing), or NotFound.
	LookupProcessed(ctx context.Context, key string) (Processed, error)

	// ErrorCode classifies an error returned by the methods of the driver,
	// including its optional interfaces. ErrorCode(nil) is OK; an error the
	// driver did not make is Unknown; context errors, also wrapped ones, are
	// Canceled and DeadlineExceeded.
	ErrorCode(error) ErrorCode
	// Close releases resources. After Close, only ErrorCode is called.
	Close() error
}

// Directory is an optional interface for drivers that know the people and
// organisations mail comes from: contacts, accounts (matched by mail
// domain) and employees. mailcase.Store uses it to match senders and, under
// the placeholder and create-contact unknown-sender policies, to create
// contacts. Without it the Store knows no contacts, accounts or employees
// (lookups find none, CreateContact is Unimplemented); see the package
// comment for why it is separate from CaseStore.
type Directory interface {
	// FindContacts returns every contact whose address is email (possibly
	// none: an empty slice and a nil error). Two contacts may share an
	// address.
	FindContacts(ctx context.Context, email string) ([]Contact, error)
	// FindAccounts returns every account that owns domain (possibly none).
	// Two accounts may share a domain.
	FindAccounts(ctx context.Context, domain string) ([]Account, error)
	// FindEmployee returns the active or inactive employee with address
	// email, or a NotFound error.
	FindEmployee(ctx context.Context, email string) (Employee, error)
	// CreateContact creates a contact and returns it with its ID; it is not
	// idempotent (mailcase.Store never retries it). FindContacts sees the
	// contact at once.
	CreateContact(ctx context.Context, c *NewContact) (Contact, error)
}

// DirectoryWriter is an optional interface for drivers with a Directory that
// can also create accounts and employees (seeding, demos and tests).
// FindAccounts and FindEmployee see the records at once. CreateEmployee of
// an address that already has an employee is AlreadyExists.
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
// bytes intact and its reason.
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
//
// PutQuarantine keeps q (Raw byte for byte; CreatedAt set to now when zero)
// and returns a new ID; it is not idempotent. GetQuarantine returns the item
// with id, Raw included, or NotFound. ListQuarantine returns the items of a
// mailbox ("" for all), oldest first. DeleteQuarantine removes an item; an
// unknown id is NotFound.
type Quarantiner interface {
	PutQuarantine(ctx context.Context, q *QuarantineItem) (string, error)
	GetQuarantine(ctx context.Context, id string) (QuarantineItem, error)
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

// Aser is an optional interface exposing driver-specific types (a driver
// documents them in its package's "# As" section). As and ErrorAs report
// false, and change nothing, for a target type they do not support; they
// never panic. ErrorAs is called with errors the driver returned, possibly
// wrapped by mailcase.Store.
type Aser interface {
	As(i any) bool
	ErrorAs(err error, i any) bool
}

// Leaser is an optional interface for stores that grant named leases with
// an expiry: several workers, in one process or on many machines,
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

// OutboxStatus is the delivery state of an outgoing message.
type OutboxStatus string

// Outbox statuses. Pending and Sending are not final; the others are.
const (
	// OutboxPending waits for its next attempt (NextAttemptAt).
	OutboxPending OutboxStatus = "pending"
	// OutboxSending is claimed by a sender until its lease expires.
	OutboxSending OutboxStatus = "sending"
	// OutboxSent was accepted by the outgoing server.
	OutboxSent OutboxStatus = "sent"
	// OutboxFailed could not be delivered: a permanent refusal, or the last
	// attempt failed.
	OutboxFailed OutboxStatus = "failed"
	// OutboxCancelled was withdrawn before delivery.
	OutboxCancelled OutboxStatus = "cancelled"
	// OutboxBounced was accepted, then bounced back (a delivery status
	// notification naming its Message-ID).
	OutboxBounced OutboxStatus = "bounced"
)

// IsFinal reports whether no more delivery attempt follows.
func (s OutboxStatus) IsFinal() bool {
	return s != OutboxPending && s != OutboxSending
}

// OutboxMessage is a composed outgoing mail and its delivery record.
type OutboxMessage struct {
	// ID is issued by the driver on Enqueue.
	ID string
	// Key makes Enqueue idempotent: opaque bytes (they may contain NUL),
	// one key space for the whole outbox.
	Key string
	// CaseID is the case the mail is about; "" for none.
	CaseID CaseID
	// Mailbox is the mailbox the mail is sent for.
	Mailbox string
	// Kind says why it is sent (for example "acknowledgement",
	// "log-email", "forward", "notification"); free text for the driver.
	Kind string
	// From is the envelope sender and To the envelope recipients (Bcc
	// included), in order; To is never empty.
	From string
	To   []string
	// MessageID is the Message-ID of Raw, without angle brackets,
	// normalised by mailcase.NormalizeMessageID; bounces are matched by it.
	MessageID string
	// Raw is the composed mail, kept byte for byte.
	Raw []byte
	// Status, Attempts (delivery attempts made), NextAttemptAt (when a
	// pending message is due), LastError (the last failure's text),
	// CreatedAt and SentAt (set when it reached OutboxSent) are kept by
	// the driver.
	Status        OutboxStatus
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        time.Time
}

// OutboxResult is the outcome of one delivery attempt of a claimed message.
type OutboxResult struct {
	// Status is OutboxSent, OutboxFailed, or OutboxPending to try again
	// after RetryAfter.
	Status     OutboxStatus
	RetryAfter time.Duration
	// Error is the failure's text ("" when sent); it never holds secrets.
	Error string
}

// OutboxListOptions filters ListOutbox. Zero values mean no filter.
type OutboxListOptions struct {
	Status OutboxStatus
	CaseID CaseID
	// Kind keeps messages of that kind; Recipient those with the address
	// among To (compared exactly with each entry; a message lists a
	// repeated recipient once); Since those created at or after it.
	// Automatic replies count what was sent to an address with them.
	// Since is compared with CreatedAt, which the store's clock set.
	Kind      string
	Recipient string
	Since     time.Time
	// Limit keeps the newest Limit messages; zero or less means all.
	Limit int
}

// Outbox is an optional interface for stores that keep a durable queue of
// outgoing mail. Several senders, in one process or on many machines, share
// it without sending a message twice: a message is claimed with a lease
// measured by the store's clock, and only the claim's holder records its
// result.
//
//   - Enqueue keeps m (Raw byte for byte, To in order) as OutboxPending,
//     due at once unless m.NextAttemptAt is later (a zero or past
//     NextAttemptAt is due now), with Attempts 0 and CreatedAt now by the
//     store's clock, and returns its new ID. m.Key is never empty; an
//     Enqueue with a key already queued keeps nothing and returns the ID of
//     the message queued under it, with a nil error.
//   - ClaimOutbox claims up to limit messages that are due: OutboxPending
//     with NextAttemptAt not after now, or OutboxSending whose claim
//     expired (its sender died). Each is set to OutboxSending, held by
//     holder until now + ttl, its Attempts incremented, and returned
//     oldest due first. Two concurrent claims never return the same
//     message.
//   - FinishOutbox records r for message id claimed by holder: OutboxSent
//     sets SentAt; OutboxPending makes it due again after r.RetryAfter;
//     OutboxFailed is final. LastError is set to r.Error. When holder no
//     longer holds the claim (its lease expired, whether or not another
//     sender claimed the message since) or the message is not
//     OutboxSending, nothing changes and the error is classified
//     FailedPrecondition; an unknown id is NotFound.
//   - SetOutboxStatus sets a message's status outside a claim:
//     OutboxPending (retry now: due at once, Attempts back to 0 so the
//     retry gets every attempt again, LastError kept) from
//     OutboxPending, OutboxFailed, OutboxCancelled or OutboxBounced;
//     OutboxCancelled from OutboxPending; OutboxBounced, with reason as
//     LastError, from OutboxSent or OutboxBounced. From any other status it
//     changes nothing and the error is classified FailedPrecondition; any
//     other target status is InvalidArgument; an unknown id is NotFound.
//   - GetOutbox returns a message with Raw, or NotFound. FindOutbox returns
//     the message with that MessageID (the first queued when several), or
//     NotFound. ListOutbox returns messages without Raw, newest first
//     (in the order they were queued, the last queued first, however
//     close their CreatedAt), filtered by opts (never nil).
type Outbox interface {
	Enqueue(ctx context.Context, m *OutboxMessage) (string, error)
	ClaimOutbox(ctx context.Context, holder string, limit int, ttl time.Duration) ([]OutboxMessage, error)
	FinishOutbox(ctx context.Context, id, holder string, r *OutboxResult) error
	SetOutboxStatus(ctx context.Context, id string, status OutboxStatus, reason string) error
	GetOutbox(ctx context.Context, id string) (OutboxMessage, error)
	FindOutbox(ctx context.Context, messageID string) (OutboxMessage, error)
	ListOutbox(ctx context.Context, opts *OutboxListOptions) ([]OutboxMessage, error)
}

// OutboxFiler is an optional interface for stores that keep cases and an
// Outbox in one database and can queue outgoing mail in the transaction
// that creates a case, so that a crash never leaves a new case without the
// acknowledgement it was due, nor an acknowledgement of a case that was
// never filed. A store without it (a CRM paired with a local outbox) gets
// the answer queued right after the filing, idempotently by key, and a
// crash between the two loses the answer, never the case.
//
// CreateCaseQueue is CreateCase (every rule of CreateCase applies) that,
// when it creates the case, calls then once with the case as it will be
// returned (ID, Number, Participants set) inside the same transaction, and
// enqueues each message then returns exactly as Outbox.Enqueue would
// (idempotent by Key; a nil message is skipped), in that transaction. It
// returns the IDs of the queued messages in order. When the first mail's
// key was filed before, nothing is created, then is not called and no ID is
// returned (the answer was queued with the first filing). When then returns
// an error, nothing is filed: no case, no key, no message, and that error
// is returned as it is. then never calls the store (it may run while the
// store holds a lock, and more than once when a transaction is retried: it
// must compute its messages from the case alone).
type OutboxFiler interface {
	CreateCaseQueue(ctx context.Context, req *NewCase, then func(Case) ([]*OutboxMessage, error)) (Case, []string, error)
}
