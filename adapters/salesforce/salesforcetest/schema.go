package salesforcetest

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// fieldType is the small set of Salesforce field types the fake tells apart.
type fieldType int

const (
	typeID       fieldType = iota // the record's own Id
	typeString                    // text, text area, email, phone, url
	typePicklist                  // picklist; restricted ones refuse other values
	typeBool                      // checkbox; never null
	typeDateTime                  // dateTime, ISO 8601
	typeRef                       // lookup / master-detail: an Id
	typeNumber                    // int / double (read-only here)
	typeBase64                    // blob (ContentVersion.VersionData)
)

func (t fieldType) String() string {
	switch t {
	case typeID:
		return "id"
	case typeString:
		return "string"
	case typePicklist:
		return "picklist"
	case typeBool:
		return "boolean"
	case typeDateTime:
		return "datetime"
	case typeRef:
		return "reference"
	case typeNumber:
		return "double"
	case typeBase64:
		return "base64"
	}
	return fmt.Sprintf("fieldType(%d)", int(t))
}

// A field describes one column of an sObject.
type field struct {
	Name       string
	Type       fieldType
	MaxLen     int      // for strings: maximum length in UTF-16 code units, as Salesforce counts
	Required   bool     // nillable=false and not defaulted: REQUIRED_FIELD_MISSING when absent
	ReadOnly   bool     // neither createable nor updateable
	NoUpdate   bool     // createable, not updateable
	ExternalID bool     // usable in sobjects/{Object}/{Field}/{value}
	Unique     bool     // case-insensitive unique
	RefTo      []string // for typeRef: allowed target objects; empty means any
	Values     []string // picklist values
	Restricted bool     // restricted picklist
	Default    any      // value on create when absent
	NoFilter   bool     // long text areas and blobs cannot be used in WHERE / ORDER BY
	Cascade    bool     // for typeRef: deleting the target deletes this record
}

// An object describes one sObject type.
type object struct {
	Name   string
	Prefix string // the 3-character key prefix of its Ids
	fields map[string]*field
	order  []string
}

func (o *object) field(name string) *field { return o.fields[strings.ToLower(name)] }

func (o *object) add(f *field) {
	key := strings.ToLower(f.Name)
	if _, ok := o.fields[key]; !ok {
		o.order = append(o.order, f.Name)
	}
	o.fields[key] = f
}

// builtinSchema returns a fresh copy of the built-in objects, keyed by
// lower-case name. Lengths and required-ness follow the standard objects.
func builtinSchema() map[string]*object {
	objs := map[string]*object{}
	def := func(name, prefix string, hasOwner bool, fs ...*field) {
		o := &object{Name: name, Prefix: prefix, fields: map[string]*field{}}
		o.add(&field{Name: "Id", Type: typeID, ReadOnly: true})
		for _, f := range fs {
			o.add(f)
		}
		if hasOwner {
			o.add(&field{Name: "OwnerId", Type: typeRef, RefTo: []string{"User", "Group"}})
		}
		o.add(&field{Name: "IsDeleted", Type: typeBool, ReadOnly: true, Default: false})
		o.add(&field{Name: "CreatedDate", Type: typeDateTime, ReadOnly: true})
		o.add(&field{Name: "CreatedById", Type: typeRef, RefTo: []string{"User"}, ReadOnly: true})
		o.add(&field{Name: "LastModifiedDate", Type: typeDateTime, ReadOnly: true})
		o.add(&field{Name: "LastModifiedById", Type: typeRef, RefTo: []string{"User"}, ReadOnly: true})
		o.add(&field{Name: "SystemModstamp", Type: typeDateTime, ReadOnly: true})
		objs[strings.ToLower(name)] = o
	}
	str := func(name string, n int) *field { return &field{Name: name, Type: typeString, MaxLen: n} }
	long := func(name string, n int) *field {
		return &field{Name: name, Type: typeString, MaxLen: n, NoFilter: true}
	}
	req := func(f *field) *field { f.Required = true; return f }
	ref := func(name string, to ...string) *field { return &field{Name: name, Type: typeRef, RefTo: to} }
	boolean := func(name string, d bool) *field { return &field{Name: name, Type: typeBool, Default: d} }
	ro := func(f *field) *field { f.ReadOnly = true; return f }
	noUpd := func(f *field) *field { f.NoUpdate = true; return f }
	cascade := func(f *field) *field { f.Cascade = true; return f }
	extID := func(name string, n int) *field {
		return &field{Name: name, Type: typeString, MaxLen: n, ExternalID: true, Unique: true}
	}
	pick := func(name string, restricted bool, d any, vals ...string) *field {
		return &field{Name: name, Type: typePicklist, MaxLen: 255, Values: vals, Restricted: restricted, Default: d}
	}
	dt := func(name string) *field { return &field{Name: name, Type: typeDateTime} }

	def("Case", "500", true,
		ro(str("CaseNumber", 30)),
		str("Subject", 255),
		long("Description", 32000),
		pick("Origin", false, nil, "Email", "Phone", "Web"),
		pick("Priority", false, "Medium", "High", "Medium", "Low"),
		pick("Status", true, "New", "New", "Working", "Escalated", "Waiting on Customer", "Closed"),
		ref("ContactId", "Contact"),
		ref("AccountId", "Account"),
		str("SuppliedEmail", 80),
		str("SuppliedName", 80),
		str("SuppliedPhone", 40),
		str("SuppliedCompany", 80),
		ro(&field{Name: "IsClosed", Type: typeBool, Default: false}),
		ro(dt("ClosedDate")),
		extID("EmailcrmKey__c", 80),
	)
	def("EmailMessage", "02s", false,
		req(noUpd(cascade(ref("ParentId", "Case")))),
		boolean("Incoming", false),
		long("Headers", 32000),
		long("HtmlBody", 131072),
		long("TextBody", 131072),
		str("Subject", 3000),
		str("FromAddress", 255),
		str("FromName", 1000),
		str("ToAddress", 4000),
		str("CcAddress", 4000),
		str("BccAddress", 4000),
		dt("MessageDate"),
		pick("Status", true, "0", "0", "1", "2", "3", "4", "5"),
		str("MessageIdentifier", 255),
		str("ThreadIdentifier", 255),
		str("ClientThreadIdentifier", 255),
		ref("ReplyToEmailMessageId", "EmailMessage"),
		ro(&field{Name: "HasAttachment", Type: typeBool, Default: false}),
		extID("EmailcrmKey__c", 80),
	)
	def("Contact", "003", true,
		str("FirstName", 40),
		req(str("LastName", 80)),
		ro(str("Name", 121)),
		str("Email", 80),
		str("Phone", 40),
		ref("AccountId", "Account"),
	)
	def("Account", "001", true,
		req(str("Name", 255)),
		str("Website", 255),
		str("Phone", 40),
		str("Domain__c", 255),
	)
	def("User", "005", false,
		req(&field{Name: "Username", Type: typeString, MaxLen: 80, Unique: true}),
		str("Email", 128),
		str("FirstName", 40),
		req(str("LastName", 80)),
		ro(str("Name", 121)),
		boolean("IsActive", true),
	)
	def("Group", "00G", true,
		req(str("Name", 40)),
		str("DeveloperName", 80),
		pick("Type", true, "Regular", "Regular", "Queue", "Role", "Organization"),
		str("Email", 255),
	)
	def("CaseComment", "00a", false,
		req(noUpd(cascade(ref("ParentId", "Case")))),
		long("CommentBody", 4000),
		boolean("IsPublished", false),
	)
	def("ContentVersion", "068", true,
		req(str("Title", 255)),
		req(noUpd(str("PathOnClient", 500))),
		req(noUpd(&field{Name: "VersionData", Type: typeBase64, NoFilter: true})),
		long("Description", 1000),
		noUpd(ref("FirstPublishLocationId")),
		noUpd(cascade(ref("ContentDocumentId", "ContentDocument"))),
		ro(&field{Name: "ContentSize", Type: typeNumber}),
		ro(str("FileExtension", 40)),
		ro(str("Checksum", 50)),
		ro(&field{Name: "IsLatest", Type: typeBool, Default: true}),
	)
	def("ContentDocument", "069", true,
		str("Title", 255),
		ro(ref("LatestPublishedVersionId", "ContentVersion")),
		ro(str("FileExtension", 40)),
		ro(&field{Name: "ContentSize", Type: typeNumber}),
	)
	def("ContentDocumentLink", "06A", false,
		req(noUpd(cascade(ref("LinkedEntityId")))),
		req(noUpd(cascade(ref("ContentDocumentId", "ContentDocument")))),
		pick("ShareType", true, "V", "V", "C", "I"),
		pick("Visibility", true, "AllUsers", "AllUsers", "InternalUsers", "SharedUsers"),
	)
	return objs
}

// idChars is the alphabet of the 3-character case-safety suffix of 18-character Ids.
const idChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

// idSuffix computes the case-safety suffix Salesforce appends to a 15-character Id.
func idSuffix(id15 string) string {
	var b [3]byte
	for i := 0; i < 3; i++ {
		flags := 0
		for j := 0; j < 5; j++ {
			c := id15[i*5+j]
			if c >= 'A' && c <= 'Z' {
				flags |= 1 << j
			}
		}
		b[i] = idChars[flags]
	}
	return string(b[:])
}

// normID returns the canonical 18-character form of a 15- or 18-character Id,
// or ok == false if s does not look like a Salesforce Id.
func normID(s string) (string, bool) {
	if len(s) != 15 && len(s) != 18 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", false
		}
	}
	if len(s) == 18 {
		// Restore the case of the first 15 characters from the suffix, so
		// that an 18-character Id matches case-insensitively as it does in
		// Salesforce.
		b := []byte(s[:15])
		for i := 0; i < 3; i++ {
			flags := strings.IndexByte(idChars, upper(s[15+i]))
			if flags < 0 {
				return "", false
			}
			for j := 0; j < 5; j++ {
				c := b[i*5+j]
				if flags&(1<<j) != 0 && c >= 'a' && c <= 'z' {
					b[i*5+j] = c - 'a' + 'A'
				} else if flags&(1<<j) == 0 && c >= 'A' && c <= 'Z' {
					b[i*5+j] = c - 'A' + 'a'
				}
			}
		}
		s = string(b)
	}
	return s[:15] + idSuffix(s[:15]), true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// makeID builds an 18-character Id from a key prefix and a sequence number.
func makeID(prefix string, seq int) string {
	var b [9]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = base62[seq%62]
		seq /= 62
	}
	id15 := prefix + "Dn0" + string(b[:])
	return id15 + idSuffix(id15)
}

// sfLen is the length of s as Salesforce counts it (UTF-16 code units).
func sfLen(s string) int {
	n := 0
	for _, r := range s {
		n += len(utf16.Encode([]rune{r}))
	}
	return n
}
