package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeGoBlock returns the Go program of the README's "Embedding the
// pipeline" section.
func readmeGoBlock(t *testing.T, readme string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "## Embedding the pipeline")
	require.True(t, ok, "README has no embedding section")
	_, after, ok = strings.Cut(after, "```go\n")
	require.True(t, ok, "the embedding section has no go code block")
	code, _, ok := strings.Cut(after, "```")
	require.True(t, ok, "unterminated code block")
	return code
}

// TestREADME_EmbeddingExample builds the README's Go example as a program
// of this module (through a build overlay, so nothing is written to the
// source tree) and runs it on the demo mails.
func TestREADME_EmbeddingExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program; skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	code := readmeGoBlock(t, string(readme))
	assert.Contains(t, code, "package main")
	assert.Contains(t, code, "emailcrm.NewPipeline(", "the example uses the batteries-included pipeline (quoted history stripped)")
	assert.LessOrEqual(t, strings.Count(code, "\n"), 45, "keep the README example short")

	tmp := t.TempDir()
	src := filepath.Join(tmp, "main.go")
	require.NoError(t, os.WriteFile(src, []byte(code), 0o600))
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(root, "examples", "mailcase", "readmecheck", "main.go"): src,
	}})
	require.NoError(t, err)
	overlayFile := filepath.Join(tmp, "overlay.json")
	require.NoError(t, os.WriteFile(overlayFile, overlay, 0o600))

	bin := filepath.Join(tmp, "readme-example")
	build := exec.CommandContext(t.Context(), "go", "build", "-overlay", overlayFile, "-o", bin, "../readmecheck")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "the README example does not build:\n%s", out)

	// Run it in a directory whose inbox holds the demo mails.
	work := t.TempDir()
	inbox := filepath.Join(work, "inbox")
	require.NoError(t, os.Mkdir(inbox, 0o700))
	mails, err := loadDemoMails()
	require.NoError(t, err)
	for _, m := range mails {
		require.NoError(t, os.WriteFile(filepath.Join(inbox, m.name), m.raw, 0o600))
	}
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Dir = work
	out, err = cmd.Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	assert.Len(t, lines, len(mails), "one line per mail:\n%s", out)
	assert.Equal(t, "created 1000", lines[0])
	assert.Contains(t, lines, "appended 1000", "the reply is threaded onto the first case")
}
