package drivertest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The tests of driver.Records and driver.RecordBatcher.

var (
	needRecords = append(slices.Clone(needDir), need{"driver.Records", func(c Capabilities) bool { return c.Records }})
	needBatch   = append(slices.Clone(needRecords), need{"driver.RecordBatcher", func(c Capabilities) bool { return c.RecordBatcher }})
)

// recordTests are the record behaviours of the suite.
var recordTests = []test{
	{name: "RecordsAccount", needs: needRecords, run: testRecordsAccount},
	{name: "RecordsContact", needs: needRecords, run: testRecordsContact},
	{name: "RecordsAsset", needs: needRecords, run: testRecordsAsset},
	{name: "RecordsNotFound", needs: needRecords, run: testRecordsNotFound},
	{name: "RecordsIdempotentCreate", needs: needRecords, run: testRecordsIdempotent},
	{name: "RecordsShareTheDirectory", needs: needRecords, run: testRecordsDirectory},
	{name: "RecordsNormalisedByStore", needs: needRecords, run: testRecordsNormalised},
	{name: "RecordsBatchInOrderReportsPrefix", needs: needRecords, run: testRecordsBatchPrefix},
	{name: "RecordsBatchAllOrNothing", needs: needBatch, run: testRecordsBatchAtomic},
	{name: "RecordsBatchConcurrent", needs: needBatch, run: testRecordsBatchConcurrent},
}

func (f *fixture) recs() driver.Records { return f.d.(driver.Records) }

func (f *fixture) createRecord(r *driver.Record, key string) driver.Record {
	f.t.Helper()
	out, err := f.recs().CreateRecord(f.ctx, r, key)
	f.noErr(err, "CreateRecord "+string(r.Kind))
	if out.ID == "" || out.Kind != r.Kind {
		f.t.Fatalf("CreateRecord returned %+v: want an ID and kind %s", out, r.Kind)
	}
	return out
}

func (f *fixture) findRecord(k driver.RecordKey, what string) driver.Record {
	f.t.Helper()
	r, err := f.recs().FindRecord(f.ctx, &k)
	f.noErr(err, "FindRecord "+what)
	return r
}

func (f *fixture) noRecord(k driver.RecordKey, what string) {
	f.t.Helper()
	_, err := f.recs().FindRecord(f.ctx, &k)
	f.wantDriverCode(err, driver.NotFound, "FindRecord "+what)
}

// sameRecord compares records, nil and empty Fields and Domains alike.
func (f *fixture) sameRecord(got, want driver.Record, what string) {
	f.t.Helper()
	norm := func(r driver.Record) driver.Record {
		if len(r.Fields) == 0 {
			r.Fields = nil
		}
		if len(r.Domains) == 0 {
			r.Domains = nil
		}
		return r
	}
	g, w := norm(got), norm(want)
	if g.Kind != w.Kind || g.ID != w.ID || g.Name != w.Name || !slices.Equal(g.Domains, w.Domains) || g.Email != w.Email ||
		g.Serial != w.Serial || g.AccountID != w.AccountID || g.ContactID != w.ContactID || !maps.Equal(g.Fields, w.Fields) {
		f.t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func testRecordsAccount(f *fixture) {
	d1, d2, d3 := f.domain("acme"), f.domain("acme-eu"), f.domain("acme-new")
	name := "Acme " + f.tag
	a := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: name, Domains: []string{d1, d2}}, "")
	want := driver.Record{Kind: driver.RecordAccount, ID: a.ID, Name: name, Domains: []string{d1, d2}}
	f.sameRecord(a, want, "CreateRecord account")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, ID: a.ID}, "by ID"), want, "account by ID")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Name: name}, "by name"), want, "account by name")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: d2}, "by domain"), want, "account by domain")
	accs, err := f.dir().FindAccounts(f.ctx, d1)
	f.noErr(err, "FindAccounts")
	if len(accs) != 1 || accs[0].ID != a.ID {
		f.t.Fatalf("FindAccounts(%q) = %+v, want the account created by CreateRecord", d1, accs)
	}

	// Nil fields are left alone.
	got, err := f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAccount, ID: a.ID})
	f.noErr(err, "empty UpdateRecord")
	f.sameRecord(got, want, "empty update")
	got, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAccount, ID: a.ID, Name: ptr(name + " Ltd")})
	f.noErr(err, "UpdateRecord name")
	want.Name = name + " Ltd"
	f.sameRecord(got, want, "after renaming")
	f.noRecord(driver.RecordKey{Kind: driver.RecordAccount, Name: name}, "by the old name")
	// Domains replace the list.
	got, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAccount, ID: a.ID, Domains: &[]string{d3}})
	f.noErr(err, "UpdateRecord domains")
	want.Domains = []string{d3}
	f.sameRecord(got, want, "after replacing the domains")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, ID: a.ID}, "by ID"), want, "account read back")
	f.noRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: d1}, "by a removed domain")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: d3}, "by the new domain"), want, "by the new domain")
	if accs, err := f.dir().FindAccounts(f.ctx, d1); err != nil || len(accs) != 0 {
		f.t.Fatalf("FindAccounts(removed domain) = %+v, %v; want none", accs, err)
	}

	// Shared names and domains find the account created first.
	b := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: want.Name, Domains: []string{d3}}, "")
	if b.ID == a.ID {
		f.t.Fatal("a second account with the same name got the same ID")
	}
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Name: want.Name}, "shared name"), want, "a shared name finds the first")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: d3}, "shared domain"), want, "a shared domain finds the first")
}

func testRecordsContact(f *fixture) {
	acc := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Contact's account " + f.tag}, "")
	addr := f.addr("ann")
	name := `Ann O'Brien "; DROP TABLE contacts; -- Zoë 日本`
	fields := map[string]string{"phone": "+41 44 000 00 00", "note": "line 1\nline 2 'quoted' \"double\" \\ 😀", "tier": "gold"}
	c := f.createRecord(&driver.Record{Kind: driver.RecordContact, Name: name, Email: addr, AccountID: acc.ID, Fields: fields}, "")
	want := driver.Record{Kind: driver.RecordContact, ID: c.ID, Name: name, Email: addr, AccountID: acc.ID, Fields: fields}
	f.sameRecord(c, want, "CreateRecord contact")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, ID: c.ID}, "by ID"), want, "contact by ID")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, Email: addr}, "by address"), want, "contact by address")

	// Fields merge: set, removed with "", others kept.
	got, err := f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordContact, ID: c.ID,
		Fields: map[string]string{"phone": "+41 44 111 11 11", "tier": "", "city": "Zürich"}})
	f.noErr(err, "UpdateRecord fields")
	want.Fields = map[string]string{"phone": "+41 44 111 11 11", "note": fields["note"], "city": "Zürich"}
	f.sameRecord(got, want, "after merging fields")
	// A new address, and the account detached.
	addr2 := f.addr("ann.new")
	got, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordContact, ID: c.ID, Email: &addr2, AccountID: ptr("")})
	f.noErr(err, "UpdateRecord address")
	want.Email, want.AccountID = addr2, ""
	f.sameRecord(got, want, "after changing the address")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, ID: c.ID}, "by ID"), want, "contact read back")
	f.noRecord(driver.RecordKey{Kind: driver.RecordContact, Email: addr}, "by the old address")
	cs, err := f.dir().FindContacts(f.ctx, addr2)
	f.noErr(err, "FindContacts")
	if len(cs) != 1 || cs[0].ID != c.ID || cs[0].Name != name || cs[0].Placeholder || cs[0].Internal {
		f.t.Fatalf("FindContacts(new address) = %+v, want the contact, neither placeholder nor internal", cs)
	}
	if cs, err := f.dir().FindContacts(f.ctx, addr); err != nil || len(cs) != 0 {
		f.t.Fatalf("FindContacts(old address) = %+v, %v; want none", cs, err)
	}

	// References must exist; nothing is created or changed otherwise.
	missing := "account-missing-" + f.tag
	_, err = f.recs().CreateRecord(f.ctx, &driver.Record{Kind: driver.RecordContact, Email: f.addr("orphan"), AccountID: missing}, "")
	f.wantDriverCode(err, driver.NotFound, "CreateRecord contact of a missing account")
	f.noRecord(driver.RecordKey{Kind: driver.RecordContact, Email: f.addr("orphan")}, "a contact refused")
	_, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordContact, ID: c.ID, Name: ptr("changed"), AccountID: &missing})
	f.wantDriverCode(err, driver.NotFound, "UpdateRecord contact to a missing account")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, ID: c.ID}, "by ID"), want, "a refused update changes nothing")
}

func testRecordsAsset(f *fixture) {
	acc := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Owner " + f.tag}, "")
	other := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Other " + f.tag}, "")
	ct := f.createRecord(&driver.Record{Kind: driver.RecordContact, Email: f.addr("owner"), AccountID: acc.ID}, "")
	serial := "SN-" + f.tag
	fields := map[string]string{"model": "LaserJet 4", "warranty": "2027-01-31"}
	a := f.createRecord(&driver.Record{Kind: driver.RecordAsset, Name: "Printer", Serial: serial, AccountID: acc.ID, ContactID: ct.ID, Fields: fields}, "")
	want := driver.Record{Kind: driver.RecordAsset, ID: a.ID, Name: "Printer", Serial: serial, AccountID: acc.ID, ContactID: ct.ID, Fields: fields}
	f.sameRecord(a, want, "CreateRecord asset")
	if a.ID == acc.ID || a.ID == ct.ID {
		f.t.Fatalf("asset ID %q collides with another record's", a.ID)
	}
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, ID: a.ID}, "by ID"), want, "asset by ID")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: serial, AccountID: acc.ID}, "by serial"), want, "asset by serial")
	f.noRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: serial}, "by serial in no account")

	// The serial is unique per account.
	_, err := f.recs().CreateRecord(f.ctx, &driver.Record{Kind: driver.RecordAsset, Name: "Copy", Serial: serial, AccountID: acc.ID}, "")
	f.wantDriverCode(err, driver.AlreadyExists, "CreateRecord asset with a taken serial")
	b := f.createRecord(&driver.Record{Kind: driver.RecordAsset, Name: "Same serial elsewhere", Serial: serial, AccountID: other.ID}, "")
	c := f.createRecord(&driver.Record{Kind: driver.RecordAsset, Name: "Same serial, no account", Serial: serial}, "")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: serial, AccountID: other.ID}, "other account"), b, "serial in another account")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: serial}, "no account"), c, "serial in no account")
	for i := range 2 { // assets without a serial never conflict
		f.createRecord(&driver.Record{Kind: driver.RecordAsset, Name: "Cable " + strconv.Itoa(i), AccountID: acc.ID}, "")
	}
	_, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAsset, ID: b.ID, AccountID: &acc.ID})
	f.wantDriverCode(err, driver.AlreadyExists, "UpdateRecord asset into an account holding its serial")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, ID: b.ID}, "by ID"), b, "a refused update changes nothing")

	// Update: serial freed and taken over, fields merged, contact detached.
	got, err := f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAsset, ID: a.ID, Serial: ptr(serial + "-2"),
		ContactID: ptr(""), Fields: map[string]string{"warranty": "", "site": "Basel"}})
	f.noErr(err, "UpdateRecord asset")
	want.Serial, want.ContactID, want.Fields = serial+"-2", "", map[string]string{"model": "LaserJet 4", "site": "Basel"}
	f.sameRecord(got, want, "after the update")
	f.noRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: serial, AccountID: acc.ID}, "by the freed serial")
	got, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAsset, ID: b.ID, AccountID: &acc.ID})
	f.noErr(err, "UpdateRecord asset into the account after the serial was freed")
	b.AccountID = acc.ID
	f.sameRecord(got, b, "moved asset")
	_, err = f.recs().CreateRecord(f.ctx, &driver.Record{Kind: driver.RecordAsset, Name: "Ghost", ContactID: "contact-missing-" + f.tag}, "")
	f.wantDriverCode(err, driver.NotFound, "CreateRecord asset of a missing contact")
}

func testRecordsNotFound(f *fixture) {
	acc := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Known " + f.tag}, "")
	for _, k := range []driver.RecordKey{
		{Kind: driver.RecordAccount, ID: "missing-3f2a"},
		{Kind: driver.RecordContact, ID: acc.ID}, // an ID of another kind
		{Kind: driver.RecordAsset, ID: acc.ID},
		{Kind: driver.RecordAccount, Name: "Nobody " + f.tag},
		{Kind: driver.RecordAccount, Domain: f.domain("nobody")},
		{Kind: driver.RecordContact, Email: f.addr("nobody")},
		{Kind: driver.RecordAsset, Serial: "no-such-serial-" + f.tag},
	} {
		f.noRecord(k, "for "+k.ID+k.Name+k.Domain+k.Email+k.Serial)
	}
	for _, kind := range []driver.RecordKind{driver.RecordAccount, driver.RecordContact, driver.RecordAsset} {
		_, err := f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: kind, ID: "missing-3f2a", Name: ptr("x")})
		f.wantDriverCode(err, driver.NotFound, "UpdateRecord of a missing "+string(kind))
	}
	_, ok, err := f.s.FindRecord(f.ctx, &driver.RecordKey{Kind: driver.RecordContact, ID: "missing-3f2a"})
	if err != nil || ok {
		f.t.Fatalf("Store.FindRecord(missing) = ok %v, %v; want not ok and no error", ok, err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	_, err = f.recs().FindRecord(ctx, &driver.RecordKey{Kind: driver.RecordAccount, ID: acc.ID})
	f.wantDriverCode(err, driver.Canceled, "FindRecord with a cancelled context")
	_, err = f.recs().CreateRecord(ctx, &driver.Record{Kind: driver.RecordAccount, Name: "x"}, "")
	f.wantDriverCode(err, driver.Canceled, "CreateRecord with a cancelled context")
}

func testRecordsIdempotent(f *fixture) {
	key := "support\x00req-" + f.tag + "@ops.example.com\x00#1" // shaped like the structured-mail keys
	d := f.domain("idem")
	a := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Idem " + f.tag, Domains: []string{d}}, key)
	again := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Idem " + f.tag, Domains: []string{d}}, key)
	f.sameRecord(again, a, "CreateRecord with a used key returns the first record")
	accs, err := f.dir().FindAccounts(f.ctx, d)
	f.noErr(err, "FindAccounts")
	if len(accs) != 1 {
		f.t.Fatalf("after two creations with one key, %d accounts own the domain, want 1", len(accs))
	}
	// The record as it is now.
	_, err = f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordAccount, ID: a.ID, Name: ptr("Renamed " + f.tag)})
	f.noErr(err, "UpdateRecord")
	again = f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Idem " + f.tag}, key)
	if again.ID != a.ID || again.Name != "Renamed "+f.tag {
		f.t.Fatalf("CreateRecord with a used key = %+v, want the first record as it is now", again)
	}
	_, err = f.recs().CreateRecord(f.ctx, &driver.Record{Kind: driver.RecordContact, Email: f.addr("idem")}, key)
	f.wantDriverCode(err, driver.AlreadyExists, "CreateRecord of a contact with an account's key")
	// Another key differing only after a NUL is another key.
	b := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "Idem " + f.tag}, key+"2")
	if b.ID == a.ID {
		f.t.Fatal("two different keys created one record")
	}
	// Without a key, every call creates.
	c1 := f.createRecord(&driver.Record{Kind: driver.RecordContact, Email: f.addr("nokey")}, "")
	c2 := f.createRecord(&driver.Record{Kind: driver.RecordContact, Email: f.addr("nokey")}, "")
	if c1.ID == c2.ID {
		f.t.Fatal("two creations without a key made one record")
	}
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, Email: f.addr("nokey")}, "a shared address"), c1,
		"a shared address finds the contact created first")
}

func testRecordsDirectory(f *fixture) {
	c, err := f.dir().CreateContact(f.ctx, &driver.NewContact{Name: "Dir", Email: f.addr("dir")})
	f.noErr(err, "CreateContact")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, ID: c.ID}, "a Directory contact"),
		driver.Record{Kind: driver.RecordContact, ID: c.ID, Name: "Dir", Email: f.addr("dir")}, "a Directory contact as a record")
	got, err := f.recs().UpdateRecord(f.ctx, &driver.RecordUpdate{Kind: driver.RecordContact, ID: c.ID, Fields: map[string]string{"k": "v"}})
	f.noErr(err, "UpdateRecord of a Directory contact")
	if got.Fields["k"] != "v" || got.Email != f.addr("dir") {
		f.t.Fatalf("UpdateRecord of a Directory contact = %+v", got)
	}
	if dw, ok := f.d.(driver.DirectoryWriter); ok {
		d := f.domain("dirw")
		a, err := dw.CreateAccount(f.ctx, &driver.NewAccount{Name: "DirW " + f.tag, Domains: []string{d}})
		f.noErr(err, "CreateAccount")
		f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: d}, "a DirectoryWriter account"),
			driver.Record{Kind: driver.RecordAccount, ID: a.ID, Name: a.Name, Domains: []string{d}}, "a DirectoryWriter account as a record")
	}
}

func testRecordsNormalised(f *fixture) {
	tagU := "X" + f.tag
	r, err := f.s.CreateRecord(f.ctx, &mailcase.Record{Kind: mailcase.RecordContact, Name: "  Ann\r\nBcc: evil@example.com ",
		Email: "Ann." + tagU + "@EXAMPLE.com"}, "")
	f.noErr(err, "Store.CreateRecord")
	wantAddr := mailcase.NormalizeAddress("Ann." + tagU + "@EXAMPLE.com")
	if r.Email != wantAddr || r.Name != "Ann  Bcc: evil@example.com" {
		f.t.Fatalf("Store.CreateRecord stored %q <%s>, want the name without CR/LF and %s", r.Name, r.Email, wantAddr)
	}
	got, ok, err := f.s.FindRecord(f.ctx, &mailcase.RecordKey{Kind: mailcase.RecordContact, Email: "ANN." + tagU + "@example.COM"})
	if err != nil || !ok || got.ID != r.ID {
		f.t.Fatalf("Store.FindRecord by an address in other case = %+v, %v, %v", got, ok, err)
	}
	dom := "Acme-" + tagU + ".Example.ORG."
	a, err := f.s.CreateRecord(f.ctx, &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Acme", Domains: []string{dom, mailcase.NormalizeDomain(dom)}}, "")
	f.noErr(err, "Store.CreateRecord account")
	if len(a.Domains) != 1 || a.Domains[0] != mailcase.NormalizeDomain(dom) {
		f.t.Fatalf("domains stored as %q, want one normalised %q", a.Domains, mailcase.NormalizeDomain(dom))
	}
	for _, tc := range []struct {
		name string
		r    mailcase.Record
	}{
		{"unknown kind", mailcase.Record{Kind: "ticket", Name: "x"}},
		{"account without name", mailcase.Record{Kind: mailcase.RecordAccount, Name: " \r\n"}},
		{"account with an address", mailcase.Record{Kind: mailcase.RecordAccount, Name: "x", Email: f.addr("a")}},
		{"contact without address", mailcase.Record{Kind: mailcase.RecordContact, Name: "x"}},
		{"contact with a bad address", mailcase.Record{Kind: mailcase.RecordContact, Email: "not an address"}},
		{"contact with a serial", mailcase.Record{Kind: mailcase.RecordContact, Email: f.addr("b"), Serial: "1"}},
		{"asset with domains", mailcase.Record{Kind: mailcase.RecordAsset, Name: "x", Domains: []string{"example.com"}}},
		{"field without name", mailcase.Record{Kind: mailcase.RecordAsset, Name: "x", Fields: map[string]string{" ": "v"}}},
		{"bad domain", mailcase.Record{Kind: mailcase.RecordAccount, Name: "x", Domains: []string{"not a domain"}}},
	} {
		_, err := f.s.CreateRecord(f.ctx, &tc.r, "")
		f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.CreateRecord "+tc.name)
	}
	_, _, err = f.s.FindRecord(f.ctx, &mailcase.RecordKey{Kind: mailcase.RecordContact, Name: "x"})
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.FindRecord contact by name")
	_, _, err = f.s.FindRecord(f.ctx, &mailcase.RecordKey{Kind: mailcase.RecordAccount, ID: "1", Name: "x"})
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.FindRecord with two keys")
}

// batch returns a batch creating an account, a contact in it and an asset
// of both, then a third action given by last.
func (f *fixture) batch(name string, last *driver.RecordAction) []driver.RecordAction {
	acts := []driver.RecordAction{
		{Create: &driver.Record{Kind: driver.RecordAccount, Name: name, Domains: []string{f.domain(name)}}, Key: "batch\x00" + name},
		{Create: &driver.Record{Kind: driver.RecordContact, Email: f.addr(name), Fields: map[string]string{"role": "buyer"}}, AccountRef: 1},
	}
	if last != nil {
		acts = append(acts, *last)
	}
	return acts
}

func (f *fixture) wantNothingOf(name, what string) {
	f.t.Helper()
	f.noRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: f.domain(name)}, what+": the batch's account")
	f.noRecord(driver.RecordKey{Kind: driver.RecordContact, Email: f.addr(name)}, what+": the batch's contact")
}

func wantActionError(f *fixture, err error, index int, code driver.ErrorCode, what string) {
	f.t.Helper()
	var ae *driver.RecordActionError
	if !errors.As(err, &ae) || ae.Index != index {
		f.t.Fatalf("%s: error %v: want a *RecordActionError for action %d", what, err, index)
	}
	if got := mailcase.Code(err); got != code {
		f.t.Fatalf("%s: mailcase.Code(%v) = %v, want %v", what, err, got, code)
	}
}

// recordsOnly hides RecordBatcher, so the Store applies batches in order.
type recordsOnly struct {
	driver.CaseStore
	driver.Records
}

func (recordsOnly) Close() error { return nil } // the fixture's Store closes the driver

func testRecordsBatchPrefix(f *fixture) {
	s := mailcase.NewStore(recordsOnly{f.d, f.recs()}, nil)
	if s.CanBatchRecords() {
		f.t.Fatal("CanBatchRecords is true for a driver without RecordBatcher")
	}
	name := "prefix-" + f.tag
	serial := "SN-" + f.tag
	acc := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "holder " + f.tag}, "")
	f.createRecord(&driver.Record{Kind: driver.RecordAsset, Name: "taken", Serial: serial, AccountID: acc.ID}, "")
	res, err := s.ApplyRecords(f.ctx, f.batch(name, &driver.RecordAction{
		Create: &driver.Record{Kind: driver.RecordAsset, Name: "dup", Serial: serial, AccountID: acc.ID}}))
	wantActionError(f, err, 2, driver.AlreadyExists, "ApplyRecords in order")
	if res.Atomic || len(res.Records) != 2 || res.Records[0].Kind != driver.RecordAccount || res.Records[1].AccountID != res.Records[0].ID {
		f.t.Fatalf("ApplyRecords in order: result %+v, want the two applied records, not atomic", res)
	}
	f.findRecord(driver.RecordKey{Kind: driver.RecordContact, Email: f.addr(name)}, "the applied contact")
	// An invalid batch applies nothing.
	name2 := "invalid-" + f.tag
	_, err = s.ApplyRecords(f.ctx, f.batch(name2, &driver.RecordAction{Create: &driver.Record{Kind: driver.RecordAsset, Name: "x"}, AccountRef: 3}))
	wantActionError(f, err, 2, driver.InvalidArgument, "ApplyRecords with a forward reference")
	f.wantNothingOf(name2, "an invalid batch")
	res, err = s.ApplyRecords(f.ctx, f.batch("ok-"+f.tag, nil))
	f.noErr(err, "ApplyRecords")
	if len(res.Records) != 2 || res.Records[1].AccountID != res.Records[0].ID || res.Records[1].Fields["role"] != "buyer" {
		f.t.Fatalf("ApplyRecords = %+v", res)
	}
}

func testRecordsBatchAtomic(f *fixture) {
	if !f.s.CanBatchRecords() {
		f.t.Fatal("CanBatchRecords is false for a RecordBatcher")
	}
	name := "atomic-" + f.tag
	res, err := f.s.ApplyRecords(f.ctx, f.batch(name, &driver.RecordAction{
		Create: &driver.Record{Kind: driver.RecordAsset, Name: "Router", Serial: "R-1"}, AccountRef: 1, ContactRef: 2}))
	f.noErr(err, "ApplyRecords")
	if !res.Atomic || len(res.Records) != 3 {
		f.t.Fatalf("ApplyRecords = %+v, want 3 records, atomic", res)
	}
	acc, ct, as := res.Records[0], res.Records[1], res.Records[2]
	if ct.AccountID != acc.ID || as.AccountID != acc.ID || as.ContactID != ct.ID {
		f.t.Fatalf("references not resolved: %+v", res.Records)
	}
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: "R-1", AccountID: acc.ID}, "the batch's asset"), as, "asset read back")
	// The same batch again: the keyed account is not created twice; the
	// asset's serial is taken now, so the batch fails and changes nothing.
	_, err = f.s.ApplyRecords(f.ctx, f.batch(name, &driver.RecordAction{
		Create: &driver.Record{Kind: driver.RecordAsset, Name: "Router", Serial: "R-1"}, AccountRef: 1}))
	wantActionError(f, err, 2, driver.AlreadyExists, "replayed batch")
	cs, err := f.dir().FindContacts(f.ctx, f.addr(name))
	f.noErr(err, "FindContacts")
	if len(cs) != 1 {
		f.t.Fatalf("after a failed replay %d contacts have the batch's address, want 1 (nothing of the failed batch)", len(cs))
	}

	// A failing third action leaves nothing of the first two, keys included.
	name2 := "rollback-" + f.tag
	_, err = f.d.(driver.RecordBatcher).ApplyRecords(f.ctx, f.batch(name2, &driver.RecordAction{
		Update: &driver.RecordUpdate{Kind: driver.RecordAccount, ID: "missing-3f2a", Name: ptr("x")}}))
	var ae *driver.RecordActionError
	if !errors.As(err, &ae) || ae.Index != 2 || f.d.ErrorCode(err) != driver.NotFound {
		f.t.Fatalf("driver ApplyRecords with a failing third action: %v (code %v), want a NotFound *RecordActionError for action 2", err, f.d.ErrorCode(err))
	}
	f.wantNothingOf(name2, "a rolled-back batch")
	r := f.createRecord(&driver.Record{Kind: driver.RecordContact, Email: f.addr("after")}, "batch\x00"+name2)
	if r.Kind != driver.RecordContact {
		f.t.Fatal("the key of a rolled-back batch was kept")
	}
	// Updates roll back too.
	res2, err := f.s.ApplyRecords(f.ctx, []driver.RecordAction{
		{Update: &driver.RecordUpdate{Kind: driver.RecordContact, ID: ct.ID, Name: ptr("renamed"), Fields: map[string]string{"role": ""}}},
		{Update: &driver.RecordUpdate{Kind: driver.RecordAccount, ID: acc.ID, Domains: &[]string{f.domain("moved")}}},
		{Create: &driver.Record{Kind: driver.RecordAsset, Name: "Dup", Serial: "R-1", AccountID: acc.ID}},
	})
	wantActionError(f, err, 2, driver.AlreadyExists, "batch of updates")
	if !res2.Atomic || len(res2.Records) != 0 {
		f.t.Fatalf("failed atomic batch result %+v, want no records", res2)
	}
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordContact, ID: ct.ID}, "contact"), ct, "a rolled-back update")
	f.sameRecord(f.findRecord(driver.RecordKey{Kind: driver.RecordAccount, Domain: f.domain(name)}, "account"), acc, "a rolled-back domain change")
	// An empty batch does nothing.
	res, err = f.s.ApplyRecords(f.ctx, nil)
	if err != nil || len(res.Records) != 0 {
		f.t.Fatalf("empty batch: %+v, %v", res, err)
	}
}

func testRecordsBatchConcurrent(f *fixture) {
	acc := f.createRecord(&driver.Record{Kind: driver.RecordAccount, Name: "race " + f.tag}, "")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Keyed creations: the Store may retry a batch that lost a
			// deadlock (Unavailable), as the databases ask.
			key := "race\x00" + f.tag + "\x00" + strconv.Itoa(i)
			_, errs[i] = f.s.ApplyRecords(f.ctx, []driver.RecordAction{
				{Create: &driver.Record{Kind: driver.RecordContact, Email: f.addr("racer" + strconv.Itoa(i)), AccountID: acc.ID}, Key: key + "#1"},
				{Create: &driver.Record{Kind: driver.RecordAsset, Name: "prize", Serial: "ONE", AccountID: acc.ID}, Key: key + "#2", ContactRef: 1},
			})
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			f.t.Fatalf("batches %d and %d both created serial ONE", won, i)
		case err == nil:
			won = i
		case mailcase.Code(err) != driver.AlreadyExists:
			f.t.Fatalf("batch %d: %v, want AlreadyExists", i, err)
		}
	}
	if won < 0 {
		f.t.Fatal("no batch succeeded")
	}
	as := f.findRecord(driver.RecordKey{Kind: driver.RecordAsset, Serial: "ONE", AccountID: acc.ID}, "the prize")
	for i := range n {
		cs, err := f.dir().FindContacts(f.ctx, f.addr("racer"+strconv.Itoa(i)))
		f.noErr(err, "FindContacts")
		if want := map[bool]int{true: 1, false: 0}[i == won]; len(cs) != want {
			f.t.Fatalf("batch %d (winner %d) left %d contacts, want %d", i, won, len(cs), want)
		}
		if i == won && as.ContactID != cs[0].ID {
			f.t.Fatalf("the prize's contact is %q, want the winner's %q", as.ContactID, cs[0].ID)
		}
	}
}
