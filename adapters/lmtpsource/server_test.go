package lmtpsource_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/lmtpsource"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

type env struct {
	addr    string
	sales   *mailcase.Pipeline
	support *mailcase.Pipeline
	store   *mailcase.Store
	srv     *lmtpsource.Server
}

// poison quarantines mail whose subject says so (a plugin panic is
// recovered by the pipeline and quarantines the mail).
var poison = mailcase.FilterFunc(func(_ context.Context, d *mailcase.Delivery) (mailcase.FilterVerdict, error) {
	if strings.Contains(d.Message.Subject, "poison") {
		panic("filter crashed on poison")
	}
	return mailcase.FilterVerdict{}, nil
})

// cancelled processes with a context that is already done: the pipeline
// answers Retry.
type cancelled struct{ p *mailcase.Pipeline }

func (c cancelled) Process(ctx context.Context, raw []byte, o *mailcase.ProcessOptions) (*mailcase.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return c.p.Process(ctx, raw, o)
}

func start(t *testing.T, mod func(o *lmtpsource.Options)) *env {
	t.Helper()
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	mk := func(name string) *mailcase.Pipeline {
		p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: name}, Filters: []mailcase.Filter{poison}, MaxAttempts: 1})
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		return p
	}
	e := &env{sales: mk("sales"), support: mk("support"), store: st}
	mailboxes := map[string]lmtpsource.Processor{
		"support@example.com": e.support,
		"help@example.com":    e.support,
		"sales@example.com":   e.sales,
		"down@example.com":    cancelled{e.support},
	}
	opts := &lmtpsource.Options{
		MaxMessageBytes: 64 << 10,
	}
	if mod != nil {
		mod(opts)
	}
	srv, err := lmtpsource.New(mailboxes, opts)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	e.addr, e.srv = ln.Addr().String(), srv
	return e
}

func client(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := smtp.NewClientLMTP(conn)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Hello("mta.example"))
	return c
}

func msg(subject, id string) string {
	return "From: Customer <c@customer.example>\r\nTo: support@example.com\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + id + ">\r\n\r\nHello.\r\n"
}

// deliver sends one mail and returns the per-recipient answers (nil: 250).
func deliver(t *testing.T, c *smtp.Client, body string, rcpts ...string) map[string]*smtp.DataResponse {
	t.Helper()
	require.NoError(t, c.Mail("c@customer.example", nil))
	for _, r := range rcpts {
		require.NoError(t, c.Rcpt(r, nil))
	}
	w, err := c.Data()
	require.NoError(t, err)
	_, err = io.WriteString(w, body)
	require.NoError(t, err)
	resp, err := w.CloseWithLMTPResponse()
	if err != nil {
		var lerr smtp.LMTPDataError
		require.ErrorAs(t, err, &lerr, "%v", err)
	}
	return resp
}

func TestPerRecipientStatus(t *testing.T) {
	e := start(t, nil)
	c := client(t, e.addr)

	err := c.Mail("c@customer.example", nil)
	require.NoError(t, err)
	err = c.Rcpt("nobody@example.com", nil)
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 550, se.Code)
	require.NoError(t, c.Reset())

	// Two mailboxes and a second address (plus-tagged) of one of them:
	// filed once per mailbox.
	deliver(t, c, msg("Order", "o1@customer.example"), "support@example.com", "Sales@Example.com", "help+urgent@example.com")
	assert.EqualValues(t, 1, e.support.Stats().Created)
	assert.EqualValues(t, 1, e.sales.Stats().Created)

	// Redelivery (the MTA did not see the answer): acknowledged, not
	// filed again.
	deliver(t, c, msg("Order", "o1@customer.example"), "support@example.com")
	assert.EqualValues(t, 1, e.support.Stats().Created)
	assert.EqualValues(t, 1, e.support.Stats().Duplicates)
}

func TestFailuresMapToCodes(t *testing.T) {
	e := start(t, nil)
	c := client(t, e.addr)
	require.NoError(t, c.Mail("c@customer.example", nil))
	for _, r := range []string{"support@example.com", "sales@example.com", "down@example.com"} {
		require.NoError(t, c.Rcpt(r, nil))
	}
	w, err := c.Data()
	require.NoError(t, err)
	_, err = io.WriteString(w, msg("poison pill", "p1@customer.example"))
	require.NoError(t, err)
	_, err = w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	require.ErrorAs(t, err, &lerr)
	codes := map[string]int{}
	for rcpt, e := range lerr {
		codes[rcpt] = e.Code
	}
	assert.Equal(t, 554, codes["support@example.com"], "permanent: quarantined")
	assert.Contains(t, lerr["support@example.com"].Message, "cannot be filed")
	assert.Equal(t, 554, codes["sales@example.com"])
	assert.Equal(t, 451, codes["down@example.com"], "transient: the MTA retries")
	q, err := e.store.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	assert.Len(t, q, 2, "the refused mail is kept in quarantine")

	// Over the size limit.
	require.NoError(t, c.Mail("c@customer.example", nil))
	require.NoError(t, c.Rcpt("support@example.com", nil))
	w, err = c.Data()
	require.NoError(t, err)
	_, _ = io.WriteString(w, msg("big", "big@x")+strings.Repeat("x", 100<<10)+"\r\n")
	_, err = w.CloseWithLMTPResponse()
	require.Error(t, err, "552, or the connection closed by the server")
	assert.EqualValues(t, 0, e.support.Stats().Created)
}

func TestGarbageAndLimits(t *testing.T) {
	e := start(t, func(o *lmtpsource.Options) { o.MaxConnections = 2; o.ReadTimeout = 2 * time.Second })
	conn, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	greet, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(greet, "220"))
	for _, line := range []string{"\x00\xff\xfe garbage", "DATA", "RCPT TO:<support@example.com>", "MAIL FROM:<<<>>>", "HELO x", "DATA"} {
		fmt.Fprintf(conn, "%s\r\n", line)
		resp, err := r.ReadString('\n')
		require.NoError(t, err, line)
		assert.Regexp(t, `^[45]\d\d `, resp, "%q answered %q", line, resp)
	}

	fmt.Fprintf(conn, "%s\r\n", strings.Repeat("A", 5000))
	resp, err := r.ReadString('\n')
	if err == nil {
		assert.Regexp(t, `^[45]\d\d `, resp)
	}

	conn.Close()

	// A third connection beyond the limit of two takes the slot of the
	// longest-idle session, which is answered 421 (these sessions deliver
	// nothing; TestIdleSessionsDoNotStarveDelivery covers the rest).
	var lines []string
	var conns []net.Conn
	var readers []*bufio.Reader
	for range 3 {
		c, err := net.Dial("tcp", e.addr)
		require.NoError(t, err)
		conns = append(conns, c)
		r := bufio.NewReader(c)
		readers = append(readers, r)
		l, _ := r.ReadString('\n')
		lines = append(lines, l)
	}
	for i, l := range lines {
		assert.True(t, strings.HasPrefix(l, "220"), "connection %d: %q", i, l)
	}
	require.NoError(t, conns[0].SetReadDeadline(time.Now().Add(5*time.Second)))
	evicted, _ := readers[0].ReadString('\n')
	assert.True(t, strings.HasPrefix(evicted, "421"), "the longest-idle session is closed with 421: %q", evicted)
	for _, c := range conns {
		c.Close()
	}

	// The server still works (once it has seen the closed connections).
	var c *smtp.Client
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			return false
		}
		cl := smtp.NewClientLMTP(conn)
		if err := cl.Hello("mta.example"); err != nil {
			cl.Close()
			return false
		}
		c = cl
		return true
	}, 5*time.Second, 20*time.Millisecond)
	defer c.Close()
	deliver(t, c, msg("After garbage", "g1@customer.example"), "support@example.com")
	assert.EqualValues(t, 1, e.support.Stats().Created)
}

func TestReturnPathAdded(t *testing.T) {
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	defer st.Close()
	var got []byte
	rec := processorFunc(func(_ context.Context, raw []byte, _ *mailcase.ProcessOptions) (*mailcase.Result, error) {
		got = raw
		return &mailcase.Result{Outcome: mailcase.Outcome{Disposition: mailcase.Done}}, nil
	})
	srv, err := lmtpsource.New(nil, &lmtpsource.Options{CatchAll: rec})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c := client(t, ln.Addr().String())
	deliver(t, c, msg("x", "rp@x"), "anyone@example.org")
	assert.True(t, strings.HasPrefix(string(got), "Return-Path: <c@customer.example>\r\nFrom:"), string(got))
}

type processorFunc func(ctx context.Context, raw []byte, o *mailcase.ProcessOptions) (*mailcase.Result, error)

func (f processorFunc) Process(ctx context.Context, raw []byte, o *mailcase.ProcessOptions) (*mailcase.Result, error) {
	return f(ctx, raw, o)
}
