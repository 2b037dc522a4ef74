package threading_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

func TestStripSubjectPrefixes(t *testing.T) {
	tests := []struct {
		name, in, want string
		fwd            bool
	}{
		{name: "plain", in: "Printer broken", want: "Printer broken"},
		{name: "re", in: "Re: Printer broken", want: "Printer broken"},
		{name: "stacked localised", in: "RE: AW: SV: Re: Printer", want: "Printer"},
		{name: "french space before colon", in: "RE : TR : Facture", want: "Facture"},
		{name: "forward outermost", in: "Fwd: Re: Printer", want: "Printer", fwd: true},
		{name: "reply outermost", in: "Re: Fwd: Printer", want: "Printer"},
		{name: "TR forward", in: "TR: Facture", want: "Facture", fwd: true},
		{name: "WG forward", in: "WG: Rechnung", want: "Rechnung", fwd: true},
		{name: "counter forms", in: "Re[2]: Re(3): Re^4: x", want: "x"},
		{name: "chinese full-width colon", in: "回复：打印机", want: "打印机"},
		{name: "japanese forward", in: "転送: 請求書", want: "請求書", fwd: true},
		{name: "polish", in: "Odp: ODP: Drukarka", want: "Drukarka"},
		{name: "not a prefix", in: "Note: read this", want: "Note: read this"},
		{name: "time is not a prefix", in: "Meeting 10:30", want: "Meeting 10:30"},
		{name: "empty", in: "  ", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fwd := threading.StripSubjectPrefixes(tt.in)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.fwd, fwd)
		})
	}
}

func TestFindSubjectNumbers(t *testing.T) {
	all := threading.DefaultSubjectFormats()
	tests := []struct {
		name    string
		subject string
		formats []threading.SubjectFormat
		want    []string // number/format
	}{
		{name: "dovetail", subject: "About Case 1234 :: Printer", want: []string{"1234/dovetail"}},
		{name: "dovetail lower case, extra space", subject: "re: about  case 77 :: x", want: []string{"77/dovetail"}},
		{name: "commit", subject: "AW: [Ticket #1234] Printer", want: []string{"1234/commit"}},
		{name: "commit spaced", subject: "[ Ticket # 55 ]", want: nil},
		{name: "tracking token", subject: "Printer CRM:0001234", want: []string{"0001234/tracking-token"}},
		{name: "tracking token glued", subject: "XCRM:0001234", want: nil},
		{name: "hash", subject: "[#1234] Printer", want: []string{"1234/hash"}},
		{name: "hash unclosed", subject: "[#1234 Printer", want: nil},
		{name: "two numbers in order", subject: "[#2] about [Ticket #1]", want: []string{"2/hash", "1/commit"}},
		{name: "same number twice", subject: "[#12] [Ticket #0012]", want: []string{"12/hash"}},
		{name: "only enabled formats", subject: "[#12] [Ticket #13]", formats: []threading.SubjectFormat{threading.FormatCommit()}, want: []string{"13/commit"}},
		{name: "custom format", subject: "Ref INC-42 printer", formats: []threading.SubjectFormat{{Name: "inc", Prefix: "INC-"}}, want: []string{"42/inc"}},
		{name: "number too long", subject: "[#123456789012345678901234]", want: nil},
		{name: "no digits", subject: "[#] About Case :: x", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.formats
			if f == nil {
				f = all
			}
			var got []string
			for _, n := range threading.FindSubjectNumbers(tt.subject, f) {
				got = append(got, n.Number+"/"+n.Format)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCodecMarkers(t *testing.T) {
	c, err := threading.NewCodec(testKey, "")
	require.NoError(t, err)
	for _, id := range []mailcase.CaseID{"1", "500Hn00001Xyz9ABC", "case-Ω-ü", "a/b+c=d", mailcase.CaseID(strings.Repeat("x", 128))} {
		mid, err := c.MessageID(id)
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(mid, "@emailcrm.invalid"))
		assert.NotContains(t, mid, " ")
		got, ok := c.ParseMessageID("<" + mid + ">")
		assert.True(t, ok)
		assert.Equal(t, id, got)
		mid2, err := c.MessageID(id)
		require.NoError(t, err)
		assert.NotEqual(t, mid, mid2, "a nonce makes each Message-ID unique")
		_, ok = c.ParseMessageID(forge(mid))
		assert.False(t, ok)
		tok, err := c.Token(id)
		require.NoError(t, err)
		assert.NotContains(t, tok, " ")
		assert.Equal(t, strings.ToLower(tok), tok)
	}
	_, err = c.MessageID("")
	assert.Error(t, err)
	_, err = c.MessageID(mailcase.CaseID(strings.Repeat("x", 129)))
	assert.Error(t, err)
	_, err = c.Token("")
	assert.Error(t, err)
	_, err = c.ContextID("12 34")
	assert.Error(t, err)
	for _, bad := range []string{"", "x@y", "c.a.b@y", "c.a.b.c.d@y", "c.!!.aa.bb@y", "<c.mfrgg.aaaa.zzzz@x>"} {
		_, ok := c.ParseMessageID(bad)
		assert.False(t, ok, bad)
	}
	_, err = threading.NewCodec([]byte("short"), "")
	assert.ErrorIs(t, err, threading.ErrKey)
	_, err = threading.NewCodec(testKey, "a b")
	assert.ErrorIs(t, err, threading.ErrDomain)
}

func TestOutgoing(t *testing.T) {
	c, err := threading.NewCodec(testKey, "mail.company.example")
	require.NoError(t, err)
	cs := mailcase.Case{ID: "case-7", Number: "1234", Subject: "Printer\r\nBcc: evil@x.example broken"}
	h, err := c.Outgoing(&threading.OutgoingRequest{Case: cs})
	require.NoError(t, err)
	assert.Equal(t, "About Case 1234 :: Printer Bcc: evil@x.example broken", h.Subject)
	assert.Empty(t, h.InReplyTo)
	assert.Empty(t, h.References)
	id, ok := c.ParseMessageID(h.MessageID)
	assert.True(t, ok)
	assert.Equal(t, cs.ID, id)
	assert.Contains(t, h.ContextLine, "ctx:1234.")
	assert.Equal(t, "Printer Bcc: evil@x.example broken", h.ThreadTopic)

	refs := make([]string, 30)
	for i := range refs {
		refs[i] = "r" + string(rune('a'+i%26)) + strings.Repeat("x", i) + "@h.example"
	}
	parent := &mailcase.Message{
		ID: "p1@customer.example", Subject: "RE: About Case 1234 :: Printer broken",
		References: refs, InReplyTo: []string{"evil\r\n@x"},
		Header: mailcase.Header{"Thread-Index": {c.ThreadIndex("case-7", "")}},
	}
	for _, f := range []threading.SubjectFormat{{}, threading.FormatCommit(), threading.FormatTrackingToken(), threading.FormatHash()} {
		h, err = c.Outgoing(&threading.OutgoingRequest{Case: cs, Title: parent.Subject, Parent: parent, Format: f, SubjectToken: true})
		require.NoError(t, err)
		assert.Equal(t, "<p1@customer.example>", h.InReplyTo)
		assert.True(t, strings.HasPrefix(h.Subject, "Re: "), h.Subject)
		assert.Equal(t, 1, strings.Count(h.Subject, "1234"), "the number is written once: %s", h.Subject)
		assert.Contains(t, h.Subject, h.Token)
		assert.Equal(t, 20, strings.Count(h.References, "<"))
		assert.True(t, strings.HasPrefix(h.References, "<"+refs[0]+">"), "the first reference is kept")
		assert.True(t, strings.HasSuffix(h.References, "<p1@customer.example>"))
		for _, v := range []string{h.MessageID, h.InReplyTo, h.References, h.Subject, h.ThreadIndex, h.ThreadTopic, h.ContextLine} {
			assert.NotContains(t, v, "\r")
			assert.NotContains(t, v, "\n")
		}
		nums := threading.FindSubjectNumbers(h.Subject, threading.DefaultSubjectFormats())
		require.Len(t, nums, 1, h.Subject)
		assert.Equal(t, "1234", strings.TrimLeft(nums[0].Number, "0"))
	}
	assert.Len(t, h.ThreadIndex, 36, "27 bytes: the parent's header and one child block")
	_, err = c.Outgoing(&threading.OutgoingRequest{})
	assert.Error(t, err)
	_, err = c.Outgoing(nil)
	assert.Error(t, err)
	assert.Equal(t, "a b c", threading.SanitizeHeader(" a\r\n b\x00\tc\u2028"))
}
