package mailcase_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Unfolding a field folded over many lines is linear: the bytes allocated
// stay proportional to the mail (string concatenation per line allocated
// O(n^2): about 800 MB for this 80 KB mail).
func TestParse_FoldedFieldIsLinear(t *testing.T) {
	raw := hostileFolded(20_000)
	var m *mailcase.Message
	alloc := allocDuring(func() {
		var err error
		m, err = mailcase.ParseMessage(raw, nil)
		require.NoError(t, err)
	})
	assert.Less(t, alloc, uint64(20*len(raw)), "bytes allocated for a %d-byte mail", len(raw))
	assert.Equal(t, "x"+strings.Repeat(" y", 20_000), m.Subject)
	assert.NotContains(t, problemNames(m), mailcase.ProblemFieldTruncated)
}

func TestParse_FieldLengthIsCapped(t *testing.T) {
	long := strings.Repeat("z", mailcase.MaxFieldBytes+100)
	tests := []struct {
		name string
		raw  []byte
	}{
		{name: "folded", raw: hostileFolded(mailcase.MaxFieldBytes/2 + 10)},
		{name: "one long line", raw: []byte("From: a@b.example\r\nSubject: " + long + "\r\n\r\nbody\r\n")},
		{name: "enmime path", raw: []byte("From: a@b.example\r\nnot a header\r\nSubject: " + long + "\r\n\r\nbody\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mailcase.ParseMessage(tt.raw, nil)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(m.Subject), mailcase.MaxFieldBytes)
			assert.Greater(t, len(m.Subject), mailcase.MaxFieldBytes-10)
			assert.Contains(t, problemNames(m), mailcase.ProblemFieldTruncated)
			for _, p := range m.Problems {
				if p.Name == mailcase.ProblemFieldTruncated {
					assert.Contains(t, p.Detail, "Subject")
				}
			}
			assert.Equal(t, "a@b.example", m.From.Email)
		})
	}
}

// Many distinct fields: the enmime path orders them in one scan and both
// paths keep at most MaxHeaderFields (the insertion sort over a rescan of
// the header per field took minutes on 50,000 fields).
func TestParse_ManyFieldsAreCapped(t *testing.T) {
	n := mailcase.MaxHeaderFields + 2000
	var fast strings.Builder
	fast.WriteString("From: a@b.example\r\nMessage-ID: <m@x>\r\n")
	for i := range n {
		fmt.Fprintf(&fast, "X-F%d: v%d\r\n", i, i)
	}
	fast.WriteString("Subject: late\r\n\r\nbody\r\n")
	tests := []struct {
		name string
		raw  []byte
	}{
		{name: "splitter", raw: []byte(fast.String())},
		{name: "enmime", raw: hostileManyFields(n)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mailcase.ParseMessage(tt.raw, nil)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(m.Header), mailcase.MaxHeaderFields)
			assert.Contains(t, problemNames(m), mailcase.ProblemTooManyFields)
			assert.Equal(t, "a@b.example", m.From.Email, "the first fields are kept")
			assert.Equal(t, "m@x", m.ID)
			assert.NotEmpty(t, m.Header.Get("X-F0"), "the first fields are kept")
			assert.Empty(t, m.Header.Get(fmt.Sprintf("X-F%d", n-1)), "the last fields are dropped")
		})
	}
}

// The enmime path keeps the mail's field order, so "first value" means the
// same on both paths, including names written in another case.
func TestParse_EnmimeKeepsFieldOrder(t *testing.T) {
	raw := []byte("From: a@b.example\r\nnot a header\r\nX-Tag: one\r\nSubject: s\r\nx-tag: two\r\nX-Other: o\r\n\r\nbody\r\n")
	slow, err := mailcase.ParseWithEnmime(raw, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two"}, slow.Header["X-Tag"])
	assert.Equal(t, "one", slow.Header.Get("X-Tag"))
}

// TestParse_HTMLHeadWithoutEnd: an HTML-only mail whose <head> is not
// closed still gives its body text (the renderer's cases are in
// internal/htmltext).
func TestParse_HTMLHeadWithoutEnd(t *testing.T) {
	m := mustParse(t, []byte("From: a@b.example\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"+
		"<html><head><meta charset=utf-8><title>x</title><body><p>My printer is broken</p>"))
	assert.Equal(t, "My printer is broken", m.Text)
}

func TestSafeFilename(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "report.pdf", want: "report.pdf"},
		{name: "empty", in: "", want: ""},
		{name: "path", in: "../../etc/cron.d/x", want: "x"},
		{name: "trailing slash", in: "../../etc/cron.d/x/", want: "x"},
		{name: "windows path", in: `C:\Users\a\evil.exe\`, want: "evil.exe"},
		{name: "dot dot", in: "..", want: "attachment"},
		{name: "dot", in: ".", want: "attachment"},
		{name: "slashes only", in: "//", want: "attachment"},
		{name: "dot dot slash", in: "../", want: "attachment"},
		{name: "controls", in: "a\r\nb\x00c\u2028.txt", want: "abc.txt"},
		{name: "c1 control", in: "a\u0085b.txt", want: "ab.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mailcase.SafeFilename(tt.in))
		})
	}
}

func TestParse_AttachmentFilenameNoPath(t *testing.T) {
	tests := []struct{ name, disposition, want string }{
		{name: "trailing slash", disposition: `attachment; filename="../../etc/cron.d/x/"`, want: "x"},
		{name: "encoded word", disposition: `attachment; filename="=?utf-8?q?=2E=2E=2Fx=2F?="`, want: "x"},
		{name: "dot dot", disposition: `attachment; filename=".."`, want: "attachment"},
		{name: "rfc 2231", disposition: `attachment; filename*=utf-8''..%2F..%2Fy%0D%0A`, want: "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
				"--B\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--B\r\nContent-Type: application/octet-stream\r\n" +
				"Content-Disposition: " + tt.disposition + "\r\n\r\nDATA\r\n--B--\r\n"
			m := mustParse(t, []byte(raw))
			require.Len(t, m.Attachments, 1)
			assert.Equal(t, tt.want, m.Attachments[0].Filename)
		})
	}
}

// Decoded header values never carry a line break: an encoded CR LF must not
// become a forged header line when the value is written out again.
func TestParse_DecodedHeadersAreSingleLine(t *testing.T) {
	raw := []byte("From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40x=2Eexample?= <eve@evil.example>\r\n" +
		"To: =?utf-8?q?T=0Ao?= <t@x.example>, =?utf-8?b?" + "TmFtZeKAqEJjYw==" + "?= <u@x.example>\r\n" +
		"Subject: =?utf-8?q?hi=0D=0ABcc=3A_victim=40x=2Eexample?=\r\n" +
		"X-Note: =?utf-8?q?a=0Db=C2=85c=7F?=\r\n" +
		"Message-ID: <crlf@x>\r\n\r\nbody\r\n")
	for name, parse := range map[string]func([]byte, *mailcase.ParseOptions) (*mailcase.Message, error){
		"fast": mailcase.ParseMessage, "enmime": mailcase.ParseWithEnmime,
	} {
		t.Run(name, func(t *testing.T) {
			m, err := parse(raw, nil)
			require.NoError(t, err)
			assert.Equal(t, "hi  Bcc: victim@x.example", m.Subject)
			assert.Equal(t, "Eve  Bcc: victim@x.example", m.From.Name)
			assert.Equal(t, "eve@evil.example", m.From.Email)
			require.Len(t, m.To, 2)
			assert.Equal(t, "T o", m.To[0].Name)
			assert.Equal(t, "Name Bcc", m.To[1].Name)
			assert.Equal(t, "a b c ", m.Header.Get("X-Note"))
			for k, vs := range m.Header {
				for _, v := range vs {
					assert.NotContains(t, v, "\r", k)
					assert.NotContains(t, v, "\n", k)
				}
			}
		})
	}
}
