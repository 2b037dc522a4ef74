package threading_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

// normalize right-trims lines, collapses blank runs and trims the text, as
// the extractor's output contract says.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var out []string
	blank := false
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			blank = len(out) > 0
			continue
		}
		if blank {
			out = append(out, "")
		}
		out = append(out, l)
		blank = false
	}
	return strings.Join(out, "\n")
}

// TestReplyCorpus runs the extractor over testdata/replies: each NN-name.eml
// has a hand-written NN-name.reply.txt. It reports the accuracy and fails
// on any mismatch.
func TestReplyCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replies", "*.eml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 60, "the corpus holds at least 60 mails")
	ex := threading.NewExtractor(nil)
	pass := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".eml")
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		want, err := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".reply.txt")
		require.NoError(t, err, "missing expected reply for %s", name)
		m, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err, name)
		got := ex.ExtractReply(m)
		if assert.Equal(t, normalize(string(want)), normalize(got), name) {
			pass++
		}
		assert.Equal(t, got, normalize(got), "%s: the output is normalised", name)
	}
	t.Logf("reply extraction corpus: %d/%d correct (%.1f%%)", pass, len(files), 100*float64(pass)/float64(len(files)))
}
