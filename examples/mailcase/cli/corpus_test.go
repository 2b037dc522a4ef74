package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// TestImport_Corpus imports a generated backlog (new mails, replies,
// HTML-only, attachments, ISO-2022-JP, auto-replies, bounces) and checks
// that every mail is accounted for and none fails.
func TestImport_Corpus(t *testing.T) {
	const n = 150
	dir := t.TempDir()
	for i, raw := range mailcasetest.GenerateCorpus(n, 7) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.eml", i)), raw, 0o600))
	}
	stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", "mem://", dir)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	c := summaryCounts(t, stdout)
	assert.Equal(t, n, c["fetched"])
	assert.Zero(t, c["errors"], stdout)
	assert.Zero(t, c["quarantined"], stdout)
	assert.Positive(t, c["created"])
	assert.Positive(t, c["appended"], "replies of the corpus thread onto earlier mails")
	assert.Positive(t, c["auto"])
	assert.Equal(t, n, c["created"]+c["appended"]+c["recorded"]+c["filtered"]+c["duplicates"]+c["rejected"],
		"every mail has exactly one outcome:\n%s", stdout)
}

// TestExplain_HostileInput runs explain --json on generated mails cut at
// arbitrary points and on garbage: the output is always exactly one JSON
// object, with the full field set or an error.
func TestExplain_HostileInput(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, raw := range mailcasetest.GenerateCorpus(12, 11) {
		for j, cut := range []int{len(raw), len(raw) / 2, len(raw) / 7, 40, 1} {
			p := filepath.Join(dir, fmt.Sprintf("%02d-%d.eml", i, j))
			require.NoError(t, os.WriteFile(p, raw[:min(cut, len(raw))], 0o600))
			files = append(files, p)
		}
	}
	for i, junk := range [][]byte{{0}, []byte("\r\n\r\n"), []byte("From: \x00\xff\xfe\n\n\xff"), []byte(":\n:\n\n")} {
		p := filepath.Join(dir, fmt.Sprintf("junk-%d.eml", i))
		require.NoError(t, os.WriteFile(p, junk, 0o600))
		files = append(files, p)
	}
	for _, f := range files {
		stdout, stderr, code := runCLI(t, "explain", "--json", f)
		obj := decodeExplain(t, []byte(stdout))
		if code != exitOK {
			assert.Equal(t, exitFailure, code, "%s: %s", f, stderr)
			assert.Contains(t, obj, "error", f)
			continue
		}
		for _, field := range explainFields {
			assert.Contains(t, obj, field, f)
		}
	}
}
