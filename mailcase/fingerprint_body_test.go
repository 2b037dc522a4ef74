package mailcase

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// The one-call path of the body's hash writes exactly what the
// line-by-line normalisation writes, for any body.
func FuzzFingerprintBody(f *testing.F) {
	for _, s := range []string{"a\r\nb", "a\nb", ">From x\r\nb", "a\r\n>From x", "a\r\n>b", "a\r\r\nb", "\r\n\r\nx", "a\rb\r\nc", ">", "From x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.TrimRight(body, " \t\r\n") // as ContentFingerprint passes it
		var fast, lines bytes.Buffer
		writeBody(&fast, body)
		writeLines(&lines, body)
		require.Equal(t, lines.String(), fast.String())
	})
}
