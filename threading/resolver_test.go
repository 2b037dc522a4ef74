package threading_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/threading"
)

var testKey = []byte("0123456789abcdef-test-key")

// fixture is a store with an open case (1000), a closed case (1001), a
// sub-case of 1000 (1002) and a case closed long ago (1003).
type fixture struct {
	store              *mailcase.Store
	now                time.Time
	alice              mailcase.Contact
	open, closed, sub  mailcase.Case
	old                mailcase.Case
	codec              *threading.Codec
	signedOpen, forged string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	clock := f.now.Add(-60 * 24 * time.Hour)
	st, err := memstore.OpenStore(&memstore.Options{Now: func() time.Time { return clock }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	f.store = st
	f.alice, err = st.CreateContact(ctx, &mailcase.NewContact{Name: "Alice", Email: "alice@customer.example"})
	require.NoError(t, err)
	mk := func(key, subject, msgid, queue string, parent mailcase.CaseID) mailcase.Case {
		c, err := st.CreateCase(ctx, &mailcase.NewCase{
			Subject: subject, ContactID: f.alice.ID, Queue: queue, ParentID: parent,
			First: &mailcase.Email{
				IdempotencyKey: key, MessageID: msgid, Subject: subject,
				From: mailcase.Address{Email: "alice@customer.example"},
				To:   []mailcase.Address{{Email: "support@company.example"}},
				Cc:   []mailcase.Address{{Email: "bob@customer.example"}},
			},
		})
		require.NoError(t, err)
		return c
	}
	f.old = mk("k0", "Old question", "old1@customer.example", "", "")
	closedStatus := mailcase.StatusClosed
	_, err = st.UpdateCase(ctx, f.old.ID, &mailcase.CaseUpdate{Status: &closedStatus})
	require.NoError(t, err)
	clock = f.now.Add(-2 * 24 * time.Hour)
	f.open = mk("k1", "Printer broken", "a1@customer.example", "support", "")
	f.closed = mk("k2", "Invoice wrong", "b1@customer.example", "billing", "")
	_, err = st.UpdateCase(ctx, f.closed.ID, &mailcase.CaseUpdate{Status: &closedStatus})
	require.NoError(t, err)
	f.sub = mk("k3", "Printer toner", "s1@customer.example", "support", f.open.ID)
	f.codec, err = threading.NewCodec(testKey, "mail.company.example")
	require.NoError(t, err)
	f.signedOpen, err = f.codec.MessageID(f.open.ID)
	require.NoError(t, err)
	f.forged = forge(f.signedOpen)
	return f
}

// forge flips one character of the signature of a signed Message-ID.
func forge(id string) string {
	at := strings.IndexByte(id, '@')
	b := []byte(id)
	if b[at-1] == 'a' {
		b[at-1] = 'b'
	} else {
		b[at-1] = 'a'
	}
	return string(b)
}

func (f *fixture) resolver(t testing.TB, o *threading.Options) *threading.Resolver {
	t.Helper()
	opts := threading.Options{Key: testKey, Domain: "mail.company.example", Now: func() time.Time { return f.now }}
	if o != nil {
		opts = *o
		if opts.Key == nil {
			opts.Key = testKey
		}
		opts.Now = func() time.Time { return f.now }
	}
	r, err := threading.NewResolver(f.store, &opts)
	require.NoError(t, err)
	return r
}

type mail struct {
	from      string
	kind      mailcase.SenderKind
	contact   *mailcase.Contact
	subject   string
	inReplyTo []string
	refs      []string
	text      string
	html      string
	header    map[string]string
	auto      bool
	mailbox   string
}

func delivery(m mail) *mailcase.Delivery {
	if m.from == "" {
		m.from = "alice@customer.example"
	}
	if m.kind == "" {
		m.kind = mailcase.SenderContact
	}
	h := mailcase.Header{}
	for k, v := range m.header {
		h.Set(k, v)
	}
	msg := &mailcase.Message{
		ID: "new@x.example", From: mailcase.Address{Email: m.from}, Subject: m.subject,
		InReplyTo: m.inReplyTo, References: m.refs, Text: m.text, HTML: m.html, Header: h,
	}
	d := &mailcase.Delivery{
		Mailbox: &mailcase.Mailbox{Name: m.mailbox, Address: "support@company.example"},
		Message: msg,
		Sender:  mailcase.SenderMatch{Kind: m.kind, Address: m.from, Contact: m.contact},
	}
	if m.auto {
		d.Auto = mailcase.AutoInfo{IsAuto: true, Kind: "auto-reply"}
	}
	return d
}

func TestResolverLadder(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, nil)
	tokOpen, err := f.codec.Token(f.open.ID)
	require.NoError(t, err)
	tokSub, err := f.codec.Token(f.sub.ID)
	require.NoError(t, err)
	ctxOpen, err := f.codec.ContextID(f.open.Number)
	require.NoError(t, err)
	otherCodec, err := threading.NewCodec([]byte("another-installation-key"), "mail.company.example")
	require.NoError(t, err)
	otherSigned, err := otherCodec.MessageID(f.open.ID)
	require.NoError(t, err)
	otherTok, err := otherCodec.Token(f.open.ID)
	require.NoError(t, err)
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("unknown%d@elsewhere.example", i)
	}
	refsStoreMiddle := append(append(append([]string{}, many[:250]...), "a1@customer.example"), many[250:]...)
	refsSignedFirst := append([]string{f.signedOpen}, many...)
	wrapped := "Thanks\n\n> On Monday you wrote:\n> " + tokOpen[:20] + "\n> " + tokOpen[20:] + "\n"
	stranger := "mallory@attacker.example"
	tiOpen := f.codec.ThreadIndex(f.open.ID, "")
	tiOther := otherCodec.ThreadIndex(f.open.ID, "")

	tests := []struct {
		name      string
		mail      mail
		action    mailcase.ThreadAction
		caseID    mailcase.CaseID
		signal    string
		detail    string
		reasonHas string
	}{
		{name: "signed message-id in In-Reply-To from a stranger threads",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, inReplyTo: []string{f.signedOpen}, subject: "Re: hello"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalMessageIDSigned},
		{name: "signed message-id upper-cased still verifies",
			mail:   mail{inReplyTo: []string{strings.ToUpper(f.signedOpen[:strings.IndexByte(f.signedOpen, '@')]) + "@mail.company.example"}},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalMessageIDSigned},
		{name: "forged message-id signature does not thread",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, inReplyTo: []string{f.forged}},
			action: mailcase.ThreadNew, reasonHas: "bad signature"},
		{name: "message-id signed with another key does not thread",
			mail:   mail{inReplyTo: []string{otherSigned}},
			action: mailcase.ThreadNew, reasonHas: "bad signature"},
		{name: "store message-id in References",
			mail:   mail{refs: []string{"zzz@nowhere.example", "a1@customer.example"}},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalMessageIDStore},
		{name: "References with 500 IDs, known one in the middle",
			mail:   mail{refs: refsStoreMiddle},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalMessageIDStore},
		{name: "References with 500 IDs, signed one first",
			mail:   mail{refs: refsSignedFirst},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalMessageIDSigned},
		{name: "last reference wins over an older one",
			mail:   mail{refs: []string{"b1@customer.example", "a1@customer.example"}},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalMessageIDStore},
		{name: "token in subject, lower-cased, from a stranger",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, subject: "RE: printer " + strings.ToLower(tokOpen)},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalTokenSubject},
		{name: "token in subject upper-cased",
			mail:   mail{subject: "AW: " + strings.ToUpper(tokOpen)},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalTokenSubject},
		{name: "token in body wrapped over quoted lines",
			mail:   mail{subject: "Re: printer", text: wrapped},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalTokenBody},
		{name: "token only in HTML",
			mail:   mail{html: "<p>Thanks</p><blockquote><div>Ref: <span>" + tokOpen + "</span></div></blockquote>"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalTokenBody},
		{name: "token from another installation does not thread",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, subject: "hello " + otherTok},
			action: mailcase.ThreadNew, reasonHas: "bad signature"},
		{name: "token naming a sub-case files on the sub-case",
			mail:   mail{subject: "Re: toner " + tokSub},
			action: mailcase.ThreadAppend, caseID: f.sub.ID, signal: threading.SignalTokenSubject, detail: "sub-case of " + string(f.open.ID)},
		{name: "context ID in body",
			mail:   mail{text: "see below\n\n> Case reference: " + ctxOpen + "\n"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalContextID},
		{name: "forged context ID",
			mail:   mail{text: "Case reference: ctx:" + f.closed.Number + ".aaaaaaaaaaaaa\n"},
			action: mailcase.ThreadNew, reasonHas: "context ID"},
		{name: "dovetail subject from the contact",
			mail:   mail{subject: "RE: About Case " + f.open.Number + " :: Printer broken", contact: &f.alice},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalSubjectNumber, detail: "dovetail " + f.open.Number},
		{name: "commit subject from a participant",
			mail:   mail{from: "bob@customer.example", subject: "AW: [Ticket #" + f.open.Number + "] Printer"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalSubjectNumber, detail: "commit"},
		{name: "tracking token with zeros",
			mail:   mail{subject: "SV: Printer broken CRM:000" + f.open.Number},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalSubjectNumber, detail: "tracking-token"},
		{name: "hash subject from an employee",
			mail:   mail{from: "agent@company.example", kind: mailcase.SenderEmployee, subject: "RE : Fwd: [#" + f.open.Number + "] Printer"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalSubjectNumber, detail: "hash"},
		{name: "stranger quoting a case number opens a new case",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, subject: "Re: [#" + f.open.Number + "] give me the data"},
			action: mailcase.ThreadNew, reasonHas: "anti-hijack"},
		{name: "known contact of another case quoting a number is refused",
			mail:   mail{from: "carol@other.example", kind: mailcase.SenderContact, contact: &mailcase.Contact{ID: "other"}, subject: "About Case " + f.open.Number + " :: x"},
			action: mailcase.ThreadNew, reasonHas: "anti-hijack"},
		{name: "mail claiming to come from the mailbox itself proves nothing",
			mail:   mail{from: "support@company.example", kind: mailcase.SenderUnknown, mailbox: "support", subject: "[#" + f.open.Number + "]"},
			action: mailcase.ThreadNew, reasonHas: "anti-hijack"},
		{name: "sharing the placeholder contact proves nothing",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, contact: &mailcase.Contact{ID: f.alice.ID, Placeholder: true}, subject: "[#" + f.open.Number + "]"},
			action: mailcase.ThreadNew, reasonHas: "anti-hijack"},
		{name: "two case numbers: first existing wins",
			mail:   mail{subject: "[#" + f.open.Number + "] and [#" + f.closed.Number + "]"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalSubjectNumber, detail: "ignored " + f.closed.Number},
		{name: "two case numbers: unknown first is skipped",
			mail:   mail{subject: "[#99999] see [Ticket #" + f.open.Number + "]"},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalSubjectNumber, reasonHas: "99999"},
		{name: "many numbers: only the first few are looked up",
			mail:   mail{subject: "[#71] [#72] [#73] [#74] [#75] [#76] [#" + f.open.Number + "]"},
			action: mailcase.ThreadNew, reasonHas: "only the first 5"},
		{name: "number that names no case",
			mail:   mail{subject: "[#424242] hello"},
			action: mailcase.ThreadNew, reasonHas: "names no case"},
		{name: "number glued to letters is not a format",
			mail:   mail{subject: "MYCRM:" + f.open.Number},
			action: mailcase.ThreadNew},
		{name: "signed thread-index lets a stranger's number thread",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, subject: "RE: [#" + f.open.Number + "] x", header: map[string]string{"Thread-Index": tiOpen}},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalThreadIndex, reasonHas: "anti-hijack"},
		{name: "foreign thread-index does not help a stranger",
			mail:   mail{from: stranger, kind: mailcase.SenderUnknown, subject: "RE: [#" + f.open.Number + "] x", header: map[string]string{"Thread-Index": tiOther}},
			action: mailcase.ThreadNew, reasonHas: "anti-hijack"},
		{name: "thread-topic number from the contact",
			mail:   mail{subject: "RE: edited subject", header: map[string]string{"Thread-Index": tiOther, "Thread-Topic": "About Case " + f.open.Number + " :: Printer"}},
			action: mailcase.ThreadAppend, caseID: f.open.ID, signal: threading.SignalThreadIndex, detail: "Thread-Topic"},
		{name: "invalid thread-index ignored",
			mail:   mail{subject: "x", header: map[string]string{"Thread-Index": "!!!", "Thread-Topic": "[#" + f.open.Number + "]"}},
			action: mailcase.ThreadNew},
		{name: "nothing matches",
			mail:   mail{subject: "New question"},
			action: mailcase.ThreadNew, reasonHas: "no thread signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := r.ResolveThread(t.Context(), delivery(tt.mail))
			require.NoError(t, err)
			assert.Equal(t, tt.action, dec.Action, "reason: %s", dec.Reason)
			assert.Equal(t, tt.caseID, dec.CaseID)
			if tt.signal != "" {
				assert.Equal(t, tt.signal, dec.Signal)
			}
			if tt.detail != "" {
				assert.Contains(t, dec.Detail, tt.detail)
			}
			if tt.reasonHas != "" {
				assert.Contains(t, dec.Reason, tt.reasonHas)
			}
			if dec.Action == mailcase.ThreadNew {
				assert.Empty(t, dec.CaseID)
			}
		})
	}
}

func TestResolverClosedPolicies(t *testing.T) {
	f := newFixture(t)
	// The closed case (billing queue) was closed 2 days before f.now; the
	// old case (no queue) 60 days before.
	tests := []struct {
		name    string
		opts    threading.Options
		target  mailcase.Case
		auto    bool
		mailbox string
		action  mailcase.ThreadAction
		caseID  mailcase.CaseID
		reason  string
	}{
		{name: "default reopens", target: f.closed, action: mailcase.ThreadReopen, caseID: f.closed.ID, reason: "reopened"},
		{name: "reopen", opts: threading.Options{ClosedPolicy: threading.PolicyReopen}, target: f.old, action: mailcase.ThreadReopen, caseID: f.old.ID},
		{name: "reopen within window", opts: threading.Options{ClosedPolicy: threading.PolicyReopenWithin, ReopenWithin: 7 * 24 * time.Hour},
			target: f.closed, action: mailcase.ThreadReopen, caseID: f.closed.ID, reason: "within"},
		{name: "beyond window: new linked", opts: threading.Options{ClosedPolicy: threading.PolicyReopenWithin, ReopenWithin: 7 * 24 * time.Hour},
			target: f.old, action: mailcase.ThreadNewLinked, caseID: f.old.ID, reason: "beyond"},
		{name: "always new", opts: threading.Options{ClosedPolicy: threading.PolicyNew}, target: f.closed, action: mailcase.ThreadNew, reason: "new case"},
		{name: "always new linked", opts: threading.Options{ClosedPolicy: threading.PolicyNewLinked}, target: f.closed, action: mailcase.ThreadNewLinked, caseID: f.closed.ID},
		{name: "reject", opts: threading.Options{ClosedPolicy: threading.PolicyReject}, target: f.closed, action: mailcase.ThreadReject, caseID: f.closed.ID, reason: "rejected"},
		{name: "queue override wins over mailbox", opts: threading.Options{ClosedPolicy: threading.PolicyReopen,
			QueuePolicies:   map[string]threading.ClosedRule{"billing": {Policy: threading.PolicyReject}},
			MailboxPolicies: map[string]threading.ClosedRule{"sales": {Policy: threading.PolicyNew}}},
			mailbox: "sales", target: f.closed, action: mailcase.ThreadReject, caseID: f.closed.ID, reason: "queue billing"},
		{name: "mailbox override", opts: threading.Options{ClosedPolicy: threading.PolicyReopen,
			MailboxPolicies: map[string]threading.ClosedRule{"sales": {Policy: threading.PolicyReopenWithin, ReopenWithin: 24 * time.Hour}}},
			mailbox: "sales", target: f.closed, action: mailcase.ThreadNewLinked, caseID: f.closed.ID, reason: "mailbox sales"},
		{name: "auto mail never reopens (reopen policy)", target: f.closed, auto: true, action: mailcase.ThreadAppend, caseID: f.closed.ID, reason: "without reopening"},
		{name: "auto mail never reopens (reject policy)", opts: threading.Options{ClosedPolicy: threading.PolicyReject}, target: f.closed, auto: true, action: mailcase.ThreadAppend, caseID: f.closed.ID},
		{name: "auto mail to an open case appends", target: f.open, auto: true, action: mailcase.ThreadAppend, caseID: f.open.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.resolver(t, &tt.opts)
			tok, err := f.codec.Token(tt.target.ID)
			require.NoError(t, err)
			dec, err := r.ResolveThread(t.Context(), delivery(mail{subject: "Re: x " + tok, auto: tt.auto, mailbox: tt.mailbox}))
			require.NoError(t, err)
			assert.Equal(t, tt.action, dec.Action, dec.Reason)
			assert.Equal(t, tt.caseID, dec.CaseID)
			assert.Equal(t, threading.SignalTokenSubject, dec.Signal)
			if tt.reason != "" {
				assert.Contains(t, dec.Reason, tt.reason)
			}
		})
	}
}

func TestResolverOptions(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		opts threading.Options
		ok   bool
	}{
		{name: "defaults without key", ok: true},
		{name: "short key", opts: threading.Options{Key: []byte("short")}},
		{name: "bad policy", opts: threading.Options{Key: testKey, ClosedPolicy: "maybe"}},
		{name: "bad queue policy", opts: threading.Options{Key: testKey, QueuePolicies: map[string]threading.ClosedRule{"q": {Policy: "x"}}}},
		{name: "bad mailbox policy", opts: threading.Options{Key: testKey, MailboxPolicies: map[string]threading.ClosedRule{"m": {Policy: "x"}}}},
		{name: "bad domain", opts: threading.Options{Key: testKey, Domain: "evil\r\nBcc: x"}},
		{name: "format without prefix", opts: threading.Options{SubjectFormats: []threading.SubjectFormat{{Name: "x"}}}},
		{name: "negative window", opts: threading.Options{ReopenWithin: -time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := threading.NewResolver(f.store, &tt.opts)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
	_, err := threading.NewResolver(nil, nil)
	assert.Error(t, err)
}

func TestResolverWithoutKeyOrFormats(t *testing.T) {
	f := newFixture(t)
	r, err := threading.NewResolver(f.store, &threading.Options{SubjectFormats: []threading.SubjectFormat{}})
	require.NoError(t, err)
	assert.Nil(t, r.Codec())
	tok, err := f.codec.Token(f.open.ID)
	require.NoError(t, err)
	dec, err := r.ResolveThread(t.Context(), delivery(mail{subject: "[#" + f.open.Number + "] " + tok, inReplyTo: []string{f.signedOpen}}))
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action, "no key and no formats: nothing but the store threads")
	dec, err = r.ResolveThread(t.Context(), delivery(mail{inReplyTo: []string{"a1@customer.example"}}))
	require.NoError(t, err)
	assert.Equal(t, threading.SignalMessageIDStore, dec.Signal)
	dec, err = r.ResolveThread(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action)
}

func TestResolverStoreErrors(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.ResolveThread(ctx, delivery(mail{subject: "[#" + f.open.Number + "]", inReplyTo: []string{"a@b.example"}}))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled, "the caller's cancellation comes back")
	assert.Equal(t, mailcase.Canceled, mailcase.Code(err))

	// A store failure is returned with its code (retryable), whichever
	// lookup fails, never taken for "no case".
	for method, m := range map[string]mail{
		"LookupThread":     {inReplyTo: []string{"a1@customer.example"}},
		"FindCaseByNumber": {subject: "Re: [#" + f.open.Number + "] Printer broken"},
		"GetCase":          {inReplyTo: []string{f.signedOpen}},
	} {
		t.Run(method, func(t *testing.T) {
			fd := mailcasetest.NewFaultDriver(f.store.Driver())
			fd.Fail(method, mailcase.Unavailable, 0)
			st := mailcase.NewStore(fd, &mailcase.StoreOptions{MaxAttempts: -1})
			fr, err := threading.NewResolver(st, &threading.Options{Key: testKey, Domain: "mail.company.example",
				Now: func() time.Time { return f.now }})
			require.NoError(t, err)
			_, err = fr.ResolveThread(t.Context(), delivery(m))
			require.Error(t, err)
			assert.Equal(t, mailcase.Unavailable, mailcase.Code(err), "%v", err)
			assert.True(t, mailcase.IsRetryable(err))
			var fe *mailcasetest.FaultError
			assert.ErrorAs(t, err, &fe)
			assert.Positive(t, fd.Calls(method), "the failing lookup was made")
		})
	}
}

func TestThreadIndexChild(t *testing.T) {
	f := newFixture(t)
	root := f.codec.ThreadIndex(f.open.ID, "")
	child := f.codec.ThreadIndex(f.open.ID, root)
	rb, err := base64.StdEncoding.DecodeString(root)
	require.NoError(t, err)
	cb, err := base64.StdEncoding.DecodeString(child)
	require.NoError(t, err)
	assert.Len(t, rb, 22)
	assert.Len(t, cb, 27)
	assert.Equal(t, rb, cb[:22], "a child keeps the conversation header")
	// A reply carrying the child index from a stranger quoting the number threads.
	r := f.resolver(t, nil)
	dec, err := r.ResolveThread(t.Context(), delivery(mail{from: "x@y.example", kind: mailcase.SenderUnknown,
		subject: "[#" + f.open.Number + "]", header: map[string]string{"Thread-Index": child}}))
	require.NoError(t, err)
	assert.Equal(t, threading.SignalThreadIndex, dec.Signal)
}

func TestResolverBounceOriginal(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, nil)
	d := delivery(mail{from: "mailer-daemon@mx.example", kind: mailcase.SenderUnknown, subject: "Undelivered Mail Returned to Sender", auto: true})
	d.Bounce = mailcase.BounceInfo{IsBounce: true, OriginalMessageID: "<" + f.signedOpen + ">"}
	dec, err := r.ResolveThread(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadAppend, dec.Action)
	assert.Equal(t, f.open.ID, dec.CaseID)
	assert.Equal(t, threading.SignalMessageIDSigned, dec.Signal)
	d.Bounce.OriginalMessageID = "b1@customer.example"
	dec, err = r.ResolveThread(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadAppend, dec.Action, "a bounce never reopens the closed case")
	assert.Equal(t, f.closed.ID, dec.CaseID)
	assert.Equal(t, threading.SignalMessageIDStore, dec.Signal)
}
