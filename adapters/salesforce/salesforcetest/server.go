// Package salesforcetest provides an in-process fake of the Salesforce REST
// API, for tests of code that talks to Salesforce.
//
// The fake follows the request and response shapes Salesforce documents, on
// the small part of the API it implements: the OAuth 2.0 token endpoint
// (client credentials and JWT bearer flows), sObject rows (create, read,
// update, delete, upsert by external ID), SOQL queries, the Composite and
// sObject Collections resources, and ContentVersion uploads (JSON and
// multipart). It enforces the rules that matter to a client: string lengths,
// required fields, restricted picklists, references that must exist, unique
// external IDs, SOQL string-literal escaping, composite limits, token expiry
// and the daily API request limit.
//
// # Not implemented
//
// Query paging (every query answers done: true), relationship queries
// (Contact.Account.Name), aggregate functions other than COUNT(), date
// literals such as TODAY, triggers, assignment rules (the Sforce-Auto-Assign
// header is only recorded, as the pseudo field "_AutoAssign" of a Case,
// readable through [Server.Record]), sharing and field-level security.
//
// # Users
//
// New creates one User, the integration user "integration@salesforcetest.invalid",
// who runs the requests authorized by client-credentials tokens and owns the
// records they create. JWT bearer tokens run as the User named by the
// assertion's sub.
package salesforcetest

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value of each field selects its default.
type Options struct {
	// APIVersion is the version used in the URLs the fake returns
	// (attributes.url, Location). Default "v62.0". Requests are accepted
	// under any version.
	APIVersion string

	// ClientID and ClientSecret are the connected app's consumer key and
	// secret. A client-credentials request is accepted when both match. If
	// ClientID is empty, any client id and secret are accepted.
	ClientID, ClientSecret string

	// JWTPublicKey, when set, enables the JWT bearer flow: an assertion
	// signed with RS256 by the matching private key is accepted when iss is
	// ClientID, sub is the Username of an active User, aud is the server URL,
	// https://login.salesforce.com or https://test.salesforce.com, and exp is
	// in the future but at most 3 minutes away.
	JWTPublicKey *rsa.PublicKey

	// TokenTTL is the lifetime of an access token. Default 2 hours.
	TokenTTL time.Duration

	// DailyLimit is the number of API requests allowed before the server
	// answers 403 REQUEST_LIMIT_EXCEEDED. Default 100000.
	DailyLimit int

	// MaxJSONBlob is the largest blob (decoded bytes) accepted base64-encoded
	// in a JSON body. Default 37.5 MiB, as Salesforce documents. JSON bodies
	// larger than the base64 encoding of that (plus 64 KiB) are refused with
	// 400 JSON_PARSER_ERROR. Multipart bodies may be up to 2 GiB.
	MaxJSONBlob int

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// A Call is one request the server received.
type Call struct {
	Method, Path, RawQuery string
	Body                   []byte
	Status                 int
}

const (
	integrationUsername = "integration@salesforcetest.invalid"
	maxMultipartBody    = 2 << 30
	timeLayout          = "2006-01-02T15:04:05.000-0700"
)

// Server is a fake Salesforce org served over HTTP. Its methods may be
// called concurrently with requests.
type Server struct {
	ts   *httptest.Server
	opts Options

	mu          sync.Mutex
	schema      map[string]*object
	db          *database
	tokens      map[string]token
	calls       int
	log         []Call
	failN       int
	failStatus  int
	validations map[string][]func(map[string]any) (string, string, bool)
	seq         int
	caseSeq     int
	customSeq   int
	orgID       string
	userID      string
}

type token struct {
	userID  string
	expires time.Time
}

// New starts a server. A nil opts selects the defaults. The caller must call
// Close.
func New(opts *Options) *Server {
	s := &Server{
		schema:      builtinSchema(),
		db:          newDatabase(),
		tokens:      map[string]token{},
		validations: map[string][]func(map[string]any) (string, string, bool){},
		caseSeq:     1000,
	}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.APIVersion == "" {
		s.opts.APIVersion = "v62.0"
	}
	if s.opts.TokenTTL <= 0 {
		s.opts.TokenTTL = 2 * time.Hour
	}
	if s.opts.DailyLimit <= 0 {
		s.opts.DailyLimit = 100000
	}
	if s.opts.MaxJSONBlob <= 0 {
		s.opts.MaxJSONBlob = 37*1024*1024 + 512*1024
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	s.orgID = makeID("00D", 1)
	s.userID = s.insert("User", map[string]any{
		"Username":  integrationUsername,
		"Email":     integrationUsername,
		"FirstName": "Integration",
		"LastName":  "User",
	})
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL returns the instance URL, which is also the instance_url of tokens.
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// Calls returns the number of API requests counted against the daily limit.
// Token requests, requests refused for authentication, requests failed by
// FailNext and requests over the limit are not counted; a composite request
// counts as one.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// ResetCalls sets the count of API requests back to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = 0
}

// Log returns every request received so far, in order.
func (s *Server) Log() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.log))
	for i, c := range s.log {
		c.Body = bytes.Clone(c.Body)
		out[i] = c
	}
	return out
}

// FailNext makes the next n API requests (after authentication) answer
// status with a JSON error body.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// ExpireTokens invalidates every access token issued so far.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// IssueToken returns a valid access token for the integration user without
// going through the token endpoint.
func (s *Server) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newToken(s.userID)
}

// Record returns a copy of a stored record, with the field values as the API
// returns them, except that blobs (ContentVersion.VersionData) are []byte.
// Pseudo fields such as "_AutoAssign" are included.
func (s *Server) Record(sobject, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.schema[strings.ToLower(sobject)]
	nid, ok := normID(id)
	if o == nil || !ok {
		return nil, false
	}
	rec := s.db.get(o.Name, nid)
	if rec == nil {
		return nil, false
	}
	return s.export(o, rec), true
}

// Records returns copies of all records of an object, in creation order.
func (s *Server) Records(sobject string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.schema[strings.ToLower(sobject)]
	if o == nil {
		return nil
	}
	var out []map[string]any
	for _, rec := range s.db.all(o.Name) {
		out = append(out, s.export(o, rec))
	}
	return out
}

// Insert stores a record without the checks the API applies (required
// fields, lengths, references, validation rules) and returns its Id. Derived
// fields (Name, CaseNumber, IsClosed, timestamps) and defaults are filled in.
// It panics on an unknown object or field, or a value of the wrong type.
func (s *Server) Insert(sobject string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insert(sobject, fields)
}

func (s *Server) insert(sobject string, fields map[string]any) string {
	o := s.schema[strings.ToLower(sobject)]
	if o == nil {
		panic(fmt.Sprintf("salesforcetest: Insert: unknown sObject %q", sobject))
	}
	vals := map[string]any{}
	for k, v := range fields {
		f := o.field(k)
		if f == nil {
			panic(fmt.Sprintf("salesforcetest: Insert: no field %q on %s", k, o.Name))
		}
		if f.Type == typeBase64 {
			if b, ok := v.([]byte); ok {
				vals[f.Name] = bytes.Clone(b)
				continue
			}
		}
		if t, ok := v.(time.Time); ok && f.Type == typeDateTime {
			vals[f.Name] = t.UTC()
			continue
		}
		cv, e := s.convert(o, f, jsonValue(v))
		if e != nil {
			panic(fmt.Sprintf("salesforcetest: Insert: %s", e.Message))
		}
		if id, ok := cv.(string); ok && (f.Type == typeRef || f.Type == typeID) {
			if nid, ok := normID(id); ok {
				cv = nid
			}
		}
		vals[f.Name] = cv
	}
	rec := s.newRecord(o, vals, s.userID)
	s.db.put(o.Name, rec)
	return rec["Id"].(string)
}

// jsonValue turns a Go value into what encoding/json would decode it to with
// UseNumber, so that Insert shares the API's conversions.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if d.Decode(&out) != nil {
		return v
	}
	return out
}

// AddValidation installs a validation rule on sobject, run on every create
// and update through the API with the record as it would be stored (field
// names as in the schema). When f returns ok == false the write fails with
// FIELD_CUSTOM_VALIDATION_EXCEPTION, msg as the message and field (if not
// empty) in fields.
func (s *Server) AddValidation(sobject string, f func(rec map[string]any) (field, msg string, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.schema[strings.ToLower(sobject)]
	if o == nil {
		panic(fmt.Sprintf("salesforcetest: AddValidation: unknown sObject %q", sobject))
	}
	s.validations[o.Name] = append(s.validations[o.Name], f)
}

// AddField adds a text field of maxLen characters to sobject, creating the
// object (as a custom object with its own key prefix) if it does not exist.
// An external ID field is also unique (case-insensitive).
func (s *Server) AddField(sobject, name string, maxLen int, externalID bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.schema[strings.ToLower(sobject)]
	if o == nil {
		s.customSeq++
		o = &object{Name: sobject, Prefix: fmt.Sprintf("a%02d", s.customSeq%100), fields: map[string]*field{}}
		o.add(&field{Name: "Id", Type: typeID, ReadOnly: true})
		o.add(&field{Name: "Name", Type: typeString, MaxLen: 80})
		o.add(&field{Name: "OwnerId", Type: typeRef, RefTo: []string{"User", "Group"}})
		o.add(&field{Name: "IsDeleted", Type: typeBool, ReadOnly: true, Default: false})
		o.add(&field{Name: "CreatedDate", Type: typeDateTime, ReadOnly: true})
		o.add(&field{Name: "CreatedById", Type: typeRef, RefTo: []string{"User"}, ReadOnly: true})
		o.add(&field{Name: "LastModifiedDate", Type: typeDateTime, ReadOnly: true})
		o.add(&field{Name: "LastModifiedById", Type: typeRef, RefTo: []string{"User"}, ReadOnly: true})
		o.add(&field{Name: "SystemModstamp", Type: typeDateTime, ReadOnly: true})
		s.schema[strings.ToLower(sobject)] = o
	}
	o.add(&field{Name: name, Type: typeString, MaxLen: maxLen, ExternalID: externalID, Unique: externalID})
}

// ---- storage ----

type record = map[string]any

type table struct {
	ids  []string
	recs map[string]record
}

type database struct {
	tables map[string]*table
}

func newDatabase() *database { return &database{tables: map[string]*table{}} }

func (d *database) table(obj string) *table {
	t := d.tables[obj]
	if t == nil {
		t = &table{recs: map[string]record{}}
		d.tables[obj] = t
	}
	return t
}

func (d *database) get(obj, id string) record {
	if t := d.tables[obj]; t != nil {
		return t.recs[id]
	}
	return nil
}

func (d *database) put(obj string, rec record) {
	t := d.table(obj)
	id := rec["Id"].(string)
	if _, ok := t.recs[id]; !ok {
		t.ids = append(t.ids, id)
	}
	t.recs[id] = rec
}

func (d *database) del(obj, id string) {
	t := d.tables[obj]
	if t == nil {
		return
	}
	delete(t.recs, id)
	for i, x := range t.ids {
		if x == id {
			t.ids = append(t.ids[:i:i], t.ids[i+1:]...)
			break
		}
	}
}

func (d *database) all(obj string) []record {
	t := d.tables[obj]
	if t == nil {
		return nil
	}
	out := make([]record, 0, len(t.ids))
	for _, id := range t.ids {
		out = append(out, t.recs[id])
	}
	return out
}

// clone copies the database for a rollback. Field values are never mutated
// in place, so records are copied shallowly.
func (d *database) clone() *database {
	c := newDatabase()
	for name, t := range d.tables {
		nt := &table{ids: append([]string(nil), t.ids...), recs: make(map[string]record, len(t.recs))}
		for id, r := range t.recs {
			nr := make(record, len(r))
			for k, v := range r {
				nr[k] = v
			}
			nt.recs[id] = nr
		}
		c.tables[name] = nt
	}
	return c
}

// objectOf returns the object whose key prefix id has.
func (s *Server) objectOf(id string) *object {
	for _, o := range s.schema {
		if strings.HasPrefix(id, o.Prefix) {
			return o
		}
	}
	return nil
}

// export converts a stored record to API values, keyed by field name.
func (s *Server) export(o *object, rec record) map[string]any {
	out := map[string]any{}
	for k, v := range rec {
		if strings.HasPrefix(k, "_") {
			out[k] = v
			continue
		}
		f := o.field(k)
		if f != nil && f.Type == typeBase64 {
			if b, ok := v.([]byte); ok {
				out[k] = bytes.Clone(b)
				continue
			}
		}
		out[k] = s.apiValue(o, f, rec, v)
	}
	return out
}

// apiValue is the JSON value of a stored field value.
func (s *Server) apiValue(o *object, f *field, rec record, v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(timeLayout)
	case []byte:
		return s.recordURL(o.Name, rec["Id"].(string)) + "/" + f.Name
	}
	return v
}

func (s *Server) recordURL(obj, id string) string {
	return "/services/data/" + s.opts.APIVersion + "/sobjects/" + obj + "/" + id
}

// ---- HTTP ----

// apiError is one element of Salesforce's JSON error array.
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

// response is a handler's answer, shared by HTTP and composite subrequests.
type response struct {
	status int
	header http.Header
	body   any    // marshalled as JSON unless raw is set
	raw    []byte // binary body
}

func errResp(status int, errs ...apiError) *response {
	return &response{status: status, body: errs}
}

func errOne(status int, code, msg string, fields ...string) *response {
	return errResp(status, apiError{Message: msg, ErrorCode: code, Fields: fields})
}

func jsonResp(status int, body any) *response { return &response{status: status, body: body} }

var notFound = apiError{ErrorCode: "NOT_FOUND", Message: "The requested resource does not exist"}

// request is an API request, from HTTP or from a composite subrequest.
type request struct {
	method      string
	segs        []string // path segments after /services/data/vNN.N/, unescaped
	query       url.Values
	header      http.Header
	contentType string
	body        []byte
	userID      string
	sub         bool // a composite subrequest
	allOrNone   *bool
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	limit := int64(s.maxJSONBody())
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "multipart/") {
		limit = maxMultipartBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	tooLarge := err == nil && int64(len(body)) > limit
	if tooLarge {
		_, _ = io.Copy(io.Discard, r.Body)
	}

	s.mu.Lock()
	idx := len(s.log)
	s.log = append(s.log, Call{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: body})
	var resp *response
	switch {
	case err != nil:
		resp = errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", "could not read the request body")
	case r.URL.Path == "/services/oauth2/token":
		resp = s.handleToken(r, body)
	case strings.HasPrefix(r.URL.Path, "/services/data/"):
		resp = s.handleAPI(r, body, tooLarge)
	default:
		resp = errResp(http.StatusNotFound, notFound)
	}
	s.log[idx].Status = resp.status
	s.mu.Unlock()

	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if resp.raw != nil {
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/octet-stream")
		}
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.raw)
		return
	}
	if resp.body == nil || resp.status == http.StatusNoContent {
		w.WriteHeader(resp.status)
		return
	}
	b, _ := json.Marshal(resp.body)
	h.Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(resp.status)
	_, _ = w.Write(b)
}

func (s *Server) maxJSONBody() int {
	return (s.opts.MaxJSONBlob+2)/3*4 + 64<<10
}

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]$`)

func (s *Server) handleAPI(r *http.Request, body []byte, tooLarge bool) (resp *response) {
	defer func() {
		if resp.header == nil {
			resp.header = http.Header{}
		}
		resp.header.Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", s.calls, s.opts.DailyLimit))
	}()
	userID, ok := s.authorize(r.Header.Get("Authorization"))
	if !ok {
		return errOne(http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
	}
	if s.failN > 0 {
		s.failN--
		return failure(s.failStatus)
	}
	if s.calls >= s.opts.DailyLimit {
		return errOne(http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", fmt.Sprintf("TotalRequests Limit exceeded. Limit: %d", s.opts.DailyLimit))
	}
	s.calls++
	if tooLarge {
		return errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", fmt.Sprintf("Exceeded max size limit of %d bytes for a JSON request body", s.maxJSONBody()))
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok || len(segs) < 3 || !versionRE.MatchString(segs[2]) {
		return errResp(http.StatusNotFound, notFound)
	}
	return s.route(&request{
		method:      r.Method,
		segs:        segs[3:],
		query:       r.URL.Query(),
		header:      r.Header,
		contentType: r.Header.Get("Content-Type"),
		body:        body,
		userID:      userID,
	})
}

// splitPath splits an escaped path after its leading "/services/" and
// unescapes each segment, so that an external ID value may contain "/".
func splitPath(escaped string) ([]string, bool) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		out = append(out, u)
	}
	// parts[0] == "services", parts[1] == "data"
	if len(out) < 2 || out[0] != "services" || out[1] != "data" {
		return nil, false
	}
	return out, true
}

// failure is the answer FailNext injects.
func failure(status int) *response {
	code, msg := "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support"
	switch status {
	case http.StatusServiceUnavailable:
		code, msg = "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again later."
	case http.StatusTooManyRequests, http.StatusForbidden:
		code, msg = "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
	case http.StatusUnauthorized:
		code, msg = "INVALID_SESSION_ID", "Session expired or invalid"
	case http.StatusNotFound:
		code, msg = notFound.ErrorCode, notFound.Message
	case http.StatusBadRequest:
		code, msg = "INVALID_INPUT", "Injected failure"
	case http.StatusConflict:
		code, msg = "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
	}
	return errOne(status, code, msg)
}

// route dispatches an authenticated, counted request. s.mu is held.
func (s *Server) route(rq *request) *response {
	segs := rq.segs
	if len(segs) == 0 {
		return errResp(http.StatusNotFound, notFound)
	}
	switch segs[0] {
	case "sobjects":
		return s.routeSObjects(rq)
	case "query", "queryAll":
		if len(segs) != 1 {
			return errResp(http.StatusNotFound, notFound)
		}
		if rq.method != http.MethodGet {
			return methodNotAllowed(rq.method, "GET")
		}
		return s.handleQuery(rq.query.Get("q"))
	case "composite":
		if len(segs) == 1 {
			if rq.sub {
				return errOne(http.StatusBadRequest, "INVALID_API_INPUT", "A composite request cannot contain another composite request")
			}
			if rq.method != http.MethodPost {
				return methodNotAllowed(rq.method, "POST")
			}
			return s.handleComposite(rq)
		}
		if len(segs) == 2 && segs[1] == "sobjects" {
			if rq.method != http.MethodPost {
				return methodNotAllowed(rq.method, "POST")
			}
			return s.handleCollections(rq)
		}
	case "limits":
		if len(segs) == 1 && rq.method == http.MethodGet {
			return jsonResp(http.StatusOK, map[string]any{
				"DailyApiRequests": map[string]int{"Max": s.opts.DailyLimit, "Remaining": max(0, s.opts.DailyLimit-s.calls)},
			})
		}
	}
	return errResp(http.StatusNotFound, notFound)
}

func methodNotAllowed(got, allowed string) *response {
	return errOne(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", got, allowed))
}

func (s *Server) routeSObjects(rq *request) *response {
	segs := rq.segs
	if len(segs) < 2 {
		return errResp(http.StatusNotFound, notFound)
	}
	o := s.schema[strings.ToLower(segs[1])]
	if o == nil {
		return errResp(http.StatusNotFound, notFound)
	}
	switch len(segs) {
	case 2:
		if rq.method != http.MethodPost {
			return methodNotAllowed(rq.method, "HEAD,GET,POST")
		}
		if strings.HasPrefix(strings.ToLower(rq.contentType), "multipart/") {
			return s.handleMultipartCreate(o, rq)
		}
		in, r := decodeObject(rq.body)
		if r != nil {
			return r
		}
		id, errs := s.create(o, in, rq)
		if errs != nil {
			return errResp(http.StatusBadRequest, errs...)
		}
		return &response{
			status: http.StatusCreated,
			header: http.Header{"Location": {s.recordURL(o.Name, id)}},
			body:   map[string]any{"id": id, "success": true, "errors": []any{}},
		}
	case 3:
		if segs[2] == "describe" && rq.method == http.MethodGet {
			return jsonResp(http.StatusOK, describe(o))
		}
		id, ok := normID(segs[2])
		if !ok || s.db.get(o.Name, id) == nil {
			return errResp(http.StatusNotFound, notFound)
		}
		switch rq.method {
		case http.MethodGet:
			return s.getRecord(o, id, rq.query.Get("fields"))
		case http.MethodPatch:
			in, r := decodeObject(rq.body)
			if r != nil {
				return r
			}
			if errs := s.update(o, id, in, rq); errs != nil {
				return errResp(http.StatusBadRequest, errs...)
			}
			return &response{status: http.StatusNoContent}
		case http.MethodDelete:
			s.deleteCascade(o, id)
			return &response{status: http.StatusNoContent}
		}
		return methodNotAllowed(rq.method, "HEAD,GET,PATCH,DELETE")
	case 4:
		f := o.field(segs[2])
		if f != nil && (f.ExternalID || f.Type == typeID) {
			return s.byExternalID(o, f, segs[3], rq)
		}
		if id, ok := normID(segs[2]); ok {
			if bf := o.field(segs[3]); bf != nil && bf.Type == typeBase64 {
				rec := s.db.get(o.Name, id)
				if rec == nil {
					return errResp(http.StatusNotFound, notFound)
				}
				if rq.method != http.MethodGet {
					return methodNotAllowed(rq.method, "GET")
				}
				b, _ := rec[bf.Name].([]byte)
				return &response{status: http.StatusOK, raw: bytes.Clone(b), header: http.Header{"Content-Type": {"application/octetstream"}}}
			}
		}
		if f != nil {
			return errOne(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+f.Name)
		}
	}
	return errResp(http.StatusNotFound, notFound)
}

func describe(o *object) map[string]any {
	var fs []map[string]any
	for _, name := range o.order {
		f := o.field(name)
		d := map[string]any{
			"name":       f.Name,
			"type":       f.Type.String(),
			"length":     f.MaxLen,
			"nillable":   !f.Required && f.Type != typeBool && f.Type != typeID,
			"createable": !f.ReadOnly,
			"updateable": !f.ReadOnly && !f.NoUpdate,
			"externalId": f.ExternalID,
			"unique":     f.Unique,
			"filterable": !f.NoFilter,
		}
		if f.Type == typeRef {
			d["referenceTo"] = f.RefTo
		}
		if f.Type == typePicklist {
			var vals []map[string]any
			for _, v := range f.Values {
				vals = append(vals, map[string]any{"value": v, "label": v, "active": true})
			}
			d["picklistValues"] = vals
			d["restrictedPicklist"] = f.Restricted
		}
		fs = append(fs, d)
	}
	return map[string]any{"name": o.Name, "keyPrefix": o.Prefix, "fields": fs}
}

// decodeObject decodes a JSON object body, keeping numbers as json.Number.
func decodeObject(body []byte) (map[string]any, *response) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var in map[string]any
	if err := d.Decode(&in); err != nil || in == nil {
		msg := "The request body is not a JSON object"
		if err != nil {
			msg = "Unexpected character in JSON: " + err.Error()
		}
		return nil, errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", msg)
	}
	if d.More() {
		return nil, errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected content after the JSON object")
	}
	return in, nil
}

func (s *Server) getRecord(o *object, id, fieldList string) *response {
	rec := s.db.get(o.Name, id)
	names := o.order
	if fieldList != "" {
		names = nil
		for _, n := range strings.Split(fieldList, ",") {
			n = strings.TrimSpace(n)
			f := o.field(n)
			if f == nil {
				return errOne(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", n, o.Name))
			}
			names = append(names, f.Name)
		}
	}
	return jsonResp(http.StatusOK, s.recordJSON(o, rec, names))
}

// recordJSON renders rec with attributes and the named fields, in order.
func (s *Server) recordJSON(o *object, rec record, names []string) orderedObject {
	out := orderedObject{{"attributes", map[string]string{"type": o.Name, "url": s.recordURL(o.Name, rec["Id"].(string))}}}
	for _, n := range names {
		f := o.field(n)
		out = append(out, kv{f.Name, s.apiValue(o, f, rec, rec[f.Name])})
	}
	return out
}

type kv struct {
	k string
	v any
}

// orderedObject marshals as a JSON object keeping its key order, so records
// start with "attributes" as Salesforce's do.
type orderedObject []kv

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ---- writes ----

// create validates and stores a new record. It returns the errors to
// report, or nil.
func (s *Server) create(o *object, in map[string]any, rq *request) (string, []apiError) {
	vals, errs := s.convertInput(o, in, true)
	if errs != nil {
		return "", errs
	}
	return s.createValues(o, vals, rq)
}

func (s *Server) createValues(o *object, vals map[string]any, rq *request) (string, []apiError) {
	rec := s.newRecord(o, vals, rq.userID)
	if errs := s.check(o, rec, nil, vals); errs != nil {
		return "", errs
	}
	if o.Name == "Case" && rq.header != nil {
		if v, ok := headerValue(rq.header, "Sforce-Auto-Assign"); ok {
			rec["_AutoAssign"] = v
		}
	}
	if o.Name == "ContentVersion" {
		if errs := s.linkContent(rec, rq.userID); errs != nil {
			return "", errs
		}
	}
	s.db.put(o.Name, rec)
	return rec["Id"].(string), nil
}

func headerValue(h http.Header, name string) (string, bool) {
	v, ok := h[http.CanonicalHeaderKey(name)]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// newRecord builds a record from converted values, applying defaults and
// derived fields.
func (s *Server) newRecord(o *object, vals map[string]any, userID string) record {
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	s.seq++
	rec := record{"Id": makeID(o.Prefix, s.seq)}
	for _, n := range o.order {
		f := o.field(n)
		if f.Default != nil {
			rec[f.Name] = f.Default
		}
	}
	for k, v := range vals {
		rec[k] = v
	}
	if o.field("OwnerId") != nil && rec["OwnerId"] == nil {
		rec["OwnerId"] = userID
	}
	rec["CreatedDate"] = now
	rec["CreatedById"] = userID
	if o.Name == "Case" {
		rec["CaseNumber"] = fmt.Sprintf("%08d", s.caseSeq)
		s.caseSeq++
	}
	s.derive(o, rec, nil, now, userID)
	return rec
}

// derive fills in computed fields after a write.
func (s *Server) derive(o *object, rec, old record, now time.Time, userID string) {
	rec["LastModifiedDate"] = now
	rec["SystemModstamp"] = now
	rec["LastModifiedById"] = userID
	switch o.Name {
	case "Contact", "User":
		first, _ := rec["FirstName"].(string)
		last, _ := rec["LastName"].(string)
		rec["Name"] = nilIfEmpty(strings.TrimSpace(first + " " + last))
	case "Case":
		closed := rec["Status"] == "Closed"
		wasClosed := old != nil && old["IsClosed"] == true
		rec["IsClosed"] = closed
		switch {
		case closed && !wasClosed:
			rec["ClosedDate"] = now
		case !closed:
			rec["ClosedDate"] = nil
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// update validates and applies a PATCH.
func (s *Server) update(o *object, id string, in map[string]any, rq *request) []apiError {
	if v, ok := in["Id"]; ok {
		if sv, _ := v.(string); sv != "" {
			if nid, _ := normID(sv); nid != id {
				return []apiError{{ErrorCode: "INVALID_ID_FIELD", Message: "The Id field should not be specified in the sobject data."}}
			}
		}
		delete(in, "Id")
	}
	vals, errs := s.convertInput(o, in, false)
	if errs != nil {
		return errs
	}
	return s.updateValues(o, id, vals, rq)
}

func (s *Server) updateValues(o *object, id string, vals map[string]any, rq *request) []apiError {
	old := s.db.get(o.Name, id)
	rec := make(record, len(old))
	for k, v := range old {
		rec[k] = v
	}
	for k, v := range vals {
		rec[k] = v
	}
	if errs := s.check(o, rec, old, vals); errs != nil {
		return errs
	}
	if o.Name == "Case" && rq.header != nil {
		if v, ok := headerValue(rq.header, "Sforce-Auto-Assign"); ok {
			rec["_AutoAssign"] = v
		}
	}
	s.derive(o, rec, old, s.opts.Now().UTC().Truncate(time.Millisecond), rq.userID)
	s.db.put(o.Name, rec)
	return nil
}

// convertInput converts a decoded JSON object to stored values. Field names
// are matched case-insensitively and stored with the schema's spelling.
func (s *Server) convertInput(o *object, in map[string]any, create bool) (map[string]any, []apiError) {
	vals := map[string]any{}
	var errs, roErrs []apiError
	var roFields []string
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "attributes" {
			continue
		}
		f := o.field(k)
		if f == nil {
			errs = append(errs, apiError{ErrorCode: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on sobject of type %s", k, o.Name)})
			continue
		}
		if f.ReadOnly || (!create && f.NoUpdate) {
			roFields = append(roFields, f.Name)
			continue
		}
		v, e := s.convert(o, f, in[k])
		if e != nil {
			errs = append(errs, *e)
			continue
		}
		vals[f.Name] = v
	}
	if len(roFields) > 0 {
		roErrs = append(roErrs, apiError{
			ErrorCode: "INVALID_FIELD_FOR_INSERT_UPDATE",
			Message:   fmt.Sprintf("Unable to create/update fields: %s. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", strings.Join(roFields, ", ")),
			Fields:    roFields,
		})
	}
	if errs != nil {
		return nil, errs
	}
	if roErrs != nil {
		return nil, roErrs
	}
	return vals, nil
}

// convert checks the JSON type of one value and converts it for storage.
func (s *Server) convert(o *object, f *field, v any) (any, *apiError) {
	if v == nil {
		if f.Type == typeBool {
			return false, nil
		}
		return nil, nil
	}
	bad := func() (any, *apiError) {
		return nil, &apiError{ErrorCode: "JSON_PARSER_ERROR", Message: fmt.Sprintf("Cannot deserialize instance of %s from %s value for field %s", f.Type, jsonKind(v), f.Name)}
	}
	switch f.Type {
	case typeString, typePicklist:
		switch x := v.(type) {
		case string:
			return nilIfEmpty(x), nil
		case json.Number:
			return x.String(), nil
		case bool:
			return fmt.Sprint(x), nil
		}
		return bad()
	case typeID, typeRef:
		x, ok := v.(string)
		if !ok {
			return bad()
		}
		return nilIfEmpty(x), nil
	case typeBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return bad()
	case typeDateTime:
		x, ok := v.(string)
		if !ok {
			return bad()
		}
		if x == "" {
			return nil, nil
		}
		t, ok := parseDateTime(x)
		if !ok {
			return nil, &apiError{ErrorCode: "JSON_PARSER_ERROR", Message: fmt.Sprintf("Cannot deserialize instance of datetime from VALUE_STRING value %s or request may be missing a required field", x)}
		}
		return t, nil
	case typeNumber:
		x, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		n, err := x.Float64()
		if err != nil {
			return bad()
		}
		return n, nil
	case typeBase64:
		x, ok := v.(string)
		if !ok {
			return bad()
		}
		b, e := s.decodeBlob(f, x)
		if e != nil {
			return nil, e
		}
		return b, nil
	}
	return bad()
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "VALUE_STRING"
	case json.Number:
		return "VALUE_NUMBER"
	case bool:
		return "VALUE_TRUE_OR_FALSE"
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	}
	return "VALUE"
}

var dateTimeLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000Z0700",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.000",
	"2006-01-02",
}

func parseDateTime(s string) (time.Time, bool) {
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// check applies the save-time rules to rec, the record as it would be
// stored; changed holds the fields the request set. old is nil on create.
func (s *Server) check(o *object, rec, old record, changed map[string]any) []apiError {
	// Required fields.
	var missing []string
	for _, n := range o.order {
		f := o.field(n)
		if f.Required && rec[f.Name] == nil {
			missing = append(missing, f.Name)
		}
	}
	if missing != nil {
		return []apiError{{ErrorCode: "REQUIRED_FIELD_MISSING", Message: fmt.Sprintf("Required fields are missing: [%s]", strings.Join(missing, ", ")), Fields: missing}}
	}
	var errs []apiError
	names := make([]string, 0, len(changed))
	for k := range changed {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return fieldIndex(o, names[i]) < fieldIndex(o, names[j]) })
	// Lengths and picklists.
	for _, n := range names {
		f := o.field(n)
		sv, ok := rec[f.Name].(string)
		if !ok {
			continue
		}
		if (f.Type == typeString || f.Type == typePicklist) && f.MaxLen > 0 && sfLen(sv) > f.MaxLen {
			errs = append(errs, apiError{ErrorCode: "STRING_TOO_LONG", Message: fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Name, abbreviate(sv), f.MaxLen), Fields: []string{f.Name}})
			continue
		}
		if f.Type == typePicklist && f.Restricted && !contains(f.Values, sv) {
			errs = append(errs, apiError{ErrorCode: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", Message: fmt.Sprintf("%s: bad value for restricted picklist field: %s", f.Name, sv), Fields: []string{f.Name}})
		}
	}
	if errs != nil {
		return errs
	}
	// References.
	for _, n := range names {
		f := o.field(n)
		if f.Type != typeRef || rec[f.Name] == nil {
			continue
		}
		raw := rec[f.Name].(string)
		id, ok := normID(raw)
		if !ok {
			return []apiError{{ErrorCode: "MALFORMED_ID", Message: fmt.Sprintf("%s: id value of incorrect type: %s", f.Name, raw), Fields: []string{f.Name}}}
		}
		target := s.objectOf(id)
		if target != nil && len(f.RefTo) > 0 && !contains(f.RefTo, target.Name) {
			return []apiError{{ErrorCode: "FIELD_INTEGRITY_EXCEPTION", Message: fmt.Sprintf("%s: id value of incorrect type: %s", f.Name, raw), Fields: []string{f.Name}}}
		}
		if target == nil || s.db.get(target.Name, id) == nil {
			return []apiError{{ErrorCode: "INVALID_CROSS_REFERENCE_KEY", Message: "invalid cross reference id", Fields: []string{f.Name}}}
		}
		rec[f.Name] = id
	}
	// Unique fields.
	for _, n := range names {
		f := o.field(n)
		if !f.Unique || rec[f.Name] == nil {
			continue
		}
		v := rec[f.Name].(string)
		for _, other := range s.db.all(o.Name) {
			if other["Id"] == rec["Id"] {
				continue
			}
			if ov, ok := other[f.Name].(string); ok && strings.EqualFold(ov, v) {
				return []apiError{{ErrorCode: "DUPLICATE_VALUE", Message: fmt.Sprintf("duplicate value found: %s duplicates value on record with id: %s", f.Name, other["Id"]), Fields: []string{}}}
			}
		}
	}
	// Validation rules.
	for _, rule := range s.validations[o.Name] {
		view := s.export(o, rec)
		if fld, msg, ok := rule(view); !ok {
			e := apiError{ErrorCode: "FIELD_CUSTOM_VALIDATION_EXCEPTION", Message: msg, Fields: []string{}}
			if fld != "" {
				e.Fields = []string{fld}
			}
			return []apiError{e}
		}
	}
	return nil
}

func fieldIndex(o *object, name string) int {
	for i, n := range o.order {
		if n == name {
			return i
		}
	}
	return len(o.order)
}

func abbreviate(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// byExternalID serves sobjects/{Object}/{Field}/{value}.
func (s *Server) byExternalID(o *object, f *field, value string, rq *request) *response {
	var matches []record
	if f.Type == typeID {
		if id, ok := normID(value); ok {
			if rec := s.db.get(o.Name, id); rec != nil {
				matches = append(matches, rec)
			}
		}
	} else {
		for _, rec := range s.db.all(o.Name) {
			if v, ok := rec[f.Name].(string); ok && strings.EqualFold(v, value) {
				matches = append(matches, rec)
			}
		}
	}
	if len(matches) > 1 {
		var urls []string
		for _, m := range matches {
			urls = append(urls, s.recordURL(o.Name, m["Id"].(string)))
		}
		return jsonResp(http.StatusMultipleChoices, urls)
	}
	switch rq.method {
	case http.MethodGet:
		if len(matches) == 0 {
			return errResp(http.StatusNotFound, notFound)
		}
		return s.getRecord(o, matches[0]["Id"].(string), rq.query.Get("fields"))
	case http.MethodDelete:
		if len(matches) == 0 {
			return errResp(http.StatusNotFound, notFound)
		}
		s.deleteCascade(o, matches[0]["Id"].(string))
		return &response{status: http.StatusNoContent}
	case http.MethodPatch, http.MethodPost:
	default:
		return methodNotAllowed(rq.method, "GET,PATCH,DELETE")
	}
	in, r := decodeObject(rq.body)
	if r != nil {
		return r
	}
	for k, v := range in {
		if strings.EqualFold(k, f.Name) {
			if sv, _ := v.(string); !strings.EqualFold(sv, value) {
				return errOne(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("The value of %s in the request body does not match the value in the URL", f.Name), f.Name)
			}
			delete(in, k)
		}
	}
	if len(matches) == 0 {
		if rq.query.Get("updateOnly") == "true" || f.Type == typeID {
			return errResp(http.StatusNotFound, notFound)
		}
		vals, errs := s.convertInput(o, in, true)
		if errs == nil {
			vals[f.Name] = value
			var id string
			id, errs = s.createValues(o, vals, rq)
			if errs == nil {
				return &response{
					status: http.StatusCreated,
					header: http.Header{"Location": {s.recordURL(o.Name, id)}},
					body:   map[string]any{"id": id, "success": true, "errors": []any{}, "created": true},
				}
			}
		}
		return errResp(http.StatusBadRequest, errs...)
	}
	id := matches[0]["Id"].(string)
	if errs := s.update(o, id, in, rq); errs != nil {
		return errResp(http.StatusBadRequest, errs...)
	}
	return jsonResp(http.StatusOK, map[string]any{"id": id, "success": true, "errors": []any{}, "created": false})
}

// deleteCascade deletes a record and the records that cannot exist without it.
func (s *Server) deleteCascade(o *object, id string) {
	s.db.del(o.Name, id)
	for _, co := range s.schema {
		for _, n := range co.order {
			f := co.field(n)
			if !f.Cascade {
				continue
			}
			for _, rec := range s.db.all(co.Name) {
				if rec[f.Name] == id {
					s.deleteCascade(co, rec["Id"].(string))
				}
			}
		}
	}
}
