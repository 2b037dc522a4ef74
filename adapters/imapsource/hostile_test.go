package imapsource_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
)

// fakeServer is a scripted IMAP server over plain TCP: it answers the few
// commands the source sends and lets fetchBody misbehave.
type fakeServer struct {
	ln          net.Listener
	fetchBody   func(w *bufio.Writer, tag string)
	fetchHeader func(w *bufio.Writer, tag string) // nil: fakeHeader
	wg          sync.WaitGroup
}

func startFake(t *testing.T, fetchBody func(w *bufio.Writer, tag string)) *fakeServer {
	return startFakeHeader(t, fetchBody, nil)
}

func startFakeHeader(t *testing.T, fetchBody, fetchHeader func(w *bufio.Writer, tag string)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeServer{ln: ln, fetchBody: fetchBody, fetchHeader: fetchHeader}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

const fakeHeader = "From: a@b.example\r\nSubject: huge\r\nMessage-ID: <huge@b.example>\r\n\r\n"

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake ready\r\n")
	w.Flush()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
		upper := strings.ToUpper(cmd)
		switch {
		case strings.HasPrefix(upper, "CAPABILITY"):
			fmt.Fprintf(w, "* CAPABILITY IMAP4rev1 UIDPLUS\r\n%s OK done\r\n", tag)
		case strings.HasPrefix(upper, "SELECT"):
			fmt.Fprintf(w, "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n* FLAGS ()\r\n%s OK [READ-WRITE] done\r\n", tag)
		case strings.HasPrefix(upper, "UID FETCH") && (strings.Contains(upper, "RFC822.SIZE") || !strings.Contains(upper, "BODY")):
			// The scan (UID FLAGS) and the size probe (UID RFC822.SIZE).
			fmt.Fprintf(w, "* 1 FETCH (UID 1 RFC822.SIZE 100 FLAGS ())\r\n%s OK done\r\n", tag)
		case strings.HasPrefix(upper, "UID FETCH") && strings.Contains(upper, "BODY.PEEK[HEADER]") && f.fetchHeader != nil:
			f.fetchHeader(w, tag)
		case strings.HasPrefix(upper, "UID FETCH") && strings.Contains(upper, "BODY.PEEK[HEADER]"):
			fmt.Fprintf(w, "* 1 FETCH (UID 1 BODY[HEADER] {%d}\r\n%s)\r\n%s OK done\r\n", len(fakeHeader), fakeHeader, tag)
		case strings.HasPrefix(upper, "UID FETCH"):
			f.fetchBody(w, tag)
		case strings.HasPrefix(upper, "LOGOUT"):
			fmt.Fprintf(w, "* BYE\r\n%s OK done\r\n", tag)
			w.Flush()
			return
		default:
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func dialFake(t *testing.T, f *fakeServer) *imapsource.Source {
	t.Helper()
	src, err := imapsource.Dial(t.Context(), f.ln.Addr().String(), imapsource.Login{Username: "u", Password: "p"}, &imapsource.Options{Security: imapsource.Insecure,
		Reconnects: 2, BackoffMin: time.Millisecond, CommandTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

func TestHostileServer(t *testing.T) {
	tests := []struct {
		name      string
		fetchBody func(w *bufio.Writer, tag string)
		wantErr   string
	}{
		{
			name: "garbage fetch response",
			fetchBody: func(w *bufio.Writer, tag string) {
				fmt.Fprintf(w, "* 1 FETCH (UID 1 BODY[] ))))((((\x00\xff\r\n%s OK done\r\n", tag)
			},
			wantErr: "imapsource:",
		},
		{
			name: "unknown fetch item",
			fetchBody: func(w *bufio.Writer, tag string) {
				fmt.Fprintf(w, "* 1 FETCH (UID 1 X-BOGUS 12)\r\n%s OK done\r\n", tag)
			},
			wantErr: "unsupported msg-att",
		},
		{
			name: "tagged BAD",
			fetchBody: func(w *bufio.Writer, tag string) {
				fmt.Fprintf(w, "%s BAD no thanks\r\n", tag)
			},
			wantErr: "no thanks",
		},
		{
			name: "huge negative literal",
			fetchBody: func(w *bufio.Writer, tag string) {
				fmt.Fprintf(w, "* 1 FETCH (UID 1 BODY[] {-5}\r\n%s OK done\r\n", tag)
			},
			wantErr: "imapsource:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.fetchBody)
			src := dialFake(t, f)
			_, err := src.Receive(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// A server announcing 100 bytes and sending a 50 MB literal: the source
// refuses it without reading it, then hands the mail out with its header
// only (Truncated), so nothing is lost.
func TestFiftyMegabyteLiteral(t *testing.T) {
	const size = 50 << 20
	f := startFake(t, func(w *bufio.Writer, tag string) {
		fmt.Fprintf(w, "* 1 FETCH (UID 1 BODY[] {%d}\r\n", size)
		chunk := []byte(strings.Repeat("A", 64<<10))
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		fmt.Fprintf(w, ")\r\n%s OK done\r\n", tag)
	})
	src, err := imapsource.Dial(t.Context(), f.ln.Addr().String(), imapsource.Login{Username: "u", Password: "p"}, &imapsource.Options{Security: imapsource.Insecure,
		BackoffMin: time.Millisecond, MaxSize: 1 << 20,
	})
	require.NoError(t, err)
	defer src.Close()
	start := time.Now()
	r, err := src.Receive(t.Context())
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	assert.Equal(t, fakeHeader, string(r.Raw))
	assert.Less(t, time.Since(start), 10*time.Second)
}

// A server announcing literals over every limit, whatever is asked (the
// whole mail, its header, its first 4 MiB): the mail is handed out with a
// synthetic header after three attempts instead of failing every run.
func TestUnreadableMailGetsSyntheticHeader(t *testing.T) {
	huge := func(w *bufio.Writer, tag string) {
		fmt.Fprintf(w, "* 1 FETCH (UID 1 BODY[] {%d}\r\n", 50<<20)
	}
	f := startFakeHeader(t, huge, huge)
	src, err := imapsource.Dial(t.Context(), f.ln.Addr().String(), imapsource.Login{Username: "u", Password: "p"}, &imapsource.Options{Security: imapsource.Insecure,
		Reconnects: 1, BackoffMin: time.Millisecond, CommandTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	defer src.Close()
	r, err := src.Receive(t.Context())
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	assert.EqualValues(t, 100, r.Size)
	assert.Contains(t, string(r.Raw), "UID 1")
	assert.True(t, strings.HasSuffix(string(r.Raw), "\r\n\r\n"), "a complete header")
}

// FuzzFetchResponse serves arbitrary bytes as the answer to the body fetch:
// the source must return a mail or an error, never panic or hang.
func FuzzFetchResponse(f *testing.F) {
	f.Add([]byte("* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n"))
	f.Add([]byte("* 1 FETCH (UID 1 BODY[] NIL)\r\n"))
	f.Add([]byte("* 1 FETCH (BODY[] {3}\r\nabc UID 1)\r\n"))
	f.Add([]byte("* 1 FETCH (UID 1 BODY[] {999999999999}\r\n"))
	f.Add([]byte("* BYE going away\r\n"))
	f.Fuzz(func(t *testing.T, resp []byte) {
		fs := startFake(t, func(w *bufio.Writer, tag string) {
			w.Write(resp)
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		})
		src, err := imapsource.Dial(t.Context(), fs.ln.Addr().String(), imapsource.Login{Username: "u", Password: "p"}, &imapsource.Options{Security: imapsource.Insecure,
			Reconnects: 1, BackoffMin: time.Millisecond, CommandTimeout: 2 * time.Second, MaxSize: 1 << 20,
		})
		if err != nil {
			return
		}
		defer src.Close()
		_, _ = src.Receive(t.Context())
	})
}
