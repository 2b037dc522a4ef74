package dynamicstest

import (
	"sort"
	"strings"
	"unicode/utf16"
)

type attrType int

const (
	tString attrType = iota + 1
	tMemo
	tInt
	tOption
	tBool
	tDateTime
	tBase64
	tState
	tStatus
)

func (t attrType) edm() string {
	switch t {
	case tInt, tOption, tState, tStatus:
		return "Edm.Int32"
	case tBool:
		return "Edm.Boolean"
	case tDateTime:
		return "Edm.DateTimeOffset"
	default:
		return "Edm.String"
	}
}

// An attr is one column of an entity.
type attr struct {
	name     string
	typ      attrType
	maxLen   int          // tString, tMemo: in UTF-16 code units, as .NET counts
	options  map[int]bool // tOption
	required bool
	readOnly bool // silently ignored in payloads, as Dataverse does for invalid-for-create columns
}

// A nav is a single-valued navigation property bound with @odata.bind.
type nav struct {
	name    string
	targets []string // entity sets it may point to
	lookup  string   // lookup attribute, stored as _<lookup>_value
}

// A collNav is a collection-valued navigation property: deep insert and
// POST {set}(id)/{name}.
type collNav struct {
	name     string
	childSet string
	childNav string // the child's single-valued nav that points back
}

// An entity describes one table.
type entity struct {
	logical  string
	set      string
	idAttr   string
	attrs    map[string]*attr
	navs     map[string]*nav
	colls    map[string]*collNav
	altKeys  []string
	states   map[int][]int // statecode -> statuscodes; first is the default
	required []string      // required lookups (lookup names)
	noCreate bool
}

func (e *entity) lookupAttr(name string) bool {
	for _, n := range e.navs {
		if "_"+n.lookup+"_value" == name {
			return true
		}
	}
	return false
}

// column reports the Edm kind of a readable column: an attribute, the
// primary id or a lookup value.
func (e *entity) column(name string) (attrType, bool) {
	if name == e.idAttr || e.lookupAttr(name) {
		return 0, true // Edm.Guid
	}
	if a, ok := e.attrs[name]; ok {
		return a.typ, true
	}
	if name == "versionnumber" {
		return tInt, true
	}
	return 0, false
}

func (e *entity) columns() []string {
	cols := []string{e.idAttr}
	for n := range e.attrs {
		cols = append(cols, n)
	}
	seen := map[string]bool{}
	for _, n := range e.navs {
		l := "_" + n.lookup + "_value"
		if !seen[l] {
			seen[l] = true
			cols = append(cols, l)
		}
	}
	sort.Strings(cols[1:])
	return cols
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

type schemaBuilder struct{ e *entity }

func newEntity(logical, set, idAttr string) schemaBuilder {
	return schemaBuilder{&entity{
		logical: logical, set: set, idAttr: idAttr,
		attrs: map[string]*attr{}, navs: map[string]*nav{}, colls: map[string]*collNav{},
	}}
}

func (b schemaBuilder) str(name string, maxLen int) schemaBuilder {
	b.e.attrs[name] = &attr{name: name, typ: tString, maxLen: maxLen}
	return b
}

func (b schemaBuilder) memo(name string, maxLen int) schemaBuilder {
	b.e.attrs[name] = &attr{name: name, typ: tMemo, maxLen: maxLen}
	return b
}

func (b schemaBuilder) typed(name string, t attrType) schemaBuilder {
	b.e.attrs[name] = &attr{name: name, typ: t}
	return b
}

func (b schemaBuilder) option(name string, vals ...int) schemaBuilder {
	m := map[int]bool{}
	for _, v := range vals {
		m[v] = true
	}
	b.e.attrs[name] = &attr{name: name, typ: tOption, options: m}
	return b
}

func (b schemaBuilder) req(names ...string) schemaBuilder {
	for _, n := range names {
		if a, ok := b.e.attrs[n]; ok {
			a.required = true
		} else {
			b.e.required = append(b.e.required, n)
		}
	}
	return b
}

func (b schemaBuilder) ro(names ...string) schemaBuilder {
	for _, n := range names {
		b.e.attrs[n].readOnly = true
	}
	return b
}

func (b schemaBuilder) nav(name, lookup string, targets ...string) schemaBuilder {
	b.e.navs[name] = &nav{name: name, targets: targets, lookup: lookup}
	return b
}

func (b schemaBuilder) coll(name, childSet, childNav string) schemaBuilder {
	b.e.colls[name] = &collNav{name: name, childSet: childSet, childNav: childNav}
	return b
}

func (b schemaBuilder) states(m map[int][]int) schemaBuilder {
	b.e.states = m
	b.e.attrs["statecode"] = &attr{name: "statecode", typ: tState}
	b.e.attrs["statuscode"] = &attr{name: "statuscode", typ: tStatus}
	return b
}

func (b schemaBuilder) altKey(name string, maxLen int) schemaBuilder {
	b.str(name, maxLen)
	b.e.altKeys = append(b.e.altKeys, name)
	return b
}

func (b schemaBuilder) stamps() schemaBuilder {
	b.typed("createdon", tDateTime).typed("modifiedon", tDateTime).ro("createdon", "modifiedon")
	return b
}

func (b schemaBuilder) owned() schemaBuilder {
	return b.nav("ownerid", "ownerid", "systemusers", "teams")
}

// builtinSchema returns the tables the fake knows, keyed by entity set name.
func builtinSchema() map[string]*entity {
	list := []*entity{
		newEntity("incident", "incidents", "incidentid").
			str("title", 200).memo("description", 2000).str("ticketnumber", 100).ro("ticketnumber").
			option("caseorigincode", 1, 2, 3).option("prioritycode", 1, 2, 3).
			states(map[int][]int{0: {1, 2, 3, 4}, 1: {5}, 2: {6}}).
			altKey("emailcrm_key", 100).stamps().
			nav("customerid_contact", "customerid", "contacts").
			nav("customerid_account", "customerid", "accounts").
			nav("primarycontactid", "primarycontactid", "contacts").
			owned().
			coll("Incident_Emails", "emails", "regardingobjectid_incident_email").
			coll("Incident_Annotation", "annotations", "objectid_incident").
			coll("Incident_IncidentResolutions", "incidentresolutions", "incidentid").
			req("title", "customerid").e,
		newEntity("contact", "contacts", "contactid").
			str("firstname", 50).str("lastname", 50).str("fullname", 160).ro("fullname").
			str("emailaddress1", 100).str("emailaddress2", 100).str("emailaddress3", 100).
			str("telephone1", 50).
			states(map[int][]int{0: {1}, 1: {2}}).stamps().
			nav("parentcustomerid_account", "parentcustomerid", "accounts").
			nav("parentcustomerid_contact", "parentcustomerid", "contacts").
			owned().req("lastname").e,
		newEntity("account", "accounts", "accountid").
			str("name", 160).str("websiteurl", 200).str("emailaddress1", 100).str("telephone1", 50).
			states(map[int][]int{0: {1}, 1: {2}}).stamps().owned().req("name").e,
		newEntity("systemuser", "systemusers", "systemuserid").
			str("fullname", 200).str("internalemailaddress", 100).str("domainname", 1024).
			typed("isdisabled", tBool).stamps().e,
		newEntity("team", "teams", "teamid").str("name", 160).stamps().req("name").e,
		newEntity("queue", "queues", "queueid").
			str("name", 400).str("emailaddress", 100).
			states(map[int][]int{0: {1}, 1: {2}}).stamps().owned().req("name").e,
		newEntity("queueitem", "queueitems", "queueitemid").
			str("title", 300).str("objecttypecode", 100).
			states(map[int][]int{0: {1}, 1: {2}}).stamps().
			nav("queueid", "queueid", "queues").
			nav("objectid_incident", "objectid", "incidents").
			nav("objectid_email", "objectid", "emails").
			req("queueid", "objectid").e,
		newEntity("email", "emails", "activityid").
			str("subject", 800).memo("description", 1048576).typed("directioncode", tBool).
			str("messageid", 320).str("inreplyto", 320).str("trackingtoken", 50).
			str("sender", 250).memo("torecipients", 500).
			typed("actualend", tDateTime).
			states(map[int][]int{0: {1, 8}, 1: {2, 3, 4, 6, 7}, 2: {5}}).
			altKey("emailcrm_key", 100).stamps().
			nav("regardingobjectid_incident_email", "regardingobjectid", "incidents").
			nav("regardingobjectid_contact_email", "regardingobjectid", "contacts").
			nav("regardingobjectid_account_email", "regardingobjectid", "accounts").
			owned().
			coll("email_activity_parties", "activityparties", "activityid_email").
			coll("email_activity_mime_attachment", "activitymimeattachments", "objectid_activitypointer").e,
		newEntity("activityparty", "activityparties", "activitypartyid").
			option("participationtypemask", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11).
			str("addressused", 320).
			nav("activityid_email", "activityid", "emails").
			nav("partyid_contact", "partyid", "contacts").
			nav("partyid_account", "partyid", "accounts").
			nav("partyid_systemuser", "partyid", "systemusers").
			nav("partyid_queue", "partyid", "queues").
			req("participationtypemask").e,
		newEntity("activitymimeattachment", "activitymimeattachments", "activitymimeattachmentid").
			str("filename", 255).str("mimetype", 256).typed("body", tBase64).
			str("attachmentcontentid", 500).str("subject", 2000).
			typed("filesize", tInt).ro("filesize").str("objecttypecode", 100).
			nav("objectid_activitypointer", "objectid", "emails").
			req("objectid").e,
		newEntity("annotation", "annotations", "annotationid").
			str("subject", 500).memo("notetext", 100000).str("filename", 255).
			typed("documentbody", tBase64).str("mimetype", 256).typed("isdocument", tBool).
			typed("filesize", tInt).ro("filesize").str("objecttypecode", 100).stamps().
			nav("objectid_incident", "objectid", "incidents").
			nav("objectid_contact", "objectid", "contacts").
			nav("objectid_account", "objectid", "accounts").
			nav("objectid_email", "objectid", "emails").
			owned().e,
		newEntity("incidentresolution", "incidentresolutions", "activityid").
			str("subject", 200).memo("description", 2000).typed("timespent", tInt).
			states(map[int][]int{0: {1}, 1: {2}, 2: {3}}).stamps().
			nav("incidentid", "incidentid", "incidents").owned().
			req("incidentid").e,
	}
	m := map[string]*entity{}
	for _, e := range list {
		m[e.set] = e
	}
	m["activityparties"].noCreate = true // only through an activity's deep insert
	return m
}

func (s *Server) entityByLogical(name string) *entity {
	for _, e := range s.schema {
		if e.logical == strings.ToLower(name) {
			return e
		}
	}
	return nil
}
