package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/events"
)

// TestEvents_RunDeliversWebhookAndTail: run --once files a directory of
// mails, records their events and delivers them, signed, to the
// configuration's webhook; events tail prints the log and events
// deliveries its deliveries.
func TestEvents_RunDeliversWebhookAndTail(t *testing.T) {
	const secret = "a-webhook-secret-of-32-bytes-xyz"
	t.Setenv("MAILCASE_TEST_HOOK_SECRET", secret)
	var mu sync.Mutex
	var kinds []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := events.Verify([]byte(secret), r.Header.Get(events.SignatureHeader), body, time.Now(), 0); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		kinds = append(kinds, r.Header.Get("Emailcrm-Event"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	dir := t.TempDir()
	mails := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(mails, 0o755))
	writeFile(t, mails, "1.eml", "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer\r\nMessage-ID: <e1@customer.example>\r\n\r\nIt burns.\r\n")
	writeFile(t, mails, "2.eml", "From: Bob <bob@other.example>\r\nTo: support@example.com\r\nSubject: Invoice\r\nMessage-ID: <e2@other.example>\r\n\r\nWrong.\r\n")
	db := filepath.Join(dir, "cases.db")
	cfg := writeFile(t, dir, "run.yaml", `store: sqlite://`+db+`
events:
  webhooks:
    - name: crm
      url: `+srv.URL+`/hook
      secret_env: MAILCASE_TEST_HOOK_SECRET
      kinds: [case.*]
mailboxes:
  - name: support
    address: support@example.com
    default_queue: tier1
    interval: 1m
    source: {type: dir, path: `+mails+`}
`)
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, 0, code, stderr)
	mu.Lock()
	assert.ElementsMatch(t, []string{"case.created", "case.routed", "case.created", "case.routed"}, kinds, "the webhook gets the case events it asked for")
	mu.Unlock()

	out, stderr, code := runCLI(t, "events", "tail", "--store", "sqlite://"+db)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6, out)
	var e events.Event
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &e))
	assert.Equal(t, "case.created", e.Kind)
	assert.Equal(t, int64(1), e.Seq)

	out, stderr, code = runCLI(t, "events", "tail", "--store", "sqlite://"+db, "--kind", "mail.*", "--after", "0")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 2, strings.Count(out, `"kind":"mail.received"`), out)

	out, stderr, code = runCLI(t, "events", "deliveries", "--config", cfg, "--json")
	require.Equal(t, 0, code, stderr)
	var ds []deliveryJSON
	require.NoError(t, json.Unmarshal([]byte(out), &ds))
	require.Len(t, ds, 4)
	for _, d := range ds {
		assert.Equal(t, "webhook:crm", d.Sink)
		assert.Equal(t, "delivered", d.Status)
	}
	assert.NotContains(t, stderr, secret)
}

func TestEvents_ConfigChecked(t *testing.T) {
	for _, tc := range []struct{ name, events, want string }{
		{name: "no secret", events: "  webhooks:\n    - {name: a, url: 'https://x.example/h'}\n", want: "secret_env"},
		{name: "bad url", events: "  webhooks:\n    - {name: a, url: 'ftp://x', secret_env: S}\n", want: "http or https"},
		{name: "twice", events: "  webhooks:\n    - {name: a, url: 'https://x.example/h', secret_env: S}\n    - {name: a, url: 'https://x.example/h', secret_env: S}\n", want: "unique name"},
		{name: "unknown kind", events: "  webhooks:\n    - {name: a, url: 'https://x.example/h', secret_env: S, kinds: [case.opened]}\n", want: "unknown event kind"},
		{name: "unknown key", events: "  webhook: []\n", want: "webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte("store: mem://\nevents:\n" + tc.events + "mailboxes:\n  - {name: s, address: s@example.com}\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := parseConfig([]byte("store: mem://\nevents:\n  webhooks:\n    - {name: a, url: 'https://x.example/h', secret_env: S, kinds: [case.*, reply.sent]}\n  nats: {url: 'nats://127.0.0.1:4222'}\n  delivery: {workers: 2, backoff_min: 2s}\nmailboxes:\n  - {name: s, address: s@example.com}\n"))
	require.NoError(t, err)
}
