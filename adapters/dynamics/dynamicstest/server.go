// Package dynamicstest provides an in-process fake of the Dataverse Web API
// (v9.2, the API of Dynamics 365 Customer Service) and of the Microsoft
// Entra ID token endpoint, for tests of code that talks to Dynamics.
//
// The fake follows the request and response shapes Microsoft documents, on the
// small part of the API it implements: client-credentials tokens, record
// create (POST, with deep insert of activity parties), retrieve, query
// ($select, $filter, $top, $orderby), update and upsert (PATCH by GUID or by
// the alternate key emailcrm_key, with If-Match / If-None-Match), delete,
// $batch with change sets, the CloseIncident action, the AddToQueue action
// (POST queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue) and WhoAmI. It enforces the
// rules that matter to a client: column lengths, required columns, option set
// ranges, state/status combinations, lookups that must exist, unique
// alternate keys, $filter string-literal escaping, batch limits, token expiry
// and the service protection request limit.
//
// # Tables
//
// incidents, contacts, accounts, systemusers, teams, queues, queueitems, emails,
// activityparties (created only by deep insert through
// email_activity_parties), activitymimeattachments, annotations and
// incidentresolutions. [Server.AddAttribute] adds custom text columns.
// Lookups are bound with "nav@odata.bind": "/set(<guid>)" (or "$n" inside a
// change set) and read back as _<lookup>_value, e.g. customerid_contact and
// customerid_account both set _customerid_value.
//
// # Behaviour worth knowing
//
//   - POST answers 204 with OData-EntityId: <URL>/api/data/v9.2/<set>(<guid>);
//     with Prefer: return=representation, 201 and the record ($select honoured).
//   - PATCH by GUID or alternate key upserts; If-Match: * only updates (404
//     0x80040217 when missing); If-None-Match: * only creates (412 0x80060892);
//     If-Match: W/"n" checks @odata.etag (412 0x80060882). An upsert by
//     alternate key answers OData-EntityId in the key form
//     (.../incidents(emailcrm_key='k1')), as Dataverse documents: ask for
//     Prefer: return=representation (201 created, 200 updated) to learn the GUID.
//   - Alternate key values and eq on strings compare case-insensitively.
//     An empty string is stored as null.
//   - $filter uses SQL's three-valued logic: "x ne 'a'" and "not
//     contains(x,'a')" skip rows where x is null. contains, startswith and
//     endswith are LIKE patterns: escape % _ [ as [%] [_] [[]. The query
//     string is decoded as usual, so an unencoded '+' becomes a space.
//   - Statecode/statuscode must be a valid pair (statuscode alone implies its
//     state). A case is resolved only through CloseIncident; a resolved or
//     cancelled case accepts only a state change (reactivate with statecode 0,
//     statuscode 1). CloseIncident stores a closed incidentresolution.
//   - $batch: one API call and one request against the limit; at most 1000
//     requests; execution stops at the first failure unless Prefer:
//     odata.continue-on-error. A change set is one transaction; each of its
//     requests needs a Content-ID; a failing change set answers only the
//     failing request's error (with its Content-ID); $n works in request
//     URLs ($1, $1/Incident_Emails) and in @odata.bind values. GET is not
//     allowed in a change set.
//   - Order of checks on an API request: token (401), FailNext, Throttle,
//     the RequestLimit window (429, Retry-After = seconds until the oldest
//     request leaves the window), then the request. Every API response
//     carries x-ms-ratelimit-burst-remaining-xrm-requests.
//   - Collection-valued navigation properties: incident Incident_Emails,
//     Incident_Annotation, Incident_IncidentResolutions; email
//     email_activity_parties (deep insert on create) and
//     email_activity_mime_attachment. POST {set}(<id>)/{nav} creates a bound child.
//
// # Error codes
//
// Errors answer {"error":{"code":...,"message":...}} with these codes:
//
//	0x80040217  404 record does not exist; 400 when a bind target does not exist
//	0x80060888  400 OData: unknown property, unparsable $filter/$select/key, bad reference,
//	            change set request without Content-ID, unsupported query option
//	0x8006088a  404 unknown entity set or segment
//	0x80048d19  400 payload: wrong JSON type, invalid base64, malformed JSON or batch
//	0x80044331  400 string longer than the column's maximum length
//	0x8004431a  400 option set value out of range
//	0x80040203  400 invalid argument: required column missing, invalid state/status,
//	            resolving through PATCH, updating a closed case, bad CloseIncident,
//	            more than 1000 requests in a $batch
//	0x80044a02  400 attachment or note body (base64 length) over MaxUploadFileSize
//	0x80060892  412 alternate key already used (POST, PATCH with If-None-Match: *)
//	0x80040237  412 primary key (GUID) already used on POST
//	0x80060882  412 If-Match ETag does not match
//	0x80072322  429 request limit (also Server.Throttle)
//	0x80040216  FailNext's injected status
//	0x80041d52  401 missing, unknown or expired token (fake-specific code)
//
// # Not implemented
//
// $expand, $count, $apply, paging (odata.maxpagesize is ignored: every
// query answers all matches), lambda operators (any/all), navigation paths in
// $filter, bound actions, plugins, business rules, duplicate detection,
// security roles, cascading deletes, the execution-time and concurrency
// limits, and rules on activities of closed cases (an email may be created
// regarding a resolved case). Creating an email with statecode 1 is
// accepted; real Dataverse may require a separate state change.
package dynamicstest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value of each field selects its default.
type Options struct {
	// ClientID, ClientSecret and Tenant are the app registration's
	// credentials. A client-credentials request is accepted when they match.
	// An empty ClientID or ClientSecret accepts any non-empty value. Tenant
	// defaults to "00000000-0000-0000-0000-00000000d365".
	ClientID, ClientSecret, Tenant string

	// TokenTTL is the lifetime of an access token. Default 1 hour.
	TokenTTL time.Duration

	// RequestLimit is the number of API requests allowed per sliding window
	// of 5 minutes before the server answers 429. Default 6000.
	RequestLimit int

	// MaxUploadFileSize limits the base64 length of an annotation's
	// documentbody and an attachment's body. Default 5 MiB.
	MaxUploadFileSize int

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// A Call is one API request the server received. A $batch is one Call.
type Call struct {
	Method, Path, RawQuery string
	Body                   []byte
	Status                 int
}

const (
	apiPrefix     = "/api/data/v9.2/"
	defaultTenant = "00000000-0000-0000-0000-00000000d365"
	window        = 5 * time.Minute
	timeLayout    = "2006-01-02T15:04:05Z"
)

// Error codes; see the package documentation.
const (
	codeNotExist     = "0x80040217"
	codeOData        = "0x80060888"
	codeNoSegment    = "0x8006088a"
	codePayload      = "0x80048d19"
	codeMaxLength    = "0x80044331"
	codeOptionRange  = "0x8004431a"
	codeInvalidArg   = "0x80040203"
	codeFileSize     = "0x80044a02"
	codeDuplicateKey = "0x80060892"
	codeDuplicateID  = "0x80040237"
	codeETag         = "0x80060882"
	codeThrottled    = "0x80072322"
	codeUnexpected   = "0x80040216"
	codeAuth         = "0x80041d52"
)

type record = map[string]any

// Server is a fake Dataverse environment served over HTTP. Its methods may be
// called concurrently with requests. Requests are served one at a time.
type Server struct {
	ts   *httptest.Server
	opts Options

	mu            sync.Mutex
	schema        map[string]*entity
	data          map[string]map[string]record
	order         map[string][]string
	tokens        map[string]time.Time
	calls         int
	log           []Call
	failN         int
	failStatus    int
	throttleN     int
	throttleAfter time.Duration
	hits          []time.Time
	ticketSeq     int
	userID        string
	orgID, buID   string
}

// New starts a Server. It creates one systemuser, the integration user
// "integration@dynamicstest.invalid", who owns the records the API creates.
// opts may be nil.
func New(opts *Options) *Server {
	s := &Server{
		schema: builtinSchema(),
		data:   map[string]map[string]record{},
		order:  map[string][]string{},
		tokens: map[string]time.Time{},
	}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Tenant == "" {
		s.opts.Tenant = defaultTenant
	}
	if s.opts.TokenTTL <= 0 {
		s.opts.TokenTTL = time.Hour
	}
	if s.opts.RequestLimit <= 0 {
		s.opts.RequestLimit = 6000
	}
	if s.opts.MaxUploadFileSize <= 0 {
		s.opts.MaxUploadFileSize = 5 * 1024 * 1024
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	s.orgID, s.buID = newGUID(), newGUID()
	s.userID = s.Insert("systemusers", map[string]any{
		"fullname": "# dynamicstest integration", "internalemailaddress": "integration@dynamicstest.invalid",
		"domainname": "integration@dynamicstest.invalid", "isdisabled": false,
	})
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL returns the environment URL, e.g. http://127.0.0.1:port. The Web API is
// under URL()+"/api/data/v9.2/".
func (s *Server) URL() string { return s.ts.URL }

// TokenURL returns the Entra ID token endpoint of the tenant.
func (s *Server) TokenURL() string {
	return s.ts.URL + "/" + s.opts.Tenant + "/oauth2/v2.0/token"
}

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// UserID returns the GUID of the integration systemuser.
func (s *Server) UserID() string { return s.userID }

// Calls returns the number of API requests received since New or ResetCalls.
// Token requests are not counted; a $batch counts as one.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// ResetCalls sets Calls to zero and empties Log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = 0
	s.log = nil
}

// Log returns the API requests received since New or ResetCalls.
func (s *Server) Log() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.log...)
}

// FailNext makes the next n API requests answer status with an OData error
// body (code 0x80040216), after authentication and before anything else.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// Throttle makes the next n API requests answer 429 with a Retry-After of
// retryAfter (whole seconds, rounded up).
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleN, s.throttleAfter = n, retryAfter
}

// ExpireTokens makes every access token issued so far expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
}

// AddAttribute adds a text column of maxLen characters to the table whose
// logical name (incident) or entity set name (incidents) is entity. It
// panics if there is no such table.
func (s *Server) AddAttribute(entity, attrName string, maxLen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.schema[entity]
	if e == nil {
		e = s.entityByLogical(entity)
	}
	if e == nil {
		panic("dynamicstest: AddAttribute: no table " + strconv.Quote(entity))
	}
	e.attrs[attrName] = &attr{name: attrName, typ: tString, maxLen: maxLen}
}

// Record returns a copy of the stored record, as stored: columns, the primary
// id and lookups as _<name>_value (with their
// @Microsoft.Dynamics.CRM.lookuplogicalname annotations).
func (s *Server) Record(entitySet, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.data[entitySet][strings.ToLower(id)]
	if !ok {
		return nil, false
	}
	return copyRecord(r), true
}

// Records returns copies of the records of entitySet in creation order.
func (s *Server) Records(entitySet string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, id := range s.order[entitySet] {
		out = append(out, copyRecord(s.data[entitySet][id]))
	}
	return out
}

// Insert stores a record without validation and returns its GUID. fields
// are stored as given (use _<name>_value keys for lookups); the primary id,
// createdon, modifiedon, versionnumber and the default state are added when
// missing. It panics if entitySet is unknown.
func (s *Server) Insert(entitySet string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.schema[entitySet]
	if e == nil {
		panic("dynamicstest: Insert: no entity set " + strconv.Quote(entitySet))
	}
	rec := copyRecord(fields)
	id, _ := rec[e.idAttr].(string)
	if id == "" {
		id = newGUID()
	}
	id = strings.ToLower(id)
	rec[e.idAttr] = id
	s.defaults(e, rec)
	s.put(e, rec)
	return id
}

func copyRecord(r record) record {
	c := make(record, len(r))
	for k, v := range r {
		c[k] = v
	}
	return c
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (s *Server) now() string { return s.opts.Now().UTC().Format(timeLayout) }

// defaults fills the columns Dataverse sets on create. s.mu is held.
func (s *Server) defaults(e *entity, rec record) {
	now := s.now()
	if _, ok := e.attrs["createdon"]; ok {
		if rec["createdon"] == nil {
			rec["createdon"] = now
		}
		if rec["modifiedon"] == nil {
			rec["modifiedon"] = now
		}
	}
	if rec["versionnumber"] == nil {
		rec["versionnumber"] = 1
	}
	if e.states != nil {
		if rec["statecode"] == nil {
			rec["statecode"] = 0
		}
		if rec["statuscode"] == nil {
			st, _ := toInt(rec["statecode"])
			if sts := e.states[st]; len(sts) > 0 {
				rec["statuscode"] = sts[0]
			}
		}
	}
	if _, ok := e.navs["ownerid"]; ok && rec["_ownerid_value"] == nil && s.userID != "" {
		rec["_ownerid_value"] = s.userID
		rec["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = "systemuser"
	}
	if e.logical == "incident" && rec["ticketnumber"] == nil {
		rec["ticketnumber"] = fmt.Sprintf("CAS-%05d-%s", 1000+s.ticketSeq, randomSuffix())
		s.ticketSeq++
	}
}

func randomSuffix() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// put stores rec (which the caller no longer modifies). s.mu is held.
func (s *Server) put(e *entity, rec record) {
	id := rec[e.idAttr].(string)
	m := s.data[e.set]
	if m == nil {
		m = map[string]record{}
		s.data[e.set] = m
	}
	if _, ok := m[id]; !ok {
		s.order[e.set] = append(s.order[e.set], id)
	}
	m[id] = rec
}

type snapshot struct {
	data  map[string]map[string]record
	order map[string][]string
}

// snapshot copies the tables. Records are never modified in place, so a
// shallow copy of each table is enough. s.mu is held.
func (s *Server) snapshot() snapshot {
	sn := snapshot{data: map[string]map[string]record{}, order: map[string][]string{}}
	for set, m := range s.data {
		c := make(map[string]record, len(m))
		for k, v := range m {
			c[k] = v
		}
		sn.data[set] = c
	}
	for set, o := range s.order {
		sn.order[set] = append([]string(nil), o...)
	}
	return sn
}

func (s *Server) restore(sn snapshot) { s.data, s.order = sn.data, sn.order }

// A response is an answer before it is written.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) set(k, v string) *response {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set(k, v)
	return r
}

func odataError(status int, code, msg string) *response {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg}})
	return (&response{status: status, body: b}).set("Content-Type", "application/json; odata.metadata=minimal")
}

func jsonResponse(status int, v any) *response {
	b, _ := json.Marshal(v)
	return (&response{status: status, body: b}).set("Content-Type", "application/json; odata.metadata=minimal").set("OData-Version", "4.0")
}

func (r *response) write(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		odataError(http.StatusBadRequest, codePayload, "unreadable body").write(w)
		return
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		s.mu.Lock()
		resp := s.handleToken(r, body)
		s.mu.Unlock()
		resp.write(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := s.handleAPI(r, body)
	s.calls++
	s.log = append(s.log, Call{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: body, Status: resp.status})
	resp.set("x-ms-ratelimit-burst-remaining-xrm-requests", strconv.Itoa(max(0, s.opts.RequestLimit-len(s.hits))))
	resp.set("x-ms-ratelimit-time-remaining-xrm-requests", fmt.Sprintf("%d.00", max(0, 1200000-50*len(s.hits))))
	resp.write(w)
}

func (s *Server) handleAPI(r *http.Request, body []byte) *response {
	if !strings.HasPrefix(r.URL.Path, apiPrefix) {
		return odataError(http.StatusNotFound, codeNoSegment, "Resource not found for the segment '"+strings.TrimPrefix(r.URL.Path, "/")+"'.")
	}
	if resp := s.authorize(r.Header.Get("Authorization")); resp != nil {
		return resp
	}
	if s.failN > 0 {
		s.failN--
		return odataError(s.failStatus, codeUnexpected, "An unexpected error occurred (injected by dynamicstest).")
	}
	now := s.opts.Now()
	if s.throttleN > 0 {
		s.throttleN--
		return s.throttled(s.throttleAfter)
	}
	cut := 0
	for cut < len(s.hits) && now.Sub(s.hits[cut]) >= window {
		cut++
	}
	s.hits = s.hits[cut:]
	if len(s.hits) >= s.opts.RequestLimit {
		return s.throttled(window - now.Sub(s.hits[0]))
	}
	s.hits = append(s.hits, now)

	rawPath := strings.TrimPrefix(r.URL.EscapedPath(), apiPrefix)
	if r.URL.Path == apiPrefix+"$batch" {
		if r.Method != http.MethodPost {
			return odataError(http.StatusMethodNotAllowed, codeOData, "The $batch resource only supports POST.")
		}
		return s.handleBatch(r.Header, body)
	}
	return s.exec(&op{method: r.Method, path: rawPath, rawQuery: r.URL.RawQuery, header: r.Header, body: body})
}

func (s *Server) throttled(after time.Duration) *response {
	secs := int(math.Ceil(after.Seconds()))
	msg := fmt.Sprintf("Number of requests exceeded the limit of %d over time window of 300 seconds.", s.opts.RequestLimit)
	return odataError(http.StatusTooManyRequests, codeThrottled, msg).set("Retry-After", strconv.Itoa(max(0, secs)))
}

// An op is one Web API request, top-level or inside a $batch.
type op struct {
	method   string
	path     string // escaped, relative to /api/data/v9.2/
	rawQuery string
	header   http.Header
	body     []byte
	refs     map[string]string // Content-ID -> "set(guid)" inside a change set
}

// exec runs one request. A failing request leaves the tables unchanged.
func (s *Server) exec(o *op) *response {
	if o.method == http.MethodGet {
		return s.route(o)
	}
	sn := s.snapshot()
	resp := s.route(o)
	if resp.status >= 400 {
		s.restore(sn)
	}
	return resp
}

func (s *Server) route(o *op) *response {
	path := o.path
	if strings.HasPrefix(path, "$") {
		ref, rest, _ := strings.Cut(path, "/")
		target, ok := o.refs[ref[1:]]
		if !ok {
			return odataError(http.StatusBadRequest, codeOData, "Content-ID Reference: '"+ref+"' does not exist in the batch context.")
		}
		path = target
		if rest != "" {
			path += "/" + rest
		}
	}
	query, err := url.ParseQuery(o.rawQuery)
	if err != nil {
		return odataError(http.StatusBadRequest, codeOData, "The query string '"+o.rawQuery+"' is malformed.")
	}
	name, key, sub, ok := splitPath(path)
	if !ok {
		return odataError(http.StatusBadRequest, codeOData, "Bad Request - Error in query syntax: '"+path+"'.")
	}
	switch {
	case name == "CloseIncident" && key == "" && sub == "":
		if o.method != http.MethodPost {
			return methodNotAllowed(o.method, name)
		}
		return s.closeIncident(o)
	case name == "WhoAmI" && key == "" && sub == "":
		if o.method != http.MethodGet {
			return methodNotAllowed(o.method, name)
		}
		return jsonResponse(http.StatusOK, map[string]any{
			"@odata.context": s.URL() + apiPrefix + "$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
			"BusinessUnitId": s.buID, "UserId": s.userID, "OrganizationId": s.orgID,
		})
	}
	e := s.schema[name]
	if e == nil {
		return odataError(http.StatusNotFound, codeNoSegment, "Resource not found for the segment '"+name+"'.")
	}
	if key == "" {
		if sub != "" {
			return odataError(http.StatusNotFound, codeNoSegment, "Resource not found for the segment '"+sub+"'.")
		}
		switch o.method {
		case http.MethodPost:
			return s.handleCreate(e, o, query, nil)
		case http.MethodGet:
			return s.handleQuery(e, query, nil)
		}
		return methodNotAllowed(o.method, name)
	}
	k, resp := s.parseKey(e, key)
	if resp != nil {
		return resp
	}
	if sub == "Microsoft.Dynamics.CRM.AddToQueue" && e.set == "queues" {
		if o.method != http.MethodPost {
			return methodNotAllowed(o.method, sub)
		}
		return s.addToQueue(e, k, o)
	}
	if sub != "" {
		c := e.colls[sub]
		if c == nil {
			return odataError(http.StatusNotFound, codeNoSegment, "Resource not found for the segment '"+sub+"'.")
		}
		parent, resp := s.lookup(e, k)
		if resp != nil {
			return resp
		}
		child := s.schema[c.childSet]
		link := c.childNav + "@odata.bind"
		switch o.method {
		case http.MethodPost:
			return s.handleCreate(child, o, query, map[string]any{link: "/" + e.set + "(" + parent[e.idAttr].(string) + ")"})
		case http.MethodGet:
			lk := "_" + child.navs[c.childNav].lookup + "_value"
			id := parent[e.idAttr].(string)
			return s.handleQuery(child, query, func(r record) bool { return r[lk] == id })
		}
		return methodNotAllowed(o.method, sub)
	}
	switch o.method {
	case http.MethodGet:
		rec, resp := s.lookup(e, k)
		if resp != nil {
			return resp
		}
		sel, resp := parseSelect(e, query)
		if resp != nil {
			return resp
		}
		out := s.present(e, rec, sel, includeAnnotations(o.header))
		out["@odata.context"] = s.URL() + apiPrefix + "$metadata#" + e.set + "/$entity"
		return jsonResponse(http.StatusOK, out)
	case http.MethodPatch:
		return s.handleUpsert(e, k, o, query)
	case http.MethodDelete:
		rec, resp := s.lookup(e, k)
		if resp != nil {
			return resp
		}
		id := rec[e.idAttr].(string)
		delete(s.data[e.set], id)
		ord := s.order[e.set][:0:0]
		for _, x := range s.order[e.set] {
			if x != id {
				ord = append(ord, x)
			}
		}
		s.order[e.set] = ord
		return &response{status: http.StatusNoContent}
	}
	return methodNotAllowed(o.method, name)
}

func methodNotAllowed(method, seg string) *response {
	return odataError(http.StatusMethodNotAllowed, codeOData, "The HTTP method '"+method+"' is not allowed on '"+seg+"'.")
}

func includeAnnotations(h http.Header) bool {
	return strings.Contains(strings.Join(h.Values("Prefer"), ","), "odata.include-annotations")
}

func wantsRepresentation(h http.Header) bool {
	return strings.Contains(strings.Join(h.Values("Prefer"), ","), "return=representation")
}

// splitPath unescapes p and splits "set(key)/sub" into its parts. A ')' or
// '/' inside a quoted key value does not end the key.
func splitPath(p string) (name, key, sub string, ok bool) {
	p, err := url.PathUnescape(p)
	if err != nil {
		return "", "", "", false
	}
	i := strings.IndexByte(p, '(')
	if i < 0 {
		name, sub, _ = strings.Cut(p, "/")
		if sub != "" {
			return name, "", sub, true
		}
		return name, "", "", true
	}
	name = p[:i]
	inQuote := false
	j := i + 1
	for ; j < len(p); j++ {
		c := p[j]
		if c == '\'' {
			inQuote = !inQuote // '' toggles twice
		} else if c == ')' && !inQuote {
			break
		}
	}
	if j >= len(p) {
		return "", "", "", false
	}
	key = p[i+1 : j]
	rest := p[j+1:]
	if rest != "" {
		if rest[0] != '/' {
			return "", "", "", false
		}
		sub = rest[1:]
	}
	return name, key, sub, true
}

// A recKey identifies a record by GUID or by an alternate key value.
type recKey struct {
	id          string
	attr, value string
	display     string
}

func (s *Server) parseKey(e *entity, key string) (recKey, *response) {
	if guidRE.MatchString(key) {
		return recKey{id: strings.ToLower(key), display: key}, nil
	}
	name, lit, ok := strings.Cut(key, "=")
	bad := odataError(http.StatusBadRequest, codeOData, "Bad Request - Error in query syntax: key '"+key+"' of '"+e.set+"'.")
	if !ok {
		return recKey{}, bad
	}
	name = strings.TrimSpace(name)
	isKey := false
	for _, k := range e.altKeys {
		if k == name {
			isKey = true
		}
	}
	if !isKey {
		return recKey{}, odataError(http.StatusBadRequest, codeOData, "The key '"+name+"' is not an alternate key of entity '"+e.logical+"'.")
	}
	lit = strings.TrimSpace(lit)
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return recKey{}, bad
	}
	inner := lit[1 : len(lit)-1]
	// Every quote inside must be doubled.
	if strings.Count(inner, "''")*2 != strings.Count(inner, "'") {
		return recKey{}, bad
	}
	return recKey{attr: name, value: strings.ReplaceAll(inner, "''", "'"), display: key}, nil
}

// find returns the record k names, or nil. s.mu is held.
func (s *Server) find(e *entity, k recKey) record {
	if k.id != "" {
		return s.data[e.set][k.id]
	}
	for _, id := range s.order[e.set] {
		r := s.data[e.set][id]
		if v, ok := r[k.attr].(string); ok && strings.EqualFold(v, k.value) {
			return r
		}
	}
	return nil
}

func (s *Server) notFound(e *entity, k recKey) *response {
	if k.id != "" {
		return odataError(http.StatusNotFound, codeNotExist, e.logical+" With Id = "+k.id+" Does Not Exist")
	}
	return odataError(http.StatusNotFound, codeNotExist, "A record with the specified key values does not exist in "+e.logical+" entity")
}

func (s *Server) lookup(e *entity, k recKey) (record, *response) {
	if r := s.find(e, k); r != nil {
		return r, nil
	}
	return nil, s.notFound(e, k)
}

func (s *Server) entityURL(e *entity, id string) string {
	return s.URL() + apiPrefix + e.set + "(" + id + ")"
}

// present renders rec for a response. s.mu is held.
func (s *Server) present(e *entity, rec record, sel []string, annotations bool) map[string]any {
	out := map[string]any{}
	if v, ok := rec["versionnumber"]; ok {
		out["@odata.etag"] = fmt.Sprintf("W/\"%v\"", v)
	}
	cols := sel
	if len(cols) == 0 {
		cols = e.columns()
	} else {
		cols = append([]string{e.idAttr}, sel...)
	}
	for _, c := range cols {
		out[c] = rec[c]
		if annotations {
			for k, v := range rec {
				if strings.HasPrefix(k, c+"@") {
					out[k] = v
				}
			}
		}
	}
	return out
}

func parseSelect(e *entity, q url.Values) ([]string, *response) {
	raw := q.Get("$select")
	if raw == "" {
		return nil, nil
	}
	var sel []string
	for _, c := range strings.Split(raw, ",") {
		c = strings.TrimSpace(c)
		if _, ok := e.column(c); !ok {
			return nil, odataError(http.StatusBadRequest, codeOData, "Could not find a property named '"+c+"' on type 'Microsoft.Dynamics.CRM."+e.logical+"'.")
		}
		sel = append(sel, c)
	}
	return sel, nil
}

func decodeBody(body []byte) (map[string]any, *response) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, odataError(http.StatusBadRequest, codePayload, "Error identified in Payload provided by the user: the body is not a JSON object.")
	}
	return m, nil
}

func (s *Server) handleCreate(e *entity, o *op, q url.Values, extra map[string]any) *response {
	if e.noCreate {
		return odataError(http.StatusBadRequest, codeInvalidArg, "The 'Create' method does not support entities of type '"+e.logical+"'.")
	}
	payload, resp := decodeBody(o.body)
	if resp != nil {
		return resp
	}
	for k, v := range extra {
		payload[k] = v
	}
	sel, resp := parseSelect(e, q)
	if resp != nil {
		return resp
	}
	rec, resp := s.create(e, payload, o.refs)
	if resp != nil {
		return resp
	}
	id := rec[e.idAttr].(string)
	if wantsRepresentation(o.header) {
		out := s.present(e, rec, sel, includeAnnotations(o.header))
		out["@odata.context"] = s.URL() + apiPrefix + "$metadata#" + e.set + "/$entity"
		return jsonResponse(http.StatusCreated, out).set("OData-EntityId", s.entityURL(e, id))
	}
	return (&response{status: http.StatusNoContent}).set("OData-EntityId", s.entityURL(e, id)).set("OData-Version", "4.0")
}

// create validates payload and stores a new record. s.mu is held; the
// caller restores a snapshot on error.
func (s *Server) create(e *entity, payload map[string]any, refs map[string]string) (record, *response) {
	rec := record{}
	if v, ok := payload[e.idAttr]; ok {
		id, _ := v.(string)
		if !guidRE.MatchString(id) {
			return nil, odataError(http.StatusBadRequest, codePayload, "Cannot convert the literal '"+fmt.Sprint(v)+"' to the expected type 'Edm.Guid'.")
		}
		id = strings.ToLower(id)
		if s.data[e.set][id] != nil {
			return nil, odataError(http.StatusPreconditionFailed, codeDuplicateID, "Cannot insert duplicate key.")
		}
		rec[e.idAttr] = id
	} else {
		rec[e.idAttr] = newGUID()
	}
	children, resp := s.apply(e, rec, payload, refs)
	if resp != nil {
		return nil, resp
	}
	if resp := s.checkState(e, nil, rec, payload); resp != nil {
		return nil, resp
	}
	s.defaults(e, rec)
	s.derive(e, rec)
	if resp := s.checkRecord(e, rec); resp != nil {
		return nil, resp
	}
	s.put(e, rec)
	parentRef := "/" + e.set + "(" + rec[e.idAttr].(string) + ")"
	for _, ch := range children {
		c := e.colls[ch.nav]
		for _, item := range ch.items {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, odataError(http.StatusBadRequest, codePayload, "Error identified in Payload provided by the user: '"+ch.nav+"' must be an array of objects.")
			}
			m = copyRecord(m)
			m[c.childNav+"@odata.bind"] = parentRef
			if _, resp := s.create(s.schema[c.childSet], m, refs); resp != nil {
				return nil, resp
			}
		}
	}
	return rec, nil
}

type deepInsert struct {
	nav   string
	items []any
}

// apply validates payload and copies it into rec. s.mu is held.
func (s *Server) apply(e *entity, rec record, payload map[string]any, refs map[string]string) ([]deepInsert, *response) {
	keys := make([]string, 0, len(payload))
	for k := range payload {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var children []deepInsert
	for _, k := range keys {
		v := payload[k]
		if navName, ok := strings.CutSuffix(k, "@odata.bind"); ok {
			if resp := s.bind(e, rec, navName, v, refs); resp != nil {
				return nil, resp
			}
			continue
		}
		if strings.Contains(k, "@") || k == e.idAttr {
			continue // instance annotations; the id is handled by create
		}
		if _, ok := e.colls[k]; ok {
			items, ok := v.([]any)
			if !ok {
				return nil, odataError(http.StatusBadRequest, codePayload, "Error identified in Payload provided by the user: '"+k+"' must be an array.")
			}
			children = append(children, deepInsert{nav: k, items: items})
			continue
		}
		a := e.attrs[k]
		if a == nil {
			if _, ok := e.navs[k]; ok {
				return nil, odataError(http.StatusBadRequest, codeOData, "A navigation property '"+k+"' was found in the payload without '@odata.bind'; deep insert of single-valued navigation properties is not supported by dynamicstest.")
			}
			return nil, odataError(http.StatusBadRequest, codeOData, "The property '"+k+"' does not exist on type 'Microsoft.Dynamics.CRM."+e.logical+"'. Make sure to only use property names that are defined by the type.")
		}
		if a.readOnly {
			continue
		}
		val, resp := s.convert(e, a, v)
		if resp != nil {
			return nil, resp
		}
		rec[k] = val
	}
	return children, nil
}

func typeError(v any, edm string) *response {
	return odataError(http.StatusBadRequest, codePayload, fmt.Sprintf("Error identified in Payload provided by the user: Cannot convert the literal '%v' to the expected type '%s'.", v, edm))
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case json.Number:
		n, err := strconv.Atoi(x.String())
		return n, err == nil
	case float64:
		if x == math.Trunc(x) {
			return int(x), true
		}
	}
	return 0, false
}

func (s *Server) convert(e *entity, a *attr, v any) (any, *response) {
	if v == nil {
		return nil, nil
	}
	switch a.typ {
	case tString, tMemo:
		str, ok := v.(string)
		if !ok {
			return nil, typeError(v, "Edm.String")
		}
		if str == "" {
			return nil, nil // Dataverse stores an empty string as null
		}
		if a.maxLen > 0 && utf16Len(str) > a.maxLen {
			return nil, odataError(http.StatusBadRequest, codeMaxLength, fmt.Sprintf("A validation error occurred. The length of the '%s' attribute of the '%s' entity exceeded the maximum allowed length of '%d'.", a.name, e.logical, a.maxLen))
		}
		return str, nil
	case tInt, tState, tStatus:
		n, ok := toInt(v)
		if !ok {
			return nil, typeError(v, "Edm.Int32")
		}
		return n, nil
	case tOption:
		n, ok := toInt(v)
		if !ok {
			return nil, typeError(v, "Edm.Int32")
		}
		if !a.options[n] {
			var vals []int
			for x := range a.options {
				vals = append(vals, x)
			}
			sort.Ints(vals)
			return nil, odataError(http.StatusBadRequest, codeOptionRange, fmt.Sprintf("A validation error occurred. The value %d of '%s' on record of type '%s' is outside the valid range. Accepted Values: %s", n, a.name, e.logical, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(vals)), ","), "[]")))
		}
		return n, nil
	case tBool:
		b, ok := v.(bool)
		if !ok {
			return nil, typeError(v, "Edm.Boolean")
		}
		return b, nil
	case tDateTime:
		str, _ := v.(string)
		t, err := time.Parse(time.RFC3339, str)
		if err != nil {
			return nil, typeError(v, "Edm.DateTimeOffset")
		}
		return t.UTC().Format(timeLayout), nil
	case tBase64:
		str, ok := v.(string)
		if !ok {
			return nil, typeError(v, "Edm.String")
		}
		if len(str) > s.opts.MaxUploadFileSize {
			return nil, odataError(http.StatusBadRequest, codeFileSize, "The attachment is either not a valid type or is too large. It cannot be uploaded or downloaded.")
		}
		if _, err := base64.StdEncoding.DecodeString(str); err != nil {
			return nil, odataError(http.StatusBadRequest, codePayload, "Error identified in Payload provided by the user: the value of '"+a.name+"' is not valid base64.")
		}
		return str, nil
	}
	return v, nil
}

// bind sets the lookup of navigation property navName. s.mu is held.
func (s *Server) bind(e *entity, rec record, navName string, v any, refs map[string]string) *response {
	n := e.navs[navName]
	if n == nil {
		return odataError(http.StatusBadRequest, codeOData, "An undeclared property '"+navName+"' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.")
	}
	lk := "_" + n.lookup + "_value"
	if v == nil {
		rec[lk] = nil
		delete(rec, lk+"@Microsoft.Dynamics.CRM.lookuplogicalname")
		return nil
	}
	ref, ok := v.(string)
	if !ok {
		return typeError(v, "Edm.String")
	}
	target, resp := s.resolveRef(ref, refs)
	if resp != nil {
		return resp
	}
	allowed := false
	for _, t := range n.targets {
		if t == target.set {
			allowed = true
		}
	}
	if !allowed {
		return odataError(http.StatusBadRequest, codeOData, "The entity set '"+target.set+"' cannot be bound to the navigation property '"+navName+"' of 'Microsoft.Dynamics.CRM."+e.logical+"'.")
	}
	rec[lk] = target.id
	rec[lk+"@Microsoft.Dynamics.CRM.lookuplogicalname"] = s.schema[target.set].logical
	return nil
}

type entityRef struct{ set, id string }

// resolveRef resolves "/set(key)", "set(key)", an absolute entity URL or
// "$n" to an existing record. s.mu is held.
func (s *Server) resolveRef(ref string, refs map[string]string) (entityRef, *response) {
	p := ref
	if strings.HasPrefix(p, "$") {
		t, ok := refs[p[1:]]
		if !ok {
			return entityRef{}, odataError(http.StatusBadRequest, codeOData, "Content-ID Reference: '"+p+"' does not exist in the batch context.")
		}
		p = t
	}
	if i := strings.Index(p, apiPrefix); i >= 0 {
		p = p[i+len(apiPrefix):]
	}
	p = strings.TrimPrefix(p, "/")
	name, key, sub, ok := splitPath(p)
	bad := odataError(http.StatusBadRequest, codeOData, "The URI '"+ref+"' in an @odata.bind annotation is not a valid entity reference.")
	if !ok || key == "" || sub != "" {
		return entityRef{}, bad
	}
	te := s.schema[name]
	if te == nil {
		return entityRef{}, bad
	}
	k, resp := s.parseKey(te, key)
	if resp != nil {
		return entityRef{}, resp
	}
	r := s.find(te, k)
	if r == nil {
		resp := s.notFound(te, k)
		resp.status = http.StatusBadRequest
		return entityRef{}, resp
	}
	return entityRef{set: te.set, id: r[te.idAttr].(string)}, nil
}

// derive computes calculated columns. s.mu is held.
func (s *Server) derive(e *entity, rec record) {
	switch e.logical {
	case "contact":
		f, _ := rec["firstname"].(string)
		l, _ := rec["lastname"].(string)
		rec["fullname"] = strings.TrimSpace(f + " " + l)
	case "queueitem":
		if logical, ok := rec["_objectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"].(string); ok {
			rec["objecttypecode"] = logical
		}
	case "activitymimeattachment", "annotation":
		body := "body"
		if e.logical == "annotation" {
			body = "documentbody"
			d, _ := rec["documentbody"].(string)
			rec["isdocument"] = d != ""
		}
		d, _ := rec[body].(string)
		n, _ := base64.StdEncoding.DecodeString(d)
		rec["filesize"] = len(n)
		if logical, ok := rec["_objectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"].(string); ok {
			rec["objecttypecode"] = logical
		}
	}
}

// checkRecord enforces required columns and unique alternate keys on the
// final record. s.mu is held.
func (s *Server) checkRecord(e *entity, rec record) *response {
	var missing []string
	for n, a := range e.attrs {
		if a.required && (rec[n] == nil || rec[n] == "") {
			missing = append(missing, n)
		}
	}
	for _, l := range e.required {
		if rec["_"+l+"_value"] == nil {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return odataError(http.StatusBadRequest, codeInvalidArg, fmt.Sprintf("A validation error occurred. The '%s' attribute of the '%s' entity is required.", missing[0], e.logical))
	}
	id := rec[e.idAttr].(string)
	for _, k := range e.altKeys {
		v, _ := rec[k].(string)
		if v == "" {
			continue
		}
		if other := s.find(e, recKey{attr: k, value: v}); other != nil && other[e.idAttr] != id {
			return odataError(http.StatusPreconditionFailed, codeDuplicateKey, "A record with matching key values already exists.")
		}
	}
	return nil
}

// checkState validates statecode/statuscode after payload was applied to
// rec; old is the stored record (nil on create). s.mu is held.
func (s *Server) checkState(e *entity, old, rec record, payload map[string]any) *response {
	if e.states == nil {
		return nil
	}
	_, hasState := payload["statecode"]
	_, hasStatus := payload["statuscode"]
	if !hasState && !hasStatus {
		return nil
	}
	st, stOK := toInt(rec["statecode"])
	sc, scOK := toInt(rec["statuscode"])
	switch {
	case hasState && !hasStatus:
		if !stOK || len(e.states[st]) == 0 {
			return odataError(http.StatusBadRequest, codeInvalidArg, fmt.Sprintf("%v is not a valid state code on %s.", rec["statecode"], e.logical))
		}
		sc, scOK = e.states[st][0], true
	case hasStatus && !hasState:
		found := false
		for state, sts := range e.states {
			for _, x := range sts {
				if scOK && x == sc {
					st, stOK, found = state, true, true
				}
			}
		}
		if !found {
			return odataError(http.StatusBadRequest, codeInvalidArg, fmt.Sprintf("%v is not a valid status code on %s.", rec["statuscode"], e.logical))
		}
	}
	valid := false
	if stOK && scOK {
		for _, x := range e.states[st] {
			valid = valid || x == sc
		}
	}
	if !valid {
		return odataError(http.StatusBadRequest, codeInvalidArg, fmt.Sprintf("%v is not a valid status code for state code %s.statecode %v.", rec["statuscode"], e.logical, rec["statecode"]))
	}
	if e.logical == "incident" && st == 1 {
		if oldSt, _ := toInt(old["statecode"]); old == nil || oldSt != 1 {
			return odataError(http.StatusBadRequest, codeInvalidArg, "This message can not be used to set the state of incident to Resolved. In order to set state of incident to Resolved, use the CloseIncidentRequest message instead.")
		}
	}
	rec["statecode"], rec["statuscode"] = st, sc
	return nil
}

func (s *Server) handleUpsert(e *entity, k recKey, o *op, q url.Values) *response {
	payload, resp := decodeBody(o.body)
	if resp != nil {
		return resp
	}
	sel, resp := parseSelect(e, q)
	if resp != nil {
		return resp
	}
	existing := s.find(e, k)
	ifMatch := strings.TrimSpace(o.header.Get("If-Match"))
	ifNoneMatch := strings.TrimSpace(o.header.Get("If-None-Match"))
	switch {
	case ifMatch != "" && existing == nil:
		return s.notFound(e, k)
	case ifMatch != "" && ifMatch != "*":
		if etag := fmt.Sprintf("W/\"%v\"", existing["versionnumber"]); etag != ifMatch {
			return odataError(http.StatusPreconditionFailed, codeETag, "The version of the existing record doesn't match the RowVersion property provided.")
		}
	case ifNoneMatch == "*" && existing != nil:
		return odataError(http.StatusPreconditionFailed, codeDuplicateKey, "A record with matching key values already exists.")
	}
	var rec record
	status := http.StatusOK
	if existing == nil {
		payload = copyRecord(payload)
		if k.id != "" {
			payload[e.idAttr] = k.id
		} else {
			payload[k.attr] = k.value
		}
		rec, resp = s.create(e, payload, o.refs)
		if resp != nil {
			return resp
		}
		status = http.StatusCreated
	} else {
		rec, resp = s.update(e, existing, payload, o.refs)
		if resp != nil {
			return resp
		}
	}
	// QUIRK: an upsert by alternate key answers the key form, not the GUID:
	// OData-EntityId: .../incidents(emailcrm_key='k1'). See "Use an
	// alternate key" in the Dataverse Web API documentation.
	loc := s.entityURL(e, rec[e.idAttr].(string))
	if k.id == "" {
		lit := url.PathEscape("'" + strings.ReplaceAll(k.value, "'", "''") + "'")
		loc = s.URL() + apiPrefix + e.set + "(" + k.attr + "=" + strings.ReplaceAll(lit, "%27", "'") + ")"
	}
	if wantsRepresentation(o.header) {
		out := s.present(e, rec, sel, includeAnnotations(o.header))
		out["@odata.context"] = s.URL() + apiPrefix + "$metadata#" + e.set + "/$entity"
		return jsonResponse(status, out).set("OData-EntityId", loc)
	}
	return (&response{status: http.StatusNoContent}).set("OData-EntityId", loc).set("OData-Version", "4.0")
}

// update applies payload to a copy of old and stores it. s.mu is held.
func (s *Server) update(e *entity, old record, payload map[string]any, refs map[string]string) (record, *response) {
	if e.logical == "incident" {
		if st, _ := toInt(old["statecode"]); st != 0 {
			for k := range payload {
				if k != "statecode" && k != "statuscode" && !strings.HasPrefix(k, "@") {
					return nil, odataError(http.StatusBadRequest, codeInvalidArg, "This case has already been resolved or cancelled. Reactivate the case (statecode 0, statuscode 1), and then try again.")
				}
			}
		}
	}
	rec := copyRecord(old)
	delete(payload, e.idAttr)
	children, resp := s.apply(e, rec, payload, refs)
	if resp != nil {
		return nil, resp
	}
	if len(children) > 0 {
		return nil, odataError(http.StatusBadRequest, codeOData, "Deep insert is only supported on create.")
	}
	if resp := s.checkState(e, old, rec, payload); resp != nil {
		return nil, resp
	}
	s.derive(e, rec)
	if resp := s.checkRecord(e, rec); resp != nil {
		return nil, resp
	}
	if _, ok := e.attrs["modifiedon"]; ok {
		rec["modifiedon"] = s.now()
	}
	n, _ := toInt(rec["versionnumber"])
	rec["versionnumber"] = n + 1
	s.put(e, rec)
	return rec, nil
}

func (s *Server) handleQuery(e *entity, q url.Values, scope func(record) bool) *response {
	for k := range q {
		switch k {
		case "$select", "$filter", "$top", "$orderby":
		default:
			return odataError(http.StatusBadRequest, codeOData, "The query parameter '"+k+"' is not supported by dynamicstest.")
		}
	}
	sel, resp := parseSelect(e, q)
	if resp != nil {
		return resp
	}
	var pred func(record) bool
	if f := q.Get("$filter"); f != "" {
		var err error
		pred, err = compileFilter(e, f)
		if err != nil {
			return odataError(http.StatusBadRequest, codeOData, err.Error())
		}
	}
	top := -1
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return odataError(http.StatusBadRequest, codeOData, "Invalid value '"+t+"' for $top query option found.")
		}
		top = n
	}
	var recs []record
	for _, id := range s.order[e.set] {
		r := s.data[e.set][id]
		if (scope == nil || scope(r)) && (pred == nil || pred(r)) {
			recs = append(recs, r)
		}
	}
	if ob := q.Get("$orderby"); ob != "" {
		less, resp := compileOrderBy(e, ob)
		if resp != nil {
			return resp
		}
		sort.SliceStable(recs, func(i, j int) bool { return less(recs[i], recs[j]) })
	}
	if top >= 0 && len(recs) > top {
		recs = recs[:top]
	}
	value := make([]any, 0, len(recs))
	for _, r := range recs {
		value = append(value, s.present(e, r, sel, false))
	}
	ctx := s.URL() + apiPrefix + "$metadata#" + e.set
	if len(sel) > 0 {
		ctx += "(" + strings.Join(sel, ",") + ")"
	}
	return jsonResponse(http.StatusOK, map[string]any{"@odata.context": ctx, "value": value})
}

func compileOrderBy(e *entity, ob string) (func(a, b record) bool, *response) {
	type term struct {
		col  string
		desc bool
	}
	var terms []term
	for _, part := range strings.Split(ob, ",") {
		f := strings.Fields(part)
		if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "asc" && f[1] != "desc") {
			return nil, odataError(http.StatusBadRequest, codeOData, "Syntax error in $orderby '"+ob+"'.")
		}
		if _, ok := e.column(f[0]); !ok {
			return nil, odataError(http.StatusBadRequest, codeOData, "Could not find a property named '"+f[0]+"' on type 'Microsoft.Dynamics.CRM."+e.logical+"'.")
		}
		terms = append(terms, term{col: f[0], desc: len(f) == 2 && f[1] == "desc"})
	}
	return func(a, b record) bool {
		for _, t := range terms {
			c := compareValues(a[t.col], b[t.col])
			if c != 0 {
				return (c < 0) != t.desc
			}
		}
		return false
	}, nil
}

// compareValues orders stored values; nil sorts first, strings
// case-insensitively.
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if fa, ok := toFloat(a); ok {
		if fb, ok := toFloat(b); ok {
			switch {
			case fa < fb:
				return -1
			case fa > fb:
				return 1
			}
			return 0
		}
	}
	if ba, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			switch {
			case ba == bb:
				return 0
			case !ba:
				return -1
			}
			return 1
		}
	}
	return strings.Compare(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b)))
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func (s *Server) closeIncident(o *op) *response {
	payload, resp := decodeBody(o.body)
	if resp != nil {
		return resp
	}
	res, ok := payload["IncidentResolution"].(map[string]any)
	if !ok {
		return odataError(http.StatusBadRequest, codeInvalidArg, "CloseIncident requires the parameter 'IncidentResolution'.")
	}
	status := 5
	if v, ok := payload["Status"]; ok {
		n, ok := toInt(v)
		if !ok {
			return typeError(v, "Edm.Int32")
		}
		if n != -1 {
			status = n
		}
	} else {
		return odataError(http.StatusBadRequest, codeInvalidArg, "CloseIncident requires the parameter 'Status'.")
	}
	inc := s.schema["incidents"]
	valid := false
	for _, x := range inc.states[1] {
		valid = valid || x == status
	}
	if !valid {
		return odataError(http.StatusBadRequest, codeInvalidArg, fmt.Sprintf("%d is not a valid status code for state code incident.statecode 1.", status))
	}
	res = copyRecord(res)
	delete(res, "@odata.type")
	if _, ok := res["incidentid@odata.bind"]; !ok {
		return odataError(http.StatusBadRequest, codeInvalidArg, "The IncidentResolution must have incidentid@odata.bind.")
	}
	re := s.schema["incidentresolutions"]
	rec, resp := s.create(re, res, o.refs)
	if resp != nil {
		return resp
	}
	incID := rec["_incidentid_value"].(string)
	old := s.data["incidents"][incID]
	if st, _ := toInt(old["statecode"]); st != 0 {
		return odataError(http.StatusBadRequest, codeInvalidArg, "This case has already been resolved or cancelled. Reactivate the case, and then try again.")
	}
	closed := copyRecord(rec)
	closed["statecode"], closed["statuscode"] = 1, 2
	s.put(re, closed)
	upd := copyRecord(old)
	upd["statecode"], upd["statuscode"] = 1, status
	upd["modifiedon"] = s.now()
	n, _ := toInt(upd["versionnumber"])
	upd["versionnumber"] = n + 1
	s.put(inc, upd)
	return &response{status: http.StatusNoContent}
}

// addToQueue runs the bound action POST queues(id)/Microsoft.Dynamics.CRM.AddToQueue
// with {"Target":{"@odata.type":"Microsoft.Dynamics.CRM.incident","incidentid":"<guid>"}}.
// An item already in a queue moves to this one, as in Dataverse.
func (s *Server) addToQueue(qe *entity, k recKey, o *op) *response {
	q, resp := s.lookup(qe, k)
	if resp != nil {
		return resp
	}
	payload, resp := decodeBody(o.body)
	if resp != nil {
		return resp
	}
	target, _ := payload["Target"].(map[string]any)
	typ, _ := target["@odata.type"].(string)
	te := s.entityByLogical(strings.TrimPrefix(typ, "Microsoft.Dynamics.CRM."))
	if te == nil || (te.logical != "incident" && te.logical != "email") {
		return odataError(http.StatusBadRequest, codeInvalidArg, "AddToQueue requires a Target with @odata.type Microsoft.Dynamics.CRM.incident or Microsoft.Dynamics.CRM.email.")
	}
	id, _ := target[te.idAttr].(string)
	if !guidRE.MatchString(id) {
		return odataError(http.StatusBadRequest, codeInvalidArg, "AddToQueue requires the Target's "+te.idAttr+".")
	}
	id = strings.ToLower(id)
	if s.data[te.set][id] == nil {
		return odataError(http.StatusNotFound, codeNotExist, te.logical+" With Id = "+id+" Does Not Exist")
	}
	queueID := q[qe.idAttr].(string)
	ie := s.schema["queueitems"]
	for _, qid := range s.order[ie.set] {
		item := s.data[ie.set][qid]
		if item["_objectid_value"] == id {
			moved := copyRecord(item)
			moved["_queueid_value"] = queueID
			moved["modifiedon"] = s.now()
			n, _ := toInt(moved["versionnumber"])
			moved["versionnumber"] = n + 1
			s.put(ie, moved)
			return jsonResponse(http.StatusOK, map[string]any{
				"@odata.context": s.URL() + apiPrefix + "$metadata#Microsoft.Dynamics.CRM.AddToQueueResponse", "QueueItemId": qid,
			})
		}
	}
	item, resp := s.create(ie, map[string]any{
		"queueid@odata.bind":                     "/queues(" + queueID + ")",
		"objectid_" + te.logical + "@odata.bind": "/" + te.set + "(" + id + ")",
	}, nil)
	if resp != nil {
		return resp
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"@odata.context": s.URL() + apiPrefix + "$metadata#Microsoft.Dynamics.CRM.AddToQueueResponse", "QueueItemId": item[ie.idAttr],
	})
}
