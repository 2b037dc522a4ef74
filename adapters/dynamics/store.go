package dynamics

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Limits of the columns written, from the Dataverse entity reference.
const (
	maxTitle        = 200
	maxDescription  = 2000
	maxEmailSubject = 800
	maxEmailBody    = 1048576
	maxMemoBody     = 256 << 10 // HTML and reply text kept in emailcrm_data
)

// Store is the Dynamics 365 driver: a driver.CaseStore, driver.Directory,
// driver.DirectoryWriter and driver.Aser over the Dataverse Web API. It is
// safe for concurrent use. Programs use it through *mailcase.Store
// (OpenStore); the driver is reachable with mailcase.Store.As(**Store).
type Store struct {
	cfg *Config
	c   *client

	lcache  *crmlookup.Cache
	tokenRE *regexp.Regexp

	mu       sync.Mutex
	people   map[string]contactRef // contactid -> address, placeholder
	snaps    map[driver.CaseID]snapshot
	caseMu   map[driver.CaseID]*sync.Mutex
	customer string // the default customer account, once known
	// owners caches ResolveOwners lookups: "queue:Name" / "user:Name" ->
	// GUID.
	owners map[string]ownerEntry
}

// ownerEntry is a cached ResolveOwners lookup: the GUID, or "" for a name
// no record had at the time (a miss, kept for Config.OwnerMissTTL).
type ownerEntry struct {
	id string
	at time.Time
}

type contactRef struct {
	email       string
	placeholder bool
	at          time.Time
}

// snapshot is an incident as last read or written by this driver.
type snapshot struct {
	c  driver.Case
	d  caseData
	at time.Time
}

var (
	_ driver.CaseStore       = (*Store)(nil)
	_ driver.Directory       = (*Store)(nil)
	_ driver.DirectoryWriter = (*Store)(nil)
	_ driver.Aser            = (*Store)(nil)
)

// NewDriver returns the driver for cfg. It checks the configuration but
// makes no request: the first token is fetched by the first call.
func NewDriver(cfg *Config) (*Store, error) {
	o, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	src := tokenSource(o, o.HTTPClient)
	c := &client{hc: o.HTTPClient, base: o.InstanceURL, api: o.InstanceURL + "/api/data/" + o.APIVersion + "/",
		log: o.Logger, slowAt: o.SlowDownAt, slowMax: o.SlowDownMax, tokens: crmhttp.NewTokens(src)}
	c.remaining.Store(-1)
	return &Store{cfg: o, c: c, lcache: crmlookup.NewCache(o.LookupCacheTTL, o.Now), tokenRE: tokenRegexp(o.TrackingTokenPrefix), customer: o.DefaultCustomer,
		people: map[string]contactRef{}, snaps: map[driver.CaseID]snapshot{}, caseMu: map[driver.CaseID]*sync.Mutex{},
		owners: map[string]ownerEntry{}}, nil
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

// Calls returns the number of HTTP requests made (a $batch counts once,
// token requests not at all).
func (s *Store) Calls() int64 { return s.c.calls.Load() }

// Close implements driver.CaseStore.
func (s *Store) Close() error { return nil }

// As implements driver.Aser: **Store and **http.Client.
func (s *Store) As(i any) bool {
	switch p := i.(type) {
	case **Store:
		*p = s
	case **http.Client:
		*p = s.c.hc
	default:
		return false
	}
	return true
}

// ErrorAs implements driver.Aser: **APIError and **AuthError.
func (s *Store) ErrorAs(err error, i any) bool {
	switch p := i.(type) {
	case **APIError:
		return errors.As(err, p)
	case **AuthError:
		return errors.As(err, p)
	}
	return false
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

// Dataverse error codes (the "code" of OData error bodies).
const (
	codeNotExist     = "0x80040217" // object does not exist
	codeDuplicateKey = "0x80060892" // a record with matching key values already exists
	codeDuplicate    = "0x80040237" // duplicate record
	codeRequired     = "0x80040200"
	codeTooLong      = "0x80044331"
	codeThrottled    = "0x80072322"
)

func apiCode(e *APIError) driver.ErrorCode {
	switch {
	case e.Status == http.StatusTooManyRequests:
		return driver.ResourceExhausted
	case e.Code == codeNotExist || e.Status == http.StatusNotFound:
		return driver.NotFound
	case e.Code == codeDuplicateKey || e.Code == codeDuplicate || e.Status == http.StatusPreconditionFailed || e.Status == http.StatusConflict:
		return driver.AlreadyExists
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return driver.PermissionDenied
	case e.Status >= 500:
		return driver.Unavailable
	case e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge:
		return driver.InvalidArgument
	}
	return driver.Unknown
}

// keyHash is the alternate-key value of an idempotency key: the SHA-256
// of its bytes, hex (64 characters).
func keyHash(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

func enc64(k string) string { return base64.StdEncoding.EncodeToString([]byte(k)) }

func dec64(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ""
	}
	return string(b)
}

// keyPath addresses a record by its alternate key.
func keyPath(set, hash string) string { return set + "(emailcrm_key=" + queryEscape(Quote(hash)) + ")" }

// truncate cuts s to at most n characters as Dataverse counts them
// (UTF-16 code units), on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	units := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if units+w > n {
			return s[:i]
		}
		units += w
	}
	return s
}

// ---- the incident ----

// caseData is the incident's emailcrm_data column: what the driver needs
// that Dataverse has no column for.
type caseData struct {
	Key          string            `json:"k,omitempty"` // base64 of the idempotency key
	Subject      string            `json:"subject,omitempty"`
	Status       driver.CaseStatus `json:"status,omitempty"`
	Priority     driver.Priority   `json:"priority,omitempty"`
	Queue        string            `json:"queue,omitempty"`
	Owner        string            `json:"owner,omitempty"`
	Origin       string            `json:"origin,omitempty"`
	Category     string            `json:"category,omitempty"`
	ContactID    string            `json:"contact,omitempty"`
	AccountID    string            `json:"account,omitempty"`
	ParentID     driver.CaseID     `json:"parent,omitempty"`
	LinkedID     driver.CaseID     `json:"linked,omitempty"`
	Participants []string          `json:"p,omitempty"`
	Created      time.Time         `json:"created"`
	Updated      time.Time         `json:"updated"`
	Closed       time.Time         `json:"closed,omitzero"`
}

func (d *caseData) json() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// incidentRow is an incident as read.
type incidentRow struct {
	ID         string `json:"incidentid"`
	Title      string `json:"title"`
	Ticket     string `json:"ticketnumber"`
	StateCode  *int   `json:"statecode"`
	StatusCode *int   `json:"statuscode"`
	Priority   *int   `json:"prioritycode"`
	Data       string `json:"emailcrm_data"`
	Created    string `json:"createdon"`
	Modified   string `json:"modifiedon"`
}

const incidentSelect = "incidentid,title,ticketnumber,statecode,statuscode,prioritycode,emailcrm_data,createdon,modifiedon"

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// toCase maps an incident row to a driver.Case.
func toCase(r *incidentRow) (driver.Case, caseData) {
	var d caseData
	if r.Data != "" {
		_ = json.Unmarshal([]byte(r.Data), &d)
	}
	c := driver.Case{ID: driver.CaseID(strings.ToLower(r.ID)), Number: r.Ticket, Subject: d.Subject,
		Status: d.Status, Priority: d.Priority, Queue: d.Queue, Owner: d.Owner, Origin: d.Origin,
		Category: d.Category, ContactID: d.ContactID, AccountID: d.AccountID, ParentID: d.ParentID,
		LinkedID: d.LinkedID, Participants: slices.Clone(d.Participants),
		CreatedAt: d.Created, UpdatedAt: d.Updated, ClosedAt: d.Closed}
	if c.Subject == "" {
		c.Subject = r.Title
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = parseTime(r.Created)
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = parseTime(r.Modified)
	}
	if r.StateCode != nil {
		switch *r.StateCode {
		case 1:
			c.Status = driver.StatusClosed
		case 2:
			c.Status = driver.StatusCancelled
		default:
			if c.Status == "" || c.Status.IsClosed() {
				c.Status = driver.StatusOpen
				c.ClosedAt = time.Time{}
			}
		}
	}
	if c.Priority == "" && r.Priority != nil {
		c.Priority = priorityOf(*r.Priority)
	}
	if c.Number == "" {
		c.Number = string(c.ID)
	}
	return c, d
}

// stateOf maps a driver status to incident statecode and statuscode.
func stateOf(st driver.CaseStatus) (int, int) {
	switch st {
	case driver.StatusInProgress:
		return 0, 4 // Active, Researching
	case driver.StatusClosed:
		return 1, 5 // Resolved, Problem Solved
	case driver.StatusCancelled:
		return 2, 6 // Cancelled
	}
	return 0, 1 // Active, In Progress
}

// prioritycode: 1 High, 2 Normal, 3 Low.
func priorityCode(p driver.Priority) int {
	switch p {
	case driver.PriorityHigh, driver.PriorityUrgent:
		return 1
	case driver.PriorityLow:
		return 3
	}
	return 2
}

func priorityOf(n int) driver.Priority {
	switch n {
	case 1:
		return driver.PriorityHigh
	case 3:
		return driver.PriorityLow
	}
	return driver.PriorityNormal
}

func (s *Store) remember(c driver.Case, d caseData) {
	s.mu.Lock()
	s.snaps[c.ID] = snapshot{c: c, d: d, at: s.cfg.Now()}
	if len(s.snaps) > 10000 {
		clear(s.snaps)
	}
	s.mu.Unlock()
}

// recent returns the snapshot of case id written or read by this driver
// in the last 10 seconds.
func (s *Store) recent(id driver.CaseID) (snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.snaps[id]
	if !ok || s.cfg.Now().Sub(sn.at) > 10*time.Second {
		return snapshot{}, false
	}
	return sn, true
}

// lockCase serialises this driver's read-modify-writes of one incident.
func (s *Store) lockCase(id driver.CaseID) func() {
	s.mu.Lock()
	m := s.caseMu[id]
	if m == nil {
		m = &sync.Mutex{}
		s.caseMu[id] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// GetCase implements driver.CaseStore.
func (s *Store) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	c, _, err := s.getCase(ctx, id)
	return c, err
}

func (s *Store) getCase(ctx context.Context, id driver.CaseID) (driver.Case, caseData, error) {
	if err := ctx.Err(); err != nil {
		return driver.Case{}, caseData{}, err
	}
	if !validGUID(string(id)) {
		return driver.Case{}, caseData{}, errNotFound("case " + string(id))
	}
	var r incidentRow
	if err := s.c.getJSON(ctx, "incidents("+string(id)+")?$select="+incidentSelect, &r); err != nil {
		return driver.Case{}, caseData{}, err
	}
	c, d := toCase(&r)
	s.remember(c, d)
	return c, d, nil
}

// FindCaseByNumber implements driver.CaseStore (incident.ticketnumber).
func (s *Store) FindCaseByNumber(ctx context.Context, number string) (driver.Case, error) {
	var out struct {
		Value []incidentRow `json:"value"`
	}
	if err := s.c.getJSON(ctx, query("incidents", "$select", incidentSelect, "$filter", "ticketnumber eq "+Quote(number), "$top", "1"), &out); err != nil {
		return driver.Case{}, err
	}
	if len(out.Value) == 0 {
		return driver.Case{}, errNotFound("case number " + number)
	}
	c, d := toCase(&out.Value[0])
	s.remember(c, d)
	return c, nil
}

// CaseURL implements driver.CaseStore: the record in the model-driven app,
// <instance>/main.aspx?etn=incident&id=<guid>&pagetype=entityrecord.
func (s *Store) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	if _, ok := s.recent(id); !ok {
		if _, err := s.GetCase(ctx, id); err != nil {
			return "", err
		}
	}
	return s.cfg.InstanceURL + "/main.aspx?etn=incident&id=" + string(id) + "&pagetype=entityrecord", nil
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

func merge(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// contactInfo returns the address and placeholder flag of contact id.
func (s *Store) contactInfo(ctx context.Context, id string) (contactRef, error) {
	s.mu.Lock()
	ref, ok := s.people[id]
	s.mu.Unlock()
	if ok && s.cfg.Now().Sub(ref.at) < 10*time.Minute {
		return ref, nil
	}
	if !validGUID(id) {
		return contactRef{}, errInvalid("contact id " + id + " is not a GUID")
	}
	var r contactRow
	if err := s.c.getJSON(ctx, "contacts("+id+")?$select="+contactSelect, &r); err != nil {
		return contactRef{}, err
	}
	c := r.contact()
	ref = contactRef{email: c.Email, placeholder: c.Placeholder}
	s.rememberContact(id, ref)
	return ref, nil
}

func (s *Store) rememberContact(id string, ref contactRef) {
	ref.at = s.cfg.Now()
	s.mu.Lock()
	s.people[id] = ref
	s.mu.Unlock()
}

// defaultCustomer returns the accountid bound to cases without a contact
// or account: Config.DefaultCustomer, else the account named
// Config.DefaultCustomerName, created when absent.
func (s *Store) defaultCustomer(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.customer
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	var out struct {
		Value []struct {
			ID string `json:"accountid"`
		} `json:"value"`
	}
	name := s.cfg.DefaultCustomerName
	if err := s.c.getJSON(ctx, query("accounts", "$select", "accountid", "$filter", "name eq "+Quote(name), "$orderby", "createdon asc", "$top", "1"), &out); err != nil {
		return "", err
	}
	if len(out.Value) > 0 {
		id = strings.ToLower(out.Value[0].ID)
	} else {
		resp, err := s.c.call(ctx, &request{method: http.MethodPost, path: "accounts", body: map[string]any{"name": name}})
		if err != nil {
			return "", err
		}
		id = strings.ToLower(entityID(resp.header))
	}
	s.mu.Lock()
	s.customer = id
	s.mu.Unlock()
	return id, nil
}

// ---- email activities ----

// emailData is the email's emailcrm_data column: the key exactly and
// what the driver.Email has beyond the email's own columns.
type emailData struct {
	Key     string       `json:"k"` // base64 of the idempotency key
	Case    string       `json:"case,omitempty"`
	Contact string       `json:"contact,omitempty"`
	Account string       `json:"account,omitempty"`
	Kind    string       `json:"kind,omitempty"`
	Note    *driver.Note `json:"note,omitempty"`
	Email   driver.Email `json:"email"`
	At      time.Time    `json:"at"`
	// HTMLBody says the email's description holds Email.HTML (the mail
	// had no text part).
	HTMLBody bool `json:"html_body,omitempty"`
	// BodyParts and HTMLParts count the hidden attachments holding the
	// rest of a body over the description's 1,048,576 characters
	// (emailcrm-body-N.txt) and an HTML part too long for this column
	// (emailcrm-html-N.txt).
	BodyParts int `json:"body_parts,omitempty"`
	HTMLParts int `json:"html_parts,omitempty"`
}

// emailBody is the body of a new email activity regarding regarding (a
// "$n" reference or "/incidents(id)"-style path, bound through the
// navigation property nav).
func (s *Store) emailBody(e *driver.Email, nav, regarding string, d *emailData) (map[string]any, []driver.Attachment) {
	stored := *e
	stored.IdempotencyKey, stored.Raw = "", nil
	stored.Attachments = nil
	for _, a := range e.Attachments {
		a.Data = nil
		stored.Attachments = append(stored.Attachments, a)
	}
	body := e.Text
	if body == "" {
		body = e.HTML
	}
	if s.cfg.NoTranscript {
		body, stored.Text, stored.HTML, stored.ReplyText = "", "", "", ""
	}
	stored.Text = ""
	var extra []driver.Attachment
	if e.Text == "" {
		stored.HTML = "" // the description holds it
	} else if len(stored.HTML) > maxMemoBody {
		extra = s.chunks(extra, "emailcrm-html-", stored.HTML, &d.HTMLParts)
		stored.HTML = ""
	}
	if len(stored.ReplyText) > maxMemoBody {
		stored.ReplyText = ""
	}
	desc := truncate(body, maxEmailBody)
	if len(desc) < len(body) {
		extra = s.chunks(extra, "emailcrm-body-", body[len(desc):], &d.BodyParts)
	}
	body = desc
	d.Email = stored
	d.HTMLBody = e.Text == "" && e.HTML != ""
	d.Key = enc64(e.IdempotencyKey)
	m := map[string]any{
		"subject":       truncate(e.Subject, maxEmailSubject),
		"description":   body,
		"messageid":     "<" + e.MessageID + ">",
		"directioncode": e.Direction == driver.Outbound,
		"emailcrm_key":  keyHash(e.IdempotencyKey),
		"emailcrm_data": string(must(json.Marshal(d))),
	}
	if e.MessageID == "" {
		delete(m, "messageid")
	}
	if regarding != "" {
		m[nav+"@odata.bind"] = regarding
	}
	var parties []map[string]any
	add := func(mask int, a driver.Address) {
		if a.Email != "" {
			parties = append(parties, map[string]any{"participationtypemask": mask, "addressused": a.Email})
		}
	}
	add(1, e.From)
	for _, a := range e.To {
		add(2, a)
	}
	for _, a := range e.Cc {
		add(3, a)
	}
	if len(parties) > 0 {
		m["email_activity_parties"] = parties
	}
	return m, extra
}

// chunks appends text cut into hidden attachments named prefix + N +
// ".txt", each within MaxUploadFileSize once base64-encoded.
func (s *Store) chunks(out []driver.Attachment, prefix, text string, n *int) []driver.Attachment {
	size := max(s.cfg.MaxUploadFileSize/4*3-3, 1)
	for i := 0; len(text) > 0; i++ {
		k := min(size, len(text))
		out = append(out, driver.Attachment{Filename: prefix + itoa(i) + ".txt", ContentType: "text/plain; charset=utf-8", Data: []byte(text[:k])})
		text = text[k:]
		*n = i + 1
	}
	return out
}

func must(b []byte, _ error) []byte { return b }

// fitUploads returns e without the attachments whose base64 size is over
// MaxUploadFileSize, each left out recorded as a problem of the mail (its
// name, size and the limit), so that the mail is filed without them rather
// than refused; the original mail keeps them (mailcase.Store keeps the raw
// mail where a store can). e itself is not changed; with nothing to leave
// out (or NoAttachments) it is returned as is.
func (s *Store) fitUploads(e *driver.Email) *driver.Email {
	if e == nil || s.cfg.NoAttachments {
		return e
	}
	over := func(a driver.Attachment) bool {
		return base64.StdEncoding.EncodedLen(len(a.Data)) > s.cfg.MaxUploadFileSize
	}
	if !slices.ContainsFunc(e.Attachments, over) {
		return e
	}
	c := *e
	c.Attachments = nil
	c.Problems = slices.Clone(e.Problems)
	for _, a := range e.Attachments {
		if !over(a) {
			c.Attachments = append(c.Attachments, a)
			continue
		}
		name := a.Filename
		if name == "" {
			name = "(unnamed)"
		}
		c.Problems = append(c.Problems, "attachment "+strconv.Quote(name)+" left out: "+itoa(len(a.Data))+" bytes ("+
			itoa(base64.StdEncoding.EncodedLen(len(a.Data)))+" in base64) are over the environment's MaxUploadFileSize of "+
			itoa(s.cfg.MaxUploadFileSize)+" base64 bytes")
	}
	return &c
}

// attachmentParts returns the activitymimeattachments of e bound to the
// email of reference ref, or InvalidArgument for a file over
// MaxUploadFileSize (counted on its base64 size).
func (s *Store) attachmentParts(e *driver.Email, extra []driver.Attachment, ref string) ([]part, error) {
	list := e.Attachments
	if s.cfg.NoAttachments {
		list = nil
	}
	var out []part
	for _, a := range slices.Concat(list, extra) {
		b64 := base64.StdEncoding.EncodeToString(a.Data)
		if len(b64) > s.cfg.MaxUploadFileSize {
			return nil, errInvalid("attachment " + a.Filename + " is over MaxUploadFileSize (" + itoa(len(b64)) + " base64 bytes > " + itoa(s.cfg.MaxUploadFileSize) + ")")
		}
		name := a.Filename
		if name == "" {
			name = "attachment"
		}
		out = append(out, part{method: http.MethodPost, path: "activitymimeattachments", body: map[string]any{
			"objectid_activitypointer@odata.bind": ref,
			"objecttypecode":                      "email",
			"filename":                            name,
			"mimetype":                            a.ContentType,
			"body":                                b64,
			"attachmentcontentid":                 a.ContentID,
		}})
	}
	return out, nil
}

func itoa(n int) string { return string(must(json.Marshal(n))) }

// ownerRef resolves a queue ("queue": queues by name) or an owner
// ("user": enabled systemusers by full name or internal e-mail address) to
// its GUID, "" when none has the name. A name found is cached for the life
// of the driver, a miss for Config.OwnerMissTTL.
func (s *Store) ownerRef(ctx context.Context, kind, name string) (string, error) {
	key := kind + ":" + name
	s.mu.Lock()
	e, ok := s.owners[key]
	s.mu.Unlock()
	if ok && (e.id != "" || s.cfg.Now().Sub(e.at) < s.cfg.OwnerMissTTL) {
		return e.id, nil
	}
	var id string
	var out struct {
		Value []map[string]any `json:"value"`
	}
	set, idAttr, filter := "queues", "queueid", "name eq "+Quote(name)
	if kind == "user" {
		set, idAttr = "systemusers", "systemuserid"
		filter = "isdisabled eq false and (fullname eq " + Quote(name) + " or internalemailaddress eq " + Quote(name) + ")"
	}
	if err := s.c.getJSON(ctx, query(set, "$select", idAttr, "$filter", filter, "$top", "1"), &out); err != nil {
		return "", err
	}
	if len(out.Value) > 0 {
		id, _ = out.Value[0][idAttr].(string)
		id = strings.ToLower(id)
	}
	if id == "" && s.cfg.OwnerMissTTL < 0 {
		return "", nil
	}
	s.mu.Lock()
	s.owners[key] = ownerEntry{id: id, at: s.cfg.Now()}
	s.mu.Unlock()
	return id, nil
}

// addToQueuePart is the AddToQueue action putting incident id into queue
// qid (an item already in a queue moves to this one).
func addToQueuePart(qid string, id driver.CaseID) part {
	return part{method: http.MethodPost, path: "queues(" + qid + ")/Microsoft.Dynamics.CRM.AddToQueue",
		body: map[string]any{"Target": map[string]any{"@odata.type": "Microsoft.Dynamics.CRM.incident", "incidentid": string(id)}}}
}

// CreateCase implements driver.CaseStore; see createCase. With
// ResolveOwners, a case routed to a queue is then put into it (AddToQueue,
// one more call; also when a retry finds the case filed already, so a
// failure between the two is mended by the retry), and a queue no record
// has the name of is noted on the case instead.
func (s *Store) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	if err := ctx.Err(); err != nil {
		return driver.Case{}, err
	}
	qid, missing := "", ""
	if s.cfg.ResolveOwners && req.Queue != "" {
		var err error
		if qid, err = s.ownerRef(ctx, "queue", req.Queue); err != nil {
			return driver.Case{}, err
		}
		if qid == "" {
			missing = req.Queue
			s.cfg.Logger.Warn("dynamics: no queue has the name the case is routed to; the case is in no queue", "queue", req.Queue)
		}
	}
	c, err := s.createCase(ctx, req, missing)
	if err != nil || qid == "" {
		return c, err
	}
	q := addToQueuePart(qid, c.ID)
	if _, err := s.c.call(ctx, &request{method: q.method, path: q.path, body: q.body}); err != nil {
		return driver.Case{}, err
	}
	return c, nil
}

// createCase files a new case. A new case is one $batch with
// one change set: the incident, upserted by its alternate key with
// If-None-Match: * (so a retry cannot make a second one), the email
// activity regarding it ($1) with its parties and its own key, the
// attachments bound to the email ($2) and the description note. A key
// already filed makes Dataverse refuse the incident or the email (412),
// which rolls the change set back; the driver then returns the case filed
// under the key (or AlreadyExists when the key was filed on no case).
//
// missingQueue, when set, is a queue name ResolveOwners found no queue for:
// a note on the case says so.
func (s *Store) createCase(ctx context.Context, req *driver.NewCase, missingQueue string) (driver.Case, error) {
	e := s.fitUploads(req.First)
	h := keyHash(e.IdempotencyKey)
	now := s.cfg.Now().UTC()
	d := caseData{Key: enc64(e.IdempotencyKey), Subject: req.Subject, Status: req.Status, Priority: req.Priority,
		Queue: req.Queue, Origin: req.Origin, Category: req.Category, ContactID: req.ContactID, AccountID: req.AccountID,
		ParentID: req.ParentID, LinkedID: req.LinkedID, Created: now, Updated: now}
	if req.Status.IsClosed() {
		d.Closed = now
	}
	parts := participants(e)
	inc := map[string]any{"title": truncate(firstNonEmpty(req.Subject, "(no subject)"), maxTitle), "caseorigincode": 2,
		"prioritycode": priorityCode(req.Priority)}
	switch {
	case req.ContactID != "":
		ref, err := s.contactInfo(ctx, req.ContactID)
		if err != nil {
			return driver.Case{}, err
		}
		if !ref.placeholder && ref.email != "" {
			parts = merge(parts, []string{ref.email})
		}
		inc["customerid_contact@odata.bind"] = "/contacts(" + req.ContactID + ")"
	case req.AccountID != "":
		if !validGUID(req.AccountID) {
			return driver.Case{}, errInvalid("account id " + req.AccountID + " is not a GUID")
		}
		inc["customerid_account@odata.bind"] = "/accounts(" + req.AccountID + ")"
	default:
		id, err := s.defaultCustomer(ctx)
		if err != nil {
			return driver.Case{}, err
		}
		inc["customerid_account@odata.bind"] = "/accounts(" + id + ")"
	}
	d.Participants = parts
	if !s.cfg.NoSummary {
		desc := req.Description
		if desc == "" {
			desc = e.Text
		}
		inc["description"] = truncate(desc, maxDescription)
	}
	inc["emailcrm_data"] = d.json()
	ed := emailData{Kind: "email", At: now}
	// the case id is known only after the batch: the email's memo names
	// the case by key; LookupProcessed resolves it through the incident's
	// key.
	ed.Case = "key:" + h
	eb, extra := s.emailBody(e, "regardingobjectid_incident_email", "$1", &ed)
	atts, err := s.attachmentParts(e, extra, "$2")
	if err != nil {
		return driver.Case{}, err
	}
	batch := []part{
		{method: http.MethodPatch, path: keyPath("incidents", h), body: inc,
			header: http.Header{"If-None-Match": {"*"}, "Prefer": {"return=representation"}}},
		{method: http.MethodPost, path: "emails", body: eb},
	}
	batch = append(batch, atts...)
	if req.Description != "" && !s.cfg.NoNotes {
		batch = append(batch, part{method: http.MethodPost, path: "annotations", body: map[string]any{
			"subject": "[emailcrm " + now.Format(time.RFC3339Nano) + "]", "notetext": req.Description, "objectid_incident@odata.bind": "$1"}})
	}
	if missingQueue != "" {
		batch = append(batch, part{method: http.MethodPost, path: "annotations", body: map[string]any{
			"subject":                      "[emailcrm " + now.Format(time.RFC3339Nano) + "]",
			"notetext":                     "emailcrm: the case is routed to the queue " + strconv.Quote(missingQueue) + ", but no Dynamics queue has that name: the case is in no queue.",
			"objectid_incident@odata.bind": "$1"}})
	}
	resps, failed, err := s.c.batch(ctx, batch)
	if err != nil {
		return driver.Case{}, err
	}
	if failed >= 0 || (len(resps) == 1 && len(batch) > 1) {
		ae := resps[0].apiError("$batch " + batch[max(failed, 0)].method + " " + opPath(batch[max(failed, 0)].path))
		if errorCode(ae) != driver.AlreadyExists || failed > 1 || failed < 0 && ae.Code != codeDuplicateKey {
			return driver.Case{}, ae
		}
		// The key is filed: return its case.
		if c, err := s.caseByKey(ctx, h); err == nil {
			return c, nil
		} else if errorCode(err) != driver.NotFound {
			return driver.Case{}, err
		}
		p, err := s.LookupProcessed(ctx, e.IdempotencyKey)
		if err != nil {
			return driver.Case{}, err
		}
		if p.CaseID == "" {
			return driver.Case{}, errExists("idempotency key filed on no case")
		}
		return s.GetCase(ctx, p.CaseID)
	}
	var r incidentRow
	if len(resps[0].body) > 0 && json.Unmarshal(resps[0].body, &r) == nil && r.ID != "" && r.Ticket != "" {
		c, cd := toCase(&r)
		s.remember(c, cd)
		return c, nil
	}
	id := entityID(resps[0].header)
	if !validGUID(id) {
		// no id, or the alternate-key form incidents(emailcrm_key='…')
		return s.caseByKey(ctx, h)
	}
	return s.GetCase(ctx, driver.CaseID(strings.ToLower(id)))
}

// caseByKey reads the incident with alternate key h.
func (s *Store) caseByKey(ctx context.Context, h string) (driver.Case, error) {
	var r incidentRow
	if err := s.c.getJSON(ctx, keyPath("incidents", h)+"?$select="+incidentSelect, &r); err != nil {
		return driver.Case{}, err
	}
	c, d := toCase(&r)
	s.remember(c, d)
	return c, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// AppendEmail implements driver.CaseStore: one $batch change set with the
// email (its own key), its attachments and the incident's new
// participants (If-Match: *, so a deleted case is not recreated). The
// incident is read first unless this driver read or wrote it in the last
// 10 seconds (the pipeline's LookupThread just did). A known key makes
// Dataverse refuse the email (412): nothing is filed, nil is returned.
func (s *Store) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validGUID(string(id)) {
		return errNotFound("case " + string(id))
	}
	e = s.fitUploads(e)
	unlock := s.lockCase(id)
	defer unlock()
	sn, ok := s.recent(id)
	if !ok {
		c, d, err := s.getCase(ctx, id)
		if err != nil {
			return err
		}
		sn = snapshot{c: c, d: d}
	}
	d := sn.d
	d.Participants = merge(sn.c.Participants, participants(e))
	now := s.cfg.Now().UTC()
	if !now.After(sn.c.UpdatedAt) {
		now = sn.c.UpdatedAt.Add(time.Millisecond)
	}
	d.Updated = now
	if d.Created.IsZero() {
		d.Created = sn.c.CreatedAt
	}
	ed := emailData{Kind: "email", Case: string(id), At: now}
	eb, extra := s.emailBody(e, "regardingobjectid_incident_email", "/incidents("+string(id)+")", &ed)
	batch := []part{{method: http.MethodPost, path: "emails", body: eb}}
	atts, err := s.attachmentParts(e, extra, "$1")
	if err != nil {
		return err
	}
	batch = append(batch, atts...)
	batch = append(batch, part{method: http.MethodPatch, path: "incidents(" + string(id) + ")",
		body: map[string]any{"emailcrm_data": d.json()}, header: http.Header{"If-Match": {"*"}}})
	resps, failed, err := s.c.batch(ctx, batch)
	if err != nil {
		return err
	}
	if failed >= 0 || len(resps) == 1 && len(batch) > 1 {
		ae := resps[0].apiError("$batch " + batch[max(failed, 0)].method + " " + opPath(batch[max(failed, 0)].path))
		code := errorCode(ae)
		if (failed == 0 || failed < 0 && ae.Code == codeDuplicateKey) && code == driver.AlreadyExists {
			return nil // the key was filed before
		}
		if failed == len(batch)-1 && (code == driver.NotFound || code == driver.AlreadyExists) {
			s.forgetCase(id)
			return errNotFound("case " + string(id))
		}
		if failed <= 0 && code == driver.NotFound {
			s.forgetCase(id)
		}
		return ae
	}
	c := sn.c
	c.Participants, c.UpdatedAt = d.Participants, d.Updated
	s.remember(c, d)
	return nil
}

func (s *Store) forgetCase(id driver.CaseID) {
	s.mu.Lock()
	delete(s.snaps, id)
	s.mu.Unlock()
}

// AddNote implements driver.CaseStore: an annotation on the incident
// (notetext). Its subject is the author followed by the driver's
// bookkeeping, "[emailcrm <time>]" or "[emailcrm <time> key:<sha256 hex>]"
// for a note with an idempotency key, which is looked up before the note
// is added.
func (s *Store) AddNote(ctx context.Context, id driver.CaseID, n *driver.Note) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validGUID(string(id)) {
		return errNotFound("case " + string(id))
	}
	at := n.CreatedAt
	if at.IsZero() {
		at = s.cfg.Now()
	}
	tag := "[emailcrm " + at.UTC().Format(time.RFC3339Nano)
	if n.IdempotencyKey != "" {
		kh := "key:" + keyHash(n.IdempotencyKey)
		tag += " " + kh
		var out struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := s.c.getJSON(ctx, query("annotations", "$select", "annotationid", "$filter",
			"_objectid_value eq "+string(id)+" and contains(subject,"+QuoteLike(kh)+")", "$top", "1"), &out); err != nil {
			return err
		}
		if len(out.Value) > 0 {
			return nil
		}
	}
	if n.Public {
		tag += " public"
	}
	tag += "]"
	if s.cfg.NoNotes {
		_, err := s.GetCase(ctx, id)
		return err
	}
	subject := truncate(n.Author, 500-len(tag)-1) + " " + tag
	_, err := s.c.call(ctx, &request{method: http.MethodPost, path: "annotations", body: map[string]any{
		"subject": strings.TrimPrefix(subject, " "), "notetext": n.Body, "objectid_incident@odata.bind": "/incidents(" + string(id) + ")"}})
	if errorCode(err) == driver.InvalidArgument || errorCode(err) == driver.NotFound {
		if _, gerr := s.GetCase(ctx, id); errorCode(gerr) == driver.NotFound {
			return gerr
		}
	}
	return err
}

// parseNoteSubject splits an annotation subject written by AddNote.
func parseNoteSubject(subj string) (author string, at time.Time, public bool) {
	i := strings.LastIndex(subj, "[emailcrm ")
	if i < 0 || !strings.HasSuffix(subj, "]") {
		return subj, time.Time{}, false
	}
	author = strings.TrimSuffix(subj[:i], " ")
	f := strings.Fields(subj[i+len("[emailcrm ") : len(subj)-1])
	if len(f) > 0 {
		at, _ = time.Parse(time.RFC3339Nano, f[0])
	}
	return author, at, slices.Contains(f, "public")
}

// UpdateCase implements driver.CaseStore. Status changes follow the
// incident's state model: closing goes through the CloseIncident action
// with an IncidentResolution (statuscode 5 Problem Solved), cancelling
// sets statecode 2 / statuscode 6, reopening sets statecode 0 /
// statuscode 1; all in one $batch change set with the new emailcrm_data.
func (s *Store) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	if err := ctx.Err(); err != nil {
		return driver.Case{}, err
	}
	unlock := s.lockCase(id)
	defer unlock()
	c, d, err := s.getCase(ctx, id)
	if err != nil {
		return driver.Case{}, err
	}
	now := s.cfg.Now().UTC()
	if !now.After(c.UpdatedAt) {
		now = c.UpdatedAt.Add(time.Millisecond)
	}
	d.Updated = now
	d.Subject = c.Subject
	d.Participants = c.Participants
	d.Status, d.Priority = c.Status, c.Priority
	from := c.Status
	if u.Status != nil {
		d.Status = *u.Status
	}
	if u.Priority != nil {
		d.Priority = *u.Priority
	}
	if u.Queue != nil {
		d.Queue = *u.Queue
	}
	if u.Owner != nil {
		d.Owner = *u.Owner
	}
	to := d.Status
	switch {
	case to.IsClosed() && !from.IsClosed():
		d.Closed = now
	case !to.IsClosed():
		d.Closed = time.Time{}
	}
	path := "incidents(" + string(id) + ")"
	ifMatch := http.Header{"If-Match": {"*"}}
	upd := map[string]any{"emailcrm_data": d.json(), "prioritycode": priorityCode(d.Priority)}
	var queued []part
	if s.cfg.ResolveOwners {
		if u.Queue != nil && *u.Queue != "" {
			qid, err := s.ownerRef(ctx, "queue", *u.Queue)
			if err != nil {
				return driver.Case{}, err
			}
			if qid == "" {
				return driver.Case{}, errInvalid("no Dynamics queue is named " + strconv.Quote(*u.Queue))
			}
			queued = append(queued, addToQueuePart(qid, id))
		}
		if u.Owner != nil && *u.Owner != "" {
			uid, err := s.ownerRef(ctx, "user", *u.Owner)
			if err != nil {
				return driver.Case{}, err
			}
			if uid == "" {
				return driver.Case{}, errInvalid("no enabled Dynamics user is named " + strconv.Quote(*u.Owner))
			}
			upd["ownerid@odata.bind"] = "/systemusers(" + uid + ")"
		}
	}
	var batch []part
	if from.IsClosed() && (to != from) {
		// reopen first (a resolved or cancelled incident cannot be changed)
		batch = append(batch, part{method: http.MethodPatch, path: path, header: ifMatch,
			body: map[string]any{"statecode": 0, "statuscode": 1}})
		from = driver.StatusOpen
	}
	state, status := stateOf(to)
	switch {
	case to == driver.StatusClosed && from != driver.StatusClosed:
		batch = append(batch, part{method: http.MethodPatch, path: path, header: ifMatch, body: upd},
			part{method: http.MethodPost, path: "CloseIncident", body: map[string]any{
				"IncidentResolution": map[string]any{"subject": "Closed by emailcrm", "incidentid@odata.bind": "/" + path},
				"Status":             status}})
	case !to.IsClosed() || to != from:
		upd["statecode"], upd["statuscode"] = state, status
		batch = append(batch, part{method: http.MethodPatch, path: path, header: ifMatch, body: upd})
	default:
		// closed and staying closed: the memo only (Dataverse refuses
		// other changes to a closed incident)
		batch = append(batch, part{method: http.MethodPatch, path: path, header: ifMatch, body: map[string]any{"emailcrm_data": d.json()}})
	}
	batch = append(batch, queued...)
	resps, failed, err := s.c.batch(ctx, batch)
	if err != nil {
		return driver.Case{}, err
	}
	if failed >= 0 || len(resps) == 1 && len(batch) > 1 {
		return driver.Case{}, resps[0].apiError("$batch " + batch[max(failed, 0)].method + " " + opPath(batch[max(failed, 0)].path))
	}
	c.Status, c.Priority, c.Queue, c.Owner, c.UpdatedAt, c.ClosedAt = d.Status, d.Priority, d.Queue, d.Owner, d.Updated, d.Closed
	s.remember(c, d)
	return c, nil
}

// ---- threads and the idempotency record ----

type emailRow struct {
	ID        string `json:"activityid"`
	MessageID string `json:"messageid"`
	Data      string `json:"emailcrm_data"`
	Regarding string `json:"_regardingobjectid_value"`
	Created   string `json:"createdon"`
	Subject   string `json:"subject"`
	Body      string `json:"description"`
	Tracking  string `json:"trackingtoken"`
}

const emailSelect = "activityid,messageid,emailcrm_data,_regardingobjectid_value,createdon"

func (r *emailRow) data() emailData {
	var d emailData
	_ = json.Unmarshal([]byte(r.Data), &d)
	return d
}

// caseOf returns the case an email was filed on ("" for none).
func (r *emailRow) caseOf() driver.CaseID {
	d := r.data()
	if strings.HasPrefix(d.Case, "key:") {
		return driver.CaseID(strings.ToLower(r.Regarding))
	}
	return driver.CaseID(d.Case)
}

// LookupThread implements driver.CaseStore: emails?$filter=messageid eq
// '<id>' or ..., the case of the first filing of the last ID that has one.
func (s *Store) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	if err := ctx.Err(); err != nil {
		return driver.Case{}, err
	}
	if len(ids) == 0 {
		return driver.Case{}, errNotFound("thread")
	}
	if len(ids) > 50 {
		ids = ids[len(ids)-50:]
	}
	var conds []string
	for _, id := range ids {
		conds = append(conds, "messageid eq "+Quote("<"+id+">"))
	}
	var out struct {
		Value []emailRow `json:"value"`
	}
	if err := s.c.getJSON(ctx, query("emails", "$select", emailSelect, "$filter", strings.Join(conds, " or ")), &out); err != nil {
		return driver.Case{}, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		var best *emailRow
		var bestAt time.Time
		for j := range out.Value {
			r := &out.Value[j]
			if strings.Trim(r.MessageID, "<>") != ids[i] || r.caseOf() == "" {
				continue
			}
			at := r.data().At
			if best == nil || at.Before(bestAt) {
				best, bestAt = r, at
			}
		}
		if best != nil {
			return s.GetCase(ctx, best.caseOf())
		}
	}
	return driver.Case{}, errNotFound("thread")
}

// RecordInteraction implements driver.CaseStore: an email activity
// regarding the contact (or account), keyed like every filed mail; a key
// filed before makes Dataverse refuse it (412), which is a no-op.
func (s *Store) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ed := emailData{Kind: string(in.Kind), Contact: in.ContactID, Account: in.AccountID, At: s.cfg.Now().UTC(), Note: in.Note}
	nav, reg := "", ""
	switch {
	case in.ContactID != "" && validGUID(in.ContactID):
		nav, reg = "regardingobjectid_contact_email", "/contacts("+in.ContactID+")"
	case in.AccountID != "" && validGUID(in.AccountID):
		nav, reg = "regardingobjectid_account_email", "/accounts("+in.AccountID+")"
	}
	email := s.fitUploads(in.Email)
	eb, extra := s.emailBody(email, nav, reg, &ed)
	atts, err := s.attachmentParts(email, extra, "$1")
	if err != nil {
		return err
	}
	if len(atts) == 0 {
		_, err = s.c.call(ctx, &request{method: http.MethodPost, path: "emails", body: eb})
		if errorCode(err) == driver.AlreadyExists {
			return nil
		}
		return err
	}
	batch := append([]part{{method: http.MethodPost, path: "emails", body: eb}}, atts...)
	resps, failed, err := s.c.batch(ctx, batch)
	if err != nil {
		return err
	}
	if failed >= 0 || len(resps) == 1 && len(batch) > 1 {
		ae := resps[0].apiError("$batch POST emails")
		if errorCode(ae) == driver.AlreadyExists && (failed == 0 || failed < 0 && ae.Code == codeDuplicateKey) {
			return nil
		}
		return ae
	}
	return nil
}

// LookupProcessed implements driver.CaseStore: the email with alternate
// key emailcrm_key = SHA-256 of the key.
func (s *Store) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	var r emailRow
	if err := s.c.getJSON(ctx, keyPath("emails", keyHash(key))+"?$select="+emailSelect, &r); err != nil {
		return driver.Processed{}, err
	}
	d := r.data()
	k := dec64(d.Key)
	if k != key {
		return driver.Processed{}, errNotFound("idempotency key")
	}
	return driver.Processed{Key: k, CaseID: r.caseOf(), At: d.At, Fingerprint: d.Email.Fingerprint}, nil
}
