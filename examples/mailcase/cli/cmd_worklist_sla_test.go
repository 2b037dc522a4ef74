package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// A worklist change reaches the service-level clocks: setting an item to
// waiting on the customer pauses them, setting it back resumes them.
func TestWorklist_StatusPausesSLA(t *testing.T) {
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(maildir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", "0.eml"),
		[]byte("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer jams\r\nMessage-ID: <ws0@customer.example>\r\n\r\nHelp.\r\n"), 0o600))
	cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
worklists:
  queues:
    - name: tier1
      owner: boss@example.com
      members: [bob@example.com]
mailboxes:
  - name: support
    address: support@example.com
    default_queue: tier1
    interval: 1m
    source: {type: maildir, path: %q}
sla:
  interval: 1m
  policies:
    standard:
      resolution: {warn: 20h, due: 24h}
  mailboxes: {support: standard}
  queue_owners: {tier1: boss@example.com}
`, filepath.Join(dir, "s.db"), maildir))
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	state := func() string {
		t.Helper()
		stdout, stderr, code := runCLI(t, "sla", "status", "--config", cfg, "--json")
		require.Equal(t, exitOK, code, stderr)
		var st []slaCaseJSON
		require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
		require.Len(t, st, 1)
		for _, tm := range st[0].Timers {
			if tm.Kind == driver.SLAResolution {
				return tm.State
			}
		}
		t.Fatalf("no resolution timer: %+v", st[0].Timers)
		return ""
	}
	require.Equal(t, "running", state())
	_, stderr, code = runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "bob@example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	_, stderr, code = runCLI(t, "worklist", "status", "--config", cfg, "--agent", "bob@example.com", "1000", "waiting")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "paused", state(), "waiting on the customer pauses the clock")
	_, stderr, code = runCLI(t, "worklist", "status", "--config", cfg, "--agent", "bob@example.com", "1000", "in_progress")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "running", state(), "back in progress, the clock runs again")
}
