package sqlstore_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
)

// BenchmarkApplyRecords applies batches of an account, a contact in it and
// an asset of both (keyed creations, one transaction each) on SQLite.
func BenchmarkApplyRecords(b *testing.B) {
	s, err := sqlstore.OpenURL(b.Context(), sqliteURL(b), nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := strconv.Itoa(i)
		_, err := s.ApplyRecords(b.Context(), []mailcase.RecordAction{
			{Create: &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Acme " + n, Domains: []string{"acme" + n + ".example"}}, Key: "bench\x00" + n + "#1"},
			{Create: &mailcase.Record{Kind: mailcase.RecordContact, Email: "ann@acme" + n + ".example", Fields: map[string]string{"phone": n}}, Key: "bench\x00" + n + "#2", AccountRef: 1},
			{Create: &mailcase.Record{Kind: mailcase.RecordAsset, Name: "Printer", Serial: "SN-" + n}, Key: "bench\x00" + n + "#3", AccountRef: 1, ContactRef: 2},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
