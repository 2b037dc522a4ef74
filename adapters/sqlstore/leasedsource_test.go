package sqlstore_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// TestLeasedSource shares one mailbox (two sources handing out the same
// mails, as two workers listing one IMAP folder would) between two leased
// sources: every mail goes to exactly one of them, the other leaves it
// (Retry), leases outlive their TTL while held and are free after Ack.
func TestLeasedSource(t *testing.T) {
	ctx := t.Context()
	s := openURL(t, sqliteURL(t), nil)
	var raws [][]byte
	for i := range 6 {
		raws = append(raws, []byte(fmt.Sprintf("Message-ID: <m%d@x>\r\n\r\nbody\r\n", i)))
	}
	srcA, srcB := mailcasetest.NewSource(raws...), mailcasetest.NewSource(raws...)
	srcA.Mailbox, srcB.Mailbox = "support", "support"
	const ttl = 900 * time.Millisecond
	a, err := mailcase.NewLeasedSource(srcA, s, "worker-a", &mailcase.LeaseOptions{TTL: ttl, Logger: quietLogger()})
	require.NoError(t, err)
	defer a.Close()
	b, err := mailcase.NewLeasedSource(srcB, s, "worker-b", &mailcase.LeaseOptions{TTL: ttl, Logger: quietLogger()})
	require.NoError(t, err)
	defer b.Close()

	// A takes three mails and holds them past the TTL (renewed).
	var held []*mailcase.Received
	for range 3 {
		r, err := a.Receive(ctx)
		require.NoError(t, err)
		held = append(held, r)
	}
	time.Sleep(ttl + ttl/2)
	// B skips A's mails and gets the other three.
	var gotB []string
	for {
		r, err := b.Receive(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		gotB = append(gotB, r.ID)
		require.NoError(t, b.Ack(ctx, r, mailcase.Done, ""))
	}
	assert.Equal(t, []string{"4", "5", "6"}, gotB)
	assert.Equal(t, 3, srcB.Count(mailcase.Retry), "B left A's mails in the mailbox")
	// A acknowledges one: its lease is free again.
	require.NoError(t, a.Ack(ctx, held[0], mailcase.Done, ""))
	free, err := s.AcquireLease(ctx, "mail:support/"+held[0].ID, "worker-c", time.Minute)
	require.NoError(t, err)
	assert.True(t, free)
	busy, err := s.AcquireLease(ctx, "mail:support/"+held[1].ID, "worker-c", time.Minute)
	require.NoError(t, err)
	assert.False(t, busy, "a held mail stays leased past its TTL while its worker lives")

	_, err = mailcase.NewLeasedSource(srcA, s, " ", nil)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "a holder name is required")
}
