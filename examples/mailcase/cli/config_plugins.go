package cli

// config_plugins.go is the part of the configuration file that configures
// the pipeline's plugins, file-wide and per mailbox: threading, routing
// rules and structured (XML) mail. A mailbox's section overrides the
// file-wide one key by key. Secrets are never required inline: the thread
// key and the XML secret are named by *_env (an environment variable) or
// *_file (a file) keys, and the store URL may carry ${VAR} references or
// take its password from store_password_env.

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
	"github.com/emailcrm/emailcrm/threading"
)

// threadingConfig configures the thread resolver (threading.Options).
type threadingConfig struct {
	// KeyEnv names the environment variable holding the installation's
	// HMAC key (hex, or raw text of at least 16 bytes); KeyFile names a
	// file holding it. Without a key, signed Message-IDs and tokens are not
	// recognised.
	KeyEnv  string `yaml:"key_env"`
	KeyFile string `yaml:"key_file"`
	// Domain is the domain of generated Message-IDs.
	Domain string `yaml:"domain"`
	// ClosedPolicy is what a reply to a closed case does: reopen,
	// reopen_within, new, new_linked or reject ("" means reopen).
	ClosedPolicy string `yaml:"closed_policy"`
	// ReopenWithin is the window of reopen_within.
	ReopenWithin time.Duration `yaml:"reopen_within"`
	// OwnAddresses are further addresses of ours (aliases) that never count
	// as case participants. The address and recipients of every mailbox of
	// the file are always added.
	OwnAddresses []string `yaml:"own_addresses"`
}

// routingConfig configures the router of new cases.
type routingConfig struct {
	// Rules is the routing rules file (YAML or JSON, see package routing),
	// relative to the configuration file; "" sends every new case to the
	// mailbox's default queue.
	Rules string `yaml:"rules"`
}

// structuredConfig configures structured mail (package xmlapi).
type structuredConfig struct {
	// Senders are the addresses and @domains allowed to run API actions;
	// empty means structured mail is filed like any other mail.
	Senders []string `yaml:"senders"`
	// SecretEnv and SecretFile name where the shared secret a request may
	// carry in <secret> is; neither means no secret is accepted.
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// AdminQueue receives structured mail that cannot run ("" means
	// "admin").
	AdminQueue string `yaml:"admin_queue"`
	// Webforms and ReplyTemplates configure ERMS webforms and the
	// automated replies of structured mail (config_webforms.go).
	Webforms       map[string]webformConfig `yaml:"webforms"`
	ReplyTemplates map[string]templateFiles `yaml:"reply_templates"`
	// ReplayWindow is how far the <timestamp> of a request carrying the
	// secret may be from now; its <nonce> is accepted once within it. 0
	// means 15m.
	ReplayWindow time.Duration `yaml:"replay_window"`
}

// pluginConfig is the plugin configuration of one mailbox, once the
// file-wide defaults are merged in (mergePlugins).
type pluginConfig struct {
	Threading  threadingConfig
	Routing    routingConfig
	Structured structuredConfig
	Replies    repliesConfig
	DKIM       dkimConfig
}

// mergeThreading returns mb's threading section with the unset keys taken
// from def.
func mergeThreading(def, mb threadingConfig) threadingConfig {
	if mb.KeyEnv == "" && mb.KeyFile == "" {
		mb.KeyEnv, mb.KeyFile = def.KeyEnv, def.KeyFile
	}
	if mb.Domain == "" {
		mb.Domain = def.Domain
	}
	if mb.ClosedPolicy == "" {
		mb.ClosedPolicy = def.ClosedPolicy
	}
	if mb.ReopenWithin == 0 && mb.ClosedPolicy == def.ClosedPolicy {
		mb.ReopenWithin = def.ReopenWithin
	}
	mb.OwnAddresses = mergeAddrs(def.OwnAddresses, mb.OwnAddresses)
	return mb
}

func mergeStructured(def, mb structuredConfig) structuredConfig {
	if len(mb.Senders) == 0 {
		mb.Senders = def.Senders
	}
	if mb.SecretEnv == "" && mb.SecretFile == "" {
		mb.SecretEnv, mb.SecretFile = def.SecretEnv, def.SecretFile
	}
	if mb.AdminQueue == "" {
		mb.AdminQueue = def.AdminQueue
	}
	if mb.ReplayWindow == 0 {
		mb.ReplayWindow = def.ReplayWindow
	}
	return mergeWebforms(def, mb)
}

// mergePlugins sets every mailbox's plugin configuration: its own
// sections over the file-wide ones, and as own addresses the address and
// recipients of every mailbox of the file, so that a reply from one
// mailbox's address to another mailbox's case is never a participant's.
func mergePlugins(cfg *runConfig) {
	var own []string
	for i := range cfg.Mailboxes {
		mb := &cfg.Mailboxes[i]
		own = mergeAddrs(own, append([]string{mb.Address}, mb.Recipients...))
	}
	for i := range cfg.Mailboxes {
		mb := &cfg.Mailboxes[i]
		th := mergeThreading(cfg.Plugins.Threading, mb.Plugins.Threading)
		th.OwnAddresses = mergeAddrs(own, th.OwnAddresses)
		rt := mb.Plugins.Routing
		if rt.Rules == "" {
			rt = cfg.Plugins.Routing
		}
		mb.plugins = &pluginConfig{Threading: th, Routing: rt,
			Structured: mergeStructured(cfg.Plugins.Structured, mb.Plugins.Structured),
			Replies:    mergeReplies(cfg.Plugins.Replies, mb.Plugins.Replies),
			DKIM:       mergeDKIM(cfg.Plugins.DKIM, mb.Plugins.DKIM)}
	}
}

// mergeAddrs returns the normalised addresses of a then b, without
// repeats and empty entries.
func mergeAddrs(a, b []string) []string {
	var out []string
	for _, s := range append(slices.Clone(a), b...) {
		if n := mailcase.NormalizeAddress(s); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// resolvePaths makes the file names of cfg relative to dir (the directory
// of the configuration file) unless they are absolute.
func resolvePaths(cfg *runConfig, dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	sections := []*pluginSections{&cfg.Plugins}
	for i := range cfg.Mailboxes {
		sections = append(sections, &cfg.Mailboxes[i].Plugins)
	}
	for _, s := range sections {
		abs(&s.Threading.KeyFile)
		abs(&s.Routing.Rules)
		abs(&s.Structured.SecretFile)
		for k, t := range s.Structured.ReplyTemplates {
			abs(&t.TextFile)
			abs(&t.HTMLFile)
			s.Structured.ReplyTemplates[k] = t
		}
		for k, t := range s.Replies.Templates {
			abs(&t.TextFile)
			abs(&t.HTMLFile)
			s.Replies.Templates[k] = t
		}
		for _, files := range s.Replies.QueueTemplates {
			for k, t := range files {
				abs(&t.TextFile)
				abs(&t.HTMLFile)
				files[k] = t
			}
		}
	}
}

// pluginSections are the plugin keys, at the top level and in a mailbox.
type pluginSections struct {
	// Threading configures threading (see threadingConfig).
	Threading threadingConfig `yaml:"threading"`
	// Routing names the routing rules (see routingConfig).
	Routing routingConfig `yaml:"routing"`
	// Structured configures structured mail (see structuredConfig).
	Structured structuredConfig `yaml:"structured"`
	// Replies configures what the mailbox sends on its own (see
	// repliesConfig).
	Replies repliesConfig `yaml:"replies"`
	// DKIM configures sender authentication in process (see dkimConfig).
	DKIM dkimConfig `yaml:"dkim"`
}

// checkPlugins validates the plugin sections at path ("" for the top
// level, "mailboxes[N]" for a mailbox).
func checkPlugins(s *pluginSections, path string, lines configLines) error {
	at := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	th := &s.Threading
	if th.KeyEnv != "" && th.KeyFile != "" {
		return lines.errAt(at("threading.key_file"), "%s: key_env and key_file are exclusive", at("threading"))
	}
	if err := lines.oneOf(at("threading.closed_policy"), th.ClosedPolicy, true,
		string(threading.PolicyReopen), string(threading.PolicyReopenWithin), string(threading.PolicyNew),
		string(threading.PolicyNewLinked), string(threading.PolicyReject)); err != nil {
		return err
	}
	if th.ReopenWithin < 0 {
		return lines.errAt(at("threading.reopen_within"), "%s must not be negative", at("threading.reopen_within"))
	}
	if th.ReopenWithin != 0 && th.ClosedPolicy != string(threading.PolicyReopenWithin) {
		return lines.errAt(at("threading.reopen_within"), "%s is only for closed_policy: reopen_within", at("threading.reopen_within"))
	}
	for j, a := range th.OwnAddresses {
		if mailcase.NormalizeAddress(a) == "" {
			p := fmt.Sprintf("%s[%d]", at("threading.own_addresses"), j)
			return lines.errAt(p, "%s: %q is not a mail address", p, a)
		}
	}
	if s.Routing.Rules != "" {
		if _, err := routing.LoadFile(s.Routing.Rules, nil); err != nil {
			return lines.errAt(at("routing.rules"), "%s: %v", at("routing.rules"), err)
		}
	}
	st := &s.Structured
	if st.SecretEnv != "" && st.SecretFile != "" {
		return lines.errAt(at("structured.secret_file"), "%s: secret_env and secret_file are exclusive", at("structured"))
	}
	for j, a := range st.Senders {
		ok := mailcase.NormalizeAddress(a) != ""
		if d, isDomain := strings.CutPrefix(a, "@"); isDomain {
			ok = mailcase.NormalizeDomain(d) != ""
		}
		if !ok {
			p := fmt.Sprintf("%s[%d]", at("structured.senders"), j)
			return lines.errAt(p, "%s: %q is neither a mail address nor an @domain", p, a)
		}
	}
	if st.ReplayWindow < 0 {
		return lines.errAt(at("structured.replay_window"), "%s must not be negative", at("structured.replay_window"))
	}
	if err := checkWebforms(st, at, lines); err != nil {
		return err
	}
	if err := checkDKIM(&s.DKIM, at, lines); err != nil {
		return err
	}
	return checkReplies(&s.Replies, path, lines)
}

// secretValue returns the secret named by an *_env or a *_file key ("" when
// neither is set). A file's content is trimmed of surrounding white space.
func secretValue(envName, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("secret file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		return v, nil
	}
	return secretEnv(envName)
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// storeURL returns the store URL of the file with its secrets filled in:
// every ${VAR} is replaced by the variable's value (URL-escaped, unless the
// reference is the whole value: store: ${DATABASE_URL}; an unset variable is
// an error), and store_password_env, when set, gives the
// password of the URL's user.
func (c *runConfig) storeURL() (string, error) {
	var missing []string
	whole := envRefRE.FindString(c.Store) == c.Store
	s := envRefRE.ReplaceAllStringFunc(c.Store, func(ref string) string {
		name := envRefRE.FindStringSubmatch(ref)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
			return ""
		}
		if whole {
			return v // store: ${DATABASE_URL}, the whole URL
		}
		return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("store: environment variable %s is not set", strings.Join(missing, ", "))
	}
	if c.StorePasswordEnv == "" {
		return s, nil
	}
	pw, err := secretEnv(c.StorePasswordEnv)
	if err != nil {
		return "", fmt.Errorf("store_password_env: %w", err)
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.User.Username() == "" {
		return "", errors.New("store_password_env needs a store URL with a user name (postgres://user@host/db)")
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String(), nil
}
