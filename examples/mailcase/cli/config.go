package cli

// config.go reads the YAML configuration of run, pipe, lmtp, import and
// explain: the store, and the mailboxes with their source, interval,
// after-commit action, default queue, policies and plugins (threading,
// routing, structured mail: config_plugins.go). Secrets are never required
// in the file: they are read from environment variables or files named by
// *_env and *_file keys, or ${VAR} references in the store URL.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm"
	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/pop3source"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/filesource"
)

// exampleConfig is documented in examples/mailcase/doc.go and tested by
// config_test.go.
const exampleConfig = `# mailcase run / pipe / lmtp / import / explain configuration
store: sqlite:///var/lib/mailcase/cases.db
# A CRM store (salesforce://, dynamics://) keeps cases, contacts and mail
# but no outbox, source state, quarantine, leases or raw mail: those go to
# the local store, by default the SQLite file NAME.local.db next to this
# file NAME.yaml (mailcase config check shows which role comes from where):
#   store: salesforce://acme.my.salesforce.com?auto_assign=FALSE
#   local_store: /var/lib/mailcase/local.db
# A server store takes its password from the environment:
#   store: postgres://crm:${PGPASSWORD}@db.example.com/crm
# or
#   store: postgres://crm@db.example.com/crm
#   store_password_env: PGPASSWORD

# Defaults of every mailbox; a mailbox's own threading, routing and
# structured sections override them key by key.
threading:
  key_env: MAILCASE_THREAD_KEY   # or key_file: /etc/mailcase/thread.key
  domain: example.com
  closed_policy: reopen          # reopen, reopen_within, new, new_linked, reject
  own_addresses: [info@example.com]   # aliases; every mailbox's address is added
routing:
  rules: rules.yaml              # relative to this file
structured:
  senders: [erp@ops.example.com]
  secret_env: MAILCASE_XML_SECRET
  replay_window: 15m             # a secret request needs <timestamp> and <nonce>

# Employees (and structured-mail senders without the secret) are trusted
# only from authenticated mail: an aligned DKIM signature verified here
# (dkim.verify: true; DNS lookups of the signers' keys), or a pass in the
# Authentication-Results field of these receiving servers (their
# authserv-id, RFC 8601); the MX must strip incoming fields carrying its
# own ID.
trusted_authserv_ids: [mx.example.com]
dkim:
  verify: false                  # true: verify DKIM signatures in process
  alignment: relaxed             # relaxed (organisational domain) or strict
  dns_timeout: 5s

lmtp:
  listen: 127.0.0.1:2424
  max_connections: 32
  idle_timeout: 1m     # a session delivering nothing this long is closed

mailboxes:
  - name: support
    address: support@example.com
    default_queue: tier1
    unknown_sender: create
    interval: 2m
    recipients: [support@example.com, help@example.com]
    source:
      type: imap
      addr: imap.example.com:993
      security: tls
      username: support@example.com
      password_env: SUPPORT_IMAP_PASSWORD
      folder: INBOX
      after: {kind: move, folder: Filed}
      quarantine_folder: Quarantine
  - name: billing
    address: billing@example.com
    interval: 5m
    threading: {closed_policy: new_linked}
    routing: {rules: billing-rules.yaml}
    structured: {senders: ["@erp.example.com"]}
    source:
      type: pop3
      addr: pop.example.com:995
      username: billing
      password_env: BILLING_POP3_PASSWORD
  - name: backlog
    interval: 1h
    source:
      type: maildir
      path: /srv/mail/old-support
      quiet: true
`

// runConfig is the configuration file.
type runConfig struct {
	// Store is the store URL (mem://, sqlite:///path, postgres://...). It
	// may name environment variables as ${VAR} (a password:
	// postgres://crm:${PGPASSWORD}@db/crm; see runConfig.storeURL).
	Store string `yaml:"store"`
	// StorePasswordEnv names the environment variable holding the password
	// of the store URL's user.
	StorePasswordEnv string `yaml:"store_password_env"`
	// LocalStore is the store (URL or SQLite path, relative to the file)
	// keeping what the store does not: a CRM store keeps no outbox, source
	// state, quarantine, leases or raw mail. "" means the SQLite file
	// NAME.local.db next to the configuration file NAME.yaml; see
	// localstore.go.
	LocalStore string `yaml:"local_store"`
	// Plugins are the file-wide threading, routing and structured-mail
	// settings, the defaults of every mailbox.
	Plugins pluginSections `yaml:",inline"`
	// LMTP configures `mailcase lmtp`.
	LMTP lmtpConfig `yaml:"lmtp"`
	// Outgoing is the SMTP server `run` delivers the outbox through.
	Outgoing outgoingConfig `yaml:"outgoing"`
	// Mailboxes are the mailboxes; names are unique.
	Mailboxes []mailboxConfig `yaml:"mailboxes"`
	// SLA configures the service-level clocks and their alerts (config_sla.go).
	SLA slaConfig `yaml:"sla"`
	// Events are the webhooks and NATS settings of lifecycle events
	// (config_events.go).
	Events eventsConfig `yaml:"events"`
	// TrustedAuthServIDs lists the authserv-ids of the receiving servers
	// (your own MX) whose Authentication-Results fields are believed, so
	// that an employee's mail is trusted as the employee's
	// (mailcase.Options.TrustedAuthServIDs). It applies to every mailbox,
	// in addition to the mailbox's own list. Empty: no employee identity
	// is ever trusted.
	TrustedAuthServIDs []string `yaml:"trusted_authserv_ids"`
	// Worklists declares the group queues, their owners and members, and
	// the reply templates (cmd_worklist.go).
	Worklists worklistsConfig `yaml:"worklists"`

	// path is the file the configuration was read from ("" when parsed
	// from bytes), for the default local store.
	path string
}

type lmtpConfig struct {
	Listen          string        `yaml:"listen"`
	MaxConnections  int           `yaml:"max_connections"`
	MaxMessageBytes int64         `yaml:"max_message_bytes"`
	ReadTimeout     time.Duration `yaml:"read_timeout"`
	// IdleTimeout, MaxIdleCommands and MaxSession bound a session that
	// delivers nothing (lmtpsource.Options); 0 means 1m, 20 and 10m.
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	MaxIdleCommands int           `yaml:"max_idle_commands"`
	MaxSession      time.Duration `yaml:"max_session"`
	// CatchAll names the mailbox receiving unknown recipients; "" refuses
	// them.
	CatchAll string `yaml:"catch_all"`
}

// mailboxConfig is one mailbox: mailcase.Mailbox (name, address,
// default_queue, policies...) plus scheduling and its source.
type mailboxConfig struct {
	mailcase.Mailbox `yaml:",inline"`
	// Interval is the polling period; 0 runs the source continuously
	// (IMAP with watch: true).
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one run; 0 means max(interval, 5m).
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is the number of mails processed at once by run; 0
	// means import's default (64 in flight). The mails of one
	// conversation are still filed one after the other, in the order the
	// source hands them out (IMAP: UID order); 1 files them all in order.
	Concurrency int `yaml:"concurrency"`
	// Recipients are the LMTP addresses of the mailbox; empty means
	// Address.
	Recipients []string `yaml:"recipients"`
	// Source is where run reads the mailbox; none for pipe/LMTP only.
	Source sourceConfig `yaml:"source"`
	// TrustedAuthServIDs adds authserv-ids trusted for this mailbox to the
	// top-level list (parseConfig merges them).
	TrustedAuthServIDs []string `yaml:"trusted_authserv_ids"`
	// Plugins are the mailbox's threading, routing and structured-mail
	// settings, over the file-wide ones.
	Plugins pluginSections `yaml:",inline"`

	// plugins is Plugins merged with the file's (set by parseConfig).
	plugins *pluginConfig
}

type sourceConfig struct {
	// Type is imap, pop3, maildir, mbox, dir, or "" (no polling).
	Type string `yaml:"type"`

	// Network sources.
	Addr string `yaml:"addr"`
	// Security is tls (the default: implicit TLS, ports 993 and 995),
	// starttls (ports 143 and 110, the upgrade is mandatory) or insecure
	// (plain text, password included: loopback and tests only).
	Security    string `yaml:"security"`
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// TokenEnv names a variable holding an OAuth2 access token: IMAP then
	// logs in with XOAUTH2.
	TokenEnv string `yaml:"oauth2_token_env"`
	// CAFile is a PEM file of CAs to trust instead of the system roots.
	CAFile string `yaml:"ca_file"`

	// IMAP.
	Folder           string                 `yaml:"folder"`
	After            imapsource.AfterCommit `yaml:"after"`
	QuarantineFolder string                 `yaml:"quarantine_folder"`
	BatchSize        int                    `yaml:"batch_size"`
	MaxPerRun        int                    `yaml:"max_per_run"`
	Watch            bool                   `yaml:"watch"`
	PollInterval     time.Duration          `yaml:"poll_interval"`
	RetryDelay       time.Duration          `yaml:"retry_delay"`

	// POP3.
	Keep bool `yaml:"keep"`

	// Files.
	Path  string `yaml:"path"`
	Quiet bool   `yaml:"quiet"`
}

// loadConfig reads and validates a configuration file. A mistake is
// reported as "config FILE:LINE: what is wrong (valid values)".
func loadConfig(path string) (*runConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfigIn(data, filepath.Dir(path))
	if err != nil {
		var ce *configError
		if errors.As(err, &ce) && ce.line > 0 {
			return nil, fmt.Errorf("config %s:%d: %s", path, ce.line, ce.msg)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.path = path
	return cfg, nil
}

// parseConfig decodes and validates a configuration (see checkNode and
// checkConfig); its errors are *configError values with the line.
func parseConfig(data []byte) (*runConfig, error) { return parseConfigIn(data, ".") }

// parseConfigIn is parseConfig for a file in directory dir: relative file
// names of the file (rules, key_file, secret_file) are relative to dir.
func parseConfigIn(data []byte, dir string) (*runConfig, error) {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	var cfg runConfig
	lines := configLines{}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		if err := checkNode(doc, reflect.TypeFor[runConfig](), "", lines); err != nil {
			return nil, err
		}
		if err := doc.Decode(&cfg); err != nil {
			return nil, yamlError(err)
		}
	}
	resolvePaths(&cfg, dir)
	if err := checkConfig(&cfg, lines); err != nil {
		return nil, err
	}
	if err := checkSLA(&cfg, lines); err != nil {
		return nil, err
	}
	for i := range cfg.Mailboxes {
		mb := &cfg.Mailboxes[i]
		mb.TrustedAuthServIDs = mergeIDs(cfg.TrustedAuthServIDs, mb.TrustedAuthServIDs)
	}
	mergePlugins(&cfg)
	if err := checkMergedWebforms(&cfg, lines); err != nil {
		return nil, err
	}
	if err := checkWorklists(&cfg, lines); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// mailbox returns the mailbox named name, or the only one when name is "".
func (c *runConfig) mailbox(name string) (*mailboxConfig, error) {
	if name == "" {
		if len(c.Mailboxes) == 1 {
			return &c.Mailboxes[0], nil
		}
		return nil, errors.New("the configuration has several mailboxes: choose one with --mailbox")
	}
	for i := range c.Mailboxes {
		if c.Mailboxes[i].Name == name {
			return &c.Mailboxes[i], nil
		}
	}
	return nil, fmt.Errorf("no mailbox %q in the configuration", name)
}

// pipeline builds the mailbox's pipeline with the shared wiring, and the
// events recorder and service-level hook of the filing wiring w (nil:
// none); the hook comes after the configured Responders.
func (mb *mailboxConfig) pipeline(store *mailcase.Store, log *slog.Logger, w *filingWiring) (*emailcrm.Pipeline, error) {
	n := mb.Concurrency
	if n == 0 {
		n = defaultImportConcurrency()
	}
	wc := wireConfig{Mailbox: mb.Mailbox, Logger: log, MaxConcurrency: n,
		TrustedAuthServIDs: mb.TrustedAuthServIDs, Plugins: mb.plugins}
	w.apply(&wc)
	return buildPipeline(store, wc)
}

// checkAuthServIDs refuses empty entries and entries with spaces or
// control characters (an authserv-id is one token).
func checkAuthServIDs(ids []string) error {
	for _, id := range ids {
		if id == "" || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ';' }) {
			return fmt.Errorf("invalid authserv-id %q", id)
		}
	}
	return nil
}

// mergeIDs returns the IDs of a then b, lower-cased, without repeats.
func mergeIDs(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range append(append([]string(nil), a...), b...) {
		id = strings.ToLower(id)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func secretEnv(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	return v, nil
}

func (s *sourceConfig) tlsConfig() (*tls.Config, error) { return caTLSConfig(s.CAFile) }

// caTLSConfig returns a TLS configuration trusting the CAs of the PEM file
// caFile instead of the system roots; nil for "".
func caTLSConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// source returns the mailbox's source, connecting lazily (a server that is
// down at start fails its runs, not the process). The caller closes it.
func (mb *mailboxConfig) source(store *mailcase.Store, log *slog.Logger) (*lazySource, error) {
	s := mb.Source
	var open func(ctx context.Context) (mailcase.Source, error)
	switch s.Type {
	case "imap", "pop3":
		password, err := secretEnv(s.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("mailbox %s: %w", mb.Name, err)
		}
		token, err := secretEnv(s.TokenEnv)
		if err != nil {
			return nil, fmt.Errorf("mailbox %s: %w", mb.Name, err)
		}
		tcfg, err := s.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("mailbox %s: %w", mb.Name, err)
		}
		if s.Type == "imap" {
			o := &imapsource.Options{
				Security: imapsource.Security(s.Security), TLSConfig: tcfg,
				Folder: s.Folder, Mailbox: mb.Name, State: store,
				After: s.After, QuarantineFolder: s.QuarantineFolder, MaxSize: mb.MaxSize,
				BatchSize: s.BatchSize, MaxPerRun: s.MaxPerRun, Watch: s.Watch, PollInterval: s.PollInterval,
				RetryDelay: s.RetryDelay, Logger: log,
			}
			login := imapsource.Login{Username: s.Username, Password: password}
			if token != "" {
				login.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})
			}
			addr := s.Addr
			open = func(ctx context.Context) (mailcase.Source, error) { return imapsource.Dial(ctx, addr, login, o) }
		} else {
			o := &pop3source.Options{
				Security: pop3source.Security(s.Security), TLSConfig: tcfg,
				Mailbox: mb.Name, State: store, Keep: s.Keep,
				MaxSize: mb.MaxSize, MaxPerRun: s.MaxPerRun, Logger: log,
			}
			addr, login := s.Addr, pop3source.Login{Username: s.Username, Password: password}
			open = func(ctx context.Context) (mailcase.Source, error) { return pop3source.Dial(ctx, addr, login, o) }
		}
	case "maildir", "mbox", "dir":
		o := &filesource.Options{Mailbox: mb.Name, Quiet: s.Quiet, Logger: log}
		if mb.MaxSize > 0 {
			o.MaxSize = mb.MaxSize
		}
		// A file source is finite: each run opens it afresh.
		open = func(context.Context) (mailcase.Source, error) {
			switch s.Type {
			case "maildir":
				return filesource.OpenMaildir(s.Path, o)
			case "mbox":
				return filesource.OpenMbox(s.Path, o)
			}
			return filesource.OpenDir(s.Path, o)
		}
		return &lazySource{open: open, reopen: true, owner: map[*mailcase.Received]mailcase.Source{}}, nil
	default:
		return nil, nil
	}
	return &lazySource{open: open, owner: map[*mailcase.Received]mailcase.Source{}}, nil
}

// lazySource opens its source on first use and again after a failed open.
// With reopen, the source is closed at the end of each run (io.EOF) and
// opened afresh by the next.
type lazySource struct {
	open   func(ctx context.Context) (mailcase.Source, error)
	reopen bool

	mu    sync.Mutex
	src   mailcase.Source
	old   []mailcase.Source // finished runs' sources, closed by Flush
	owner map[*mailcase.Received]mailcase.Source
}

func (l *lazySource) get(ctx context.Context) (mailcase.Source, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.src == nil {
		src, err := l.open(ctx)
		if err != nil {
			return nil, err
		}
		l.src = src
	}
	return l.src, nil
}

func (l *lazySource) Receive(ctx context.Context) (*mailcase.Received, error) {
	src, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	r, err := src.Receive(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if r != nil {
		l.owner[r] = src
	}
	if errors.Is(err, io.EOF) && l.reopen && l.src == src {
		l.old = append(l.old, src)
		l.src = nil
	}
	return r, err
}

func (l *lazySource) Ack(ctx context.Context, r *mailcase.Received, d mailcase.Disposition, reason string) error {
	l.mu.Lock()
	src, ok := l.owner[r]
	delete(l.owner, r)
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("ack: unknown mail %s", r.ID)
	}
	return src.Ack(ctx, r, d, reason)
}

// Flush applies the source's batched after-commit actions and closes the
// sources of finished runs.
func (l *lazySource) Flush(ctx context.Context) error {
	l.mu.Lock()
	src, old := l.src, l.old
	l.old = nil
	l.mu.Unlock()
	for _, o := range old {
		if c, ok := o.(io.Closer); ok {
			c.Close()
		}
	}
	if f, ok := src.(interface{ Flush(context.Context) error }); ok {
		return f.Flush(ctx)
	}
	return nil
}

func (l *lazySource) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range append([]mailcase.Source{l.src}, l.old...) {
		if c, ok := s.(io.Closer); ok && s != nil {
			errs = append(errs, c.Close())
		}
	}
	l.src, l.old = nil, nil
	return errors.Join(errs...)
}
