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
		if len(s) > 0 && len(s) < 300 && utf8.ValidString(s) {
			h, err := c.Outgoing(&threading.OutgoingRequest{Case: mailcase.Case{ID: mailcase.CaseID(s), Number: "1", Subject: s},
				Parent: &mailcase.Message{ID: s, Subject: s, References: []string{s}}})
			if err == nil {
				for _, v := range []string{h.MessageID, h.InReplyTo, h.References, h.Subject, h.ThreadTopic, h.ThreadIndex} {
					require.False(t, strings.ContainsAny(v, "\r\n"), "no CR/LF in headers: %q", v)
				}
				got, ok := c.ParseMessageID(h.MessageID)
				require.True(t, ok)
				require.Equal(t, mailcase.CaseID(s), got)
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
