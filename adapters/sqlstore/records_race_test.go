package sqlstore_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
)

// TestRecordKeyRaceAcrossPools: stores on separate pools (as separate
// processes would be) create a record under the same idempotency key at
// once; on every dialect all of them get the one record created, none an
// error, as the driver.Records rule for a key used before says.
func TestRecordKeyRaceAcrossPools(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			u := d.url(t)
			const n = 6
			stores := make([]*mailcase.Store, n)
			for i := range n {
				s, err := sqlstore.OpenURL(ctx, u, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				stores[i] = s
			}
			for round := range 4 {
				key := "race-" + randomName() + "\x00" + strconv.Itoa(round)
				ids := make([]string, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						r, err := stores[i].CreateRecord(ctx, &mailcase.Record{Kind: mailcase.RecordAccount, Name: "Race " + strconv.Itoa(round)}, key)
						ids[i], errs[i] = r.ID, err
					})
				}
				wg.Wait()
				for i := range n {
					require.NoError(t, errs[i], "round %d, store %d", round, i)
					assert.Equal(t, ids[0], ids[i], "round %d: store %d got another record", round, i)
				}
			}
		})
	}
}
