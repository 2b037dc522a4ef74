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

// TestWorklistAcceptRaceAcrossPools has agents on separate stores (each its
// own pool and committer, as separate processes would be) accept the same
// items at once: on every dialect exactly one wins each item and the
// others get AlreadyExists.
func TestWorklistAcceptRaceAcrossPools(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			u := d.url(t)
			const n = 6
			stores := make([]*mailcase.Store, n)
			agents := make([]string, n)
			for i := range n {
				s, err := sqlstore.OpenURL(ctx, u, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				stores[i], agents[i] = s, "agent"+strconv.Itoa(i)+"@example.com"
			}
			queue := "race-" + randomName()
			require.NoError(t, stores[0].CreateQueue(ctx, &mailcase.GroupQueue{Name: queue, Members: agents}))
			for round := range 4 {
				c, err := stores[0].CreateCase(ctx, &mailcase.NewCase{Queue: queue, First: &mailcase.Email{
					IdempotencyKey: queue + "\x00" + strconv.Itoa(round), MessageID: strconv.Itoa(round) + "." + queue + "@example.com",
					From: mailcase.Address{Email: "customer@example.org"}, Subject: "race"}})
				require.NoError(t, err)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { _, errs[i] = stores[i].AcceptWorkItem(ctx, c.ID, agents[i]) })
				}
				wg.Wait()
				winner := -1
				for i, err := range errs {
					if err == nil {
						require.Equal(t, -1, winner, "round %d: two agents accepted", round)
						winner = i
						continue
					}
					assert.Equal(t, mailcase.AlreadyExists, mailcase.Code(err), "round %d: loser %d: %v", round, i, err)
				}
				require.GreaterOrEqual(t, winner, 0, "round %d: nobody won", round)
				it, ok, err := stores[0].GetWorkItem(ctx, c.ID)
				require.NoError(t, err)
				require.True(t, ok)
				assert.Equal(t, agents[winner], it.Owner)
			}
		})
	}
}

// BenchmarkWorklistAcceptRelease measures one accept and one release of a
// work item (each a read and a conditional UPDATE in a transaction) on
// SQLite.
func BenchmarkWorklistAcceptRelease(b *testing.B) {
	ctx := b.Context()
	s, err := sqlstore.OpenURL(ctx, sqliteURL(b), nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	require.NoError(b, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "bench", Members: []string{"bob@example.com"}}))
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Queue: "bench", First: &mailcase.Email{IdempotencyKey: "bench\x00k",
		MessageID: "k@example.com", From: mailcase.Address{Email: "customer@example.org"}, Subject: "bench"}})
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.AcceptWorkItem(ctx, c.ID, "bob@example.com"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ReleaseWorkItem(ctx, c.ID, "bob@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
