// Package pop3test runs a small RFC 1939 POP3 server on loopback for tests:
// CAPA, STLS, USER/PASS, STAT, LIST, UIDL, TOP, RETR (dot-stuffed), DELE,
// RSET, NOOP and QUIT with the UPDATE state (deletions commit only on
// QUIT). A Server is safe for concurrent use.
package pop3test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	Username, Password string // "" means user / pass
	// TLS serves implicit TLS with this configuration.
	TLS *tls.Config
	// StartTLS offers STLS with this configuration.
	StartTLS *tls.Config
	// NoUIDL disables UIDL and NoCapa disables CAPA.
	NoUIDL, NoCapa bool
	// ListSize, when set, gives the size LIST announces for a mail (its
	// unique-id and real size), to play a server whose sizes are wrong.
	ListSize func(uid string, size int) int
}

type msg struct {
	uid string
	raw []byte
}

// Server is a running POP3 server.
type Server struct {
	Addr string
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	msgs    []msg
	nextUID int
	// Hook, if set, is called before each command with its line; returning
	// false drops the connection (to simulate failures).
	Hook func(line string) bool
}

// Start starts a server on 127.0.0.1.
func Start(opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Username == "" {
		o.Username = "user"
	}
	if o.Password == "" {
		o.Password = "pass"
	}
	var ln net.Listener
	var err error
	if o.TLS != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", o.TLS)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("pop3test: listen: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), opts: o, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	return s, nil
}

// Close stops the server and waits for its connections.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Add adds a mail to the maildrop and returns its unique-id.
func (s *Server) Add(raw []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUID++
	uid := "uid-" + strconv.Itoa(s.nextUID)
	s.msgs = append(s.msgs, msg{uid: uid, raw: bytes.Clone(raw)})
	return uid
}

// Messages returns the mails in the maildrop.
func (s *Server) Messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.raw
	}
	return out
}

func (s *Server) hook(line string) bool {
	s.mu.Lock()
	h := s.Hook
	s.mu.Unlock()
	return h == nil || h(line)
}

// SetHook sets Hook safely.
func (s *Server) SetHook(h func(line string) bool) {
	s.mu.Lock()
	s.Hook = h
	s.mu.Unlock()
}

func stuff(raw []byte) []byte {
	var b bytes.Buffer
	lines := bytes.Split(raw, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) > 0 && l[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

func (s *Server) serve(conn net.Conn) {
	defer func() { conn.Close() }()
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	reply := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\r\n", args...)
	}
	reply("+OK pop3test ready")
	w.Flush()
	authed, tlsOn := false, s.opts.TLS != nil
	user := ""
	// The session's view: snapshot at login, deletions pending until QUIT.
	var view []msg
	deleted := map[int]bool{}
	get := func(arg string) (int, *msg) {
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 || n > len(view) || deleted[n] {
			return 0, nil
		}
		return n, &view[n-1]
	}
	for {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if !s.hook(line) {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		switch {
		case verb == "CAPA" && !s.opts.NoCapa:
			reply("+OK capabilities")
			reply("USER")
			reply("TOP")
			if !s.opts.NoUIDL {
				reply("UIDL")
			}
			if s.opts.StartTLS != nil && !authed && !tlsOn {
				reply("STLS")
			}
			reply(".")
		case verb == "STLS" && s.opts.StartTLS != nil && !authed && !tlsOn:
			tlsOn = true
			reply("+OK begin TLS")
			w.Flush()
			tc := tls.Server(conn, s.opts.StartTLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn = tc
			r.Reset(tc)
			w.Reset(tc)
			continue
		case verb == "USER" && !authed:
			user = arg
			reply("+OK")
		case verb == "PASS" && !authed:
			if user != s.opts.Username || arg != s.opts.Password {
				reply("-ERR [AUTH] invalid credentials")
				break
			}
			authed = true
			s.mu.Lock()
			view = append([]msg(nil), s.msgs...)
			s.mu.Unlock()
			reply("+OK %d messages", len(view))
		case verb == "QUIT":
			if authed {
				s.mu.Lock()
				gone := map[string]bool{}
				for n := range deleted {
					gone[view[n-1].uid] = true
				}
				kept := s.msgs[:0]
				for _, m := range s.msgs {
					if !gone[m.uid] {
						kept = append(kept, m)
					}
				}
				s.msgs = kept
				s.mu.Unlock()
			}
			reply("+OK bye")
			w.Flush()
			return
		case !authed:
			reply("-ERR authenticate first")
		case verb == "STAT":
			n, size := 0, 0
			for i, m := range view {
				if !deleted[i+1] {
					n++
					size += len(m.raw)
				}
			}
			reply("+OK %d %d", n, size)
		case verb == "LIST" && arg == "":
			reply("+OK")
			for i, m := range view {
				if !deleted[i+1] {
					size := len(m.raw)
					if s.opts.ListSize != nil {
						size = s.opts.ListSize(m.uid, size)
					}
					reply("%d %d", i+1, size)
				}
			}
			reply(".")
		case verb == "UIDL" && arg == "" && !s.opts.NoUIDL:
			reply("+OK")
			for i, m := range view {
				if !deleted[i+1] {
					reply("%d %s", i+1, m.uid)
				}
			}
			reply(".")
		case verb == "RETR":
			if _, m := get(arg); m != nil {
				reply("+OK %d octets", len(m.raw))
				w.Write(stuff(m.raw))
			} else {
				reply("-ERR no such message")
			}
		case verb == "TOP":
			a, nl, _ := strings.Cut(arg, " ")
			_, m := get(a)
			lines, err := strconv.Atoi(nl)
			if m == nil || err != nil || lines < 0 {
				reply("-ERR no such message")
				break
			}
			head, body, _ := bytes.Cut(m.raw, []byte("\r\n\r\n"))
			out := append(bytes.Clone(head), "\r\n\r\n"...)
			bl := bytes.SplitAfter(body, []byte("\n"))
			for i := 0; i < lines && i < len(bl); i++ {
				out = append(out, bl[i]...)
			}
			reply("+OK")
			w.Write(stuff(out))
		case verb == "DELE":
			if n, m := get(arg); m != nil {
				deleted[n] = true
				reply("+OK deleted")
			} else {
				reply("-ERR no such message")
			}
		case verb == "RSET":
			clear(deleted)
			reply("+OK")
		case verb == "NOOP":
			reply("+OK")
		default:
			reply("-ERR unknown command")
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}
