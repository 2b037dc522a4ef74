package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
)

// dsn is a permanent delivery status notification (Postfix style) about
// the mail msgID sent to rcpt.
func dsn(rcpt, msgID string) string {
	const b = "BOUNDARY-5F2A81C0"
	return "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: support@example.com\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.example.com>\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"" + b + "\"\r\n\r\n" +
		"--" + b + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour message could not be delivered.\r\n\r\n" +
		"--" + b + "\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n" +
		"--" + b + "\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Example Support <support@example.com>\r\nTo: " + rcpt + "\r\n" +
		"Subject: About your case\r\nMessage-ID: " + msgID + "\r\n\r\n--" + b + "--\r\n"
}

// run records the whole life of a reply in the event log: the
// acknowledgement sent through SMTP is reply.sent, and the bounce that
// comes back for it is reply.bounced (the handler of bounces gets the
// events callback like the outbox deliverer).
func TestEvents_RunRecordsReplySentAndBounced(t *testing.T) {
	t.Setenv("MAILCASE_TEST_HOOK_SECRET", "a-webhook-secret-of-32-bytes-xyz")
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer hook.Close()
	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(maildir, d), 0o755))
	}
	put := func(name, raw string) {
		require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", name), []byte(raw), 0o600))
	}
	put("1.eml", "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer jams\r\nMessage-ID: <b1@customer.example>\r\n\r\nHelp.\r\n")
	writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
	db := filepath.Join(dir, "s.db")
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
threading: {key_file: key, domain: example.com}
replies: {acknowledge: true, from_name: Example Support}
outgoing: {addr: %q, security: insecure}
events:
  webhooks:
    - {name: crm, url: %q, secret_env: MAILCASE_TEST_HOOK_SECRET}
mailboxes:
  - name: support
    address: support@example.com
    interval: 1m
    source: {type: maildir, path: %q}
`, db, srv.Addr, hook.URL, maildir))
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	got := srv.Messages()
	require.Len(t, got, 1, "the acknowledgement")
	m, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
	require.NoError(t, err)
	ackID := m.Header.Get("Message-Id")
	require.NotEmpty(t, ackID)

	put("2.eml", dsn("ann@customer.example", ackID))
	_, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)

	out, stderr, code := runCLI(t, "outbox", "list", "--status", "bounced", "--config", cfg)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "acknowledgement", "the bounce marked the acknowledgement bounced")

	out, stderr, code = runCLI(t, "events", "tail", "--store", "sqlite://"+db, "--kind", "reply.*")
	require.Equal(t, exitOK, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Contains(t, lines[0], `"kind":"reply.sent"`)
	assert.Contains(t, lines[1], `"kind":"reply.bounced"`)
	assert.Contains(t, lines[1], `"status":"5.1.1"`)
	assert.NotContains(t, lines[1], "ann@customer.example", "the payload names no recipient")
}
