package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

const xmlMail = "From: ERP <erp@ops.example.com>\r\n" +
	"To: support@company.example\r\n" +
	"Subject: API request\r\n" +
	"Message-ID: <api-1@ops.example.com>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	`<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret>` + "\r\n" +
	`<createCase queue="billing" priority="high"><subject>Invoice 42 disputed</subject></createCase>` + "\r\n" +
	"</request>\r\n"

func TestStructuredPlugin_Env(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	t.Setenv(envXMLSenders, "")
	h, err := structuredPlugin(store, wireConfig{})
	require.NoError(t, err)
	assert.Nil(t, h, "no allowed sender: structured mail is off")

	t.Setenv(envXMLSenders, "not an address")
	_, err = structuredPlugin(store, wireConfig{})
	assert.ErrorContains(t, err, envXMLSenders)

	t.Setenv(envXMLSenders, "erp@ops.example.com, @forms.example.com")
	t.Setenv(envXMLSecret, "s3cret")
	h, err = structuredPlugin(store, wireConfig{})
	require.NoError(t, err)
	require.NotNil(t, h)
	m, err := mailcase.ParseMessage([]byte(xmlMail), nil)
	require.NoError(t, err)
	assert.True(t, h.IsStructured(m))
}

func TestStructuredMail_ExplainAndImport(t *testing.T) {
	t.Setenv(envXMLSenders, "erp@ops.example.com")
	t.Setenv(envXMLSecret, "s3cret")
	dir := t.TempDir()
	mail := filepath.Join(dir, "01-api.eml")
	require.NoError(t, os.WriteFile(mail, []byte(xmlMail), 0o600))

	out, errOut, code := runCLI(t, "explain", "--json", mail)
	require.Equal(t, 0, code, errOut)
	obj := decodeExplain(t, []byte(out))
	assert.Equal(t, true, obj["structured"])

	storeURL := "sqlite://" + filepath.Join(dir, "s.db")
	out, errOut, code = runCLI(t, "import", "--store", storeURL, dir)
	require.Equal(t, 0, code, errOut+out)
	out, errOut, code = runCLI(t, "cases", "--store", storeURL)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Invoice 42 disputed")
	assert.Contains(t, out, "billing")
}
