package pop3source_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/adapters/pop3source"
	"github.com/emailcrm/emailcrm/adapters/pop3source/pop3test"
)

func startPOP3(t *testing.T, opts *pop3test.Options) *pop3test.Server {
	t.Helper()
	srv, err := pop3test.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func TestClientCommands(t *testing.T) {
	cert, err := imaptest.NewCert()
	require.NoError(t, err)
	srv := startPOP3(t, &pop3test.Options{StartTLS: cert.Server})
	raw := "From: a@b.example\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n"
	srv.Add([]byte(raw))
	srv.Add([]byte("Subject: second\r\n\r\nbody\r\n"))
	ctx := t.Context()

	c, err := pop3source.DialClient(ctx, srv.Addr, nil, nil)
	require.NoError(t, err)
	defer c.Close()
	assert.Contains(t, c.Greeting, "ready")
	caps, err := c.Capa(ctx)
	require.NoError(t, err)
	assert.Contains(t, caps, "STLS")
	require.NoError(t, c.StartTLS(ctx, cert.Client))
	caps, err = c.Capa(ctx)
	require.NoError(t, err)
	assert.NotContains(t, caps, "STLS")
	assert.Contains(t, caps, "UIDL")

	err = c.Auth(ctx, "user", "wrong")
	require.ErrorIs(t, err, pop3source.ErrServer)
	assert.Contains(t, err.Error(), "invalid credentials")
	require.NoError(t, c.Auth(ctx, "user", "pass"))

	n, size, err := c.Stat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.EqualValues(t, len(raw)+len("Subject: second\r\n\r\nbody\r\n"), size)
	list, err := c.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.EqualValues(t, len(raw), list[0].Size)
	uidl, err := c.UIDL(ctx)
	require.NoError(t, err)
	assert.Equal(t, "uid-1", uidl[0].UID)
	assert.Equal(t, 2, uidl[1].Num)

	got, err := c.Retr(ctx, 1, -1)
	require.NoError(t, err)
	assert.Equal(t, raw, string(got), "dot-unstuffed")
	top, err := c.Top(ctx, 1, 1, -1)
	require.NoError(t, err)
	assert.Equal(t, "From: a@b.example\r\nSubject: dots\r\n\r\n.leading dot\r\n", string(top))

	_, err = c.Retr(ctx, 9, -1)
	require.ErrorIs(t, err, pop3source.ErrServer)
	require.NoError(t, c.Dele(ctx, 1))
	require.NoError(t, c.Rset(ctx))
	require.NoError(t, c.Dele(ctx, 2))
	require.NoError(t, c.Noop(ctx))
	require.NoError(t, c.Quit(ctx))
	assert.Len(t, srv.Messages(), 1, "DELE committed on QUIT only after RSET")
}

func TestClientLimits(t *testing.T) {
	srv := startPOP3(t, nil)
	bigBody := strings.Repeat("0123456789\r\n", 1000)
	srv.Add([]byte("Subject: big\r\n\r\n" + bigBody))
	long := "Subject: long\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n.dot\r\n" + strings.Repeat("y", 40000) + "\r\n"
	srv.Add([]byte(long))
	ctx := t.Context()
	c, err := pop3source.DialClient(ctx, srv.Addr, nil, &pop3source.ClientOptions{MaxLine: 4096})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Auth(ctx, "user", "pass"))
	// Over the limit: the first 1000 bytes, the rest read and discarded,
	// the session still in sync.
	got, err := c.Retr(ctx, 1, 1000)
	require.ErrorIs(t, err, pop3source.ErrMessageTooLarge)
	assert.Len(t, got, 1000)
	assert.True(t, strings.HasPrefix("Subject: big\r\n\r\n"+bigBody, string(got)))
	require.NoError(t, c.Broken())
	require.NoError(t, c.Noop(ctx))

	// MaxLine bounds status and listing lines, not message data: lines of
	// 5,000 and 40,000 bytes (over the 16 KiB read buffer) come whole.
	got, err = c.Retr(ctx, 2, -1)
	require.NoError(t, err)
	assert.Equal(t, long, string(got))
	got, err = c.Top(ctx, 2, 1, 100000)
	require.NoError(t, err)
	assert.Equal(t, "Subject: long\r\n\r\n"+strings.Repeat("x", 5000)+"\r\n", string(got))
}

// scripted serves one connection: it writes greeting, then answers each
// command line with the next reply.
func scripted(t *testing.T, replies ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		io.WriteString(c, "+OK hi\r\n")
		for _, rep := range replies {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			if _, err := io.WriteString(c, rep); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return ln.Addr().String()
}

func TestClientMalformedServer(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		call    func(ctx context.Context, c *pop3source.Client) error
		wantErr error
	}{
		{name: "bad status", reply: "HELLO\r\n", call: func(ctx context.Context, c *pop3source.Client) error { return c.Noop(ctx) }, wantErr: pop3source.ErrProtocol},
		{name: "bad STAT", reply: "+OK x y\r\n", call: func(ctx context.Context, c *pop3source.Client) error { _, _, err := c.Stat(ctx); return err }, wantErr: pop3source.ErrProtocol},
		{name: "bad LIST", reply: "+OK\r\n1\r\n.\r\n", call: func(ctx context.Context, c *pop3source.Client) error { _, err := c.List(ctx); return err }, wantErr: pop3source.ErrProtocol},
		{name: "negative LIST size", reply: "+OK\r\n1 -4\r\n.\r\n", call: func(ctx context.Context, c *pop3source.Client) error { _, err := c.List(ctx); return err }, wantErr: pop3source.ErrProtocol},
		{name: "bad UIDL number", reply: "+OK\r\nx abc\r\n.\r\n", call: func(ctx context.Context, c *pop3source.Client) error { _, err := c.UIDL(ctx); return err }, wantErr: pop3source.ErrProtocol},
		{name: "truncated RETR", reply: "+OK\r\nSubject: x\r\n", call: func(ctx context.Context, c *pop3source.Client) error { _, err := c.Retr(ctx, 1, -1); return err }, wantErr: io.ErrUnexpectedEOF},
		{name: "huge status line", reply: "+OK " + strings.Repeat("a", 5000) + "\r\n", call: func(ctx context.Context, c *pop3source.Client) error { return c.Noop(ctx) }, wantErr: pop3source.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scripted(t, tt.reply)
			c, err := pop3source.DialClient(t.Context(), addr, nil, &pop3source.ClientOptions{Timeout: 2 * time.Second})
			require.NoError(t, err)
			defer c.Close()
			err = tt.call(t.Context(), c)
			if errors.Is(tt.wantErr, io.ErrUnexpectedEOF) {
				require.Error(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestClientTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.WriteString(c, "+OK hi\r\n")
			time.Sleep(3 * time.Second)
		}
	}()
	c, err := pop3source.DialClient(t.Context(), ln.Addr().String(), nil, &pop3source.ClientOptions{Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	require.Error(t, c.Noop(t.Context()))
	assert.Less(t, time.Since(start), 2*time.Second)
}

// FuzzClient feeds arbitrary server output to every client command: it
// must return (an error or a result), never panic or hang.
func FuzzClient(f *testing.F) {
	f.Add([]byte("+OK hi\r\n+OK 2 10\r\n+OK\r\n1 5\r\n2 5\r\n.\r\n+OK\r\n1 a\r\n.\r\n+OK\r\n..x\r\n.\r\n"))
	f.Add([]byte("+OK\r\n-ERR no\r\n+OK\r\n\r\n.\r\n"))
	f.Add([]byte("+OK\r\n+OK\r\n1 99999999999999999999\r\n.\r\n"))
	f.Add([]byte("+OK hi\r\n+OK 1 9\r\n+OK\r\n1 9\r\n.\r\n+OK\r\n1 a\r\n.\r\n+OK\r\n" + strings.Repeat("x", 20000) + "\r\r\n..\n.\n+OK\r\nSubject: y\r\n" + strings.Repeat("h", 100) + "\r\n.\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write(data)
			b.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		c, err := pop3source.NewClient(ctx, a, &pop3source.ClientOptions{MaxLine: 1024, Timeout: time.Second})
		if err != nil {
			return
		}
		defer c.Close()
		_, _, _ = c.Stat(ctx)
		_, _ = c.List(ctx)
		_, _ = c.UIDL(ctx)
		_, _ = c.Retr(ctx, 1, 4096)
		_, _ = c.Top(ctx, 1, 0, 64)
		_, _ = c.Capa(ctx)
	})
}
