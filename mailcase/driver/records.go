package driver

import (
	"context"
	"strconv"
)

// RecordKind names a kind of record kept by a Records driver.
type RecordKind string

// Record kinds.
const (
	// RecordAccount is an organisation (the Directory's Account): Name
	// and Domains.
	RecordAccount RecordKind = "account"
	// RecordContact is a person (the Directory's Contact): Name, Email,
	// AccountID and Fields.
	RecordContact RecordKind = "contact"
	// RecordAsset is a thing a customer owns (a device, a licence): Name,
	// Serial, AccountID, ContactID and Fields.
	RecordAsset RecordKind = "asset"
)

// Valid reports whether k is one of the record kinds.
func (k RecordKind) Valid() bool {
	return k == RecordAccount || k == RecordContact || k == RecordAsset
}

// Record is an account, a contact or an asset. Kind says which, and only
// the fields of that kind are set (mailcase.Store refuses the others):
//
//   - account: Name (never empty) and Domains (normalised, unique, in the
//     order given);
//   - contact: Name, Email (never empty, normalised), AccountID, Fields;
//   - asset: Name (never empty), Serial, AccountID, ContactID, Fields.
//
// Fields are free-form name/value pairs; names are non-empty one-line
// text, values are kept literally. A record read back has Fields nil or
// empty when it has none (both mean none).
type Record struct {
	Kind      RecordKind        `json:"kind"`
	ID        string            `json:"id"`
	Name      string            `json:"name,omitempty"`
	Domains   []string          `json:"domains,omitempty"`
	Email     string            `json:"email,omitempty"`
	Serial    string            `json:"serial,omitempty"`
	AccountID string            `json:"account_id,omitempty"`
	ContactID string            `json:"contact_id,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
}

// RecordUpdate changes the record of Kind with ID. Nil fields are left
// alone; a non-nil field replaces the stored value (Domains replaces the
// whole list; a pointer to "" clears AccountID, ContactID or Serial).
// Fields is merged: each name in it is set to its value, a name with the
// value "" is removed, names not in it are left alone; a nil or empty
// Fields changes none. Only the fields of Kind are set (see Record).
type RecordUpdate struct {
	Kind      RecordKind
	ID        string
	Name      *string
	Domains   *[]string
	Email     *string
	Serial    *string
	AccountID *string
	ContactID *string
	Fields    map[string]string
}

// RecordKey names one record: by ID, or by a natural key of its kind.
// Exactly one of ID, Name, Domain, Email and Serial is set (mailcase.Store
// validates it), and it fits Kind: Name and Domain name accounts, Email
// contacts, Serial assets (with AccountID, the account the serial is
// unique in; "" for assets of no account).
type RecordKey struct {
	Kind      RecordKind
	ID        string
	Name      string
	Domain    string
	Email     string
	Serial    string
	AccountID string
}

// Records is an optional interface for drivers that can create, update
// and read accounts, contacts and assets (structured mail that maintains
// CRM records, imports). A driver implementing Records also implements
// Directory, and they are the same records: a contact or an account
// created here is found at once by FindContacts and FindAccounts (as a
// contact neither placeholder nor internal, an account without support
// level), and a contact or account created through the Directory or the
// DirectoryWriter is found here (without Fields).
//
// mailcase.Store normalises what a driver sees exactly as for the
// Directory: addresses by mailcase.NormalizeAddress, domains by
// mailcase.NormalizeDomain (lower-case ASCII, punycode), names, serials
// and field names without control characters or surrounding space; the
// kind is valid and only its fields are set. The rules:
//
//   - CreateRecord creates r (r.ID is ignored) and returns it as stored,
//     with a new ID unique among all records of the store (an account, a
//     contact and an asset never share an ID). key, when not "", makes it
//     idempotent: a key used by an earlier CreateRecord of the same kind
//     creates nothing and returns that record as it is now, with a nil
//     error; a key used for another kind is AlreadyExists. Keys are opaque
//     bytes (they may contain NUL), one key space for all records, apart
//     from the mail and note keys. key "" always creates.
//   - References must exist: an AccountID naming no account or a
//     ContactID naming no contact is NotFound, and nothing is created or
//     changed.
//   - An asset's Serial, when not empty, is unique within its AccountID
//     ("" is one scope, the assets of no account): creating, or updating
//     to, a serial another asset of that account holds is AlreadyExists.
//     Assets without a serial never conflict. Account names, domains and
//     contact addresses are not unique (two accounts may claim a domain,
//     as the Directory allows).
//   - UpdateRecord applies u (see RecordUpdate) and returns the record as
//     stored; an ID of that kind the store never issued is NotFound. An
//     update that sets nothing changes nothing. A contact's new Email is
//     what FindContacts finds it by from then on; the participants of its
//     cases do not change.
//   - FindRecord returns the record named by k, or NotFound. Natural keys
//     that several records share (an account name or domain, a contact
//     address) find the one created first.
type Records interface {
	CreateRecord(ctx context.Context, r *Record, key string) (Record, error)
	UpdateRecord(ctx context.Context, u *RecordUpdate) (Record, error)
	FindRecord(ctx context.Context, k *RecordKey) (Record, error)
}

// RecordAction is one action of a batch: exactly one of Create and Update
// is set. Key is the idempotency key of a Create (see
// Records.CreateRecord). AccountRef and ContactRef, when positive, are the
// 1-based positions of earlier actions of the batch whose record is, at
// application time, the AccountID and ContactID of this action (for a
// Create: of the new record; for an Update: the values it sets), so that
// one batch can create an account and the contacts and assets that belong
// to it. A reference to a later action, to itself or to a record of the
// wrong kind is InvalidArgument (mailcase.Store checks it).
type RecordAction struct {
	Create     *Record
	Key        string
	Update     *RecordUpdate
	AccountRef int
	ContactRef int
}

// Resolve returns a copy of a whose AccountRef and ContactRef are
// replaced by the IDs of the records applied so far (applied[i] is the
// record of action i+1): the AccountID and ContactID of Create, or of
// Update as values to set. A reference outside applied is left alone.
func (a RecordAction) Resolve(applied []Record) RecordAction {
	ref := func(n int) (string, bool) {
		if n <= 0 || n > len(applied) {
			return "", false
		}
		return applied[n-1].ID, true
	}
	acc, okA := ref(a.AccountRef)
	con, okC := ref(a.ContactRef)
	if okA {
		a.AccountRef = 0
	}
	if okC {
		a.ContactRef = 0
	}
	switch {
	case !okA && !okC:
	case a.Create != nil:
		c := *a.Create
		if okA {
			c.AccountID = acc
		}
		if okC {
			c.ContactID = con
		}
		a.Create = &c
	case a.Update != nil:
		u := *a.Update
		if okA {
			u.AccountID = &acc
		}
		if okC {
			u.ContactID = &con
		}
		a.Update = &u
	}
	return a
}

// RecordActionError reports which action of a batch failed. Err is the
// action's error, classified by the driver's ErrorCode like any other (a
// driver's ErrorCode looks through the wrapper with errors.As).
type RecordActionError struct {
	// Index is the 0-based position of the failing action.
	Index int
	Err   error
}

func (e *RecordActionError) Error() string {
	return "record action " + strconv.Itoa(e.Index+1) + ": " + e.Err.Error()
}

func (e *RecordActionError) Unwrap() error { return e.Err }

// RecordBatcher is an optional interface for Records drivers that can
// apply several record actions all-or-nothing (one transaction).
//
// ApplyRecords applies acts in order, every rule of Records applying to
// each, later actions seeing the effects of earlier ones, and returns one
// record per action, as stored after it. When an action fails, nothing of
// the batch is applied (no record created or changed, no key used) and
// the error is a *RecordActionError naming it. Concurrent batches are
// serialisable: none sees part of another. An empty batch does nothing.
//
// mailcase.Store applies batches for drivers without RecordBatcher one
// action at a time, reporting the applied prefix on failure.
type RecordBatcher interface {
	ApplyRecords(ctx context.Context, acts []RecordAction) ([]Record, error)
}
