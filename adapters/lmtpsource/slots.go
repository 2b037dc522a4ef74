package lmtpsource

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// slots bounds the connections and the time and commands a session may
// spend without delivering (see Options.IdleTimeout, MaxIdleCommands,
// MaxSessionDuration). A session is closed by making its reads time out:
// go-smtp then answers "421 4.4.2 Idle timeout" itself (through TLS when
// the session uses it) and closes the connection.
type slots struct {
	max         int
	idle        time.Duration
	maxIdleCmds int
	maxSession  time.Duration
	log         *slog.Logger

	mu     sync.Mutex
	active int                     // slots in use
	conns  map[string]*trackedConn // by remote address
}

// trackedConn is a connection holding a slot. Its fields after the first
// block are guarded by slots.mu.
type trackedConn struct {
	net.Conn
	sl    *slots
	key   string
	start time.Time
	once  sync.Once
	timer *time.Timer

	inTx, inData bool
	idleSince    time.Time // connect or end of the last delivery
	idleCmds     int       // command lines since then without a transaction
	encrypted    bool      // after STARTTLS: lines cannot be counted on the wire
	closing      bool      // reads fail with a timeout from now on
	transferred  bool      // its slot went to a newer connection
	closed       bool
}

// admit gives c a slot: a free one, else the slot of the session idle the
// longest without a transaction in progress. It returns nil when every
// session is in a transaction.
func (sl *slots) admit(c net.Conn) *trackedConn {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.active >= sl.max {
		var victim *trackedConn
		for _, o := range sl.conns {
			if o.inTx || o.transferred || o.closed {
				continue
			}
			if victim == nil || o.idleSince.Before(victim.idleSince) {
				victim = o
			}
		}
		if victim == nil {
			return nil
		}
		victim.transferred = true
		victim.forceLocked("connection limit reached; the slot of the longest-idle session goes to a new connection")
	} else {
		sl.active++
	}
	now := time.Now()
	tc := &trackedConn{Conn: c, sl: sl, key: c.RemoteAddr().String(), start: now, idleSince: now}
	sl.conns[tc.key] = tc
	tc.timer = time.AfterFunc(min(sl.idle, sl.maxSession), tc.check)
	return tc
}

// find returns the tracked connection of a remote address.
func (sl *slots) find(remote string) *trackedConn {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.conns[remote]
}

// forceLocked closes the session at its next (or current) read.
func (c *trackedConn) forceLocked(reason string) {
	if c.closing || c.closed {
		return
	}
	c.closing = true
	c.sl.log.Warn("closing LMTP session", "remote", c.key, "reason", reason,
		"age", time.Since(c.start).Round(time.Millisecond).String())
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// check is the timer: it closes a session past its idle or session limit
// and re-arms for the next limit otherwise.
func (c *trackedConn) check() {
	sl := c.sl
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if c.closing || c.closed {
		return
	}
	now := time.Now()
	hard := c.start.Add(2 * sl.maxSession)
	idleEnd := c.idleSince.Add(sl.idle)
	sessionEnd := c.start.Add(sl.maxSession)
	switch {
	case !now.Before(hard):
		c.forceLocked("session lasted twice the maximum session duration")
		return
	case !c.inData && !now.Before(idleEnd):
		c.forceLocked("no mail delivered within the idle timeout")
		return
	case !c.inTx && !now.Before(sessionEnd):
		c.forceLocked("maximum session duration reached")
		return
	}
	next := hard
	if !c.inData && idleEnd.Before(next) {
		next = idleEnd
	}
	if !c.inTx && sessionEnd.Before(next) {
		next = sessionEnd
	}
	if c.inData {
		// Re-checked when the delivery ends (endTx) or at the hard limit.
		next = minTime(next, now.Add(sl.idle))
	}
	c.timer.Reset(next.Sub(now))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// beginTx marks a transaction (MAIL accepted); false when the session is
// closing.
func (c *trackedConn) beginTx() bool {
	if c == nil {
		return true
	}
	c.sl.mu.Lock()
	defer c.sl.mu.Unlock()
	if c.closing {
		return false
	}
	c.inTx = true
	return true
}

// beginData marks the mail being read and filed.
func (c *trackedConn) beginData() {
	if c == nil {
		return
	}
	c.sl.mu.Lock()
	c.inData = true
	c.sl.mu.Unlock()
}

// endTx ends a transaction: delivered (DATA answered) restarts the idle
// clock and count; a reset (RSET, LHLO) does not, and counts as an idle
// command on an encrypted session, where lines cannot be counted.
func (c *trackedConn) endTx(delivered bool) {
	if c == nil {
		return
	}
	sl := c.sl
	sl.mu.Lock()
	defer sl.mu.Unlock()
	wasTx := c.inTx
	c.inTx, c.inData = false, false
	if delivered {
		c.idleSince, c.idleCmds = time.Now(), 0
	} else if c.encrypted && !wasTx {
		c.idleCmds++
		if c.idleCmds > sl.maxIdleCmds {
			c.forceLocked("too many commands without a mail")
		}
	}
	if !c.closing && !c.closed {
		// The limits are checked again now; a session past its duration
		// is closed at its next read, after this delivery is answered.
		c.timer.Reset(0)
	}
}

// Read counts the command lines read while no transaction is in progress.
func (c *trackedConn) Read(b []byte) (int, error) {
	sl := c.sl
	sl.mu.Lock()
	closing := c.closing
	sl.mu.Unlock()
	if closing {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		sl.mu.Lock()
		if !c.inTx && !c.encrypted {
			c.idleCmds += bytes.Count(b[:n], []byte{'\n'})
			if bytes.Contains(bytes.ToUpper(b[:n]), []byte("STARTTLS")) {
				c.encrypted = true // what follows is the TLS handshake
			}
			if c.idleCmds > sl.maxIdleCmds {
				c.forceLocked("too many commands without a mail")
			}
		}
		sl.mu.Unlock()
	}
	return n, err
}

// SetReadDeadline keeps a closing session's reads timing out.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.sl.mu.Lock()
	defer c.sl.mu.Unlock()
	if c.closing {
		t = time.Unix(1, 0)
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline keeps a closing session's reads timing out.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Close releases the slot (unless it went to a newer connection).
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		sl := c.sl
		sl.mu.Lock()
		c.closed = true
		c.timer.Stop()
		if sl.conns[c.key] == c {
			delete(sl.conns, c.key)
		}
		if !c.transferred {
			sl.active--
		}
		sl.mu.Unlock()
	})
	return c.Conn.Close()
}
