package salesforce

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// DefaultAPIVersion is the REST API version used when Config.APIVersion is
// empty.
const DefaultAPIVersion = "v62.0"

// Config configures a Salesforce driver. InstanceURL, ClientID, one of
// ClientSecret and PrivateKey, and AutoAssign are required; every other
// field documents its zero value. A Config is not modified by the driver.
type Config struct {
	// InstanceURL is the org's My Domain URL,
	// "https://my-domain.my.salesforce.com" (a bare host is taken as
	// https). API calls go to the instance_url the token endpoint returns,
	// when it returns one. Plain http is refused unless AllowInsecureHTTP is
	// set and the host is a loopback address (tests, the demo).
	InstanceURL string
	// LoginURL is where tokens are requested (LoginURL +
	// "/services/oauth2/token"). "" means InstanceURL, which is what the
	// client-credentials flow requires; the JWT bearer flow may use
	// https://login.salesforce.com, https://test.salesforce.com (sandboxes)
	// or an Experience Cloud site URL.
	LoginURL string
	// APIVersion is "v62.0" style; "" means DefaultAPIVersion.
	APIVersion string

	// ClientID is the connected app's consumer key (both flows).
	ClientID string
	// ClientSecret selects the client-credentials flow.
	ClientSecret string
	// Username, PrivateKey and Audience select the JWT bearer flow:
	// PrivateKey is a *rsa.PrivateKey or a PEM block ([]byte or string,
	// PKCS#1 or PKCS#8); Audience is the assertion's aud, "" meaning
	// LoginURL (https://login.salesforce.com for production,
	// https://test.salesforce.com for sandboxes).
	Username   string
	PrivateKey any
	Audience   string
	// TokenSource, when set, replaces both flows (tokens obtained
	// elsewhere). It must return tokens whose Extra("instance_url") is the
	// instance URL, or InstanceURL is used.
	TokenSource oauth2.TokenSource

	// AutoAssign is the value of the Sforce-Auto-Assign header sent with
	// every case creation: "TRUE" (run the active assignment rule),
	// "FALSE" (keep the owner set by the driver) or the 15- or 18-character
	// Id of an AssignmentRule (01Q...). It is required: Salesforce's
	// default is TRUE, which reassigns cases to the rule's owner, and an
	// integration should say which it wants.
	AutoAssign string
	// Origin is the Case.Origin of cases whose request has none; "" leaves
	// it empty.
	Origin string
	// CaseFields are extra field values set on every new Case (API name →
	// JSON value), for example {"Reason": "Other"}. They are applied before
	// the driver's own fields, which win.
	CaseFields map[string]any
	// CategoryField is the Case field that keeps NewCase.Category
	// (for example "Type"); "" keeps it in EmailcrmData__c only.
	CategoryField string
	// StatusMap maps driver statuses to Case.Status picklist values; nil
	// entries take the defaults (new → New, open → Working, in_progress →
	// Escalated, closed → Closed, cancelled → Closed). The exact driver
	// status is also kept in EmailcrmStatus__c, so two statuses may share a
	// picklist value; a Status changed in Salesforce maps back through the
	// reverse of this map (Waiting on Customer → open, unknown values →
	// open, or closed when the case is closed).
	StatusMap map[driver.CaseStatus]string
	// PriorityMap maps driver priorities to Case.Priority values; nil
	// entries take the defaults (low → Low, normal → Medium, high → High,
	// urgent → Urgent; add Urgent to the picklist or map it elsewhere).
	PriorityMap map[driver.Priority]string
	// ResolveOwners sets Case.OwnerId from NewCase.Queue and
	// CaseUpdate.Queue (a Group of Type Queue with that Name) and from
	// CaseUpdate.Owner (an active User with that Name or Username), looked
	// up with SOQL. A name found is cached for the life of the driver; a
	// name nothing has is remembered as missing for OwnerMissTTL only, so
	// a queue or user created in Salesforce after start-up is found. On
	// creation the queue is resolved only with AutoAssign FALSE: with TRUE
	// or a rule Id the assignment rules choose the owner. A new case routed to a queue
	// no Group has the name of keeps the default owner and gets a
	// CaseComment saying so (and a warning is logged); an update naming a
	// missing queue or user is refused as InvalidArgument. Updates are
	// sent with Sforce-Auto-Assign FALSE, so they never run the
	// assignment rules. false keeps names as text only (EmailcrmQueue__c,
	// EmailcrmOwner__c).
	ResolveOwners bool
	// OwnerMissTTL is how long a queue or user name that ResolveOwners
	// found no record of is remembered as missing before the next lookup;
	// 0 means 2 minutes, a negative value means a miss is never
	// remembered (every case naming it looks it up again). Names found
	// are cached for the life of the driver.
	OwnerMissTTL time.Duration

	// AccountDomainField is the Account field holding the account's mail
	// domains; "" means "Website". It may hold one URL or domain
	// ("https://www.acme.com/about") or several separated by commas,
	// semicolons or spaces; each is normalised (scheme, "www.", path, port
	// and case dropped) before comparison.
	AccountDomainField string
	// SupportLevelField is the Contact and Account field holding the
	// support level; "" means "EmailcrmSupportLevel__c".
	SupportLevelField string
	// EmployeeProfileID is the ProfileId of Users created by
	// CreateEmployee (seeding only); when empty only the fields the fake
	// requires are sent, which a real org refuses.
	EmployeeProfileID string

	// NoteObject is the object notes are filed as; "" means "CaseComment",
	// the only one supported.
	NoteObject string
	// Switches are the push switches, shared with the Dynamics adapter
	// (set them as cfg.NoNotes and so on), all off by default, so that
	// everything is pushed: NoNotes drops AddNote (and the description
	// note), NoTranscript files EmailMessages without bodies (the record
	// stays: it is the thread index and the idempotency record),
	// NoAttachments files no ContentVersions, NoSummary leaves
	// Case.Description empty.
	crmlookup.Switches

	// LookupCacheTTL is how long Directory answers (contacts by address,
	// accounts by domain, employees by address, advanced lookups) are
	// reused; 0 means a fresh lookup on each call.
	LookupCacheTTL time.Duration
	// Lookup is the advanced lookup of Store.Lookup and SenderMatcher; nil
	// means none.
	Lookup *LookupConfig

	// SlowDownAt is the fraction of the org's daily API requests
	// (Sforce-Limit-Info api-usage=N/M) past which each call is delayed, by
	// up to SlowDownMax at the limit, growing linearly; 0 means 0.9, a
	// negative value turns slowing down off. SlowDownMax 0 means 2s.
	SlowDownAt  float64
	SlowDownMax time.Duration
	// MaxJSONAttachment is the largest attachment sent base64-encoded in a
	// composite request; larger ones are uploaded alone as multipart
	// ContentVersions. 0 means 4 MiB.
	MaxJSONAttachment int

	// HTTPClient is used for every request; nil means a client with a 60s
	// timeout.
	HTTPClient *http.Client
	// Logger receives the driver's logs (never tokens, secrets or mail
	// content); nil means slog.Default().
	Logger *slog.Logger
	// Now is the driver's clock (JWT assertions, OwnerMissTTL); nil means
	// time.Now.
	Now func() time.Time
	// AllowInsecureHTTP allows http:// URLs on loopback hosts (tests).
	AllowInsecureHTTP bool
}

// withDefaults returns a copy of c with defaults filled in, or an error for
// an invalid configuration.
func (c *Config) withDefaults() (*Config, *url.URL, error) {
	if c == nil {
		return nil, nil, errInvalid("nil Config")
	}
	o := *c
	if o.InstanceURL == "" {
		return nil, nil, errInvalid("Config.InstanceURL (the My Domain URL) is required")
	}
	inst, err := checkURL(o.InstanceURL, o.AllowInsecureHTTP)
	if err != nil {
		return nil, nil, err
	}
	o.InstanceURL = inst.String()
	if o.LoginURL == "" {
		o.LoginURL = o.InstanceURL
	} else {
		lu, err := checkURL(o.LoginURL, o.AllowInsecureHTTP)
		if err != nil {
			return nil, nil, err
		}
		o.LoginURL = lu.String()
	}
	if o.APIVersion == "" {
		o.APIVersion = DefaultAPIVersion
	}
	if !validVersion(o.APIVersion) {
		return nil, nil, errInvalid("Config.APIVersion " + o.APIVersion + ": want vNN.N")
	}
	switch strings.ToUpper(o.AutoAssign) {
	case "TRUE", "FALSE":
		o.AutoAssign = strings.ToUpper(o.AutoAssign)
	case "":
		return nil, nil, errInvalid("Config.AutoAssign is required: TRUE, FALSE or an AssignmentRule Id (Salesforce defaults to TRUE, which reassigns cases)")
	default:
		if !looksLikeID(o.AutoAssign, "01Q") {
			return nil, nil, errInvalid("Config.AutoAssign " + o.AutoAssign + ": want TRUE, FALSE or an AssignmentRule Id (01Q...)")
		}
	}
	if o.NoteObject == "" {
		o.NoteObject = "CaseComment"
	}
	if o.NoteObject != "CaseComment" {
		return nil, nil, errInvalid("Config.NoteObject " + o.NoteObject + ": only CaseComment is supported")
	}
	if o.AccountDomainField == "" {
		o.AccountDomainField = "Website"
	}
	if o.SupportLevelField == "" {
		o.SupportLevelField = "EmailcrmSupportLevel__c"
	}
	for _, f := range []string{o.AccountDomainField, o.SupportLevelField, o.CategoryField} {
		if f != "" && !validName(f) {
			return nil, nil, errInvalid("invalid field name " + f)
		}
	}
	sm := map[driver.CaseStatus]string{
		driver.StatusNew: "New", driver.StatusOpen: "Working", driver.StatusInProgress: "Escalated",
		driver.StatusClosed: "Closed", driver.StatusCancelled: "Closed",
	}
	for k, v := range o.StatusMap {
		sm[k] = v
	}
	o.StatusMap = sm
	pm := map[driver.Priority]string{
		driver.PriorityLow: "Low", driver.PriorityNormal: "Medium", driver.PriorityHigh: "High", driver.PriorityUrgent: "Urgent",
	}
	for k, v := range o.PriorityMap {
		pm[k] = v
	}
	o.PriorityMap = pm
	if o.SlowDownAt == 0 {
		o.SlowDownAt = 0.9
	}
	if o.SlowDownMax == 0 {
		o.SlowDownMax = 2 * time.Second
	}
	if o.MaxJSONAttachment <= 0 {
		o.MaxJSONAttachment = 4 << 20
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
		if err := o.Lookup.compile(); err != nil {
			return nil, nil, err
		}
	}
	return &o, inst, nil
}

// checkURL parses a base URL (a bare host means https) and enforces https
// except for loopback hosts with allowHTTP.
func checkURL(s string, allowHTTP bool) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, errInvalid("invalid URL " + s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP || !crmhttp.IsLoopback(u.Hostname()) {
			return nil, errInvalid("plain http is allowed only to loopback hosts with AllowInsecureHTTP (insecure_http=1): " + u.Host)
		}
	default:
		return nil, errInvalid("URL scheme " + u.Scheme + ": want https")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}, nil
}

func validVersion(v string) bool {
	n, ok := strings.CutPrefix(v, "v")
	if !ok {
		return false
	}
	a, b, ok := strings.Cut(n, ".")
	return ok && a != "" && b != "" && strings.Trim(a, "0123456789") == "" && strings.Trim(b, "0123456789") == ""
}

// validName reports whether s is a Salesforce API name (letters, digits,
// underscores; custom names end in __c).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// looksLikeID reports whether s is a 15- or 18-character Salesforce Id
// with the key prefix prefix ("" for any).
func looksLikeID(s, prefix string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return prefix == "" || strings.HasPrefix(s, prefix)
}
