package mailcase_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The zero Mailbox analyses mail up to 25 MiB (its documented default)
// and creates a contact per unknown sender.
func TestMailboxZeroValueDefaults(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", (25<<20)/64)
	big := plMail("Zed <zed@nowhere.example>", "big", "big@nowhere.example", body)
	require.Greater(t, len(big), 25<<20)
	r := plProcess(t, p, big)
	require.NotNil(t, r.Outcome.Route)
	assert.Equal(t, "oversized", r.Outcome.Route.Rule, "a mail over 25 MiB is filed unanalysed")

	small := plMail("Zed <zed@nowhere.example>", "small", "small@nowhere.example", body[:(25<<20)-4096])
	require.Less(t, len(small), 25<<20)
	r = plProcess(t, p, small)
	require.NotNil(t, r.Outcome.Route)
	assert.NotEqual(t, "oversized", r.Outcome.Route.Rule, "a mail under 25 MiB is analysed")

	a := plProcess(t, p, plMail("Ann <ann@one.example>", "hi", "a@one.example", "x"))
	b := plProcess(t, p, plMail("Ben <ben@two.example>", "hi", "b@two.example", "x"))
	ca, _, err := s.GetCase(t.Context(), a.Outcome.CaseID)
	require.NoError(t, err)
	cb, _, err := s.GetCase(t.Context(), b.Outcome.CaseID)
	require.NoError(t, err)
	require.NotEmpty(t, ca.ContactID)
	assert.NotEqual(t, ca.ContactID, cb.ContactID, "two unknown senders get two contacts")
	assert.Equal(t, "unknown sender: create: created contact "+ca.ContactID, a.Outcome.SenderPolicy)
	cs, err := s.FindContacts(t.Context(), "ann@one.example")
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.False(t, cs[0].Placeholder)
}

// A mail the built-in resolver files on a case by its References, from a
// sender who is not on the case, adds nobody to the participants: its Cc
// cannot then continue the case by number.
func TestPipeline_StrangerOnReferencesAddsNoParticipants(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	first := plProcess(t, p, plMail("Ann <ann@one.example>", "Printer", "p1@one.example", "broken"))
	reply := plProcess(t, p, plMail("Mallory <mallory@evil.example>", "Re: Printer", "p2@evil.example", "me too",
		"In-Reply-To: <p1@one.example>", "Cc: eve@evil.example"))
	assert.Equal(t, first.Outcome.CaseID, reply.Outcome.CaseID, "filed on the case it references")
	require.NotNil(t, reply.Outcome.Thread)
	assert.False(t, reply.Outcome.Thread.SenderOnCase)
	assert.Contains(t, reply.Outcome.Thread.Reason, "do not join the participants")
	own := plProcess(t, p, plMail("Ann <ann@one.example>", "Re: Printer", "p3@one.example", "still broken",
		"In-Reply-To: <p2@evil.example>", "Cc: carol@one.example"))
	assert.True(t, own.Outcome.Thread.SenderOnCase, "the case's contact is on the case")
	c, _, err := s.GetCase(t.Context(), first.Outcome.CaseID)
	require.NoError(t, err)
	assert.Equal(t, []string{"ann@one.example", "carol@one.example", "support@example.com"}, c.Participants)
}
