package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

const webformMail = "Authentication-Results: mx.company.example; dkim=pass header.d=web.example.com\r\n" +
	"From: Web forms <forms@web.example.com>\r\n" +
	"To: support@company.example\r\n" +
	"Subject: Contact us\r\n" +
	"Message-ID: <form-1@web.example.com>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	`<?xml version="1.0"?>` + "\r\n" +
	`<WEBFORM><WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID><EMAIL>ann@customer.example</EMAIL><NAME>Ann</NAME>` +
	`<QUESTION>Where is my order?</QUESTION></WEBFORM>` + "\r\n"

func webformConfigFile(t *testing.T, dir, extra string) string {
	t.Helper()
	writeFile(t, dir, "thanks.txt", "Hello {{.Vars.NAME}}, case {{.Case.Number}} is open.\n")
	return writeFile(t, dir, "c.yaml", `trusted_authserv_ids: [mx.company.example]
structured:
  senders: [forms@web.example.com]
  webforms:
    CONTACT_US:
      queue: sales
      subject_field: QUESTION
      fields: [QUESTION]
      contact_field: EMAIL
      name_field: NAME
      reply_template: thanks
  reply_templates:
    thanks: {subject: "Thanks, {{.Vars.NAME}}", text_file: thanks.txt}
`+extra+`mailboxes: [{name: support, address: support@company.example}]
`)
}

func TestWebforms_ExplainImportReply(t *testing.T) {
	dir := t.TempDir()
	mails := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(mails, 0o700))
	mail := filepath.Join(mails, "01-form.eml")
	require.NoError(t, os.WriteFile(mail, []byte(webformMail), 0o600))
	cfg := webformConfigFile(t, dir, "")

	out, errOut, code := runCLI(t, "explain", "--json", "--config", cfg, "--store", "mem://", mail)
	require.Equal(t, 0, code, errOut)
	obj := decodeExplain(t, []byte(out))
	assert.Equal(t, true, obj["structured"])
	api, ok := obj["structured_api"].(map[string]any)
	require.True(t, ok, "structured_api is an object: %s", out)
	assert.Equal(t, "erms-webform", api["kind"])
	assert.Equal(t, "CONTACT_US", api["template_id"])
	assert.Equal(t, true, api["authenticated"])
	assert.Equal(t, "authentication-results", api["auth_method"], "the MTA's trusted Authentication-Results")
	assert.Equal(t, "web.example.com", api["auth_domain"])
	assert.Equal(t, "thanks", api["reply_template"])
	assert.Equal(t, "", api["error"])
	acts, ok := api["actions"].([]any)
	require.True(t, ok)
	require.Len(t, acts, 2)
	assert.Equal(t, "createCase", acts[1].(map[string]any)["name"])

	out, errOut, code = runCLI(t, "explain", "--config", cfg, "--store", "mem://", mail)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Structured API")
	assert.Contains(t, out, "erms-webform")
	assert.Contains(t, out, "yes, by authentication-results for web.example.com")
	assert.Contains(t, out, `createCase`)
	assert.Contains(t, out, "template thanks")

	// Ordinary mail has a null structured_api.
	plain := filepath.Join(dir, "plain.eml")
	require.NoError(t, os.WriteFile(plain, []byte("From: ann@customer.example\r\nSubject: hi\r\nMessage-ID: <p1@customer.example>\r\n\r\nHello\r\n"), 0o600))
	out, errOut, code = runCLI(t, "explain", "--json", "--config", cfg, "--store", "mem://", plain)
	require.Equal(t, 0, code, errOut)
	obj = decodeExplain(t, []byte(out))
	assert.Contains(t, obj, "structured_api")
	assert.Nil(t, obj["structured_api"])

	// Imported: the case is created and the reply queued for the customer.
	storeURL := "sqlite://" + filepath.Join(dir, "s.db")
	out, errOut, code = runCLI(t, "import", "--config", cfg, "--store", storeURL, mails)
	require.Equal(t, 0, code, errOut+out)
	out, errOut, code = runCLI(t, "cases", "--store", storeURL)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Where is my order?")
	assert.Contains(t, out, "sales")
	out, errOut, code = runCLI(t, "outbox", "list", "--json", "--store", storeURL)
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "structured-reply", "import is a backlog (quiet) run: nothing is sent about it")

	// Processed live by the configured pipeline, the reply is queued for
	// the customer the form names.
	c, err := loadConfig(cfg)
	require.NoError(t, err)
	mb, err := c.mailbox("")
	require.NoError(t, err)
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	p, err := buildPipeline(store, wireConfig{Mailbox: mb.Mailbox, TrustedAuthServIDs: mb.TrustedAuthServIDs, Plugins: mb.plugins})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	res, err := p.Process(t.Context(), []byte(webformMail), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionStructured, res.Outcome.Action, "%v", res.Outcome.Steps)
	sent, err := store.ListOutbox(t.Context(), &driver.OutboxListOptions{Kind: outbox.KindStructuredReply})
	require.NoError(t, err)
	require.Len(t, sent, 1, "%v", res.Outcome.Steps)
	assert.Equal(t, []string{"ann@customer.example"}, sent[0].To)
	full, ok, err := store.GetOutbox(t.Context(), sent[0].ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Contains(t, string(full.Raw), "Subject: Thanks, Ann")
	assert.Contains(t, string(full.Raw), "Hello Ann, case ")
}

func TestWebforms_ConfigValidatedAtLoad(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown reply template", "structured:\n  senders: [a@b.example]\n  webforms:\n    X: {reply_template: nope}\nmailboxes: [{name: s}]\n", `no reply template "nope"`},
		{"bad priority", "structured:\n  senders: [a@b.example]\n  webforms:\n    X: {priority: extreme}\nmailboxes: [{name: s}]\n", `unknown priority "extreme"`},
		{"bad template", "structured:\n  senders: [a@b.example]\n  reply_templates:\n    t: {subject: \"{{.Nope}}\"}\nmailboxes: [{name: s}]\n", "structured.reply_templates"},
		{"unknown key", "structured:\n  senders: [a@b.example]\n  webforms:\n    X: {queu: sales}\nmailboxes: [{name: s}]\n", "queu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			_, err := loadConfig(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := loadConfig(webformConfigFile(t, dir, ""))
	require.NoError(t, err)
}
