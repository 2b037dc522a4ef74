package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/adapters/salesforce/salesforcetest"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

// crmFake is one CRM fake for the end-to-end tests of the local store.
type crmFake struct {
	name string
	// start starts the fake and returns the store URL naming it (its
	// credentials set in the environment) and a count of its cases.
	start func(t *testing.T) (storeURL string, cases func() int)
}

var crmFakes = []crmFake{
	{name: "salesforce", start: func(t *testing.T) (string, func() int) {
		fake := salesforcetest.New(&salesforcetest.Options{ClientID: "run-test", ClientSecret: "run-test-secret"})
		t.Cleanup(fake.Close)
		for _, f := range demoSalesforceFields {
			fake.AddField(f.obj, f.name, f.n, f.ext)
		}
		t.Setenv("SALESFORCE_CLIENT_ID", "run-test")
		t.Setenv("SALESFORCE_CLIENT_SECRET", "run-test-secret")
		u, err := url.Parse(fake.URL())
		require.NoError(t, err)
		return "salesforce://" + u.Host + "?insecure_http=1&auto_assign=FALSE&origin=Email",
			func() int { return len(fake.Records("Case")) }
	}},
	{name: "dynamics", start: func(t *testing.T) (string, func() int) {
		fake := dynamicstest.New(&dynamicstest.Options{ClientID: "run-test", ClientSecret: "run-test-secret"})
		t.Cleanup(fake.Close)
		for _, e := range []string{"incident", "email", "contact", "account"} {
			fake.AddAttribute(e, "emailcrm_data", 1048576)
		}
		fake.AddAttribute("systemuser", "firstname", 64)
		fake.AddAttribute("systemuser", "lastname", 64)
		t.Setenv("DYNAMICS_CLIENT_ID", "run-test")
		t.Setenv("DYNAMICS_CLIENT_SECRET", "run-test-secret")
		u, err := url.Parse(fake.URL())
		require.NoError(t, err)
		return "dynamics://" + u.Host + "?insecure_http=1&token_url=" + url.QueryEscape(fake.TokenURL()),
			func() int { return len(fake.Records("incidents")) }
	}},
}

func customerMail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Local store test %d\r\nMessage-ID: <local-%d@customer.example>\r\n"+
		"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nPlease help with %d.\r\n", i, i, i, i, i)
}

// run --once with a CRM store: the mails of an IMAP server are filed in the
// CRM, the acknowledgements are queued in the local store next to the
// configuration and delivered by SMTP, and the source state kept there
// makes a second run file nothing again.
func TestRunOnce_CRMWithLocalStore(t *testing.T) {
	for _, crm := range crmFakes {
		t.Run(crm.name, func(t *testing.T) {
			storeURL, cases := crm.start(t)
			imap, err := imaptest.Start(nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = imap.Close() })
			for i := range 3 {
				_, err := imap.Append("INBOX", customerMail(i))
				require.NoError(t, err)
			}
			smtp := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
			t.Setenv("MAILCASE_TEST_IMAP_PASSWORD", imap.Password)
			t.Setenv("MAILCASE_LOG_LEVEL", "error")

			dir := t.TempDir()
			ca := writeFile(t, dir, "ca.pem", string(imap.Cert.CAPEM))
			writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef")
			cfg := writeFile(t, dir, "support.yaml", fmt.Sprintf(`store: %s
threading: {key_file: key, domain: example.com}
replies: {acknowledge: true, loop_id: emailcrm test}
outgoing: {addr: %q, security: insecure}
mailboxes:
  - name: support
    address: support@example.com
    unknown_sender: create
    interval: 1m
    source:
      type: imap
      addr: %s
      username: %s
      password_env: MAILCASE_TEST_IMAP_PASSWORD
      ca_file: %s
`, storeURL, smtp.Addr, imap.Addr, imap.Username, ca))
			local := filepath.Join(dir, "support.local.db")

			stdout, stderr, code := runCLI(t, "config", "check", cfg)
			require.Equal(t, exitOK, code, stderr)
			for _, role := range []string{"outbox", "source state", "quarantine", "leases", "raw mail"} {
				assert.Contains(t, stdout, role+": local store sqlite://"+filepath.ToSlash(local))
			}
			assert.Contains(t, stdout, "cases, contacts, listing: "+crm.name+"://")

			runOnce := func() scheduler.Stats {
				t.Helper()
				stdout, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
				require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
				var st scheduler.Stats
				require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
				return st
			}
			st := runOnce()
			if !assert.EqualValues(t, 3, st.Total.Created) {
				t.Logf("%+v", st)
			}
			assert.EqualValues(t, 3, st.Total.Fetched)
			assert.EqualValues(t, 3, st.Total.Created)
			assert.Equal(t, 3, cases(), "one case per mail in the CRM")

			got := smtp.Messages()
			require.Len(t, got, 3, "one acknowledgement per new case, delivered from the local outbox")
			var to []string
			for _, m := range got {
				to = append(to, m.To...)
				msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
				require.NoError(t, err)
				assert.Equal(t, "emailcrm test", msg.Header.Get("X-Emailcrm-Loop"))
			}
			assert.ElementsMatch(t, []string{"c0@customer.example", "c1@customer.example", "c2@customer.example"}, to)

			// What the CRM does not keep is in the local SQLite file.
			_, err = os.Stat(local)
			require.NoError(t, err, "the local store is created next to the configuration")
			ls, err := openStore(t.Context(), "sqlite://"+local)
			require.NoError(t, err)
			sent, err := ls.ListOutbox(t.Context(), &driver.OutboxListOptions{Status: driver.OutboxSent})
			require.NoError(t, err)
			assert.Len(t, sent, 3)
			keys, err := ls.RawKeys(t.Context(), "", 0)
			require.NoError(t, err)
			assert.Len(t, keys, 3, "the raw mail of every filed mail is kept locally")
			state, ok, err := ls.GetState(t.Context(), "imap/support/"+imap.Username+"@"+imap.Addr+"/INBOX")
			require.NoError(t, err)
			assert.True(t, ok, "the IMAP source state is kept locally")
			assert.NotEmpty(t, state)
			require.NoError(t, ls.Close())

			// A second run: the source state says everything was read.
			st = runOnce()
			assert.EqualValues(t, 0, st.Total.Fetched)
			assert.Equal(t, 3, cases())
			assert.Len(t, smtp.Messages(), 3, "nothing sent again")

			// A new mail is the only one filed by a third run.
			_, err = imap.Append("INBOX", customerMail(3))
			require.NoError(t, err)
			st = runOnce()
			assert.EqualValues(t, 1, st.Total.Fetched)
			assert.EqualValues(t, 1, st.Total.Created)
			assert.Equal(t, 4, cases())
			assert.Len(t, smtp.Messages(), 4)

			// outbox list reads the local outbox through the same file.
			stdout, stderr, code = runCLI(t, "outbox", "list", "--status", "sent", "--config", cfg)
			require.Equal(t, exitOK, code, stderr)
			assert.Equal(t, 4, strings.Count(stdout, "acknowledgement"), stdout)
		})
	}
}

// The IMAP source state survives in the local store: with the mail kept
// unmarked on the server (a server that does not store keywords would do
// the same), only the UID watermark stops a second run from reading it.
func TestLocalStore_StateKept(t *testing.T) {
	storeURL, _ := crmFakes[0].start(t)
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "c.yaml", "store: "+storeURL+"\nlocal_store: state/local.db\nmailboxes: [{name: a}]\n")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "state"), 0o755))
	cfg, err := loadConfig(cfgPath)
	require.NoError(t, err)
	u, err := cfg.localStoreURL()
	require.NoError(t, err)
	assert.Equal(t, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "state", "local.db")), u)

	s, err := openConfigStore(t.Context(), cfg)
	require.NoError(t, err)
	assert.True(t, s.CanOutbox())
	assert.True(t, s.CanQuarantine())
	assert.True(t, s.CanLease())
	assert.True(t, s.KeepsRaw())
	assert.False(t, s.CanQueueWithFiling(), "a CRM filing and a local queue are never one transaction")
	assert.True(t, s.HasDirectory(), "the CRM's directory passes through")
	require.NoError(t, s.PutState(t.Context(), "imap/x", []byte("42")))
	require.NoError(t, s.Close())

	s, err = openConfigStore(t.Context(), cfg)
	require.NoError(t, err)
	defer s.Close()
	v, ok, err := s.GetState(t.Context(), "imap/x")
	require.NoError(t, err)
	require.True(t, ok, "state kept across opens")
	assert.Equal(t, "42", string(v))
	_, err = s.ListCases(t.Context(), &mailcase.ListOptions{Limit: 1})
	assert.NoError(t, err, "listing comes from the CRM")
}

// A store keeping every role is used alone: no local store is created.
func TestLocalStore_NotUsedForSQL(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "c.yaml", "store: sqlite://"+filepath.Join(dir, "cases.db")+"\nmailboxes: [{name: a}]\n")
	cfg, err := loadConfig(cfgPath)
	require.NoError(t, err)
	s, err := openConfigStore(t.Context(), cfg)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, "c.local.db"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	stdout, stderr, code := runCLI(t, "config", "check", cfgPath)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "outbox: sqlite://")
	assert.NotContains(t, stdout, "local store")
}

// A local store that lacks a role the CRM lacks too is refused with the
// role named.
func TestLocalStore_MustKeepTheRoles(t *testing.T) {
	storeURL, _ := crmFakes[1].start(t)
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "c.yaml", "store: "+storeURL+"\nlocal_store: "+storeURL+"\nmailboxes: [{name: a}]\n")
	cfg, err := loadConfig(cfgPath)
	require.NoError(t, err)
	_, err = openConfigStore(t.Context(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keeps no outbox")
}
