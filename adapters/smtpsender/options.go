package smtpsender

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Security selects how the connection is protected.
type Security string

// Connection security modes.
const (
	// TLS is implicit TLS (submissions, port 465). The default.
	TLS Security = "tls"
	// StartTLS upgrades a plain connection with STARTTLS (submission,
	// port 587). The upgrade is mandatory: a server that does not offer
	// STARTTLS is an error, and nothing else (no AUTH, no mail) is sent.
	StartTLS Security = "starttls"
	// Insecure sends everything in clear text. New accepts it only for a
	// loopback address (tests).
	Insecure Security = "insecure"
)

// Login holds the credentials. The zero value sends no AUTH.
//
// Secrets (Password, the token) never appear in errors or logs.
type Login struct {
	// Username is the login; "" means no AUTH.
	Username string
	// Password is used with AUTH PLAIN, or AUTH LOGIN when the server
	// offers LOGIN but not PLAIN.
	Password string
	// TokenSource, when set, authenticates with AUTH XOAUTH2 for Username
	// with a fresh access token at every connection; Password is then
	// unused.
	TokenSource oauth2.TokenSource
}

// Options configures a Sender. A nil *Options means the defaults.
type Options struct {
	// Security is the connection security; "" means TLS.
	Security Security
	// TLSConfig configures TLS (trust a test CA with RootCAs); nil means
	// the system roots. An empty ServerName means the host of the address.
	TLSConfig *tls.Config
	// LocalName is the EHLO name; "" means "localhost".
	LocalName string
	// DialTimeout bounds connecting, the TLS handshake, EHLO and AUTH;
	// 0 means 30s.
	DialTimeout time.Duration
	// SendTimeout bounds one message, from MAIL to the reply to the end of
	// DATA; 0 means 2 minutes.
	SendTimeout time.Duration
	// IdleTimeout is how long a connection is kept open unused between
	// Sends; 0 means 30s. An idle connection is closed (QUIT) once it
	// expires.
	IdleTimeout time.Duration
	// MaxPerConnection is the number of messages sent over one connection
	// before it is closed and a new one dialled; 0 means 100.
	MaxPerConnection int
	// Logger receives Debug logs (connections, deliveries; addresses only
	// at Debug); nil means discard.
	Logger *slog.Logger
}

const (
	defaultDialTimeout = 30 * time.Second
	defaultSendTimeout = 2 * time.Minute
	defaultIdleTimeout = 30 * time.Second
	defaultMaxPerConn  = 100
	// noopAfter is the idle time after which a reused connection is
	// checked with NOOP before MAIL. A connection reused sooner is checked
	// by MAIL itself, and redialled once when MAIL finds it broken.
	noopAfter = time.Second
	// quitTimeout bounds QUIT.
	quitTimeout = 5 * time.Second
)

// config is the validated configuration of a Sender.
type config struct {
	addr, host string
	login      Login
	security   Security
	tls        *tls.Config
	localName  string
	dialTO     time.Duration
	sendTO     time.Duration
	idleTO     time.Duration
	maxPerConn int
	log        *slog.Logger
}

func newConfig(addr string, login Login, opts *Options) (*config, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("smtpsender: address %q: want host:port", addr)
	}
	c := &config{
		addr:       addr,
		host:       host,
		login:      login,
		security:   o.Security,
		localName:  o.LocalName,
		dialTO:     o.DialTimeout,
		sendTO:     o.SendTimeout,
		idleTO:     o.IdleTimeout,
		maxPerConn: o.MaxPerConnection,
		log:        o.Logger,
	}
	switch c.security {
	case "":
		c.security = TLS
	case TLS, StartTLS:
	case Insecure:
		if !isLoopback(host) {
			return nil, fmt.Errorf("smtpsender: security %q is only allowed for a loopback address, not %s", Insecure, addr)
		}
	default:
		return nil, fmt.Errorf("smtpsender: unknown security %q", c.security)
	}
	if login.Username == "" && (login.Password != "" || login.TokenSource != nil) {
		return nil, fmt.Errorf("smtpsender: credentials without a user name")
	}
	if strings.ContainsAny(login.Username, "\r\n") {
		return nil, fmt.Errorf("smtpsender: user name contains a line break")
	}
	if c.localName == "" {
		c.localName = "localhost"
	}
	if strings.ContainsAny(c.localName, " \t\r\n") {
		return nil, fmt.Errorf("smtpsender: local name %q contains white space", c.localName)
	}
	if c.dialTO < 0 || c.sendTO < 0 || c.idleTO < 0 || c.maxPerConn < 0 {
		return nil, fmt.Errorf("smtpsender: negative timeout or MaxPerConnection")
	}
	if c.dialTO == 0 {
		c.dialTO = defaultDialTimeout
	}
	if c.sendTO == 0 {
		c.sendTO = defaultSendTimeout
	}
	if c.idleTO == 0 {
		c.idleTO = defaultIdleTimeout
	}
	if c.maxPerConn == 0 {
		c.maxPerConn = defaultMaxPerConn
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.tls = o.TLSConfig.Clone()
	if c.tls == nil {
		c.tls = &tls.Config{}
	}
	if c.tls.ServerName == "" {
		c.tls.ServerName = host
	}
	return c, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
