package imapsource

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
)

func internalDial(t *testing.T, srv *imaptest.Server, opts Options) *Source {
	t.Helper()
	opts.TLSConfig = srv.Cert.Client
	opts.BackoffMin = time.Millisecond
	src, err := Dial(t.Context(), srv.Addr, Login{Username: srv.Username, Password: srv.Password}, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

func startInternal(t *testing.T, opts *imaptest.Options, n, size int) *imaptest.Server {
	t.Helper()
	srv, err := imaptest.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	for i := range n {
		raw := fmt.Sprintf("From: c%d@customer.example\r\nSubject: Problem %d\r\nMessage-ID: <m%d@customer.example>\r\n\r\n%s\r\n",
			i, i, i, strings.Repeat("x", size))
		_, err := srv.Append("INBOX", []byte(raw))
		require.NoError(t, err)
	}
	return srv
}

// The mail fetched ahead of the pipeline (queued, or in the batch being
// fetched) stays within the byte bound, instead of one bound queued plus
// another batch of it fetched behind.
func TestFetchedAheadWithinBound(t *testing.T) {
	const size = 20 << 10
	srv := startInternal(t, nil, 20, size)
	src := internalDial(t, srv, Options{})
	src.maxAhead = 5 * size // instead of 32 MiB, with 20 KiB mails
	var peak int64
	settled := func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		peak = max(peak, src.queued)
		return !src.fetching
	}
	r, err := src.Receive(t.Context())
	require.NoError(t, err)
	require.Eventually(t, settled, 10*time.Second, time.Millisecond)
	assert.LessOrEqual(t, peak, src.maxAhead, "fetched ahead")
	src.mu.Lock()
	assert.Greater(t, len(src.queue), 1, "mail is fetched ahead")
	src.mu.Unlock()
	// Handing out more mail lets more be fetched, still within the bound.
	got := []*mailcase.Received{r}
	for range 19 {
		r, err := src.Receive(t.Context())
		require.NoError(t, err)
		got = append(got, r)
		src.mu.Lock()
		assert.LessOrEqual(t, src.queued, src.maxAhead)
		src.mu.Unlock()
	}
	assert.Len(t, got, 20)
}

// A fill that queues mail wakes a Receive waiting for new mail, whoever
// started it: here an Ack, which starts the next batch when actions are
// due and mail is left to fetch (the state a fill leaves when it ends
// without mail while UIDs are left, as a batch found gone did). Without
// IDLE, and for mail the connection already knows (no EXISTS), nothing
// else would wake the Receive before the hourly poll.
func TestFillStartedByAckWakesWaitingReceive(t *testing.T) {
	srv := startInternal(t, &imaptest.Options{NoIdle: true}, 2, 10)
	src := internalDial(t, srv, Options{After: AfterCommit{Kind: Delete}, Watch: true, PollInterval: time.Hour, BatchSize: 1})
	src.mu.Lock()
	src.skip[2] = struct{}{} // left out of the scans, for now
	src.mu.Unlock()
	r, err := src.Receive(t.Context())
	require.NoError(t, err)
	assert.Contains(t, string(r.Raw), "Subject: Problem 0")

	type result struct {
		r   *mailcase.Received
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := src.Receive(t.Context()) // nothing left: waits
		done <- result{r, err}
	}()
	require.Eventually(t, func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.waiting > 0
	}, 10*time.Second, time.Millisecond)
	src.mu.Lock()
	delete(src.skip, 2)
	src.todo = append(src.todo, meta{uid: 2, size: -1})
	src.unfinished[2] = struct{}{}
	src.mu.Unlock()
	require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, "")) // due and room: the Ack starts the fill

	select {
	case res := <-done:
		require.NoError(t, res.err)
		assert.Contains(t, string(res.r.Raw), "Subject: Problem 1")
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting Receive was not woken by the mail the Ack's fill queued")
	}
	assert.Eventually(t, func() bool {
		n, err := srv.Count("INBOX")
		return err == nil && n == 1
	}, 10*time.Second, time.Millisecond, "the Ack's action was applied by the fill")
}
