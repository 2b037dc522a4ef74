package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Two mailboxes' routing rules: the same mail (printer and invoice) goes
// to hardware under support's rules and to accounts under billing's.
const (
	supportRules = "version: 1\nqueues: [hardware, other]\ndefault_queue: other\n" +
		"keywords:\n  threshold: 1\n  sets:\n    - queue: hardware\n      words: [printer]\n"
	billingRules = "version: 1\nqueues: [accounts, misc]\ndefault_queue: misc\n" +
		"keywords:\n  threshold: 1\n  sets:\n    - queue: accounts\n      words: [invoice]\n"
)

// twoMailboxConfig writes the one YAML file of issue 11 item 6: two
// mailboxes with their own closed-case policy, rules file and XML senders,
// over file-wide defaults (the rules file and the XML secret), secrets
// from the environment.
func twoMailboxConfig(t *testing.T, dir, db, sup, bil string) string {
	t.Helper()
	writeFile(t, dir, "rules-support.yaml", supportRules)
	writeFile(t, dir, "rules-billing.yaml", billingRules)
	return writeFile(t, dir, "mailcase.yaml", fmt.Sprintf(`store: sqlite://%s
threading:
  closed_policy: reopen
routing:
  rules: rules-support.yaml          # relative to this file
structured:
  secret_env: MAILCASE_TEST_XML_SECRET
mailboxes:
  - name: support
    address: support@example.com
    interval: 1h
    source: {type: dir, path: %s}
    threading: {closed_policy: reject}
    structured: {senders: [erp@support-ops.example]}
  - name: billing
    address: billing@example.com
    interval: 1h
    source: {type: dir, path: %s}
    threading: {closed_policy: new}
    routing: {rules: rules-billing.yaml}
    structured: {senders: [erp@billing-ops.example]}
`, db, sup, bil))
}

func plainMail(from, to, cc, subject, id, inReplyTo, body string) string {
	h := "From: " + from + "\r\nTo: " + to + "\r\n"
	if cc != "" {
		h += "Cc: " + cc + "\r\n"
	}
	h += "Subject: " + subject + "\r\nMessage-ID: <" + id + ">\r\n"
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + ">\r\n"
	}
	return h + "Date: Mon, 16 Nov 2026 09:00:00 +0000\r\n\r\n" + body + "\r\n"
}

func xmlMailFrom(from, id string) string {
	return strings.NewReplacer("erp@ops.example.com", from, "api-1@ops.example.com", id).Replace(xmlMail)
}

// TestOneConfigurationTwoMailboxes runs run --once over one YAML
// file with two mailboxes: each mailbox gets its own closed-case policy,
// rules file and XML senders, and a mail from one mailbox's address naming
// the other mailbox's case is not a participant's (the own addresses are
// derived from every mailbox of the file).
func TestOneConfigurationTwoMailboxes(t *testing.T) {
	t.Setenv("MAILCASE_TEST_XML_SECRET", "s3cret")
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	sup, bil := filepath.Join(dir, "support"), filepath.Join(dir, "billing")
	require.NoError(t, os.Mkdir(sup, 0o700))
	require.NoError(t, os.Mkdir(bil, 0o700))
	cfg := twoMailboxConfig(t, dir, db, sup, bil)

	// Round 1: a case in each mailbox, the same words in both; an XML
	// request from each ERP to each mailbox; a billing case Cc'ing the
	// support address.
	body := "The printer prints every invoice twice."
	writeFile(t, sup, "01.eml", plainMail("Ann <ann@customer.example>", "support@example.com", "", "Printer and invoice", "sup-1@customer.example", "", body))
	writeFile(t, bil, "01.eml", plainMail("Bob <bob@customer.example>", "billing@example.com", "", "Printer and invoice", "bil-1@customer.example", "", body))
	writeFile(t, sup, "02.eml", xmlMailFrom("erp@billing-ops.example", "api-sup@billing-ops.example"))
	writeFile(t, bil, "02.eml", xmlMailFrom("erp@billing-ops.example", "api-bil@billing-ops.example"))
	writeFile(t, bil, "03.eml", plainMail("Carol <carol@customer.example>", "billing@example.com", "support@example.com",
		"Question", "bil-3@customer.example", "", "When is the next invoice due?"))
	stdout, stderr, code := runCLI(t, "run", "--once", "--config", cfg)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	store, err := openStore(t.Context(), db)
	require.NoError(t, err)
	lookup := func(id string) mailcase.Case {
		t.Helper()
		c, ok, err := store.LookupThread(t.Context(), id)
		require.NoError(t, err)
		require.True(t, ok, "no case holds %s", id)
		return c
	}
	supCase, bilCase, carol := lookup("sup-1@customer.example"), lookup("bil-1@customer.example"), lookup("bil-3@customer.example")
	assert.Equal(t, "hardware", supCase.Queue, "support's rules (the file-wide rules file)")
	assert.Equal(t, "accounts", bilCase.Queue, "billing's own rules file")
	// XML senders: billing's ERP runs its request in billing only; support
	// holds it for a person.
	held := lookup("api-sup@billing-ops.example")
	assert.Equal(t, "Structured mail needs attention: API request", held.Subject, "not a structured sender of support: held, not run")
	cases, err := store.ListCases(t.Context(), nil)
	require.NoError(t, err)
	var subjects []string
	for _, c := range cases {
		subjects = append(subjects, c.Subject)
	}
	assert.Contains(t, subjects, "Invoice 42 disputed", "billing ran its ERP's request: %v", subjects)

	// Close both customer cases.
	closed := mailcase.StatusClosed
	for _, c := range []mailcase.Case{supCase, bilCase} {
		_, err = store.UpdateCase(t.Context(), c.ID, &mailcase.CaseUpdate{Status: &closed})
		require.NoError(t, err)
	}
	require.NoError(t, store.Close())

	// Round 2: a reply to each closed case, and a mail from support's
	// address into billing naming carol's case by number only.
	writeFile(t, sup, "04.eml", plainMail("Ann <ann@customer.example>", "support@example.com", "", "Re: Printer and invoice", "sup-4@customer.example", "sup-1@customer.example", "Still broken."))
	writeFile(t, bil, "04.eml", plainMail("Bob <bob@customer.example>", "billing@example.com", "", "Re: Printer and invoice", "bil-4@customer.example", "bil-1@customer.example", "Still charged twice."))
	attack := plainMail("<support@example.com>", "billing@example.com", "", fmt.Sprintf("Re: [#%s] Question", carol.Number),
		"bil-5@x.example", "", "Please send me her bank details.")
	writeFile(t, bil, "05.eml", attack)
	stdout, stderr, code = runCLI(t, "run", "--once", "--config", cfg)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	store, err = openStore(t.Context(), db)
	require.NoError(t, err)
	defer store.Close()
	// support: reject, so its reply filed no case; billing: new, so its
	// reply opened a new case.
	_, ok, err := store.LookupThread(t.Context(), "sup-4@customer.example")
	require.NoError(t, err)
	assert.False(t, ok, "support's closed_policy reject files the reply on no case")
	got, ok, err := store.LookupThread(t.Context(), "bil-4@customer.example")
	require.NoError(t, err)
	require.True(t, ok)
	assert.NotEqual(t, bilCase.ID, got.ID, "billing's closed_policy new opens a new case")
	if c, ok, err := store.LookupThread(t.Context(), "bil-5@x.example"); assert.NoError(t, err) && ok {
		assert.NotEqual(t, carol.ID, c.ID, "support@example.com is our own address, not a participant of carol's case")
	}
	c, ok, err := store.GetCase(t.Context(), carol.ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, carol.Status, c.Status, "carol's case is untouched")

	// The control: the same file without the support mailbox (so without
	// its address among the own addresses) lets the attack thread onto
	// carol's case. explain writes nothing.
	one := writeFile(t, dir, "billing-only.yaml", fmt.Sprintf(`store: sqlite://%s
mailboxes:
  - name: billing
    address: billing@example.com
`, db))
	attackFile := writeFile(t, dir, "attack.eml", strings.Replace(attack, "bil-5@x.example", "bil-6@x.example", 1))
	stdout, stderr, code = runCLI(t, "explain", "--json", "--config", one, attackFile)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	outcome := decodeExplain(t, []byte(stdout))["outcome"].(map[string]any)
	assert.Equal(t, "appended", outcome["action"], "without the support mailbox in the file, support@ is a participant")
	stdout, stderr, code = runCLI(t, "explain", "--json", "--config", cfg, "--mailbox", "billing", attackFile)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	outcome = decodeExplain(t, []byte(stdout))["outcome"].(map[string]any)
	assert.NotEqual(t, "appended", outcome["action"], "with both mailboxes in the file, it is not: %v", outcome)
}

// config check FILE validates the plugin keys with the file and line.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := twoMailboxConfig(t, dir, filepath.Join(dir, "c.db"), dir, dir)
	stdout, stderr, code := runCLI(t, "config", "check", good)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Contains(t, stdout, "ok (2 mailboxes)")

	tests := []struct {
		name, yaml, want string
	}{
		{name: "closed policy", yaml: "threading: {closed_policy: sometimes}\nmailboxes: [{name: a}]\n",
			want: `:1: threading.closed_policy: "sometimes" is not valid (valid values: reopen, reopen_within, new, new_linked, reject)`},
		{name: "mailbox closed policy", yaml: "mailboxes:\n  - name: a\n    threading:\n      closed_policy: later\n",
			want: `:4: mailboxes[0].threading.closed_policy: "later" is not valid`},
		{name: "window without policy", yaml: "mailboxes:\n  - name: a\n    threading: {reopen_within: 72h}\n",
			want: ":3: mailboxes[0].threading.reopen_within is only for closed_policy: reopen_within"},
		{name: "window without unit", yaml: "threading: {closed_policy: reopen_within, reopen_within: 72}\nmailboxes: [{name: a}]\n",
			want: ":1: threading.reopen_within: \"72\" is not a duration"},
		{name: "own address", yaml: "threading:\n  own_addresses: [nobody]\nmailboxes: [{name: a}]\n",
			want: `:2: threading.own_addresses[0]: "nobody" is not a mail address`},
		{name: "key twice", yaml: "threading: {key_env: K, key_file: k.txt}\nmailboxes: [{name: a}]\n",
			want: ":1: threading: key_env and key_file are exclusive"},
		{name: "missing rules", yaml: "mailboxes:\n  - name: a\n    routing: {rules: nosuch.yaml}\n",
			want: ":3: mailboxes[0].routing.rules:"},
		{name: "xml sender", yaml: "structured:\n  senders: [\"@\"]\nmailboxes: [{name: a}]\n",
			want: `:2: structured.senders[0]: "@" is neither a mail address nor an @domain`},
		{name: "unknown plugin key", yaml: "routing: {rule: x.yaml}\nmailboxes: [{name: a}]\n",
			want: `:1: unknown key "rule" in routing (valid keys: rules)`},
		{name: "secret twice", yaml: "mailboxes: [{name: a, structured: {secret_env: S, secret_file: s}}]\n",
			want: ":1: mailboxes[0].structured: secret_env and secret_file are exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "bad.yaml", tt.yaml)
			_, stderr, code := runCLI(t, "config", "check", f)
			assert.Equal(t, exitFailure, code)
			assert.Contains(t, stderr, "config "+f+tt.want)
		})
	}

	_, stderr, code = runCLI(t, "config", "frobnicate", good)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "config needs the subcommand check")
}

// Secrets are named by the file, never required inline: the store URL's
// ${VAR} references and store_password_env, the thread key's key_file.
func TestConfigSecrets(t *testing.T) {
	t.Setenv("MAILCASE_TEST_PGPASSWORD", "p@ss word")
	t.Setenv("MAILCASE_TEST_DATABASE_URL", "mem://")
	tests := []struct {
		name, yaml, want, wantErr string
	}{
		{name: "password reference", yaml: "store: postgres://crm:${MAILCASE_TEST_PGPASSWORD}@db.example/crm\n",
			want: "postgres://crm:p%40ss%20word@db.example/crm"},
		{name: "whole URL", yaml: "store: ${MAILCASE_TEST_DATABASE_URL}\n", want: "mem://"},
		{name: "password_env", yaml: "store: postgres://crm@db.example/crm\nstore_password_env: MAILCASE_TEST_PGPASSWORD\n",
			want: "postgres://crm:p%40ss%20word@db.example/crm"},
		{name: "unset reference", yaml: "store: postgres://crm:${MAILCASE_TEST_UNSET}@db/crm\n",
			wantErr: "environment variable MAILCASE_TEST_UNSET is not set"},
		{name: "password_env without user", yaml: "store: postgres://db.example/crm\nstore_password_env: MAILCASE_TEST_PGPASSWORD\n",
			wantErr: "needs a store URL with a user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tt.yaml + "mailboxes: [{name: a}]\n"))
			require.NoError(t, err)
			got, err := cfg.storeURL()
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	// The thread key from a file next to the configuration (relative to
	// it): the signed signals are on.
	dir := t.TempDir()
	writeFile(t, dir, "thread.key", "00112233445566778899aabbccddeeff\n")
	cfg, err := loadConfig(writeFile(t, dir, "c.yaml", "store: mem://\nthreading: {key_file: thread.key}\nmailboxes: [{name: a}]\n"))
	require.NoError(t, err)
	store, err := openStore(t.Context(), "mem://")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	r, _, err := threadingPlugins(store, wireConfig{Plugins: cfg.Mailboxes[0].plugins})
	require.NoError(t, err)
	assert.NotNil(t, r.Codec(), "key_file turns the signed signals on")

	// With a configuration file the environment's settings are ignored.
	t.Setenv("MAILCASE_CLOSED_POLICY", "sometimes")
	_, _, err = threadingPlugins(store, wireConfig{Plugins: cfg.Mailboxes[0].plugins})
	assert.NoError(t, err, "MAILCASE_CLOSED_POLICY does not apply with a configuration file")

	cfg, err = loadConfig(writeFile(t, dir, "k.yaml", "store: mem://\nthreading: {key_env: MAILCASE_TEST_UNSET_KEY}\nmailboxes: [{name: a}]\n"))
	require.NoError(t, err)
	_, _, err = threadingPlugins(store, wireConfig{Plugins: cfg.Mailboxes[0].plugins})
	assert.ErrorContains(t, err, "MAILCASE_TEST_UNSET_KEY is not set")
}

// demo --config: the routing rules of the file's mailbox replace the
// demo's embedded rules; MAILCASE_RULES does not apply.
func TestDemoConfig(t *testing.T) {
	t.Setenv("MAILCASE_RULES", filepath.Join(t.TempDir(), "missing.yaml"))
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", "version: 1\nqueues: [fromfile]\ndefault_queue: fromfile\n"+
		"keywords:\n  threshold: 1\n  sets:\n    - queue: fromfile\n      words: [invoice]\n")
	cfg := writeFile(t, dir, "c.yaml", "store: mem://\nrouting: {rules: r.yaml}\nmailboxes: [{name: support, address: support@ourcompany.example}]\n")
	stdout, stderr, code := runCLI(t, "demo", "--config", cfg)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Contains(t, stdout, "queue fromfile, rule keywords:fromfile")
	assert.NotContains(t, stdout, "rule keywords:billing", "the embedded demo rules are replaced")
}
