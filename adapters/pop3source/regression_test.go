package pop3source_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/pop3source"
	"github.com/emailcrm/emailcrm/adapters/pop3source/pop3test"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func newSource(t *testing.T, srv *pop3test.Server, opts pop3source.Options) (*mailcase.Store, *pop3source.Source) {
	t.Helper()
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	opts.Security = pop3source.Insecure
	opts.Mailbox, opts.State = "support", st
	src, err := pop3source.Dial(t.Context(), srv.Addr, pop3source.Login{Username: "user", Password: "pass"}, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return st, src
}

func receiveAll(t *testing.T, src *pop3source.Source) []*mailcase.Received {
	t.Helper()
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

// A mail with a line over MaxLine (minified HTML, unwrapped base64) is
// received whole; it used to fail every run and block the mail behind it.
func TestLongLineMail(t *testing.T) {
	srv := startPOP3(t, nil)
	long := []byte("From: a@b.example\r\nSubject: minified\r\nMessage-ID: <long@b.example>\r\nContent-Type: text/html\r\n\r\n<html>" +
		strings.Repeat("<p>x</p>", 300<<10) + "</html>\r\n")
	srv.Add(long)
	srv.Add(mail(1))
	srv.Add(mail(2))
	st, src := newSource(t, srv, pop3source.Options{})
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}})
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 3, p.Stats().Created)
	assert.Empty(t, srv.Messages())
}

// A server sending more than it announced, or a header over 4 MiB: the
// mail is handed out truncated (its header, or the header's first 4 MiB)
// and kept on the server; the session goes on with the next mail.
func TestOversizedDataHandedOutTruncated(t *testing.T) {
	hugeHeader := []byte("From: a@b.example\r\nSubject: huge header\r\n")
	for len(hugeHeader) < 5<<20 {
		hugeHeader = append(hugeHeader, "X-Filler: "+strings.Repeat("h", 990)+"\r\n"...)
	}
	hugeHeader = append(hugeHeader, "\r\nbody\r\n"...)
	liar := append([]byte("From: c@d.example\r\nSubject: liar\r\n\r\n"), strings.Repeat("z", 2<<20)+"\r\n"...)
	tests := []struct {
		name       string
		raw        []byte
		wantPrefix string
		maxLen     int
	}{
		{name: "larger than announced", raw: liar, wantPrefix: "From: c@d.example\r\nSubject: liar\r\n\r\n", maxLen: 100},
		{name: "header over 4 MiB", raw: hugeHeader, wantPrefix: "From: a@b.example\r\nSubject: huge header\r\nX-Filler: hhh", maxLen: 4 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startPOP3(t, &pop3test.Options{ListSize: func(uid string, size int) int {
				if uid == "uid-1" && size == len(liar) {
					return 1000 // the server lies
				}
				return size
			}})
			srv.Add(tt.raw)
			srv.Add(mail(2))
			_, src := newSource(t, srv, pop3source.Options{MaxSize: 1 << 20})
			got := receiveAll(t, src)
			require.Len(t, got, 2)
			assert.True(t, got[0].Truncated)
			assert.LessOrEqual(t, len(got[0].Raw), tt.maxLen)
			assert.True(t, bytes.HasPrefix(got[0].Raw, []byte(tt.wantPrefix)))
			assert.False(t, got[1].Truncated)
			assert.Contains(t, string(got[1].Raw), "Problem 2")
			for _, r := range got {
				require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, ""))
			}
			_, err := src.Receive(t.Context())
			require.ErrorIs(t, err, io.EOF)
			left := srv.Messages()
			require.Len(t, left, 1, "the truncated mail is kept")
			assert.True(t, bytes.Equal(tt.raw, left[0]))
		})
	}
}

// With concurrent processing, a slow RETR must not delay an Ack past its
// timeout: the DELE used to run with the expired context, breaking the
// session and rolling back every deletion.
func TestAckDuringSlowRetr(t *testing.T) {
	srv := startPOP3(t, nil)
	for i := range 4 {
		srv.Add(mail(i))
	}
	srv.SetHook(func(line string) bool {
		if strings.HasPrefix(line, "RETR 2") {
			time.Sleep(time.Second)
		}
		return true
	})
	st, src := newSource(t, srv, pop3source.Options{Timeout: 5 * time.Second})
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"},
		MaxConcurrency: 2, AckTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Run(t.Context(), src))
	assert.EqualValues(t, 4, p.Stats().Created)
	assert.Empty(t, srv.Messages(), "every DELE committed")
}
