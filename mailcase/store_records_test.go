package mailcase_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// casesOnly hides every optional interface of a memstore driver.
type casesOnly struct{ driver.CaseStore }

func TestStoreRecords_UnimplementedWithoutTheRole(t *testing.T) {
	ctx := t.Context()
	mem, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	s := mailcase.NewStore(casesOnly{mem.Driver()}, nil)
	t.Cleanup(func() { _ = s.Close() })
	assert.False(t, s.HasRecords())
	assert.False(t, s.CanBatchRecords())
	_, err = s.CreateRecord(ctx, &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Acme"}, "")
	assert.ErrorIs(t, err, mailcase.ErrUnimplemented)
	_, err = s.UpdateRecord(ctx, &mailcase.RecordUpdate{Kind: mailcase.RecordAccount, ID: "account-1"})
	assert.ErrorIs(t, err, mailcase.ErrUnimplemented)
	_, _, err = s.FindRecord(ctx, &mailcase.RecordKey{Kind: mailcase.RecordAccount, ID: "account-1"})
	assert.ErrorIs(t, err, mailcase.ErrUnimplemented)
	_, err = s.ApplyRecords(ctx, nil)
	assert.ErrorIs(t, err, mailcase.ErrUnimplemented)
}

func TestStoreRecords_InvalidBatchAppliesNothing(t *testing.T) {
	ctx := t.Context()
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	acc := &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Acme"}
	upd := &mailcase.RecordUpdate{Kind: mailcase.RecordAccount, ID: "account-1"}
	tests := []struct {
		name  string
		acts  []mailcase.RecordAction
		index int
	}{
		{name: "neither create nor update", acts: []mailcase.RecordAction{{Create: acc}, {}}, index: 1},
		{name: "both", acts: []mailcase.RecordAction{{Create: acc, Update: upd}}, index: 0},
		{name: "reference to itself", acts: []mailcase.RecordAction{{Create: acc}, {Create: &mailcase.Record{Kind: mailcase.RecordContact, Email: "a@b.example"}, AccountRef: 2}}, index: 1},
		{name: "reference to a contact as account", acts: []mailcase.RecordAction{
			{Create: &mailcase.Record{Kind: mailcase.RecordContact, Email: "a@b.example"}},
			{Create: &mailcase.Record{Kind: mailcase.RecordAsset, Name: "x"}, AccountRef: 1}}, index: 1},
		{name: "contact reference of a contact", acts: []mailcase.RecordAction{
			{Create: &mailcase.Record{Kind: mailcase.RecordContact, Email: "a@b.example"}},
			{Create: &mailcase.Record{Kind: mailcase.RecordContact, Email: "c@b.example"}, ContactRef: 1}}, index: 1},
		{name: "invalid record", acts: []mailcase.RecordAction{{Create: acc}, {Create: &mailcase.Record{Kind: mailcase.RecordAccount}}}, index: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.ApplyRecords(ctx, tc.acts)
			require.ErrorIs(t, err, mailcase.ErrInvalidArgument)
			var ae *mailcase.RecordActionError
			require.True(t, errors.As(err, &ae), "%v", err)
			assert.Equal(t, tc.index, ae.Index)
			assert.Empty(t, res.Records)
			_, ok, err := s.FindRecord(ctx, &mailcase.RecordKey{Kind: mailcase.RecordAccount, Name: "Acme"})
			require.NoError(t, err)
			assert.False(t, ok, "an invalid batch applies nothing")
		})
	}
}

func ExampleStore_ApplyRecords() {
	ctx := context.Background()
	s, err := memstore.OpenStore(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	// An account, a contact in it and an asset of both, all or nothing.
	res, err := s.ApplyRecords(ctx, []mailcase.RecordAction{
		{Create: &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Acme", Domains: []string{"ACME.example"}}, Key: "import-1"},
		{Create: &mailcase.Record{Kind: mailcase.RecordContact, Name: "Ann", Email: "Ann@Acme.example"}, AccountRef: 1},
		{Create: &mailcase.Record{Kind: mailcase.RecordAsset, Name: "Printer", Serial: "SN-1"}, AccountRef: 1, ContactRef: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("atomic:", res.Atomic)
	for _, r := range res.Records {
		fmt.Printf("%s %q domains=%v email=%q serial=%q account=%q contact=%q\n", r.Kind, r.Name, r.Domains, r.Email, r.Serial, r.AccountID, r.ContactID)
	}
	p, ok, err := s.FindRecord(ctx, &mailcase.RecordKey{Kind: mailcase.RecordAsset, Serial: "SN-1", AccountID: res.Records[0].ID})
	if err != nil || !ok {
		log.Fatal(ok, err)
	}
	fmt.Println("found", p.Name)
	// Output:
	// atomic: true
	// account "Acme" domains=[acme.example] email="" serial="" account="" contact=""
	// contact "Ann" domains=[] email="ann@acme.example" serial="" account="account-1" contact=""
	// asset "Printer" domains=[] email="" serial="SN-1" account="account-1" contact="contact-2"
	// found Printer
}
