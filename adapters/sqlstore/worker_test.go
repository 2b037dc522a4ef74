package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/filesource"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// Environment of a worker process started by TestMultiWorker.
const (
	envWorker    = "EMAILCRM_SQLSTORE_WORKER"
	envWorkerURL = "EMAILCRM_SQLSTORE_WORKER_URL"
	envWorkerDir = "EMAILCRM_SQLSTORE_WORKER_DIR"
)

// workerLeaseTTL is short so the test does not wait long for the leases
// of the killed worker.
const workerLeaseTTL = 2 * time.Second

// TestWorkerProcess is the body of one worker process of TestMultiWorker
// (the test binary re-executed); run alone it skips.
func TestWorkerProcess(t *testing.T) {
	if os.Getenv(envWorker) != "1" {
		t.Skip("helper process of TestMultiWorker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := os.Getenv(envWorkerDir)
	s, err := sqlstore.OpenURL(ctx, os.Getenv(envWorkerURL), &sqlstore.Options{Logger: quietLogger()})
	require.NoError(t, err)
	defer s.Close()
	p, err := mailcase.NewPipeline(s, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support"}, MaxConcurrency: 4, Logger: quietLogger(),
	})
	require.NoError(t, err)
	defer p.Close()
	holder := fmt.Sprintf("worker-%d", os.Getpid())
	for {
		pending, err := filepath.Glob(filepath.Join(dir, "*.eml"))
		require.NoError(t, err)
		if len(pending) == 0 {
			return
		}
		src, err := filesource.OpenDir(dir, &filesource.Options{Mailbox: "support", Logger: quietLogger()})
		require.NoError(t, err)
		ls, err := mailcase.NewLeasedSource(src, s, holder, &mailcase.LeaseOptions{TTL: workerLeaseTTL, Logger: quietLogger()})
		require.NoError(t, err)
		require.NoError(t, p.Run(ctx, ls))
		ls.Close()
		src.Close()
		time.Sleep(100 * time.Millisecond) // mails leased by others: look again
	}
}

// TestMultiWorker runs three worker processes on one database (PostgreSQL,
// then MariaDB) and one shared directory of 2,000 mails, SIGKILLs one of
// them halfway, and checks that every mail was filed exactly once.
func TestMultiWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	for _, d := range dialects[1:] {
		t.Run(d.name, func(t *testing.T) { testMultiWorker(t, d.url(t)) })
	}
}

func testMultiWorker(t *testing.T, u string) {
	const mails, workers = 2000, 3
	dir := t.TempDir()
	corpus := mailcasetest.GenerateCorpus(mails, 7)
	for i, raw := range corpus {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.eml", i)), raw, 0o644))
	}
	// Migrate once before the workers start (they would serialise on the
	// migration lock otherwise; that is tested elsewhere).
	openURL(t, u, nil).Close()

	start := time.Now()
	procs := make([]*exec.Cmd, workers)
	outs := make([]*bytes.Buffer, workers)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envWorker+"=1", envWorkerURL+"="+u, envWorkerDir+"="+dir)
		outs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		require.NoError(t, cmd.Start())
		procs[i] = cmd
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				p.Process.Kill()
				p.Wait()
			}
		}
	})
	doneDir := filepath.Join(dir, "done")
	countDone := func() int {
		ents, _ := os.ReadDir(doneDir)
		return len(ents)
	}
	// SIGKILL worker 0 once half the mails are done.
	deadline := time.Now().Add(90 * time.Second)
	for countDone() < mails/2 {
		require.True(t, time.Now().Before(deadline), "workers too slow: %d done", countDone())
		time.Sleep(20 * time.Millisecond)
	}
	killedAt := countDone()
	require.NoError(t, procs[0].Process.Signal(syscall.SIGKILL))
	_ = procs[0].Wait()
	t.Logf("killed worker 0 (pid %d) with SIGKILL after %d of %d mails", procs[0].Process.Pid, killedAt, mails)
	for i, p := range procs[1:] {
		err := p.Wait()
		require.NoError(t, err, "worker %d:\n%s", i+1, outs[i+1])
	}
	elapsed := time.Since(start)

	// Every file is acknowledged (moved to done/ or quarantine/).
	left, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	assert.Empty(t, left, "mails left unacknowledged")
	quarantined, _ := os.ReadDir(filepath.Join(dir, "quarantine"))

	// Every mail is in the database exactly once.
	s := openURL(t, u, nil)
	ctx := t.Context()
	lost := 0
	keys := map[string]bool{}
	for i, raw := range corpus {
		m, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err, "mail %d", i)
		key := mailcase.IdempotencyKey("support", m)
		keys[key] = true
		if _, ok, err := s.LookupProcessed(ctx, key); err != nil || !ok {
			lost++
			t.Errorf("mail %d (%s) was not filed (err %v)", i, m.ID, err)
		}
	}
	db, _ := rawDB(t, u)
	var dups, filed, processed int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT idem_key FROM interactions
 WHERE kind = 'email' GROUP BY idem_key HAVING COUNT(*) > 1) d`).Scan(&dups))
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT idem_key) FROM interactions WHERE kind = 'email'`).Scan(&filed))
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM processed`).Scan(&processed))
	var leftLeases int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM leases`).Scan(&leftLeases))
	assert.Zero(t, dups, "mails filed twice")
	assert.Zero(t, lost, "mails lost")
	assert.Empty(t, quarantined, "mails quarantined")
	t.Logf("%d mails (%d distinct keys), %d workers, 1 SIGKILL at %d done: %d processed keys, %d distinct mails filed, %d duplicates, %d lost, %d quarantined, %d stale leases of the dead worker; %v (%.0f mails/s)",
		mails, len(keys), workers, killedAt, processed, filed, dups, lost, len(quarantined), leftLeases, elapsed.Round(time.Millisecond), float64(mails)/elapsed.Seconds())
	for i := 1; i < workers; i++ {
		if strings.Contains(outs[i].String(), "FAIL") {
			t.Errorf("worker %d output:\n%s", i, outs[i])
		}
	}
}
