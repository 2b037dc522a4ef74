package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/examples/mailcase/cli"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// theirCRM is a company's own driver, registered by the test binary under
// the scheme "theircrm" as a company's main would by a blank import. Its
// cases live in the CRM, not in the process: every store opened from a URL
// shares them, and closing a store leaves them there.
type theirCRM struct {
	mu     sync.Mutex
	opened []string // the URLs the commands opened
	cases  driver.CaseStore
}

// crmDriver is the driver of one opened store: the shared cases, with a
// Close that leaves them in the CRM.
type crmDriver struct{ driver.CaseStore }

func (crmDriver) Close() error { return nil }

func (c *theirCRM) OpenStoreURL(_ context.Context, u *url.URL) (*mailcase.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = append(c.opened, u.String())
	return mailcase.NewStore(crmDriver{c.cases}, nil), nil
}

var crm = func() *theirCRM {
	backing, err := memstore.OpenStore(nil)
	if err != nil {
		panic(err)
	}
	c := &theirCRM{cases: backing.Driver()}
	mailcase.DefaultURLMux().RegisterStore("theircrm", c)
	return c
}()

// TestMain_ThirdPartyDriver runs the commands through the package's entry
// point, as a company's five-line main does, against --store theircrm://:
// import files into the company's driver and explain finds the mail there.
func TestMain_ThirdPartyDriver(t *testing.T) {
	// The company's driver keeps no outbox, quarantine or source state:
	// import pairs it with mailcase-local.db in the working directory.
	work := t.TempDir()
	t.Chdir(work)
	dir := t.TempDir()
	mail := "From: Ann <ann@customer.example>\r\nTo: support@company.example\r\nSubject: Printer on fire\r\n" +
		"Message-ID: <fire-1@customer.example>\r\n\r\nHelp!\r\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "01.eml"), []byte(mail), 0o600))

	var out, errb bytes.Buffer
	code := cli.Run(t.Context(), []string{"import", "--quiet", "--log-level", "error", "--store", "theircrm://crm.example/support", dir},
		&cli.Options{Stdout: &out, Stderr: &errb})
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	assert.Contains(t, out.String(), "into theircrm://crm.example/support")
	assert.Regexp(t, `created\s+1\n`, out.String())
	_, err := os.Stat(filepath.Join(work, "mailcase-local.db"))
	assert.NoError(t, err, "the local store of the roles the driver lacks")

	out.Reset()
	errb.Reset()
	// explain against the same CRM: the mail is filed there already.
	code = cli.Run(t.Context(), []string{"explain", "--json", "--store", "theircrm://crm.example/support", filepath.Join(dir, "01.eml")},
		&cli.Options{Stdout: &out, Stderr: &errb})
	require.Equal(t, 0, code, "stderr:\n%s", errb.String())
	var explained struct {
		Outcome struct {
			Action string `json:"action"`
		} `json:"outcome"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &explained), "%s", out.String())
	assert.Equal(t, "duplicate", explained.Outcome.Action)

	crm.mu.Lock()
	defer crm.mu.Unlock()
	n := 0
	for _, u := range crm.opened {
		if u == "theircrm://crm.example/support" {
			n++
		}
	}
	assert.Equal(t, 2, n, "import and explain opened the company's store: %v", crm.opened)
}

// TestRun_Streams checks that Run writes to the streams of its options.
func TestRun_Streams(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, cli.Run(t.Context(), []string{"help"}, &cli.Options{Stdout: &out, Stderr: &errb}))
	assert.Contains(t, out.String(), "Commands:")
	assert.Empty(t, errb.String())

	out.Reset()
	assert.Equal(t, 2, cli.Run(t.Context(), []string{"nosuch"}, &cli.Options{Stdout: &out, Stderr: &errb}))
	assert.Contains(t, errb.String(), `unknown command "nosuch"`)
	assert.Empty(t, out.String())
}

// TestRun_Stdin files a mail read from Options.Stdin with pipe.
func TestRun_Stdin(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("store: theircrm://crm.example/pipe\nmailboxes: [{name: support}]\n"), 0o600))
	var out, errb bytes.Buffer
	stdin := bytes.NewBufferString("From: bob@customer.example\r\nSubject: Pipe me\r\nMessage-ID: <pipe-1@customer.example>\r\n\r\nhi\r\n")
	code := cli.Run(t.Context(), []string{"pipe", "-v", "--log-level", "error", "--config", cfg},
		&cli.Options{Stdin: stdin, Stdout: &out, Stderr: &errb})
	require.Equal(t, 0, code, "stderr:\n%s", errb.String())
	assert.Contains(t, out.String(), "created")
	_, err := os.Stat(filepath.Join(filepath.Dir(cfg), "c.local.db"))
	assert.NoError(t, err, "the local store of the roles the driver lacks, next to the configuration")
}

// TestMain_ThirdPartyDriverEntry goes through Main itself (the process's
// streams and signals, as the five-line main calls it): the import lands
// in the company's driver.
func TestMain_ThirdPartyDriverEntry(t *testing.T) {
	t.Chdir(t.TempDir()) // the local store of the driver's missing roles
	dir := t.TempDir()
	mail := "From: Dan <dan@customer.example>\r\nTo: support@company.example\r\nSubject: Through Main\r\n" +
		"Message-ID: <main-1@customer.example>\r\n\r\nHello.\r\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "01.eml"), []byte(mail), 0o600))
	const url = "theircrm://crm.example/main"
	code := cli.Main(t.Context(), []string{"import", "--quiet", "--log-level", "error", "--store", url, dir})
	require.Equal(t, 0, code)
	crm.mu.Lock()
	assert.Contains(t, crm.opened, url)
	crm.mu.Unlock()

	var out, errb bytes.Buffer
	code = cli.Run(t.Context(), []string{"explain", "--json", "--store", url, filepath.Join(dir, "01.eml")},
		&cli.Options{Stdout: &out, Stderr: &errb})
	require.Equal(t, 0, code, "stderr:\n%s", errb.String())
	assert.Contains(t, out.String(), `"action": "duplicate"`, "Main filed the mail in the company's driver")
}
