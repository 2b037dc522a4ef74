package threading_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

// countingIndex counts the store lookups made by a resolver.
type countingIndex struct {
	threading.Index
	getCase, byNumber, lookup atomic.Int64
}

func (c *countingIndex) GetCase(ctx context.Context, id mailcase.CaseID) (mailcase.Case, bool, error) {
	c.getCase.Add(1)
	return c.Index.GetCase(ctx, id)
}

func (c *countingIndex) FindCaseByNumber(ctx context.Context, number string) (mailcase.Case, bool, error) {
	c.byNumber.Add(1)
	return c.Index.FindCaseByNumber(ctx, number)
}

func (c *countingIndex) LookupThread(ctx context.Context, ids ...string) (mailcase.Case, bool, error) {
	c.lookup.Add(1)
	return c.Index.LookupThread(ctx, ids...)
}

// TestAntiHijackOwnAddresses: our own addresses are on every case (To of
// its first mail) and never make a sender a participant.
func TestAntiHijackOwnAddresses(t *testing.T) {
	f := newFixture(t)
	own := []string{"Billing@Company.Example", "SUPPORT@company.example", "help@company.example", "not an address"}
	tests := []struct {
		name    string
		own     []string
		mailbox string // receiving mailbox address
		from    string
		kind    mailcase.SenderKind
		contact *mailcase.Contact
		action  mailcase.ThreadAction
		reason  string
	}{
		{name: "spoofed other mailbox address is refused", own: own, mailbox: "billing@company.example",
			from: "support@company.example", kind: mailcase.SenderUnknown, action: mailcase.ThreadNew, reason: "one of our own addresses"},
		{name: "spoofed address in another letter case is refused", own: own, mailbox: "billing@company.example",
			from: "Support@COMPANY.example", kind: mailcase.SenderUnknown, action: mailcase.ThreadNew, reason: "anti-hijack"},
		{name: "spoofed receiving mailbox is refused without OwnAddresses", mailbox: "support@company.example",
			from: "support@company.example", kind: mailcase.SenderUnknown, action: mailcase.ThreadNew, reason: "anti-hijack"},
		{name: "spoofed own address matched to the case contact is refused", own: own, mailbox: "billing@company.example",
			from: "support@company.example", kind: mailcase.SenderContact, contact: &f.alice, action: mailcase.ThreadNew, reason: "anti-hijack"},
		{name: "employee writing from our address threads", own: own, mailbox: "billing@company.example",
			from: "support@company.example", kind: mailcase.SenderEmployee, action: mailcase.ThreadAppend},
		{name: "real participant (Cc) still threads", own: own, mailbox: "billing@company.example",
			from: "bob@customer.example", kind: mailcase.SenderUnknown, action: mailcase.ThreadAppend},
		{name: "case contact still threads", own: own, mailbox: "billing@company.example",
			from: "alice@customer.example", kind: mailcase.SenderContact, contact: &f.alice, action: mailcase.ThreadAppend},
		{name: "stranger is refused", own: own, mailbox: "billing@company.example",
			from: "mallory@attacker.example", kind: mailcase.SenderUnknown, action: mailcase.ThreadNew, reason: "anti-hijack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.resolver(t, &threading.Options{OwnAddresses: tt.own})
			d := delivery(mail{from: tt.from, kind: tt.kind, contact: tt.contact, subject: "[#" + f.open.Number + "]"})
			d.Mailbox.Address = tt.mailbox
			dec, err := r.ResolveThread(t.Context(), d)
			require.NoError(t, err)
			assert.Equal(t, tt.action, dec.Action, dec.Reason)
			if tt.action == mailcase.ThreadAppend {
				assert.Equal(t, f.open.ID, dec.CaseID)
				assert.Equal(t, threading.SignalSubjectNumber, dec.Signal)
				assert.True(t, dec.SenderOnCase, "a sender accepted by the anti-hijack rule is on the case")
			}
			if tt.reason != "" {
				assert.Contains(t, dec.Reason, tt.reason)
			}
		})
	}
}

// TestAntiHijackPlaceholder: the unknown-sender placeholder stands for
// many senders. Mail claiming its address never threads by number, even on
// a case that (from data filed before the rule) lists the address as a
// participant; a signed reference from a stranger still files the mail
// but reports the sender as not on the case, so its Cc joins nobody.
func TestAntiHijackPlaceholder(t *testing.T) {
	f := newFixture(t)
	ph, err := f.store.CreateContact(t.Context(), &mailcase.NewContact{Name: "Unknown sender", Email: "unknown-sender@company.example", Placeholder: true})
	require.NoError(t, err)
	legacy, err := f.store.CreateCase(t.Context(), &mailcase.NewCase{Subject: "Legacy", ContactID: ph.ID, First: &mailcase.Email{
		IdempotencyKey: "legacy", MessageID: "legacy@customer.example", Subject: "Legacy",
		From: mailcase.Address{Email: "unknown-sender@company.example"}, // filed before the rule: a participant
		To:   []mailcase.Address{{Email: "support@company.example"}},
	}})
	require.NoError(t, err)
	require.Contains(t, legacy.Participants, "unknown-sender@company.example")
	r := f.resolver(t, nil)

	d := delivery(mail{from: "unknown-sender@company.example", kind: mailcase.SenderUnknown, contact: &ph, subject: "Re: [#" + legacy.Number + "]"})
	dec, err := r.ResolveThread(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action, dec.Reason)
	assert.Contains(t, dec.Reason, "unknown-sender placeholder's address")

	// The same address matched as the placeholder under another name
	// (a configured placeholder) is refused all the same.
	d = delivery(mail{from: "Unknown-Sender@Company.Example", kind: mailcase.SenderUnknown, contact: &ph, subject: "Re: [#" + legacy.Number + "]"})
	dec, err = r.ResolveThread(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action, dec.Reason)

	// A signed Message-ID is trusted: filed, but the stranger is not on the case.
	d = delivery(mail{from: "mallory@attacker.example", kind: mailcase.SenderUnknown, inReplyTo: []string{f.signedOpen}})
	dec, err = r.ResolveThread(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadAppend, dec.Action, dec.Reason)
	assert.Equal(t, f.open.ID, dec.CaseID)
	assert.False(t, dec.SenderOnCase, "a stranger holding a signed reference is not on the case")
	assert.Contains(t, dec.Reason, "do not join the participants")

	// The case's contact with the same signed reference is.
	d = delivery(mail{from: "alice@customer.example", kind: mailcase.SenderContact, contact: &f.alice, inReplyTo: []string{f.signedOpen}})
	dec, err = r.ResolveThread(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadAppend, dec.Action, dec.Reason)
	assert.True(t, dec.SenderOnCase)
}

// TestCleanTitleUnicode: token removal works on the original string (no
// lower-casing that changes byte lengths), never panics and always yields
// valid UTF-8.
func TestCleanTitleUnicode(t *testing.T) {
	c, err := threading.NewCodec(testKey, "")
	require.NoError(t, err)
	tests := []struct {
		name  string
		title string
		want  string
	}{
		{name: "runes that shrink when lower-cased", title: strings.Repeat("Ⱥ", 10) + "[ref:]", want: strings.Repeat("Ⱥ", 10)},
		{name: "Kelvin sign before a token", title: "\u212a日本[ref:ab]日本tail", want: "\u212a日本日本tail"},
		{name: "upper-case token", title: "Printer [REF:ABC:DEF] broken", want: "Printer broken"},
		{name: "token formed by a removal", title: "a [re[ref:x]f:y] b", want: "a b"},
		{name: "unterminated token is kept", title: "a [ref:xyz", want: "a [ref:xyz"},
		{name: "many empty tokens", title: "x " + strings.Repeat("[ref:]", 160) + " y", want: "x y"},
		// 220 KB: clipped to 1000 runes first ("x", 166 tokens, "[re").
		{name: "20000 empty tokens", title: "x" + strings.Repeat("[ref:]", 20000) + "y", want: "x[re"},
		{name: "long title is clipped to 200 runes", title: strings.Repeat("é", 300), want: strings.Repeat("é", 200)},
		{name: "long 4-byte title is clipped to 600 bytes", title: strings.Repeat("😀", 300), want: strings.Repeat("😀", 150)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h threading.OutgoingHeaders
			require.NotPanics(t, func() {
				h, err = c.Outgoing(&threading.OutgoingRequest{Case: mailcase.Case{ID: "c1", Number: "7", Subject: tt.title}})
			})
			require.NoError(t, err)
			assert.True(t, utf8.ValidString(h.ThreadTopic), "%q", h.ThreadTopic)
			assert.True(t, utf8.ValidString(h.Subject), "%q", h.Subject)
			assert.Equal(t, tt.want, h.ThreadTopic)
			assert.Equal(t, "About Case 7 :: "+tt.want, h.Subject)
		})
	}
}

// TestOutgoingHeaderIDs: every ID written in In-Reply-To or References is
// free of control characters and short enough for one header line.
func TestOutgoingHeaderIDs(t *testing.T) {
	c, err := threading.NewCodec(testKey, "mail.company.example")
	require.NoError(t, err)
	long := strings.Repeat("x", 5000) + "@h.example"
	tests := []struct {
		name      string
		parentID  string
		refs      []string
		inReplyTo string
		refCount  int
	}{
		{name: "NUL", parentID: "a\x00b@h.example", refs: []string{"ok@h.example", "r\x00@h.example"}, refCount: 1},
		{name: "vertical tab", parentID: "a\vb@h.example", refs: []string{"r\v@h.example"}},
		{name: "NEL (U+0085)", parentID: "a\u0085b@h.example", refs: []string{"r\u0085@h.example"}},
		{name: "C1 control", parentID: "a\u009bb@h.example", refs: []string{"r\u0090@h.example"}},
		{name: "line separator", parentID: "a\u2028b@h.example", refs: []string{"r\u2029@h.example"}},
		{name: "DEL", parentID: "a\x7fb@h.example"},
		{name: "5000-byte ID", parentID: long, refs: []string{long}},
		{name: "invalid UTF-8", parentID: "a\xffb@h.example"},
		{name: "valid ID is kept", parentID: "p1@customer.example", refs: []string{"r1@h.example"}, inReplyTo: "<p1@customer.example>", refCount: 2},
		{name: "250 bytes is kept", parentID: strings.Repeat("y", 240) + "@h.example", inReplyTo: "<" + strings.Repeat("y", 240) + "@h.example>", refCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := c.Outgoing(&threading.OutgoingRequest{Case: mailcase.Case{ID: "c1", Number: "7", Subject: "x"},
				Parent: &mailcase.Message{ID: tt.parentID, References: tt.refs}})
			require.NoError(t, err)
			assert.Equal(t, tt.inReplyTo, h.InReplyTo)
			assert.Equal(t, tt.refCount, strings.Count(h.References, "<"), h.References)
			assertHeaderValues(t, h)
		})
	}
}

// assertHeaderValues checks every header value of h: valid UTF-8, no
// control characters (C0, DEL, C1, U+2028/2029) and lines within 998
// bytes (References folds between IDs).
func assertHeaderValues(t testing.TB, h threading.OutgoingHeaders) {
	t.Helper()
	for name, v := range map[string]string{"Message-ID": h.MessageID, "In-Reply-To": h.InReplyTo, "References": h.References,
		"Subject": h.Subject, "Thread-Index": h.ThreadIndex, "Thread-Topic": h.ThreadTopic} {
		require.True(t, utf8.ValidString(v), "%s: invalid UTF-8 %q", name, v)
		for _, r := range v {
			require.False(t, r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029',
				"%s: control character %U in %q", name, r, v)
		}
		segments := []string{v}
		if name == "References" {
			segments = strings.Split(v, " ")
		}
		for _, s := range segments {
			require.LessOrEqual(t, len(name)+2+len(s), 998, "%s: line too long", name)
		}
	}
}

// TestHTMLWithoutHeadEnd: HTML5 lets </head> be omitted; the body is not
// lost, for reply extraction and for body markers.
func TestHTMLWithoutHeadEnd(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, nil)
	tok, err := f.codec.Token(f.open.ID)
	require.NoError(t, err)
	ctxID, err := f.codec.ContextID(f.open.Number)
	require.NoError(t, err)
	ex := threading.NewExtractor(nil)
	tests := []struct {
		name   string
		html   string
		want   string
		marker string // appended to the body for the resolver
		signal string
	}{
		{name: "body tag without </head>", html: "<html><head><meta charset=utf-8><title>x</title><body><p>My printer is broken</p>",
			want: "My printer is broken", marker: "<p>%s</p>", signal: threading.SignalTokenBody},
		{name: "body-only tag without <body>", html: "<html><head><title>x</title><style>p{}</style><div>My printer is broken</div>",
			want: "My printer is broken", marker: "<p>Case reference: %s</p>", signal: threading.SignalContextID},
		{name: "text directly in head", html: "<head><title>x</title>My printer is broken",
			want: "My printer is broken", marker: " %s", signal: threading.SignalTokenBody},
		{name: "closed head still works", html: "<html><head><title>x</title></head><body>My printer is broken</body></html>",
			want: "My printer is broken", marker: "<p>%s</p>", signal: threading.SignalTokenBody},
		{name: "title and style text stay hidden", html: "<head><title>secret</title><style>.a{}</style><script>var x</script><p>My printer is broken",
			want: "My printer is broken", marker: "<p>%s</p>", signal: threading.SignalTokenBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ex.ExtractReply(&mailcase.Message{Subject: "Re: x", HTML: tt.html}))
			m := tok
			if tt.signal == threading.SignalContextID {
				m = ctxID
			}
			dec, err := r.ResolveThread(t.Context(), delivery(mail{subject: "Re: x", html: tt.html + fmt.Sprintf(tt.marker, m)}))
			require.NoError(t, err)
			assert.Equal(t, f.open.ID, dec.CaseID, dec.Reason)
			assert.Equal(t, tt.signal, dec.Signal)
		})
	}
}

// TestContextIDExactNumber: the context ID's tag covers the number as
// written, which is what the store looks up.
func TestContextIDExactNumber(t *testing.T) {
	c, err := threading.NewCodec(testKey, "")
	require.NoError(t, err)
	st := newFixture(t)
	idx := &countingIndex{Index: st.store}
	r, err := threading.NewResolver(idx, &threading.Options{Key: testKey})
	require.NoError(t, err)
	upper, err := c.ContextID("AB12")
	require.NoError(t, err)
	lower := "ctx:ab12" + upper[len("ctx:AB12"):]
	num, err := c.ContextID(st.open.Number)
	require.NoError(t, err)
	tests := []struct {
		name    string
		text    string
		lookups int64
		reason  string
	}{
		{name: "as signed: looked up", text: upper, lookups: 1, reason: `case number "AB12"`},
		{name: "letter case changed: bad signature", text: lower, lookups: 0, reason: "bad signature"},
		{name: "upper-cased tag still verifies", text: strings.ToUpper(upper), lookups: 1, reason: "AB12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx.byNumber.Store(0)
			dec, err := r.ResolveThread(t.Context(), delivery(mail{subject: "x", text: "Case reference: " + tt.text}))
			require.NoError(t, err)
			assert.Equal(t, mailcase.ThreadNew, dec.Action)
			assert.Equal(t, tt.lookups, idx.byNumber.Load())
			assert.Contains(t, dec.Reason, tt.reason)
		})
	}
	dec, err := r.ResolveThread(t.Context(), delivery(mail{subject: "x", text: "Case reference: " + num}))
	require.NoError(t, err)
	assert.Equal(t, st.open.ID, dec.CaseID, "numeric context IDs are unchanged")
}

// TestMarkerLookupBounds: markers naming missing cases cost a bounded
// number of store lookups and a bounded Reason.
func TestMarkerLookupBounds(t *testing.T) {
	f := newFixture(t)
	idx := &countingIndex{Index: f.store}
	r, err := threading.NewResolver(idx, &threading.Options{Key: testKey, SubjectFormats: []threading.SubjectFormat{}})
	require.NoError(t, err)
	gone, err := f.codec.Token("deleted-case")
	require.NoError(t, err)
	goneMID, err := f.codec.MessageID("deleted-case")
	require.NoError(t, err)
	var manyTokens, manyMIDs, manyCtx strings.Builder
	for i := range 50 {
		tok, err := f.codec.Token(mailcase.CaseID(fmt.Sprintf("gone-%d", i)))
		require.NoError(t, err)
		manyTokens.WriteString(tok + "\n")
		ctxID, err := f.codec.ContextID(fmt.Sprintf("9%04d", i))
		require.NoError(t, err)
		manyCtx.WriteString(ctxID + "\n")
		mid, err := f.codec.MessageID(mailcase.CaseID(fmt.Sprintf("gone-%d", i)))
		require.NoError(t, err)
		manyMIDs.WriteString(mid + " ")
	}
	at := strings.IndexByte(goneMID, '@')
	variants := make([]string, 3000)
	for i := range variants {
		b := []byte(goneMID[:at])
		for k := range b {
			if i>>(k%12)&1 == 1 && b[k] >= 'a' && b[k] <= 'z' {
				b[k] -= 'a' - 'A'
			}
		}
		variants[i] = fmt.Sprintf("%s@v%d.example", b, i)
	}
	tests := []struct {
		name     string
		mail     mail
		getCase  int64
		byNumber int64
	}{
		{name: "one missing case's token repeated in a huge body", mail: mail{text: strings.Repeat(gone+" ", (10<<20)/len(gone))}, getCase: 1},
		{name: "the same token in text and HTML", mail: mail{text: strings.Repeat(gone+"\n", 1000), html: strings.Repeat("<p>"+gone+"</p>", 1000)}, getCase: 1},
		{name: "tokens of many missing cases", mail: mail{text: manyTokens.String()}, getCase: 5},
		{name: "case variants of one signed Message-ID", mail: mail{refs: variants}, getCase: 1},
		{name: "signed Message-IDs of many missing cases", mail: mail{refs: strings.Fields(manyMIDs.String())}, getCase: 5},
		{name: "context IDs of many missing numbers", mail: mail{text: manyCtx.String()}, byNumber: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx.getCase.Store(0)
			idx.byNumber.Store(0)
			tt.mail.subject = "x"
			dec, err := r.ResolveThread(t.Context(), delivery(tt.mail))
			require.NoError(t, err)
			assert.Equal(t, mailcase.ThreadNew, dec.Action)
			// Both body rungs (token, context) share the bound.
			assert.Equal(t, tt.getCase, idx.getCase.Load())
			assert.Equal(t, tt.byNumber, idx.byNumber.Load())
			assert.Less(t, len(dec.Reason), 2000, "the reason stays short")
			assert.LessOrEqual(t, strings.Count(dec.Reason, "does not exist"), 3*3, dec.Reason)
		})
	}
}

// TestSignedIDMaxReferences: MaxReferences bounds the signed Message-IDs
// decoded, as it bounds the store lookups.
func TestSignedIDMaxReferences(t *testing.T) {
	f := newFixture(t)
	refs := []string{f.signedOpen}
	for i := range 20 {
		refs = append(refs, fmt.Sprintf("u%d@elsewhere.example", i))
	}
	tests := []struct {
		name   string
		max    int
		action mailcase.ThreadAction
	}{
		{name: "signed ID beyond the limit is not used", max: 10, action: mailcase.ThreadNew},
		{name: "signed ID within the limit threads", max: 21, action: mailcase.ThreadAppend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.resolver(t, &threading.Options{MaxReferences: tt.max})
			dec, err := r.ResolveThread(t.Context(), delivery(mail{refs: refs}))
			require.NoError(t, err)
			assert.Equal(t, tt.action, dec.Action, dec.Reason)
		})
	}
}
