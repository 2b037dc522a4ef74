package cli

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// summaryCounts reads the "Summary" block of demo or import output.
func summaryCounts(t *testing.T, out string) map[string]int {
	t.Helper()
	i := strings.Index(out, "Summary\n")
	require.GreaterOrEqual(t, i, 0, "no summary in output:\n%s", out)
	counts := map[string]int{}
	re := regexp.MustCompile(`^  ([a-z]+)\s+(\d+)$`)
	for _, line := range strings.Split(out[i+len("Summary\n"):], "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			break
		}
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		counts[m[1]] = n
	}
	return counts
}

// block returns the demo's output block of one sample mail.
func block(t *testing.T, out, name string) string {
	t.Helper()
	i := strings.Index(out, name+"\n")
	require.GreaterOrEqual(t, i, 0, "no block for %s in:\n%s", name, out)
	rest := out[i:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func TestDemo(t *testing.T) {
	stdout, stderr, code := runCLI(t, "demo")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)

	mails, err := loadDemoMails()
	require.NoError(t, err)
	require.Len(t, mails, 10)
	for _, m := range mails {
		assert.Contains(t, stdout, m.name)
	}

	assert.Contains(t, stdout, "account   Northwind Traders")
	assert.Contains(t, stdout, "employee  Jamie Doe")

	tests := []struct {
		file string
		want []string
	}{
		{file: "01-invoice-contact.eml", want: []string{"sender      contact Anna Berg", ", account Northwind Traders", "result      created case"}},
		{file: "02-account-domain.eml", want: []string{"sender      account Northwind Traders", "result      created case"}},
		{file: "03-unknown-sender.eml", want: []string{"sender      unknown m.okafor@mailbox.example", "result      created case"}},
		{file: "04-reply-in-reply-to.eml", want: []string{"thread      continues case", "result      filed on case"}},
		{file: "05-out-of-office.eml", want: []string{"auto        auto-reply", "result      recorded on the sender's record"}},
		{file: "06-bounce.eml", want: []string{"bounce      delivery status notification, original case-00042-reply-3@ourcompany.example", "status 5.1.1"}},
		{file: "07-employee-reply.eml", want: []string{"sender      employee Jamie Doe", "result      filed on case"}},
		{file: "08-mailing-list.eml", want: []string{"filter      dropped by", "news@vendor.example", "result      filtered"}},
		{file: "09-html-attachment.eml", want: []string{"sender      contact Carlos Mendes", "result      created case"}},
		{file: "10-encoded-subject.eml", want: []string{"subject     Lieferung beschädigt – Bestellung 55123", "from        Jürgen Weiß <j.weiss@contoso.example>"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b := block(t, stdout, tc.file)
			for _, w := range tc.want {
				assert.Contains(t, b, w)
			}
		})
	}

	// The reply and the employee's answer land on the invoice case.
	first := regexp.MustCompile(`result      created case (\S+)`).FindStringSubmatch(block(t, stdout, "01-invoice-contact.eml"))
	require.NotNil(t, first)
	assert.Contains(t, block(t, stdout, "04-reply-in-reply-to.eml"), "filed on case "+first[1])
	assert.Contains(t, block(t, stdout, "07-employee-reply.eml"), "filed on case "+first[1])

	counts := summaryCounts(t, stdout)
	assert.Equal(t, map[string]int{
		"fetched": 10, "filtered": 1, "auto": 2, "created": 5, "appended": 2, "recorded": 2,
		"duplicates": 0, "quarantined": 0, "errors": 0,
		// Every counter is printed, zero or not (issue 10 item 10).
		"reopened": 0, "rejected": 0, "structured": 0, "deferred": 0, "retried": 0,
	}, counts)

	// The case listing shows every Message-ID filed on the invoice case.
	assert.Contains(t, stdout, "Cases in the store")
	for _, id := range []string{
		"CAF1n0rth-20261116-0912.anna@northwind.example",
		"CAF1n0rth-20261116-1430.anna@northwind.example",
		"jd-20261116-1605@ourcompany.example",
	} {
		assert.Contains(t, stdout, "<- "+id)
	}
}

func TestSeedDemoDirectory_Idempotent(t *testing.T) {
	store, err := openStore(t.Context(), "mem://")
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })

	first, err := seedDemoDirectory(t.Context(), store)
	require.NoError(t, err)
	second, err := seedDemoDirectory(t.Context(), store)
	require.NoError(t, err)
	assert.Equal(t, first, second, "seeding twice must find, not create, the records")
	require.Len(t, first.Contacts, 3)
	require.Len(t, first.Accounts, 1)
	require.Len(t, first.Employees, 1)
	assert.Equal(t, first.Accounts[0].ID, first.Contacts[0].AccountID)

	cs, err := store.FindContacts(t.Context(), "anna.berg@northwind.example")
	require.NoError(t, err)
	assert.Len(t, cs, 1)
	accs, err := store.FindAccounts(t.Context(), "northwind.example")
	require.NoError(t, err)
	assert.Len(t, accs, 1)
}

func TestDemoMails_Parse(t *testing.T) {
	mails, err := loadDemoMails()
	require.NoError(t, err)
	for _, m := range mails {
		t.Run(m.name, func(t *testing.T) {
			msg, err := mailcase.ParseMessage(m.raw, nil)
			require.NoError(t, err)
			assert.False(t, msg.IDDerived, "every demo mail has a Message-ID")
			assert.NotEmpty(t, msg.Subject)
			assert.NotEmpty(t, msg.From.Email)
			assert.Empty(t, msg.Warnings())
		})
	}
}

// The demo shows the outgoing loop: the acknowledgement, an agent's Log
// Email through SMTP, and the customer's reply threading back.
func TestDemo_OutgoingLoop(t *testing.T) {
	stdout, stderr, code := runCLI(t, "demo")
	require.Equal(t, exitOK, code, stderr)
	i := strings.Index(stdout, "Outgoing mail (through an SMTP server on 127.0.0.1:")
	require.GreaterOrEqual(t, i, 0, stdout)
	out := stdout[i:]
	assert.Contains(t, out, "1. dana@newcustomer.example writes: case 1005 created")
	assert.Contains(t, out, "Auto-Submitted auto-replied")
	assert.Contains(t, out, "Subject     Re: About Case 1005 :: Cannot log in")
	assert.Contains(t, out, "2. an agent answers on the case (Log Email)")
	assert.Contains(t, out, `3. her reply: case 1005 appended (signal message-id-signed), new text "Thanks, it works!"`)
}
