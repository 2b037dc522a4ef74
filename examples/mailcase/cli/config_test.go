package cli

import (
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/mailcase"
)

func TestParseConfig_Example(t *testing.T) {
	dir := t.TempDir() // the rules files the example names, beside it
	writeFile(t, dir, "rules.yaml", supportRules)
	writeFile(t, dir, "billing-rules.yaml", billingRules)
	cfg, err := parseConfigIn([]byte(exampleConfig), dir)
	require.NoError(t, err)
	require.Len(t, cfg.Mailboxes, 3)
	sup := cfg.Mailboxes[0]
	assert.Equal(t, "support", sup.Name)
	assert.Equal(t, "tier1", sup.DefaultQueue)
	assert.Equal(t, mailcase.UnknownCreateContact, sup.UnknownSender)
	assert.Equal(t, 2*time.Minute, sup.Interval)
	assert.Equal(t, imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Filed"}, sup.Source.After)
	assert.Equal(t, "SUPPORT_IMAP_PASSWORD", sup.Source.PasswordEnv)
	assert.Equal(t, []string{"support@example.com", "help@example.com"}, sup.Recipients)
	assert.Equal(t, "127.0.0.1:2424", cfg.LMTP.Listen)
	assert.Equal(t, []string{"mx.example.com"}, sup.TrustedAuthServIDs)
	mb, err := cfg.mailbox("billing")
	require.NoError(t, err)
	assert.Equal(t, "pop3", mb.Source.Type)
	_, err = cfg.mailbox("")
	require.Error(t, err, "several mailboxes: --mailbox needed")

	// Plugins: the file-wide defaults, overridden key by key.
	sp, bp := sup.plugins, mb.plugins
	assert.Equal(t, "reopen", sp.Threading.ClosedPolicy)
	assert.Equal(t, "new_linked", bp.Threading.ClosedPolicy)
	assert.Equal(t, "MAILCASE_THREAD_KEY", bp.Threading.KeyEnv, "the file-wide key")
	assert.Equal(t, "example.com", bp.Threading.Domain)
	assert.Equal(t, filepath.Join(dir, "rules.yaml"), sp.Routing.Rules)
	assert.Equal(t, filepath.Join(dir, "billing-rules.yaml"), bp.Routing.Rules)
	assert.Equal(t, []string{"erp@ops.example.com"}, sp.Structured.Senders)
	assert.Equal(t, []string{"@erp.example.com"}, bp.Structured.Senders)
	assert.Equal(t, "MAILCASE_XML_SECRET", bp.Structured.SecretEnv)
	// Own addresses: every mailbox's address and recipients, then aliases.
	want := []string{"support@example.com", "help@example.com", "billing@example.com", "info@example.com"}
	assert.Equal(t, want, sp.Threading.OwnAddresses)
	assert.Equal(t, want, bp.Threading.OwnAddresses)
}

func TestParseConfig_Errors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{name: "empty", yaml: "", want: "no mailbox"},
		{name: "unknown key", yaml: "mailboxes: [{name: a, colour: red}]", want: "colour"},
		{name: "no name", yaml: "mailboxes: [{address: a@b.example}]", want: "no name"},
		{name: "duplicate", yaml: "mailboxes: [{name: a}, {name: a}]", want: "duplicate"},
		{name: "bad type", yaml: "mailboxes: [{name: a, interval: 1m, source: {type: nntp}}]", want: "unknown source type"},
		{name: "imap without secret", yaml: "mailboxes: [{name: a, interval: 1m, source: {type: imap, addr: 'h:993', username: u}}]", want: "password_env"},
		{name: "imap without interval", yaml: "mailboxes: [{name: a, source: {type: imap, addr: 'h:993', username: u, password_env: P}}]", want: "interval"},
		{name: "maildir without path", yaml: "mailboxes: [{name: a, interval: 1m, source: {type: maildir}}]", want: "path"},
		{name: "bad duration", yaml: "mailboxes: [{name: a, interval: soon}]", want: "soon"},
		{name: "catch-all", yaml: "lmtp: {catch_all: zz}\nmailboxes: [{name: a}]", want: "catch_all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestConfig_MissingSecret(t *testing.T) {
	cfg, err := parseConfig([]byte("mailboxes: [{name: a, interval: 1m, source: {type: pop3, addr: 'h:995', username: u, password_env: MAILCASE_TEST_UNSET_SECRET}}]"))
	require.NoError(t, err)
	_, err = cfg.Mailboxes[0].source(nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MAILCASE_TEST_UNSET_SECRET is not set")
}

// FuzzParseConfig: any file gives a configuration or an error, never a
// panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(exampleConfig))
	f.Add([]byte("mailboxes: [{name: a, interval: 1m, source: {type: imap}}]"))
	f.Add([]byte("store: x\nlmtp: {catch_all: a}\nmailboxes: [{name: a, max_size: -1, after: {kind: move}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		if err == nil && len(cfg.Mailboxes) == 0 {
			t.Fatal("a valid configuration has mailboxes")
		}
	})
}

// Regression: the configuration's trusted_authserv_ids reach the pipeline,
// so an authenticated employee is trusted in the CLI.
func TestConfig_TrustedAuthServIDs(t *testing.T) {
	cfg, err := parseConfig([]byte("trusted_authserv_ids: [MX.Ours.Example]\nmailboxes:\n" +
		"  - name: support\n    trusted_authserv_ids: [relay.ours.example, mx.ours.example]\n  - name: other\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"mx.ours.example", "relay.ours.example"}, cfg.Mailboxes[0].TrustedAuthServIDs)
	assert.Equal(t, []string{"mx.ours.example"}, cfg.Mailboxes[1].TrustedAuthServIDs)

	ctx := t.Context()
	store, err := openStore(ctx, "mem://")
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Eve", Email: "eve@ours.example", Active: true})
	require.NoError(t, err)
	tests := []struct {
		name    string
		mailbox int
		authres string
		want    mailcase.SenderKind
	}{
		{name: "top-level ID", mailbox: 1, authres: "mx.ours.example; dkim=pass header.d=ours.example", want: mailcase.SenderEmployee},
		{name: "mailbox ID", mailbox: 0, authres: "relay.ours.example; spf=pass smtp.mailfrom=eve@ours.example", want: mailcase.SenderEmployee},
		{name: "mailbox ID not shared", mailbox: 1, authres: "relay.ours.example; spf=pass smtp.mailfrom=eve@ours.example", want: mailcase.SenderUnknown},
		{name: "unknown server", mailbox: 0, authres: "evil.example; dkim=pass header.d=ours.example", want: mailcase.SenderUnknown},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := cfg.Mailboxes[tc.mailbox].pipeline(store, newLogger(io.Discard), nil)
			require.NoError(t, err)
			t.Cleanup(func() { p.Close() })
			raw := "Authentication-Results: " + tc.authres + "\r\nReceived: by mx.ours.example\r\n" +
				"From: Eve <eve@ours.example>\r\nTo: support@example.com\r\nSubject: note\r\n" +
				"Message-ID: <trust-" + strconv.Itoa(i) + "@ours.example>\r\n\r\nInternal note.\r\n"
			res, err := p.Process(ctx, []byte(raw), &mailcase.ProcessOptions{DryRun: true})
			require.NoError(t, err)
			require.NotNil(t, res.Outcome.Sender)
			assert.Equal(t, tc.want, res.Outcome.Sender.Kind)
		})
	}
}

func TestConfig_TrustedAuthServIDsInvalid(t *testing.T) {
	for _, y := range []string{
		"trusted_authserv_ids: ['']\nmailboxes: [{name: a}]",
		"mailboxes: [{name: a, trusted_authserv_ids: ['mx ours']}]",
		"mailboxes: [{name: a, trusted_authserv_ids: ['mx;x']}]",
	} {
		_, err := parseConfig([]byte(y))
		require.Error(t, err, y)
		assert.Contains(t, err.Error(), "trusted_authserv_ids")
	}
}
