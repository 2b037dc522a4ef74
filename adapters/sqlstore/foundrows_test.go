package sqlstore_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
)

// MySQL and MariaDB report the rows an UPDATE changed, not the rows it
// matched: an UPDATE that sets a row to the values it holds reports 0.
// These tests make such no-op UPDATEs happen (a frozen clock) and check
// that the store does not take them for a row that changed meanwhile or
// is missing. They run on every dialect; only MySQL failed before.

// TestWorklistUnchangedUpdatedAt marks the mail of a case handled, and
// reassigns it to its own queue and owner, with a clock that does not
// move: updated_at is set to the value it holds.
func TestWorklistUnchangedUpdatedAt(t *testing.T) {
	frozen := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := openURL(t, d.url(t), &sqlstore.Options{Now: func() time.Time { return frozen }})
			const agent = "bob@example.com"
			queue := "frozen-" + randomName()
			require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: queue, Members: []string{agent}}))
			c, err := s.CreateCase(ctx, &mailcase.NewCase{Queue: queue, First: &mailcase.Email{
				IdempotencyKey: queue + "\x00k", MessageID: "k." + queue + "@example.com",
				From: mailcase.Address{Email: "customer@example.org"}, Subject: "frozen"}})
			require.NoError(t, err)
			it, err := s.AcceptWorkItem(ctx, c.ID, agent)
			require.NoError(t, err)
			require.Equal(t, agent, it.Owner)
			require.True(t, it.MailOpen)

			it, err = s.MarkMailHandled(ctx, c.ID, agent)
			require.NoError(t, err, "MarkMailHandled with updated_at unchanged")
			assert.False(t, it.MailOpen)
			got, ok, err := s.GetWorkItem(ctx, c.ID)
			require.NoError(t, err)
			require.True(t, ok)
			assert.False(t, got.MailOpen, "the mark was kept")

			it, err = s.ReassignWorkItem(ctx, c.ID, agent, queue, agent)
			require.NoError(t, err, "ReassignWorkItem to the queue and owner it has, updated_at unchanged")
			assert.Equal(t, queue, it.Queue)
			assert.Equal(t, agent, it.Owner)
		})
	}
}

// TestLeaseUnchangedExpiry takes and renews a lease while the database
// clock does not move (MySQL's timestamp session variable): the UPDATE
// sets the row to what it holds.
func TestLeaseUnchangedExpiry(t *testing.T) {
	ctx := t.Context()
	s := openURL(t, mysqlURL(t)+"?timestamp=1780000000.250000", nil)
	const name, ttl = "frozen-lease", time.Minute
	ok, err := s.AcquireLease(ctx, name, "w1", ttl)
	require.NoError(t, err)
	require.True(t, ok, "first acquire")
	ok, err = s.AcquireLease(ctx, name, "w1", ttl)
	require.NoError(t, err)
	assert.True(t, ok, "acquire by the holder, expiry unchanged")
	ok, err = s.RenewLease(ctx, name, "w1", ttl)
	require.NoError(t, err)
	assert.True(t, ok, "renew by the holder, expiry unchanged")
	ok, err = s.AcquireLease(ctx, name, "w2", ttl)
	require.NoError(t, err)
	assert.False(t, ok, "another holder while the lease is held")
	ok, err = s.RenewLease(ctx, name, "w2", ttl)
	require.NoError(t, err)
	assert.False(t, ok, "renew by a holder that does not hold it")
}

// TestMySQLClientFoundRowsRefused: a MySQL DSN that would make found rows
// the count (breaking the store's key claims) is refused, in both forms.
func TestMySQLClientFoundRowsRefused(t *testing.T) {
	u, err := url.Parse("mysql://root@127.0.0.1:3306/test?clientFoundRows=true")
	require.NoError(t, err)
	_, _, err = sqlstore.DSN(u)
	assert.ErrorContains(t, err, "clientFoundRows")
	_, err = sqlstore.OpenURL(t.Context(), "mysql://root@tcp(127.0.0.1:3306)/test?clientFoundRows=true", nil)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "%v", err)
}
