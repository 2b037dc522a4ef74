package pop3source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors of the client.
var (
	// ErrServer wraps a -ERR answer; the error text carries the server's
	// reason.
	ErrServer = errors.New("pop3: server error")
	// ErrProtocol is returned for an answer that breaks RFC 1939.
	ErrProtocol = errors.New("pop3: protocol violation")
	// ErrLineTooLong is returned for a line over the line limit.
	ErrLineTooLong = errors.New("pop3: line too long")
	// ErrMessageTooLarge is returned when a message exceeds the limit
	// given to Retr or Top, with the first limit bytes. The rest is read
	// and discarded, so the session stays usable, unless it exceeds the
	// limit by more than 64 MiB (the session is then broken).
	ErrMessageTooLarge = errors.New("pop3: message too large")
)

// ClientOptions configures a Client. A nil *ClientOptions means defaults.
type ClientOptions struct {
	// MaxLine bounds a status line and a line of a listing (CAPA, LIST,
	// UIDL), CRLF included; 0 means 1 MiB. Message data (RETR, TOP) is
	// bounded by the size limit of the call only, whatever its line
	// lengths (minified HTML, unwrapped base64).
	MaxLine int
	// Timeout bounds each command (sending it and reading its whole
	// answer); 0 means 2 minutes.
	Timeout time.Duration
}

// Client is a POP3 client (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS). It is
// not safe for concurrent use: POP3 is strictly one command at a time.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	maxLine int
	timeout time.Duration
	broken  error // set when the session is out of sync
	// Greeting is the text of the server's +OK greeting.
	Greeting string
}

// MessageInfo is one entry of LIST or UIDL.
type MessageInfo struct {
	// Num is the message number of this session.
	Num int
	// Size is the size in octets (LIST).
	Size int64
	// UID is the unique-id (UIDL).
	UID string
}

// NewClient reads the greeting on conn and returns a client. It takes
// ownership of conn.
func NewClient(ctx context.Context, conn net.Conn, opts *ClientOptions) (*Client, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxLine <= 0 {
		o.MaxLine = 1 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	c := &Client{conn: conn, maxLine: o.MaxLine, timeout: o.Timeout}
	c.r = bufio.NewReaderSize(conn, 16<<10)
	c.w = bufio.NewWriter(conn)
	var err error
	c.Greeting, err = c.cmd(ctx, "")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3: greeting: %w", err)
	}
	return c, nil
}

// DialClient connects to addr, with implicit TLS when tlsConfig is not nil.
func DialClient(ctx context.Context, addr string, tlsConfig *tls.Config, opts *ClientOptions) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: dial: %w", err)
	}
	if tlsConfig != nil {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("pop3: TLS: %w", err)
		}
		conn = tc
	}
	return NewClient(ctx, conn, opts)
}

// Close closes the connection without QUIT: deletions are not committed.
func (c *Client) Close() error { return c.conn.Close() }

// guard sets the command deadline and closes the connection if ctx ends.
func (c *Client) guard(ctx context.Context) func() {
	dl := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// readLine reads one line without its CRLF (or LF).
func (c *Client) readLine() (line []byte, err error) {
	defer func() {
		if err != nil && c.broken == nil {
			c.broken = err
		}
	}()
	for {
		frag, err := c.r.ReadSlice('\n')
		if len(line)+len(frag) > c.maxLine {
			c.broken = ErrLineTooLong
			return nil, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, c.maxLine)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// cmd sends a command line (none when line is "") and reads a status line.
func (c *Client) cmd(ctx context.Context, line string) (string, error) {
	defer c.guard(ctx)()
	return c.cmdLocked(line)
}

func (c *Client) cmdLocked(line string) (string, error) {
	if c.broken != nil {
		return "", fmt.Errorf("pop3: session unusable after: %w", c.broken)
	}
	if line != "" {
		if strings.ContainsAny(line, "\r\n") {
			return "", fmt.Errorf("pop3: CR or LF in command")
		}
		_, _ = c.w.WriteString(line + "\r\n")
		if err := c.w.Flush(); err != nil {
			c.broken = err
			return "", err
		}
	}
	resp, err := c.readLine()
	if err != nil {
		return "", err
	}
	if len(resp) > 4096 {
		return "", fmt.Errorf("%w: status line of %d bytes", ErrProtocol, len(resp))
	}
	s := string(resp)
	switch {
	case strings.HasPrefix(s, "+OK"):
		return strings.TrimSpace(s[3:]), nil
	case strings.HasPrefix(s, "-ERR"):
		verb, _, _ := strings.Cut(line, " ")
		return "", fmt.Errorf("%w: %s: %s", ErrServer, verb, printable(strings.TrimSpace(s[4:])))
	}
	c.broken = fmt.Errorf("%w: status %q", ErrProtocol, printable(s))
	return "", c.broken
}

// Broken returns the error that left the session out of sync (an I/O
// error, a protocol violation, an oversized message), or nil.
func (c *Client) Broken() error { return c.broken }

func printable(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// multiline reads a dot-terminated block, unstuffing leading dots, up to
// limit bytes (CRLF line ends) when limit >= 0. Over the limit it returns
// ErrMessageTooLarge at once; the rest is not read, so the client is broken.
func (c *Client) multiline(limit int64) ([]byte, error) {
	var buf bytes.Buffer
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 1 && line[0] == '.' {
			break
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		if limit >= 0 && int64(buf.Len()+len(line)+2) > limit {
			c.broken = fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, limit)
			return nil, c.broken
		}
		buf.Write(line)
		buf.WriteString("\r\n")
	}
	return buf.Bytes(), nil
}

// Capa returns the capabilities (RFC 2449), upper-cased names mapped to
// their arguments. A server without CAPA gives an empty map.
func (c *Client) Capa(ctx context.Context) (map[string][]string, error) {
	defer c.guard(ctx)()
	caps := map[string][]string{}
	if _, err := c.cmdLocked("CAPA"); err != nil {
		if errors.Is(err, ErrServer) {
			return caps, nil
		}
		return nil, err
	}
	data, err := c.multiline(1 << 20)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(data), "\r\n") {
		f := strings.Fields(l)
		if len(f) > 0 {
			caps[strings.ToUpper(f[0])] = f[1:]
		}
	}
	return caps, nil
}

// StartTLS upgrades the connection with STLS (RFC 2595).
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if _, err := c.cmd(ctx, "STLS"); err != nil {
		return err
	}
	if c.r.Buffered() > 0 {
		return fmt.Errorf("%w: data after STLS answer", ErrProtocol)
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("pop3: TLS: %w", err)
	}
	c.conn = tc
	c.r.Reset(tc)
	c.w.Reset(tc)
	return nil
}

// Auth logs in with USER and PASS.
func (c *Client) Auth(ctx context.Context, user, pass string) error {
	if _, err := c.cmd(ctx, "USER "+user); err != nil {
		return err
	}
	_, err := c.cmd(ctx, "PASS "+pass)
	return err
}

// Stat returns the message count and total size.
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	s, err := c.cmd(ctx, "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%w: STAT %q", ErrProtocol, printable(s))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, fmt.Errorf("%w: STAT %q", ErrProtocol, printable(s))
	}
	return count, size, nil
}

// List returns the number and size of every message.
func (c *Client) List(ctx context.Context) ([]MessageInfo, error) {
	lines, err := c.listing(ctx, "LIST")
	if err != nil {
		return nil, err
	}
	out := make([]MessageInfo, 0, len(lines))
	for _, f := range lines {
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("%w: LIST size %q", ErrProtocol, printable(f[1]))
		}
		out = append(out, MessageInfo{Num: atoi(f[0]), Size: size})
	}
	return out, nil
}

// UIDL returns the number and unique-id of every message.
func (c *Client) UIDL(ctx context.Context) ([]MessageInfo, error) {
	lines, err := c.listing(ctx, "UIDL")
	if err != nil {
		return nil, err
	}
	out := make([]MessageInfo, 0, len(lines))
	for _, f := range lines {
		uid := f[1]
		if len(uid) > 70 {
			return nil, fmt.Errorf("%w: unique-id of %d bytes", ErrProtocol, len(uid))
		}
		out = append(out, MessageInfo{Num: atoi(f[0]), UID: uid})
	}
	return out, nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func (c *Client) listing(ctx context.Context, verb string) ([][2]string, error) {
	defer c.guard(ctx)()
	if _, err := c.cmdLocked(verb); err != nil {
		return nil, err
	}
	data, err := c.multiline(64 << 20)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: %s line %q", ErrProtocol, verb, printable(l))
		}
		if n, err := strconv.Atoi(f[0]); err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: %s message number %q", ErrProtocol, verb, printable(f[0]))
		}
		out = append(out, [2]string{f[0], f[1]})
	}
	return out, nil
}

// Retr downloads message n, dot-unstuffed with CRLF line ends, up to
// limit bytes (-1: no limit). Over the limit it returns the first limit
// bytes and ErrMessageTooLarge; lines may be of any length.
func (c *Client) Retr(ctx context.Context, n int, limit int64) ([]byte, error) {
	defer c.guard(ctx)()
	if _, err := c.cmdLocked("RETR " + strconv.Itoa(n)); err != nil {
		return nil, err
	}
	return c.data(limit)
}

// Top downloads the header of message n and lines lines of its body, like
// Retr.
func (c *Client) Top(ctx context.Context, n, lines int, limit int64) ([]byte, error) {
	defer c.guard(ctx)()
	if _, err := c.cmdLocked("TOP " + strconv.Itoa(n) + " " + strconv.Itoa(lines)); err != nil {
		return nil, err
	}
	return c.data(limit)
}

// maxDrain is how far past its limit a message is read and discarded to
// keep the session in sync; beyond it the session is broken.
const maxDrain = 64 << 20

// data reads a dot-terminated message, unstuffing leading dots and
// normalising line ends to CRLF, keeping at most limit bytes (limit < 0:
// no limit). Lines may be of any length: only the total is bounded. Over
// the limit the rest is read and discarded up to maxDrain bytes, and the
// first limit bytes are returned with ErrMessageTooLarge.
func (c *Client) data(limit int64) (out []byte, err error) {
	defer func() {
		if err != nil && !errors.Is(err, ErrMessageTooLarge) && c.broken == nil {
			c.broken = err
		}
	}()
	var buf bytes.Buffer
	var dropped int64
	lineStart := true
	lineOff := 0 // where the current line starts in buf
	keep := func(p []byte) {
		if limit >= 0 && int64(buf.Len()+len(p)) > limit {
			n := max(limit-int64(buf.Len()), 0)
			buf.Write(p[:n])
			dropped += int64(len(p)) - n
			return
		}
		buf.Write(p)
	}
	for {
		frag, rerr := c.r.ReadSlice('\n')
		if rerr != nil && !errors.Is(rerr, bufio.ErrBufferFull) {
			if errors.Is(rerr, io.EOF) {
				rerr = io.ErrUnexpectedEOF
			}
			return nil, rerr
		}
		complete := rerr == nil
		if lineStart {
			if complete && (bytes.Equal(frag, []byte(".\r\n")) || bytes.Equal(frag, []byte(".\n"))) {
				break
			}
			if len(frag) > 0 && frag[0] == '.' {
				frag = frag[1:]
			}
			lineOff = buf.Len()
		}
		if !complete {
			keep(frag)
			lineStart = false
		} else {
			body := bytes.TrimSuffix(frag, []byte("\n"))
			body = bytes.TrimSuffix(body, []byte("\r"))
			if len(body) == 0 && len(frag) > 0 && frag[0] == '\n' && buf.Len() > lineOff && buf.Bytes()[buf.Len()-1] == '\r' {
				buf.Truncate(buf.Len() - 1) // CR at the end of the previous fragment
			}
			keep(body)
			keep([]byte("\r\n"))
			lineStart = true
		}
		if dropped > maxDrain {
			c.broken = fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, limit)
			return nil, c.broken
		}
	}
	if dropped > 0 {
		return buf.Bytes(), fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// Dele marks message n deleted; the deletion is committed by Quit.
func (c *Client) Dele(ctx context.Context, n int) error {
	_, err := c.cmd(ctx, "DELE "+strconv.Itoa(n))
	return err
}

// Rset unmarks all deletions.
func (c *Client) Rset(ctx context.Context) error {
	_, err := c.cmd(ctx, "RSET")
	return err
}

// Noop does nothing (keeps the session alive).
func (c *Client) Noop(ctx context.Context) error {
	_, err := c.cmd(ctx, "NOOP")
	return err
}

// Quit commits deletions and closes the connection.
func (c *Client) Quit(ctx context.Context) error {
	_, err := c.cmd(ctx, "QUIT")
	c.conn.Close()
	return err
}
