package imapsource_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
)

func subjects(rs []*mailcase.Received) []string {
	var out []string
	for _, r := range rs {
		_, rest, _ := strings.Cut(string(r.Raw), "Subject: ")
		subj, _, _ := strings.Cut(rest, "\r\n")
		out = append(out, subj)
	}
	return out
}

// Mail fetched with different fetch modes in one batch (whole, header
// only for oversized mail, a refetch with less for a header over 4 MiB) is
// handed out in UID order: a truncated original is never filed after its
// reply.
func TestUIDOrderAcrossFetchModes(t *testing.T) {
	srv := startServer(t, nil)
	oversized := func(i int) []byte {
		return append(mail(i), strings.Repeat("x", 3<<20)+"\r\n"...)
	}
	huge := []byte("From: a@b.example\r\nSubject: Problem 3\r\n")
	for len(huge) < 5<<20 {
		huge = append(huge, "X-Filler: "+strings.Repeat("h", 990)+"\r\n"...)
	}
	huge = append(huge, "\r\nbody\r\n"...)
	appendAll(t, srv, [][]byte{mail(0), oversized(1), mail(2), huge, mail(4), oversized(5), mail(6)})
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{MaxSize: 1 << 20, Reconnects: 2})
	got := receiveAll(t, src)
	assert.Equal(t, []string{"Problem 0", "Problem 1", "Problem 2", "Problem 3", "Problem 4", "Problem 5", "Problem 6"}, subjects(got))
	for i, r := range got {
		assert.Equal(t, i == 1 || i == 3 || i == 5, r.Truncated, "mail %d", i)
	}
}

// A batch found gone from the server (expunged by another client between
// the scan and the fetch) does not end the run: the next UIDs are
// fetched in the same run.
func TestGoneBatchDoesNotEndTheRun(t *testing.T) {
	srv := startServer(t, nil)
	appendAll(t, srv, mails(6))
	var once sync.Once
	srv.SetFault(func(op, arg string) error {
		if op == "FETCH" && arg == "RFC822.SIZE" {
			// The first batch (UIDs 1 and 2) goes before its sizes are read.
			once.Do(func() { require.NoError(t, srv.Expunge("INBOX", 1, 2)) })
		}
		return nil
	})
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{BatchSize: 2})
	got := receiveAll(t, src)
	assert.Equal(t, []string{"Problem 2", "Problem 3", "Problem 4", "Problem 5"}, subjects(got), "one run hands out the rest")
}

// A run that ends by a timeout ends the run: the next run hands out
// Options.MaxPerRun mails again, not what the timed-out run left of them.
func TestRunCountResetAfterTimeout(t *testing.T) {
	srv := startServer(t, nil)
	appendAll(t, srv, mails(10))
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{MaxPerRun: 3})
	for range 2 {
		_, err := src.Receive(t.Context())
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := src.Receive(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, receiveAll(t, src), 3, "a full run after the timed-out one")
	assert.Len(t, receiveAll(t, src), 3)
}

// holdProxy forwards TCP to target in clear text and, while armed, holds
// the server's answer to the next IDLE ("+ idling") until released: the
// client is then inside the IDLE command, holding its connection.
type holdProxy struct {
	ln      net.Listener
	target  string
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
	wg      sync.WaitGroup
}

func startHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &holdProxy{ln: ln, target: target, held: make(chan struct{}), release: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *holdProxy) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	r := bufio.NewReader(up)
	for {
		line, err := r.ReadBytes('\n')
		if bytes.HasPrefix(line, []byte("+ idling")) && p.armed.CompareAndSwap(true, false) {
			close(p.held)
			<-p.release
		}
		if _, werr := c.Write(line); werr != nil || err != nil {
			return
		}
	}
}

// An after-commit action due while a Receive is starting IDLE (the Ack
// finds the connection busy) is applied within a bounded time, not at the
// next mail or poll (an hour here).
func TestActionsAppliedWhileIdle(t *testing.T) {
	srv := startServer(t, &imaptest.Options{StartTLS: true}) // clear text until STARTTLS, which the source skips
	proxy := startHoldProxy(t, srv.Addr)
	appendAll(t, srv, mails(1))
	st := newStore(t)
	src, err := imapsource.Dial(t.Context(), proxy.ln.Addr().String(), imapsource.Login{Username: srv.Username, Password: srv.Password},
		&imapsource.Options{Security: imapsource.Insecure, State: st, After: imapsource.AfterCommit{Kind: imapsource.Delete},
			Watch: true, PollInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	r, err := src.Receive(t.Context())
	require.NoError(t, err)

	proxy.armed.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := src.Receive(ctx) // nothing left: waits with IDLE
		done <- err
	}()
	<-proxy.held // the Receive holds the connection, starting IDLE
	require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, ""))
	close(proxy.release)
	assert.Eventually(t, func() bool { return count(t, srv, "INBOX") == 0 }, 10*time.Second, 10*time.Millisecond,
		"the action is applied while the source idles")
	cancel()
	err = <-done
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}
