package mailcase_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase"
)

// hostileFolded is a mail whose Subject is folded over n continuation lines.
func hostileFolded(n int) []byte {
	var sb strings.Builder
	sb.WriteString("From: a@b.example\r\nMessage-ID: <f@x>\r\nSubject: x\r\n")
	for range n {
		sb.WriteString(" y\r\n")
	}
	sb.WriteString("\r\nbody\r\n")
	return []byte(sb.String())
}

// hostileManyFields is a mail with one non-header line (which sends it to
// the enmime fallback) and n distinct header fields.
func hostileManyFields(n int) []byte {
	var sb strings.Builder
	sb.WriteString("From: a@b.example\r\nMessage-ID: <m@x>\r\nthis is not a header\r\n")
	for i := range n {
		fmt.Fprintf(&sb, "X-F%d: v\r\n", i)
	}
	sb.WriteString("\r\nbody\r\n")
	return []byte(sb.String())
}

// hostileDSN is a multipart/report whose message/delivery-status part holds
// one field folded over n lines.
func hostileDSN(n int) []byte {
	var sb strings.Builder
	sb.WriteString("From: MAILER-DAEMON@mx.example\r\nTo: a@b.example\r\nMessage-ID: <d@x>\r\nSubject: Undelivered\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; u@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; x\r\n")
	for range n {
		sb.WriteString(" y\r\n")
	}
	sb.WriteString("--B--\r\n")
	return []byte(sb.String())
}

// BenchmarkHostile measures ParseMessage and DetectAuto on inputs that were
// quadratic: a header field folded over many lines, many distinct fields on
// the enmime fallback path, and a delivery-status part with a field folded
// over many lines. One op is one mail.
func BenchmarkHostile(b *testing.B) {
	for _, tc := range []struct {
		name string
		raw  []byte
		auto bool
	}{
		{name: "folded-subject-60k", raw: hostileFolded(60_000)},
		{name: "folded-subject-180k", raw: hostileFolded(180_000)},
		{name: "enmime-fields-10k", raw: hostileManyFields(10_000)},
		{name: "enmime-fields-50k", raw: hostileManyFields(50_000)},
		{name: "dsn-folded-50k", raw: hostileDSN(50_000), auto: true},
		{name: "dsn-folded-200k", raw: hostileDSN(200_000), auto: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.raw)))
			for b.Loop() {
				m, err := mailcase.ParseMessage(tc.raw, nil)
				if err != nil {
					b.Fatal(err)
				}
				if tc.auto {
					_ = mailcase.DetectAuto(m)
					_ = mailcase.DetectBounce(m)
				}
			}
		})
	}
}
