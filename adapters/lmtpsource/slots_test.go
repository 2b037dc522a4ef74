package lmtpsource_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/lmtpsource"
)

// rawSession is a connection that has said LHLO and nothing more.
type rawSession struct {
	c net.Conn
	r *bufio.Reader
}

func lhloOnly(t *testing.T, addr string) *rawSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	s := &rawSession{c: c, r: bufio.NewReader(c)}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	greet, err := s.r.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(greet, "220"), greet)
	_, err = fmt.Fprintf(c, "LHLO idle.example\r\n")
	require.NoError(t, err)
	for {
		l, err := s.r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(l, "250 ") {
			return s
		}
	}
}

// closedWith421 reports whether the session is answered 421 and closed
// within d.
func (s *rawSession) closedWith421(d time.Duration) bool {
	_ = s.c.SetReadDeadline(time.Now().Add(d))
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return false
		}
		if strings.HasPrefix(l, "421") {
			_, err := s.r.ReadString('\n')
			return err != nil // closed after the 421
		}
	}
}

// 64 connections that only said LHLO fill every slot (the default limit);
// a delivering MTA connecting next gets its mail filed promptly instead of
// 421, and one idle session loses its slot.
func TestIdleSessionsDoNotStarveDelivery(t *testing.T) {
	e := start(t, nil) // defaults: 64 slots, 1 minute idle timeout
	idle := make([]*rawSession, 64)
	for i := range idle {
		idle[i] = lhloOnly(t, e.addr)
	}
	begin := time.Now()
	c := client(t, e.addr)
	resp := deliver(t, c, msg("Through the crowd", "crowd-1@customer.example"), "support@example.com")
	delivered(t, resp)
	took := time.Since(begin)
	assert.Less(t, took, 2*time.Second, "delivered promptly")
	assert.EqualValues(t, 1, e.support.Stats().Created)
	// The oldest idle session gave its slot.
	assert.True(t, idle[0].closedWith421(3*time.Second), "the longest-idle session is closed with 421")
	// A second delivery on the same connection and a second deliverer work too.
	resp = deliver(t, c, msg("Again", "crowd-2@customer.example"), "support@example.com")
	delivered(t, resp)
	c2 := client(t, e.addr)
	resp = deliver(t, c2, msg("Another MTA", "crowd-3@customer.example"), "support@example.com")
	delivered(t, resp)
	assert.EqualValues(t, 3, e.support.Stats().Created)
}

// Sessions in a transaction are never evicted: with every slot inside a
// transaction a new connection gets 421.
func TestSessionsInTransactionKeepTheirSlots(t *testing.T) {
	e := start(t, func(o *lmtpsource.Options) { o.MaxConnections = 3 })
	var busy []*rawSession
	for range 3 {
		s := lhloOnly(t, e.addr)
		_, err := fmt.Fprintf(s.c, "MAIL FROM:<c@customer.example>\r\nRCPT TO:<support@example.com>\r\n")
		require.NoError(t, err)
		for range 2 {
			l, err := s.r.ReadString('\n')
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(l, "250"), l)
		}
		busy = append(busy, s)
	}
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	l, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(l, "421"), l)
	// The transactions complete.
	for i, s := range busy {
		_, err := fmt.Fprintf(s.c, "DATA\r\n")
		require.NoError(t, err)
		l, err := s.r.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(l, "354"), l)
		_, err = fmt.Fprintf(s.c, "%s.\r\n", msg("Busy", fmt.Sprintf("busy-%d@customer.example", i)))
		require.NoError(t, err)
		l, err = s.r.ReadString('\n')
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(l, "250"), l)
	}
	assert.EqualValues(t, 3, e.support.Stats().Created)
}

// A client sending NOOP at short intervals, each within the read timeout,
// is closed once it has delivered nothing for the idle timeout.
func TestNoopKeepaliveClosedAtIdleTimeout(t *testing.T) {
	e := start(t, func(o *lmtpsource.Options) {
		o.ReadTimeout = 2 * time.Second
		o.IdleTimeout = 600 * time.Millisecond
		o.MaxIdleCommands = 1000
	})
	s := lhloOnly(t, e.addr)
	begin := time.Now()
	closed := false
	for time.Since(begin) < 5*time.Second && !closed {
		if _, err := fmt.Fprintf(s.c, "NOOP\r\n"); err != nil {
			closed = true
			break
		}
		_ = s.c.SetReadDeadline(time.Now().Add(time.Second))
		l, err := s.r.ReadString('\n')
		switch {
		case err != nil:
			closed = true
		case strings.HasPrefix(l, "421"):
			closed = true
		default:
			require.True(t, strings.HasPrefix(l, "250"), l)
			time.Sleep(100 * time.Millisecond)
		}
	}
	require.True(t, closed, "a NOOP keep-alive must not hold the slot")
	took := time.Since(begin)
	assert.GreaterOrEqual(t, took, 500*time.Millisecond)
	assert.Less(t, took, 2*time.Second, "closed at the idle timeout, before the read timeout could matter")
}

// Idle commands are counted: the one past the limit ends the session.
func TestIdleCommandsCounted(t *testing.T) {
	e := start(t, func(o *lmtpsource.Options) { o.MaxIdleCommands = 5 })
	s := lhloOnly(t, e.addr) // LHLO is the first idle command
	for _, cmd := range []string{"NOOP", "RSET", "HELP", "NOOP"} {
		_, err := fmt.Fprintf(s.c, "%s\r\n", cmd)
		require.NoError(t, err)
		l, err := s.r.ReadString('\n')
		require.NoError(t, err)
		assert.False(t, strings.HasPrefix(l, "421"), "%s: %s", cmd, l)
	}
	_, err := fmt.Fprintf(s.c, "NOOP\r\n")
	require.NoError(t, err)
	assert.True(t, s.closedWith421(3*time.Second), "the sixth idle command ends the session")

	// A delivery restarts the count.
	c := client(t, e.addr)
	for i := range 3 {
		for range 3 {
			require.NoError(t, c.Noop())
		}
		resp := deliver(t, c, msg("Counted", fmt.Sprintf("count-%d@customer.example", i)), "support@example.com")
		delivered(t, resp)
	}
	assert.EqualValues(t, 3, e.support.Stats().Created)
}

// A session that keeps delivering is closed past the maximum session
// duration, between deliveries, after its mail is answered.
func TestMaxSessionDuration(t *testing.T) {
	e := start(t, func(o *lmtpsource.Options) { o.MaxSessionDuration = 700 * time.Millisecond })
	c := client(t, e.addr)
	begin := time.Now()
	var err error
	n := 0
	for time.Since(begin) < 5*time.Second {
		if err = c.Mail("c@customer.example", nil); err != nil {
			break
		}
		require.NoError(t, c.Rcpt("support@example.com", nil))
		w, err2 := c.Data()
		require.NoError(t, err2)
		_, err2 = fmt.Fprint(w, msg("Long session", fmt.Sprintf("long-%d@customer.example", n)))
		require.NoError(t, err2)
		resp, err2 := w.CloseWithLMTPResponse()
		require.NoError(t, err2)
		delivered(t, resp)
		n++
		time.Sleep(50 * time.Millisecond)
	}
	require.Error(t, err, "the session is closed")
	took := time.Since(begin)
	assert.GreaterOrEqual(t, took, 600*time.Millisecond)
	assert.Less(t, took, 2*time.Second)
	assert.EqualValues(t, n, e.support.Stats().Created, "every answered mail is filed")
	assert.Greater(t, n, 3)
}

// delivered asserts a 250 for support@example.com.
func delivered(t *testing.T, resp map[string]*smtp.DataResponse) {
	t.Helper()
	r := resp["support@example.com"]
	require.NotNil(t, r, "no answer for the recipient")
	require.True(t, strings.HasPrefix(r.StatusText, "2."), r.StatusText)
}
