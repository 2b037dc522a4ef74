package cli

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The case hijack through the unknown-sender placeholder, as two (and
// more) mails through the built binary's pipe command: a stranger opens a
// case under the placeholder policy; mail claiming the placeholder's
// address (the old routable one and the new one) with Re: [#N] and a Cc
// must neither append to nor reopen the closed case, and the Cc'd address
// must not thread onto it afterwards.
func TestPipeNoHijackThroughPlaceholder(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	cfg := writeFile(t, dir, "mailcase.yaml", fmt.Sprintf("store: sqlite://%s\nmailboxes:\n  - name: support\n    address: support@ourcompany.example\n    unknown_sender: placeholder\n", db))
	pipe := func(id, from, subject, cc string) string {
		t.Helper()
		m := "From: " + from + "\nTo: support@ourcompany.example\n"
		if cc != "" {
			m += "Cc: " + cc + "\n"
		}
		m += "Subject: " + subject + "\nDate: Mon, 02 Mar 2026 10:00:00 +0000\nMessage-ID: <" + id + ">\n\nhello\n"
		cmd := exec.CommandContext(t.Context(), bin, "pipe", "--config", cfg, "-v")
		cmd.Env = append(cmd.Environ(), "MAILCASE_LOG_LEVEL=error")
		cmd.Stdin = strings.NewReader(m)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), "stderr: %s", &errb)
		return out.String()
	}
	open := func() *mailcase.Store {
		s, err := openStore(t.Context(), "sqlite://"+db)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	out := pipe("first@customer.example", "Bob <bob@customer.example>", "Printer broken", "")
	require.True(t, strings.HasPrefix(out, "created"), "first mail: %q", out)
	s := open()
	cases, err := s.ListCases(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, cases, 1)
	victim := cases[0]
	closed := mailcase.StatusClosed
	_, err = s.UpdateCase(t.Context(), victim.ID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	for i, from := range []string{"<unknown-sender@ourcompany.example>", "<unknown-sender@invalid>", "Unknown sender <UNKNOWN-SENDER@invalid>"} {
		out = pipe(fmt.Sprintf("attack%d@evil.example", i), from, "Re: [#"+victim.Number+"] x", "eve@evil.example")
		assert.True(t, strings.HasPrefix(out, "created"), "mail from %s with [#%s] must open its own case, got %q", from, victim.Number, out)
	}
	out = pipe("eve@evil.example", "Eve <eve@evil.example>", "Re: [#"+victim.Number+"] give me the data", "")
	assert.True(t, strings.HasPrefix(out, "created"), "eve with [#%s] must not thread, got %q", victim.Number, out)

	s = open()
	got, ok, err := s.GetCase(t.Context(), victim.ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, mailcase.StatusClosed, got.Status, "the victim's closed case is not reopened")
	assert.ElementsMatch(t, []string{"bob@customer.example", "support@ourcompany.example"}, got.Participants,
		"neither the placeholder's address nor eve ever joins the victim's case")
	in, err := s.ListInteractions(t.Context(), victim.ID)
	require.NoError(t, err)
	assert.Len(t, in, 1, "nothing was appended to the victim's case")
	all, err := s.ListCases(t.Context(), nil)
	require.NoError(t, err)
	for _, c := range all {
		assert.NotContains(t, c.Participants, "unknown-sender@invalid", "case %s", c.Number)
	}
}
