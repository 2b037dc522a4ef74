package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// filingConfig writes a configuration with an events sink, a service-level
// policy, routing rules (printer mail to hardware) and the thread key, for
// the mailbox support of the SQLite store db.
func filingConfig(t *testing.T, dir, db string) string {
	t.Helper()
	t.Setenv("MAILCASE_TEST_HOOK_SECRET", "a-webhook-secret-of-32-bytes-xyz")
	writeFile(t, dir, "rules.yaml", supportRules)
	writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
	return writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
threading: {key_file: key, domain: example.com}
routing: {rules: rules.yaml}
events:
  webhooks:
    - {name: crm, url: "https://crm.example/hook", secret_env: MAILCASE_TEST_HOOK_SECRET}
sla:
  policies:
    standard:
      first_response: {warn: 2h, due: 4h}
      resolution: {warn: 20h, due: 24h}
  mailboxes: {support: standard}
worklists:
  queues:
    - {name: hardware, members: [bob@example.com]}
    - {name: other, members: [bob@example.com]}
mailboxes:
  - name: support
    address: support@example.com
    default_queue: other
`, db))
}

// loggedEvents returns the events of the store's log, in order.
func loggedEvents(t *testing.T, db string) []driver.EventRecord {
	t.Helper()
	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	defer store.Close()
	evs, err := store.ReadEvents(t.Context(), 0, 1000)
	require.NoError(t, err)
	return evs
}

func kindsOf(evs []driver.EventRecord) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		out[e.Kind]++
	}
	return out
}

// slaCases returns sla status --json.
func slaCases(t *testing.T, cfg string) []slaCaseJSON {
	t.Helper()
	stdout, stderr, code := runCLI(t, "sla", "status", "--config", cfg, "--json")
	require.Equal(t, exitOK, code, stderr)
	var st []slaCaseJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
	return st
}

func printerMail(n int) string {
	return fmt.Sprintf("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer %d jams\r\n"+
		"Message-ID: <f%d@customer.example>\r\n\r\nThe printer jams.\r\n", n, n)
}

// import --live --config records the lifecycle events of the mails it
// files and starts their service-level clocks, as run, pipe and lmtp do.
func TestImport_RecordsEventsAndStartsClocks(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	cfg := filingConfig(t, dir, db)
	in := t.TempDir()
	for i := range 2 {
		writeFile(t, in, fmt.Sprintf("%d.eml", i), printerMail(i))
	}
	_, stderr, code := runCLI(t, "import", "--quiet", "--live", "--config", cfg, in)
	require.Equal(t, exitOK, code, stderr)

	kinds := kindsOf(loggedEvents(t, db))
	assert.Equal(t, 2, kinds["mail.received"], kinds)
	assert.Equal(t, 2, kinds["case.created"], kinds)
	assert.Equal(t, 2, kinds["case.routed"], kinds)

	st := slaCases(t, cfg)
	require.Len(t, st, 2, "both cases have clocks")
	for _, c := range st {
		assert.Len(t, c.Timers, 2, "first response and resolution")
	}

	// Imported again: duplicates, no new event.
	_, stderr, code = runCLI(t, "import", "--quiet", "--live", "--config", cfg, in)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, kinds, kindsOf(loggedEvents(t, db)))
}

// Without --live an import is an archive: the cases are filed with no
// lifecycle event and no service-level clock, so old threads alert nobody.
func TestImport_ArchiveRecordsNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	cfg := filingConfig(t, dir, db)
	in := t.TempDir()
	for i := range 2 {
		writeFile(t, in, fmt.Sprintf("%d.eml", i), printerMail(i))
	}
	_, stderr, code := runCLI(t, "import", "--quiet", "--config", cfg, in)
	require.Equal(t, exitOK, code, stderr)
	stdout, stderr, code := runCLI(t, "cases", "--json", "--store", "sqlite://"+db)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, 2, strings.Count(stdout, `"number"`), "both mails filed")
	assert.Empty(t, kindsOf(loggedEvents(t, db)))
	assert.Empty(t, slaCases(t, cfg), "no clocks")

	_, stderr, code = runCLI(t, "import", "--quiet", "--live", "--store", "mem://", in)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--live needs --config")
}

// quarantine retry files the mail with the mailbox's plugins (its routing
// rules), records its events and starts its clocks, as run does.
func TestQuarantineRetry_WiredLikeRun(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	cfg := filingConfig(t, dir, db)
	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	qid, err := store.PutQuarantine(t.Context(), &mailcase.QuarantineItem{Mailbox: "support", Reason: "plugin down",
		Attempts: 1, Raw: []byte(printerMail(1))})
	require.NoError(t, err)
	require.NoError(t, store.Close())

	stdout, stderr, code := runCLI(t, "quarantine", "retry", qid, "--config", cfg)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "created case")

	stdout, stderr, code = runCLI(t, "cases", "--json", "--store", "sqlite://"+db)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, `"queue": "hardware"`, "the mailbox's routing rules applied")
	kinds := kindsOf(loggedEvents(t, db))
	assert.Equal(t, 1, kinds["case.created"], kinds)
	assert.Equal(t, 1, kinds["mail.received"], kinds)
	st := slaCases(t, cfg)
	require.Len(t, st, 1)
	assert.Len(t, st[0].Timers, 2)
}

// reply and worklist reply record reply.queued (once per queued mail, a
// repeated command adds none) and stop the first-response clock.
func TestReply_RecordsReplyQueued(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	cfg := filingConfig(t, dir, db)
	in := t.TempDir()
	for i := range 2 {
		writeFile(t, in, fmt.Sprintf("%d.eml", i), printerMail(i))
	}
	_, stderr, code := runCLI(t, "import", "--quiet", "--live", "--concurrency", "1", "--config", cfg, in)
	require.Equal(t, exitOK, code, stderr)

	text := writeFile(t, dir, "a.txt", "We replaced the drum.\n")
	for range 2 {
		stdout, stderr, code := runCLI(t, "reply", "--config", cfg, "--file", text, "1000")
		require.Equal(t, exitOK, code, stderr)
		require.Contains(t, stdout, "queued log-email on case 1000")
	}
	var queued []map[string]any
	for _, e := range loggedEvents(t, db) {
		if e.Kind == "reply.queued" {
			var d map[string]any
			require.NoError(t, json.Unmarshal(e.Data, &d))
			queued = append(queued, d)
		}
	}
	require.Len(t, queued, 1, "the repeated reply is the same mail: one event")
	assert.Equal(t, "log-email", queued[0]["kind"])
	assert.Equal(t, "support", queued[0]["mailbox"])
	assert.NotEmpty(t, queued[0]["outbox_id"])

	stdout, stderr, code := runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "bob@example.com", "1001")
	require.Equal(t, exitOK, code, stderr+stdout)
	stdout, stderr, code = runCLI(t, "worklist", "reply", "--config", cfg, "--agent", "bob@example.com", "--file", text, "1001")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "queued the reply on case 1001")
	kinds := kindsOf(loggedEvents(t, db))
	assert.Equal(t, 2, kinds["reply.queued"], kinds)
	assert.Equal(t, 1, kinds["case.accepted"], kinds)

	for _, c := range slaCases(t, cfg) {
		for _, tm := range c.Timers {
			if tm.Kind == driver.SLAFirstResponse {
				assert.Equal(t, "met", tm.State, "case %s: the reply stopped the first-response clock", c.Number)
			}
		}
	}
}
