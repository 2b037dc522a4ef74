package cli

// wire.go assembles the pipeline from the SDK's packages: the store (by URL)
// and the plugins of each stage. Helpers plug their packages in at the
// marked spots; keep one section per role.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"

	// mem://, the in-memory store explain and route use. The other
	// drivers are linked by the program's main (examples/mailcase links
	// sqlstore).
	_ "github.com/emailcrm/emailcrm/mailcase/memstore"
)

// wireConfig is what the commands choose about the pipeline. The zero value
// is a usable configuration.
type wireConfig struct {
	// Mailbox is the mailbox configuration (name, default queue, policies).
	Mailbox mailcase.Mailbox
	// Logger receives pipeline logs; nil means slog.Default().
	Logger *slog.Logger
	// OnResult is called after each mail of Pipeline.Run is acknowledged.
	OnResult func(ctx context.Context, r *mailcase.Result)
	// Events records the pipeline's lifecycle events, in the filing's
	// transaction where the store can; nil means none.
	Events mailcase.EventRecorder
	// MaxConcurrency bounds the mails processed at once by Run; 0 means 1.
	MaxConcurrency int
	// Rules, if set, are the routing rules when Plugins names no rules
	// file (the demo's embedded rules).
	Rules *routing.Config
	// TrustedAuthServIDs lists the receiving servers whose
	// Authentication-Results fields are believed (employee identity).
	TrustedAuthServIDs []string
	// Plugins, if set, is the mailbox's threading, routing and
	// structured-mail configuration from a configuration file, the only
	// source of these settings (secrets come from where the file names
	// them). nil, for a command run without a configuration file, means
	// the defaults: no rules, no structured mail, and the thread key of
	// MAILCASE_THREAD_KEY if set.
	Plugins *pluginConfig
	// Outbox is the store whose outbox the replies queue in when the case
	// store keeps none (a CRM store paired with a local SQL store); nil
	// means the case store.
	Outbox *mailcase.Store
	// Extra are Responders run after the configured ones (the
	// service-level hook of config_sla.go).
	Extra []mailcase.Responder
}

// buildPipeline returns a pipeline over store configured by cfg, built by
// emailcrm.NewPipeline like any embedding program's: the project's thread
// resolver, reply extractor and router. The caller closes it.
func buildPipeline(store *mailcase.Store, cfg wireConfig) (*emailcrm.Pipeline, error) {
	opts := &emailcrm.Options{Pipeline: mailcase.Options{
		Mailbox:            cfg.Mailbox,
		Logger:             cfg.Logger,
		OnResult:           cfg.OnResult,
		Events:             cfg.Events,
		MaxConcurrency:     cfg.MaxConcurrency,
		TrustedAuthServIDs: cfg.TrustedAuthServIDs,
	}}
	// sender authentication: the dkim section plus the trusted
	// Authentication-Results, one result per mail for employee identity
	// and structured mail alike.
	var dk dkimConfig
	if cfg.Plugins != nil {
		dk = cfg.Plugins.DKIM
	}
	auth, err := dk.senderAuth(cfg.TrustedAuthServIDs)
	if err != nil {
		return nil, fmt.Errorf("build pipeline: %w", err)
	}
	opts.Pipeline.SenderAuth = auth

	// threading: the resolver's options (closed-case policy, key, own
	// addresses); see cmd_thread_wire.go for where they come from.
	to, err := threadingOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("build pipeline: %w", err)
	}
	opts.Threading = to

	// routing: the rules file of the configuration; none sends every new
	// case to the mailbox's default queue.
	if cfg.Plugins != nil {
		opts.RulesFile = cfg.Plugins.Routing.Rules
	}
	if opts.RulesFile == "" {
		opts.Rules = cfg.Rules
	}

	// structured mail: xmlapi handler (opts.Structured) when senders are
	// allowed to run API actions; see cmd_xml_wire.go.
	structured, err := structuredPlugin(store, cfg)
	if err != nil {
		return nil, fmt.Errorf("build pipeline: %w", err)
	}
	if structured != nil {
		opts.Pipeline.Structured = structured
	}

	// replies: acknowledgements, forwards, confirmations and notifications
	// queued in the store's outbox; see config_replies.go.
	if cfg.Plugins != nil {
		ob := cfg.Outbox
		if ob == nil {
			ob = store
		}
		rs, err := responders(store, ob, cfg.Mailbox, &cfg.Plugins.Replies, to)
		if err != nil {
			return nil, fmt.Errorf("build pipeline: %w", err)
		}
		// the automated replies of structured mail; see config_webforms.go.
		sr, err := structuredReplier(store, ob, cfg, to)
		if err != nil {
			return nil, fmt.Errorf("build pipeline: %w", err)
		}
		if sr != nil {
			rs = append(rs, sr)
		}
		opts.Pipeline.Responders = rs
	}
	opts.Pipeline.Responders = append(opts.Pipeline.Responders, cfg.Extra...)

	p, err := emailcrm.NewPipeline(store, opts)
	if err != nil {
		return nil, fmt.Errorf("build pipeline: %w", err)
	}
	return p, nil
}

// defaultStoreURL is the store used when --store is not given.
func defaultStoreURL() string { return "mem://" }

// fileStoreURL is the persistent default for commands that write (import,
// run, cases): the SQLite file mailcase.db in the working directory
// (durable: WAL, synchronous=FULL; see adapters/sqlstore).
func fileStoreURL() string { return "sqlite:mailcase.db" }

// demoStoreURL is the store the demo runs against; dir is a fresh temporary
// directory the demo removes when it ends.
// A program that links no SQLite driver runs the demo in memory.
func demoStoreURL(dir string) string {
	if !slices.Contains(mailcase.DefaultURLMux().Schemes(), "sqlite") {
		return defaultStoreURL()
	}
	return "sqlite://" + filepath.Join(dir, "demo.db")
}

// isMemURL reports whether storeURL names the in-memory store, whose
// content is gone when the command exits.
func isMemURL(storeURL string) bool {
	return strings.HasPrefix(storeURL, "mem:")
}

// normalizeStoreURL returns the store URL that s names: "" is
// defaultStoreURL(); a bare path (no scheme) is the SQLite file at that
// path; a URL is kept. sqlite://NAME/... is refused: it reads as a host
// name, and silently meaning a relative path surprises, so the message says
// what to write instead (sqlite:///abs/path, sqlite:rel/path, or the path).
func normalizeStoreURL(s string) (string, error) {
	switch {
	case s == "":
		return defaultStoreURL(), nil
	case !hasScheme(s):
		if filepath.IsAbs(s) {
			return "sqlite://" + filepath.ToSlash(s), nil
		}
		return "sqlite:" + filepath.ToSlash(s), nil
	}
	if rest, ok := strings.CutPrefix(s, "sqlite://"); ok && rest != "" && !strings.HasPrefix(rest, "/") {
		return "", fmt.Errorf("store URL %q is ambiguous (%q would be a host name): write sqlite:///absolute/path/%s "+
			"for an absolute path, or sqlite:%s (or just %s) for a path relative to the working directory",
			s, strings.SplitN(rest, "/", 2)[0], filepath.Base(rest), rest, rest)
	}
	return s, nil
}

// hasScheme reports whether s starts with a URL scheme and a colon.
func hasScheme(s string) bool {
	i := strings.IndexByte(s, ':')
	if i < 1 {
		return false
	}
	for j, c := range s[:i] {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// sqlitePath returns the file of a (normalised) sqlite: URL, and false for
// other URLs.
func sqlitePath(storeURL string) (string, bool) {
	u, err := url.Parse(storeURL)
	if err != nil || u.Scheme != "sqlite" {
		return "", false
	}
	if u.Opaque != "" {
		return u.Opaque, true
	}
	return u.Host + u.Path, true
}

// openStore opens the store named by storeURL (see normalizeStoreURL; ""
// means defaultStoreURL()). A SQLite file is created when missing.
func openStore(ctx context.Context, storeURL string) (*mailcase.Store, error) {
	storeURL, err := normalizeStoreURL(storeURL)
	if err != nil {
		return nil, usageError("%w", err)
	}
	s, err := mailcase.OpenStore(ctx, storeURL)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redactURL(storeURL), err)
	}
	return s, nil
}

// openConfigStore opens the store of a configuration file, its secrets
// filled in (runConfig.storeURL), paired with the file's local store when
// it lacks a local role (see openPairedStore).
func openConfigStore(ctx context.Context, cfg *runConfig) (*mailcase.Store, error) {
	u, err := cfg.storeURL()
	if err != nil {
		return nil, err
	}
	return openPairedStore(ctx, u, cfg, openCreate)
}

// openExistingStore opens storeURL like openStore for a command that only
// reads (cases, explain --store, quarantine): a missing SQLite file is an
// error, never a new empty database.
func openExistingStore(ctx context.Context, storeURL string) (*mailcase.Store, error) {
	norm, err := normalizeStoreURL(storeURL)
	if err != nil {
		return nil, usageError("%w", err)
	}
	if p, ok := sqlitePath(norm); ok {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s: the SQLite file %s does not exist (this command only reads a store "+
				"and never creates one; import or run create it, or pass --store)", redactURL(storeURL), p)
		}
	}
	return openStore(ctx, norm)
}

// openExistingPairedStore is openExistingStore paired with the local store
// of cfg (nil: a command run without a file) when the store lacks a local
// role; a missing SQLite local store is not created (see openPairedStore).
func openExistingPairedStore(ctx context.Context, storeURL string, cfg *runConfig) (*mailcase.Store, error) {
	norm, err := normalizeStoreURL(storeURL)
	if err != nil {
		return nil, usageError("%w", err)
	}
	if p, ok := sqlitePath(norm); ok {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return openExistingStore(ctx, norm)
		}
	}
	return openPairedStore(ctx, norm, cfg, openReadOnly)
}

// redactURL returns storeURL with any password replaced by "xxxxx", for
// messages.
func redactURL(storeURL string) string {
	u, err := url.Parse(storeURL)
	if err != nil {
		return "(invalid URL)"
	}
	if _, has := u.User.Password(); !has {
		return storeURL
	}
	return u.Redacted()
}
