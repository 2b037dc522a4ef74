package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// A concurrent import files the same cases as a sequential one (case
// numbers aside): the mails of one conversation are still filed one after
// the other, in name order.
func TestImport_ConcurrentGivesTheSameCases(t *testing.T) {
	const n = 400
	dir := t.TempDir()
	for i, raw := range mailcasetest.GenerateCorpus(n, 11) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.eml", i)), raw, 0o600))
	}
	cases := func(concurrency string) []string {
		url := "sqlite://" + filepath.Join(t.TempDir(), "cases.db")
		stdout, stderr, code := runCLI(t, "import", "--quiet", "--concurrency", concurrency, "--store", url, dir)
		require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		require.Zero(t, summaryCounts(t, stdout)["errors"], stdout)
		stdout, stderr, code = runCLI(t, "cases", "--json", "--store", url)
		require.Equal(t, exitOK, code, stderr)
		var arr []caseJSON
		require.NoError(t, json.Unmarshal([]byte(stdout), &arr))
		var out []string
		for _, c := range arr {
			ids := make([]string, 0, len(c.Mails))
			for _, m := range c.Mails {
				ids = append(ids, m.MessageID) // oldest first: the order they were filed
			}
			out = append(out, c.Subject+" | "+string(c.Status)+" | "+strings.Join(ids, " "))
		}
		slices.Sort(out)
		return out
	}
	seq := cases("1")
	require.Greater(t, len(seq), 20)
	conc := cases("16")
	assert.Equal(t, seq, conc)
}
