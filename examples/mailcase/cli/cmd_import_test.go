package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/filesource"
)

// writeDemoDir writes the demo mails into a new directory, one per file,
// under the names given by rename (nil keeps the demo names).
func writeDemoDir(t *testing.T, rename func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	mails, err := loadDemoMails()
	require.NoError(t, err)
	for _, m := range mails {
		name := m.name
		if rename != nil {
			name = rename(name)
		}
		if name == "" {
			continue
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), m.raw, 0o600))
	}
	return dir
}

// writeDemoMbox writes the demo mails into one mbox file (mboxrd quoting of
// body lines starting with "From ").
func writeDemoMbox(t *testing.T) string {
	t.Helper()
	mails, err := loadDemoMails()
	require.NoError(t, err)
	var b bytes.Buffer
	for _, m := range mails {
		b.WriteString("From MAILER-DAEMON Mon Nov 16 09:00:00 2026\n")
		for _, line := range strings.SplitAfter(string(m.raw), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				b.WriteString(">")
			}
			b.WriteString(line)
		}
		if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "backlog.mbox")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

// writeDemoMaildir writes the demo mails into a Maildir (half in new/,
// half in cur/).
func writeDemoMaildir(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, sub), 0o700))
	}
	mails, err := loadDemoMails()
	require.NoError(t, err)
	for i, m := range mails {
		sub, name := "new", strings.TrimSuffix(m.name, ".eml")+".host"
		if i%2 == 1 {
			sub, name = "cur", name+":2,S"
		}
		require.NoError(t, os.WriteFile(filepath.Join(root, sub, name), m.raw, 0o600))
	}
	return root
}

func TestImport_Formats(t *testing.T) {
	// No block list here: the newsletter opens a case (never answered
	// automatically), unlike in the demo.
	want := map[string]int{"fetched": 10, "created": 6, "appended": 2, "auto": 2, "filtered": 0,
		"duplicates": 0, "quarantined": 0, "errors": 0}
	tests := []struct {
		name       string
		path       func(t *testing.T) string
		format     string
		wantFormat string
	}{
		{name: "dir", path: func(t *testing.T) string { return writeDemoDir(t, nil) }, format: "auto", wantFormat: "(dir)"},
		{name: "mbox", path: writeDemoMbox, format: "auto", wantFormat: "(mbox)"},
		{name: "maildir", path: writeDemoMaildir, format: "auto", wantFormat: "(maildir)"},
		{name: "explicit dir", path: func(t *testing.T) string { return writeDemoDir(t, nil) }, format: "dir", wantFormat: "(dir)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, "import", "--store", "mem://", "--format", tc.format, tc.path(t))
			require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			assert.Contains(t, stdout, tc.wantFormat)
			assert.Contains(t, stderr, "in-memory store", "mem:// imports are pointless; say so")
			counts := summaryCounts(t, stdout)
			for k, v := range want {
				assert.Equal(t, v, counts[k], "%s in:\n%s", k, stdout)
			}
			if tc.name == "dir" || tc.name == "explicit dir" {
				// Not a terminal: one plain line per mail, as they are
				// filed; the reply is filed on the case of the first mail.
				m := regexp.MustCompile(`(?m)^\d+/10 created case (\d+) CAF1n0rth-20261116-0912\.anna@northwind\.example$`).FindStringSubmatch(stdout)
				require.NotNil(t, m, stdout)
				assert.Regexp(t, `(?m)^\d+/10 filed on case `+m[1]+` CAF1n0rth-20261116-1430\.anna@northwind\.example$`, stdout)
				assert.Contains(t, stdout, "\n10/10 ", "the count runs to the total, once per mail")
			}
		})
	}
}

// TestImport_NameOrder shows that a directory is replayed in name order:
// the reply threads onto the first mail only when it sorts after it.
func TestImport_NameOrder(t *testing.T) {
	keep := func(first, reply string) func(string) string {
		return func(name string) string {
			switch name {
			case "01-invoice-contact.eml":
				return first
			case "04-reply-in-reply-to.eml":
				return reply
			}
			return ""
		}
	}
	tests := []struct {
		name         string
		first, reply string
		wantCreated  int
		wantAppended int
	}{
		{name: "original first", first: "a.eml", reply: "b.eml", wantCreated: 1, wantAppended: 1},
		{name: "reply first", first: "b.eml", reply: "a.eml", wantCreated: 2, wantAppended: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDemoDir(t, keep(tc.first, tc.reply))
			stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", "mem://", dir)
			require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
			counts := summaryCounts(t, stdout)
			assert.Equal(t, tc.wantCreated, counts["created"])
			assert.Equal(t, tc.wantAppended, counts["appended"])
		})
	}
}

func TestImport_QuietDuplicatesAndBadMail(t *testing.T) {
	dir := writeDemoDir(t, func(name string) string {
		if name == "01-invoice-contact.eml" {
			return name
		}
		return ""
	})
	raw, err := os.ReadFile(filepath.Join(dir, "01-invoice-contact.eml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "02-same-again.eml"), raw, 0o600))
	bad, err := os.ReadFile(filepath.Join("testdata", "unparseable.eml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "03-broken.eml"), bad, 0o600))

	stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", "mem://", dir)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.NotContains(t, stdout, "1/3", "--quiet prints no progress")
	counts := summaryCounts(t, stdout)
	assert.Equal(t, 3, counts["fetched"])
	assert.Equal(t, 1, counts["created"])
	assert.Equal(t, 1, counts["duplicates"])
	assert.Equal(t, 1, counts["quarantined"], "a broken mail is set aside, it blocks nothing:\n%s", stdout)
	assert.FileExists(t, filepath.Join(dir, "quarantine", "03-broken.eml"))
	assert.FileExists(t, filepath.Join(dir, "01-invoice-contact.eml"), "filed mail stays (--on-done keep)")
}

func TestImport_Errors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.mbox")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "no path", args: []string{"import"}, wantCode: exitUsage, wantErr: "exactly one"},
		{name: "missing path", args: []string{"import", filepath.Join(dir, "nope")}, wantCode: exitFailure, wantErr: "no such file"},
		{name: "mbox format on a dir", args: []string{"import", "--format", "mbox", dir}, wantCode: exitUsage, wantErr: "is a directory"},
		{name: "maildir format on a file", args: []string{"import", "--format", "maildir", file}, wantCode: exitUsage, wantErr: "not a directory"},
		{name: "unknown format", args: []string{"import", "--format", "pst", dir}, wantCode: exitUsage, wantErr: "unknown --format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			assert.Equal(t, tc.wantCode, code)
			assert.Contains(t, stderr, tc.wantErr)
		})
	}
}

func TestOpenFileSource_Quiet(t *testing.T) {
	for _, tc := range []struct {
		kind string
		path func(t *testing.T) string
	}{
		{kind: formatDir, path: func(t *testing.T) string { return writeDemoDir(t, nil) }},
		{kind: formatMbox, path: writeDemoMbox},
		{kind: formatMaildir, path: writeDemoMaildir},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			src, err := openFileSource(tc.path(t), tc.kind, &filesource.Options{Mailbox: "m", Quiet: true, OnDone: filesource.Keep})
			require.NoError(t, err)
			t.Cleanup(func() { src.Close() })
			n := 0
			for {
				r, err := src.Receive(t.Context())
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				n++
				assert.True(t, r.Quiet, "an import sends nothing about mail %s", r.ID)
				assert.Equal(t, "m", r.Mailbox)
				require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, ""))
			}
			assert.Equal(t, 10, n)
		})
	}
}

func TestCountMails(t *testing.T) {
	assert.Equal(t, 10, countMails(writeDemoDir(t, nil), formatDir))
	assert.Equal(t, 10, countMails(writeDemoMbox(t), formatMbox))
	assert.Equal(t, 10, countMails(writeDemoMaildir(t), formatMaildir))
	assert.Equal(t, -1, countMails(filepath.Join(t.TempDir(), "nope"), formatMbox))

	mbox := filepath.Join(t.TempDir(), "m")
	long := strings.Repeat("x", 200<<10) // a line longer than the read buffer
	content := "From a\nSubject: 1\n\nbody\nFrom not after a blank line\n" + long + "From q\n\nFrom b\n\nFrom c\nbody\n"
	require.NoError(t, os.WriteFile(mbox, []byte(content), 0o600))
	assert.Equal(t, 3, countMboxMails(mbox), "separators start a line after a blank line")
}

func TestProgress(t *testing.T) {
	assert.Equal(t, "[===============>              ] 5/10", bar(5, 10, 30))
	assert.Equal(t, "[==============================] 10/10", bar(10, 10, 30))
	assert.Equal(t, "7 mails", bar(7, -1, 30))
	assert.False(t, isTerminal(&bytes.Buffer{}))
	assert.Equal(t, "created 2, appended 1, auto 0", statsLine(mailcase.Stats{Created: 2, Appended: 1}))
	assert.Equal(t, "created 0, appended 0, auto 1, dup 3, errors 1", statsLine(mailcase.Stats{Auto: 1, Duplicates: 3, Errors: 1}))

	var b bytes.Buffer
	p := newProgress(&b, 2, false)
	res := &mailcase.Result{Message: &mailcase.Message{ID: "m1@x"},
		Outcome: mailcase.Outcome{Action: mailcase.ActionCreated, CaseNumber: "1000"}}
	p.update(mailcase.Stats{Received: 1, Created: 1}, res)
	p.finish()
	assert.Equal(t, "1/2 created case 1000 m1@x\n", b.String())

	b.Reset()
	q := newProgress(&b, 2, true)
	q.update(mailcase.Stats{Received: 1}, res)
	q.finish()
	assert.Empty(t, b.String())
}

func TestWriteStats(t *testing.T) {
	var b bytes.Buffer
	writeStats(&b, "  ", mailcase.Stats{Received: 4, Created: 2, Appended: 1, Reopened: 1, Errors: 1})
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var names []string
	for _, l := range lines {
		names = append(names, strings.Fields(l)[0])
	}
	// Every counter, zero or not (issue 10 item 10), then the note on
	// which of them add up to fetched.
	assert.Equal(t, []string{"fetched", "filtered", "created", "appended", "reopened", "recorded", "rejected",
		"structured", "duplicates", "quarantined", "deferred", "auto", "retried", "errors", "(filtered"}, names)
	assert.True(t, slices.Contains(lines, "  reopened         1"), out)
}

// FuzzCountMboxMails checks the mbox separator count against a simple
// reference on arbitrary content (it must never panic either).
func FuzzCountMboxMails(f *testing.F) {
	f.Add([]byte("From a\nx\n\nFrom b\n"))
	f.Add([]byte("\r\n\r\nFrom \r\n>From x\n\nFrom"))
	f.Add([]byte(""))
	f.Add([]byte("From " + strings.Repeat("y", 70<<10) + "\n\nFrom z"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(dir, "m")
		require.NoError(t, os.WriteFile(path, content, 0o600))
		lines := strings.Split(string(content), "\n")
		want := 0
		for i, l := range lines {
			if strings.HasPrefix(l, "From ") && (i == 0 || strings.TrimRight(lines[i-1], "\r") == "") {
				want++
			}
		}
		assert.Equal(t, want, countMboxMails(path))
	})
}

// TestImport_RootNeverReceived: two replies to a mail the mailbox never
// received (the customer wrote to a colleague, support is in Cc of the
// answers) open one case, not two, into SQLite and memory alike, and with
// any concurrency; a stranger quoting the same root still opens their own.
func TestImport_RootNeverReceived(t *testing.T) {
	const root = "<outage-1@customer.example>"
	mails := map[string]string{
		"01.eml": "From: Alice <alice@customer.example>\r\nTo: bob@company.example\r\nCc: support@example.com, carol@customer.example\r\n" +
			"Subject: Re: Outage\r\nMessage-ID: <r1@customer.example>\r\nIn-Reply-To: " + root + "\r\nReferences: " + root + "\r\n\r\nStill down.\r\n",
		"02.eml": "From: Carol <carol@customer.example>\r\nTo: bob@company.example\r\nCc: support@example.com\r\n" +
			"Subject: Re: Outage\r\nMessage-ID: <r2@customer.example>\r\nIn-Reply-To: " + root + "\r\nReferences: " + root + "\r\n\r\nHere too.\r\n",
		"03.eml": "From: Mallory <mallory@attacker.example>\r\nTo: support@example.com\r\n" +
			"Subject: Re: Outage\r\nMessage-ID: <r3@attacker.example>\r\nReferences: " + root + "\r\n\r\nLet me in.\r\n",
	}
	for _, store := range []string{"mem://", "sqlite"} {
		for _, conc := range []string{"1", "8"} {
			t.Run(store+"/"+conc, func(t *testing.T) {
				dir := t.TempDir()
				for name, m := range mails {
					writeFile(t, dir, name, m)
				}
				url := store
				if store == "sqlite" {
					url = "sqlite://" + filepath.Join(t.TempDir(), "cases.db")
				}
				stdout, stderr, code := runCLI(t, "import", "--quiet", "--store", url, "--concurrency", conc, dir)
				require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
				counts := summaryCounts(t, stdout)
				assert.Equal(t, 2, counts["created"], "Alice's case and the stranger's")
				assert.Equal(t, 1, counts["appended"], "Carol's reply joins Alice's case through the shared root")
			})
		}
	}
}
