package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// xmlMail carries the secret with a current timestamp and a nonce, as the
// replay defence requires.
var xmlMail = "From: ERP <erp@ops.example.com>\r\n" +
	"To: support@company.example\r\n" +
	"Subject: API request\r\n" +
	"Message-ID: <api-1@ops.example.com>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	`<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret>` +
	"<timestamp>" + time.Now().UTC().Format(time.RFC3339) + "</timestamp><nonce>cli-test-1</nonce>\r\n" +
	`<createCase queue="billing" priority="high"><subject>Invoice 42 disputed</subject></createCase>` + "\r\n" +
	"</request>\r\n"

func TestStructuredPlugin_Config(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	h, err := structuredPlugin(store, wireConfig{})
	require.NoError(t, err)
	assert.Nil(t, h, "no configuration: structured mail is off")
	h, err = structuredPlugin(store, wireConfig{Plugins: &pluginConfig{}})
	require.NoError(t, err)
	assert.Nil(t, h, "no allowed sender: structured mail is off")

	_, err = structuredPlugin(store, wireConfig{Plugins: &pluginConfig{Structured: structuredConfig{Senders: []string{"not an address"}}}})
	assert.ErrorContains(t, err, "structured.senders")

	t.Setenv("MAILCASE_TEST_XML_SECRET", "s3cret")
	h, err = structuredPlugin(store, wireConfig{Plugins: &pluginConfig{Structured: structuredConfig{
		Senders: []string{"erp@ops.example.com", "@forms.example.com"}, SecretEnv: "MAILCASE_TEST_XML_SECRET"}}})
	require.NoError(t, err)
	require.NotNil(t, h)
	m, err := mailcase.ParseMessage([]byte(xmlMail), nil)
	require.NoError(t, err)
	assert.True(t, h.IsStructured(m))
}

func TestStructuredMail_ExplainAndImport(t *testing.T) {
	t.Setenv("MAILCASE_TEST_XML_SECRET", "s3cret")
	dir := t.TempDir()
	mail := filepath.Join(dir, "01-api.eml")
	require.NoError(t, os.WriteFile(mail, []byte(xmlMail), 0o600))
	cfg := writeFile(t, t.TempDir(), "c.yaml", "structured:\n  senders: [erp@ops.example.com]\n"+
		"  secret_env: MAILCASE_TEST_XML_SECRET\nmailboxes: [{name: support}]\n")

	out, errOut, code := runCLI(t, "explain", "--json", "--config", cfg, "--store", "mem://", mail)
	require.Equal(t, 0, code, errOut)
	obj := decodeExplain(t, []byte(out))
	assert.Equal(t, true, obj["structured"])

	storeURL := "sqlite://" + filepath.Join(dir, "s.db")
	out, errOut, code = runCLI(t, "import", "--config", cfg, "--store", storeURL, dir)
	require.Equal(t, 0, code, errOut+out)
	out, errOut, code = runCLI(t, "cases", "--store", storeURL)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Invoice 42 disputed")
	assert.Contains(t, out, "billing")
}

func TestStructuredPlugin_AuthenticatedByTrustedMTA(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	h, err := structuredPlugin(store, wireConfig{Mailbox: mailcase.Mailbox{Name: "support"}, TrustedAuthServIDs: []string{"mx.company.example"},
		Plugins: &pluginConfig{Structured: structuredConfig{Senders: []string{"erp@ops.example.com"}}}})
	require.NoError(t, err)
	noSecret := "From: erp@ops.example.com\r\nSubject: api\r\nMessage-ID: <a1@ops.example.com>\r\n\r\n" +
		`<request xmlns="urn:emailcrm:mailcase:v1"><createCase queue="billing"><subject>From ERP</subject></createCase></request>` + "\r\n"
	for _, tc := range []struct {
		name   string
		header string
		want   string
	}{
		{name: "our MTA says pass", header: "Authentication-Results: mx.company.example; dkim=pass header.d=ops.example.com\r\n", want: "ran 1 actions"},
		{name: "forged below Received", header: "Received: from x by mx.company.example; Mon, 1 Jan 2026 00:00:00 +0000\r\nAuthentication-Results: mx.company.example; dkim=pass header.d=ops.example.com\r\n", want: "admin"},
		{name: "untrusted server", header: "Authentication-Results: mx.other.example; dkim=pass header.d=ops.example.com\r\n", want: "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.header + noSecret)
			m, err := mailcase.ParseMessage(raw, nil)
			require.NoError(t, err)
			// The pipeline's sender authentication, as buildPipeline wires it.
			v, err := dkimConfig{}.senderAuth([]string{"mx.company.example"})
			require.NoError(t, err)
			auth, err := v.VerifySender(t.Context(), raw)
			require.NoError(t, err)
			res, err := h.HandleStructured(t.Context(), &mailcase.Delivery{Mailbox: &mailcase.Mailbox{Name: "support"}, Message: m, Auth: auth})
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Action)
		})
	}
}
