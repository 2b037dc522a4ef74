package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
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
//
// The kill points are events, not delays, so that the test does the same
// under any load: a worker is killed while the server holds it inside a
// command, with its pipeline filing and acknowledging mail meanwhile.
// Most are held in their k-th after-commit command (STORE, EXPUNGE or
// MOVE; k from 1 to 4), so once they have filed mail and are deleting
// it; one in five in its n-th fetch (the scan, a size or a mail; n from 1
// to 24), before it deletes anything. k, n and the kind of kill come from
// a fixed seed. The held command is then carried out, as by a server
// that received it just before the crash. A worker thus deletes at most a
// few groups of mail per life: kills after wall-clock delays let a fast or
// a starved worker delete so many that the mail ran out before the kills
// did, and made a loaded machine kill workers before they did anything.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a worker 50 times; skipped with -short")
	}
	const (
		mails     = 1000
		poisons   = 5
		kills     = 50
		maxFetch  = 24 // an early kill holds one of the worker's first fetches
		maxAction = 4  // a late kill holds one of its first after-commit commands
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
	// The server holds the worker inside its killAt-th command until
	// released.
	var (
		holdMu  sync.Mutex
		early   bool // count fetches, else after-commit commands
		cmds    int
		killAt  int // 0: never hold
		held    chan struct{}
		release chan struct{}
	)
	srv.SetFault(func(op, arg string) error {
		holdMu.Lock()
		switch op {
		case "FETCH":
			if early {
				cmds++
			}
		case "STORE", "EXPUNGE", "MOVE":
			if !early {
				cmds++
			}
		default:
			holdMu.Unlock()
			return nil
		}
		hit := killAt > 0 && cmds == killAt
		h, r := held, release
		holdMu.Unlock()
		if hit {
			close(h)
			<-r
		}
		return nil
	})
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	// One mail per fetch, so after-commit groups of ten: the first
	// deletions come while most of the waiting mail is still to be filed.
	cfg := imapConfig(t, dir, srv, db, "50ms", 1)
	rng := rand.New(rand.NewPCG(1, 2))

	start := time.Now()
	killed, busy := 0, 0
	for busy < kills && killed < 4*kills {
		if n := inbox(); n < 30 {
			add(60 - n)
		}
		if next == mails && inbox() == 0 {
			break
		}
		h, r := make(chan struct{}), make(chan struct{})
		holdMu.Lock()
		early = rng.IntN(5) == 0
		cmds, killAt, held, release = 0, 1+rng.IntN(maxAction), h, r
		if early {
			killAt = 1 + rng.IntN(maxFetch)
		}
		holdMu.Unlock()
		cmd := mailcaseCmd(t, bin, srv, "run", "--config", cfg)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		tick := time.NewTicker(20 * time.Millisecond)
		stuck := time.NewTimer(5 * time.Minute) // a hang, not a slow machine
	wait:
		for {
			select {
			case <-h:
				break wait
			case err := <-exited:
				close(r)
				t.Fatalf("worker %d exited by itself (%v): %s", killed, err, errb.String())
			case <-tick.C:
				// Keep mail coming, so that the worker reaches its kill
				// point however fast it files.
				if n := inbox(); n < 30 {
					add(60 - n)
				}
			case <-stuck.C:
				require.NoError(t, cmd.Process.Kill())
				<-exited
				close(r)
				t.Fatalf("worker %d never reached its kill point: %s", killed, errb.String())
			}
		}
		tick.Stop()
		stuck.Stop()
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		<-exited
		holdMu.Lock()
		killAt = 0
		holdMu.Unlock()
		close(r) // the held command is carried out
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
	// A generous bound: under load the drain only takes longer.
	drained := assert.Eventually(t, func() bool {
		n, err := srv.Count("INBOX")
		return err == nil && n == 0
	}, 5*time.Minute, 50*time.Millisecond, "mailbox not drained")
	if !drained {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log := errb.String()
		t.Fatalf("last worker's log (end):\n%s", log[max(0, len(log)-6000):])
	}
	// An empty INBOX means every mail was acknowledged after its commit
	// (filed mail is deleted after it, poison moved after its quarantine
	// record): nothing is left to wait for.
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

// run --once files the mails of one conversation one after the other in
// UID order while it files many at once: the same mailbox drained with
// concurrency 1 and with the default gives the same cases (case numbers
// aside), each case's mails in the same order.
func TestRunOnceIMAP_ConcurrentGivesTheSameCases(t *testing.T) {
	// The generated corpus, and conversations whose mails follow one
	// another in the folder (a reply filed before its parent would be
	// filed out of order, or open a case of its own).
	corpus := mailcasetest.GenerateCorpus(200, 11)
	for k := range 30 {
		for i := range 5 {
			h := fmt.Sprintf("From: Customer %d <t%d@customer.example>\r\nTo: support@example.com\r\nSubject: Thread %d\r\nMessage-ID: <t%d.%d@customer.example>\r\n", k, k, k, k, i)
			if i > 0 {
				h = strings.Replace(h, "Subject: ", "Subject: Re: ", 1)
				h += fmt.Sprintf("In-Reply-To: <t%d.%d@customer.example>\r\nReferences: <t%d.0@customer.example> <t%d.%d@customer.example>\r\n", k, i-1, k, k, i-1)
			}
			corpus = append(corpus, fmt.Appendf(nil, "%s\r\nMessage %d of thread %d.\r\n%s\r\n", h, i, k, strings.Repeat("Some more words of the mail. ", 200)))
		}
	}
	cases := func(concurrency int) []string {
		srv, err := imaptest.Start(&imaptest.Options{Folders: []string{"Quarantine"}})
		require.NoError(t, err)
		defer srv.Close()
		for _, raw := range corpus {
			_, err := srv.Append("INBOX", raw)
			require.NoError(t, err)
		}
		t.Setenv("MAILCASE_TEST_IMAP_PASSWORD", srv.Password)
		dir := t.TempDir()
		db := filepath.Join(dir, "cases.db")
		ca := writeFile(t, dir, "ca.pem", string(srv.Cert.CAPEM))
		cfg := writeFile(t, dir, "run.yaml", fmt.Sprintf(`store: sqlite://%s
mailboxes:
  - name: support
    address: support@example.com
    interval: 1m
    concurrency: %d
    source:
      type: imap
      addr: %s
      username: %s
      password_env: MAILCASE_TEST_IMAP_PASSWORD
      ca_file: %s
      after: {kind: delete}
      quarantine_folder: Quarantine
      batch_size: 7
`, db, concurrency, srv.Addr, srv.Username, ca))
		stdout, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
		require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		var st scheduler.Stats
		require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
		require.EqualValues(t, len(corpus), st.Total.Fetched)
		require.Zero(t, st.Total.Errors)
		n, err := srv.Count("INBOX")
		require.NoError(t, err)
		require.Zero(t, n, "filed mail deleted after commit")
		stdout, stderr, code = runCLI(t, "cases", "--json", "--store", "sqlite://"+db)
		require.Equal(t, exitOK, code, stderr)
		var arr []caseJSON
		require.NoError(t, json.Unmarshal([]byte(stdout), &arr))
		var out []string
		for _, c := range arr {
			ids := make([]string, 0, len(c.Mails))
			for _, m := range c.Mails {
				ids = append(ids, m.MessageID) // oldest first: the order they were filed
			}
			out = append(out, c.Subject+" | "+string(c.Status)+" | "+strings.Join(ids, " "))
		}
		slices.Sort(out)
		return out
	}
	seq := cases(1)
	require.Greater(t, len(seq), 20)
	conc := cases(0)
	assert.Equal(t, seq, conc, "default concurrency")
	var want, threads []string
	for k := range 30 {
		var ids []string
		for i := range 5 {
			ids = append(ids, fmt.Sprintf("t%d.%d@customer.example", k, i))
		}
		want = append(want, fmt.Sprintf("Thread %d | new | %s", k, strings.Join(ids, " ")))
	}
	for _, c := range conc {
		if strings.Contains(c, "Thread ") {
			threads = append(threads, c)
		}
	}
	slices.Sort(want)
	assert.Equal(t, want, threads, "one case per conversation, its mails in order")
}
