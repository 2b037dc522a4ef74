package xmlapi_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/xmlapi"
)

const recordsReq = `<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <secret>s3cret</secret>
  <createAccount name="Acme" domains="Acme.example, acme.EU"/>
  <createContact email="Ann@Acme.example" name="Ann" account="Acme">
    <field name="phone">+41 44 000 00 00</field>
  </createContact>
  <createAsset name="Printer" serial="SN-1" account="@acme.eu" contact="ann@acme.example">
    <field name="model">LaserJet 4</field>
  </createAsset>
  <createCase contact="ann@acme.example"><subject>Printer SN-1 is on fire</subject></createCase>
</request>`

const updateReq = `<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <secret>s3cret</secret>
  <createAccount name="Globex"/>
  <updateAccount account="@acme.example" name="Acme Ltd" domains="acme.example"/>
  <updateContact email="ann@acme.example" newEmail="ann@acme.ch" name="Ann B" account="Globex">
    <field name="phone"></field><field name="city">Basel</field>
  </updateContact>
  <updateAsset serial="SN-1" account="Acme" newSerial="SN-2" name="Printer 2">
    <field name="model">LaserJet 5</field>
  </updateAsset>
</request>`

// storeKinds opens the stores the record tests run on: memstore, and
// SQLite through sqlstore.
func storeKinds(t *testing.T) map[string]func(t *testing.T) *mailcase.Store {
	t.Helper()
	return map[string]func(t *testing.T) *mailcase.Store{
		"memstore": newStore,
		"sqlite": func(t *testing.T) *mailcase.Store {
			t.Helper()
			s, err := sqlstore.OpenURL(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "cases.db"), nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

func recordsHandler(t *testing.T, s xmlapi.Store) *xmlapi.Handler {
	t.Helper()
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}, Secret: "s3cret"})
	require.NoError(t, err)
	return h
}

func find(t *testing.T, s *mailcase.Store, k mailcase.RecordKey) (mailcase.Record, bool) {
	t.Helper()
	r, ok, err := s.FindRecord(t.Context(), &k)
	require.NoError(t, err)
	return r, ok
}

func TestHandler_RecordActions(t *testing.T) {
	for name, open := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t)
			h := recordsHandler(t, s)
			d := delivery("erp@ops.example.com", recordsReq)
			res, err := h.HandleStructured(ctx, d)
			require.NoError(t, err)
			require.Equal(t, "ran 4 actions", res.Action, res.Reason)

			acc, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Acme"})
			require.True(t, ok)
			assert.Equal(t, []string{"acme.example", "acme.eu"}, acc.Domains)
			ann, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordContact, Email: "ann@acme.example"})
			require.True(t, ok)
			assert.Equal(t, "Ann", ann.Name)
			assert.Equal(t, acc.ID, ann.AccountID)
			assert.Equal(t, map[string]string{"phone": "+41 44 000 00 00"}, ann.Fields)
			asset, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAsset, Serial: "SN-1", AccountID: acc.ID})
			require.True(t, ok)
			assert.Equal(t, "Printer", asset.Name)
			assert.Equal(t, ann.ID, asset.ContactID)
			assert.Equal(t, map[string]string{"model": "LaserJet 4"}, asset.Fields)
			c, ok, err := s.GetCase(ctx, res.CaseID)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, ann.ID, c.ContactID, "the case names the contact the same request created")
			assert.Equal(t, acc.ID, c.AccountID)

			// A redelivery creates nothing twice.
			_, err = h.HandleStructured(ctx, d)
			require.NoError(t, err)
			accs, err := s.FindAccounts(ctx, "acme.eu")
			require.NoError(t, err)
			assert.Len(t, accs, 1)
			cs, err := s.FindContacts(ctx, "ann@acme.example")
			require.NoError(t, err)
			assert.Len(t, cs, 1)

			// Updates by natural key.
			d2 := delivery("erp@ops.example.com", updateReq)
			d2.Message.ID = "req-2@ops.example.com"
			res, err = h.HandleStructured(ctx, d2)
			require.NoError(t, err)
			require.Equal(t, "ran 4 actions", res.Action, res.Reason)
			glob, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Globex"})
			require.True(t, ok)
			acc2, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, ID: acc.ID})
			require.True(t, ok)
			assert.Equal(t, "Acme Ltd", acc2.Name)
			assert.Equal(t, []string{"acme.example"}, acc2.Domains)
			_, ok = find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Domain: "acme.eu"})
			assert.False(t, ok, "the removed domain no longer finds the account")
			ann2, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordContact, ID: ann.ID})
			require.True(t, ok)
			assert.Equal(t, "Ann B", ann2.Name)
			assert.Equal(t, "ann@acme.ch", ann2.Email)
			assert.Equal(t, glob.ID, ann2.AccountID)
			assert.Equal(t, map[string]string{"city": "Basel"}, ann2.Fields, "an empty field removes it, others are set")
			asset2, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAsset, Serial: "SN-2", AccountID: acc.ID})
			require.True(t, ok)
			assert.Equal(t, asset.ID, asset2.ID)
			assert.Equal(t, "Printer 2", asset2.Name)
			assert.Equal(t, ann.ID, asset2.ContactID, "absent attributes leave values alone")
			assert.Equal(t, map[string]string{"model": "LaserJet 5"}, asset2.Fields)
		})
	}
}

// failingThird creates an account and a contact, then an asset with a
// serial the account Holder already holds: the third action fails.
const failingThird = `<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <secret>s3cret</secret>
  <createAccount name="Initech" domains="initech.example"/>
  <createContact email="peter@initech.example" account="Initech"/>
  <createAsset name="Stapler" serial="RED-1" account="Holder"/>
</request>`

// seedHolder creates the account Holder with an asset of serial RED-1.
func seedHolder(t *testing.T, s *mailcase.Store) {
	t.Helper()
	ctx := t.Context()
	acc, err := s.CreateRecord(ctx, &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Holder"}, "")
	require.NoError(t, err)
	_, err = s.CreateRecord(ctx, &mailcase.Record{Kind: mailcase.RecordAsset, Name: "Stapler", Serial: "RED-1", AccountID: acc.ID}, "")
	require.NoError(t, err)
}

func TestHandler_RecordActionsAllOrNothing(t *testing.T) {
	for name, open := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t)
			require.True(t, s.CanBatchRecords())
			seedHolder(t, s)
			res, err := recordsHandler(t, s).HandleStructured(ctx, delivery("erp@ops.example.com", failingThird))
			require.NoError(t, err)
			assert.Equal(t, "admin", res.Action)
			assert.Contains(t, res.Reason, "action 3 failed")
			assert.Contains(t, res.Reason, "nothing was applied")
			_, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Initech"})
			assert.False(t, ok, "the first action left nothing")
			_, ok = find(t, s, mailcase.RecordKey{Kind: mailcase.RecordContact, Email: "peter@initech.example"})
			assert.False(t, ok, "the second action left nothing")
			c, ok, err := s.GetCase(ctx, res.CaseID)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, "admin", c.Queue, "the mail is kept in the admin queue")
		})
	}
}

// inOrder is a memstore driver without driver.RecordBatcher: the Store
// applies batches one action at a time.
type inOrder struct {
	driver.CaseStore
	driver.Directory
	driver.Records
}

func TestHandler_RecordActionsInOrderReportPrefix(t *testing.T) {
	ctx := t.Context()
	mem, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	d := mem.Driver()
	s := mailcase.NewStore(inOrder{d, d.(driver.Directory), d.(driver.Records)}, nil)
	t.Cleanup(func() { _ = s.Close() })
	require.True(t, s.HasRecords())
	require.False(t, s.CanBatchRecords())
	seedHolder(t, s)
	res, err := recordsHandler(t, s).HandleStructured(ctx, delivery("erp@ops.example.com", failingThird))
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, "action 3 failed")
	acc, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Initech"})
	require.True(t, ok, "without transactions the first action stays applied")
	peter, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordContact, Email: "peter@initech.example"})
	require.True(t, ok)
	assert.Contains(t, res.Reason, "applied before it, and kept: account "+acc.ID+" (action 1), contact "+peter.ID+" (action 2)")
}

func TestHandler_RecordActionsRefused(t *testing.T) {
	ns := `<request xmlns="urn:emailcrm:mailcase:v1" version="1"><secret>s3cret</secret>`
	tests := []struct {
		name, from, body, reason string
	}{
		{name: "stranger", from: "eve@evil.example", body: ns + `<createAccount name="Evil"/></request>`, reason: "allow list"},
		{name: "no secret", from: "erp@ops.example.com", body: strings.Replace(ns, "s3cret", "guess", 1) + `<createAccount name="Evil"/></request>`, reason: "not authenticated"},
		{name: "unknown account", from: "erp@ops.example.com", body: ns + `<createAccount name="Evil"/><createContact email="x@evil.example" account="Nowhere"/></request>`, reason: `action 2 failed`},
		{name: "missing name", from: "erp@ops.example.com", body: ns + `<createAccount name="Evil"/><createAsset serial="1"/></request>`, reason: "missing name attribute"},
		{name: "bad domain", from: "erp@ops.example.com", body: ns + `<createAccount name="Evil" domains="not..a..domain"/></request>`, reason: "invalid domain"},
		{name: "update of a record the request creates", from: "erp@ops.example.com", body: ns + `<createAccount name="Evil"/><updateAccount account="Evil" name="Good"/></request>`, reason: "created by the same request"},
		{name: "update of a missing record", from: "erp@ops.example.com", body: ns + `<createAccount name="Evil"/><updateContact email="nobody@evil.example" name="x"/></request>`, reason: "no such contact"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t)
			res, err := recordsHandler(t, s).HandleStructured(ctx, delivery(tc.from, tc.body))
			require.NoError(t, err)
			assert.Equal(t, "admin", res.Action)
			assert.Contains(t, res.Reason, tc.reason)
			_, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Evil"})
			assert.False(t, ok, "nothing of a refused request is applied")
		})
	}
}

// directoryOnly is a store without records: createContact keeps working
// through the Directory, record actions are refused.
type directoryOnly struct {
	driver.CaseStore
	driver.Directory
}

func TestHandler_RecordActionsWithoutRecords(t *testing.T) {
	ctx := t.Context()
	mem, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	d := mem.Driver()
	s := mailcase.NewStore(directoryOnly{d, d.(driver.Directory)}, nil)
	t.Cleanup(func() { _ = s.Close() })
	h := recordsHandler(t, s)
	ns := `<request xmlns="urn:emailcrm:mailcase:v1" version="1"><secret>s3cret</secret>`
	res, err := h.HandleStructured(ctx, delivery("erp@ops.example.com", ns+`<createContact email="bob@example.com" name="Bob"/></request>`))
	require.NoError(t, err)
	assert.Equal(t, "ran 1 actions", res.Action)
	cs, err := s.FindContacts(ctx, "bob@example.com")
	require.NoError(t, err)
	assert.Len(t, cs, 1)

	for i, body := range []string{`<createAccount name="Acme"/>`, `<createContact email="carol@example.com" account="Acme"/>`} {
		m := delivery("erp@ops.example.com", ns+body+`</request>`)
		m.Message.ID = fmt.Sprintf("other-%d@ops.example.com", i)
		res, err = h.HandleStructured(ctx, m)
		require.NoError(t, err)
		assert.Equal(t, "admin", res.Action, body)
		assert.Contains(t, res.Reason, "Unimplemented", body)
	}
}

func TestDecode_RecordActions(t *testing.T) {
	req, err := xmlapi.Decode(strings.NewReader(recordsReq), nil)
	require.NoError(t, err)
	require.Len(t, req.Actions, 4)
	a := req.Actions[2]
	assert.Equal(t, xmlName(xmlapi.ActCreateAsset), a.XMLName)
	assert.Equal(t, "SN-1", a.Serial)
	assert.Equal(t, "@acme.eu", a.Account)
	assert.Equal(t, "ann@acme.example", a.Contact)
	assert.Equal(t, []xmlapi.Field{{Name: "model", Value: "LaserJet 4"}}, a.Fields)
	for _, bad := range []string{
		`<updateAccount name="x"/>`, `<updateContact name="x"/>`, `<updateAsset name="x"/>`,
		`<createAccount domains="a.example"/>`, `<createContact email="a@b.example"><field>v</field></createContact>`,
	} {
		_, err := xmlapi.Decode(strings.NewReader(`<request xmlns="urn:emailcrm:mailcase:v1">`+bad+`</request>`), nil)
		assert.ErrorIs(t, err, xmlapi.ErrMalformed, bad)
	}
}

// FuzzRecordActions runs arbitrary documents with record actions through
// an authorised handler over memstore: it never panics, and every document
// either runs or goes to the admin queue, without a returned error.
func FuzzRecordActions(f *testing.F) {
	f.Add(recordsReq)
	f.Add(updateReq)
	f.Add(failingThird)
	f.Add(`<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret><createAsset name="a" account="@" contact="@"/></request>`)
	f.Add(`<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret><updateAsset id="asset-1" account="x"/></request>`)
	f.Fuzz(func(t *testing.T, body string) {
		s, err := memstore.OpenStore(nil)
		require.NoError(t, err)
		defer s.Close()
		h := recordsHandler(t, s)
		res, err := h.HandleStructured(t.Context(), delivery("erp@ops.example.com", body))
		if !h.IsStructured(delivery("erp@ops.example.com", body).Message) {
			return // the pipeline never hands such mail over; the admin path may refuse it
		}
		require.NoError(t, err)
		if res.Action != "admin" && !strings.HasPrefix(res.Action, "ran ") {
			t.Fatalf("result %+v: neither ran nor admin", res)
		}
	})
}

// A request whose updates change the natural key they find their record
// by (a new address, a new serial, a new name) runs again after a retry or
// a redelivery: the second run finds the records by their new keys and
// changes nothing more.
func TestHandler_RecordUpdatesRetried(t *testing.T) {
	const renameReq = `<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <secret>s3cret</secret>
  <updateAccount account="Acme" name="Acme Ltd"/>
  <updateContact email="ann@acme.example" newEmail="ann@acme.ch"/>
  <updateAsset serial="SN-1" account="@acme.eu" newSerial="SN-2"/>
</request>`
	for name, open := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t)
			h := recordsHandler(t, s)
			res, err := h.HandleStructured(ctx, delivery("erp@ops.example.com", recordsReq))
			require.NoError(t, err)
			require.NotEqual(t, "admin", res.Action, res.Reason)
			d := delivery("erp@ops.example.com", renameReq)
			d.Message.ID = "rename-1@ops.example.com"
			for run := range 2 {
				res, err = h.HandleStructured(ctx, d)
				require.NoError(t, err)
				require.Equal(t, "ran 3 actions", res.Action, "run %d: %s", run+1, res.Reason)
			}
			_, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordContact, Email: "ann@acme.ch"})
			assert.True(t, ok)
			acc, ok := find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Acme Ltd"})
			require.True(t, ok)
			_, ok = find(t, s, mailcase.RecordKey{Kind: mailcase.RecordAsset, Serial: "SN-2", AccountID: acc.ID})
			assert.True(t, ok)
		})
	}
}
