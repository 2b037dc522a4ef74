package mailcase

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Records beyond cases: accounts, contacts and assets (see driver.Records).
type (
	RecordKind        = driver.RecordKind
	Record            = driver.Record
	RecordUpdate      = driver.RecordUpdate
	RecordKey         = driver.RecordKey
	RecordAction      = driver.RecordAction
	RecordActionError = driver.RecordActionError
)

// Record kinds.
const (
	RecordAccount = driver.RecordAccount
	RecordContact = driver.RecordContact
	RecordAsset   = driver.RecordAsset
)

var errNoRecords = errors.New("the store keeps no account, contact or asset records")

// HasRecords reports whether the driver can create, update and find
// accounts, contacts and assets (driver.Records). Without it CreateRecord,
// UpdateRecord, FindRecord and ApplyRecords are Unimplemented.
func (s *Store) HasRecords() bool {
	_, ok := s.d.(driver.Records)
	return ok
}

// CanBatchRecords reports whether the driver applies record batches
// all-or-nothing (driver.RecordBatcher); without it ApplyRecords applies
// them one action at a time.
func (s *Store) CanBatchRecords() bool {
	_, ok := s.d.(driver.RecordBatcher)
	return ok && s.HasRecords()
}

func (s *Store) records(op string) (driver.Records, error) {
	rs, ok := s.d.(driver.Records)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op, Err: errNoRecords}
	}
	return rs, nil
}

// CreateRecord creates an account, a contact or an asset and returns it
// with its ID. The record is normalised first (addresses, domains, names;
// see driver.Records) and must have the required fields of its kind and no
// field of another kind, else the error is InvalidArgument. key, when not
// "", makes the creation idempotent (the record created with it before is
// returned) and the call is then retried on transient failures; without a
// key it is not retried (a lost reply could create two).
func (s *Store) CreateRecord(ctx context.Context, r *Record, key string) (Record, error) {
	const op = "CreateRecord"
	rs, err := s.records(op)
	if err != nil {
		return Record{}, err
	}
	n, err := normRecord(op, r)
	if err != nil {
		return Record{}, err
	}
	var out Record
	err = s.do(ctx, op, key != "", func(ctx context.Context) (err error) {
		out, err = rs.CreateRecord(ctx, n, key)
		return err
	})
	return out, err
}

// UpdateRecord applies u (nil fields are left alone, Fields is merged; see
// driver.RecordUpdate) and returns the record as stored. A missing record
// is NotFound. An update sets values, so it is retried on transient
// failures.
func (s *Store) UpdateRecord(ctx context.Context, u *RecordUpdate) (Record, error) {
	const op = "UpdateRecord"
	rs, err := s.records(op)
	if err != nil {
		return Record{}, err
	}
	n, err := normUpdate(op, u)
	if err != nil {
		return Record{}, err
	}
	var out Record
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = rs.UpdateRecord(ctx, n)
		return err
	})
	return out, err
}

// FindRecord returns the record named by k: by ID, or by a natural key
// (an account by name or domain, a contact by address, an asset by serial
// within an account). ok is false when there is none. The natural key is
// normalised like the records are.
func (s *Store) FindRecord(ctx context.Context, k *RecordKey) (r Record, ok bool, err error) {
	const op = "FindRecord"
	rs, err := s.records(op)
	if err != nil {
		return Record{}, false, err
	}
	n, err := normKey(op, k)
	if err != nil {
		return Record{}, false, err
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		r, err = rs.FindRecord(ctx, n)
		return err
	})
	ok, err = notFound(err)
	return r, ok, err
}

// RecordBatchResult is the outcome of ApplyRecords.
type RecordBatchResult struct {
	// Records holds the record of every applied action, in order: all of
	// them on success; on failure, the actions applied before the failing
	// one (none when Atomic).
	Records []Record
	// Atomic is true when the driver applied the batch all-or-nothing
	// (driver.RecordBatcher): a failure then left nothing of it.
	Atomic bool
}

// ApplyRecords applies acts in order, later actions seeing the records of
// earlier ones (AccountRef and ContactRef name them; see
// driver.RecordAction). Every action is normalised and checked before any
// is applied, so an invalid batch changes nothing and is InvalidArgument.
//
// When the driver is a driver.RecordBatcher the batch is applied
// all-or-nothing (one transaction). Otherwise the actions are applied one
// at a time and a failure leaves the earlier ones applied: the result's
// Records is that applied prefix. Either way a failure's error has the
// failing action's code, and errors.As finds a *RecordActionError whose
// Index names the action. A batch is retried on transient failures
// (Unavailable: a lost connection, a deadlock the database broke) only when
// every creation in it has a key, so that a replay creates nothing twice;
// callers of a batch without keys retry it themselves.
func (s *Store) ApplyRecords(ctx context.Context, acts []RecordAction) (RecordBatchResult, error) {
	const op = "ApplyRecords"
	rs, err := s.records(op)
	if err != nil {
		return RecordBatchResult{}, err
	}
	norm := make([]RecordAction, len(acts))
	retry := true
	for i, a := range acts {
		n, err := normAction(op, acts, i, a)
		if err != nil {
			return RecordBatchResult{}, err
		}
		if n.Create != nil && n.Key == "" {
			retry = false
		}
		norm[i] = n
	}
	if len(norm) == 0 {
		return RecordBatchResult{Records: []Record{}, Atomic: s.CanBatchRecords()}, nil
	}
	if rb, ok := s.d.(driver.RecordBatcher); ok {
		var out []Record
		failed := -1
		err := s.do(ctx, op, retry, func(ctx context.Context) (err error) {
			out, err = rb.ApplyRecords(ctx, norm)
			var ae *driver.RecordActionError
			if errors.As(err, &ae) {
				failed = ae.Index
				return ae.Err // classified as the action's own error
			}
			failed = -1
			return err
		})
		if err != nil {
			return RecordBatchResult{Records: []Record{}, Atomic: true}, actionErr(err, failed)
		}
		if len(out) != len(norm) {
			return RecordBatchResult{Records: []Record{}, Atomic: true}, &Error{Code: Internal, Op: op,
				Err: fmt.Errorf("driver returned %d records for %d actions", len(out), len(norm))}
		}
		return RecordBatchResult{Records: out, Atomic: true}, nil
	}
	applied := make([]Record, 0, len(norm))
	for i, a := range norm {
		a = a.Resolve(applied)
		var r Record
		var err error
		if a.Create != nil {
			err = s.do(ctx, op, a.Key != "", func(ctx context.Context) (err error) {
				r, err = rs.CreateRecord(ctx, a.Create, a.Key)
				return err
			})
		} else {
			err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
				r, err = rs.UpdateRecord(ctx, a.Update)
				return err
			})
		}
		if err != nil {
			return RecordBatchResult{Records: applied}, actionErr(err, i)
		}
		applied = append(applied, r)
	}
	return RecordBatchResult{Records: applied}, nil
}

// actionErr puts the failing action's index into err, an error returned by
// Store.do (an *Error, or the caller's context error, left alone).
func actionErr(err error, index int) error {
	var e *Error
	if index < 0 || !errors.As(err, &e) {
		return err
	}
	e.Err = &driver.RecordActionError{Index: index, Err: e.Err}
	return e
}

// kindOf returns the kind of an action's record.
func kindOf(a RecordAction) RecordKind {
	if a.Create != nil {
		return a.Create.Kind
	}
	if a.Update != nil {
		return a.Update.Kind
	}
	return ""
}

func normAction(op string, acts []RecordAction, i int, a RecordAction) (RecordAction, error) {
	bad := func(format string, args ...any) error {
		return &Error{Code: InvalidArgument, Op: op, Err: &driver.RecordActionError{Index: i, Err: fmt.Errorf(format, args...)}}
	}
	if (a.Create == nil) == (a.Update == nil) {
		return a, bad("exactly one of Create and Update must be set")
	}
	kind := kindOf(a)
	for _, ref := range []struct {
		n    int
		want RecordKind
		name string
	}{{a.AccountRef, RecordAccount, "AccountRef"}, {a.ContactRef, RecordContact, "ContactRef"}} {
		if ref.n == 0 {
			continue
		}
		if ref.n < 0 || ref.n > i {
			return a, bad("%s %d does not name an earlier action", ref.name, ref.n)
		}
		if k := kindOf(acts[ref.n-1]); k != ref.want {
			return a, bad("%s %d names a %s, not a %s", ref.name, ref.n, k, ref.want)
		}
	}
	if a.AccountRef > 0 && kind == RecordAccount || a.ContactRef > 0 && kind != RecordAsset {
		return a, bad("a %s has no such reference", kind)
	}
	n := a
	var err error
	if a.Create != nil {
		c := *a.Create
		if a.AccountRef > 0 {
			c.AccountID = "ref" // checked as set; replaced when applied
		}
		if a.ContactRef > 0 {
			c.ContactID = "ref"
		}
		if n.Create, err = normRecord(op, &c); err != nil {
			return a, bad("%v", unwrapInvalid(err))
		}
		if a.AccountRef > 0 {
			n.Create.AccountID = ""
		}
		if a.ContactRef > 0 {
			n.Create.ContactID = ""
		}
		return n, nil
	}
	if n.Update, err = normUpdate(op, a.Update); err != nil {
		return a, bad("%v", unwrapInvalid(err))
	}
	n.Key = ""
	return n, nil
}

func unwrapInvalid(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err
	}
	return err
}

// notOf returns the name of the first field set that kind does not have.
func notOf(kind RecordKind, domains bool, email, serial, account, contact bool, fields bool) string {
	switch kind {
	case RecordAccount:
		switch {
		case email:
			return "Email"
		case serial:
			return "Serial"
		case account:
			return "AccountID"
		case contact:
			return "ContactID"
		case fields:
			return "Fields"
		}
	case RecordContact:
		switch {
		case domains:
			return "Domains"
		case serial:
			return "Serial"
		case contact:
			return "ContactID"
		}
	case RecordAsset:
		switch {
		case domains:
			return "Domains"
		case email:
			return "Email"
		}
	}
	return ""
}

func normDomains(op string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, d := range in {
		nd := NormalizeDomain(d)
		if nd == "" {
			return nil, invalid(op, "invalid domain %q", d)
		}
		if !slices.Contains(out, nd) {
			out = append(out, nd)
		}
	}
	return out, nil
}

func normFields(op string, in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		nk := cleanLine(k)
		if nk == "" {
			return nil, invalid(op, "a field needs a name")
		}
		if _, dup := out[nk]; dup {
			return nil, invalid(op, "field %q given twice", nk)
		}
		out[nk] = v
	}
	return out, nil
}

func normRecord(op string, r *Record) (*Record, error) {
	if r == nil {
		return nil, invalid(op, "nil record")
	}
	if !r.Kind.Valid() {
		return nil, invalid(op, "unknown record kind %q", r.Kind)
	}
	if f := notOf(r.Kind, len(r.Domains) > 0, r.Email != "", r.Serial != "", r.AccountID != "", r.ContactID != "", len(r.Fields) > 0); f != "" {
		return nil, invalid(op, "%s is not a field of a %s", f, r.Kind)
	}
	n := Record{Kind: r.Kind, Name: cleanLine(r.Name), Serial: cleanLine(r.Serial),
		AccountID: cleanLine(r.AccountID), ContactID: cleanLine(r.ContactID)}
	var err error
	switch r.Kind {
	case RecordAccount:
		if n.Domains, err = normDomains(op, r.Domains); err != nil {
			return nil, err
		}
	case RecordContact:
		if n.Email = NormalizeAddress(r.Email); n.Email == "" {
			return nil, invalid(op, "invalid address %q", r.Email)
		}
	}
	if n.Name == "" && r.Kind != RecordContact {
		return nil, invalid(op, "a %s needs a name", r.Kind)
	}
	if n.Fields, err = normFields(op, r.Fields); err != nil {
		return nil, err
	}
	return &n, nil
}

func normUpdate(op string, u *RecordUpdate) (*RecordUpdate, error) {
	if u == nil {
		return nil, invalid(op, "nil update")
	}
	if !u.Kind.Valid() {
		return nil, invalid(op, "unknown record kind %q", u.Kind)
	}
	n := RecordUpdate{Kind: u.Kind, ID: cleanLine(u.ID)}
	if n.ID == "" {
		return nil, invalid(op, "an update needs the record's ID")
	}
	if f := notOf(u.Kind, u.Domains != nil, u.Email != nil, u.Serial != nil, u.AccountID != nil, u.ContactID != nil, len(u.Fields) > 0); f != "" {
		return nil, invalid(op, "%s is not a field of a %s", f, u.Kind)
	}
	line := func(p *string) *string {
		if p == nil {
			return nil
		}
		v := cleanLine(*p)
		return &v
	}
	n.Name, n.Serial, n.AccountID, n.ContactID = line(u.Name), line(u.Serial), line(u.AccountID), line(u.ContactID)
	if n.Name != nil && *n.Name == "" && u.Kind != RecordContact {
		return nil, invalid(op, "a %s needs a name", u.Kind)
	}
	if u.Email != nil {
		e := NormalizeAddress(*u.Email)
		if e == "" {
			return nil, invalid(op, "invalid address %q", *u.Email)
		}
		n.Email = &e
	}
	if u.Domains != nil {
		ds, err := normDomains(op, *u.Domains)
		if err != nil {
			return nil, err
		}
		n.Domains = &ds
	}
	var err error
	if n.Fields, err = normFields(op, u.Fields); err != nil {
		return nil, err
	}
	return &n, nil
}

func normKey(op string, k *RecordKey) (*RecordKey, error) {
	if k == nil {
		return nil, invalid(op, "nil key")
	}
	if !k.Kind.Valid() {
		return nil, invalid(op, "unknown record kind %q", k.Kind)
	}
	n := RecordKey{Kind: k.Kind, ID: cleanLine(k.ID)}
	set := 0
	for _, v := range []string{k.ID, k.Name, k.Domain, k.Email, k.Serial} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return nil, invalid(op, "a record key needs exactly one of ID, Name, Domain, Email and Serial")
	}
	if k.AccountID != "" && k.Serial == "" {
		return nil, invalid(op, "AccountID scopes a Serial only")
	}
	switch {
	case k.ID != "":
		if n.ID == "" {
			return nil, invalid(op, "empty ID")
		}
	case k.Name != "" || k.Domain != "":
		if k.Kind != RecordAccount {
			return nil, invalid(op, "a %s has no name or domain key", k.Kind)
		}
		if k.Name != "" {
			if n.Name = cleanLine(k.Name); n.Name == "" {
				return nil, invalid(op, "empty name")
			}
		} else if n.Domain = NormalizeDomain(k.Domain); n.Domain == "" {
			return nil, invalid(op, "invalid domain %q", k.Domain)
		}
	case k.Email != "":
		if k.Kind != RecordContact {
			return nil, invalid(op, "a %s has no address key", k.Kind)
		}
		if n.Email = NormalizeAddress(k.Email); n.Email == "" {
			return nil, invalid(op, "invalid address %q", k.Email)
		}
	default:
		if k.Kind != RecordAsset {
			return nil, invalid(op, "a %s has no serial key", k.Kind)
		}
		if n.Serial = cleanLine(k.Serial); n.Serial == "" {
			return nil, invalid(op, "empty serial")
		}
		n.AccountID = cleanLine(k.AccountID)
	}
	return &n, nil
}
