package threading_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

func FuzzSubject(f *testing.F) {
	for _, s := range []string{
		"Re: About Case 1234 :: Printer", "AW: [Ticket #1234] x", "x CRM:0001234", "[#1] [#2]",
		"RE : TR : Fwd: SV: x", "Re[2]: Re(3): Re^4: 回复：x", "[#", "About Case ", "CRM:", "\xff\xfe: re:",
		strings.Repeat("Re: ", 100) + "x", strings.Repeat("[#1", 500),
	} {
		f.Add(s)
	}
	formats := append(threading.DefaultSubjectFormats(), threading.SubjectFormat{Name: "sp", Prefix: " x ", Suffix: " "})
	f.Fuzz(func(t *testing.T, s string) {
		nums := threading.FindSubjectNumbers(s, formats)
		seen := map[string]bool{}
		for _, n := range nums {
			require.NotEmpty(t, n.Number)
			require.Empty(t, strings.Trim(n.Number, "0123456789"), "numbers are digits")
			require.True(t, n.Offset >= 0 && n.Offset < len(s))
			k := strings.TrimLeft(n.Number, "0")
			require.False(t, seen[k], "no duplicates")
			seen[k] = true
		}
		rest, _ := threading.StripSubjectPrefixes(s)
		require.LessOrEqual(t, len(rest), len(s))
		require.True(t, strings.Contains(s, rest), "stripping only removes a prefix")
	})
}

func FuzzTokenDecode(f *testing.F) {
	c, err := threading.NewCodec(testKey, "mail.company.example")
	require.NoError(f, err)
	mid, err := c.MessageID("case-1")
	require.NoError(f, err)
	tok, err := c.Token("case-1")
	require.NoError(f, err)
	ctxID, err := c.ContextID("1000")
	require.NoError(f, err)
	for _, s := range []string{mid, "<" + mid + ">", forge(mid), tok, strings.ToUpper(tok), ctxID,
		"c.a.b.c@d", "[ref:", "[ref:mfrgg:]", "ctx:1.", "[ ref : x ]", "c...@", "\x00c.\xff.a.b@"} {
		f.Add(s)
	}
	st := newFixture(f)
	r := st.resolver(f, nil)
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := c.ParseMessageID(s); ok {
			// Only IDs we signed verify; the fuzzer cannot forge a tag.
			require.Equal(t, mailcase.CaseID("case-1"), id, s)
		}
		for _, d := range []*mailcase.Delivery{
			delivery(mail{from: "x@y.example", kind: mailcase.SenderUnknown, subject: s, inReplyTo: []string{s}, refs: []string{s, mid}}),
			delivery(mail{from: "x@y.example", kind: mailcase.SenderUnknown, subject: s, text: s, html: s, header: map[string]string{"Thread-Index": s, "Thread-Topic": s}}),
		} {
			dec, err := r.ResolveThread(t.Context(), d)
			require.NoError(t, err)
			require.NotEmpty(t, dec.Action)
			if dec.Action != mailcase.ThreadNew {
				require.NotEmpty(t, dec.CaseID)
			}
		}
		id := mailcase.CaseID(s)
		if len(s) == 0 || len(s) > 128 {
			id = "case-1"
		}
		h, err := c.Outgoing(&threading.OutgoingRequest{Case: mailcase.Case{ID: id, Number: "1", Subject: s},
			Parent: &mailcase.Message{ID: s, Subject: s, References: []string{s}, InReplyTo: []string{s},
				Header: mailcase.Header{"Thread-Index": {s}}}})
		require.NoError(t, err)
		assertHeaderValues(t, h)
		got, ok := c.ParseMessageID(h.MessageID)
		require.True(t, ok)
		require.Equal(t, id, got)
	})
}

// FuzzOutgoing checks that whatever the case, title and parent mail, every
// outgoing header value is valid UTF-8 without control characters and
// fits a header line, and the Message-ID decodes to the case.
func FuzzOutgoing(f *testing.F) {
	c, err := threading.NewCodec(testKey, "mail.company.example")
	require.NoError(f, err)
	ti := c.ThreadIndex("case-1", "")
	for _, s := range [][5]string{
		{"case-1", "1234", "Re: About Case 1234 :: Printer [ref:abc:def]", "p1@customer.example", "r1@x.example"},
		{"c", "AB-12", strings.Repeat("Ⱥ", 10) + "[ref:]", "a\x00b@x", "r\v@x"},
		{"c", "7", "\u212a日本[ref:ab]日本tail", "a\u0085b@x", "a\u2028@x"},
		{"c", "", strings.Repeat("[ref:]", 2000), strings.Repeat("x", 5000) + "@h", "\xff@x"},
		{"c", "1", "a\r\nBcc: x@y", "<a@b> <c@d>", ti},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], true)
	}
	f.Fuzz(func(t *testing.T, id, number, title, parentID, ref string, token bool) {
		if id == "" || len(id) > 128 {
			id = "case-1"
		}
		for _, parent := range []*mailcase.Message{nil, {ID: parentID, References: []string{ref, parentID}, InReplyTo: []string{ref},
			Header: mailcase.Header{"Thread-Index": {ref}}}} {
			for _, f := range []threading.SubjectFormat{{}, threading.FormatHash(), threading.FormatTrackingToken()} {
				h, err := c.Outgoing(&threading.OutgoingRequest{Case: mailcase.Case{ID: mailcase.CaseID(id), Number: number, Subject: title},
					Parent: parent, Format: f, SubjectToken: token})
				require.NoError(t, err)
				assertHeaderValues(t, h)
				got, ok := c.ParseMessageID(h.MessageID)
				require.True(t, ok)
				require.Equal(t, mailcase.CaseID(id), got)
				require.LessOrEqual(t, utf8.RuneCountInString(h.ThreadTopic), 200)
			}
		}
	})
}

func FuzzExtract(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "replies", "*.eml"))
	for i, p := range files {
		if i%3 != 0 {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			f.Add("Re: x", string(b))
		}
	}
	f.Add("Fwd: x", "a\n---------- Forwarded message ---------\nb")
	f.Add("Re: x", "<div class=gmail_quote><blockquote><blockquote></div></blockquote>x")
	f.Add("", "From: a\nSent: b\nTo: c\n-- \n> q\nOn 1 Jan 2024 x@y wrote:\n")
	ex := threading.NewExtractor(nil)
	f.Fuzz(func(t *testing.T, subject, body string) {
		got := ex.ExtractText(subject, body)
		assert.Equal(t, normalize(got), got)
		got = ex.ExtractHTML(subject, body)
		assert.Equal(t, normalize(got), got)
		got = ex.ExtractReply(&mailcase.Message{Subject: subject, Text: body, HTML: body})
		assert.Equal(t, normalize(got), got)
	})
}
