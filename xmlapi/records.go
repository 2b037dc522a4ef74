package xmlapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Record actions: accounts, contacts and assets. They run before the case
// actions of the same request, as one batch (see RecordStore), so a case
// created by the request can name a contact the request creates.
const (
	ActCreateAccount = "createAccount"
	ActUpdateAccount = "updateAccount"
	ActUpdateContact = "updateContact"
	ActCreateAsset   = "createAsset"
	ActUpdateAsset   = "updateAsset"
)

// RecordAttrs are the attributes and children of the record actions,
// embedded in Action:
//
//	<createAccount name="Acme" domains="acme.example acme.eu"/>
//	<updateAccount account="Acme" name="Acme Ltd" domains="acme.example"/>
//	<createContact email="ann@acme.example" name="Ann" account="Acme">
//	  <field name="phone">+41 44 000 00 00</field>
//	</createContact>
//	<updateContact email="ann@acme.example" newEmail="ann@acme.eu" account="@acme.eu">
//	  <field name="phone"></field>
//	</updateContact>
//	<createAsset name="Printer" serial="SN-1" account="Acme" contact="ann@acme.example">
//	  <field name="model">LaserJet 4</field>
//	</createAsset>
//	<updateAsset serial="SN-1" account="Acme" newSerial="SN-2" name="Printer 2"/>
//
// An account is named by its name, or by "@" and a domain it owns; a
// contact (the contact attribute of createAsset) by its address; the record
// an update changes by id, or by its natural key (updateAccount: account;
// updateContact: email; updateAsset: serial, within account when given).
// Empty or absent attributes leave a value alone; a field with an empty
// value removes it.
type RecordAttrs struct {
	ID        string  `xml:"id,attr,omitempty"`
	Account   string  `xml:"account,attr,omitempty"`
	Domains   string  `xml:"domains,attr,omitempty"`
	Serial    string  `xml:"serial,attr,omitempty"`
	NewEmail  string  `xml:"newEmail,attr,omitempty"`
	NewSerial string  `xml:"newSerial,attr,omitempty"`
	Fields    []Field `xml:"field,omitempty"`
}

// RecordStore is what the record actions need of a store; *mailcase.Store
// satisfies it. The handler uses it when its Store implements it and
// HasRecords reports true; otherwise record actions fail (Unimplemented)
// and the mail goes to the admin queue.
type RecordStore interface {
	HasRecords() bool
	FindRecord(ctx context.Context, k *mailcase.RecordKey) (mailcase.Record, bool, error)
	ApplyRecords(ctx context.Context, acts []mailcase.RecordAction) (mailcase.RecordBatchResult, error)
}

var _ RecordStore = (*mailcase.Store)(nil)

func isRecordAction(name string) bool {
	switch name {
	case ActCreateAccount, ActUpdateAccount, ActUpdateContact, ActCreateAsset, ActUpdateAsset:
		return true
	}
	return false
}

// validateRecord checks the required attributes of a record action.
func validateRecord(a *Action, bad func(string) error) error {
	blank := func(s string) bool { return strings.TrimSpace(s) == "" }
	switch a.XMLName.Local {
	case ActCreateAccount, ActCreateAsset:
		if blank(a.Name) {
			return bad("missing name attribute")
		}
	case ActUpdateAccount:
		if blank(a.ID) && blank(a.Account) {
			return bad("missing id or account attribute")
		}
	case ActUpdateContact:
		if blank(a.ID) && blank(a.Email) {
			return bad("missing id or email attribute")
		}
	case ActUpdateAsset:
		if blank(a.ID) && blank(a.Serial) {
			return bad("missing id or serial attribute")
		}
	}
	for _, f := range a.Fields {
		if blank(f.Name) {
			return bad("a field without name")
		}
	}
	return nil
}

// recordPhase reports whether a runs in the record batch: the record
// actions, and createContact when the store keeps records.
func (r *runner) recordPhase(a Action) bool {
	if a.XMLName.Space != Namespace {
		return false
	}
	if isRecordAction(a.XMLName.Local) {
		return true
	}
	return a.XMLName.Local == ActCreateContact && r.recordStore() != nil
}

func (r *runner) recordStore() RecordStore {
	rs, ok := r.h.store.(RecordStore)
	if !ok || !rs.HasRecords() {
		return nil
	}
	return rs
}

// batchBuilder turns record actions into one batch, resolving the names
// they refer to: to records created earlier in the batch (references by
// position) or to records in the store.
type batchBuilder struct {
	r        *runner
	rs       RecordStore
	acts     []mailcase.RecordAction
	doc      []int          // document index of each batch action
	accounts map[string]int // name or "@domain" -> 1-based batch position
	contacts map[string]int // address -> 1-based batch position
}

func fields(fs []Field) map[string]string {
	if len(fs) == 0 {
		return nil
	}
	out := make(map[string]string, len(fs))
	for _, f := range fs {
		out[strings.TrimSpace(f.Name)] = f.Value
	}
	return out
}

func domains(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

func strp(s string) *string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return &s
}

func notFoundErr(op, format string, args ...any) error {
	return mailcase.NewError(mailcase.NotFound, op, fmt.Errorf(format, args...))
}

// accountKey normalises a reference to an account.
func accountKey(ref string) string {
	ref = strings.TrimSpace(ref)
	if d, ok := strings.CutPrefix(ref, "@"); ok {
		return "@" + mailcase.NormalizeDomain(d)
	}
	return ref
}

// account resolves an account reference: a position in the batch, or the
// ID of a stored account.
func (b *batchBuilder) account(ctx context.Context, op, ref string) (pos int, id string, err error) {
	k := accountKey(ref)
	if p, ok := b.accounts[k]; ok {
		return p, "", nil
	}
	key := mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: k}
	if d, ok := strings.CutPrefix(k, "@"); ok {
		key = mailcase.RecordKey{Kind: mailcase.RecordAccount, Domain: d}
	}
	rec, ok, err := b.rs.FindRecord(ctx, &key)
	if err != nil {
		return 0, "", err
	}
	if !ok {
		return 0, "", notFoundErr(op, "no account %q", ref)
	}
	return 0, rec.ID, nil
}

// contact resolves a contact reference by address.
func (b *batchBuilder) contact(ctx context.Context, op, addr string) (pos int, id string, err error) {
	a := mailcase.NormalizeAddress(addr)
	if p, ok := b.contacts[a]; ok {
		return p, "", nil
	}
	rec, ok, err := b.rs.FindRecord(ctx, &mailcase.RecordKey{Kind: mailcase.RecordContact, Email: addr})
	if err != nil {
		return 0, "", err
	}
	if !ok {
		return 0, "", notFoundErr(op, "no contact %q", addr)
	}
	return 0, rec.ID, nil
}

// target returns the ID of the stored record an update changes. A record
// created earlier in the same request cannot be updated by it (its ID is
// not known before the batch runs): that is InvalidArgument. renamed, when
// not nil, is the record's key after the update (a new address, serial or
// name): a redelivered or retried request, whose first run applied the
// update, finds the record by it.
func (b *batchBuilder) target(ctx context.Context, op string, kind mailcase.RecordKind, id string, k mailcase.RecordKey, renamed *mailcase.RecordKey, inBatch bool) (string, error) {
	if id = strings.TrimSpace(id); id != "" {
		return id, nil
	}
	if inBatch {
		return "", mailcase.NewError(mailcase.InvalidArgument, op, errors.New("the record is created by the same request; set its values there"))
	}
	k.Kind = kind
	rec, ok, err := b.rs.FindRecord(ctx, &k)
	if err != nil {
		return "", err
	}
	if !ok && renamed != nil {
		r := *renamed
		r.Kind = kind
		if rec, ok, err = b.rs.FindRecord(ctx, &r); err != nil {
			return "", err
		}
	}
	if !ok {
		return "", notFoundErr(op, "no such %s", kind)
	}
	return rec.ID, nil
}

// add builds the batch action of document action a (index i); skip is
// true when a needs no action (a createContact of a known address).
func (b *batchBuilder) add(ctx context.Context, i int, a Action) error {
	op := a.XMLName.Local
	akey := fmt.Sprintf("%s#%d", b.r.key, i)
	var act mailcase.RecordAction
	setAccount := func(ref string) (string, error) {
		if strings.TrimSpace(ref) == "" {
			return "", nil
		}
		pos, id, err := b.account(ctx, op, ref)
		act.AccountRef = pos
		return id, err
	}
	switch op {
	case ActCreateAccount:
		act.Create = &mailcase.Record{Kind: mailcase.RecordAccount, Name: a.Name, Domains: domains(a.Domains)}
		act.Key = akey
	case ActUpdateAccount:
		k := accountKey(a.Account)
		_, inBatch := b.accounts[k]
		key := mailcase.RecordKey{Name: k}
		if d, ok := strings.CutPrefix(k, "@"); ok {
			key = mailcase.RecordKey{Domain: d}
		}
		var renamed *mailcase.RecordKey
		if n := strings.TrimSpace(a.Name); n != "" {
			renamed = &mailcase.RecordKey{Name: accountKey(n)}
		} else if ds := domains(a.Domains); len(ds) > 0 && key.Domain != "" {
			renamed = &mailcase.RecordKey{Domain: ds[0]}
		}
		id, err := b.target(ctx, op, mailcase.RecordAccount, a.ID, key, renamed, inBatch && a.ID == "")
		if err != nil {
			return err
		}
		u := &mailcase.RecordUpdate{Kind: mailcase.RecordAccount, ID: id, Name: strp(a.Name)}
		if ds := domains(a.Domains); len(ds) > 0 {
			u.Domains = &ds
		}
		act.Update = u
	case ActCreateContact:
		addr := mailcase.NormalizeAddress(a.Email)
		if _, known := b.contacts[addr]; known {
			return nil
		}
		cs, err := b.r.h.store.FindContacts(ctx, a.Email)
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			return nil // find or create: the contact exists
		}
		c := &mailcase.Record{Kind: mailcase.RecordContact, Name: a.Name, Email: a.Email, Fields: fields(a.Fields)}
		if c.AccountID, err = setAccount(a.Account); err != nil {
			return err
		}
		act.Create, act.Key = c, akey
	case ActUpdateContact:
		_, inBatch := b.contacts[mailcase.NormalizeAddress(a.Email)]
		var renamed *mailcase.RecordKey
		if a.NewEmail != "" {
			renamed = &mailcase.RecordKey{Email: a.NewEmail}
		}
		id, err := b.target(ctx, op, mailcase.RecordContact, a.ID, mailcase.RecordKey{Email: a.Email}, renamed, inBatch && a.ID == "")
		if err != nil {
			return err
		}
		u := &mailcase.RecordUpdate{Kind: mailcase.RecordContact, ID: id, Name: strp(a.Name), Email: strp(a.NewEmail), Fields: fields(a.Fields)}
		act.Update = u
		acc, err := setAccount(a.Account)
		if err != nil {
			return err
		}
		if acc != "" {
			u.AccountID = &acc
		}
	case ActCreateAsset:
		as := &mailcase.Record{Kind: mailcase.RecordAsset, Name: a.Name, Serial: a.Serial, Fields: fields(a.Fields)}
		var err error
		if as.AccountID, err = setAccount(a.Account); err != nil {
			return err
		}
		if strings.TrimSpace(a.Contact) != "" {
			pos, id, err := b.contact(ctx, op, a.Contact)
			if err != nil {
				return err
			}
			act.ContactRef, as.ContactID = pos, id
		}
		act.Create, act.Key = as, akey
	case ActUpdateAsset:
		accID := ""
		if strings.TrimSpace(a.Account) != "" && strings.TrimSpace(a.ID) == "" {
			pos, id, err := b.account(ctx, op, a.Account)
			if err != nil {
				return err
			}
			if pos > 0 {
				return mailcase.NewError(mailcase.InvalidArgument, op, errors.New("the account is created by the same request, so it holds no asset yet"))
			}
			accID = id
		}
		var renamed *mailcase.RecordKey
		if a.NewSerial != "" {
			renamed = &mailcase.RecordKey{Serial: a.NewSerial, AccountID: accID}
		}
		id, err := b.target(ctx, op, mailcase.RecordAsset, a.ID, mailcase.RecordKey{Serial: a.Serial, AccountID: accID}, renamed, false)
		if err != nil {
			return err
		}
		act.Update = &mailcase.RecordUpdate{Kind: mailcase.RecordAsset, ID: id, Name: strp(a.Name), Serial: strp(a.NewSerial), Fields: fields(a.Fields)}
	}
	b.acts = append(b.acts, act)
	b.doc = append(b.doc, i)
	pos := len(b.acts)
	if act.Create != nil {
		switch act.Create.Kind {
		case mailcase.RecordAccount:
			b.accounts[accountKey(act.Create.Name)] = pos
			for _, d := range act.Create.Domains {
				b.accounts[accountKey("@"+d)] = pos
			}
		case mailcase.RecordContact:
			b.contacts[mailcase.NormalizeAddress(act.Create.Email)] = pos
		}
	}
	return nil
}

// runRecords applies the record actions of actions as one batch. It
// returns the document index of the failing action on error, and the
// number of record actions run.
func (r *runner) runRecords(ctx context.Context, actions []Action) (n, failed int, err error) {
	var (
		b     *batchBuilder
		first = -1
	)
	for i, a := range actions {
		if !r.recordPhase(a) {
			continue
		}
		if first < 0 {
			first = i
		}
		rs := r.recordStore()
		if rs == nil {
			return 0, i, mailcase.NewError(mailcase.Unimplemented, a.XMLName.Local, errors.New("the store keeps no account, contact or asset records"))
		}
		if b == nil {
			b = &batchBuilder{r: r, rs: rs, accounts: map[string]int{}, contacts: map[string]int{}}
		}
		n++
		if err := b.add(ctx, i, a); err != nil {
			return 0, i, fmt.Errorf("%w (nothing was applied)", err)
		}
	}
	if b == nil || len(b.acts) == 0 {
		return n, -1, nil
	}
	res, err := b.rs.ApplyRecords(ctx, b.acts)
	if err == nil {
		return n, -1, nil
	}
	failed = first
	var ae *mailcase.RecordActionError
	if errors.As(err, &ae) && ae.Index >= 0 && ae.Index < len(b.doc) {
		failed = b.doc[ae.Index]
	}
	if res.Atomic || len(res.Records) == 0 {
		return 0, failed, fmt.Errorf("%w (nothing was applied)", err)
	}
	applied := make([]string, len(res.Records))
	for i, rec := range res.Records {
		applied[i] = fmt.Sprintf("%s %s (action %d)", rec.Kind, rec.ID, b.doc[i]+1)
	}
	return 0, failed, fmt.Errorf("%w (applied before it, and kept: %s)", err, strings.Join(applied, ", "))
}
