package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

// hostileMail has a Message-ID that retitles a terminal (OSC 0 ... BEL)
// and a body with raw ESC, a C1 CSI and a bidi override.
const hostileMail = "From: Eve <eve@evil.example>\r\nTo: support@example.com\r\n" +
	"Subject: hello \x1b[2J world\r\nMessage-ID: <e\x1b]0;owned\x07@x>\r\n\r\n" +
	"line one \x1b]0;owned too\x07\r\nC1 \u009b31m and \u202eevil\r\n"

func assertNoControls(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\u202e"} {
		assert.NotContains(t, out, bad, "raw control %q reached the output", bad)
	}
}

// Item 5: everything printed for a person is sanitised.
func TestTerminalEscapes(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "hostile.eml", hostileMail)

	stdout, stderr, code := runCLI(t, "explain", file)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, `message-id  e\x1b]0;owned\x07@x`)
	assert.Contains(t, stdout, `line one \x1b]0;owned too\x07`)
	assert.Contains(t, stdout, `C1 \u009b31m and \u202eevil`)

	in := t.TempDir()
	writeFile(t, in, "hostile.eml", hostileMail)
	db := filepath.Join(t.TempDir(), "s.db")
	stdout, stderr, code = runCLI(t, "import", "--store", db, in)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, `e\x1b]0;owned\x07@x`)

	stdout, stderr, code = runCLI(t, "cases", "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, `<- e\x1b]0;owned\x07@x  from eve@evil.example`)

	// A literal backslash sequence in a mail is told apart from an escape.
	assert.Equal(t, `a\\x1b`, clean(`a\x1b`))
	assert.Equal(t, "a\\x1b\nb\tc", cleanText("a\x1b\nb\tc"))
	assert.Equal(t, `\xff`, clean("\xff"))
}

// Item 9: every bad value is reported at load with file:line and the valid
// values.
func TestConfigErrorsWithLine(t *testing.T) {
	const head = "store: sqlite:///tmp/x.db\nmailboxes:\n  - name: support\n    interval: 2m\n"
	const imap = "    source:\n      type: imap\n      addr: h:993\n      username: u\n      password_env: P\n"
	tests := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{name: "security none", yaml: head + imap + "      security: none\n", line: 10, want: `security: "none" is not valid (valid values: tls, starttls, insecure)`},
		{name: "after archive", yaml: head + imap + "      after: {kind: archive}\n", line: 10, want: `after.kind: "archive" is not valid (valid values: delete, move, flag)`},
		{name: "move without folder", yaml: head + imap + "      after: {kind: move}\n", line: 10, want: "kind: move needs a folder"},
		{name: "unknown key", yaml: head + imap + "      colour: red\n", line: 10, want: `unknown key "colour" in mailboxes[0].source (valid keys: addr, after,`},
		{name: "bad duration", yaml: "mailboxes:\n  - name: a\n    interval: 2 minutes\n", line: 3, want: `"2 minutes" is not a duration`},
		{name: "duration without unit", yaml: "mailboxes:\n  - name: a\n    interval: 60\n", line: 3, want: `"60" is not a duration`},
		{name: "unknown source type", yaml: "mailboxes:\n  - name: a\n    interval: 1m\n    source: {type: nntp}\n", line: 4, want: "unknown source type \"nntp\" (valid values: imap, pop3, maildir, mbox, dir)"},
		{name: "unknown sender policy", yaml: "mailboxes:\n  - name: a\n    unknown_sender: ignore\n", line: 3, want: `unknown_sender: "ignore" is not valid (valid values: placeholder, create, reject)`},
		{name: "watch on pop3", yaml: "mailboxes:\n  - name: a\n    interval: 1m\n    source:\n      type: pop3\n      addr: h:995\n      username: u\n      password_env: P\n      watch: true\n", line: 9, want: "watch is an IMAP setting"},
		{name: "relative sqlite URL", yaml: "store: sqlite://data/x.db\nmailboxes: [{name: a}]\n", line: 1, want: "sqlite:data/x.db"},
		{name: "catch-all", yaml: "lmtp:\n  catch_all: zz\nmailboxes: [{name: a}]\n", line: 2, want: `no mailbox "zz" (mailboxes: a)`},
		{name: "yaml syntax", yaml: "mailboxes:\n  - name: a\n   bad: [\n", line: 1, want: "did not find expected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "c.yaml", tc.yaml)
			_, err := loadConfig(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), fmt.Sprintf("config %s:%d: ", path, tc.line))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The documented example and insecure/watch are valid.
	_, err := parseConfig([]byte(head + imap + "      security: insecure\n      watch: true\n"))
	require.NoError(t, err)
}

// Item 13: store paths, read-only commands, import with nothing matched,
// help on stdout.
func TestCLIEdges(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	for _, args := range [][]string{
		{"cases", "--store", missing},
		{"cases", "--store", "sqlite://" + missing},
		{"explain", "--store", missing, "demo/01-invoice-contact.eml"},
		{"quarantine", "list", "--store", missing},
	} {
		_, stderr, code := runCLI(t, args...)
		assert.Equal(t, exitFailure, code, "%v", args)
		assert.Contains(t, stderr, "does not exist", "%v", args)
		assert.NoFileExists(t, missing, "%v created the store", args)
	}

	_, stderr, code := runCLI(t, "cases", "--store", "sqlite://data/x.db")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "sqlite:///absolute/path/x.db")
	assert.Contains(t, stderr, "sqlite:data/x.db")

	// A bare path is SQLite at that path (relative to the working directory).
	t.Chdir(dir)
	stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", "data.db", writeDemoDir(t, nil))
	require.Equal(t, exitOK, code, stderr)
	assert.Regexp(t, `created\s+6\n`, stdout, "--quiet still prints the summary")
	assert.NotRegexp(t, `(?m)^\d+/\d+ `, stdout, "--quiet prints no per-mail line")
	assert.FileExists(t, filepath.Join(dir, "data.db"))
	stdout, stderr, code = runCLI(t, "cases", "--store", "data.db")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Invoice 2026-117 charged twice")
	assert.Contains(t, stdout, "(2 mails recorded on no case: --recorded lists them)")

	boxes := t.TempDir()
	writeFile(t, boxes, "a.box", "From: a@b.example\r\n\r\nx\r\n")
	stdout, stderr, code = runCLI(t, "import", "--store", "mem://", boxes)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "nothing matched: "+boxes+" has no *.eml file")
	assert.Contains(t, stdout, "1 other files were skipped (.box)")

	stdout, stderr, code = runCLI(t, "help", "import")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "Usage: mailcase import")
	assert.Contains(t, stdout, "-log-level")
	assert.Empty(t, stderr)
}

// Item 10: cases --recorded lists mail filed on no case; JSON without it
// says what it leaves out.
func TestCasesRecorded(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	_, stderr, code := runCLI(t, "import", "--quiet", "--store", db, writeDemoDir(t, nil))
	require.Equal(t, exitOK, code, stderr)
	stdout, stderr, code := runCLI(t, "cases", "--json", "--recorded", "--store", db)
	require.Equal(t, exitOK, code, stderr)
	var got casesRecordedJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	assert.Len(t, got.Cases, 6)
	var ids []string
	for _, r := range got.Recorded {
		ids = append(ids, r.MessageID)
	}
	assert.ElementsMatch(t, []string{"ooo-20261116-1502.carlos@fabrikam.example", "20261116141041.5F2A81C0@mx.ourcompany.example"}, ids)
	_, stderr, code = runCLI(t, "cases", "--json", "--store", db)
	require.Equal(t, exitOK, code)
	assert.Contains(t, stderr, "2 mails recorded on no case are not in this list; --recorded includes them")
}

// Item 10: quarantine list, show, retry and delete.
func TestQuarantineCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	in := t.TempDir()
	writeFile(t, in, "empty.eml", "")
	_, stderr, code := runCLI(t, "import", "--quiet", "--store", db, in)
	require.Equal(t, exitOK, code, stderr)
	// Put a retryable (parseable) mail into the quarantine directly.
	store, err := openStore(t.Context(), db)
	require.NoError(t, err)
	qid, err := store.PutQuarantine(t.Context(), &mailcase.QuarantineItem{Mailbox: "support", Reason: "plugin down",
		Attempts: 1, Raw: []byte(hostileMail)})
	require.NoError(t, err)
	require.NoError(t, store.Close())

	stdout, stderr, code := runCLI(t, "quarantine", "list", "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, "empty mail")
	assert.Contains(t, stdout, `<e\x1b]0;owned\x07@x>`)
	stdout, _, _ = runCLI(t, "quarantine", "list", "--json", "--store", db)
	var list []quarantineJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &list))
	require.Len(t, list, 2)

	stdout, stderr, code = runCLI(t, "quarantine", "show", qid, "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, "plugin down")
	var raw bytes.Buffer
	require.Equal(t, exitOK, run(t.Context(), []string{"quarantine", "show", "--raw", qid, "--store", db}, &raw, &bytes.Buffer{}))
	assert.Equal(t, hostileMail, raw.String(), "--raw gives the exact bytes")

	stdout, stderr, code = runCLI(t, "quarantine", "retry", qid, "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "created case")
	stdout, _, _ = runCLI(t, "cases", "--store", db)
	assert.Contains(t, stdout, `[2J world`)

	emptyID := ""
	for _, q := range list {
		if q.ID != qid {
			emptyID = q.ID
		}
	}
	_, stderr, code = runCLI(t, "quarantine", "retry", emptyID, "--store", db)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "still quarantined")
	stdout, stderr, code = runCLI(t, "quarantine", "delete", emptyID, "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "deleted "+emptyID+" from the quarantine")
	stdout, _, _ = runCLI(t, "quarantine", "list", "--store", db)
	assert.Contains(t, stdout, "no quarantined mail")
	_, stderr, code = runCLI(t, "quarantine", "show", "nosuch", "--store", db)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, `no quarantined mail "nosuch"`)
}

// mixedCorpus writes a directory of mixed mail: plain mail, a reply, an
// auto-reply, a bounce, a list mail (filtered when blocked), a duplicate,
// a broken (empty) mail, a mail from an unknown sender, and a reply to a
// closed case (rejected under threading: {closed_policy: reject}).
func mixedCorpus(t *testing.T, closedMsgID string) string {
	t.Helper()
	dir := writeDemoDir(t, nil)
	raw, err := os.ReadFile(filepath.Join(dir, "01-invoice-contact.eml"))
	require.NoError(t, err)
	writeFile(t, dir, "11-duplicate.eml", string(raw))
	writeFile(t, dir, "12-broken.eml", "")
	writeFile(t, dir, "13-reply-to-closed.eml", "From: Old Customer <old@closed.example>\r\nTo: support@example.com\r\n"+
		"Subject: Re: old matter\r\nMessage-ID: <late-reply@closed.example>\r\nIn-Reply-To: <"+closedMsgID+">\r\n\r\nStill broken.\r\n")
	return dir
}

var summaryLine = regexp.MustCompile(`(?m)^  (fetched|filtered|created|appended|reopened|recorded|rejected|structured|duplicates|quarantined|deferred)\s+(\d+)$`)

// "What it must show": the counts of an import add up to the files.
func TestImportCountsAddUp(t *testing.T) {
	policy := writeFile(t, t.TempDir(), "reject.yaml", "threading: {closed_policy: reject}\nmailboxes: [{name: support}]\n")
	db := filepath.Join(t.TempDir(), "s.db")
	// A closed case for the late reply.
	seed := t.TempDir()
	writeFile(t, seed, "old.eml", "From: Old Customer <old@closed.example>\r\nTo: support@example.com\r\n"+
		"Subject: old matter\r\nMessage-ID: <old-matter@closed.example>\r\n\r\nBroken.\r\n")
	_, stderr, code := runCLI(t, "import", "--quiet", "--config", policy, "--store", db, seed)
	require.Equal(t, exitOK, code, stderr)
	store, err := openStore(t.Context(), db)
	require.NoError(t, err)
	c, ok, err := store.LookupThread(t.Context(), "old-matter@closed.example")
	require.NoError(t, err)
	require.True(t, ok)
	closed := mailcase.StatusClosed
	_, err = store.UpdateCase(t.Context(), c.ID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	require.NoError(t, store.Close())

	dir := mixedCorpus(t, "old-matter@closed.example")
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	stdout, stderr, code := runCLI(t, "import", "--config", policy, "--store", db, dir)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	counts := summaryCounts(t, stdout)
	sum := 0
	for _, m := range summaryLine.FindAllStringSubmatch(stdout, -1) {
		if m[1] != "fetched" {
			sum += counts[m[1]]
		}
	}
	assert.Equal(t, len(files), counts["fetched"], stdout)
	assert.Equal(t, counts["fetched"], sum, "the counters must add up to fetched:\n%s", stdout)
	assert.Equal(t, 1, counts["duplicates"])
	assert.Equal(t, 1, counts["quarantined"])
	assert.Equal(t, 1, counts["rejected"])
	assert.Equal(t, 2, counts["recorded"])
	assert.Equal(t, 2, counts["auto"])
}

// The same corpus read by run --once from a dir source whose mailbox
// blocks the list sender (filtered) and rejects unknown senders: the
// totals add up too.
func TestRunTotalsAddUp(t *testing.T) {
	dir := mixedCorpus(t, "none@x")
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	cfg := writeFile(t, t.TempDir(), "run.yaml", fmt.Sprintf(`store: sqlite://%s
mailboxes:
  - name: support
    address: support@example.com
    block_addresses: [news@vendor.example]
    unknown_sender: reject
    interval: 1h
    source: {type: dir, path: %s}
`, filepath.Join(t.TempDir(), "s.db"), dir))
	stdout, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	var st scheduler.Stats
	require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
	c := st.Total
	assert.EqualValues(t, len(files), c.Fetched)
	assert.Equal(t, c.Fetched, c.Filtered+c.Created+c.Appended+c.Recorded+c.Rejected+c.Structured+c.Duplicates+c.Quarantined+c.Deferred, "%+v", c)
	assert.EqualValues(t, 1, c.Filtered)
	assert.Positive(t, c.Rejected)
	assert.EqualValues(t, 1, c.Duplicates)
	assert.EqualValues(t, 1, c.Quarantined)
	// One Info line per poll, with every counter and the duration as text.
	assert.Regexp(t, `"msg":"mailbox run",.*"mailbox":"support","duration":"[0-9.]+[mµn]?s"`, stderr)
	assert.Contains(t, stderr, `"recorded":`)
	assert.Contains(t, stderr, `"duplicates":1`)
}

// Item 12: log level and format flags, per-mail lines at Debug only.
func TestLogFlags(t *testing.T) {
	in := writeDemoDir(t, nil)
	_, stderr, code := runCLI(t, "import", "--quiet", "--store", "mem://", in)
	require.Equal(t, exitOK, code)
	assert.Contains(t, stderr, `"level":"INFO"`, "Info is the default")
	assert.NotContains(t, stderr, "mail processed", "per-mail lines are Debug")

	_, stderr, code = runCLI(t, "import", "--quiet", "--log-level", "debug", "--log-format", "text", "--store", "mem://", in)
	require.Equal(t, exitOK, code)
	assert.Equal(t, 10, strings.Count(stderr, `level=DEBUG msg="mail processed"`), stderr)

	_, stderr, code = runCLI(t, "import", "--log-level", "loud", in)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `"loud" is not a level (debug, info, warn or error)`)
	_, stderr, code = runCLI(t, "cases", "--log-format", "xml")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `"xml" is not a log format (text or json)`)

	var b bytes.Buffer
	l := commandLogger(nil, &b)
	l.Info("x", "d", 1500*time.Millisecond)
	assert.Contains(t, b.String(), `"d":"1.5s"`)
}

// Item 8: run --once with watch: true does one pass and exits.
func TestRunOnceWithWatch(t *testing.T) {
	srv, err := imaptest.Start(nil)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	for i := range 3 {
		_, err := srv.Append("INBOX", crashMail(i))
		require.NoError(t, err)
	}
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", string(srv.Cert.CAPEM))
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
mailboxes:
  - name: support
    address: support@example.com
    source:
      type: imap
      addr: %s
      username: %s
      password_env: MAILCASE_TEST_IMAP_PASSWORD
      ca_file: %s
      watch: true
`, filepath.Join(dir, "s.db"), srv.Addr, srv.Username, ca))
	t.Setenv("MAILCASE_TEST_IMAP_PASSWORD", srv.Password)
	done := make(chan struct{})
	var stdout, stderr string
	var code int
	go func() {
		defer close(done)
		stdout, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run --once with watch: true did not exit")
	}
	require.Equal(t, exitOK, code, stderr)
	var st scheduler.Stats
	require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
	assert.EqualValues(t, 3, st.Total.Fetched)
	assert.EqualValues(t, 3, st.Total.Created)
}
