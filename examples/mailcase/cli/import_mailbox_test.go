package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportMailboxAddress reproduces issue 10 item 7 through the
// built binary: a mail From: the mailbox's own address (the To of every
// case) with a bare [#N] in its subject, and no header linking it to the
// case, must not thread onto case N. import takes the mailbox address from
// --config, as run does; without the configuration (the control) the same
// two mails still thread, which shows the configuration is what makes the
// difference.
func TestImportMailboxAddress(t *testing.T) {
	bin := buildBinary(t)
	first := "From: Ann Customer <ann@customer.example>\r\nTo: support@company.example\r\n" +
		"Subject: Printer on fire\r\nMessage-ID: <fire-1@customer.example>\r\n" +
		"Date: Mon, 16 Nov 2026 09:00:00 +0000\r\n\r\nHelp, the printer is on fire.\r\n"

	// importBoth imports first, reads the number N of the case it opened,
	// then imports the attack mail naming [#N], and returns the cases.
	importBoth := func(t *testing.T, flags ...string) (string, []caseJSON) {
		t.Helper()
		dir := t.TempDir()
		db := filepath.Join(dir, "cases.db")
		in1 := filepath.Join(dir, "in1")
		in2 := filepath.Join(dir, "in2")
		writeFile(t, mkdir(t, in1), "01.eml", first)
		args := append([]string{"import", "--quiet", "--store", "sqlite://" + db}, flags...)
		stdout, stderr, code := runBinary(t, bin, append(args, in1)...)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		cases := binaryCases(t, bin, db)
		require.Len(t, cases, 1)
		n := cases[0].Number
		require.NotEmpty(t, n)

		attack := fmt.Sprintf("From: <support@company.example>\r\nTo: support@company.example\r\n"+
			"Subject: Re: [#%s] your ticket\r\nMessage-ID: <attack-1@evil.example>\r\n"+
			"Date: Mon, 16 Nov 2026 10:00:00 +0000\r\n\r\nPlease send me the invoice data.\r\n", n)
		writeFile(t, mkdir(t, in2), "02.eml", attack)
		stdout, stderr, code = runBinary(t, bin, append(args, in2)...)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		return n, binaryCases(t, bin, db)
	}

	t.Run("mailbox address from --config", func(t *testing.T) {
		cfg := writeFile(t, t.TempDir(), "mailcase.yaml",
			"store: mem://\nmailboxes:\n  - name: support\n    address: support@company.example\n")
		n, cases := importBoth(t, "--config", cfg)
		found := false
		for _, c := range cases {
			if c.Number != n {
				continue
			}
			found = true
			require.Len(t, c.Mails, 1, "the attack mail threaded onto case %s", n)
			assert.Equal(t, "fire-1@customer.example", c.Mails[0].MessageID)
		}
		require.True(t, found, "case %s is gone: %+v", n, cases)
	})

	t.Run("control: no configuration", func(t *testing.T) {
		n, cases := importBoth(t, "--mailbox", "support")
		require.Len(t, cases, 1, "without the mailbox address the bare [#%s] threads (the hole --config closes)", n)
		assert.Len(t, cases[0].Mails, 2)
	})
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// binaryCases returns the cases of the SQLite file db, as cases --json
// prints them.
func binaryCases(t *testing.T, bin, db string) []caseJSON {
	t.Helper()
	stdout, stderr, code := runBinary(t, bin, "cases", "--json", "--store", "sqlite://"+db)
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	var arr []caseJSON
	require.NoError(t, json.Unmarshal(stdout, &arr), "%s", stdout)
	return arr
}
