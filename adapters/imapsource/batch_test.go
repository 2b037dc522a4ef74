package imapsource_test

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/mailcase"
)

// The after-commit actions are applied in groups, and only to mail
// acknowledged Done: filed mail waits on the server, untouched, while its
// group fills and other mail is in flight; a full group deletes exactly
// the filed mail; and a crash (the source abandoned without Flush or
// Close) leaves every unfiled mail on the server, handed out again by the
// next source, while the filed mail left behind comes back as a duplicate.
func TestBatchedActionsOnlyTouchFiledMail(t *testing.T) {
	const n = 60
	srv := startServer(t, nil)
	appendAll(t, srv, mails(n))
	st := newStore(t)
	p := newPipeline(t, st)
	opts := imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, BatchSize: 3, MaxPerRun: n} // groups of 30
	src1 := dial(t, srv, st, opts)
	receive := func() *mailcase.Received {
		r, err := src1.Receive(t.Context())
		require.NoError(t, err)
		return r
	}
	filed := map[string]bool{}
	file := func(r *mailcase.Received) {
		res, err := p.Process(t.Context(), r.Raw, &mailcase.ProcessOptions{Attempt: r.Attempt, Size: r.Size})
		require.NoError(t, err)
		require.Equal(t, mailcase.Done, res.Outcome.Disposition)
		require.NoError(t, src1.Ack(t.Context(), r, mailcase.Done, ""))
		filed[string(r.Raw)] = true
	}
	inbox := func() map[string]bool {
		msgs, err := srv.Messages("INBOX")
		require.NoError(t, err)
		out := map[string]bool{}
		for _, m := range msgs {
			out[string(m.Raw)] = true
			assert.NotContains(t, m.Flags, imap.FlagDeleted, "mail left on the server is never flagged deleted")
		}
		return out
	}

	// 40 handed out: every fourth stays in flight (never filed), 29 of the
	// others are filed. The group is not full: nothing is touched yet.
	var unfiled, rest []*mailcase.Received
	for i := range 40 {
		r := receive()
		if i%4 == 3 {
			unfiled = append(unfiled, r)
		} else {
			rest = append(rest, r)
		}
	}
	for _, r := range rest[:29] {
		file(r)
	}
	assert.Len(t, inbox(), n, "nothing removed before its group is full")

	// The 30th filed mail fills the group: exactly the filed mails go.
	file(rest[29])
	require.Eventually(t, func() bool { return count(t, srv, "INBOX") == n-30 }, 5*time.Second, 5*time.Millisecond)
	left := inbox()
	for raw := range filed {
		assert.False(t, left[raw], "filed mail deleted with its group")
	}
	for _, r := range unfiled {
		assert.True(t, left[string(r.Raw)], "unfiled mail kept on the server")
	}

	// Two more filed, then a crash: src1 is abandoned with their actions
	// pending and ten mails in flight.
	file(receive())
	file(receive())
	left = inbox()
	assert.Len(t, left, n-30, "the last two filed wait for their group")
	for _, r := range unfiled {
		assert.True(t, left[string(r.Raw)], "unfiled mail kept on the server")
	}

	// The next source (the restarted worker) drains the folder: the mail
	// never filed is filed now, the two filed ones are duplicates.
	before := p.Stats()
	src2 := dial(t, srv, st, opts)
	require.NoError(t, p.Run(t.Context(), src2))
	require.NoError(t, src2.Flush(t.Context()))
	after := p.Stats()
	assert.EqualValues(t, n-30, after.Received-before.Received)
	assert.EqualValues(t, 2, after.Duplicates-before.Duplicates)
	assert.Zero(t, count(t, srv, "INBOX"))
	cases, err := st.ListCases(t.Context(), &mailcase.ListOptions{Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, cases, n, "every mail filed exactly once")
}
