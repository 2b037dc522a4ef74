package outbox_test

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// FuzzCompose feeds hostile values to the fields that come from input. On
// success the output must parse, hold only the fields Compose writes, and
// keep every line under 998 bytes.
func FuzzCompose(f *testing.F) {
	for _, s := range []string{"", "x\r\nBcc: evil@attacker.example", "\u2028", "\x85", "\xff", "=?utf-8?q?a?=", strings.Repeat("é", 600), `"q u"@x`, "a@b\x00"} {
		f.Add(s, s, s, s, s, "X-Note")
	}
	want := map[string]bool{"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true,
		"X-Note": true, "Mime-Version": true, "Content-Type": true}
	f.Fuzz(func(t *testing.T, subject, name, addr, filename, value, field string) {
		m := &outbox.Message{
			From:    mail.Address{Name: name, Address: "support@company.example"},
			To:      []mail.Address{{Name: name, Address: addr}, {Address: "ann@customer.example"}},
			Subject: subject, Text: value,
			Headers:     []outbox.Field{{Name: field, Value: value}},
			Attachments: []outbox.Attachment{{Filename: filename, Data: []byte(value + "x")}},
		}
		c, err := outbox.Compose(m, nil)
		if err != nil {
			return
		}
		msg, err := mail.ReadMessage(bytes.NewReader(c.Raw))
		if err != nil {
			t.Fatalf("composed message does not parse: %v\n%q", err, c.Raw)
		}
		for k := range msg.Header {
			if !want[k] && !strings.EqualFold(k, field) {
				t.Fatalf("unexpected field %q in\n%q", k, c.Raw)
			}
		}
		for _, line := range strings.Split(string(c.Raw), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line of %d bytes", len(line))
			}
		}
	})
}
