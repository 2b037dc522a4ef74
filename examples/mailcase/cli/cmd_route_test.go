package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// demoRules routes the demo mails by keywords, sender domain and support
// level.
const demoRules = `queues: [support, billing, technical, shipping, accounts, sales]
senders:
  - domain: northwind.example
    priority: high
customers:
  - support_level: gold
    category: gold-customer
keywords:
  threshold: 2
  sets:
    - queue: billing
      words: [invoice, refund*, "credit card", charged]
    - queue: technical
      words: [error, crash*, bug, scanner]
    - queue: shipping
      words: [lieferung, beschädigt, delivery, parcel]
    - queue: accounts
      words: [login, "log in", password]
    - queue: sales
      words: [pricing, seats, quote]
`

func writeRules(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestRouteCommand(t *testing.T) {
	rules := writeRules(t, demoRules)
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"route", "--rules", rules,
		"demo/01-invoice-contact.eml", "demo/02-account-domain.eml", "demo/03-unknown-sender.eml", "demo/10-encoded-subject.eml"}, &out, &errb)
	require.Equal(t, exitOK, code, "stderr: %s", errb.String())
	text := out.String()
	for _, want := range []string{
		"demo/01-invoice-contact.eml\n  from        anna.berg@northwind.example\n  queue       billing by keywords:billing\n  priority    high\n",
		"demo/02-account-domain.eml\n  from        peter.lund@northwind.example\n  queue       accounts by keywords:accounts\n  priority    high\n  category    gold-customer\n",
		"  fired       domain:northwind.example, customer:gold, keywords:accounts\n",
		"demo/03-unknown-sender.eml\n  from        m.okafor@mailbox.example\n  queue       sales by keywords:sales\n",
		"demo/10-encoded-subject.eml\n  from        j.weiss@contoso.example\n  queue       shipping by keywords:shipping\n",
		"\nqueues: accounts 1, billing 1, sales 1, shipping 1\n",
	} {
		assert.Contains(t, text, want)
	}

	out.Reset()
	code = run(t.Context(), []string{"route", "--json", "--rules", rules, "demo/03-unknown-sender.eml"}, &out, &errb)
	require.Equal(t, exitOK, code)
	var res []routeResultJSON
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.Len(t, res, 1)
	assert.Equal(t, "sales", res[0].Route.Queue)
	assert.Equal(t, "keywords:sales", res[0].Route.Rule)
	assert.Equal(t, "sales", res[0].Route.Scores[0].Queue)
	assert.Equal(t, []string{"keywords:sales"}, res[0].Route.Fired)
}

func TestRouteCommand_Directory(t *testing.T) {
	rules := writeRules(t, demoRules)
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"route", "--rules", rules, "--default-queue", "support", "demo"}, &out, &errb)
	require.Equal(t, exitOK, code, "stderr: %s", errb.String())
	mails, err := filepath.Glob("demo/*.eml")
	require.NoError(t, err)
	assert.Equal(t, len(mails), strings.Count(out.String(), "  queue       "), "one decision per demo mail")
	assert.Contains(t, out.String(), "demo/08-mailing-list.eml\n")
}

func TestRouteCommand_Errors(t *testing.T) {
	rules := writeRules(t, demoRules)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "no rules", args: []string{"route", "demo/01-invoice-contact.eml"}, code: exitUsage,
			stderr: "route needs --rules FILE"},
		{name: "no mails", args: []string{"route", "--rules", rules}, code: exitUsage,
			stderr: "route needs at least one mail file or directory"},
		{name: "invalid rules", args: []string{"route", "--rules", writeRules(t, "queues: [support]\nsenders:\n  - domain: x.example\n    queue: bob\n"), "demo/01-invoice-contact.eml"},
			code: exitFailure, stderr: `rules.yaml:3: rule domain:x.example: queue "bob" is not a declared queue (declared: support)`},
		{name: "unparseable mail does not stop the others", args: []string{"route", "--rules", rules, "testdata/unparseable.eml", "demo/03-unknown-sender.eml"},
			code: exitFailure, stdout: "demo/03-unknown-sender.eml\n  from        m.okafor@mailbox.example\n  queue       sales by keywords:sales\n",
			stderr: "1 of 2 mails could not be routed"},
		{name: "missing file", args: []string{"route", "--rules", rules, "nope.eml"}, code: exitFailure, stderr: "nope.eml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MAILCASE_RULES", writeRules(t, "queues: [fromenv]\n"))
			var out, errb bytes.Buffer
			code := run(t.Context(), tc.args, &out, &errb)
			assert.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", out.String(), errb.String())
			assert.Contains(t, out.String(), tc.stdout)
			assert.Contains(t, errb.String(), tc.stderr)
		})
	}
}

// rulesConfig writes a configuration file whose one mailbox is the demo's
// (the mailbox explain uses without a file) with the routing rules file
// rules (issue 11 item 6: the rules were MAILCASE_RULES).
func rulesConfig(t *testing.T, rules string) string {
	t.Helper()
	abs, err := filepath.Abs(rules)
	require.NoError(t, err)
	mb := demoMailbox()
	return writeFile(t, t.TempDir(), "mailcase.yaml", fmt.Sprintf("store: mem://\ntrusted_authserv_ids: [%s]\n"+
		"routing: {rules: %q}\nmailboxes:\n  - name: %s\n    address: %s\n    default_queue: %s\n    block_addresses: [%s]\n",
		demoAuthServID, abs, mb.Name, mb.Address, mb.DefaultQueue, strings.Join(mb.BlockAddresses, ", ")))
}

// TestExplain_Route checks that the configuration's routing.rules wires
// the router into the pipeline: explain shows its decision in text and in
// --json.
func TestExplain_Route(t *testing.T) {
	cfg := rulesConfig(t, writeRules(t, demoRules))
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"explain", "--json", "--config", cfg, "demo/01-invoice-contact.eml"}, &out, &errb)
	require.Equal(t, exitOK, code, "stderr: %s", errb.String())
	obj := decodeExplain(t, out.Bytes())
	route := obj["route"].(map[string]any)
	assert.Equal(t, "billing", route["queue"])
	assert.Equal(t, "high", route["priority"])
	assert.Equal(t, "keywords:billing", route["rule"])
	assert.Equal(t, []any{"domain:northwind.example", "keywords:billing"}, route["fired"])
	scores := route["scores"].([]any)
	assert.Equal(t, "billing", scores[0].(map[string]any)["queue"])

	out.Reset()
	code = run(t.Context(), []string{"explain", "--config", cfg, "demo/01-invoice-contact.eml"}, &out, &errb)
	require.Equal(t, exitOK, code)
	assert.Contains(t, out.String(), "queue billing, priority high, rule keywords:billing")
	assert.Contains(t, out.String(), "fired       domain:northwind.example, keywords:billing")

	missing := rulesConfig(t, filepath.Join(t.TempDir(), "missing.yaml"))
	out.Reset()
	errb.Reset()
	code = run(t.Context(), []string{"explain", "--config", missing, "demo/01-invoice-contact.eml"}, &out, &errb)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errb.String(), "routing.rules")
	assert.Contains(t, errb.String(), "missing.yaml")
}
