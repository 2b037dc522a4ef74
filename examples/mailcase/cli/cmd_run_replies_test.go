package cli

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
)

// run --once with replies and an outgoing server: new cases are
// acknowledged through SMTP, a customer reply is forwarded to the internal
// address, automatic mail gets nothing.
func TestRun_RepliesThroughSMTP(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(maildir, d), 0o755))
	}
	put := func(name, raw string) {
		require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", name), []byte(raw), 0o600))
	}
	put("1.eml", "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer jams\r\nMessage-ID: <r1@customer.example>\r\n\r\nHelp.\r\n")
	put("2.eml", "From: Shop <no-reply@shop.example>\r\nTo: support@example.com\r\nSubject: Your order\r\nMessage-ID: <r2@shop.example>\r\n\r\nThanks.\r\n")
	put("3.eml", "From: Bob <bob@customer.example>\r\nTo: support@example.com\r\nSubject: Away\r\nMessage-ID: <r3@customer.example>\r\nAuto-Submitted: auto-replied\r\n\r\nAway.\r\n")
	writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
threading: {key_file: key, domain: example.com}
replies:
  acknowledge: true
  from_name: Example Support
  loop_id: emailcrm test
outgoing: {addr: %q, security: insecure}
mailboxes:
  - name: support
    address: support@example.com
    interval: 1m
    source: {type: maildir, path: %q}
`, filepath.Join(dir, "s.db"), srv.Addr, maildir))
	_, stderr, code := runCLI(t, "config", "check", cfg)
	require.Equal(t, exitOK, code, stderr)
	_, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)

	got := srv.Messages()
	require.Len(t, got, 1, "one acknowledgement: not to no-reply, not to automatic mail")
	assert.Equal(t, []string{"ann@customer.example"}, got[0].To)
	m, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
	require.NoError(t, err)
	assert.Equal(t, "auto-replied", m.Header.Get("Auto-Submitted"))
	assert.Equal(t, "emailcrm test", m.Header.Get("X-Emailcrm-Loop"))
	assert.Contains(t, m.Header.Get("Subject"), "About Case ")
	assert.Contains(t, m.Header.Get("From"), "Example Support")

	stdout, stderr, code := runCLI(t, "outbox", "list", "--status", "sent", "--config", cfg)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "acknowledgement")

	// A second run: nothing new, nothing sent again.
	_, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	assert.Len(t, srv.Messages(), 1)
}

func TestConfigCheck_Replies(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, yaml, want string }{
		{"bad internal", "replies: {internal: not-an-address}\n", `replies.internal: "not-an-address" is not a mail address`},
		{"bad queue member", "replies: {queue_members: {billing: [x]}}\n", `replies.queue_members.billing[0]: "x" is not a mail address`},
		{"unknown template field", "replies: {templates: {acknowledgement: {subject: '{{.Case.Nmber}}', text_file: t.txt}}}\n", "no field Case.Nmber"},
		{"unknown kind", "replies: {templates: {welcome: {subject: x}}}\n", "replies.templates.welcome: unknown kind"},
		{"unknown queue template field", "replies: {queue_templates: {billing: {acknowledgement: {subject: '{{.Queue.Nam}}'}}}}\n", "queue billing"},
		{"queue template kind", "replies: {queue_templates: {billing: {log-email: {subject: x}}}}\n", "replies.queue_templates.billing.log-email: unknown kind"},
		{"bad outgoing", "outgoing: {addr: nohost}\n", `outgoing.addr: "nohost" is not host:port`},
		{"unknown key", "replies: {acknowlege: true}\n", `unknown key "acknowlege" in replies`},
	}
	writeFile(t, dir, "t.txt", "Hello")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "c.yaml", "store: mem://\n"+tc.yaml+"mailboxes: [{name: support, address: support@example.com}]\n")
			_, stderr, code := runCLI(t, "config", "check", cfg)
			assert.NotEqual(t, exitOK, code)
			assert.Contains(t, stderr, tc.want)
		})
	}
}

// reply queues a Log Email on a case; run delivers it; the customer's
// answer to it threads back to the case.
func TestReply_LogEmail(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(maildir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", "1.eml"),
		[]byte("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer jams\r\nMessage-ID: <q1@customer.example>\r\n\r\nHelp.\r\n"), 0o600))
	writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
threading: {key_file: key, domain: example.com}
outgoing: {addr: %q, security: insecure}
mailboxes:
  - name: support
    address: support@example.com
    interval: 1m
    source: {type: maildir, path: %q}
`, filepath.Join(dir, "s.db"), srv.Addr, maildir))
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	require.Empty(t, srv.Messages(), "no replies configured: nothing sent")

	var out, errb bytes.Buffer
	code = run(t.Context(), []string{"reply", "--config", cfg, "--file", writeFile(t, dir, "answer.txt", "We replaced the drum.\n"), "1000"}, &out, &errb)
	require.Equal(t, exitOK, code, errb.String())
	assert.Contains(t, out.String(), "queued log-email on case 1000")
	_, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.Equal(t, []string{"ann@customer.example"}, got[0].To)
	m, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
	require.NoError(t, err)
	assert.Equal(t, "Re: About Case 1000 :: Printer jams", m.Header.Get("Subject"))
	assert.Equal(t, "<q1@customer.example>", m.Header.Get("In-Reply-To"))

	require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", "2.eml"), []byte("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Thanks\r\nMessage-ID: <q2@customer.example>\r\nIn-Reply-To: "+m.Header.Get("Message-Id")+"\r\n\r\nWorks.\r\n"), 0o600))
	stdout, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, `"appended": 1`)

	// The same text to other recipients is another mail; the same
	// command again is a retry, queued once. Bcc is in the envelope only.
	again := writeFile(t, dir, "again.txt", "We replaced the drum.\n")
	for range 2 {
		code = run(t.Context(), []string{"reply", "--config", cfg, "--to", "bob@customer.example", "--bcc", "audit@example.com", "--file", again, "1000"}, &out, &errb)
		require.Equal(t, exitOK, code, errb.String())
	}
	_, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	got = srv.Messages()
	require.Len(t, got, 2, "one more mail, not two")
	assert.Equal(t, []string{"bob@customer.example", "audit@example.com"}, got[1].To)
	assert.NotContains(t, string(got[1].Data), "audit@example.com")

	_, stderr, code = runCLI(t, "reply", "--config", cfg, "--file", writeFile(t, dir, "a2.txt", "x"), "9999")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "no case 9999")
}
