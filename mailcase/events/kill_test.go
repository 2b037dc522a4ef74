package events_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
)

const (
	childEnvDB  = "EMAILCRM_EVENTS_CHILD_DB"
	childEnvURL = "EMAILCRM_EVENTS_CHILD_URL"
)

// TestKillChild is the delivering process of
// TestWebhook_NothingLostAcrossKill; it runs only as that test's child.
func TestKillChild(t *testing.T) {
	db, u := os.Getenv(childEnvDB), os.Getenv(childEnvURL)
	if db == "" {
		t.Skip("child process of TestWebhook_NothingLostAcrossKill")
	}
	ctx := context.Background()
	s, err := sqlstore.OpenURL(ctx, "sqlite://"+db, &sqlstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	hook := &events.Webhook{Name: "crm", URL: u, Secret: testSecret, Timeout: 30 * time.Second}
	d, err := events.NewDeliverer(s, []events.Sink{hook}, &events.DelivererOptions{
		Batch: 10, Parallel: 4, ClaimTTL: time.Second, BackoffMin: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, err := d.RunOnce(ctx)
		require.NoError(t, err)
		open := 0
		for _, st := range []driver.DeliveryStatus{driver.DeliveryPending, driver.DeliveryDelivering} {
			ds, err := s.ListDeliveries(ctx, &driver.DeliveryListOptions{Status: st})
			require.NoError(t, err)
			open += len(ds)
		}
		if open == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("deliveries still open after 60s")
}

// TestWebhook_NothingLostAcrossKill records events in an SQLite log, lets
// a child process deliver them, kills it with SIGKILL while a delivery is
// in flight (the receiver holds the request), and restarts it: every event
// arrives at least once, and the event in flight at the kill arrives again
// with the same idempotency key.
func TestWebhook_NothingLostAcrossKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	if os.Getenv(childEnvDB) != "" {
		t.Skip("in the child")
	}
	ctx := t.Context()
	dbPath := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlstore.OpenURL(ctx, "sqlite://"+dbPath, &sqlstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	const n = 60
	const killAt = 15
	rc := newReceiver(t, nil)
	hook := rc.webhook("crm")
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{hook}})
	require.NoError(t, err)
	ids := map[string]bool{}
	for i := range n {
		e, err := rec.Record(ctx, events.CaseCreated, driver.CaseID(strconv.Itoa(i)), map[string]any{"mailbox": "m", "message_id": strconv.Itoa(i) + "@x"})
		require.NoError(t, err)
		ids[e.ID] = true
	}
	require.NoError(t, s.Close())

	inFlight := make(chan string, 1)
	release := make(chan struct{})
	var once sync.Once
	rc.setAnswer(func(k int, w http.ResponseWriter, r *http.Request) {
		if k == killAt {
			once.Do(func() { inFlight <- r.Header.Get(events.IdempotencyHeader) })
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	child := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnvDB+"="+dbPath, childEnvURL+"="+rc.srv.URL+"/hook")
		out := &logBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("child output:\n%s", out.String())
			}
		})
		require.NoError(t, cmd.Start())
		return cmd
	}
	first := child()
	var killedKey string
	select {
	case killedKey = <-inFlight:
	case <-time.After(60 * time.Second):
		t.Fatal("the child never reached the delivery to kill it at")
	}
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	err = first.Wait()
	require.Error(t, err, "the child was killed")
	close(release)

	second := child()
	require.NoError(t, second.Wait(), "the restarted child delivers the rest")

	got := map[string]int{}
	for _, r := range rc.requests() {
		got[r.header.Get(events.IdempotencyHeader)]++
	}
	for id := range ids {
		assert.GreaterOrEqual(t, got[id], 1, "event %s never delivered", id)
	}
	assert.GreaterOrEqual(t, got[killedKey], 2, "the delivery in flight at the kill is sent again with the same key")
	assert.Len(t, got, n, "no key other than the events' IDs")

	s, err = sqlstore.OpenURL(ctx, "sqlite://"+dbPath, &sqlstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	ds, err := s.ListDeliveries(ctx, nil)
	require.NoError(t, err)
	require.Len(t, ds, n)
	for _, d := range ds {
		assert.Equal(t, driver.DeliveryDelivered, d.Status)
	}
}
