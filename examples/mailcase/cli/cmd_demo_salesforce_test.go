package cli

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restRow is one line of the demo's "REST calls per mail" table.
type restRow struct {
	action         string
	calls, filings int
	filed          string
}

func restRows(t *testing.T, out string) map[string]restRow {
	t.Helper()
	i := strings.Index(out, "REST calls per mail (salesforcetest)\n")
	require.GreaterOrEqual(t, i, 0, "no REST table in:\n%s", out)
	re := regexp.MustCompile(`^  mail \d+ \(([^,]+), ([^)]+)\): (\d+) REST calls?, filing (\d+)(?:: (.*))?$`)
	rows := map[string]restRow{}
	for _, line := range strings.Split(out[i:], "\n")[1:] {
		m := re.FindStringSubmatch(line)
		if m == nil {
			break
		}
		calls, _ := strconv.Atoi(m[3])
		filings, _ := strconv.Atoi(m[4])
		rows[m[1]] = restRow{action: m[2], calls: calls, filings: filings, filed: m[5]}
	}
	return rows
}

// demo --crm salesforce runs the demo against an in-process fake org and
// prints the REST calls of each mail; the outgoing loop runs on a local
// SQLite outbox paired with the CRM store.
func TestDemo_Salesforce(t *testing.T) {
	stdout, stderr, code := runCLI(t, "demo", "--crm", "salesforce")
	require.Equal(t, exitOK, code, "stderr:\n%s\nstdout:\n%s", stderr, stdout)
	assert.Contains(t, stdout, "of store salesforce (an in-process salesforcetest org at http://127.0.0.1:")

	// The pipeline decides as it does on the embedded store.
	assert.Equal(t, map[string]int{
		"fetched": 10, "filtered": 1, "auto": 2, "created": 5, "appended": 2, "recorded": 2,
		"duplicates": 0, "quarantined": 0, "errors": 0,
		"reopened": 0, "rejected": 0, "structured": 0, "deferred": 0, "retried": 0,
	}, summaryCounts(t, stdout))

	// Each mail's block lists its requests.
	b := block(t, stdout, "04-reply-in-reply-to.eml")
	assert.Contains(t, b, "result      filed on case 00001000")
	assert.Regexp(t, `rest        \d+ REST calls \(1 filing, \d+ lookup\)`, b)
	assert.Contains(t, b, "POST /services/data/v62.0/composite  (3 subrequests: GET case, GET task, POST newMail)")
	assert.Contains(t, b, "GET /services/data/v62.0/query  (SOQL on EmailMessage)")

	rows := restRows(t, stdout)
	require.Len(t, rows, 10)
	// A new mail with an attachment: the Case, the EmailMessage and the
	// file in one composite request.
	att := rows["09-html-attachment.eml"]
	assert.Equal(t, "created", att.action)
	assert.LessOrEqual(t, att.filings, 2, "new mail with attachments")
	assert.Equal(t, "POST /services/data/v62.0/composite", att.filed)
	assert.Contains(t, block(t, stdout, "09-html-attachment.eml"), "POST newCase, POST newMail, POST file0")
	// A reply: one request.
	reply := rows["04-reply-in-reply-to.eml"]
	assert.Equal(t, "appended", reply.action)
	assert.Equal(t, 1, reply.filings, "a reply")
	assert.Equal(t, "POST /services/data/v62.0/composite", reply.filed)
	for name, r := range rows {
		assert.GreaterOrEqual(t, r.calls, r.filings, name)
		t.Logf("%s: %d REST calls, %d filing", name, r.calls, r.filings)
	}

	// The outgoing loop: acknowledgement, Log Email and the reply
	// threading back, with the outbox in the paired local store.
	i := strings.Index(stdout, "Outgoing mail (through an SMTP server on 127.0.0.1:")
	require.GreaterOrEqual(t, i, 0, stdout)
	out := stdout[i:]
	assert.Contains(t, out, "1. dana@newcustomer.example writes: case 00001005 created")
	assert.Contains(t, out, "Subject     Re: About Case 00001005 :: Cannot log in")
	assert.Contains(t, out, "2. an agent answers on the case (Log Email)")
	assert.Contains(t, out, `3. her reply: case 00001005 appended (signal message-id-signed), new text "Thanks, it works!"`)
	assert.NotContains(t, out, "no outgoing mail")
	// The Log Email is an outgoing EmailMessage under our Message-ID.
	msgID := regexp.MustCompile(`(?s)2\. an agent answers.*?Message-Id  (<[^>]+>)`).FindStringSubmatch(out)
	require.NotNil(t, msgID, out)
	assert.Regexp(t, `on the case in Salesforce: EmailMessage 02s\w+, Incoming false, Status 3, MessageIdentifier `+
		regexp.QuoteMeta(msgID[1])+`, FromAddress support@ourcompany.example, ToAddress dana@newcustomer.example`, out)
}

func TestDemo_CRMFlag(t *testing.T) {
	_, stderr, code := runCLI(t, "demo", "--crm", "sugarcrm")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `demo --crm "sugarcrm": want one of embedded, salesforce, dynamics`)

	_, stderr, code = runCLI(t, "demo", "--crm", "salesforce", "--store", "mem://")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--store does not apply")

	// The default is the embedded store: no REST table.
	stdout, stderr, code := runCLI(t, "demo")
	require.Equal(t, exitOK, code, stderr)
	assert.NotContains(t, stdout, "REST calls")
}

// demo --crm salesforce --config with replies: the acknowledgements queue
// in the local outbox paired with the CRM store (a CRM store keeps none).
func TestDemo_SalesforceReplies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
	cfg := writeFile(t, dir, "c.yaml", "store: mem://\nthreading: {key_file: key, domain: ourcompany.example}\n"+
		"replies: {acknowledge: true, loop_id: emailcrm test}\nmailboxes: [{name: support, address: support@ourcompany.example}]\n")
	stdout, stderr, code := runCLI(t, "demo", "--crm", "salesforce", "--config", cfg)
	require.Equal(t, exitOK, code, "stderr:\n%s\nstdout:\n%s", stderr, stdout)
	assert.NotContains(t, stdout+stderr, "replies need a store that keeps an outbox")
	assert.Contains(t, stdout, `3. her reply: case 00001005 appended (signal message-id-signed)`)
}

// demo --crm dynamics files the sample mails into the in-process Dataverse
// fake, prints the API calls of each mail, and runs the outgoing loop with
// a local outbox.
func TestDemo_Dynamics(t *testing.T) {
	stdout, stderr, code := runCLI(t, "demo", "--crm", "dynamics")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	calls := regexp.MustCompile(`(?m)^  API calls: (\d+)$`).FindAllStringSubmatch(stdout, -1)
	require.Len(t, calls, 10, "one count per sample mail:\n%s", stdout)
	for _, c := range calls {
		n, err := strconv.Atoi(c[1])
		require.NoError(t, err)
		assert.Positive(t, n)
		assert.LessOrEqual(t, n, 10, "a mail costs a handful of calls, lookups included")
	}
	assert.Regexp(t, `case CAS-\d{5}-\w+ `, stdout, "Dataverse ticket numbers")
	assert.Contains(t, stdout, `appended (signal message-id-signed), new text "Thanks, it works!"`, "the reply threads back through the outbox paired with the CRM")
}
