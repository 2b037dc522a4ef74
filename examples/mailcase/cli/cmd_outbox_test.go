package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

func TestOutboxCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	store, err := openStore(t.Context(), db)
	require.NoError(t, err)
	raw := "Subject: \x1b]0;owned\x07\r\n\r\nhello\r\n"
	pending, err := store.Enqueue(t.Context(), &driver.OutboxMessage{Key: "support\x00ack\x001", Mailbox: "support", Kind: "acknowledgement",
		From: "support@company.example", To: []string{"ann@customer.example", "bob@customer.example"}, MessageID: "<ack-1@company.example>", Raw: []byte(raw)})
	require.NoError(t, err)
	sent, err := store.Enqueue(t.Context(), &driver.OutboxMessage{Key: "support\x00ack\x002", Mailbox: "support", Kind: "log-email",
		From: "support@company.example", To: []string{"cy@customer.example"}, MessageID: "<le-2@company.example>", Raw: []byte("x\r\n")})
	require.NoError(t, err)
	claimed, err := store.ClaimOutbox(t.Context(), "test", 10, 60e9)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	require.NoError(t, store.FinishOutbox(t.Context(), pending, "test", &driver.OutboxResult{Status: driver.OutboxPending, RetryAfter: 3600e9, Error: "451 4.7.1 \x1b[31mgreylisted"}))
	require.NoError(t, store.FinishOutbox(t.Context(), sent, "test", &driver.OutboxResult{Status: driver.OutboxSent}))
	require.NoError(t, store.Close())

	stdout, stderr, code := runCLI(t, "outbox", "list", "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, "pending  mailbox support  1 attempts")
	assert.Contains(t, stdout, "ann@customer.example, bob@customer.example")
	assert.Contains(t, stdout, "451 4.7.1  [31mgreylisted", "control characters of the server's text are removed when it is recorded")
	assert.Contains(t, stdout, "sent  mailbox support  1 attempts")

	stdout, _, code = runCLI(t, "outbox", "list", "--status", "sent", "--json", "--store", db)
	require.Equal(t, exitOK, code)
	var list []outboxJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &list))
	require.Len(t, list, 1)
	assert.Equal(t, sent, list[0].ID)
	assert.Equal(t, "le-2@company.example", list[0].MessageID)

	stdout, stderr, code = runCLI(t, "outbox", "show", pending, "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assertNoControls(t, stdout)
	assert.Contains(t, stdout, "retry at")
	var rawOut bytes.Buffer
	require.Equal(t, exitOK, run(t.Context(), []string{"outbox", "show", "--raw", pending, "--store", db}, &rawOut, &bytes.Buffer{}))
	assert.Equal(t, raw, rawOut.String(), "--raw gives the exact bytes")

	_, stderr, code = runCLI(t, "outbox", "retry", sent, "--store", db)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "is sent: only pending, failed, cancelled or bounced mail is retried")
	_, stderr, code = runCLI(t, "outbox", "cancel", pending, "--store", db)
	require.Equal(t, exitOK, code, stderr)
	_, stderr, code = runCLI(t, "outbox", "cancel", pending, "--store", db)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "is cancelled: only pending mail is cancelled")
	stdout, stderr, code = runCLI(t, "outbox", "retry", pending, "--store", db)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "is due now")

	_, stderr, code = runCLI(t, "outbox", "show", "999", "--store", db)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "no outgoing message 999")
	_, stderr, code = runCLI(t, "outbox", "list", "--status", "lost", "--store", db)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `unknown outbox status "lost"`)
	_, stderr, code = runCLI(t, "outbox", "--store", db)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "outbox needs a subcommand")
}
