package sqlstore_test

import (
	"net/mail"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
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

// TestWorklistReplyOwnerChangesWhileComposing: on every dialect, a reply
// whose author loses the item after the first ownership check (here
// while the reply is composed) is refused at the queueing, which checks
// ownership in the same transaction: nothing is queued or filed. The new
// owner's reply is queued, then filed.
func TestWorklistReplyOwnerChangesWhileComposing(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := openURL(t, d.url(t), nil)
			queue := "reply-" + randomName()
			bob, amy := "bob."+queue+"@example.com", "amy."+queue+"@example.com"
			require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: queue, Members: []string{bob, amy}}))
			c, err := s.CreateCase(ctx, &mailcase.NewCase{Queue: queue, First: &mailcase.Email{
				IdempotencyKey: queue + "\x00first", MessageID: "first." + queue + "@example.org",
				From: mailcase.Address{Email: "customer@example.org"}, Subject: "Printer jams", Text: "It jams."}})
			require.NoError(t, err)
			_, err = s.AcceptWorkItem(ctx, c.ID, bob)
			require.NoError(t, err)
			codec, err := threading.NewCodec([]byte("reply-test-key-0123456789abcdef012"), "company.example")
			require.NoError(t, err)
			var once sync.Once
			mailer, err := outbox.NewMailer(s, &outbox.MailerOptions{From: mail.Address{Address: "support@company.example"}, Codec: codec,
				Now: func() time.Time {
					once.Do(func() {
						_, err := s.ReleaseWorkItem(ctx, c.ID, bob)
						require.NoError(t, err)
						_, err = s.AcceptWorkItem(ctx, c.ID, amy)
						require.NoError(t, err)
					})
					return time.Now()
				}})
			require.NoError(t, err)
			_, err = mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "bob", Case: c.ID, Agent: mailcase.Employee{Email: bob}, Body: "Hello"})
			require.Error(t, err)
			assert.Equal(t, mailcase.PermissionDenied, mailcase.Code(err))
			assert.ErrorIs(t, err, mailcase.ErrNotOwner)
			queued, err := s.ListOutbox(ctx, &driver.OutboxListOptions{CaseID: c.ID})
			require.NoError(t, err)
			assert.Empty(t, queued, "the refused reply is not queued")
			it, _, err := s.GetWorkItem(ctx, c.ID)
			require.NoError(t, err)
			assert.True(t, it.MailOpen, "nor filed")

			id, err := mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "amy", Case: c.ID, Agent: mailcase.Employee{Email: amy}, Body: "Hello"})
			require.NoError(t, err)
			m, ok, err := s.GetOutbox(ctx, id)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, []string{"customer@example.org"}, m.To)
			it, _, err = s.GetWorkItem(ctx, c.ID)
			require.NoError(t, err)
			assert.False(t, it.MailOpen, "amy's reply is filed")
			ins, err := s.ListInteractions(ctx, c.ID)
			require.NoError(t, err)
			var out []string
			for _, in := range ins {
				if in.Email != nil && in.Email.Direction == driver.Outbound {
					out = append(out, in.Email.MessageID)
				}
			}
			assert.Equal(t, []string{m.MessageID}, out, "the filed reply is the one queued")
		})
	}
}
