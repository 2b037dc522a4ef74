package pop3source_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/adapters/pop3source"
	"github.com/emailcrm/emailcrm/adapters/pop3source/pop3test"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func mail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Problem %d\r\nMessage-ID: <p%d@customer.example>\r\n\r\nHello, issue %d.\r\n.dot line\r\n", i, i, i, i, i)
}

func setup(t *testing.T, n int, opts pop3source.Options) (*pop3test.Server, *mailcase.Store, *mailcase.Pipeline, *pop3source.Source) {
	t.Helper()
	cert, err := imaptest.NewCert()
	require.NoError(t, err)
	srv := startPOP3(t, &pop3test.Options{TLS: cert.Server})
	for i := range n {
		srv.Add(mail(i))
	}
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	opts.TLSConfig = cert.Client
	opts.Mailbox, opts.State = "support", st
	src, err := pop3source.Dial(t.Context(), srv.Addr, pop3source.Login{Username: "user", Password: "pass"}, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return srv, st, p, src
}

func TestIngestDeletesAfterCommit(t *testing.T) {
	srv, _, p, src := setup(t, 5, pop3source.Options{})
	require.NoError(t, src.Check(t.Context()))
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 5, p.Stats().Created)
	assert.Empty(t, srv.Messages())
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 5, p.Stats().Received)
}

func TestKeepUsesSeenSet(t *testing.T) {
	srv, st, p, src := setup(t, 3, pop3source.Options{Keep: true})
	require.NoError(t, p.Run(t.Context(), src))
	assert.Len(t, srv.Messages(), 3)
	srv.Add(mail(3))
	require.NoError(t, p.Run(t.Context(), src))
	s := p.Stats()
	assert.EqualValues(t, 4, s.Received, "only the new mail is handed out")
	assert.EqualValues(t, 4, s.Created)
	v, ok, err := st.GetState(t.Context(), "pop3/support/user@"+srv.Addr)
	require.NoError(t, err)
	require.True(t, ok)
	assert.JSONEq(t, `{"uid-1":"keep","uid-2":"keep","uid-3":"keep","uid-4":"keep"}`, string(v))
}

// A crash after filing but before QUIT: the deletions are not committed,
// the mail comes back, is recognised and deleted, nothing is filed twice.
func TestCrashBeforeQuit(t *testing.T) {
	srv, _, p, src := setup(t, 4, pop3source.Options{})
	var n atomic.Int32
	srv.SetHook(func(line string) bool {
		return !(strings.HasPrefix(line, "QUIT") && n.Add(1) == 1)
	})
	err := p.Run(t.Context(), src)
	require.NoError(t, err)
	assert.Len(t, srv.Messages(), 4, "QUIT was lost: nothing deleted")
	require.NoError(t, p.Run(t.Context(), src))
	s := p.Stats()
	assert.EqualValues(t, 4, s.Created)
	assert.Empty(t, srv.Messages())
}

func TestRetryQuarantineOversize(t *testing.T) {
	srv, _, _, src := setup(t, 0, pop3source.Options{MaxSize: 500})
	srv.Add(mail(0))
	srv.Add(mail(1))
	big := append(mail(2), strings.Repeat("y", 2000)+"\r\n"...)
	srv.Add(big)
	srv.Add(mail(3))
	ctx := t.Context()
	var got []*mailcase.Received
	for {
		r, err := src.Receive(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, r)
	}
	require.Len(t, got, 4)
	assert.True(t, got[2].Truncated)
	assert.EqualValues(t, len(big), got[2].Size)
	assert.NotContains(t, string(got[2].Raw), "yyyy")
	assert.Contains(t, string(got[0].Raw), "\r\n.dot line\r\n")
	require.NoError(t, src.Ack(ctx, got[0], mailcase.Done, ""))
	require.NoError(t, src.Ack(ctx, got[1], mailcase.Retry, "later"))
	require.NoError(t, src.Ack(ctx, got[2], mailcase.Done, ""))
	require.NoError(t, src.Ack(ctx, got[3], mailcase.Quarantine, "bad"))
	require.ErrorIs(t, src.Ack(ctx, got[3], mailcase.Done, ""), pop3source.ErrUnknownMail)
	// Deleted: only the filed, complete mail. Kept: the retried one, the
	// oversized one (never fully downloaded) and the quarantined one.
	assert.Len(t, srv.Messages(), 3)
	r, err := src.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, got[1].Raw, r.Raw, "only the retried mail comes back")
	require.NoError(t, src.Ack(ctx, r, mailcase.Done, ""))
	_, err = src.Receive(ctx)
	require.ErrorIs(t, err, io.EOF)
	assert.Len(t, srv.Messages(), 2)
}

func TestBadCredentialsAndNoUIDL(t *testing.T) {
	srv := startPOP3(t, &pop3test.Options{NoUIDL: true})
	src, err := pop3source.Dial(t.Context(), srv.Addr, pop3source.Login{Username: "user", Password: "nope"}, &pop3source.Options{Security: pop3source.Insecure})
	require.NoError(t, err)
	err = src.Check(t.Context())
	require.ErrorIs(t, err, pop3source.ErrAuth)
	src2, err := pop3source.Dial(t.Context(), srv.Addr, pop3source.Login{Username: "user", Password: "pass"}, &pop3source.Options{Security: pop3source.Insecure, Timeout: time.Second})
	require.NoError(t, err)
	_, err = src2.Receive(t.Context())
	require.ErrorIs(t, err, pop3source.ErrNoUIDL)
}

// The server drops the connection in the middle of a session: the run
// fails, nothing is deleted that was not filed, and the next run files
// the rest without duplicates.
func TestDisconnectMidSession(t *testing.T) {
	srv, _, p, src := setup(t, 5, pop3source.Options{})
	var n atomic.Int32
	srv.SetHook(func(line string) bool {
		return !(strings.HasPrefix(line, "RETR 3") && n.Add(1) == 1)
	})
	err := p.Run(t.Context(), src)
	require.Error(t, err)
	assert.Len(t, srv.Messages(), 5, "no QUIT: nothing deleted")
	require.NoError(t, p.Run(t.Context(), src))
	s := p.Stats()
	assert.EqualValues(t, 5, s.Created)
	assert.Empty(t, srv.Messages())
}

func TestStartTLSSource(t *testing.T) {
	cert, err := imaptest.NewCert()
	require.NoError(t, err)
	srv := startPOP3(t, &pop3test.Options{StartTLS: cert.Server})
	srv.Add(mail(1))
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	defer st.Close()
	src, err := pop3source.Dial(t.Context(), srv.Addr, pop3source.Login{Username: "user", Password: "pass"}, &pop3source.Options{Security: pop3source.StartTLS, TLSConfig: cert.Client, State: st})
	require.NoError(t, err)
	defer src.Close()
	r, err := src.Receive(t.Context())
	require.NoError(t, err)
	assert.Contains(t, string(r.Raw), "Problem 1")
	require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, ""))
	_, err = src.Receive(t.Context())
	require.ErrorIs(t, err, io.EOF)
	assert.Empty(t, srv.Messages())

	// Without trusting the certificate, STLS fails: no clear-text login.
	bad, err := pop3source.Dial(t.Context(), srv.Addr, pop3source.Login{Username: "user", Password: "pass"}, &pop3source.Options{Security: pop3source.StartTLS})
	require.NoError(t, err)
	err = bad.Check(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "STLS")
}
