// Package imaptest runs a real IMAP server (go-imap's in-memory server) on
// loopback for tests, over implicit TLS with a certificate generated on the
// fly, and offers helpers to fill and inspect its mailboxes.
//
// A Server is safe for concurrent use.
package imaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// Cert is a self-signed test certificate authority and a leaf certificate
// for 127.0.0.1 and localhost signed by it.
type Cert struct {
	// Server presents the leaf certificate.
	Server *tls.Config
	// Client trusts the test CA only.
	Client *tls.Config
	// CAPEM is the CA certificate in PEM form (for config files).
	CAPEM []byte
	// CertPEM and KeyPEM are the leaf certificate and its key in PEM form
	// (for servers configured by file, like Dovecot).
	CertPEM, KeyPEM []byte
}

// NewCert generates a fresh test CA and leaf certificate.
func NewCert() (*Cert, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("imaptest: CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "emailcrm test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("imaptest: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("imaptest: CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("imaptest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("imaptest: certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("imaptest: key: %w", err)
	}
	return &Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Server:  &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		Client:  &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// Options configures a Server. A nil *Options means defaults.
type Options struct {
	// Username and Password of the single user; "" means "user" / "pass".
	Username, Password string
	// Folders are created in addition to INBOX (quarantine, archive...).
	Folders []string
	// Token, when set, is accepted by AUTHENTICATE XOAUTH2 for Username.
	Token string
	// StartTLS serves plain text with STARTTLS instead of implicit TLS.
	StartTLS bool
	// NoMove, NoIdle and NoUIDPlus remove the MOVE, IDLE and UIDPLUS
	// capabilities.
	NoMove, NoIdle, NoUIDPlus bool
	// NoKeywords makes SELECT announce PERMANENTFLAGS without \*: the
	// server stores no keywords.
	NoKeywords bool
	// Cert is the certificate to use; nil generates one.
	Cert *Cert
}

// Server is a running in-memory IMAP server.
type Server struct {
	// Addr is the host:port it listens on.
	Addr string
	// Cert holds the TLS configurations (Cert.Client trusts the server).
	Cert *Cert

	Username, Password string

	mem  *imapmemserver.Server
	srv  *imapserver.Server
	ln   net.Listener
	user *imapmemserver.User
	opts Options
	done chan struct{}

	mu    sync.Mutex
	fault func(op, arg string) error
}

// Start starts a server on 127.0.0.1 with an INBOX and opts.Folders. Close
// stops it.
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
	cert := o.Cert
	if cert == nil {
		var err error
		if cert, err = NewCert(); err != nil {
			return nil, err
		}
	}
	s := &Server{Cert: cert, Username: o.Username, Password: o.Password, opts: o, done: make(chan struct{})}
	s.mem = imapmemserver.New()
	s.user = imapmemserver.NewUser(o.Username, o.Password)
	s.mem.AddUser(s.user)
	for _, f := range append([]string{"INBOX"}, o.Folders...) {
		if err := s.user.Create(f, nil); err != nil {
			return nil, fmt.Errorf("imaptest: create %s: %w", f, err)
		}
	}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapIdle: {}, imap.CapMove: {}}
	if o.NoMove {
		delete(caps, imap.CapMove)
	}
	if o.NoIdle {
		delete(caps, imap.CapIdle)
	}
	if o.NoUIDPlus {
		delete(caps, imap.CapUIDPlus)
	}
	sopts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			var inner imapserver.Session = &hookSession{Session: s.mem.NewSession(), s: s}
			if o.Token != "" {
				return &oauthSession{Session: inner, s: s}, nil, nil
			}
			if o.NoMove {
				return noMoveSession{inner}, nil, nil
			}
			return inner, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discardLogger{},
	}
	var ln net.Listener
	var err error
	if o.StartTLS {
		sopts.TLSConfig = cert.Server
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	} else {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", cert.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("imaptest: listen: %w", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.srv = imapserver.New(sopts)
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// noMoveSession hides the memory server's MOVE support.
type noMoveSession struct{ imapserver.Session }

// SetFault installs f, called before every CREATE (arg: the folder), COPY
// and MOVE (arg: the destination), STORE (arg: the flags, space
// separated), EXPUNGE (arg: "") and FETCH (arg: the items asked besides
// UID, space separated: FLAGS, RFC822.SIZE, BODY[...]): a non-nil error
// refuses the command with a tagged NO carrying its text (an *imap.Error
// is sent as is). nil removes the hook. It simulates quota, permission and
// missing-folder refusals; f may also act meanwhile as another client
// would (expunge mail between a scan and a fetch), or block to hold the
// client inside a command.
func (s *Server) SetFault(f func(op, arg string) error) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

func (s *Server) check(op, arg string) error {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f(op, arg)
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: err.Error()}
}

// hookSession applies the Server's fault hook and NoKeywords.
type hookSession struct {
	imapserver.Session
	s *Server
}

func (h *hookSession) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := h.Session.Select(mailbox, options)
	if err == nil && h.s.opts.NoKeywords {
		data.PermanentFlags = slices.DeleteFunc(slices.Clone(data.PermanentFlags), func(f imap.Flag) bool {
			return f == imap.FlagWildcard || !strings.HasPrefix(string(f), `\`)
		})
		if len(data.PermanentFlags) == 0 {
			data.PermanentFlags = []imap.Flag{imap.FlagDeleted, imap.FlagSeen}
		}
	}
	return data, err
}

func (h *hookSession) Create(mailbox string, options *imap.CreateOptions) error {
	if err := h.s.check("CREATE", mailbox); err != nil {
		return err
	}
	return h.Session.Create(mailbox, options)
}

func (h *hookSession) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	if err := h.s.check("COPY", dest); err != nil {
		return nil, err
	}
	return h.Session.Copy(numSet, dest)
}

func (h *hookSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	var names []string
	for _, f := range flags.Flags {
		names = append(names, string(f))
	}
	if err := h.s.check("STORE", strings.Join(names, " ")); err != nil {
		return err
	}
	if h.s.opts.NoKeywords {
		// Keywords are not stored (as RFC 9051 allows without \*).
		f := *flags
		f.Flags = slices.DeleteFunc(slices.Clone(f.Flags), func(f imap.Flag) bool { return !strings.HasPrefix(string(f), `\`) })
		flags = &f
	}
	return h.Session.Store(w, numSet, flags, options)
}

func (h *hookSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	var items []string
	if options.Flags {
		items = append(items, "FLAGS")
	}
	if options.RFC822Size {
		items = append(items, "RFC822.SIZE")
	}
	for _, sec := range options.BodySection {
		item := "BODY[" + string(sec.Specifier) + "]"
		if sec.Partial != nil {
			item += fmt.Sprintf("<%d.%d>", sec.Partial.Offset, sec.Partial.Size)
		}
		items = append(items, item)
	}
	if err := h.s.check("FETCH", strings.Join(items, " ")); err != nil {
		return err
	}
	return h.Session.Fetch(w, numSet, options)
}

func (h *hookSession) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if err := h.s.check("EXPUNGE", ""); err != nil {
		return err
	}
	return h.Session.Expunge(w, uids)
}

func (h *hookSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if err := h.s.check("MOVE", dest); err != nil {
		return err
	}
	m, ok := h.Session.(imapserver.SessionMove)
	if !ok {
		return fmt.Errorf("imaptest: MOVE unsupported")
	}
	return m.Move(w, numSet, dest)
}

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// Append adds a mail to folder and returns its UID.
func (s *Server) Append(folder string, raw []byte, flags ...imap.Flag) (imap.UID, error) {
	data, err := s.user.Append(folder, literal{bytes.NewReader(raw), int64(len(raw))}, &imap.AppendOptions{Flags: flags})
	if err != nil {
		return 0, fmt.Errorf("imaptest: append: %w", err)
	}
	return data.UID, nil
}

// ResetUIDValidity deletes and recreates folder with a new UIDVALIDITY and
// appends the given mails again, as a server rebuilding its index would.
func (s *Server) ResetUIDValidity(folder string, raws [][]byte) error {
	if err := s.user.Delete(folder); err != nil {
		return fmt.Errorf("imaptest: delete %s: %w", folder, err)
	}
	if err := s.user.Create(folder, nil); err != nil {
		return fmt.Errorf("imaptest: create %s: %w", folder, err)
	}
	for _, raw := range raws {
		if _, err := s.Append(folder, raw); err != nil {
			return err
		}
	}
	return nil
}

// UIDValidity returns the UIDVALIDITY of folder.
func (s *Server) UIDValidity(folder string) (uint32, error) {
	st, err := s.user.Status(folder, &imap.StatusOptions{UIDValidity: true})
	if err != nil {
		return 0, fmt.Errorf("imaptest: status: %w", err)
	}
	return st.UIDValidity, nil
}

// Message is a mail held by the server.
type Message struct {
	UID   imap.UID
	Flags []imap.Flag
	Raw   []byte
}

// Messages lists the mails of folder (not expunged), in UID order, read
// over IMAP (BODY.PEEK, so flags are unchanged).
func (s *Server) Messages(folder string) ([]Message, error) {
	c, err := s.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, fmt.Errorf("imaptest: select %s: %w", folder, err)
	}
	n, err := s.Count(folder)
	if err != nil || n == 0 {
		return nil, err
	}
	var set imap.SeqSet
	set.AddRange(1, uint32(n))
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("imaptest: fetch: %w", err)
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, Message{UID: m.UID, Flags: m.Flags, Raw: m.FindBodySection(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// Dial opens an authenticated client connection (the caller closes it).
func (s *Server) Dial() (*imapclient.Client, error) {
	copts := &imapclient.Options{TLSConfig: s.Cert.Client}
	var c *imapclient.Client
	var err error
	if s.opts.StartTLS {
		c, err = imapclient.DialStartTLS(s.Addr, copts)
	} else {
		c, err = imapclient.DialTLS(s.Addr, copts)
	}
	if err != nil {
		return nil, fmt.Errorf("imaptest: dial: %w", err)
	}
	if err := c.Login(s.Username, s.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imaptest: login: %w", err)
	}
	return c, nil
}

// Expunge removes the mails of folder with the given UIDs, as another
// client would (STORE \Deleted, then UID EXPUNGE). Safe to call from a
// SetFault hook.
func (s *Server) Expunge(folder string, uids ...imap.UID) error {
	c, err := s.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		return fmt.Errorf("imaptest: select %s: %w", folder, err)
	}
	set := imap.UIDSetNum(uids...)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("imaptest: store: %w", err)
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		return fmt.Errorf("imaptest: expunge: %w", err)
	}
	return nil
}

// Count returns the number of mails in folder.
func (s *Server) Count(folder string) (int, error) {
	st, err := s.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0, fmt.Errorf("imaptest: status: %w", err)
	}
	if st.NumMessages == nil {
		return 0, nil
	}
	return int(*st.NumMessages), nil
}

// CountFlag returns the number of mails in folder carrying flag.
func (s *Server) CountFlag(folder string, flag imap.Flag) (int, error) {
	msgs, err := s.Messages(folder)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		for _, f := range m.Flags {
			if strings.EqualFold(string(f), string(flag)) {
				n++
				break
			}
		}
	}
	return n, nil
}

type literal struct {
	*bytes.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

// oauthSession adds AUTHENTICATE XOAUTH2 to the memory server's session.
type oauthSession struct {
	imapserver.Session
	s *Server
}

func (o *oauthSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	m, ok := o.Session.(imapserver.SessionMove)
	if !ok {
		return fmt.Errorf("imaptest: MOVE unsupported")
	}
	return m.Move(w, numSet, dest)
}

func (o *oauthSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2", sasl.Plain} }

func (o *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{o: o}, nil
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			return o.Login(username, password)
		}), nil
	}
	return nil, fmt.Errorf("imaptest: unsupported mechanism %s", mech)
}

type xoauth2Server struct {
	o    *oauthSession
	done bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.done {
		return nil, true, fmt.Errorf("authentication failed")
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, auth string
	for _, f := range bytes.Split(resp, []byte{1}) {
		switch {
		case bytes.HasPrefix(f, []byte("user=")):
			user = string(f[5:])
		case bytes.HasPrefix(f, []byte("auth=")):
			auth = string(f[5:])
		}
	}
	if user != x.o.s.Username || auth != "Bearer "+x.o.s.opts.Token {
		x.done = true
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	if err := x.o.Login(x.o.s.Username, x.o.s.Password); err != nil {
		return nil, true, err
	}
	return nil, true, nil
}
