package outbox_test

import (
	"bytes"
	"errors"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

var fixedNow = func() time.Time { return time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) }

func fullMessage() *outbox.Message {
	return &outbox.Message{
		From:       mail.Address{Name: "Support – Société", Address: "support@company.example"},
		ReplyTo:    []mail.Address{{Address: "support@company.example"}},
		To:         []mail.Address{{Name: "Ann O'Neil", Address: "ann@customer.example"}},
		Cc:         []mail.Address{{Address: "ANN@customer.example"}, {Address: "bob@customer.example"}},
		Bcc:        []mail.Address{{Address: "audit@company.example"}},
		Subject:    "Re: Drucker kaputt – Fall 1234",
		MessageID:  "<abc.1234@company.example>",
		InReplyTo:  "<m1@customer.example>",
		References: "<m0@customer.example> <m1@customer.example>",
		Headers:    []outbox.Field{{Name: "Auto-Submitted", Value: "auto-replied"}, {Name: "X-Note", Value: "Grüße"}},
		Text:       "Hello Ann,\nthe drum is replaced.\n",
		HTML:       `<p>Hello Ann,</p><p>the drum is replaced.</p><img src="cid:logo@company.example">`,
		Attachments: []outbox.Attachment{
			{Filename: "Bericht für März.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 fake")},
			{Filename: "logo.png", ContentID: "logo@company.example", Data: []byte("\x89PNG\r\n\x1a\nfake")},
		},
	}
}

// parts walks a composed message and returns "type filename" of each leaf,
// with the path of multipart types.
func walk(t *testing.T, raw []byte) (map[string]string, *gomail.Header, []string) {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	require.NoError(t, err)
	h := r.Header
	bodies := map[string]string{}
	var order []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch ph := p.Header.(type) {
		case *gomail.InlineHeader:
			ct, _, _ := ph.ContentType()
			bodies[ct] = string(b)
			order = append(order, ct)
		case *gomail.AttachmentHeader:
			name, err := ph.Filename()
			require.NoError(t, err)
			bodies[name] = string(b)
			order = append(order, "file:"+name)
		}
	}
	return bodies, &h, order
}

func TestCompose_Structure(t *testing.T) {
	c, err := outbox.Compose(fullMessage(), &outbox.ComposeOptions{Now: fixedNow})
	require.NoError(t, err)
	assert.Equal(t, "<abc.1234@company.example>", c.MessageID)
	assert.Equal(t, "support@company.example", c.From)
	assert.Equal(t, []string{"ann@customer.example", "bob@customer.example", "audit@company.example"}, c.Recipients,
		"To, Cc and Bcc, each once whatever its case, in order")
	assert.False(t, c.NeedsSMTPUTF8)
	head := string(c.Raw[:bytes.Index(c.Raw, []byte("\r\n\r\n"))])
	assert.NotContains(t, strings.ToLower(head), "bcc", "Bcc is never written")
	assert.NotContains(t, head, "audit@company.example")
	for _, line := range strings.Split(string(c.Raw), "\r\n") {
		assert.LessOrEqual(t, len(line), 998)
	}

	bodies, h, order := walk(t, c.Raw)
	subj, err := h.Subject()
	require.NoError(t, err)
	assert.Equal(t, "Re: Drucker kaputt – Fall 1234", subj)
	from, err := h.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, "Support – Société", from[0].Name)
	assert.Equal(t, "Grüße", decodeWords(t, h.Get("X-Note")))
	refs, err := h.MsgIDList("References")
	require.NoError(t, err)
	assert.Equal(t, []string{"m0@customer.example", "m1@customer.example"}, refs)
	d, err := h.Date()
	require.NoError(t, err)
	assert.True(t, d.Equal(fixedNow()))
	assert.Equal(t, "Hello Ann,\r\nthe drum is replaced.\r\n", bodies["text/plain"])
	assert.Contains(t, bodies["text/html"], `cid:logo@company.example`)
	assert.Equal(t, "%PDF-1.4 fake", bodies["Bericht für März.pdf"], "a non-ASCII file name round-trips (RFC 2231)")
	assert.Equal(t, []string{"text/plain", "text/html", "image/png", "file:Bericht für März.pdf"}, order)
	raw := string(c.Raw)
	assert.Contains(t, raw, "multipart/mixed")
	assert.Contains(t, raw, "multipart/alternative")
	assert.Contains(t, raw, "multipart/related", "the inline image sits with the HTML")
	assert.Contains(t, raw, "Content-Id: <logo@company.example>")
	assert.Contains(t, raw, "filename*=")
}

func decodeWords(t *testing.T, s string) string {
	t.Helper()
	var h gomail.Header
	h.Set("X", s)
	v, err := h.Text("X")
	require.NoError(t, err)
	return v
}

func TestCompose_TextOnlyAndGeneratedID(t *testing.T) {
	c, err := outbox.Compose(&outbox.Message{From: mail.Address{Address: "support@company.example"},
		To: []mail.Address{{Address: "ann@customer.example"}}, Subject: "Hi", Text: "one\ntwo"}, nil)
	require.NoError(t, err)
	assert.Regexp(t, `^<[0-9a-f]{24}@company\.example>$`, c.MessageID)
	m, err := mail.ReadMessage(bytes.NewReader(c.Raw))
	require.NoError(t, err)
	assert.Equal(t, `text/plain; charset=utf-8`, m.Header.Get("Content-Type"))
	assert.Equal(t, c.MessageID, m.Header.Get("Message-Id"))
	b, err := io.ReadAll(m.Body)
	require.NoError(t, err)
	assert.Equal(t, "one\r\ntwo", string(b))
}

// Hostile values through every field: either a clear error, or a message
// whose header holds exactly the fields Compose writes and no line break
// from input.
func TestCompose_HeaderInjection(t *testing.T) {
	evil := []string{"x\r\nBcc: evil@attacker.example", "x\rBcc: evil@attacker.example", "x\nBcc: evil@attacker.example",
		"x\u2028Bcc: evil@attacker.example", "x\u0085Bcc: evil@attacker.example", "x\x00y", "x\xffy"}
	type setter func(m *outbox.Message, v string)
	fields := map[string]setter{
		"From name":     func(m *outbox.Message, v string) { m.From.Name = v },
		"From address":  func(m *outbox.Message, v string) { m.From.Address = "support@company.example" + v },
		"To name":       func(m *outbox.Message, v string) { m.To[0].Name = v },
		"To address":    func(m *outbox.Message, v string) { m.To[0].Address = "ann@customer.example" + v },
		"Cc address":    func(m *outbox.Message, v string) { m.Cc[0].Address = v + "@customer.example" },
		"Bcc name":      func(m *outbox.Message, v string) { m.Bcc[0].Name = v },
		"Reply-To name": func(m *outbox.Message, v string) { m.ReplyTo[0].Name = v },
		"Subject":       func(m *outbox.Message, v string) { m.Subject = v },
		"Message-ID":    func(m *outbox.Message, v string) { m.MessageID = "<a" + v + "@b>" },
		"In-Reply-To":   func(m *outbox.Message, v string) { m.InReplyTo = "<a@b>" + v },
		"References":    func(m *outbox.Message, v string) { m.References = v + "<a@b>" },
		"Field value":   func(m *outbox.Message, v string) { m.Headers[1].Value = v },
		"Field name":    func(m *outbox.Message, v string) { m.Headers[1].Name = "X" + v },
		"Filename":      func(m *outbox.Message, v string) { m.Attachments[0].Filename = v + ".pdf" },
		"Content type":  func(m *outbox.Message, v string) { m.Attachments[0].ContentType = "application/pdf" + v },
		"Content-ID":    func(m *outbox.Message, v string) { m.Attachments[1].ContentID = "logo" + v + "@company.example" },
	}
	want := map[string]bool{"From": true, "Reply-To": true, "To": true, "Cc": true, "Subject": true, "Date": true,
		"Message-Id": true, "In-Reply-To": true, "References": true, "Auto-Submitted": true, "X-Note": true,
		"Mime-Version": true, "Content-Type": true}
	for name, set := range fields {
		for i, v := range evil {
			t.Run(name+"/"+strconv.Itoa(i), func(t *testing.T) {
				m := fullMessage()
				set(m, v)
				c, err := outbox.Compose(m, nil)
				if err != nil {
					assert.True(t, errors.Is(err, outbox.ErrInvalidAddress) || errors.Is(err, outbox.ErrInvalidHeader), "unclear error %v", err)
					return
				}
				msg, err := mail.ReadMessage(bytes.NewReader(c.Raw))
				require.NoError(t, err)
				for k := range msg.Header {
					assert.True(t, want[k], "field %q appeared from %s = %q", k, name, v)
				}
				assert.NotContains(t, string(c.Raw), "\nBcc:")
				assert.Equal(t, []string{"ann@customer.example", "bob@customer.example", "audit@company.example"}, c.Recipients)
				for _, line := range strings.SplitAfter(string(c.Raw), "\n") {
					assert.False(t, strings.Contains(strings.TrimSuffix(line, "\r\n"), "\r") || (strings.HasSuffix(line, "\n") && !strings.HasSuffix(line, "\r\n")),
						"a bare CR or LF in %q", line)
				}
			})
		}
	}
}

func TestCompose_Errors(t *testing.T) {
	tests := []struct {
		name string
		edit func(m *outbox.Message)
		want error
		text string
	}{
		{"missing attachment", func(m *outbox.Message) { m.Attachments[0].Data = nil }, outbox.ErrMissingAttachment, "attachment 0 (Bericht für März.pdf)"},
		{"no recipients", func(m *outbox.Message) { m.To, m.Cc, m.Bcc = nil, nil, nil }, outbox.ErrNoRecipients, ""},
		{"bad address", func(m *outbox.Message) { m.To[0].Address = "not an address" }, outbox.ErrInvalidAddress, "To[0]"},
		{"address with name", func(m *outbox.Message) { m.Cc[1].Address = "Bob <bob@customer.example>" }, outbox.ErrInvalidAddress, "Cc[1]"},
		{"own field", func(m *outbox.Message) { m.Headers[0].Name = "Bcc" }, outbox.ErrInvalidHeader, "Bcc is written by Compose"},
		{"bad message id", func(m *outbox.Message) { m.MessageID = "abc" }, outbox.ErrInvalidHeader, "Message-ID"},
		{"inline without html", func(m *outbox.Message) { m.HTML = "" }, outbox.ErrInvalidHeader, "no HTML body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := fullMessage()
			tc.edit(m)
			_, err := outbox.Compose(m, nil)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.text)
		})
	}
}

func TestCompose_TenThousandRecipients(t *testing.T) {
	m := fullMessage()
	for i := range 10000 {
		m.Bcc = append(m.Bcc, mail.Address{Address: "r" + strconv.Itoa(i) + "@customer.example"})
	}
	_, err := outbox.Compose(m, nil)
	require.ErrorIs(t, err, outbox.ErrTooManyRecipients)
	assert.Contains(t, err.Error(), "10003, at most 1000")
	c, err := outbox.Compose(m, &outbox.ComposeOptions{MaxRecipients: 20000})
	require.NoError(t, err)
	assert.Len(t, c.Recipients, 10003)
	_, err = outbox.Compose(fullMessage(), &outbox.ComposeOptions{MaxSize: 100})
	require.ErrorIs(t, err, outbox.ErrTooLarge)
}

func TestCompose_QuotedLocalPartAndIDN(t *testing.T) {
	m := fullMessage()
	m.To = []mail.Address{{Name: "John", Address: `"john doe"@example.com`}, {Address: "anna@bücher.example"}}
	c, err := outbox.Compose(m, nil)
	require.NoError(t, err)
	assert.Equal(t, `"john doe"@example.com`, c.Recipients[0])
	assert.Equal(t, "anna@bücher.example", c.Recipients[1])
	assert.True(t, c.NeedsSMTPUTF8, "an IDN address needs SMTPUTF8")
	msg, err := mail.ReadMessage(bytes.NewReader(c.Raw))
	require.NoError(t, err)
	to, err := msg.Header.AddressList("To")
	require.NoError(t, err)
	assert.Equal(t, `"john doe"@example.com`, to[0].Address)
}

func TestCompose_LongValuesFold(t *testing.T) {
	m := fullMessage()
	m.Subject = strings.Repeat("Überlänge ", 300)
	var refs []string
	for i := range 60 {
		refs = append(refs, "<ref-"+strconv.Itoa(i)+"-"+strings.Repeat("x", 40)+"@customer.example>")
	}
	m.References = strings.Join(refs, " ")
	m.Headers[1].Value = strings.Repeat("y", 3000)
	c, err := outbox.Compose(m, nil)
	require.NoError(t, err)
	for _, line := range strings.Split(string(c.Raw), "\r\n") {
		require.LessOrEqual(t, len(line), 998)
	}
	_, h, _ := walk(t, c.Raw)
	s, err := h.Subject()
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(m.Subject), s)
	got, err := h.MsgIDList("References")
	require.NoError(t, err)
	assert.Len(t, got, 60)
}

func TestCompose_EdgeFields(t *testing.T) {
	m := fullMessage()
	m.Headers = append(m.Headers, outbox.Field{Name: "X-" + strings.Repeat("a", 74), Value: "v"})
	_, err := outbox.Compose(m, nil)
	require.ErrorIs(t, err, outbox.ErrInvalidHeader, "a field name too long to fold is refused, not a panic")

	m = fullMessage()
	m.Attachments[0].ContentType = "text/plain; charset=iso-8859-1"
	m.Attachments[0].Data = []byte("caf\xe9")
	c, err := outbox.Compose(m, nil)
	require.NoError(t, err)
	bodies, _, _ := walk(t, c.Raw)
	assert.Equal(t, "caf\xe9", bodies["Bericht für März.pdf"], "a Latin-1 text attachment keeps its bytes")
}

func TestCompose_LongNamesAndIDs(t *testing.T) {
	m := fullMessage()
	m.Attachments[0].Filename = strings.Repeat("漢", 400) + ".pdf"
	m.Attachments[0].ContentType = "application/pdf; name=\"" + strings.Repeat("x", 1200) + "\""
	c, err := outbox.Compose(m, nil)
	require.NoError(t, err)
	bodies, _, _ := walk(t, c.Raw)
	want := strings.Repeat("漢", 38) + ".pdf" // 120 bytes at most, extension kept
	assert.Equal(t, "%PDF-1.4 fake", bodies[want], "the shortened name decodes intact: %v", keys(bodies))

	m = fullMessage()
	m.References = "<" + strings.Repeat("r", 1200) + "@x.example>"
	_, err = outbox.Compose(m, nil)
	require.ErrorIs(t, err, outbox.ErrInvalidHeader, "an ID too long for one line is refused")
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
