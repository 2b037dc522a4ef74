package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig_DKIM(t *testing.T) {
	cfg, err := parseConfigIn([]byte(`
dkim: {verify: true, alignment: strict, dns_timeout: 2s}
structured: {senders: [mon@ops.example.com], replay_window: 5m}
mailboxes:
  - name: support
  - name: billing
    dkim: {verify: false, max_signatures: 2}
`), t.TempDir())
	require.NoError(t, err)
	sup, bil := cfg.Mailboxes[0].plugins, cfg.Mailboxes[1].plugins
	require.NotNil(t, sup.DKIM.Verify)
	assert.True(t, *sup.DKIM.Verify)
	assert.Equal(t, "strict", sup.DKIM.Alignment)
	assert.Equal(t, 2*time.Second, sup.DKIM.DNSTimeout)
	assert.Equal(t, 5*time.Minute, sup.Structured.ReplayWindow)
	require.NotNil(t, bil.DKIM.Verify)
	assert.False(t, *bil.DKIM.Verify, "a mailbox turns DKIM off over the file-wide section")
	assert.Equal(t, "strict", bil.DKIM.Alignment, "unset keys come from the file-wide section")
	assert.Equal(t, 2, bil.DKIM.MaxSignatures)
	_, err = sup.DKIM.senderAuth([]string{"mx.example.com"})
	require.NoError(t, err)

	for _, bad := range []string{
		"dkim: {alignment: loose}\nmailboxes: [{name: a}]\n",
		"dkim: {dns_timeout: -1s}\nmailboxes: [{name: a}]\n",
		"mailboxes: [{name: a, dkim: {max_signatures: -1}}]\n",
		"structured: {replay_window: -1m}\nmailboxes: [{name: a}]\n",
	} {
		_, err := parseConfigIn([]byte(bad), t.TempDir())
		assert.Error(t, err, bad)
	}
}

// explain shows the sender authentication and its reason: a forged
// Authentication-Results field of an untrusted server authenticates
// nobody.
func TestExplain_ShowsSenderAuth(t *testing.T) {
	dir := t.TempDir()
	mail := writeFile(t, dir, "spoof.eml", "Authentication-Results: mx.evil.example; dkim=pass header.d=company.example\r\n"+
		"From: CEO <ceo@company.example>\r\nTo: support@company.example\r\nSubject: urgent\r\nMessage-ID: <sp1@company.example>\r\n\r\nPay now.\r\n")
	cfg := writeFile(t, dir, "c.yaml", "trusted_authserv_ids: [mx.company.example]\ndkim: {verify: false}\nmailboxes: [{name: support}]\n")
	out, errOut, code := runCLI(t, "explain", "--json", "--config", cfg, "--store", "mem://", mail)
	require.Equal(t, 0, code, errOut)
	obj := decodeExplain(t, []byte(out))
	outcome, _ := obj["outcome"].(map[string]any)
	auth, _ := outcome["auth"].(map[string]any)
	require.NotNil(t, auth, out)
	assert.Equal(t, false, auth["pass"])
	assert.Contains(t, auth["reason"], "no field from a trusted server")

	out, errOut, code = runCLI(t, "explain", "--config", cfg, "--store", "mem://", mail)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "not authenticated")
}
