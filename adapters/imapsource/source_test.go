package imapsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func startServer(t *testing.T, opts *imaptest.Options) *imaptest.Server {
	t.Helper()
	srv, err := imaptest.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newStore(t *testing.T) *mailcase.Store {
	t.Helper()
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func newPipeline(t *testing.T, st *mailcase.Store) *mailcase.Pipeline {
	t.Helper()
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, RetryDelay: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, srv *imaptest.Server, st *mailcase.Store, opts imapsource.Options) *imapsource.Source {
	t.Helper()
	opts.TLSConfig = srv.Cert.Client
	opts.Mailbox = "support"
	opts.State = st
	if opts.BackoffMin == 0 {
		opts.BackoffMin = time.Millisecond
	}
	login := imapsource.Login{Username: srv.Username, Password: srv.Password}
	src, err := imapsource.Dial(t.Context(), srv.Addr, login, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

func appendAll(t *testing.T, srv *imaptest.Server, mails [][]byte) {
	t.Helper()
	for _, m := range mails {
		_, err := srv.Append("INBOX", m)
		require.NoError(t, err)
	}
}

func mail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Problem %d\r\nMessage-ID: <m%d@customer.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHello, issue %d.\r\n", i, i, i, i, i)
}

func mails(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mail(i)
	}
	return out
}

func filed(s mailcase.Stats) int64 {
	return s.Created + s.Appended + s.Reopened + s.Recorded + s.Filtered
}

func TestAfterCommitActions(t *testing.T) {
	tests := []struct {
		name  string
		opts  imapsource.Options
		check func(t *testing.T, srv *imaptest.Server)
	}{
		{
			name: "delete",
			opts: imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}},
			check: func(t *testing.T, srv *imaptest.Server) {
				n, err := srv.Count("INBOX")
				require.NoError(t, err)
				assert.Zero(t, n)
			},
		},
		{
			name: "move",
			opts: imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Archive"}},
			check: func(t *testing.T, srv *imaptest.Server) {
				n, err := srv.Count("INBOX")
				require.NoError(t, err)
				assert.Zero(t, n)
				n, err = srv.Count("Archive")
				require.NoError(t, err)
				assert.Equal(t, 7, n)
			},
		},
		{
			name: "move without MOVE capability (COPY, STORE, UID EXPUNGE)",
			opts: imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Archive"}},
			check: func(t *testing.T, srv *imaptest.Server) {
				n, err := srv.Count("INBOX")
				require.NoError(t, err)
				assert.Zero(t, n)
				n, err = srv.Count("Archive")
				require.NoError(t, err)
				assert.Equal(t, 7, n)
			},
		},
		{
			name: "flag keyword",
			opts: imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Flag, Flag: "$Filed"}},
			check: func(t *testing.T, srv *imaptest.Server) {
				n, err := srv.CountFlag("INBOX", "$Filed")
				require.NoError(t, err)
				assert.Equal(t, 7, n)
				n, err = srv.CountFlag("INBOX", imap.FlagSeen)
				require.NoError(t, err)
				assert.Zero(t, n, "BODY.PEEK leaves \\Seen alone")
			},
		},
		{
			name: "flag default keyword, no MOVE capability",
			opts: imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Flag}},
			check: func(t *testing.T, srv *imaptest.Server) {
				n, err := srv.CountFlag("INBOX", imapsource.FiledKeyword)
				require.NoError(t, err)
				assert.Equal(t, 7, n)
				n, err = srv.CountFlag("INBOX", imap.FlagSeen)
				require.NoError(t, err)
				assert.Zero(t, n, "the read state is the user's")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, &imaptest.Options{Folders: []string{"Archive"}, NoMove: strings.Contains(tt.name, "MOVE")})
			appendAll(t, srv, mails(7))
			st := newStore(t)
			p := newPipeline(t, st)
			tt.opts.BatchSize = 3
			src := dial(t, srv, st, tt.opts)
			require.NoError(t, p.Run(t.Context(), src))
			assert.EqualValues(t, 7, p.Stats().Created)
			tt.check(t, srv)
			// A second run finds nothing new and files nothing twice.
			require.NoError(t, p.Run(t.Context(), src))
			assert.EqualValues(t, 7, p.Stats().Received)
		})
	}
}

// The zero after-commit action is Flag: filed mail stays on the server,
// marked with FiledKeyword, and is not expunged.
func TestZeroAfterKeepsMailFlagged(t *testing.T) {
	srv := startServer(t, nil)
	appendAll(t, srv, mails(1))
	st := newStore(t)
	p := newPipeline(t, st)
	src := dial(t, srv, st, imapsource.Options{})
	require.NoError(t, p.Run(t.Context(), src))
	require.NoError(t, src.Flush(t.Context()))
	assert.EqualValues(t, 1, p.Stats().Created)
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the filed mail is kept")
	n, err = srv.CountFlag("INBOX", imapsource.FiledKeyword)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = srv.CountFlag("INBOX", imap.FlagDeleted)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestRunLimitAndState(t *testing.T) {
	srv := startServer(t, nil)
	appendAll(t, srv, mails(10))
	st := newStore(t)
	p := newPipeline(t, st)
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Flag}, MaxPerRun: 4, BatchSize: 3})
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 4, p.Stats().Received, "per-run limit")
	require.NoError(t, p.Run(t.Context(), src))
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 10, p.Stats().Created)
	require.NoError(t, src.Close())

	// The watermark is persisted: a new source with the same store starts
	// past the filed mail even if flags were lost.
	v, ok, err := st.GetState(t.Context(), "imap/support/user@"+srv.Addr+"/INBOX")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Contains(t, string(v), `"next_uid":11`)
}

func TestStartTLSAndXOAUTH2(t *testing.T) {
	srv := startServer(t, &imaptest.Options{StartTLS: true, Token: "tok-123"})
	appendAll(t, srv, mails(2))
	st := newStore(t)
	p := newPipeline(t, st)
	opts := &imapsource.Options{
		Security: imapsource.StartTLS, TLSConfig: srv.Cert.Client,
		Mailbox: "support",
	}
	login := imapsource.Login{Username: srv.Username, TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-123"})}
	src, err := imapsource.Dial(t.Context(), srv.Addr, login, opts)
	require.NoError(t, err)
	defer src.Close()
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 2, p.Stats().Created)

	login.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "wrong"})
	_, err = imapsource.Dial(t.Context(), srv.Addr, login, opts)
	require.ErrorIs(t, err, imapsource.ErrAuth)
}

func TestBadCredentials(t *testing.T) {
	srv := startServer(t, nil)
	_, err := imapsource.Dial(t.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: "wrong"}, &imapsource.Options{TLSConfig: srv.Cert.Client})
	require.ErrorIs(t, err, imapsource.ErrAuth)
	assert.Contains(t, err.Error(), "user@")

	// An untrusted certificate is refused.
	_, err = imapsource.Dial(t.Context(), srv.Addr, imapsource.Login{Username: "user", Password: "pass"}, &imapsource.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
}

func TestUIDValidityChange(t *testing.T) {
	srv := startServer(t, nil)
	all := mails(7)
	appendAll(t, srv, all[:5])
	st := newStore(t)
	p := newPipeline(t, st)
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Flag}})
	require.NoError(t, p.Run(t.Context(), src))
	require.EqualValues(t, 5, p.Stats().Created)
	v1, err := srv.UIDValidity("INBOX")
	require.NoError(t, err)

	// The server rebuilds the folder: new UIDVALIDITY, flags lost, two new
	// mails. The source reconnects and rescans from UID 1.
	require.NoError(t, srv.ResetUIDValidity("INBOX", all))
	v2, err := srv.UIDValidity("INBOX")
	require.NoError(t, err)
	require.NotEqual(t, v1, v2)
	require.NoError(t, src.Close())
	src = dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Flag}})
	require.NoError(t, p.Run(t.Context(), src))
	s := p.Stats()
	assert.EqualValues(t, 7, s.Created, "only the two new mails are filed")
	assert.EqualValues(t, 5, s.Duplicates, "the old mails are recognised")
	n, err := srv.CountFlag("INBOX", imapsource.FiledKeyword)
	require.NoError(t, err)
	assert.Equal(t, 7, n)
}

func TestOversizedMailIsTruncatedAndKept(t *testing.T) {
	srv := startServer(t, &imaptest.Options{Folders: []string{"Quarantine"}})
	big := append(mail(1), []byte(strings.Repeat("x", 10000)+"\r\n")...)
	appendAll(t, srv, [][]byte{mail(0), big})
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, MaxSize: 2000, QuarantineFolder: "Quarantine"})
	var got []*mailcase.Received
	for {
		r, err := src.Receive(t.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, r)
	}
	require.Len(t, got, 2)
	assert.False(t, got[0].Truncated)
	assert.True(t, got[1].Truncated)
	assert.EqualValues(t, len(big), got[1].Size)
	assert.Less(t, len(got[1].Raw), 1000)
	assert.Contains(t, string(got[1].Raw), "Subject: Problem 1")
	for _, r := range got {
		require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, ""))
	}
	require.NoError(t, src.Flush(t.Context()))
	// The oversized mail's body was never downloaded: it is kept aside,
	// not deleted.
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
	msgs, err := srv.Messages("Quarantine")
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, big, msgs[0].Raw)
}

func TestQuarantineAndRetry(t *testing.T) {
	srv := startServer(t, &imaptest.Options{Folders: []string{"Quarantine"}})
	appendAll(t, srv, mails(3))
	st := newStore(t)
	now := time.Now()
	var clock atomic.Int64
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, QuarantineFolder: "Quarantine", RetryDelay: time.Minute,
		Now: func() time.Time { return now.Add(time.Duration(clock.Load())) }})
	recv := func() []*mailcase.Received {
		var out []*mailcase.Received
		for {
			r, err := src.Receive(t.Context())
			if errors.Is(err, io.EOF) {
				return out
			}
			require.NoError(t, err)
			out = append(out, r)
		}
	}
	got := recv()
	require.Len(t, got, 3)
	require.NoError(t, src.Ack(t.Context(), got[0], mailcase.Quarantine, "cannot parse"))
	require.NoError(t, src.Ack(t.Context(), got[1], mailcase.Retry, "store down"))
	require.NoError(t, src.Ack(t.Context(), got[2], mailcase.Done, ""))
	assert.ErrorIs(t, src.Ack(t.Context(), got[2], mailcase.Done, ""), imapsource.ErrUnknownMail)

	assert.Empty(t, recv(), "the retried mail waits for its delay")
	clock.Store(int64(2 * time.Minute))
	again := recv()
	require.Len(t, again, 1)
	assert.Equal(t, got[1].Raw, again[0].Raw)
	assert.Equal(t, 2, again[0].Attempt)
	require.NoError(t, src.Ack(t.Context(), again[0], mailcase.Done, ""))

	q, err := srv.Messages("Quarantine")
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, got[0].Raw, q[0].Raw)
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestIdlePush(t *testing.T) {
	srv := startServer(t, nil)
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, Watch: true, PollInterval: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = srv.Append("INBOX", mail(42))
	}()
	start := time.Now()
	r, err := src.Receive(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(r.Raw), "Problem 42")
	assert.Less(t, time.Since(start), 5*time.Second, "IDLE, not the hourly poll")
	require.NoError(t, src.Ack(ctx, r, mailcase.Done, ""))

	// Cancelling ctx ends a waiting Receive.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel2()
	_, err = src.Receive(ctx2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestPollingFallbackWithoutIdle(t *testing.T) {
	srv := startServer(t, &imaptest.Options{NoIdle: true})
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{Watch: true, PollInterval: 50 * time.Millisecond})
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = srv.Append("INBOX", mail(7))
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r, err := src.Receive(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(r.Raw), "Problem 7")
}

// cutProxy forwards TCP to target and cuts the first `cuts` connections
// after `after` bytes from the server.
type cutProxy struct {
	ln     net.Listener
	target string
	after  int64
	cuts   atomic.Int32
	wg     sync.WaitGroup
}

func startCutProxy(t *testing.T, target string, after int64, cuts int32) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, after: after}
	p.cuts.Store(cuts)
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

func (p *cutProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	if p.cuts.Add(-1) >= 0 {
		_, _ = io.CopyN(c, s, p.after)
		return
	}
	_, _ = io.Copy(c, s)
}

func TestDisconnectMidFetch(t *testing.T) {
	srv := startServer(t, nil)
	all := mailcasetest.GenerateCorpus(40, 1)
	appendAll(t, srv, all)
	proxy := startCutProxy(t, srv.Addr, 30000, 3)
	st := newStore(t)
	p := newPipeline(t, st)
	src, err := imapsource.Dial(t.Context(), proxy.ln.Addr().String(), imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, TLSConfig: srv.Cert.Client,
		Mailbox: "support", State: st, BatchSize: 10, BackoffMin: time.Millisecond, Reconnects: 10,
	})
	require.NoError(t, err)
	defer src.Close()
	for i := 0; i < 10 && p.Stats().Received < 40; i++ {
		_ = p.Run(t.Context(), src)
	}
	s := p.Stats()
	assert.EqualValues(t, 40, s.Received-s.Duplicates, "every mail handed out")
	assert.EqualValues(t, 40, filed(s)+s.Structured+s.Rejected, "every mail filed once")
	assert.Zero(t, s.Quarantined)
	require.NoError(t, src.Flush(t.Context()))
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
}

// A mail that makes the pipeline fail is quarantined (moved to the
// quarantine folder, raw bytes intact); the mails around it are filed.
func TestPoisonMailQuarantined(t *testing.T) {
	srv := startServer(t, &imaptest.Options{Folders: []string{"Quarantine"}})
	all := mails(6)
	all[2] = []byte("From: x@y.example\r\nSubject: poison\r\nMessage-ID: <poison@y.example>\r\n\r\nboom\r\n")
	appendAll(t, srv, all)
	st := newStore(t)
	poison := mailcase.FilterFunc(func(_ context.Context, d *mailcase.Delivery) (mailcase.FilterVerdict, error) {
		if d.Message.Subject == "poison" {
			panic("plugin bug")
		}
		return mailcase.FilterVerdict{}, nil
	})
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, Filters: []mailcase.Filter{poison}})
	require.NoError(t, err)
	defer p.Close()
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, QuarantineFolder: "Quarantine"})
	require.NoError(t, p.Run(t.Context(), src))
	s := p.Stats()
	assert.EqualValues(t, 5, s.Created)
	assert.EqualValues(t, 1, s.Quarantined)
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
	q, err := srv.Messages("Quarantine")
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, all[2], q[0].Raw)
}

// A crash between STORE \Deleted and EXPUNGE leaves filed mail flagged
// \Deleted on the server: the next run hands it out again, the pipeline
// recognises the duplicate and the source expunges it.
func TestDeletedFlagLeftByCrash(t *testing.T) {
	srv := startServer(t, nil)
	appendAll(t, srv, mails(2))
	st := newStore(t)
	p := newPipeline(t, st)
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}})
	require.NoError(t, p.Run(t.Context(), src))
	require.NoError(t, src.Close())
	_, err := srv.Append("INBOX", mail(1), imap.FlagDeleted)
	require.NoError(t, err)

	src = dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}})
	require.NoError(t, p.Run(t.Context(), src))
	s := p.Stats()
	assert.EqualValues(t, 2, s.Created)
	assert.EqualValues(t, 1, s.Duplicates)
	n, err := srv.Count("INBOX")
	require.NoError(t, err)
	assert.Zero(t, n)
}
