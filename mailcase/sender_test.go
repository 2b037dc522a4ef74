package mailcase_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// plDirectory seeds a store with contacts, accounts and employees.
type plDirectory struct {
	ann, dup1, dup2, emp mailcase.Contact
	acme, twin1, twin2   mailcase.Account
}

func plSeed(t *testing.T, s *mailcase.Store) plDirectory {
	t.Helper()
	ctx := t.Context()
	var d plDirectory
	var err error
	d.acme, err = s.CreateAccount(ctx, &mailcase.NewAccount{Name: "Acme", Domains: []string{"acme.example"}})
	require.NoError(t, err)
	d.twin1, err = s.CreateAccount(ctx, &mailcase.NewAccount{Name: "Twin 1", Domains: []string{"twins.example"}})
	require.NoError(t, err)
	d.twin2, err = s.CreateAccount(ctx, &mailcase.NewAccount{Name: "Twin 2", Domains: []string{"twins.example"}})
	require.NoError(t, err)
	d.ann, err = s.CreateContact(ctx, &mailcase.NewContact{Name: "Ann", Email: "ann@acme.example", AccountID: d.acme.ID})
	require.NoError(t, err)
	d.dup1, err = s.CreateContact(ctx, &mailcase.NewContact{Name: "Shared 1", Email: "shared@acme.example"})
	require.NoError(t, err)
	d.dup2, err = s.CreateContact(ctx, &mailcase.NewContact{Name: "Shared 2", Email: "shared@acme.example"})
	require.NoError(t, err)
	_, err = s.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Eve", Email: "eve@company.example", Active: true})
	require.NoError(t, err)
	_, err = s.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Old", Email: "old@company.example", Active: false})
	require.NoError(t, err)
	_, err = s.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Both", Email: "both@company.example", Active: true})
	require.NoError(t, err)
	d.emp, err = s.CreateContact(ctx, &mailcase.NewContact{Name: "Both", Email: "both@company.example"})
	require.NoError(t, err)
	return d
}

func TestStoreSenderMatcher(t *testing.T) {
	s := plStore(t)
	d := plSeed(t, s)
	m := mailcase.NewStoreSenderMatcher(s, nil)
	tests := []struct {
		name       string
		addr       string
		kind       mailcase.SenderKind
		contact    string
		account    string
		candidates []string
	}{
		{name: "contact", addr: "Ann@ACME.example", kind: mailcase.SenderContact, contact: d.ann.ID},
		{name: "ambiguous contacts", addr: "shared@acme.example", kind: mailcase.SenderAmbiguous, contact: d.dup1.ID, candidates: []string{d.dup1.ID, d.dup2.ID}},
		{name: "account by domain", addr: "new@acme.example", kind: mailcase.SenderAccount, account: d.acme.ID},
		{name: "ambiguous accounts", addr: "x@twins.example", kind: mailcase.SenderAmbiguous, account: d.twin1.ID, candidates: []string{d.twin1.ID, d.twin2.ID}},
		{name: "active employee", addr: "eve@company.example", kind: mailcase.SenderEmployee},
		{name: "employee also contact", addr: "both@company.example", kind: mailcase.SenderEmployee, contact: d.emp.ID},
		{name: "inactive employee", addr: "old@company.example", kind: mailcase.SenderUnknown},
		{name: "unknown", addr: "who@nowhere.example", kind: mailcase.SenderUnknown},
		{name: "unusable", addr: "not-an-address", kind: mailcase.SenderUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.MatchSender(t.Context(), mailcase.Address{Email: tc.addr})
			require.NoError(t, err)
			assert.Equal(t, tc.kind, got.Kind, got.Reason)
			assert.NotEmpty(t, got.Reason)
			if tc.contact != "" {
				require.NotNil(t, got.Contact)
				assert.Equal(t, tc.contact, got.Contact.ID)
			}
			if tc.account != "" {
				require.NotNil(t, got.Account)
				assert.Equal(t, tc.account, got.Account.ID)
			}
			assert.Equal(t, tc.candidates, got.Candidates)
			if tc.kind == mailcase.SenderEmployee {
				require.NotNil(t, got.Employee)
			}
		})
	}
}

func TestStoreSenderMatcher_IDN(t *testing.T) {
	s := plStore(t)
	c, err := s.CreateContact(t.Context(), &mailcase.NewContact{Email: "jörg@bücher.example"})
	require.NoError(t, err)
	m := mailcase.NewStoreSenderMatcher(s, nil)
	got, err := m.MatchSender(t.Context(), mailcase.Address{Email: "jörg@BÜCHER.example"})
	require.NoError(t, err)
	require.Equal(t, mailcase.SenderContact, got.Kind, got.Reason)
	assert.Equal(t, c.ID, got.Contact.ID)
	got, err = m.MatchSender(t.Context(), mailcase.Address{Email: "jörg@xn--bcher-kva.example"})
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderContact, got.Kind, "punycode and Unicode spellings match")
}

func TestStoreSenderMatcher_Cache(t *testing.T) {
	s, f := plFaultyStore(t)
	clock := mailcasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := mailcase.NewStoreSenderMatcher(s, &mailcase.SenderOptions{CacheTTL: time.Hour, Now: clock.Now})
	ctx := t.Context()
	from := mailcase.Address{Email: "new@x.example"}
	got, err := m.MatchSender(ctx, from)
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderUnknown, got.Kind)
	_, err = s.CreateContact(ctx, &mailcase.NewContact{Email: "new@x.example"})
	require.NoError(t, err)

	got, err = m.MatchSender(ctx, from)
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderUnknown, got.Kind, "cached within the window")
	assert.Contains(t, got.Reason, "cached")
	assert.Equal(t, 1, f.Calls("FindContacts"))

	clock.Advance(time.Hour)
	got, err = m.MatchSender(ctx, from)
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderContact, got.Kind, "looked up fresh after the window")
	assert.Equal(t, 2, f.Calls("FindContacts"))

	m.ForgetSender("new@x.example")
	_, err = m.MatchSender(ctx, from)
	require.NoError(t, err)
	assert.Equal(t, 3, f.Calls("FindContacts"))

	// Without a TTL, nothing is cached.
	nc := mailcase.NewStoreSenderMatcher(s, nil)
	_, _ = nc.MatchSender(ctx, from)
	_, _ = nc.MatchSender(ctx, from)
	assert.Equal(t, 5, f.Calls("FindContacts"))

	// A store failure is returned.
	f.Fail("FindContacts", mailcase.Unavailable, 1)
	_, err = nc.MatchSender(ctx, from)
	assert.True(t, mailcase.IsRetryable(err))
}

func TestStoreSenderMatcher_CacheBounded(t *testing.T) {
	s, f := plFaultyStore(t)
	m := mailcase.NewStoreSenderMatcher(s, &mailcase.SenderOptions{CacheTTL: time.Hour, CacheSize: 10})
	addr := func(i int) mailcase.Address {
		return mailcase.Address{Email: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@x.example"}
	}
	for i := range 50 {
		_, err := m.MatchSender(t.Context(), addr(i))
		require.NoError(t, err)
	}
	require.Equal(t, 50, f.Calls("FindContacts"), "50 distinct addresses, 50 lookups")

	// The cache works: the address just looked up is answered from it.
	got, err := m.MatchSender(t.Context(), addr(49))
	require.NoError(t, err)
	assert.Contains(t, got.Reason, "cached")
	assert.Equal(t, 50, f.Calls("FindContacts"))

	// The cache is bounded: of the 50 addresses at most CacheSize (10) are
	// still cached, so a second pass looks at least 40 of them up again.
	for i := range 50 {
		_, err := m.MatchSender(t.Context(), addr(i))
		require.NoError(t, err)
	}
	again := f.Calls("FindContacts") - 50
	assert.GreaterOrEqual(t, again, 40, "at most 10 addresses may be cached")
	assert.LessOrEqual(t, again, 50)
}

func TestPipeline_UnknownSenderPolicies(t *testing.T) {
	from := "Stranger <stranger@nowhere.example>"
	t.Run("placeholder created once", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Address: "support@company.example", UnknownSender: mailcase.UnknownPlaceholder}})
		r1 := plProcess(t, p, plMail(from, "one", "u1@nowhere.example", "x"))
		r2 := plProcess(t, p, plMail("other@nowhere.example", "two", "u2@nowhere.example", "x"))
		c1, _, _ := s.GetCase(t.Context(), r1.Outcome.CaseID)
		c2, _, _ := s.GetCase(t.Context(), r2.Outcome.CaseID)
		require.NotEmpty(t, c1.ContactID, plSteps(r1))
		assert.Equal(t, c1.ContactID, c2.ContactID)
		// The placeholder's address routes nowhere (reserved domain).
		cs, err := s.FindContacts(t.Context(), "unknown-sender@invalid")
		require.NoError(t, err)
		require.Len(t, cs, 1)
		assert.True(t, cs[0].Placeholder)
		assert.Equal(t, c1.ContactID, cs[0].ID)
		// A new pipeline finds the existing placeholder.
		p2 := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Address: "support@company.example", UnknownSender: mailcase.UnknownPlaceholder}})
		r3 := plProcess(t, p2, plMail(from, "three", "u3@nowhere.example", "x"))
		c3, _, _ := s.GetCase(t.Context(), r3.Outcome.CaseID)
		assert.Equal(t, c1.ContactID, c3.ContactID)
	})
	t.Run("configured placeholder", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{UnknownContactID: "contact-unknown"}})
		r := plProcess(t, p, plMail(from, "one", "u4@nowhere.example", "x"))
		c, _, _ := s.GetCase(t.Context(), r.Outcome.CaseID)
		assert.Equal(t, "contact-unknown", c.ContactID)
	})
	t.Run("create contact", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{UnknownSender: mailcase.UnknownCreateContact, Internal: true}})
		r := plProcess(t, p, plMail(from, "one", "u5@nowhere.example", "x"))
		cs, err := s.FindContacts(t.Context(), "stranger@nowhere.example")
		require.NoError(t, err)
		require.Len(t, cs, 1)
		assert.Equal(t, "Stranger", cs[0].Name)
		assert.True(t, cs[0].Internal)
		c, _, _ := s.GetCase(t.Context(), r.Outcome.CaseID)
		assert.Equal(t, cs[0].ID, c.ContactID)
		plProcess(t, p, plMail(from, "two", "u6@nowhere.example", "x"))
		cs, err = s.FindContacts(t.Context(), "stranger@nowhere.example")
		require.NoError(t, err)
		assert.Len(t, cs, 1, "the second plMail finds the contact")
	})
	t.Run("reject", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{UnknownSender: mailcase.UnknownReject}})
		r := plProcess(t, p, plMail(from, "one", "u7@nowhere.example", "x"))
		assert.Equal(t, mailcase.ActionRejected, r.Outcome.Action, plSteps(r))
		assert.Equal(t, mailcase.Done, r.Outcome.Disposition)
		assert.Empty(t, plCases(t, s))
		assert.Len(t, plCaseless(t, s), 1, "the rejected plMail is recorded")
		assert.Equal(t, mailcase.ActionDuplicate, plProcess(t, p, plMail(from, "one", "u7@nowhere.example", "x")).Outcome.Action)
		assert.Equal(t, int64(1), p.Stats().Rejected)
	})
	t.Run("dry run creates nothing", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{UnknownSender: mailcase.UnknownCreateContact}})
		r, err := p.Process(t.Context(), plMail(from, "one", "u8@nowhere.example", "x"), &mailcase.ProcessOptions{DryRun: true})
		require.NoError(t, err)
		st, _ := plStepOf(r, "sender")
		assert.Contains(t, st.Reason, "would create")
		cs, err := s.FindContacts(t.Context(), "stranger@nowhere.example")
		require.NoError(t, err)
		assert.Empty(t, cs)
	})
}

func TestPipeline_AmbiguousSenderPolicies(t *testing.T) {
	tests := []struct {
		name    string
		policy  mailcase.AmbiguityPolicy
		from    string
		contact func(d plDirectory) string
		account func(d plDirectory) string
		bypass  bool
		queue   string
	}{
		{name: "unassigned contacts", policy: mailcase.AmbiguousUnassigned, from: "shared@acme.example", queue: "default"},
		{name: "first contact", policy: mailcase.AmbiguousFirst, from: "shared@acme.example",
			contact: func(d plDirectory) string { return d.dup1.ID }, queue: "default"},
		{name: "first account", policy: mailcase.AmbiguousFirst, from: "x@twins.example",
			account: func(d plDirectory) string { return d.twin1.ID }, queue: "default"},
		{name: "internal", policy: mailcase.AmbiguousInternal, from: "x@twins.example", queue: "internal-support"},
		{name: "internal wins over bypass", policy: mailcase.AmbiguousInternal, bypass: true, from: "x@twins.example", queue: "internal-support"},
		{name: "bypass", policy: mailcase.AmbiguousUnassigned, bypass: true, from: "x@twins.example", queue: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			d := plSeed(t, s)
			router := &mailcasetest.Router{Result: mailcase.Route{Queue: "routed"}}
			if tc.policy != mailcase.AmbiguousInternal {
				router.Result.Queue = ""
			}
			p := plPipeline(t, s, &mailcase.Options{Router: router, Mailbox: mailcase.Mailbox{Ambiguity: tc.policy,
				InternalQueue: "internal-support", Bypass: tc.bypass}})
			r := plProcess(t, p, plMail(tc.from, "who am I", "amb@x.example", "x"))
			require.Equal(t, mailcase.ActionCreated, r.Outcome.Action, plSteps(r))
			assert.Equal(t, mailcase.SenderAmbiguous, r.Outcome.Sender.Kind)
			c, _, err := s.GetCase(t.Context(), r.Outcome.CaseID)
			require.NoError(t, err)
			want := ""
			if tc.contact != nil {
				want = tc.contact(d)
			}
			assert.Equal(t, want, c.ContactID)
			want = ""
			if tc.account != nil {
				want = tc.account(d)
			}
			assert.Equal(t, want, c.AccountID)
			assert.Equal(t, tc.queue, c.Queue)
		})
	}
}

func plAuthResults(id, res string) string { return "Authentication-Results: " + id + "; " + res }

func TestPipeline_EmployeeTrust(t *testing.T) {
	tests := []struct {
		name    string
		from    string
		headers []string
		authn   func(*mailcase.Message) bool
		kind    mailcase.SenderKind
	}{
		{name: "dkim pass trusted", from: "eve@company.example",
			headers: []string{plAuthResults("mx.company.example", "dkim=pass header.d=company.example header.s=s1")}, kind: mailcase.SenderEmployee},
		{name: "spf pass subdomain", from: "eve@company.example",
			headers: []string{plAuthResults("mx.company.example", "spf=pass (sender ok) smtp.mailfrom=bounce@company.example")}, kind: mailcase.SenderEmployee},
		{name: "no header", from: "eve@company.example", kind: mailcase.SenderUnknown},
		{name: "untrusted server", from: "eve@company.example",
			headers: []string{plAuthResults("evil.example", "dkim=pass header.d=company.example")}, kind: mailcase.SenderUnknown},
		{name: "dkim for other domain", from: "eve@company.example",
			headers: []string{plAuthResults("mx.company.example", "dkim=pass header.d=attacker.example")}, kind: mailcase.SenderUnknown},
		{name: "dkim fail", from: "eve@company.example",
			headers: []string{plAuthResults("mx.company.example", "dkim=fail header.d=company.example")}, kind: mailcase.SenderUnknown},
		{name: "untrusted employee who is a contact", from: "both@company.example", kind: mailcase.SenderContact},
		{name: "custom authenticator", from: "eve@company.example", authn: func(*mailcase.Message) bool { return true }, kind: mailcase.SenderEmployee},
		{name: "custom authenticator refuses", from: "eve@company.example",
			headers: []string{plAuthResults("mx.company.example", "dkim=pass header.d=company.example")},
			authn:   func(*mailcase.Message) bool { return false }, kind: mailcase.SenderUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			plSeed(t, s)
			p := plPipeline(t, s, &mailcase.Options{TrustedAuthServIDs: []string{"MX.company.example"}, Authenticated: tc.authn,
				Mailbox: mailcase.Mailbox{UnknownContactID: "placeholder"}})
			r := plProcess(t, p, plMail(tc.from, "internal note", "emp@company.example", "x", tc.headers...))
			require.NotNil(t, r.Outcome.Sender, plSteps(r))
			assert.Equal(t, tc.kind, r.Outcome.Sender.Kind, plSteps(r))
			st, _ := plStepOf(r, "sender")
			if tc.kind == mailcase.SenderEmployee {
				assert.Contains(t, st.Reason, "trusted")
				assert.NotNil(t, r.Outcome.Sender.Employee)
			} else {
				assert.Contains(t, st.Reason, "not trusted")
				assert.Nil(t, r.Outcome.Sender.Employee)
			}
		})
	}
}

func TestPipeline_SenderInteractionForOtherContact(t *testing.T) {
	s := plStore(t)
	d := plSeed(t, s)
	p := plPipeline(t, s, nil)
	first := plProcess(t, p, plMail("ann@acme.example", "Issue", "si1@acme.example", "x"))
	// A colleague known as a contact replies on Ann's case.
	col, err := s.CreateContact(context.Background(), &mailcase.NewContact{Email: "col@acme.example", AccountID: d.acme.ID})
	require.NoError(t, err)
	r := plProcess(t, p, plReply("col@acme.example", "Issue", "si2@acme.example", "si1@acme.example"))
	require.Equal(t, mailcase.ActionAppended, r.Outcome.Action, plSteps(r))
	assert.Len(t, plCaseMails(t, s, first.Outcome.CaseID), 2)
	in := plCaseless(t, s)
	require.Len(t, in, 1)
	assert.Equal(t, col.ID, in[0].ContactID)
	assert.Equal(t, first.Outcome.CaseID, in[0].CaseID)
	assert.True(t, in[0].Email.Summary)
	// Ann's own plReply adds nothing to her record: the case carries it.
	plProcess(t, p, plReply("ann@acme.example", "Issue", "si3@acme.example", "si2@acme.example", "si1@acme.example"))
	assert.Len(t, plCaseless(t, s), 1)
}
