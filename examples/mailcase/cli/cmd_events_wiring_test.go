package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
	"github.com/emailcrm/emailcrm/mailcase/events"
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

// pipe records the events of the mail it files, with a delivery per sink
// of the events section (it connects to none), and run delivers them.
func TestEvents_PipeRecordsRunDelivers(t *testing.T) {
	const secret = "a-webhook-secret-of-32-bytes-xyz"
	t.Setenv("MAILCASE_TEST_HOOK_SECRET", secret)
	var mu sync.Mutex
	var kinds []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if events.Verify([]byte(secret), r.Header.Get(events.SignatureHeader), body, time.Now(), 0) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		kinds = append(kinds, r.Header.Get("Emailcrm-Event"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	dir := t.TempDir()
	empty := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(empty, 0o755))
	db := filepath.Join(dir, "s.db")
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
events:
  webhooks:
    - {name: crm, url: %q, secret_env: MAILCASE_TEST_HOOK_SECRET, kinds: [case.created]}
  nats: {url: "nats://127.0.0.1:1", kinds: [mail.*]}   # never reached by pipe
mailboxes:
  - name: support
    address: support@example.com
    interval: 1m
    source: {type: dir, path: %q}
`, db, hook.URL, empty))
	var out, errb bytes.Buffer
	raw := "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer jams\r\nMessage-ID: <p1@customer.example>\r\n\r\nHelp.\r\n"
	code := dispatch(t.Context(), []string{"pipe", "--config", cfg}, strings.NewReader(raw), &out, &errb)
	require.Equal(t, exitOK, code, errb.String())

	stdout, stderr, code := runCLI(t, "events", "tail", "--store", "sqlite://"+db)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, `"kind":"case.created"`)
	assert.Contains(t, stdout, `"kind":"mail.received"`)
	stdout, stderr, code = runCLI(t, "events", "deliveries", "--config", cfg, "--json")
	require.Equal(t, exitOK, code, stderr)
	var ds []deliveryJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &ds))
	sinks := map[string]string{}
	for _, d := range ds {
		sinks[d.Sink] = d.Status
	}
	assert.Equal(t, map[string]string{"webhook:crm": "pending", natsSinkName: "pending"}, sinks, "one delivery per sink filter, none sent by pipe")

	// run delivers the webhook's (the NATS server of the file is not
	// reachable: run is started with the webhook only).
	cfgRun := writeFile(t, dir, "run2.yaml", strings.Replace(mustRead(t, cfg), "  nats: {url: \"nats://127.0.0.1:1\", kinds: [mail.*]}   # never reached by pipe\n", "", 1))
	_, stderr, code = runCLI(t, "run", "--config", cfgRun, "--once")
	require.Equal(t, exitOK, code, stderr)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"case.created"}, kinds, "the delivery pipe recorded is the one run sends")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// The record-only NATS sink of pipe and lmtp has the name of the sink run
// delivers with.
func TestEvents_RecordOnlyNATSName(t *testing.T) {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.Timeout(2*time.Second))
	if err != nil {
		if os.Getenv("EMAILCRM_REQUIRE_SERVICES") == "1" {
			t.Fatalf("NATS is required (EMAILCRM_REQUIRE_SERVICES=1): %v", err)
		}
		t.Skipf("NATS unavailable: %v", err)
	}
	defer nc.Close()
	sink, err := events.OpenNATSSink(t.Context(), nc, &events.NATSOptions{Subject: "emailcrm.cli-test"})
	require.NoError(t, err)
	assert.Equal(t, sink.SinkName(), natsSinkName)
}

// lmtp records the events of the mail it files, like pipe.
func TestEvents_LMTPRecords(t *testing.T) {
	t.Setenv("MAILCASE_TEST_HOOK_SECRET", "a-webhook-secret-of-32-bytes-xyz")
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	cfg := writeFile(t, dir, "l.yaml", fmt.Sprintf(`store: sqlite://%s
events:
  webhooks:
    - {name: crm, url: "https://crm.example/hook", secret_env: MAILCASE_TEST_HOOK_SECRET}
mailboxes:
  - name: support
    address: support@example.com
`, db))
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var errb bytes.Buffer
	go func() { done <- runLMTP(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, pw, &errb) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	conn, err := net.Dial("tcp", strings.TrimSpace(strings.TrimPrefix(line, "lmtp listening on ")))
	require.NoError(t, err)
	c := smtp.NewClientLMTP(conn)
	require.NoError(t, c.Hello("mta"))
	require.NoError(t, c.Mail("ann@customer.example", nil))
	require.NoError(t, c.Rcpt("support@example.com", nil))
	w, err := c.Data()
	require.NoError(t, err)
	_, _ = io.WriteString(w, "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: s\r\nMessage-ID: <l1@customer.example>\r\n\r\nhi\r\n")
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

	stdout, stderr, code := runCLI(t, "events", "tail", "--store", "sqlite://"+db, "--kind", "mail.*")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, 1, strings.Count(stdout, `"kind":"mail.received"`), stdout)
}
