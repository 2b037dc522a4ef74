package dynamics

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
)

// DefaultAPIVersion is the Web API version used when Config.APIVersion is
// empty.
const DefaultAPIVersion = "v9.2"

// Config configures a Dynamics 365 (Dataverse) driver. InstanceURL,
// ClientID, ClientSecret and one of Tenant and TokenURL are required;
// every other field documents its zero value. A Config is not modified by
// the driver.
type Config struct {
	// InstanceURL is the environment URL, "https://org.crm.dynamics.com"
	// (a bare host is taken as https). Plain http is refused unless
	// AllowInsecureHTTP is set and the host is a loopback address.
	InstanceURL string
	// Tenant is the Entra ID tenant (a GUID or domain); TokenURL ""
	// means https://login.microsoftonline.com/<Tenant>/oauth2/v2.0/token.
	Tenant   string
	TokenURL string
	// AuthorizationURL is informational: the client-credentials flow does
	// not use it (it is the seed's "Authorization URL", kept for
	// configuration files that carry it).
	AuthorizationURL string
	// ClientID and ClientSecret are the app registration's credentials.
	// The scope asked is InstanceURL + "/.default". The secret and tokens
	// never appear in logs or errors.
	ClientID, ClientSecret string
	// TokenSource, when set, replaces the client-credentials flow.
	TokenSource oauth2.TokenSource
	// APIVersion is "v9.2" style; "" means DefaultAPIVersion.
	APIVersion string

	// DefaultCustomer is the accountid bound as customerid of cases whose
	// request has neither contact nor account (Dataverse requires a
	// customer). "" means an account named DefaultCustomerName, found or
	// created on first need.
	DefaultCustomer string
	// DefaultCustomerName is the name of that account; "" means "Unknown
	// senders".
	DefaultCustomerName string
	// AccountDomainField is the account column holding its mail domains;
	// "" means "websiteurl". Values are normalised (scheme, "www.", path,
	// port and case dropped; several separated by commas, semicolons or
	// spaces) before comparison.
	AccountDomainField string

	// Switches are the push switches shared with the Salesforce adapter
	// (cfg.NoNotes and so on), all off by default: NoNotes drops notes,
	// NoTranscript files email activities without bodies, NoAttachments
	// files no activitymimeattachments, NoSummary leaves
	// incident.description empty.
	crmlookup.Switches

	// LookupCacheTTL is how long Directory answers and advanced lookups
	// are reused; 0 means a fresh lookup on each call.
	LookupCacheTTL time.Duration
	// Lookup is the advanced lookup of Store.Lookup; nil means none.
	Lookup *LookupConfig

	// ResolveOwners puts a case routed to a queue (NewCase.Queue,
	// CaseUpdate.Queue) into the Dataverse queue of that name (the
	// AddToQueue action on the queue found by name) and sets the owner of
	// CaseUpdate.Owner (an enabled systemuser with that full name or
	// internal e-mail address, bound through ownerid); a name found is
	// looked up once and cached for the life of the driver, a name no
	// record has is remembered as missing for OwnerMissTTL only (so a queue
	// created in Dataverse after start-up is found). A queue no record has the
	// name of is recorded as a note on the new case (and logged) and the
	// case is filed in no queue; an update naming a missing queue or owner
	// is refused as InvalidArgument. false keeps the names as text only
	// (in emailcrm_data).
	ResolveOwners bool
	// OwnerMissTTL is how long a queue or owner name that ResolveOwners
	// found no record of is remembered as missing before the next lookup;
	// 0 means 2 minutes, a negative value means a miss is never
	// remembered (every case naming it looks it up again).
	OwnerMissTTL time.Duration

	// TrackingTokenPrefix is the prefix of Dynamics tracking tokens in
	// subjects; "" means "CRM:".
	TrackingTokenPrefix string

	// SlowDownAt is the remaining burst budget
	// (x-ms-ratelimit-burst-remaining-xrm-requests) under which each call
	// is delayed, by up to SlowDownMax when it reaches 0; 0 means 200, a
	// negative value turns slowing down off. SlowDownMax 0 means 2s.
	SlowDownAt  int
	SlowDownMax time.Duration
	// MaxUploadFileSize is the environment's MaxUploadFileSize, counted on
	// the base64 size of an attachment or note file; 0 means 5 MB
	// (5,242,880 bytes). A larger attachment is left out of the filing and
	// recorded as a problem of its mail (Email.Problems: name, size,
	// limit); the rest of the mail is filed. An environment whose limit is
	// lower than this value refuses the upload: the filing fails as
	// InvalidArgument and its change set is rolled back.
	MaxUploadFileSize int

	// HTTPClient is used for every request; nil means a client with a 60s
	// timeout.
	HTTPClient *http.Client
	// Logger receives the driver's logs (never tokens, secrets or mail
	// content); nil means slog.Default().
	Logger *slog.Logger
	// Now is the driver's clock (cache freshness, OwnerMissTTL); nil means
	// time.Now.
	Now func() time.Time
	// AllowInsecureHTTP allows http:// URLs on loopback hosts (tests).
	AllowInsecureHTTP bool
}

func (c *Config) withDefaults() (*Config, error) {
	if c == nil {
		return nil, errInvalid("nil Config")
	}
	o := *c
	if o.InstanceURL == "" {
		return nil, errInvalid("Config.InstanceURL is required")
	}
	u, err := checkURL(o.InstanceURL, o.AllowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	o.InstanceURL = u
	if o.TokenSource == nil {
		if o.ClientID == "" || o.ClientSecret == "" {
			return nil, errInvalid("Config.ClientID and Config.ClientSecret are required")
		}
		if o.TokenURL == "" {
			if o.Tenant == "" {
				return nil, errInvalid("Config.Tenant or Config.TokenURL is required")
			}
			o.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(o.Tenant) + "/oauth2/v2.0/token"
		} else if o.TokenURL, err = checkURL(o.TokenURL, o.AllowInsecureHTTP); err != nil {
			return nil, err
		}
	}
	if o.APIVersion == "" {
		o.APIVersion = DefaultAPIVersion
	}
	if !strings.HasPrefix(o.APIVersion, "v") || strings.Trim(o.APIVersion[1:], "0123456789.") != "" {
		return nil, errInvalid("Config.APIVersion " + o.APIVersion + ": want v9.2 style")
	}
	if o.DefaultCustomer != "" && !validGUID(o.DefaultCustomer) {
		return nil, errInvalid("Config.DefaultCustomer: want an accountid GUID")
	}
	if o.DefaultCustomerName == "" {
		o.DefaultCustomerName = "Unknown senders"
	}
	if o.AccountDomainField == "" {
		o.AccountDomainField = "websiteurl"
	}
	if !validName(o.AccountDomainField) {
		return nil, errInvalid("invalid column name " + o.AccountDomainField)
	}
	if o.TrackingTokenPrefix == "" {
		o.TrackingTokenPrefix = "CRM:"
	}
	if o.SlowDownAt == 0 {
		o.SlowDownAt = 200
	}
	if o.SlowDownMax == 0 {
		o.SlowDownMax = 2 * time.Second
	}
	if o.MaxUploadFileSize <= 0 {
		o.MaxUploadFileSize = 5 << 20
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OwnerMissTTL == 0 {
		o.OwnerMissTTL = 2 * time.Minute
	}
	if o.Lookup != nil {
		l := *o.Lookup
		if err := l.compile(); err != nil {
			return nil, err
		}
		o.Lookup = &l
	}
	return &o, nil
}

// checkURL parses a base URL (a bare host means https), enforces https
// except for loopback hosts with allowHTTP, and returns it without a
// trailing slash.
func checkURL(s string, allowHTTP bool) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", errInvalid("invalid URL " + s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP || !crmhttp.IsLoopback(u.Hostname()) {
			return "", errInvalid("plain http is allowed only to loopback hosts with AllowInsecureHTTP (insecure_http=1): " + u.Host)
		}
	default:
		return "", errInvalid("URL scheme " + u.Scheme + ": want https")
	}
	return strings.TrimSuffix((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(), "/"), nil
}
