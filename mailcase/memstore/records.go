package memstore

import (
	"context"
	"maps"
	"slices"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// records is the state of driver.Records beyond the Directory's contacts
// and accounts: contact fields, assets and creation keys.
type records struct {
	contactFields map[string]map[string]string // contact ID -> fields
	assets        []driver.Record              // creation order
	assetByID     map[string]int               // ID -> index in assets
	assetBySerial map[string]string            // account ID + "\x00" + serial -> asset ID
	keys          map[string]recordKey         // creation keys
}

// recordKey is what a creation key created.
type recordKey struct {
	kind driver.RecordKind
	id   string
}

func newRecords() records {
	return records{contactFields: map[string]map[string]string{}, assetByID: map[string]int{},
		assetBySerial: map[string]string{}, keys: map[string]recordKey{}}
}

func serialKey(account, serial string) string { return account + "\x00" + serial }

// dirState is a deep copy of everything a record batch may change.
type dirState struct {
	seq             int
	contacts        []driver.Contact
	contactsByEmail map[string][]int
	contactByID     map[string]int
	accounts        []driver.Account
	accountsByDom   map[string][]int
	accountByID     map[string]int
	recs            records
}

func cloneIndex(m map[string][]int) map[string][]int {
	out := make(map[string][]int, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// snapshot copies the record state. The caller holds the lock.
func (s *store) snapshot() dirState {
	st := dirState{
		seq: s.seq, contacts: slices.Clone(s.contacts), contactsByEmail: cloneIndex(s.contactsByEmail),
		contactByID: maps.Clone(s.contactByID), accountsByDom: cloneIndex(s.accountsByDom),
		accountByID: maps.Clone(s.accountByID),
		recs: records{contactFields: map[string]map[string]string{}, assetByID: maps.Clone(s.recs.assetByID),
			assetBySerial: maps.Clone(s.recs.assetBySerial), keys: maps.Clone(s.recs.keys)},
	}
	st.accounts = make([]driver.Account, len(s.accounts))
	for i, a := range s.accounts {
		st.accounts[i] = copyAccount(a)
	}
	for id, f := range s.recs.contactFields {
		st.recs.contactFields[id] = maps.Clone(f)
	}
	st.recs.assets = make([]driver.Record, len(s.recs.assets))
	for i, a := range s.recs.assets {
		st.recs.assets[i] = copyRecord(a)
	}
	return st
}

// restore puts a snapshot back. The caller holds the lock.
func (s *store) restore(st dirState) {
	s.seq, s.contacts, s.contactsByEmail, s.contactByID = st.seq, st.contacts, st.contactsByEmail, st.contactByID
	s.accounts, s.accountsByDom, s.accountByID, s.recs = st.accounts, st.accountsByDom, st.accountByID, st.recs
}

func copyRecord(r driver.Record) driver.Record {
	r.Domains = slices.Clone(r.Domains)
	r.Fields = maps.Clone(r.Fields)
	return r
}

// CreateRecord creates an account, a contact or an asset.
func (s *store) CreateRecord(ctx context.Context, r *driver.Record, key string) (driver.Record, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Record{}, err
	}
	defer s.mu.Unlock()
	return s.createRecord(r, key)
}

// UpdateRecord changes a record.
func (s *store) UpdateRecord(ctx context.Context, u *driver.RecordUpdate) (driver.Record, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Record{}, err
	}
	defer s.mu.Unlock()
	return s.updateRecord(u)
}

// FindRecord finds a record by ID or natural key.
func (s *store) FindRecord(ctx context.Context, k *driver.RecordKey) (driver.Record, error) {
	if err := s.lock(ctx); err != nil {
		return driver.Record{}, err
	}
	defer s.mu.Unlock()
	id := k.ID
	switch {
	case id != "":
	case k.Name != "":
		for _, a := range s.accounts {
			if a.Name == k.Name {
				id = a.ID
				break
			}
		}
	case k.Domain != "":
		if is := s.accountsByDom[k.Domain]; len(is) > 0 {
			id = s.accounts[is[0]].ID
		}
	case k.Email != "":
		if is := s.contactsByEmail[k.Email]; len(is) > 0 {
			id = s.contacts[is[0]].ID
		}
	case k.Serial != "":
		id = s.recs.assetBySerial[serialKey(k.AccountID, k.Serial)]
	}
	if r, ok := s.record(k.Kind, id); ok {
		return r, nil
	}
	return driver.Record{}, errorf(driver.NotFound, "no %s for that key", k.Kind)
}

// ApplyRecords applies acts all-or-nothing: the record state is restored
// from a snapshot when one fails.
func (s *store) ApplyRecords(ctx context.Context, acts []driver.RecordAction) ([]driver.Record, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	snap := s.snapshot()
	out := make([]driver.Record, 0, len(acts))
	for i, a := range acts {
		a = a.Resolve(out)
		var r driver.Record
		var err error
		switch {
		case a.Create != nil:
			r, err = s.createRecord(a.Create, a.Key)
		case a.Update != nil:
			r, err = s.updateRecord(a.Update)
		default:
			err = errorf(driver.InvalidArgument, "an action needs Create or Update")
		}
		if err != nil {
			s.restore(snap)
			return nil, &driver.RecordActionError{Index: i, Err: err}
		}
		out = append(out, r)
	}
	return out, nil
}

// record returns a copy of the record of kind with id. The caller holds
// the lock.
func (s *store) record(kind driver.RecordKind, id string) (driver.Record, bool) {
	switch kind {
	case driver.RecordAccount:
		if i, ok := s.accountByID[id]; ok {
			a := s.accounts[i]
			return driver.Record{Kind: kind, ID: a.ID, Name: a.Name, Domains: slices.Clone(a.Domains)}, true
		}
	case driver.RecordContact:
		if i, ok := s.contactByID[id]; ok {
			c := s.contacts[i]
			return driver.Record{Kind: kind, ID: c.ID, Name: c.Name, Email: c.Email, AccountID: c.AccountID,
				Fields: maps.Clone(s.recs.contactFields[c.ID])}, true
		}
	case driver.RecordAsset:
		if i, ok := s.recs.assetByID[id]; ok {
			return copyRecord(s.recs.assets[i]), true
		}
	}
	return driver.Record{}, false
}

// checkRefs checks that the referenced account and contact exist.
func (s *store) checkRefs(account, contact string) error {
	if _, ok := s.accountByID[account]; account != "" && !ok {
		return errorf(driver.NotFound, "no account %q", account)
	}
	if _, ok := s.contactByID[contact]; contact != "" && !ok {
		return errorf(driver.NotFound, "no contact %q", contact)
	}
	return nil
}

// createRecord implements CreateRecord. The caller holds the lock.
func (s *store) createRecord(r *driver.Record, key string) (driver.Record, error) {
	if key != "" {
		if k, ok := s.recs.keys[key]; ok {
			if k.kind != r.Kind {
				return driver.Record{}, errorf(driver.AlreadyExists, "key %q created a %s", key, k.kind)
			}
			out, _ := s.record(k.kind, k.id)
			return out, nil
		}
	}
	if err := s.checkRefs(r.AccountID, r.ContactID); err != nil {
		return driver.Record{}, err
	}
	var id string
	switch r.Kind {
	case driver.RecordAccount:
		a := driver.Account{ID: s.nextID("account"), Name: r.Name, Domains: slices.Clone(r.Domains)}
		s.accounts = append(s.accounts, a)
		s.accountByID[a.ID] = len(s.accounts) - 1
		for _, d := range uniqueSorted(a.Domains) {
			s.accountsByDom[d] = append(s.accountsByDom[d], len(s.accounts)-1)
		}
		id = a.ID
	case driver.RecordContact:
		if r.Email == "" {
			return driver.Record{}, errorf(driver.InvalidArgument, "contact without address")
		}
		c := driver.Contact{ID: s.nextID("contact"), Name: r.Name, Email: r.Email, AccountID: r.AccountID}
		s.contacts = append(s.contacts, c)
		s.contactsByEmail[c.Email] = append(s.contactsByEmail[c.Email], len(s.contacts)-1)
		s.contactByID[c.ID] = len(s.contacts) - 1
		if len(r.Fields) > 0 {
			s.recs.contactFields[c.ID] = maps.Clone(r.Fields)
		}
		id = c.ID
	case driver.RecordAsset:
		sk := serialKey(r.AccountID, r.Serial)
		if _, dup := s.recs.assetBySerial[sk]; dup && r.Serial != "" {
			return driver.Record{}, errorf(driver.AlreadyExists, "serial %q is taken in that account", r.Serial)
		}
		a := driver.Record{Kind: r.Kind, ID: s.nextID("asset"), Name: r.Name, Serial: r.Serial,
			AccountID: r.AccountID, ContactID: r.ContactID, Fields: maps.Clone(r.Fields)}
		s.recs.assets = append(s.recs.assets, a)
		s.recs.assetByID[a.ID] = len(s.recs.assets) - 1
		if a.Serial != "" {
			s.recs.assetBySerial[sk] = a.ID
		}
		id = a.ID
	default:
		return driver.Record{}, errorf(driver.InvalidArgument, "unknown record kind %q", r.Kind)
	}
	if key != "" {
		s.recs.keys[key] = recordKey{kind: r.Kind, id: id}
	}
	out, _ := s.record(r.Kind, id)
	return out, nil
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

// reindex moves index i from the lists of the old keys to those of the
// new keys, keeping every list in creation (ascending) order.
func reindex(idx map[string][]int, i int, old, new []string) {
	for _, k := range old {
		idx[k] = slices.DeleteFunc(idx[k], func(j int) bool { return j == i })
		if len(idx[k]) == 0 {
			delete(idx, k)
		}
	}
	for _, k := range new {
		if p, found := slices.BinarySearch(idx[k], i); !found {
			idx[k] = slices.Insert(idx[k], p, i)
		}
	}
}

// updateRecord implements UpdateRecord. The caller holds the lock.
func (s *store) updateRecord(u *driver.RecordUpdate) (driver.Record, error) {
	cur, ok := s.record(u.Kind, u.ID)
	if !ok {
		return driver.Record{}, errorf(driver.NotFound, "no %s %q", u.Kind, u.ID)
	}
	var account, contact string
	if u.AccountID != nil {
		account = *u.AccountID
	}
	if u.ContactID != nil {
		contact = *u.ContactID
	}
	if err := s.checkRefs(account, contact); err != nil {
		return driver.Record{}, err
	}
	switch u.Kind {
	case driver.RecordAccount:
		i := s.accountByID[u.ID]
		a := &s.accounts[i]
		if u.Name != nil {
			a.Name = *u.Name
		}
		if u.Domains != nil {
			reindex(s.accountsByDom, i, uniqueSorted(a.Domains), uniqueSorted(*u.Domains))
			a.Domains = slices.Clone(*u.Domains)
		}
	case driver.RecordContact:
		i := s.contactByID[u.ID]
		c := &s.contacts[i]
		if u.Name != nil {
			c.Name = *u.Name
		}
		if u.Email != nil {
			if *u.Email == "" {
				return driver.Record{}, errorf(driver.InvalidArgument, "contact without address")
			}
			reindex(s.contactsByEmail, i, []string{c.Email}, []string{*u.Email})
			c.Email = *u.Email
		}
		if u.AccountID != nil {
			c.AccountID = *u.AccountID
		}
		if f := mergeFields(s.recs.contactFields[c.ID], u.Fields); len(f) > 0 {
			s.recs.contactFields[c.ID] = f
		} else {
			delete(s.recs.contactFields, c.ID)
		}
	case driver.RecordAsset:
		next := cur
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Serial != nil {
			next.Serial = *u.Serial
		}
		if u.AccountID != nil {
			next.AccountID = *u.AccountID
		}
		if u.ContactID != nil {
			next.ContactID = *u.ContactID
		}
		next.Fields = mergeFields(cur.Fields, u.Fields)
		oldKey, newKey := serialKey(cur.AccountID, cur.Serial), serialKey(next.AccountID, next.Serial)
		if next.Serial != "" && newKey != oldKey {
			if _, dup := s.recs.assetBySerial[newKey]; dup {
				return driver.Record{}, errorf(driver.AlreadyExists, "serial %q is taken in that account", next.Serial)
			}
		}
		if cur.Serial != "" {
			delete(s.recs.assetBySerial, oldKey)
		}
		if next.Serial != "" {
			s.recs.assetBySerial[newKey] = next.ID
		}
		s.recs.assets[s.recs.assetByID[u.ID]] = next
	}
	out, _ := s.record(u.Kind, u.ID)
	return out, nil
}
