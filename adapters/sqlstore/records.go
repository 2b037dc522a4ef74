package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Records (driver.Records, schema v7): accounts and contacts are the
// Directory's rows; assets and creation keys have their own tables. Every
// write runs in one transaction of the group committer, and a batch
// (driver.RecordBatcher) is one such transaction: an action that fails
// makes its function fail, and the committer rolls the transaction back.

// recordQueries holds the statements of the records, built once at open
// from constants: every value is a parameter.
type recordQueries struct {
	getAccount, accountByName, accountByDomain, renameAccount, deleteDomains string
	getContact, contactByEmail, insertContact, updateContact                 string
	getAsset, assetBySerial, insertAsset, updateAsset                        string
	getKey, insertKey, accountExists, contactExists                          string
}

const assetCols = `id, name, serial, account_id, contact_id, fields`

func buildRecordQueries(d Dialect) *recordQueries {
	r := d.rebind
	return &recordQueries{
		getAccount:      r(`SELECT id, name FROM accounts WHERE id = ?`),
		accountByName:   r(`SELECT id FROM accounts WHERE name = ? ORDER BY id LIMIT 1`),
		accountByDomain: r(`SELECT account_id FROM account_domains WHERE domain_hash = ? ORDER BY account_id LIMIT 1`),
		renameAccount:   r(`UPDATE accounts SET name = ? WHERE id = ?`),
		deleteDomains:   r(`DELETE FROM account_domains WHERE account_id = ?`),
		getContact:      r(`SELECT id, name, email, account_id, fields FROM contacts WHERE id = ?`),
		contactByEmail:  r(`SELECT id FROM contacts WHERE email_hash = ? ORDER BY id LIMIT 1`),
		insertContact: r(`INSERT INTO contacts (name, email, email_hash, account_id, placeholder, internal, support_level, created_at, fields)
 VALUES (?, ?, ?, ?, 0, 0, '', ?, ?)`),
		updateContact: r(`UPDATE contacts SET name = ?, email = ?, email_hash = ?, account_id = ?, fields = ? WHERE id = ?`),
		getAsset:      r(`SELECT ` + assetCols + ` FROM assets WHERE id = ?`),
		assetBySerial: r(`SELECT id FROM assets WHERE serial_hash = ?`),
		insertAsset: r(`INSERT INTO assets (name, serial, serial_hash, account_id, contact_id, fields, created_at, updated_at)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		updateAsset:   r(`UPDATE assets SET name = ?, serial = ?, serial_hash = ?, account_id = ?, contact_id = ?, fields = ?, updated_at = ? WHERE id = ?`),
		getKey:        r(`SELECT kind, record_id FROM record_keys WHERE key_hash = ?`),
		insertKey:     r(`INSERT INTO record_keys (key_hash, idem_key, kind, record_id, created_at) VALUES (?, ?, ?, ?, ?)`),
		accountExists: r(`SELECT id FROM accounts WHERE id = ?`),
		contactExists: r(`SELECT id FROM contacts WHERE id = ?`),
	}
}

// CreateRecord creates a record in one transaction with its key.
func (s *store) CreateRecord(ctx context.Context, r *driver.Record, key string) (driver.Record, error) {
	var out driver.Record
	err := s.recordTx(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		out, err = s.createRecordTx(ctx, tx, r, key)
		return err
	})
	return out, err
}

// UpdateRecord updates a record in one transaction.
func (s *store) UpdateRecord(ctx context.Context, u *driver.RecordUpdate) (driver.Record, error) {
	var out driver.Record
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		out, err = s.updateRecordTx(ctx, tx, u)
		return err
	})
	if err == nil && u.Email != nil {
		s.contacts.drop()
	}
	return out, err
}

// ApplyRecords applies acts in one transaction; the first failing action
// rolls it back.
func (s *store) ApplyRecords(ctx context.Context, acts []driver.RecordAction) ([]driver.Record, error) {
	var out []driver.Record
	err := s.recordTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = make([]driver.Record, 0, len(acts)) // the function may run twice
		for i, a := range acts {
			a = a.Resolve(out)
			var r driver.Record
			var err error
			switch {
			case a.Create != nil:
				r, err = s.createRecordTx(ctx, tx, a.Create, a.Key)
			case a.Update != nil:
				r, err = s.updateRecordTx(ctx, tx, a.Update)
			default:
				err = errorf(driver.InvalidArgument, "an action needs Create or Update")
			}
			if err != nil {
				return &driver.RecordActionError{Index: i, Err: err}
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		if a.Update != nil && a.Update.Email != nil {
			s.contacts.drop()
			break
		}
	}
	return out, nil
}

// FindRecord reads a record by ID or natural key.
func (s *store) FindRecord(ctx context.Context, k *driver.RecordKey) (driver.Record, error) {
	q := s.on(nil)
	id := k.ID
	var (
		query string
		arg   any
		kind  = string(k.Kind)
	)
	switch {
	case k.ID != "":
	case k.Name != "":
		query, arg = s.rq.accountByName, s.text(k.Name)
	case k.Domain != "":
		query, arg = s.rq.accountByDomain, hashOf(k.Domain)
	case k.Email != "":
		query, arg = s.rq.contactByEmail, hashOf(k.Email)
	case k.Serial != "":
		query, arg = s.rq.assetBySerial, serialHash(k.AccountID, k.Serial)
	}
	if query != "" {
		var n int64
		err := q.QueryRowContext(ctx, query, arg).Scan(&n)
		s.noteErr(err)
		if errors.Is(err, sql.ErrNoRows) {
			return driver.Record{}, errorf(driver.NotFound, "no %s for that key", kind)
		}
		if err != nil {
			return driver.Record{}, err
		}
		id = kindID(kind, n)
	}
	return s.getRecord(ctx, q, k.Kind, id)
}

// serialHash is the indexed form of an asset's serial within its account;
// nil (NULL) when the asset has no serial.
func serialHash(account, serial string) any {
	if serial == "" {
		return nil
	}
	return hashOf(account + "\x00" + serial)
}

// fieldsArg encodes free fields as a JSON object, NULL for none.
func (s *store) fieldsArg(f map[string]string) (any, error) {
	if len(f) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, errorf(driver.InvalidArgument, "fields: %v", err)
	}
	return s.text(string(b)), nil
}

func decodeFields(ns sql.NullString) (map[string]string, error) {
	if !ns.Valid || ns.String == "" {
		return nil, nil
	}
	var f map[string]string
	if err := json.Unmarshal([]byte(ns.String), &f); err != nil {
		return nil, errorf(driver.Internal, "stored fields: %v", err)
	}
	return f, nil
}

// getRecord reads the record of kind with id, or NotFound.
func (s *store) getRecord(ctx context.Context, q queryer, kind driver.RecordKind, id string) (driver.Record, error) {
	n, ok := parseKindID(string(kind), id)
	missing := func() (driver.Record, error) {
		return driver.Record{}, errorf(driver.NotFound, "no %s %q", kind, id)
	}
	if !ok {
		return missing()
	}
	r := driver.Record{Kind: kind, ID: id}
	var (
		err    error
		fields sql.NullString
		rowID  int64
	)
	switch kind {
	case driver.RecordAccount:
		err = q.QueryRowContext(ctx, s.rq.getAccount, n).Scan(&rowID, &r.Name)
		if err == nil {
			r.Domains, err = s.accountDomains(ctx, q, n)
		}
	case driver.RecordContact:
		err = q.QueryRowContext(ctx, s.rq.getContact, n).Scan(&rowID, &r.Name, &r.Email, &r.AccountID, &fields)
	case driver.RecordAsset:
		err = q.QueryRowContext(ctx, s.rq.getAsset, n).Scan(&rowID, &r.Name, &r.Serial, &r.AccountID, &r.ContactID, &fields)
	default:
		return missing()
	}
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return missing()
	}
	if err != nil {
		return driver.Record{}, err
	}
	if r.Fields, err = decodeFields(fields); err != nil {
		return driver.Record{}, err
	}
	return r, nil
}

// checkRefs checks that the referenced account and contact exist.
func (s *store) checkRefs(ctx context.Context, tx *sql.Tx, account, contact string) error {
	for _, ref := range []struct{ kind, id, query string }{
		{"account", account, s.rq.accountExists}, {"contact", contact, s.rq.contactExists},
	} {
		if ref.id == "" {
			continue
		}
		n, ok := parseKindID(ref.kind, ref.id)
		if !ok {
			return errorf(driver.NotFound, "no %s %q", ref.kind, ref.id)
		}
		var got int64
		err := s.on(tx).QueryRowContext(ctx, ref.query, n).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return errorf(driver.NotFound, "no %s %q", ref.kind, ref.id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// serialTaken reports AlreadyExists when another asset than self holds the
// serial in the account.
func (s *store) serialTaken(ctx context.Context, tx *sql.Tx, account, serial string, self int64) error {
	if serial == "" {
		return nil
	}
	var other int64
	err := s.on(tx).QueryRowContext(ctx, s.rq.assetBySerial, serialHash(account, serial)).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) || err == nil && other == self {
		return nil
	}
	if err != nil {
		return err
	}
	return errorf(driver.AlreadyExists, "serial %q is taken in that account", serial)
}

func (s *store) createRecordTx(ctx context.Context, tx *sql.Tx, r *driver.Record, key string) (driver.Record, error) {
	kh := hashOf(key)
	if key != "" {
		var kind, id string
		err := s.on(tx).QueryRowContext(ctx, s.rq.getKey, kh).Scan(&kind, &id)
		switch {
		case err == nil && kind != string(r.Kind):
			return driver.Record{}, errorf(driver.AlreadyExists, "the key created a %s", kind)
		case err == nil:
			return s.getRecord(ctx, s.on(tx), r.Kind, id)
		case !errors.Is(err, sql.ErrNoRows):
			return driver.Record{}, err
		}
	}
	if err := s.checkRefs(ctx, tx, r.AccountID, r.ContactID); err != nil {
		return driver.Record{}, err
	}
	fields, err := s.fieldsArg(r.Fields)
	if err != nil {
		return driver.Record{}, err
	}
	now := nanos(s.now())
	var n int64
	switch r.Kind {
	case driver.RecordAccount:
		if n, err = s.insertID(ctx, s.on(tx), s.q.insertAccount, s.text(r.Name), "", now); err != nil {
			return driver.Record{}, err
		}
		if err := s.insertDomains(ctx, tx, n, r.Domains); err != nil {
			return driver.Record{}, err
		}
	case driver.RecordContact:
		if r.Email == "" {
			return driver.Record{}, errorf(driver.InvalidArgument, "contact without address")
		}
		n, err = s.insertID(ctx, s.on(tx), s.rq.insertContact, s.text(r.Name), s.text(r.Email), hashOf(r.Email),
			s.text(r.AccountID), now, fields)
	case driver.RecordAsset:
		if err := s.serialTaken(ctx, tx, r.AccountID, r.Serial, 0); err != nil {
			return driver.Record{}, err
		}
		n, err = s.insertID(ctx, s.on(tx), s.rq.insertAsset, s.text(r.Name), s.text(r.Serial), serialHash(r.AccountID, r.Serial),
			r.AccountID, r.ContactID, fields, now, now)
	default:
		return driver.Record{}, errorf(driver.InvalidArgument, "unknown record kind %q", r.Kind)
	}
	if err != nil {
		return driver.Record{}, err
	}
	id := kindID(string(r.Kind), n)
	if key != "" {
		if _, err := s.on(tx).ExecContext(ctx, s.rq.insertKey, kh, []byte(key), string(r.Kind), id, now); err != nil {
			if classify(err) == driver.AlreadyExists {
				// A concurrent creation under the same key committed
				// first: run the transaction again, which finds it.
				return driver.Record{}, fmt.Errorf("%w: %w", errKeyRaced, err)
			}
			return driver.Record{}, err
		}
	}
	return s.getRecord(ctx, s.on(tx), r.Kind, id)
}

// errKeyRaced marks a creation whose idempotency key another transaction
// inserted after this one looked it up; recordTx runs the transaction
// again, and the second run returns the record created under the key.
var errKeyRaced = errors.New("record key created concurrently")

// recordTx runs f in one write transaction, again (at most twice more)
// when a creation lost the race for its key.
func (s *store) recordTx(ctx context.Context, f func(ctx context.Context, tx *sql.Tx) error) error {
	var err error
	for range 3 {
		if err = s.w.do(ctx, f); !errors.Is(err, errKeyRaced) {
			return err
		}
	}
	return err
}

func (s *store) insertDomains(ctx context.Context, tx *sql.Tx, account int64, domains []string) error {
	for i, d := range domains {
		if _, err := s.on(tx).ExecContext(ctx, s.q.insertAccountDomain, account, i, s.text(d), hashOf(d)); err != nil {
			return err
		}
	}
	return nil
}

// mergeFields applies the merge rule of driver.RecordUpdate.Fields.
func mergeFields(cur, u map[string]string) map[string]string {
	if len(u) == 0 {
		return cur
	}
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range u {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func (s *store) updateRecordTx(ctx context.Context, tx *sql.Tx, u *driver.RecordUpdate) (driver.Record, error) {
	cur, err := s.getRecord(ctx, s.on(tx), u.Kind, u.ID)
	if err != nil {
		return driver.Record{}, err
	}
	n, _ := parseKindID(string(u.Kind), u.ID)
	next := cur
	set := func(dst *string, p *string) {
		if p != nil {
			*dst = *p
		}
	}
	set(&next.Name, u.Name)
	set(&next.Email, u.Email)
	set(&next.Serial, u.Serial)
	set(&next.AccountID, u.AccountID)
	set(&next.ContactID, u.ContactID)
	next.Fields = mergeFields(cur.Fields, u.Fields)
	var account, contact string
	if u.AccountID != nil {
		account = *u.AccountID
	}
	if u.ContactID != nil {
		contact = *u.ContactID
	}
	if err := s.checkRefs(ctx, tx, account, contact); err != nil {
		return driver.Record{}, err
	}
	fields, err := s.fieldsArg(next.Fields)
	if err != nil {
		return driver.Record{}, err
	}
	switch u.Kind {
	case driver.RecordAccount:
		if u.Name != nil {
			if _, err := s.on(tx).ExecContext(ctx, s.rq.renameAccount, s.text(next.Name), n); err != nil {
				return driver.Record{}, err
			}
		}
		if u.Domains != nil {
			if _, err := s.on(tx).ExecContext(ctx, s.rq.deleteDomains, n); err != nil {
				return driver.Record{}, err
			}
			if err := s.insertDomains(ctx, tx, n, *u.Domains); err != nil {
				return driver.Record{}, err
			}
			next.Domains = slices.Clone(*u.Domains)
		}
		return next, nil
	case driver.RecordContact:
		if next.Email == "" {
			return driver.Record{}, errorf(driver.InvalidArgument, "contact without address")
		}
		_, err = s.on(tx).ExecContext(ctx, s.rq.updateContact, s.text(next.Name), s.text(next.Email), hashOf(next.Email),
			s.text(next.AccountID), fields, n)
	case driver.RecordAsset:
		if err := s.serialTaken(ctx, tx, next.AccountID, next.Serial, n); err != nil {
			return driver.Record{}, err
		}
		_, err = s.on(tx).ExecContext(ctx, s.rq.updateAsset, s.text(next.Name), s.text(next.Serial), serialHash(next.AccountID, next.Serial),
			next.AccountID, next.ContactID, fields, nanos(s.now()), n)
	}
	if err != nil {
		return driver.Record{}, err
	}
	return next, nil
}
