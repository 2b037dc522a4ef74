package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// lostBodyRaw is the mail of issue 10 whose body an earlier parser dropped:
// no blank line between its header and its body.
const lostBodyRaw = "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Printer broken\r\n" +
	"Message-ID: <lost-body@example.org>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
	"My printer has been broken since Monday.\r\nPlease call me back.\r\n"

// TestReparse_RestoresLostBody files a mail normally with import, then
// files, as the old parser did, a mail whose text is empty but whose kept
// raw mail has a body (a parser fix since), and runs reparse on the SQLite
// store: --dry-run shows the change and writes nothing, reparse restores
// the text and leaves the well-parsed mail alone, a second run finds
// nothing to do.
func TestReparse_RestoresLostBody(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "cases.db")
	mails := filepath.Join(dir, "mails")
	require.NoError(t, os.Mkdir(mails, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mails, "ok.eml"), []byte(
		"From: bob@example.org\r\nTo: support@example.com\r\nSubject: Fine mail\r\nMessage-ID: <fine@example.org>\r\n\r\nAll good here.\r\n"), 0o644))
	stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", url, mails)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	// What the parser before the fix filed: the header only, empty text.
	store, err := openStore(t.Context(), url)
	require.NoError(t, err)
	m, err := mailcase.ParseMessage([]byte(lostBodyRaw), nil)
	require.NoError(t, err)
	key := mailcase.IdempotencyKey("support", m)
	e := m.ToEmail(key, "support")
	e.Text, e.ReplyText, e.Problems = "", "", nil
	e.Raw = []byte(lostBodyRaw)
	c, err := store.CreateCase(t.Context(), &mailcase.NewCase{Subject: e.Subject, Queue: "support", First: e})
	require.NoError(t, err)
	require.NoError(t, store.Close())
	storedText := func() string {
		t.Helper()
		s, err := openStore(t.Context(), url)
		require.NoError(t, err)
		defer s.Close()
		got, ok, err := s.GetEmail(t.Context(), key)
		require.NoError(t, err)
		require.True(t, ok)
		return got.Text
	}
	require.Empty(t, storedText())

	stdout, stderr, code = runCLI(t, "reparse", "--dry-run", "--store", url)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "<lost-body@example.org> (case "+string(c.ID)+"): would change text, reply_text, problems")
	assert.Contains(t, stdout, "<fine@example.org>")
	assert.Contains(t, stdout, "re-parsed 2 mails: 1 would update (dry run, nothing written), 1 unchanged, 0 skipped")
	assert.Empty(t, storedText(), "--dry-run writes nothing")

	stdout, stderr, code = runCLI(t, "reparse", "--store", url)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "<lost-body@example.org> (case "+string(c.ID)+"): updated text, reply_text, problems")
	assert.Contains(t, stdout, "Missing Header Separator")
	assert.Contains(t, stdout, "<fine@example.org> (case ")
	assert.Contains(t, stdout, "re-parsed 2 mails: 1 updated, 1 unchanged, 0 skipped")
	text := storedText()
	assert.Contains(t, text, "My printer has been broken since Monday.")
	assert.Contains(t, text, "Please call me back.")

	// Nothing left to do; the selections find the mail.
	for _, sel := range [][]string{nil, {"--case", c.Number}, {"--message-id", "<lost-body@example.org>"}, {"--key", `support\x00lost-body@example.org`}} {
		args := append([]string{"reparse", "--json", "--store", url}, sel...)
		stdout, stderr, code = runCLI(t, args...)
		require.Equal(t, exitOK, code, "%v\nstdout:\n%s\nstderr:\n%s", sel, stdout, stderr)
		var arr []reparseJSON
		require.NoError(t, json.Unmarshal([]byte(stdout), &arr))
		var found bool
		for _, r := range arr {
			assert.Empty(t, r.Changed, "%v: %+v", sel, r)
			if r.MessageID == "lost-body@example.org" {
				found = true
				assert.Equal(t, string(c.ID), r.CaseID)
			}
		}
		assert.True(t, found, "%v selects the mail: %s", sel, stdout)
		if sel != nil {
			assert.Len(t, arr, 1, "%v selects one mail", sel)
		}
	}
}

func TestReparse_Errors(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "cases.db")
	_, stderr, code := runCLI(t, "reparse", "--store", url, "extra")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "takes no arguments")
	_, stderr, code = runCLI(t, "reparse", "--store", url, "--case", "4242")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "no case number 4242")
	_, stderr, code = runCLI(t, "reparse", "--store", url, "--message-id", "<none@x>")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "no mail with Message-ID none@x")
	stdout, stderr, code := runCLI(t, "reparse", "--store", url)
	require.Equal(t, exitOK, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, "re-parsed 0 mails"), stdout)
}
