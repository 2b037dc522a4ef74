package mailcasetest_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

func TestGenerateCorpusDeterministic(t *testing.T) {
	a := mailcasetest.GenerateCorpus(200, 5)
	b := mailcasetest.GenerateCorpus(200, 5)
	c := mailcasetest.GenerateCorpus(200, 6)
	require.Len(t, a, 200)
	assert.Equal(t, a, b, "same seed, same bytes")
	assert.NotEqual(t, a, c, "another seed, other mails")
	assert.Empty(t, mailcasetest.GenerateCorpus(0, 1))
}

// TestGenerateCorpusRealistic checks the mix the benchmarks rely on and that
// every mail parses cleanly.
func TestGenerateCorpusRealistic(t *testing.T) {
	corpus := mailcasetest.GenerateCorpus(1000, 1)
	require.Len(t, corpus, 1000)
	counts := map[string]int{}
	ids := map[string]bool{}
	var total int
	for i, raw := range corpus {
		total += len(raw)
		require.True(t, bytes.Contains(raw, []byte("\r\n\r\n")), "mail %d has a header and a body", i)
		m, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err, "mail %d", i)
		require.Empty(t, m.Problems, "mail %d parses cleanly", i)
		require.False(t, m.IDDerived)
		require.False(t, ids[m.ID], "mail %d: unique Message-ID", i)
		ids[m.ID] = true
		require.Equal(t, mailcasetest.CorpusMailbox, m.To[0].Email)
		ct := strings.ToLower(m.Header.Get("Content-Type"))
		switch {
		case len(m.InReplyTo) > 0:
			counts["reply"]++
			assert.Contains(t, m.Text, "\n> ", "mail %d: replies quote", i)
		case m.TextFromHTML:
			counts["html-only"]++
		}
		if len(m.Attachments) > 0 && !strings.HasPrefix(ct, "multipart/report") {
			counts["attachments"]++
			for _, a := range m.Attachments {
				assert.Greater(t, a.Size, int64(1024))
			}
		}
		for _, cs := range []string{"iso-2022-jp", "iso-8859-1", "windows-1252"} {
			if bytes.Contains(bytes.ToLower(raw), []byte("charset="+cs)) || bytes.Contains(bytes.ToLower(raw), []byte("charset=\""+cs)) {
				counts[cs]++
			}
		}
		if bytes.Contains(raw, []byte("quoted-printable")) {
			counts["qp"]++
		}
		if bytes.Contains(raw, []byte("Content-Transfer-Encoding: base64\r\n\r\n")) && strings.HasPrefix(ct, "text/") {
			counts["base64-text"]++
		}
		if a := mailcase.DetectAuto(m); a.IsAuto {
			counts["auto-"+a.Kind]++
		}
	}
	t.Logf("corpus: %d mails, %d bytes (%.1f KB average), mix %v", len(corpus), total, float64(total)/1024/float64(len(corpus)), counts)
	for _, k := range []string{"reply", "html-only", "attachments", "iso-2022-jp", "iso-8859-1", "windows-1252", "qp", "base64-text", "auto-auto-reply", "auto-bounce"} {
		assert.Greater(t, counts[k], 20, k)
	}
	// The Japanese mails decode to Japanese.
	found := false
	for _, raw := range corpus {
		if bytes.Contains(raw, []byte("ISO-2022-JP")) {
			m, err := mailcase.ParseMessage(raw, nil)
			require.NoError(t, err)
			assert.Contains(t, m.Text, "お")
			found = true
			break
		}
	}
	assert.True(t, found)
}
