package dynamics

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
const Scheme = "dynamics"

func init() {
	mailcase.DefaultURLMux().RegisterStore(Scheme, &URLOpener{})
}

// Environment variables read by URLOpener when its fields are empty.
const (
	EnvClientID     = "DYNAMICS_CLIENT_ID"
	EnvClientSecret = "DYNAMICS_CLIENT_SECRET"
	EnvTenant       = "DYNAMICS_TENANT"
)

// URLOpener opens dynamics:// URLs (see "URLs" in the package
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
	if err := mailcase.CheckQuery(u, "api", "token_url", "tenant", "insecure_http", "domain_field", "cache",
		"default_customer", "tracking_prefix", "slow_down_at", "resolve_owners", "no_notes", "no_transcript", "no_attachments", "no_summary"); err != nil {
		return nil, err
	}
	su, err := crmhttp.ParseStoreURL(u, EnvClientID+", "+EnvClientSecret+" and "+EnvTenant, "dynamics://org.crm.dynamics.com")
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
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.APIVersion, q.Get("api"))
	set(&cfg.TokenURL, q.Get("token_url"))
	set(&cfg.AccountDomainField, q.Get("domain_field"))
	set(&cfg.DefaultCustomer, q.Get("default_customer"))
	set(&cfg.TrackingTokenPrefix, q.Get("tracking_prefix"))
	if cfg.Tenant == "" {
		cfg.Tenant = firstNonEmpty(q.Get("tenant"), getenv(EnvTenant))
	}
	if cfg.ClientID == "" {
		cfg.ClientID = getenv(EnvClientID)
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = getenv(EnvClientSecret)
	}
	if su.HasCache {
		cfg.LookupCacheTTL = su.Cache
	}
	if v := q.Get("slow_down_at"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errInvalid("slow_down_at=" + v + ": want a number of remaining requests")
		}
		cfg.SlowDownAt = n
	}
	flags := cfg.Switches.Flags()
	flags["resolve_owners"] = &cfg.ResolveOwners
	if err := crmlookup.SetFlags(q, flags); err != nil {
		return nil, errInvalid(err.Error())
	}
	return &cfg, nil
}
