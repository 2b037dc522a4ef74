package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

func crashMail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Crash test mail %d\r\nMessage-ID: <crash-%d@customer.example>\r\n\r\nBody %d.\r\n", i%37, i%37, i, i, i)
}

// poisonMail can never be filed: it is over the mailbox's size limit,
// which refuses oversized mail (reject_oversized).
func poisonMail(i int) []byte {
	return fmt.Appendf(nil, "From: Spammer <s@spam.example>\r\nSubject: Poison %d\r\nMessage-ID: <poison-%d@spam.example>\r\n\r\n%s\r\n",
		i, i, strings.Repeat("poison ", 1000))
}

// imapConfig writes a configuration reading srv's INBOX into the SQLite
// database db, deleting filed mail and moving failed mail to Quarantine.
func imapConfig(t *testing.T, dir string, srv *imaptest.Server, db, interval string, batch int) string {
	t.Helper()
	ca := writeFile(t, dir, "ca.pem", string(srv.Cert.CAPEM))
	return writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
mailboxes:
  - name: support
    address: support@example.com
    interval: %s
    max_size: 4000
    reject_oversized: true
    source:
      type: imap
      addr: %s
      username: %s
      password_env: MAILCASE_TEST_IMAP_PASSWORD
      ca_file: %s
      after: {kind: delete}
      quarantine_folder: Quarantine
      batch_size: %d
      retry_delay: 100ms
`, db, interval, srv.Addr, srv.Username, ca, batch))
}

func mailcaseCmd(t *testing.T, bin string, srv *imaptest.Server, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MAILCASE_LOG_LEVEL=error", "MAILCASE_TEST_IMAP_PASSWORD="+srv.Password)
	return cmd
}

type filedCounts struct {
	perSubject  map[string]int
	quarantined int
}

func countFiled(t *testing.T, db string) filedCounts {
	t.Helper()
	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	defer store.Close()
	cases, err := store.ListCases(t.Context(), &mailcase.ListOptions{Limit: 100000})
	require.NoError(t, err)
	fc := filedCounts{perSubject: map[string]int{}}
	for _, c := range cases {
		fc.perSubject[c.Subject]++
	}
	q, err := store.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	fc.quarantined = len(q)
	return fc
}

func TestRunOnceIMAP(t *testing.T) {
	bin := buildBinary(t)
	srv, err := imaptest.Start(&imaptest.Options{Folders: []string{"Quarantine"}})
	require.NoError(t, err)
	defer srv.Close()
	for i := range 20 {
		_, err := srv.Append("INBOX", crashMail(i))
		require.NoError(t, err)
	}
	_, err = srv.Append("INBOX", poisonMail(0))
	require.NoError(t, err)
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	cfg := imapConfig(t, dir, srv, db, "1m", 25)

	cmd := mailcaseCmd(t, bin, srv, "run", "--config", cfg, "--once")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "stderr: %s", errb.String())
	var st scheduler.Stats
	require.NoError(t, json.Unmarshal(out.Bytes(), &st), out.String())
	assert.EqualValues(t, 21, st.Total.Fetched)
	assert.EqualValues(t, 20, st.Total.Created)
	assert.EqualValues(t, 1, st.Total.Quarantined)

	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n, "filed mail deleted after commit")
	q, err := srv.Messages("Quarantine")
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, poisonMail(0), q[0].Raw)
}

// TestCrashSafety ingests 1,000 mails from an IMAP server in this process
// with `mailcase run` workers killed (SIGKILL) at random points and
// restarted; at the end every mail is filed exactly once and the server
// holds only the quarantined mail.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a worker 50 times; skipped with -short")
	}
	const (
		mails   = 1000
		poisons = 5
		kills   = 50
	)
	bin := buildBinary(t)
	srv, err := imaptest.Start(&imaptest.Options{Folders: []string{"Quarantine"}})
	require.NoError(t, err)
	defer srv.Close()
	// Mail is added as the workers go (at most 60 waiting), so that each
	// worker is killed while it fetches, files and acknowledges mail.
	next := 0
	add := func(n int) {
		for ; n > 0 && next < mails; n-- {
			_, err := srv.Append("INBOX", crashMail(next))
			require.NoError(t, err)
			if next%(mails/poisons) == mails/poisons/2 {
				_, err := srv.Append("INBOX", poisonMail(next))
				require.NoError(t, err)
			}
			next++
		}
	}
	inbox := func() int {
		n, err := srv.Count("INBOX")
		require.NoError(t, err)
		return n
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	cfg := imapConfig(t, dir, srv, db, "50ms", 8)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))

	start := time.Now()
	killed, busy := 0, 0
	for busy < kills && killed < 4*kills {
		if n := inbox(); n < 30 {
			add(60 - n)
		}
		if next == mails && inbox() == 0 {
			break
		}
		before := inbox()
		cmd := mailcaseCmd(t, bin, srv, "run", "--config", cfg)
		require.NoError(t, cmd.Start())
		// Kill at a random point once the worker has started deleting
		// filed mail (or after a random delay).
		deadline := time.Now().Add(time.Duration(50+rng.IntN(1000)) * time.Millisecond)
		for time.Now().Before(deadline) && inbox() >= before {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(8)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		killed++
		if inbox() > 0 {
			busy++
		}
	}
	add(mails)
	left := inbox()
	require.Equal(t, mails, next)
	t.Logf("after %d kills (%d with mail still on the server) in %v: %d mails left", killed, busy, time.Since(start).Round(time.Millisecond), left)

	// A last worker, stopped cleanly once the mailbox is drained.
	cmd := mailcaseCmd(t, bin, srv, "run", "--config", cfg)
	cmd.Env = append(cmd.Env, "MAILCASE_LOG_LEVEL=info")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	drained := assert.Eventually(t, func() bool {
		n, err := srv.Count("INBOX")
		return err == nil && n == 0
	}, 2*time.Minute, 50*time.Millisecond, "mailbox not drained")
	if !drained {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log := errb.String()
		t.Fatalf("last worker's log (end):\n%s", log[max(0, len(log)-6000):])
	}
	time.Sleep(200 * time.Millisecond) // let the last acknowledgement land
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "stderr: %s", errb.String())

	fc := countFiled(t, db)
	lost, dup := 0, 0
	for i := range mails {
		switch n := fc.perSubject[fmt.Sprintf("Crash test mail %d", i)]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	q, err := srv.Messages("Quarantine")
	require.NoError(t, err)
	remaining := inbox()
	t.Logf("crash safety: mails=%d poison=%d kills=%d (%d with mail pending) lost=%d duplicated=%d quarantined(store)=%d quarantined(server)=%d inbox=%d duration=%v",
		mails, poisons, killed, busy, lost, dup, fc.quarantined, len(q), remaining, time.Since(start).Round(time.Millisecond))
	assert.Zero(t, lost, "lost mails")
	assert.Zero(t, dup, "duplicated mails")
	assert.Len(t, fc.perSubject, mails)
	assert.Zero(t, remaining)
	assert.GreaterOrEqual(t, busy, kills, "kills while mail was being processed")
	assert.Len(t, q, poisons, "the server keeps exactly the mail never filed")
	for _, m := range q {
		assert.True(t, strings.HasPrefix(string(m.Raw), "From: Spammer"), string(m.Raw))
		assert.Greater(t, len(m.Raw), 7000, "the body was never removed")
	}
	assert.GreaterOrEqual(t, fc.quarantined, poisons)
}
