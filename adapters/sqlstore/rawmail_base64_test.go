package sqlstore

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// largeMail returns a mail of headers, a short text and body, a part of
// at least hufThreshold bytes.
func largeMail(body string) []byte {
	return []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n" +
		"--b\r\n" + body + "\r\n--b--\r\n")
}

// base64Lines encodes n random bytes as base64 lines of 76 letters.
func base64Lines(t *testing.T, n int) string {
	t.Helper()
	data := make([]byte, n)
	_, err := rand.Read(data)
	require.NoError(t, err)
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}

// A large mail mostly of base64 lines is told apart from large text,
// quoted-printable or not, and from a small attachment in long text.
func TestMostlyBase64(t *testing.T) {
	attachment := "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(t, 150<<10)
	assert.True(t, mostlyBase64(largeMail(attachment)), "a 150 KB PDF")

	text := strings.Repeat("Thanks for the quick answer, the invoice looks right to me now and\r\n", 2000)
	assert.False(t, mostlyBase64(largeMail("Content-Type: text/plain\r\n\r\n"+text)), "text lines have spaces")

	qp := strings.Repeat("<p style=3D\"margin:0\">Thanks=2C the invoice looks right to me n=\r\n", 2000)
	assert.False(t, mostlyBase64(largeMail("Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+qp)),
		"quoted-printable lines end with a soft break")

	mixed := "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(t, 30<<10) +
		"\r\n--b\r\nContent-Type: text/plain\r\n\r\n" + text
	assert.False(t, mostlyBase64(largeMail(mixed)), "a small attachment beside long text")
}

// Both ways of compressing give a DEFLATE stream compress/flate reads back
// byte for byte, and a large attachment takes the Huffman-only way at
// about the ratio of BestSpeed.
func TestDeflate_RoundTrip(t *testing.T) {
	s := &store{}
	text := strings.Repeat("Thanks for the quick answer, the invoice looks right to me now and\r\n", 2000)
	for name, raw := range map[string][]byte{
		"small text":       largeMail("Content-Type: text/plain\r\n\r\n" + text[:5000]),
		"large text":       largeMail("Content-Type: text/plain\r\n\r\n" + text),
		"large attachment": largeMail("Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(t, 150<<10)),
	} {
		t.Run(name, func(t *testing.T) {
			for range 2 { // the second time with a reused writer
				data, enc := s.deflate(raw)
				require.Equal(t, encDeflate, enc)
				got, err := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
				require.NoError(t, err)
				require.Equal(t, raw, got)
				if strings.Contains(name, "attachment") {
					assert.Less(t, len(data), len(raw)*78/100, "Huffman codes shrink base64 to about 76%%")
				} else {
					assert.Less(t, len(data), len(raw)/2, "matches shrink repeated text")
				}
			}
		})
	}
}
