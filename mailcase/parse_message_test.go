package mailcase_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// mail joins header lines and a body with CRLF.
func mail(header []string, body string) []byte {
	return []byte(strings.Join(header, "\r\n") + "\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
}

func mustParse(t *testing.T, raw []byte) *mailcase.Message {
	t.Helper()
	m, err := mailcase.ParseMessage(raw, nil)
	require.NoError(t, err)
	require.NotNil(t, m)
	require.Equal(t, raw, m.Raw)
	require.Equal(t, int64(len(raw)), m.Size)
	return m
}

func problemNames(m *mailcase.Message) []string {
	var out []string
	for _, p := range m.Problems {
		out = append(out, p.Name)
	}
	return out
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		check  func(t *testing.T, m *mailcase.Message)
	}{
		{
			name: "addresses, subject and ids",
			header: []string{
				`From: "Doe, Jane" <Jane.Doe@Example.COM>`,
				`To: support@example.com, "Bob" <bob@example.com>`,
				`Cc: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>`,
				`Reply-To: replies@example.com`,
				`Sender: bot@example.com`,
				`Subject: =?ISO-8859-1?Q?R=E9clamation?= urgent`,
				`Message-ID: <ABC.123@Example.com>`,
				`In-Reply-To: <x1@example.com>`,
				`References: <x0@example.com> <x1@example.com>`,
				`Date: Tue, 10 Mar 2026 09:15:00 +0100`,
			},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.Equal(t, mailcase.Address{Name: "Doe, Jane", Email: "jane.doe@example.com"}, m.From)
				assert.Equal(t, []mailcase.Address{{Email: "support@example.com"}, {Name: "Bob", Email: "bob@example.com"}}, m.To)
				assert.Equal(t, []mailcase.Address{{Name: "Jürgen", Email: "j@example.de"}}, m.Cc)
				assert.Equal(t, []mailcase.Address{{Email: "replies@example.com"}}, m.ReplyTo)
				assert.Equal(t, "bot@example.com", m.Sender.Email)
				assert.Equal(t, "Réclamation urgent", m.Subject)
				assert.Equal(t, "Réclamation urgent", m.Header.Get("Subject"), "header decoded")
				assert.Equal(t, "ABC.123@Example.com", m.ID)
				assert.False(t, m.IDDerived)
				assert.Equal(t, []string{"x1@example.com"}, m.InReplyTo)
				assert.Equal(t, []string{"x0@example.com", "x1@example.com"}, m.References)
				assert.True(t, m.Date.Equal(time.Date(2026, 3, 10, 8, 15, 0, 0, time.UTC)))
				assert.False(t, m.HasReturnPath)
				assert.Empty(t, m.Problems)
			},
		},
		{
			name:   "empty return path",
			header: []string{"Return-Path: <>", "From: a@example.com", "Message-ID: <rp@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.True(t, m.HasReturnPath)
				assert.Equal(t, "", m.ReturnPath)
			},
		},
		{
			name:   "return path",
			header: []string{"Return-Path: <Bounce@Example.com>", "From: a@example.com", "Message-ID: <rp@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.True(t, m.HasReturnPath)
				assert.Equal(t, "bounce@example.com", m.ReturnPath)
			},
		},
		{
			name:   "lenient address fallback",
			header: []string{"From: John Doe john@example.com", "To: a@example.com; b@example.com", "Message-ID: <l@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.Equal(t, "john@example.com", m.From.Email)
				assert.Equal(t, []mailcase.Address{{Email: "a@example.com"}, {Email: "b@example.com"}}, m.To)
				assert.Contains(t, problemNames(m), mailcase.ProblemMalformedAddress)
			},
		},
		{
			name:   "folded header unfolded",
			header: []string{"From: a@example.com", "Subject: first\r\n\tsecond", "Message-ID: <f@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.Equal(t, "first second", m.Subject)
			},
		},
		{
			name:   "tolerant dates",
			header: []string{"From: a@example.com", "Date: 10 Mar 2026 09:15:00 +0100 (CET)", "Message-ID: <d@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.True(t, m.Date.Equal(time.Date(2026, 3, 10, 8, 15, 0, 0, time.UTC)), m.Date)
			},
		},
		{
			name:   "bad date recorded",
			header: []string{"From: a@example.com", "Date: yesterday", "Message-ID: <d@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.True(t, m.Date.IsZero())
				assert.Contains(t, problemNames(m), mailcase.ProblemMalformedDate)
			},
		},
		{
			name:   "missing from recorded",
			header: []string{"To: a@example.com", "Message-ID: <m@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.Equal(t, mailcase.Address{}, m.From)
				assert.Contains(t, problemNames(m), mailcase.ProblemMissingFrom)
			},
		},
		{
			name:   "raw latin-1 header",
			header: []string{"From: a@example.com", "Subject: caf\xe9", "Message-ID: <r@x>"},
			check: func(t *testing.T, m *mailcase.Message) {
				assert.Equal(t, "café", m.Subject)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParse(t, mail(tt.header, "body\n")))
		})
	}
}

func TestParseDerivedMessageID(t *testing.T) {
	raw := mail([]string{"From: a@example.com", "Subject: no id"}, "hello\n")
	m1 := mustParse(t, raw)
	m2 := mustParse(t, append([]byte(nil), raw...))
	assert.True(t, m1.IDDerived)
	assert.Equal(t, m1.ID, m2.ID, "same bytes, same ID")
	assert.Equal(t, mailcase.DerivedMessageID(raw), m1.ID)
	other := mustParse(t, mail([]string{"From: a@example.com", "Subject: no id"}, "hello!\n"))
	assert.NotEqual(t, m1.ID, other.ID)
	assert.Contains(t, problemNames(m1), mailcase.ProblemMissingMessageID)
}

func TestParseBodies(t *testing.T) {
	hdr := func(ct ...string) []string {
		return append([]string{"From: a@example.com", "Message-ID: <b@x>", "MIME-Version: 1.0"}, ct...)
	}
	tests := []struct {
		name         string
		raw          []byte
		text, html   string
		textFromHTML bool
		atts         []mailcase.Attachment
		problems     []string
	}{
		{
			name: "plain quoted-printable utf-8",
			raw:  mail(hdr("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"), "Gr=C3=BC=C3=9Fe,=\nline\n"),
			text: "Grüße,line\n",
		},
		{
			name:         "html only, no style or script text",
			raw:          mail(hdr("Content-Type: text/html; charset=utf-8"), "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body><p>Hi &amp; bye</p><script>var s=1</script><p>Two<br>lines</p></body></html>\n"),
			text:         "Hi & bye\n\nTwo\nlines",
			html:         "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body><p>Hi &amp; bye</p><script>var s=1</script><p>Two<br>lines</p></body></html>\n",
			textFromHTML: true,
		},
		{
			name: "alternative picks text and html",
			raw: mail(hdr(`Content-Type: multipart/alternative; boundary="b"`),
				"--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9\n--b\nContent-Type: text/html\n\n<p>caf&eacute;</p>\n--b--\n"),
			text: "café",
			html: "<p>caf&eacute;</p>",
		},
		{
			name: "attachments, inline image and forwarded message",
			raw: mail(hdr(`Content-Type: multipart/mixed; boundary="m"`),
				"--m\nContent-Type: text/plain\n\nsee attached\n"+
					"--m\nContent-Type: image/png\nContent-Disposition: inline; filename=\"a.png\"\nContent-ID: <img1@x>\nContent-Transfer-Encoding: base64\n\nAAECAw==\n"+
					"--m\nContent-Type: application/pdf; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?=\"\nContent-Transfer-Encoding: base64\n\nJVBERg==\n"+
					"--m\nContent-Type: message/rfc822\n\nFrom: b@example.com\nMessage-ID: <inner@x>\n\ninner body\n"+
					"--m\nContent-Type: text/plain\nContent-Disposition: attachment; filename*=UTF-8''na%C3%AFve.txt\n\nfile text\n--m--\n"),
			text: "see attached",
			atts: []mailcase.Attachment{
				{Filename: "a.png", ContentType: "image/png", ContentID: "img1@x", Inline: true, Size: 4, Data: []byte{0, 1, 2, 3}},
				{Filename: "résumé.pdf", ContentType: "application/pdf", Size: 4, Data: []byte("%PDF")},
				{ContentType: "message/rfc822", Size: 56, Data: []byte("From: b@example.com\r\nMessage-ID: <inner@x>\r\n\r\ninner body")},
				{Filename: "naïve.txt", ContentType: "text/plain", Size: 9, Data: []byte("file text")},
			},
		},
		{
			name:     "bad base64 keeps readable text",
			raw:      mail(hdr("Content-Type: text/plain", "Content-Transfer-Encoding: base64"), "aGVsbG8g!!d29ybGQ=\n"),
			text:     "hello world",
			problems: []string{mailcase.ProblemMalformedBase64},
		},
		{
			name: "iso-2022-jp",
			raw: append(mail(hdr("Content-Type: text/plain; charset=ISO-2022-JP"), ""),
				[]byte("\x1b$B$3$s$K$A$O\x1b(B\r\n")...),
			text: "こんにちは\n",
		},
		{
			name: "windows-1252 declared as iso-8859-1",
			raw:  mail(hdr("Content-Type: text/plain; charset=iso-8859-1"), "\x80 5 \x93quoted\x94\n"),
			text: "€ 5 “quoted”\n",
		},
		{
			name:     "invalid utf-8 replaced",
			raw:      mail(hdr("Content-Type: text/plain; charset=utf-8"), "ok \xff\xfe end\n"),
			text:     "ok \uFFFD end\n",
			problems: []string{mailcase.ProblemCharset},
		},
		{
			name: "missing closing boundary keeps parts",
			raw: mail(hdr(`Content-Type: multipart/mixed; boundary="z"`),
				"--z\nContent-Type: text/plain\n\nfirst\n--z\nContent-Type: text/plain\n\nsecond\n"),
			text:     "first\nsecond\n",
			problems: []string{mailcase.ProblemMissingBoundary},
		},
		{
			name: "zero-byte part",
			raw: mail(hdr(`Content-Type: multipart/mixed; boundary="z"`),
				"--z\nContent-Type: text/plain\n\nbody\n--z\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"empty.bin\"\n\n\n--z--\n"),
			text: "body",
			atts: []mailcase.Attachment{{Filename: "empty.bin", ContentType: "application/octet-stream", Size: 0, Data: []byte{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []struct {
				name  string
				parse func([]byte, *mailcase.ParseOptions) (*mailcase.Message, error)
			}{{"fast", mailcase.ParseMessage}, {"enmime", mailcase.ParseWithEnmime}} {
				m, err := path.parse(tt.raw, nil)
				require.NoError(t, err, path.name)
				assert.Equal(t, tt.text, m.Text, path.name)
				assert.Equal(t, tt.html, m.HTML, path.name)
				assert.Equal(t, tt.textFromHTML, m.TextFromHTML, path.name)
				assert.Equal(t, m.Text, m.ReplyText, path.name)
				assert.True(t, utf8.ValidString(m.Text), path.name)
				if len(tt.atts) == 0 {
					assert.Empty(t, m.Attachments, path.name)
				} else {
					require.Len(t, m.Attachments, len(tt.atts), path.name)
					for i, a := range tt.atts {
						got := m.Attachments[i]
						if len(a.Data) == 0 {
							assert.Empty(t, got.Data, path.name)
							got.Data, a.Data = nil, nil
						}
						assert.Equal(t, a, got, path.name)
					}
				}
				for _, p := range tt.problems {
					assert.Contains(t, problemNames(m), p, path.name)
				}
				if len(tt.problems) == 0 {
					assert.Empty(t, m.Problems, path.name)
				}
			}
		})
	}
}

func TestParseCharsetNames(t *testing.T) {
	tests := []struct {
		charset string
		body    string
		want    string
	}{
		{"cp1252", "\x80", "€"},
		{"windows1252", "\x80", "€"},
		{"Windows-1250", "\x8a", "Š"},
		{"latin1", "caf\xe9", "café"},
		{"iso8859-15", "\xa4", "€"},
		{"ISO_8859-2", "\xb3", "ł"},
		{"iso-8859-7", "\xe1", "α"},
		{"koi8-u", "\xa4", "є"},
		{"x-sjis", "\x82\xa0", "あ"},
		{"cp932", "\x82\xa0", "あ"},
		{"euc-jp", "\xa4\xa2", "あ"},
		{"ks_c_5601-1987", "\xb0\xa1", "가"},
		{"gb18030", "\xc4\xe3", "你"},
		{"big5-hkscs", "\xa4\xa4", "中"},
		{"utf-16le", "A\x00", "A"},
		{"utf-16be", "\x00A", "A"},
		{"\"UTF-8\"", "\xc3\xa9", "é"},
		{"us-ascii", "caf\xe9", "café"}, // mislabelled 8-bit: read as Windows-1252
	}
	for _, tt := range tests {
		t.Run(tt.charset, func(t *testing.T) {
			raw := append(mail([]string{"From: a@example.com", "Message-ID: <c@x>", "Content-Type: text/plain; charset=" + tt.charset}, ""), tt.body...)
			m := mustParse(t, raw)
			assert.Equal(t, tt.want, m.Text)
		})
	}
}
