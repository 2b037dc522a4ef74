package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setAutoAccept rewrites the worklist rig's configuration with
// worklists.auto_accept set to on.
func setAutoAccept(t *testing.T, cfg string, on bool) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	s := strings.Replace(string(b), "worklists:\n  auto_accept: true\n", "worklists:\n", 1)
	if on {
		s = strings.Replace(s, "worklists:\n", "worklists:\n  auto_accept: true\n", 1)
	}
	require.NoError(t, os.WriteFile(cfg, []byte(s), 0o600))
}

// worklist open shows an item; with worklists.auto_accept the agent who
// opens an unowned item of a queue they are a member of becomes its owner
// (not an agent of another queue, and not over an owner who has it).
func TestWorklist_OpenAutoAccept(t *testing.T) {
	_, cfg := worklistRig(t)

	stdout, stderr, code := runCLI(t, "worklist", "open", "--config", cfg, "--agent", "bob@example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "case 1000  queue tier1  owner (group)", "without auto_accept opening only reads")

	setAutoAccept(t, cfg, true)
	stdout, stderr, code = runCLI(t, "config", "check", cfg)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "worklists: auto-accept")

	stdout, stderr, code = runCLI(t, "worklist", "open", "--config", cfg, "--agent", "cat@example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "owner (group)", "cat is no member of tier1: opening only reads")
	stdout, stderr, code = runCLI(t, "worklist", "open", "--config", cfg, "--agent", "bob@example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "case 1000  queue tier1  owner bob@example.com  in_progress")
	stdout, stderr, code = runCLI(t, "worklist", "open", "--config", cfg, "--agent", "amy@example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "owner bob@example.com", "bob keeps it")
	assert.Len(t, listItems(t, cfg, "--owner", "bob@example.com"), 1)
	assert.Len(t, listItems(t, cfg, "--queue", "tier1", "--unowned"), 1, "the other item stays on the group worklist")

	setAutoAccept(t, cfg, false)
	stdout, stderr, code = runCLI(t, "worklist", "open", "--config", cfg, "--agent", "amy@example.com", "1001")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "owner (group)", "auto_accept off again")
}

// config check refuses auto_accept when no declared queue has members
// (nobody could ever become an owner by opening) and a value that is not
// a boolean.
func TestConfigCheck_WorklistAutoAccept(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{name: "no members", yaml: "worklists:\n  auto_accept: true\n  queues:\n    - {name: tier1, owner: boss@example.com}\n",
			want: "worklists.auto_accept: no queue of worklists.queues has members"},
		{name: "not a boolean", yaml: "worklists:\n  auto_accept: sometimes\n", want: "sometimes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "c.yaml", "store: mem://\n"+tc.yaml+"mailboxes: [{name: support, address: support@example.com, default_queue: tier1}]\n")
			_, stderr, code := runCLI(t, "config", "check", cfg)
			assert.Equal(t, exitFailure, code)
			assert.Contains(t, stderr, tc.want)
		})
	}
	cfg := writeFile(t, dir, "ok.yaml", "store: mem://\nworklists:\n  auto_accept: true\nmailboxes: [{name: support, address: support@example.com}]\n")
	stdout, stderr, code := runCLI(t, "config", "check", cfg)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "worklists: auto-accept")
}
