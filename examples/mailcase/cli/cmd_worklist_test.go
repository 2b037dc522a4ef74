package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// worklistRig files two mails into a SQLite store through run, with the
// worklist queues of the configuration.
func worklistRig(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(maildir, d), 0o755))
	}
	for i, subj := range []string{"Printer jams", "Invoice missing"} {
		require.NoError(t, os.WriteFile(filepath.Join(maildir, "new", fmt.Sprintf("%d.eml", i)),
			fmt.Appendf(nil, "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <w%d@customer.example>\r\n\r\nHelp.\r\n", subj, i), 0o600))
	}
	writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
	writeFile(t, dir, "drum.txt", "Dear customer,\n{{.Body}}\n-- {{.Queue}}\n")
	cfg = writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
threading: {key_file: key, domain: example.com}
worklists:
  queues:
    - name: tier1
      owner: boss@example.com
      members: [bob@example.com, amy@example.com]
    - name: tier2
      members: [cat@example.com]
  templates:
    drum: {subject: "About your printer", text_file: drum.txt}
mailboxes:
  - name: support
    address: support@example.com
    default_queue: tier1
    interval: 1m
    concurrency: 1 # filed in name order: case 1000 is the printer
    source: {type: maildir, path: %q}
`, filepath.Join(dir, "s.db"), maildir))
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	return dir, cfg
}

func listItems(t *testing.T, cfg string, flags ...string) []workItemJSON {
	t.Helper()
	stdout, stderr, code := runCLI(t, append([]string{"worklist", "list", "--config", cfg, "--json"}, flags...)...)
	require.Equal(t, exitOK, code, stderr)
	var items []workItemJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &items))
	return items
}

func TestWorklist_CLI(t *testing.T) {
	dir, cfg := worklistRig(t)
	items := listItems(t, cfg, "--queue", "tier1", "--unowned")
	require.Len(t, items, 2, "mail goes to the group worklist")
	for _, it := range items {
		assert.Empty(t, it.Owner)
		assert.True(t, it.MailOpen)
	}
	stdout, stderr, code := runCLI(t, "worklist", "list", "--config", cfg)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "case 1000  queue tier1  owner (group)  new mail-open  Printer jams")

	_, stderr, code = runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "cat@example.com", "1000")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "PermissionDenied", "cat is no member of tier1")
	stdout, stderr, code = runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "Bob@Example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "owner bob@example.com  in_progress")
	_, stderr, code = runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "amy@example.com", "1000")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "AlreadyExists")
	assert.Len(t, listItems(t, cfg, "--owner", "bob@example.com"), 1, "the item is on bob's own worklist")

	_, stderr, code = runCLI(t, "worklist", "close", "--config", cfg, "--agent", "bob@example.com", "1000")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "open mail")
	_, stderr, code = runCLI(t, "worklist", "reply", "--config", cfg, "--agent", "amy@example.com", "--file", writeFile(t, dir, "a.txt", "Hi"), "1000")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "only the owner")
	stdout, stderr, code = runCLI(t, "worklist", "reply", "--config", cfg, "--agent", "bob@example.com", "--template", "drum",
		"--status", "waiting", "--file", writeFile(t, dir, "b.txt", "A new drum ships today."), "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "queued the reply on case 1000")
	assert.Contains(t, stdout, "owner bob@example.com  waiting  Printer jams")
	stdout, stderr, code = runCLI(t, "outbox", "list", "--config", cfg, "--json")
	require.Equal(t, exitOK, code, stderr)
	var msgs []outboxJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &msgs))
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{"ann@customer.example"}, msgs[0].To)
	stdout, stderr, code = runCLI(t, "outbox", "show", "--raw", msgs[0].ID, "--config", cfg)
	require.Equal(t, exitOK, code, stderr)
	raw := strings.ReplaceAll(stdout, "\r\n", "\n")
	assert.Contains(t, raw, "In-Reply-To: <w0@customer.example>")
	assert.Contains(t, raw, "Dear customer,\nA new drum ships today.\n-- tier1")

	stdout, stderr, code = runCLI(t, "worklist", "close", "--config", cfg, "--agent", "bob@example.com", "1000")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "closed")

	// Reassign the other item to tier2, to a member, then back to the group.
	_, stderr, code = runCLI(t, "worklist", "reassign", "--config", cfg, "--agent", "amy@example.com", "--queue", "tier2", "--member", "bob@example.com", "1001")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "FailedPrecondition", "bob is no member of tier2")
	stdout, stderr, code = runCLI(t, "worklist", "reassign", "--config", cfg, "--agent", "amy@example.com", "--queue", "tier2", "--member", "cat@example.com", "1001")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "queue tier2  owner cat@example.com  in_progress")
	stdout, stderr, code = runCLI(t, "worklist", "release", "--config", cfg, "--agent", "cat@example.com", "1001")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "queue tier2  owner (group)  open")
	stdout, stderr, code = runCLI(t, "cases", "--store", "sqlite://"+filepath.Join(dir, "s.db"))
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "tier2")

	// Membership follows the configuration.
	cfgText, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(string(cfgText), "members: [cat@example.com]", "members: [dan@example.com]", 1)), 0o600))
	_, stderr, code = runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "cat@example.com", "1001")
	assert.Equal(t, exitFailure, code, "cat left tier2")
	assert.Contains(t, stderr, "PermissionDenied")
	_, stderr, code = runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "dan@example.com", "1001")
	require.Equal(t, exitOK, code, stderr)
}

func TestWorklist_CLIUsage(t *testing.T) {
	_, cfg := worklistRig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"worklist"}, "needs a subcommand"},
		{[]string{"worklist", "grab", "--config", cfg, "1000"}, "unknown worklist subcommand"},
		{[]string{"worklist", "accept", "--config", cfg, "1000"}, "needs --agent"},
		{[]string{"worklist", "reassign", "--config", cfg, "--agent", "bob@example.com", "1000"}, "needs --queue"},
		{[]string{"worklist", "status", "--config", cfg, "--agent", "bob@example.com", "1000"}, "takes 2 argument"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.want, tc.args)
	}
	_, stderr, code := runCLI(t, "worklist", "accept", "--config", cfg, "--agent", "bob@example.com", "4242")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "no case 4242")
}

// Mail is routed to group queues only: a queue that names a person is
// refused when the configuration is loaded, wherever it is named.
func TestWorklist_ConfigRefusesPersonRoutes(t *testing.T) {
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", "queues: [tier1, bob@example.com]\n")
	rules2 := writeFile(t, dir, "rules2.yaml", "queues: [tier1, tier3]\n")
	base := "store: mem://\nmailboxes:\n  - name: support\n    address: support@example.com\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"default queue", base + "    default_queue: bob@example.com\n", "person's address"},
		{"internal queue", base + "    internal_queue: Bob@Example.com\n", "person's address"},
		{"admin queue", base + "    structured: {admin_queue: bob@example.com}\n", "person's address"},
		{"routing rules", base + "    routing: {rules: " + rules + "}\n", "never to a person"}, // the routing package's own check
		{"rules queue undeclared", "worklists: {queues: [{name: tier1}]}\n" + base + "    default_queue: tier1\n    routing: {rules: " + rules2 + "}\n", `"tier3" is not a group queue`},
		{"worklist queue", "worklists: {queues: [{name: bob@example.com}]}\n" + base, "person's address"},
		{"undeclared queue", "worklists: {queues: [{name: tier1}]}\n" + base + "    default_queue: tier9\n", "not a group queue"},
		{"default queue undeclared", "worklists: {queues: [{name: tier1}]}\n" + base, `"default" is not a group queue`},
		{"bad member", "worklists: {queues: [{name: tier1, members: [bob]}]}\n" + base + "    default_queue: tier1\n", "not a mail address"},
		{"twice", "worklists: {queues: [{name: tier1}, {name: tier1}]}\n" + base + "    default_queue: tier1\n", "declared twice"},
		{"unknown key", "worklists: {queues: [{name: tier1, boss: x}]}\n" + base, "boss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, dir, "c.yaml", tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	ok := "worklists: {queues: [{name: tier1, owner: boss@example.com, members: [bob@example.com]}]}\n" + base + "    default_queue: tier1\n"
	_, err := loadConfig(writeFile(t, dir, "ok.yaml", ok))
	require.NoError(t, err)
}
