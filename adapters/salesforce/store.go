package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Salesforce field limits the driver fits values into (UTF-16 code units,
// as Salesforce counts).
const (
	maxEmailBody   = 131072
	maxHeaders     = 32000
	maxEMSubject   = 3000
	maxAddressList = 4000
	maxCaseSubject = 255
	maxDescription = 32000
	maxComment     = 4000
	maxMessageID   = 255
	keyHexLen      = 64 // hex of SHA-256, fits EmailcrmKey__c Text(80)
)

// Store is the Salesforce driver: a driver.CaseStore, driver.Directory and
// driver.DirectoryWriter (and driver.Aser) over the REST API. It is safe
// for concurrent use. Programs use it through *mailcase.Store (OpenStore);
// the driver itself is reachable with mailcase.Store.As(**Store) for
// Limits and Calls.
type Store struct {
	cfg *Config
	c   *client
	log *slog.Logger

	cacheMu sync.Mutex
	lcache  *crmlookup.Cache      // directory lookups (LookupCacheTTL)
	owners  map[string]ownerEntry // "queue:Name" / "user:Name" -> Id
	people  map[string]contactRef // contact Id -> address and placeholder flag

	closeOnce sync.Once
}

// ownerEntry is a cached ResolveOwners lookup: the Id, or "" for a name
// nothing had at the time (a miss, kept for Config.OwnerMissTTL).
type ownerEntry struct {
	id string
	at time.Time
}

type contactRef struct {
	email       string
	placeholder bool
	at          time.Time
}

var (
	_ driver.CaseStore       = (*Store)(nil)
	_ driver.Directory       = (*Store)(nil)
	_ driver.DirectoryWriter = (*Store)(nil)
	_ driver.Aser            = (*Store)(nil)
)

// NewDriver returns the driver for cfg. It checks the configuration and
// builds the token source but makes no request: the first token is fetched
// by the first call.
func NewDriver(cfg *Config) (*Store, error) {
	o, inst, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	src, err := tokenSource(o, o.HTTPClient)
	if err != nil {
		return nil, err
	}
	c := &client{
		hc: o.HTTPClient, base: inst, apiVersion: o.APIVersion,
		log: o.Logger, slowAt: o.SlowDownAt, slowMax: o.SlowDownMax,
		tokens: crmhttp.NewTokens(src),
	}
	return &Store{cfg: o, c: c, log: o.Logger, lcache: crmlookup.NewCache(o.LookupCacheTTL, nil),
		owners: map[string]ownerEntry{}, people: map[string]contactRef{}}, nil
}

// OpenStore returns a *mailcase.Store over the driver for cfg; opts
// configures the portable store (nil means defaults).
func OpenStore(cfg *Config, opts *mailcase.StoreOptions) (*mailcase.Store, error) {
	d, err := NewDriver(cfg)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, "OpenStore", err)
	}
	return mailcase.NewStore(d, opts), nil
}

// Limits returns the org's API usage from the last Sforce-Limit-Info
// header: requests used and allowed in the rolling 24 hours (0, 0 before
// the first answer).
func (s *Store) Limits() (used, max int) {
	return int(s.c.lim.used.Load()), int(s.c.lim.max.Load())
}

// Calls returns the number of HTTP requests this driver sent to the REST
// API (token requests excluded; a composite request counts once).
func (s *Store) Calls() int { return int(s.c.calls.Load()) }

// As exposes *Store (the driver) and *http.Client.
func (s *Store) As(i any) bool {
	switch p := i.(type) {
	case **Store:
		*p = s
		return true
	case **http.Client:
		*p = s.c.hc
		return true
	}
	return false
}

// ErrorAs exposes *APIError and *AuthError.
func (s *Store) ErrorAs(err error, i any) bool {
	switch p := i.(type) {
	case **APIError:
		return errors.As(err, p)
	case **AuthError:
		return errors.As(err, p)
	}
	return false
}

// Close releases idle connections. It makes no request.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.c.hc.CloseIdleConnections() })
	return nil
}

// ErrorCode implements driver.CaseStore.
func (s *Store) ErrorCode(err error) driver.ErrorCode { return errorCode(err) }

func errorCode(err error) driver.ErrorCode {
	return crmhttp.ErrorCode(err, func(err error) (driver.ErrorCode, bool) {
		var ae *APIError
		if errors.As(err, &ae) {
			return apiCode(ae), true
		}
		var au *AuthError
		if errors.As(err, &au) {
			return crmhttp.AuthCode(au.Status, au.Err), true
		}
		return 0, false
	})
}

// apiCode maps Salesforce error codes, then HTTP statuses.
func apiCode(ae *APIError) driver.ErrorCode {
	for _, fe := range ae.Errors {
		switch fe.ErrorCode {
		case "NOT_FOUND", "ENTITY_IS_DELETED":
			return driver.NotFound
		case "DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID":
			return driver.AlreadyExists
		case "REQUEST_LIMIT_EXCEEDED", "TXN_SECURITY_METERING_ERROR", "STORAGE_LIMIT_EXCEEDED":
			return driver.ResourceExhausted
		case "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT":
			return driver.Unavailable
		case "INVALID_SESSION_ID", "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "API_DISABLED_FOR_ORG":
			return driver.PermissionDenied
		case "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INVALID_FIELD",
			"INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "MALFORMED_QUERY",
			"JSON_PARSER_ERROR", "INVALID_TYPE", "FIELD_INTEGRITY_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY",
			"MALFORMED_ID", "INVALID_ID_FIELD", "INVALID_EMAIL_ADDRESS", "INVALID_QUERY_FILTER_OPERATOR",
			"INVALID_INPUT", "INVALID_API_INPUT", "NUMBER_OUTSIDE_VALID_RANGE", "INVALID_TYPE_ON_FIELD_IN_RECORD":
			return driver.InvalidArgument
		case "PROCESSING_HALTED":
			continue
		}
	}
	switch {
	case ae.Status == http.StatusNotFound:
		return driver.NotFound
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
		return driver.PermissionDenied
	case ae.Status == http.StatusTooManyRequests:
		return driver.ResourceExhausted
	case ae.Status == http.StatusConflict:
		return driver.Unavailable
	case ae.Status >= 500:
		return driver.Unavailable
	case ae.Status == http.StatusBadRequest:
		return driver.InvalidArgument
	}
	return driver.Unknown
}

// ---- records ----

// hashKey returns the EmailcrmKey__c value of an idempotency key: the
// first 64 hex digits of its SHA-256.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:keyHexLen]
}

// emailData is the JSON kept in EmailMessage.EmailcrmData__c and
// Task.EmailcrmData__c: what the standard fields cannot hold.
type emailData struct {
	Key          string   `json:"k"`            // base64 of the exact idempotency key
	Fingerprint  string   `json:"fp,omitempty"` // Email.Fingerprint
	Mailbox      string   `json:"mb,omitempty"`
	Participants []string `json:"p,omitempty"` // addresses joining the case (none with NoParticipants)
	Auto         bool     `json:"auto,omitempty"`
	Summary      bool     `json:"sum,omitempty"`
	Truncated    []string `json:"trunc,omitempty"` // fields cut to fit, kept whole as files
	// Read back by the Lister: what the standard fields cannot hold.
	Subject    string       `json:"subj,omitempty"` // the whole subject when Subject (3,000) cuts it
	MessageID  string       `json:"mid,omitempty"`  // the whole Message-ID when MessageIdentifier (255) cuts it
	ReplyText  string       `json:"rt,omitempty"`
	ReplyFile  bool         `json:"rtf,omitempty"` // ReplyText is the file "email-reply.txt"
	Outbound   bool         `json:"out,omitempty"`
	To         []addr       `json:"to,omitempty"`
	Cc         []addr       `json:"cc,omitempty"`
	InReplyTo  []string     `json:"irt,omitempty"`
	References []string     `json:"refs,omitempty"`
	Atts       []attachMeta `json:"att,omitempty"`
	Problems   []string     `json:"probs,omitempty"`
}

type addr struct {
	N string `json:"n,omitempty"`
	E string `json:"e"`
}

// attachMeta describes one attachment; its data is the ContentVersion
// whose Description is the mail's file tag with F.
type attachMeta struct {
	Name   string `json:"n,omitempty"`
	Type   string `json:"t,omitempty"`
	CID    string `json:"cid,omitempty"`
	Inline bool   `json:"in,omitempty"`
	Size   int64  `json:"sz,omitempty"`
	F      string `json:"f,omitempty"` // file tag suffix; "" when no file was kept
}

func addrs(as []driver.Address) []addr {
	var out []addr
	for _, a := range as {
		out = append(out, addr{N: a.Name, E: a.Email})
	}
	return out
}

// fileTag is the ContentVersion.Description prefix of the files of the mail
// with key hash h.
func fileTag(h string) string { return "emailcrm:" + h[:24] + ":" }

// caseData is the JSON kept in Case.EmailcrmData__c.
type caseData struct {
	Subject  string `json:"subj,omitempty"` // the whole subject when Subject (255) cuts it
	Category string `json:"cat,omitempty"`
	Linked   string `json:"linked,omitempty"`
	Contact  string `json:"contact,omitempty"` // the contact's address at creation (not a placeholder's)
}

// sfLen is the length of s as Salesforce counts it (UTF-16 code units).
func sfLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// cut returns s cut to at most n UTF-16 code units, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s // bytes >= UTF-16 units
	}
	units := 0
	for i, r := range s {
		u := utf16.RuneLen(r)
		if units+u > n {
			return s[:i]
		}
		units += u
	}
	return s
}

func recStr(rec map[string]any, k string) string {
	v, _ := rec[k].(string)
	return v
}

func recTime(rec map[string]any, k string) time.Time {
	s := recStr(rec, k)
	if s == "" {
		return time.Time{}
	}
	for _, l := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05.000Z0700", time.RFC3339Nano} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// queryResult is the answer of GET query.
type queryResult struct {
	TotalSize      int              `json:"totalSize"`
	Done           bool             `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

// query runs q and follows nextRecordsUrl. A next page outside this API
// version, or one already read (a server paging in a loop), is an error:
// never a silently shortened answer, never an endless loop.
func (s *Store) query(ctx context.Context, q string) ([]map[string]any, error) {
	var res queryResult
	if err := s.c.doJSON(ctx, &request{method: http.MethodGet, path: "query", query: url.Values{"q": {q}}}, &res); err != nil {
		return nil, err
	}
	return s.morePages(ctx, res)
}

// morePages returns the records of res and of the pages after it.
func (s *Store) morePages(ctx context.Context, res queryResult) ([]map[string]any, error) {
	recs := res.Records
	seen := map[string]bool{}
	for !res.Done && res.NextRecordsURL != "" {
		prefix := "/services/data/" + s.c.apiVersion + "/"
		p, ok := strings.CutPrefix(res.NextRecordsURL, prefix)
		if !ok || !strings.HasPrefix(p, "query/") {
			return nil, errInternal("query: unexpected nextRecordsUrl " + strconv.Quote(res.NextRecordsURL))
		}
		if seen[p] {
			return nil, errInternal("query: nextRecordsUrl " + strconv.Quote(res.NextRecordsURL) + " repeated")
		}
		seen[p] = true
		res = queryResult{}
		if err := s.c.doJSON(ctx, &request{method: http.MethodGet, path: p}, &res); err != nil {
			return nil, err
		}
		recs = append(recs, res.Records...)
	}
	return recs, nil
}

// querySub is a composite subrequest running q.
func (s *Store) querySub(ref, q string) subrequest {
	return subrequest{Method: http.MethodGet, URL: s.c.url("query?q=" + url.QueryEscape(q)), ReferenceID: ref}
}

// allRecords decodes the records of a query subresponse and reads the
// pages after it: Salesforce answers a query in batches of up to 2,000
// records, fewer when the records carry long text fields (bodies), and a
// composite subrequest answers only the first.
func (s *Store) allRecords(ctx context.Context, r *subresponse) ([]map[string]any, error) {
	var res queryResult
	if err := json.Unmarshal(r.Body, &res); err != nil {
		return nil, errInternal("composite " + r.ReferenceID + ": decoding the answer: " + err.Error())
	}
	return s.morePages(ctx, res)
}

// records decodes the records of a query subresponse (its first page:
// for existence checks and single rows).
func records(r *subresponse) []map[string]any {
	var res queryResult
	_ = json.Unmarshal(r.Body, &res)
	return res.Records
}

// createdID decodes the id of a POST subresponse.
func createdID(r *subresponse) string {
	var res struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.Body, &res)
	return res.ID
}

const caseFields = "Id, CaseNumber, Subject, Status, Priority, Origin, ContactId, AccountId, ParentId, OwnerId, " +
	"CreatedDate, LastModifiedDate, ClosedDate, IsClosed, EmailcrmStatus__c, EmailcrmQueue__c, EmailcrmOwner__c, EmailcrmData__c"

func (s *Store) caseSelect() string {
	f := caseFields
	if s.cfg.CategoryField != "" {
		f += ", " + s.cfg.CategoryField
	}
	return "SELECT " + f + " FROM Case"
}

// caseSubs are the subrequests reading case id (by Id or reference).
func (s *Store) caseSubs(idLiteral string) []subrequest {
	return []subrequest{
		s.querySub("case", s.caseSelect()+" WHERE Id = "+idLiteral),
		s.querySub("mails", "SELECT Id, CreatedDate, EmailcrmData__c FROM EmailMessage WHERE ParentId = "+idLiteral+" ORDER BY CreatedDate ASC, Id ASC"),
	}
}

// validCaseID reports whether id can be a Case Id; others are NotFound
// without a request.
func validCaseID(id driver.CaseID) bool { return looksLikeID(string(id), "500") }

// readCase reads case id with its mails' participants in one composite
// call.
func (s *Store) readCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	if !validCaseID(id) {
		return driver.Case{}, errNotFound("case " + string(id))
	}
	subs := s.caseSubs(QuoteSOQL(string(id)))
	res, err := s.c.composite(ctx, false, subs)
	if err != nil {
		return driver.Case{}, err
	}
	return s.caseFromResults(ctx, res["case"], res["mails"])
}

// caseFromResults builds a Case from the "case" and "mails" subresponses.
func (s *Store) caseFromResults(ctx context.Context, cr, mr *subresponse) (driver.Case, error) {
	if !cr.ok() {
		return driver.Case{}, cr.err("read case")
	}
	if !mr.ok() {
		return driver.Case{}, mr.err("read case mails")
	}
	recs := records(cr)
	if len(recs) == 0 {
		return driver.Case{}, errNotFound("case")
	}
	mails, err := s.allRecords(ctx, mr)
	if err != nil {
		return driver.Case{}, err
	}
	return s.caseOut(ctx, recs[0], mails)
}

// caseOut converts a Case record and its EmailMessage records.
func (s *Store) caseOut(ctx context.Context, rec map[string]any, mails []map[string]any) (driver.Case, error) {
	var d caseData
	_ = json.Unmarshal([]byte(recStr(rec, "EmailcrmData__c")), &d)
	c := driver.Case{
		ID:        driver.CaseID(recStr(rec, "Id")),
		Number:    recStr(rec, "CaseNumber"),
		Subject:   recStr(rec, "Subject"),
		Queue:     recStr(rec, "EmailcrmQueue__c"),
		Owner:     recStr(rec, "EmailcrmOwner__c"),
		Origin:    recStr(rec, "Origin"),
		Category:  d.Category,
		ContactID: recStr(rec, "ContactId"),
		AccountID: recStr(rec, "AccountId"),
		ParentID:  driver.CaseID(recStr(rec, "ParentId")),
		LinkedID:  driver.CaseID(d.Linked),
		CreatedAt: recTime(rec, "CreatedDate"),
		UpdatedAt: recTime(rec, "LastModifiedDate"),
		ClosedAt:  recTime(rec, "ClosedDate"),
	}
	if d.Subject != "" {
		c.Subject = d.Subject
	}
	if s.cfg.CategoryField != "" {
		if v := recStr(rec, s.cfg.CategoryField); v != "" {
			c.Category = v
		}
	}
	isClosed, _ := rec["IsClosed"].(bool)
	c.Status = s.statusOut(recStr(rec, "Status"), recStr(rec, "EmailcrmStatus__c"), isClosed)
	c.Priority = s.priorityOut(recStr(rec, "Priority"))
	if c.Status.IsClosed() && c.ClosedAt.IsZero() {
		c.ClosedAt = c.UpdatedAt
	}
	if !c.Status.IsClosed() {
		c.ClosedAt = time.Time{}
	}
	parts := map[string]bool{}
	if d.Contact != "" {
		parts[d.Contact] = true
	}
	for _, m := range mails {
		var ed emailData
		_ = json.Unmarshal([]byte(recStr(m, "EmailcrmData__c")), &ed)
		for _, p := range ed.Participants {
			parts[p] = true
		}
		if t := recTime(m, "CreatedDate"); t.After(c.UpdatedAt) {
			c.UpdatedAt = t
		}
	}
	for p := range parts {
		c.Participants = append(c.Participants, p)
	}
	slices.Sort(c.Participants)
	return c, nil
}

func (s *Store) statusOut(sf, exact string, isClosed bool) driver.CaseStatus {
	if exact != "" && s.cfg.StatusMap[driver.CaseStatus(exact)] == sf {
		return driver.CaseStatus(exact)
	}
	for _, st := range []driver.CaseStatus{driver.StatusNew, driver.StatusOpen, driver.StatusInProgress, driver.StatusClosed, driver.StatusCancelled} {
		if s.cfg.StatusMap[st] == sf {
			return st
		}
	}
	if isClosed {
		return driver.StatusClosed
	}
	return driver.StatusOpen
}

func (s *Store) priorityOut(sf string) driver.Priority {
	for _, p := range []driver.Priority{driver.PriorityNormal, driver.PriorityLow, driver.PriorityHigh, driver.PriorityUrgent} {
		if s.cfg.PriorityMap[p] == sf {
			return p
		}
	}
	return driver.PriorityNormal
}

// ---- CaseStore ----

// GetCase implements driver.CaseStore: one composite call.
func (s *Store) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	return s.readCase(ctx, id)
}

// FindCaseByNumber implements driver.CaseStore (SOQL on CaseNumber).
func (s *Store) FindCaseByNumber(ctx context.Context, number string) (driver.Case, error) {
	recs, err := s.query(ctx, "SELECT Id FROM Case WHERE CaseNumber = "+QuoteSOQL(number)+" LIMIT 1")
	if err != nil {
		return driver.Case{}, err
	}
	if len(recs) == 0 {
		return driver.Case{}, errNotFound("case number " + number)
	}
	return s.readCase(ctx, driver.CaseID(recStr(recs[0], "Id")))
}

// LookupThread implements driver.CaseStore: one SOQL query on
// EmailMessage.MessageIdentifier (the Message-IDs in angle brackets), then
// the case. Per Message-ID the earliest filing wins; among ids the last
// known wins.
func (s *Store) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	var vals []string
	for _, id := range ids {
		if id != "" {
			vals = append(vals, cut("<"+id+">", maxMessageID))
		}
	}
	if len(vals) == 0 {
		return driver.Case{}, errNotFound("thread")
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	recs, err := s.query(ctx, "SELECT Id, ParentId, MessageIdentifier, CreatedDate FROM EmailMessage WHERE MessageIdentifier IN "+
		soqlIn(vals)+" ORDER BY CreatedDate ASC, Id ASC")
	if err != nil {
		return driver.Case{}, err
	}
	first := map[string]string{} // message identifier -> case of its first filing
	for _, r := range recs {
		mid, parent := recStr(r, "MessageIdentifier"), recStr(r, "ParentId")
		if parent == "" || !validCaseID(driver.CaseID(parent)) {
			continue
		}
		if _, ok := first[mid]; !ok {
			first[mid] = parent
		}
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if p, ok := first[cut("<"+ids[i]+">", maxMessageID)]; ok {
			return s.readCase(ctx, driver.CaseID(p))
		}
	}
	return driver.Case{}, errNotFound("thread")
}

// CaseURL implements driver.CaseStore: the Lightning record URL, after
// checking that the case exists.
func (s *Store) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	if !validCaseID(id) {
		return "", errNotFound("case " + string(id))
	}
	tok, err := s.c.token()
	if err != nil {
		return "", err
	}
	if err := s.c.doJSON(ctx, &request{method: http.MethodGet, path: "sobjects/Case/" + url.PathEscape(string(id)),
		query: url.Values{"fields": {"Id"}}}, nil); err != nil {
		return "", err
	}
	base := s.c.instanceURL(tok)
	return base.Scheme + "://" + base.Host + "/lightning/r/Case/" + url.PathEscape(string(id)) + "/view", nil
}

// contactInfo returns the address and placeholder flag of contact id, from
// the memo of contacts this driver read or created (10 minutes), else from
// Salesforce.
func (s *Store) contactInfo(ctx context.Context, id string) (contactRef, error) {
	s.cacheMu.Lock()
	ref, ok := s.people[id]
	s.cacheMu.Unlock()
	if ok && time.Since(ref.at) < 10*time.Minute {
		return ref, nil
	}
	recs, err := s.query(ctx, "SELECT Id, Email, EmailcrmFlags__c FROM Contact WHERE Id = "+QuoteSOQL(id))
	if err != nil {
		return contactRef{}, err
	}
	if len(recs) == 0 {
		return contactRef{}, nil
	}
	ref = contactRef{email: strings.ToLower(recStr(recs[0], "Email")), placeholder: hasFlag(recStr(recs[0], "EmailcrmFlags__c"), "placeholder"), at: time.Now()}
	s.rememberContact(id, ref)
	return ref, nil
}

func (s *Store) rememberContact(id string, ref contactRef) {
	ref.at = time.Now()
	s.cacheMu.Lock()
	s.people[id] = ref
	s.cacheMu.Unlock()
}

// participants returns the addresses e adds to its case.
func participants(e *driver.Email) []string {
	if e.NoParticipants {
		return nil
	}
	var out []string
	add := func(a driver.Address) {
		if a.Email != "" {
			out = append(out, a.Email)
		}
	}
	add(e.From)
	for _, a := range e.To {
		add(a)
	}
	for _, a := range e.Cc {
		add(a)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CreateCase implements driver.CaseStore. A new case is one composite call
// (allOrNone): the Task query guarding the key space, the Case (with the
// key's hash in EmailcrmKey__c, unique), the EmailMessage (its own key),
// the description note, up to 20 ContentVersions and the read-back of the
// case. Attachments beyond that go in further composite calls, large ones
// as multipart uploads. A key already filed makes Salesforce refuse the
// Case or EmailMessage with DUPLICATE_VALUE, which rolls everything back:
// the driver then returns the case filed under the key.
func (s *Store) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	e := req.First
	hash := hashKey(e.IdempotencyKey)
	var contact contactRef
	if req.ContactID != "" {
		var err error
		if contact, err = s.contactInfo(ctx, req.ContactID); err != nil {
			return driver.Case{}, err
		}
	}
	fields := map[string]any{}
	for k, v := range s.cfg.CaseFields {
		fields[k] = v
	}
	subj := req.Subject
	d := caseData{Category: req.Category, Linked: string(req.LinkedID)}
	if sfLen(subj) > maxCaseSubject {
		d.Subject = subj
	}
	if req.ContactID != "" && !contact.placeholder && contact.email != "" {
		d.Contact = contact.email
	}
	dj, _ := json.Marshal(d)
	origin := req.Origin
	if origin == "" {
		origin = s.cfg.Origin
	}
	fields["Subject"] = cut(subj, maxCaseSubject)
	fields["Status"] = s.cfg.StatusMap[req.Status]
	fields["EmailcrmStatus__c"] = string(req.Status)
	fields["Priority"] = s.cfg.PriorityMap[req.Priority]
	fields["EmailcrmKey__c"] = hash
	fields["EmailcrmData__c"] = string(dj)
	setIf(fields, "Origin", origin)
	setIf(fields, "ContactId", req.ContactID)
	setIf(fields, "AccountId", req.AccountID)
	setIf(fields, "ParentId", string(req.ParentID))
	setIf(fields, "EmailcrmQueue__c", req.Queue)
	setIf(fields, "SuppliedEmail", cut(e.From.Email, 80))
	setIf(fields, "SuppliedName", cut(e.From.Name, 80))
	if s.cfg.CategoryField != "" {
		setIf(fields, s.cfg.CategoryField, req.Category)
	}
	if !s.cfg.NoSummary && req.Description != "" {
		fields["Description"] = cut(req.Description, maxDescription)
	}
	missingQueue := false
	if s.cfg.ResolveOwners && req.Queue != "" && s.cfg.AutoAssign == "FALSE" {
		id, err := s.ownerID(ctx, "queue", req.Queue)
		if err != nil {
			return driver.Case{}, err
		}
		setIf(fields, "OwnerId", id)
		if missingQueue = id == ""; missingQueue {
			s.log.Warn("salesforce: no queue has the name the case is routed to; the case keeps the default owner", "queue", req.Queue)
		}
	}
	subs := []subrequest{
		s.querySub("task", "SELECT Id FROM Task WHERE EmailcrmKey__c = "+QuoteSOQL(hash)),
		{Method: http.MethodPost, URL: s.c.url("sobjects/Case"), ReferenceID: "newCase", Body: fields,
			HTTPHeaders: map[string]string{"Sforce-Auto-Assign": s.cfg.AutoAssign}},
	}
	em, files := s.emailMessage(e, "@{newCase.id}")
	subs = append(subs, subrequest{Method: http.MethodPost, URL: s.c.url("sobjects/EmailMessage"), ReferenceID: "newMail", Body: em})
	if !s.cfg.NoNotes && req.Description != "" {
		for i, chunk := range noteChunks("", req.Description, "-") {
			subs = append(subs, subrequest{Method: http.MethodPost, URL: s.c.url("sobjects/CaseComment"),
				ReferenceID: "note" + strconv.Itoa(i), Body: map[string]any{"ParentId": "@{newCase.id}", "CommentBody": chunk}})
		}
	}
	if missingQueue {
		subs = append(subs, subrequest{Method: http.MethodPost, URL: s.c.url("sobjects/CaseComment"), ReferenceID: "noQueue",
			Body: map[string]any{"ParentId": "@{newCase.id}", "CommentBody": "emailcrm: the case is routed to the queue " +
				strconv.Quote(req.Queue) + ", but no Salesforce queue has that name: the case keeps its default owner."}})
	}
	read := []subrequest{
		{Method: http.MethodGet, URL: s.c.url("sobjects/Case/@{newCase.id}?fields=" + url.QueryEscape(strings.ReplaceAll(s.caseFieldList(), " ", ""))), ReferenceID: "case"},
	}
	small, large := s.splitFiles(files)
	room := maxSubrequests - len(subs) - len(read)
	now := fitFiles(small, room, em)
	for i, f := range small[:now] {
		subs = append(subs, s.fileSub("file"+strconv.Itoa(i), "@{newCase.id}", f))
	}
	subs = append(subs, read...)
	res, err := s.c.composite(ctx, true, subs)
	if err != nil {
		return driver.Case{}, err
	}
	if ref, fe := firstFailure(subs, res); fe != nil {
		if errorCode(fe) == driver.AlreadyExists && (ref == "newCase" || ref == "newMail") {
			return s.existingCase(ctx, e.IdempotencyKey)
		}
		return driver.Case{}, fe
	}
	caseID := createdID(res["newCase"])
	if len(records(res["task"])) > 0 {
		// The key was filed on no case (RecordInteraction): undo.
		s.deleteQuiet(ctx, "Case", caseID)
		return driver.Case{}, errExists("idempotency key already filed on no case")
	}
	var rec map[string]any
	_ = json.Unmarshal(res["case"].Body, &rec)
	c, err := s.caseOut(ctx, rec, []map[string]any{{"EmailcrmData__c": em["EmailcrmData__c"]}})
	if err != nil {
		return driver.Case{}, err
	}
	if err := s.uploadFiles(ctx, caseID, small[now:], large); err != nil {
		return driver.Case{}, err
	}
	return c, nil
}

func (s *Store) caseFieldList() string {
	f := caseFields
	if s.cfg.CategoryField != "" {
		f += ", " + s.cfg.CategoryField
	}
	return f
}

// existingCase returns the case filed under key, or AlreadyExists when the
// key is filed on no case.
func (s *Store) existingCase(ctx context.Context, key string) (driver.Case, error) {
	p, err := s.LookupProcessed(ctx, key)
	if err != nil {
		if errorCode(err) == driver.NotFound {
			// The Case carries the key but its mail is not visible yet:
			// read it by its own key.
			recs, qerr := s.query(ctx, "SELECT Id FROM Case WHERE EmailcrmKey__c = "+QuoteSOQL(hashKey(key)))
			if qerr != nil {
				return driver.Case{}, qerr
			}
			if len(recs) > 0 {
				return s.readCase(ctx, driver.CaseID(recStr(recs[0], "Id")))
			}
		}
		return driver.Case{}, err
	}
	if p.CaseID == "" {
		return driver.Case{}, errExists("idempotency key already filed on no case")
	}
	return s.readCase(ctx, p.CaseID)
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// deleteQuiet deletes a record, logging (not returning) a failure.
func (s *Store) deleteQuiet(ctx context.Context, obj, id string) {
	if id == "" {
		return
	}
	if _, _, err := s.c.do(context.WithoutCancel(ctx), &request{method: http.MethodDelete, path: "sobjects/" + obj + "/" + url.PathEscape(id)}); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "salesforce: undoing a filing failed", slog.String("object", obj), slog.String("id", id), slog.String("error", err.Error()))
	}
}

// file is a ContentVersion to upload.
type file struct {
	name, contentType string
	data              []byte
	tag               string // ContentVersion.Description
}

// emailMessage returns the EmailMessage fields of e (ParentId parent) and
// the files to attach: its attachments and the whole bodies that did not
// fit.
func (s *Store) emailMessage(e *driver.Email, parent string) (map[string]any, []file) {
	d := emailData{
		Key: base64.StdEncoding.EncodeToString([]byte(e.IdempotencyKey)), Fingerprint: e.Fingerprint,
		Mailbox: e.Mailbox, Participants: participants(e), Auto: e.Auto, Summary: e.Summary,
	}
	var files []file
	h := hashKey(e.IdempotencyKey)
	tag := fileTag(h)
	if sfLen(e.Subject) > maxEMSubject {
		d.Subject = e.Subject
	}
	if sfLen("<"+e.MessageID+">") > maxMessageID {
		d.MessageID = e.MessageID
	}
	d.ReplyText, d.Outbound = e.ReplyText, e.Direction == driver.Outbound
	d.To, d.Cc, d.InReplyTo, d.References, d.Problems = addrs(e.To), addrs(e.Cc), e.InReplyTo, e.References, e.Problems
	if sfLen(e.ReplyText) > maxEmailBody/2 {
		d.ReplyText, d.ReplyFile = "", true
		files = append(files, file{name: "email-reply.txt", contentType: "text/plain; charset=utf-8", data: []byte(e.ReplyText), tag: tag + "r"})
	}
	m := map[string]any{
		"ParentId":       parent,
		"Incoming":       e.Direction != driver.Outbound,
		"Status":         "0",
		"EmailcrmKey__c": hashKey(e.IdempotencyKey),
	}
	if e.Direction == driver.Outbound {
		m["Status"] = "3"
	}
	setIf(m, "Subject", cut(e.Subject, maxEMSubject))
	setIf(m, "FromAddress", cut(e.From.Email, 255))
	setIf(m, "FromName", cut(e.From.Name, 1000))
	setIf(m, "ToAddress", cut(joinAddrs(e.To), maxAddressList))
	setIf(m, "CcAddress", cut(joinAddrs(e.Cc), maxAddressList))
	if e.MessageID != "" {
		m["MessageIdentifier"] = cut("<"+e.MessageID+">", maxMessageID)
	}
	if t := threadID(e); t != "" {
		m["ThreadIdentifier"] = cut("<"+t+">", 255)
	}
	if !e.Date.IsZero() {
		m["MessageDate"] = sfTime(e.Date)
	}
	m["Headers"] = cut(headerText(e), maxHeaders)
	if !s.cfg.NoTranscript {
		for _, b := range []struct{ field, body, name, ctype string }{
			{"TextBody", e.Text, "body.txt", "text/plain; charset=utf-8"},
			{"HtmlBody", e.HTML, "body.html", "text/html; charset=utf-8"},
		} {
			if b.body == "" {
				continue
			}
			if sfLen(b.body) <= maxEmailBody {
				m[b.field] = b.body
				continue
			}
			name := "email-" + b.name
			note := "\n[emailcrm: " + b.field + " truncated; the whole body is the file " + name + " on the case]"
			m[b.field] = cut(b.body, maxEmailBody-sfLen(note)) + note
			files = append(files, file{name: name, contentType: b.ctype, data: []byte(b.body), tag: tag + b.field})
			d.Truncated = append(d.Truncated, b.field)
		}
	}
	if !s.cfg.NoAttachments {
		for i, a := range e.Attachments {
			am := attachMeta{Name: a.Filename, Type: a.ContentType, CID: a.ContentID, Inline: a.Inline, Size: a.Size}
			if len(a.Data) > 0 { // QUIRK: Salesforce refuses empty ContentVersion data
				am.F = strconv.Itoa(i)
				files = append(files, file{name: a.Filename, contentType: a.ContentType, data: a.Data, tag: tag + am.F})
			}
			d.Atts = append(d.Atts, am)
		}
	}
	dj, _ := json.Marshal(d)
	if sfLen(string(dj)) > maxEmailBody {
		// Keep the field within its 131,072 characters: the problems and
		// the reference chain are the first to go (the thread root stays in
		// ThreadIdentifier, the headers in Headers).
		d.Problems, d.References = nil, nil
		dj, _ = json.Marshal(d)
	}
	m["EmailcrmData__c"] = string(dj)
	return m, files
}

func joinAddrs(as []driver.Address) string {
	var parts []string
	for _, a := range as {
		if a.Email != "" {
			parts = append(parts, a.Email)
		}
	}
	return strings.Join(parts, "; ")
}

// threadID is the thread root: the first References entry, else
// In-Reply-To, else the mail's own Message-ID.
func threadID(e *driver.Email) string {
	if len(e.References) > 0 {
		return e.References[0]
	}
	if len(e.InReplyTo) > 0 {
		return e.InReplyTo[0]
	}
	return e.MessageID
}

// headerText renders the headers kept in EmailMessage.Headers.
func headerText(e *driver.Email) string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			b.WriteString(k + ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(v) + "\r\n")
		}
	}
	angle := func(ids []string) string {
		var out []string
		for _, id := range ids {
			out = append(out, "<"+id+">")
		}
		return strings.Join(out, " ")
	}
	if e.MessageID != "" {
		line("Message-ID", "<"+e.MessageID+">")
	}
	line("In-Reply-To", angle(e.InReplyTo))
	line("References", angle(e.References))
	line("From", formatAddr(e.From))
	var to, cc []string
	for _, a := range e.To {
		to = append(to, formatAddr(a))
	}
	for _, a := range e.Cc {
		cc = append(cc, formatAddr(a))
	}
	line("To", strings.Join(to, ", "))
	line("Cc", strings.Join(cc, ", "))
	line("Subject", e.Subject)
	if !e.Date.IsZero() {
		line("Date", e.Date.Format(time.RFC1123Z))
	}
	if e.Auto {
		line("Auto-Submitted", "auto-generated")
	}
	return b.String()
}

func formatAddr(a driver.Address) string {
	if a.Name == "" {
		return "<" + a.Email + ">"
	}
	return strconv.Quote(a.Name) + " <" + a.Email + ">"
}

// maxCompositeData bounds the raw bytes (files and bodies) of one
// composite request: base64 makes them 4/3 larger, and Salesforce takes
// JSON bodies up to about 37.5 MB after encoding (the fake enforces it).
const maxCompositeData = 24 << 20

// fitFiles returns how many of small fit in one composite request with room
// subrequests left, next to the EmailMessage em.
func fitFiles(small []file, room int, em map[string]any) int {
	budget := maxCompositeData
	for _, k := range []string{"TextBody", "HtmlBody", "Headers", "EmailcrmData__c"} {
		if v, ok := em[k].(string); ok {
			budget -= len(v)
		}
	}
	n := 0
	for _, f := range small {
		if n >= room || len(f.data) > budget {
			break
		}
		budget -= len(f.data)
		n++
	}
	return n
}

// splitFiles separates files small enough for JSON base64 in a composite
// request from the ones uploaded alone as multipart.
func (s *Store) splitFiles(fs []file) (small, large []file) {
	for _, f := range fs {
		if len(f.data) > s.cfg.MaxJSONAttachment {
			large = append(large, f)
		} else {
			small = append(small, f)
		}
	}
	return small, large
}

// cvFields are the ContentVersion fields of f, linked to parent.
func cvFields(parent string, f file) map[string]any {
	name := f.name
	if name == "" {
		name = "attachment"
	}
	return map[string]any{
		"Title":                  cut(name, 255),
		"PathOnClient":           cut(name, 500),
		"FirstPublishLocationId": parent,
		"Description":            f.tag,
	}
}

func (s *Store) fileSub(ref, parent string, f file) subrequest {
	m := cvFields(parent, f)
	m["VersionData"] = base64.StdEncoding.EncodeToString(f.data)
	return subrequest{Method: http.MethodPost, URL: s.c.url("sobjects/ContentVersion"), ReferenceID: ref, Body: m}
}

// uploadFiles files the remaining attachments of a mail on case id:
// small ones in composite calls of 25, large ones one multipart request
// each. These calls are not atomic with the filing of the mail.
func (s *Store) uploadFiles(ctx context.Context, caseID string, small, large []file) error {
	for len(small) > 0 {
		n := min(len(small), maxSubrequests)
		var subs []subrequest
		budget := 0
		for i, f := range small[:n] {
			budget += len(f.data)
			if i > 0 && budget > 24<<20 {
				n = i
				break
			}
			subs = append(subs, s.fileSub("file"+strconv.Itoa(i), caseID, f))
		}
		res, err := s.c.composite(ctx, true, subs)
		if err != nil {
			return err
		}
		if _, fe := firstFailure(subs, res); fe != nil {
			return fe
		}
		small = small[len(subs):]
	}
	for _, f := range large {
		if err := s.uploadMultipart(ctx, caseID, f); err != nil {
			return err
		}
	}
	return nil
}

// uploadMultipart posts one ContentVersion as multipart/form-data (the
// documented way for files too large for base64 in JSON, up to 2 GB): an
// "entity_content" JSON part and a "VersionData" binary part.
func (s *Store) uploadMultipart(ctx context.Context, caseID string, f file) error {
	meta, _ := json.Marshal(cvFields(caseID, f))
	const boundary = "emailcrm-boundary-6f1c2d0a9b8e7f35"
	var b strings.Builder
	b.Grow(len(f.data) + len(meta) + 512)
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Disposition: form-data; name=\"entity_content\"\r\n")
	b.WriteString("Content-Type: application/json\r\n\r\n")
	b.Write(meta)
	b.WriteString("\r\n--" + boundary + "\r\n")
	name := strings.NewReplacer("\"", "_", "\r", "_", "\n", "_", "\\", "_").Replace(f.name)
	if name == "" {
		name = "attachment"
	}
	b.WriteString("Content-Disposition: form-data; name=\"VersionData\"; filename=\"" + name + "\"\r\n")
	b.WriteString("Content-Type: application/octet-stream\r\n\r\n")
	b.Write(f.data)
	b.WriteString("\r\n--" + boundary + "--\r\n")
	_, _, err := s.c.do(ctx, &request{method: http.MethodPost, path: "sobjects/ContentVersion",
		body: []byte(b.String()), contentType: "multipart/form-data; boundary=\"" + boundary + "\""})
	return err
}

// AppendEmail implements driver.CaseStore: one composite call (allOrNone)
// checking the case, guarding the key space (Task query) and filing the
// EmailMessage with its files. A key already filed on a case makes the
// EmailMessage fail with DUPLICATE_VALUE: nothing is filed, nil is
// returned. The case's participants and UpdatedAt derive from its mails.
func (s *Store) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validCaseID(id) {
		return errNotFound("case " + string(id))
	}
	hash := hashKey(e.IdempotencyKey)
	em, files := s.emailMessage(e, string(id))
	subs := []subrequest{
		{Method: http.MethodGet, URL: s.c.url("sobjects/Case/" + url.PathEscape(string(id)) + "?fields=Id"), ReferenceID: "case"},
		s.querySub("task", "SELECT Id FROM Task WHERE EmailcrmKey__c = "+QuoteSOQL(hash)),
		{Method: http.MethodPost, URL: s.c.url("sobjects/EmailMessage"), ReferenceID: "newMail", Body: em},
	}
	small, large := s.splitFiles(files)
	now := fitFiles(small, maxSubrequests-len(subs), em)
	for i, f := range small[:now] {
		subs = append(subs, s.fileSub("file"+strconv.Itoa(i), string(id), f))
	}
	res, err := s.c.composite(ctx, true, subs)
	if err != nil {
		return err
	}
	if ref, fe := firstFailure(subs, res); fe != nil {
		if ref == "case" && fe.Status == http.StatusNotFound {
			return errNotFound("case " + string(id))
		}
		if ref == "newMail" && errorCode(fe) == driver.AlreadyExists {
			return nil // the key was filed before
		}
		return fe
	}
	if len(records(res["task"])) > 0 {
		// The key was filed on no case: undo (the files go with the
		// mail's own record only when deleted too).
		s.deleteQuiet(ctx, "EmailMessage", createdID(res["newMail"]))
		for i := range small[:now] {
			s.deleteFile(ctx, createdID(res["file"+strconv.Itoa(i)]))
		}
		return nil
	}
	return s.uploadFiles(ctx, string(id), small[now:], large)
}

// deleteFile deletes the ContentDocument of ContentVersion cv.
func (s *Store) deleteFile(ctx context.Context, cv string) {
	if cv == "" {
		return
	}
	recs, err := s.query(context.WithoutCancel(ctx), "SELECT ContentDocumentId FROM ContentVersion WHERE Id = "+QuoteSOQL(cv))
	if err == nil && len(recs) > 0 {
		s.deleteQuiet(ctx, "ContentDocument", recStr(recs[0], "ContentDocumentId"))
	}
}

// noteMarker identifies a note's idempotency key in its CommentBody
// (CaseComment takes no custom fields): the hash, or "-" for a note
// without a key.
func noteMarker(key string) string {
	if key == "" {
		return "-"
	}
	return hashKey(key)[:32]
}

// noteChunks renders a note as CaseComment bodies of at most 4,000
// characters: the body, then a trailer line
// `[emailcrm-note <marker> "<author>"]` at the end of the last chunk.
func noteChunks(author, body, marker string) []string {
	text := body + noteTrailer + marker + " " + strconv.Quote(author) + "]"
	var out []string
	for sfLen(text) > maxComment {
		head := cut(text, maxComment)
		out = append(out, head)
		text = text[len(head):]
	}
	return append(out, text)
}

// AddNote implements driver.CaseStore: a CaseComment (IsPublished =
// Public; the author heads the body). A keyed note carries a marker line;
// the comments of the case are read first and a note whose marker is
// there is not added again. Config.NoNotes makes it a no-op (after checking
// the case).
func (s *Store) AddNote(ctx context.Context, id driver.CaseID, n *driver.Note) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validCaseID(id) {
		return errNotFound("case " + string(id))
	}
	marker := noteMarker(n.IdempotencyKey)
	subs := []subrequest{{Method: http.MethodGet, URL: s.c.url("sobjects/Case/" + url.PathEscape(string(id)) + "?fields=Id"), ReferenceID: "case"}}
	if n.IdempotencyKey != "" || s.cfg.NoNotes {
		subs = append(subs, s.querySub("notes", "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = "+QuoteSOQL(string(id))))
		res, err := s.c.composite(ctx, false, subs)
		if err != nil {
			return err
		}
		if !res["case"].ok() {
			if res["case"].HTTPStatusCode == http.StatusNotFound {
				return errNotFound("case " + string(id))
			}
			return res["case"].err("read case")
		}
		if s.cfg.NoNotes {
			return nil
		}
		if !res["notes"].ok() {
			return res["notes"].err("read notes")
		}
		notes, err := s.allRecords(ctx, res["notes"])
		if err != nil {
			return err
		}
		for _, r := range notes {
			if strings.Contains(recStr(r, "CommentBody"), noteTrailer+marker+" ") {
				return nil
			}
		}
		subs = subs[:0]
	}
	for i, chunk := range noteChunks(n.Author, n.Body, marker) {
		subs = append(subs, subrequest{Method: http.MethodPost, URL: s.c.url("sobjects/CaseComment"), ReferenceID: "note" + strconv.Itoa(i),
			Body: map[string]any{"ParentId": string(id), "CommentBody": chunk, "IsPublished": n.Public}})
		if len(subs) == maxSubrequests {
			break
		}
	}
	res, err := s.c.composite(ctx, true, subs)
	if err != nil {
		return err
	}
	if ref, fe := firstFailure(subs, res); fe != nil {
		if ref == "case" && fe.Status == http.StatusNotFound {
			return errNotFound("case " + string(id))
		}
		if fe.hasCode("INVALID_CROSS_REFERENCE_KEY") || fe.hasCode("FIELD_INTEGRITY_EXCEPTION") && slices.Contains(fe.Errors[0].Fields, "ParentId") {
			return errNotFound("case " + string(id))
		}
		return fe
	}
	return nil
}

// UpdateCase implements driver.CaseStore: one composite call (PATCH, then
// the read-back).
func (s *Store) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	if err := ctx.Err(); err != nil {
		return driver.Case{}, err
	}
	if !validCaseID(id) {
		return driver.Case{}, errNotFound("case " + string(id))
	}
	fields := map[string]any{}
	if u.Status != nil {
		fields["Status"] = s.cfg.StatusMap[*u.Status]
		fields["EmailcrmStatus__c"] = string(*u.Status)
	}
	if u.Priority != nil {
		fields["Priority"] = s.cfg.PriorityMap[*u.Priority]
	}
	if u.Queue != nil {
		fields["EmailcrmQueue__c"] = nullIfEmpty(*u.Queue)
		if s.cfg.ResolveOwners && *u.Queue != "" {
			oid, err := s.ownerID(ctx, "queue", *u.Queue)
			if err != nil {
				return driver.Case{}, err
			}
			if oid == "" {
				return driver.Case{}, errInvalid("no Salesforce queue is named " + strconv.Quote(*u.Queue))
			}
			fields["OwnerId"] = oid
		}
	}
	if u.Owner != nil {
		fields["EmailcrmOwner__c"] = nullIfEmpty(*u.Owner)
		if s.cfg.ResolveOwners && *u.Owner != "" {
			oid, err := s.ownerID(ctx, "user", *u.Owner)
			if err != nil {
				return driver.Case{}, err
			}
			if oid == "" {
				return driver.Case{}, errInvalid("no active Salesforce user is named " + strconv.Quote(*u.Owner))
			}
			fields["OwnerId"] = oid
		}
	}
	var subs []subrequest
	if len(fields) > 0 {
		// Sforce-Auto-Assign defaults to TRUE on updates too: an update
		// never runs the assignment rules (they decide on creation only,
		// as AutoAssign says), so an agent's case is not reassigned.
		subs = append(subs, subrequest{Method: http.MethodPatch, URL: s.c.url("sobjects/Case/" + url.PathEscape(string(id))), ReferenceID: "update", Body: fields,
			HTTPHeaders: map[string]string{"Sforce-Auto-Assign": "FALSE"}})
	}
	subs = append(subs, s.caseSubs(QuoteSOQL(string(id)))...)
	res, err := s.c.composite(ctx, true, subs)
	if err != nil {
		return driver.Case{}, err
	}
	if ref, fe := firstFailure(subs, res); fe != nil {
		if ref == "update" && fe.Status == http.StatusNotFound {
			return driver.Case{}, errNotFound("case " + string(id))
		}
		return driver.Case{}, fe
	}
	return s.caseFromResults(ctx, res["case"], res["mails"])
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ownerID resolves a queue ("queue") or user ("user") name to its Id, ""
// when nothing has that name. A name found is cached for the life of the
// driver, a miss for Config.OwnerMissTTL.
func (s *Store) ownerID(ctx context.Context, kind, name string) (string, error) {
	key := kind + ":" + name
	s.cacheMu.Lock()
	e, ok := s.owners[key]
	s.cacheMu.Unlock()
	if ok && (e.id != "" || s.cfg.Now().Sub(e.at) < s.cfg.OwnerMissTTL) {
		return e.id, nil
	}
	var id string
	q := "SELECT Id FROM Group WHERE Type = 'Queue' AND Name = " + QuoteSOQL(name) + " LIMIT 1"
	if kind == "user" {
		q = "SELECT Id FROM User WHERE IsActive = true AND (Name = " + QuoteSOQL(name) + " OR Username = " + QuoteSOQL(name) + ") LIMIT 1"
	}
	recs, err := s.query(ctx, q)
	if err != nil {
		return "", err
	}
	if len(recs) > 0 {
		id = recStr(recs[0], "Id")
	}
	if id == "" && s.cfg.OwnerMissTTL < 0 {
		return "", nil
	}
	s.cacheMu.Lock()
	s.owners[key] = ownerEntry{id: id, at: s.cfg.Now()}
	s.cacheMu.Unlock()
	return id, nil
}

// RecordInteraction implements driver.CaseStore: a completed Task of
// subtype Email on the contact (WhoId) and account (WhatId), keyed like an
// EmailMessage (EmailcrmKey__c, unique). One composite call (allOrNone);
// a key already filed as a Task fails with DUPLICATE_VALUE (a no-op); a key
// already filed on a case (an EmailMessage) undoes the Task.
func (s *Store) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := in.Email
	hash := hashKey(e.IdempotencyKey)
	d := emailData{Key: base64.StdEncoding.EncodeToString([]byte(e.IdempotencyKey)), Fingerprint: e.Fingerprint,
		Mailbox: e.Mailbox, Auto: e.Auto, Summary: e.Summary}
	dj, _ := json.Marshal(d)
	task := map[string]any{
		"Subject":         cut(firstNonEmpty(e.Subject, "Email"), 255),
		"Status":          "Completed",
		"TaskSubtype":     "Email",
		"EmailcrmKey__c":  hash,
		"EmailcrmData__c": string(dj),
	}
	if !e.Date.IsZero() {
		task["ActivityDate"] = e.Date.UTC().Format("2006-01-02")
	}
	desc := headerText(e)
	if !s.cfg.NoTranscript {
		desc += "\r\n" + e.Text
	}
	task["Description"] = cut(desc, maxDescription)
	setIf(task, "WhoId", in.ContactID)
	setIf(task, "WhatId", in.AccountID)
	subs := []subrequest{
		s.querySub("mail", "SELECT Id FROM EmailMessage WHERE EmailcrmKey__c = "+QuoteSOQL(hash)),
		{Method: http.MethodPost, URL: s.c.url("sobjects/Task"), ReferenceID: "newTask", Body: task},
	}
	res, err := s.c.composite(ctx, true, subs)
	if err != nil {
		return err
	}
	if ref, fe := firstFailure(subs, res); fe != nil {
		if ref == "newTask" && errorCode(fe) == driver.AlreadyExists {
			return nil
		}
		return fe
	}
	if len(records(res["mail"])) > 0 {
		s.deleteQuiet(ctx, "Task", createdID(res["newTask"]))
	}
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// LookupProcessed implements driver.CaseStore: one composite call of two
// queries (EmailMessage and Task by EmailcrmKey__c).
func (s *Store) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	hash := QuoteSOQL(hashKey(key))
	subs := []subrequest{
		s.querySub("mail", "SELECT Id, ParentId, CreatedDate, EmailcrmData__c FROM EmailMessage WHERE EmailcrmKey__c = "+hash),
		s.querySub("task", "SELECT Id, CreatedDate, EmailcrmData__c FROM Task WHERE EmailcrmKey__c = "+hash),
	}
	res, err := s.c.composite(ctx, false, subs)
	if err != nil {
		return driver.Processed{}, err
	}
	for _, ref := range []string{"mail", "task"} {
		r := res[ref]
		if !r.ok() {
			return driver.Processed{}, r.err("lookup key")
		}
		for _, rec := range records(r) {
			var d emailData
			_ = json.Unmarshal([]byte(recStr(rec, "EmailcrmData__c")), &d)
			if raw, err := base64.StdEncoding.DecodeString(d.Key); err == nil && d.Key != "" && string(raw) != key {
				continue // a hash collision in 256 bits: not this key
			}
			return driver.Processed{Key: key, CaseID: driver.CaseID(recStr(rec, "ParentId")),
				At: recTime(rec, "CreatedDate"), Fingerprint: d.Fingerprint}, nil
		}
	}
	return driver.Processed{}, errNotFound("idempotency key")
}
