package salesforce

import (
	"context"
	"net/url"
	"os"
	"strconv"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase"
)

// Scheme is the URL scheme this package registers in
// mailcase.DefaultURLMux.
const Scheme = "salesforce"

func init() {
	mailcase.DefaultURLMux().RegisterStore(Scheme, &URLOpener{})
}

// Environment variables read by URLOpener when its fields are empty.
const (
	EnvClientID       = "SALESFORCE_CLIENT_ID"
	EnvClientSecret   = "SALESFORCE_CLIENT_SECRET"
	EnvUsername       = "SALESFORCE_USERNAME"
	EnvPrivateKeyFile = "SALESFORCE_PRIVATE_KEY_FILE"
)

// URLOpener opens salesforce:// URLs (see "URLs" in the package
// documentation). Secrets never come from the URL: they come from Config
// (when set) or from the environment.
type URLOpener struct {
	// Config is the base configuration; URL parameters override its
	// fields. nil means an empty Config.
	Config *Config
	// StoreOptions configure the portable store; nil means defaults.
	StoreOptions *mailcase.StoreOptions
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// OpenStoreURL implements mailcase.StoreURLOpener.
func (o *URLOpener) OpenStoreURL(ctx context.Context, u *url.URL) (*mailcase.Store, error) {
	cfg, err := o.ConfigFromURL(u)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, "OpenStore", err)
	}
	return OpenStore(cfg, o.StoreOptions)
}

// ConfigFromURL returns the Config a URL names.
func (o *URLOpener) ConfigFromURL(u *url.URL) (*Config, error) {
	if u.Scheme != Scheme {
		return nil, errInvalid("URL scheme " + u.Scheme + ": want " + Scheme)
	}
	if err := mailcase.CheckQuery(u, "api", "auto_assign", "login", "origin", "insecure_http", "domain_field",
		"cache", "resolve_owners", "slow_down_at", "audience", "no_notes", "no_transcript", "no_attachments", "no_summary"); err != nil {
		return nil, err
	}
	su, err := crmhttp.ParseStoreURL(u, EnvClientID+" and "+EnvClientSecret, "salesforce://my-domain.my.salesforce.com")
	if err != nil {
		return nil, errInvalid(err.Error())
	}
	var cfg Config
	if o.Config != nil {
		cfg = *o.Config
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	q := u.Query()
	if su.Insecure {
		cfg.AllowInsecureHTTP = true
	}
	cfg.InstanceURL = su.Base
	if v := q.Get("api"); v != "" {
		cfg.APIVersion = v
	}
	if v := q.Get("auto_assign"); v != "" {
		cfg.AutoAssign = v
	}
	if v := q.Get("login"); v != "" {
		cfg.LoginURL = v
	}
	if v := q.Get("audience"); v != "" {
		cfg.Audience = v
	}
	if v := q.Get("origin"); v != "" {
		cfg.Origin = v
	}
	if v := q.Get("domain_field"); v != "" {
		cfg.AccountDomainField = v
	}
	if su.HasCache {
		cfg.LookupCacheTTL = su.Cache
	}
	if v := q.Get("slow_down_at"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, errInvalid("slow_down_at=" + v + ": want a fraction such as 0.9")
		}
		cfg.SlowDownAt = f
	}
	flags := cfg.Switches.Flags()
	flags["resolve_owners"] = &cfg.ResolveOwners
	if err := crmlookup.SetFlags(q, flags); err != nil {
		return nil, errInvalid(err.Error())
	}
	if cfg.ClientID == "" {
		cfg.ClientID = getenv(EnvClientID)
	}
	if cfg.ClientSecret == "" && cfg.PrivateKey == nil && cfg.TokenSource == nil {
		if kf := getenv(EnvPrivateKeyFile); kf != "" {
			pemBytes, err := os.ReadFile(kf)
			if err != nil {
				return nil, errInvalid("reading " + EnvPrivateKeyFile + ": " + err.Error())
			}
			cfg.PrivateKey = pemBytes
			if cfg.Username == "" {
				cfg.Username = getenv(EnvUsername)
			}
		} else {
			cfg.ClientSecret = getenv(EnvClientSecret)
		}
	}
	return &cfg, nil
}
