package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/adapters/pop3source/pop3test"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

// In-process runs of run, pipe and lmtp (the binary tests cover the exit
// codes as an MTA sees them).

func TestPipe_InProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", "store: mem://\nmailboxes: [{name: support}]\n")
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{name: "filed", stdin: "From: a@b.example\r\nSubject: x\r\nMessage-ID: <x@b>\r\n\r\nhi\r\n", args: []string{"--config", cfg}, code: 0},
		{name: "unparseable", stdin: "no header at all\n", args: []string{"--config", cfg}, code: exDataErr},
		{name: "unknown mailbox", stdin: "Subject: x\r\n\r\n", args: []string{"--config", cfg, "--mailbox", "zz"}, code: exTempFail},
		{name: "no config", stdin: "Subject: x\r\n\r\n", args: nil, code: exTempFail},
		{name: "help", args: []string{"-h"}, code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := pipe(t.Context(), tt.args, strings.NewReader(tt.stdin), &out, &errb)
			assert.Equal(t, tt.code, exitCode(err), "err: %v stderr: %s", err, errb.String())
		})
	}
}

func TestRunOnce_InProcess(t *testing.T) {
	srv, err := imaptest.Start(nil)
	require.NoError(t, err)
	defer srv.Close()
	for i := range 3 {
		_, err := srv.Append("INBOX", crashMail(i))
		require.NoError(t, err)
	}
	pop, err := pop3test.Start(nil)
	require.NoError(t, err)
	defer pop.Close()
	pop.Add(crashMail(10))

	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(maildir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", "1.eml"), crashMail(20), 0o600))
	ca := writeFile(t, dir, "ca.pem", string(srv.Cert.CAPEM))
	t.Setenv("MAILCASE_TEST_IMAP_PASSWORD", srv.Password)
	t.Setenv("MAILCASE_TEST_POP3_PASSWORD", "pass")
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: mem://
mailboxes:
  - name: support
    interval: 1m
    source: {type: imap, addr: %q, username: %s, password_env: MAILCASE_TEST_IMAP_PASSWORD, ca_file: %q, after: {kind: delete}}
  - name: billing
    interval: 1m
    source: {type: pop3, addr: %q, security: insecure, username: user, password_env: MAILCASE_TEST_POP3_PASSWORD}
  - name: backlog
    interval: 1h
    source: {type: maildir, path: %q, quiet: true}
  - name: lmtp-only
    address: sales@example.com
`, srv.Addr, srv.Username, ca, pop.Addr, maildir))
	stdout, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, 0, code, stderr)
	var st scheduler.Stats
	require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
	assert.EqualValues(t, 5, st.Total.Created)
	require.Len(t, st.Mailboxes, 3, "the LMTP-only mailbox is not polled")
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Empty(t, pop.Messages())
	cur, err := os.ReadDir(filepath.Join(maildir, "cur"))
	require.NoError(t, err)
	assert.Len(t, cur, 1, "the Maildir mail is marked seen")

	// A mailbox whose server is down fails its run, not the others.
	bad := writeFile(t, dir, "bad.yaml", fmt.Sprintf(`store: mem://
mailboxes:
  - name: down
    interval: 1m
    source: {type: pop3, addr: "127.0.0.1:1", security: insecure, username: u, password_env: MAILCASE_TEST_POP3_PASSWORD}
  - name: backlog
    interval: 1h
    source: {type: maildir, path: %q}
`, maildir))
	_, stderr, code = runCLI(t, "run", "--config", bad, "--once")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "mailbox down")
}

func TestLMTP_InProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "l.yaml", `store: mem://
lmtp: {catch_all: other}
mailboxes:
  - name: support
    recipients: [support@example.com]
  - name: other
`)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var errb bytes.Buffer
	go func() { done <- runLMTP(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, pw, &errb) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.TrimSpace(strings.TrimPrefix(line, "lmtp listening on "))
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := smtp.NewClientLMTP(conn)
	require.NoError(t, c.Hello("mta"))
	require.NoError(t, c.Mail("a@b.example", nil))
	require.NoError(t, c.Rcpt("support@example.com", nil))
	require.NoError(t, c.Rcpt("anyone@else.example", nil), "catch-all")
	w, err := c.Data()
	require.NoError(t, err)
	_, _ = io.WriteString(w, "From: a@b.example\r\nSubject: s\r\nMessage-ID: <l@b>\r\n\r\nhi\r\n")
	_, err = w.CloseWithLMTPResponse()
	require.NoError(t, err)
	require.NoError(t, c.Quit())
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("lmtp did not stop")
	}
	pw.Close()

	_, stderr, code := runCLI(t, "lmtp", "--config", cfg)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "listen")
}
