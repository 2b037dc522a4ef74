package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// processDemo files the demo mails into a fresh in-memory store.
func processDemo(t *testing.T) *mailcase.Store {
	t.Helper()
	store, err := openStore(t.Context(), "mem://")
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = seedDemoDirectory(t.Context(), store)
	require.NoError(t, err)
	p, err := buildPipeline(store, wireConfig{Mailbox: demoMailbox(), Logger: newLogger(&bytes.Buffer{}),
		TrustedAuthServIDs: []string{demoAuthServID}})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	mails, err := loadDemoMails()
	require.NoError(t, err)
	for _, m := range mails {
		_, err := p.Process(t.Context(), m.raw, nil)
		require.NoError(t, err, m.name)
	}
	return store
}

func TestListCases(t *testing.T) {
	store := processDemo(t)
	list, err := listCases(t.Context(), store, nil)
	require.NoError(t, err)
	require.Len(t, list, 5)
	assert.True(t, slices.IsSortedFunc(list, func(a, b caseJSON) int { return a.CreatedAt.Compare(b.CreatedAt) }),
		"oldest first")

	first := list[0]
	assert.Equal(t, "Invoice 2026-117 charged twice", first.Subject)
	assert.Equal(t, mailcase.StatusNew, first.Status)
	assert.Equal(t, "support", first.Queue)
	assert.NotEmpty(t, first.ContactID)
	assert.NotEmpty(t, first.AccountID)
	var ids []string
	for _, m := range first.Mails {
		ids = append(ids, m.MessageID)
		assert.Equal(t, mailcase.Inbound, m.Direction)
	}
	assert.Equal(t, []string{
		"CAF1n0rth-20261116-0912.anna@northwind.example",
		"CAF1n0rth-20261116-1430.anna@northwind.example",
		"jd-20261116-1605@ourcompany.example",
	}, ids)

	// Filters apply.
	none, err := listCases(t.Context(), store, &mailcase.ListOptions{Queue: "nosuch"})
	require.NoError(t, err)
	assert.Empty(t, none)
	two, err := listCases(t.Context(), store, &mailcase.ListOptions{Limit: 2})
	require.NoError(t, err)
	assert.Len(t, two, 2)

	// JSON: one array with stable field names.
	var b bytes.Buffer
	require.NoError(t, writeJSON(&b, list))
	var arr []map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &arr))
	require.Len(t, arr, 5)
	for _, f := range []string{"id", "number", "subject", "status", "priority", "queue", "contact_id", "account_id", "created_at", "mails", "notes"} {
		assert.Contains(t, arr[0], f)
	}
	mail := arr[0]["mails"].([]any)[0].(map[string]any)
	for _, f := range []string{"message_id", "direction", "from", "subject", "date", "auto"} {
		assert.Contains(t, mail, f)
	}

	// Text.
	b.Reset()
	printCases(&b, list, nil)
	assert.Contains(t, b.String(), "case "+first.Number+"  new")
	assert.Contains(t, b.String(), "<- jd-20261116-1605@ourcompany.example  from jamie.doe@ourcompany.example")
}

func TestCases_EmptyMem(t *testing.T) {
	stdout, stderr, code := runCLI(t, "cases", "--store", "mem://")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Contains(t, stdout, "no cases in mem://")
	assert.Contains(t, stdout, "in-memory store")
	stdout, _, code = runCLI(t, "cases", "--json", "--store", "mem://")
	require.Equal(t, exitOK, code)
	assert.JSONEq(t, "[]", stdout)
}

// TestImportThenCases_Persistent imports the demo mails into a file store
// and lists them with a second command, as a user would.
func TestImportThenCases_Persistent(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "cases.db")
	stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", url, writeDemoDir(t, nil))
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.NotContains(t, stderr, "in-memory store")
	assert.Equal(t, 6, summaryCounts(t, stdout)["created"])

	stdout, stderr, code = runCLI(t, "cases", "--json", "--store", url)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	var arr []caseJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &arr))
	require.Len(t, arr, 6)
	// A concurrent import numbers cases in the order they are filed.
	i := slices.IndexFunc(arr, func(c caseJSON) bool { return c.Subject == "Invoice 2026-117 charged twice" })
	require.GreaterOrEqual(t, i, 0, stdout)
	assert.Len(t, arr[i].Mails, 3)

	// explain against the store: a filed mail is a duplicate, a new one
	// would create a case, and nothing is written.
	stdout, stderr, code = runCLI(t, "explain", "--json", "--store", url, "demo/01-invoice-contact.eml")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Equal(t, "duplicate", decodeExplain(t, []byte(stdout))["outcome"].(map[string]any)["action"])
	stdout, stderr, code = runCLI(t, "explain", "--json", "--store", url, "testdata/inline-image.eml")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Equal(t, "created", decodeExplain(t, []byte(stdout))["outcome"].(map[string]any)["action"])
	stdout, _, code = runCLI(t, "cases", "--json", "--store", url)
	require.Equal(t, exitOK, code)
	require.NoError(t, json.Unmarshal([]byte(stdout), &arr))
	assert.Len(t, arr, 6, "explain wrote nothing")

	// Importing the same backlog again files nothing twice.
	stdout, _, code = runCLI(t, "import", "--quiet", "--store", url, writeDemoDir(t, nil))
	require.Equal(t, exitOK, code)
	counts := summaryCounts(t, stdout)
	assert.Equal(t, 0, counts["created"])
	assert.Equal(t, 10, counts["duplicates"])
}

// TestImportThenCases_DefaultStore uses no --store: import and cases share
// the SQLite file of the working directory.
func TestImportThenCases_DefaultStore(t *testing.T) {
	inbox := writeDemoDir(t, nil)
	t.Chdir(t.TempDir())
	stdout, stderr, code := runCLI(t, "import", "--quiet", inbox)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Equal(t, 6, summaryCounts(t, stdout)["created"])
	assert.FileExists(t, "mailcase.db")

	stdout, stderr, code = runCLI(t, "cases")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Contains(t, stdout, "Invoice 2026-117 charged twice")
	assert.Contains(t, stdout, "<- CAF1n0rth-20261116-0912.anna@northwind.example")
}
