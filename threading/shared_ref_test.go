package threading_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

// A thread whose first mail the mailbox never received: a reply that
// refers to the same unknown root as a mail filed on a case threads onto
// that case when its sender is on the case, and is refused (a new case)
// when a stranger sends it.
func TestResolverSharedReference(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const root = "root-never-received@customer.example"
	c, err := f.store.CreateCase(ctx, &mailcase.NewCase{
		Subject: "Re: Server down", ContactID: f.alice.ID,
		First: &mailcase.Email{
			IdempotencyKey: "shared-1", MessageID: "reply1@customer.example", Subject: "Re: Server down",
			InReplyTo: []string{root}, References: []string{root},
			From: mailcase.Address{Email: "alice@customer.example"},
			Cc:   []mailcase.Address{{Email: "bob@customer.example"}, {Email: "support@company.example"}},
		},
	})
	require.NoError(t, err)
	r := f.resolver(t, nil)

	// Bob (in Cc of the first reply, so a participant) answers the root too.
	dec, err := r.ResolveThread(ctx, delivery(mail{
		from: "bob@customer.example", kind: mailcase.SenderUnknown, subject: "Re: Server down",
		inReplyTo: []string{root}, refs: []string{root},
	}))
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadAppend, dec.Action, dec.Reason)
	assert.Equal(t, c.ID, dec.CaseID)
	assert.Equal(t, threading.SignalSharedReference, dec.Signal)
	assert.True(t, dec.SenderOnCase)

	// A stranger who learnt the root's Message-ID cannot join the case.
	dec, err = r.ResolveThread(ctx, delivery(mail{
		from: "mallory@attacker.example", kind: mailcase.SenderUnknown, subject: "Re: Server down",
		refs: []string{root},
	}))
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action)
	assert.Contains(t, dec.Reason, "anti-hijack: "+threading.SignalSharedReference)

	// A Message-ID filed on a case still wins over a shared reference.
	dec, err = r.ResolveThread(ctx, delivery(mail{
		from: "bob@customer.example", kind: mailcase.SenderUnknown,
		refs: []string{root, "a1@customer.example"},
	}))
	require.NoError(t, err)
	assert.Equal(t, f.open.ID, dec.CaseID)
	assert.Equal(t, threading.SignalMessageIDStore, dec.Signal)
}
