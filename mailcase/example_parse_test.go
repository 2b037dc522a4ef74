package mailcase_test

import (
	"fmt"

	"github.com/emailcrm/emailcrm/mailcase"
)

func ExampleParseMessage() {
	raw := []byte("From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.DE>\r\n" +
		"To: support@example.com\r\n" +
		"Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\r\n" +
		"Message-ID: <1234@example.de>\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"\r\n" +
		"<html><head><style>p{color:red}</style></head><body><p>Out of office &amp; back soon.</p></body></html>\r\n")
	m, err := mailcase.ParseMessage(raw, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.ID)
	fmt.Println(m.From.Name, m.From.Email)
	fmt.Println(m.Subject)
	fmt.Printf("%q (from HTML: %v)\n", m.Text, m.TextFromHTML)
	a := mailcase.DetectAuto(m)
	fmt.Println(a.Kind, "-", a.Reason)

	_, err = mailcase.ParseMessage([]byte("\x00\x01 not a mail"), nil)
	fmt.Println(mailcase.Code(err))
	// Output:
	// 1234@example.de
	// Jürgen Müller juergen@example.de
	// こんにちは
	// "Out of office & back soon." (from HTML: true)
	// auto-reply - Auto-Submitted: auto-replied
	// InvalidArgument
}
