package xmlapi

import "encoding/xml"

// Namespace is the XML namespace of version 1 of the structured API.
const Namespace = "urn:emailcrm:mailcase:v1"

// Request is a structured request carried by a mail.
type Request struct {
	XMLName xml.Name `xml:"urn:emailcrm:mailcase:v1 request"`
	Version string   `xml:"version,attr"`
	// Webform selects a registered webform handler; "" runs the
	// actions directly.
	Webform string `xml:"webform,attr,omitempty"`
	// Secret is the shared secret proving the sender may run actions.
	Secret string `xml:"secret,omitempty"`
	// Timestamp (RFC 3339) and Nonce are required with Secret: the
	// document is accepted only within the handler's replay window of its
	// timestamp, and a nonce is accepted once (see HandlerOptions).
	Timestamp string `xml:"timestamp,omitempty"`
	Nonce     string `xml:"nonce,omitempty"`
	// Fields are webform fields (name/value pairs) for webform handlers.
	Fields []Field `xml:"field,omitempty"`
	// Reply asks for an automated reply from a template.
	Reply *ReplyElement `xml:"urn:emailcrm:mailcase:v1 reply,omitempty"`
	// Actions run in document order.
	Actions []Action `xml:",any"`
}

// ReplyElement is a request's reply element: the template of the
// automated reply, its variables, and the recipient ("" means the
// sender):
//
//	<reply template="monitoring-ack" to="noc@example.com"><var name="alert">A-77</var></reply>
type ReplyElement struct {
	Template string  `xml:"template,attr"`
	To       string  `xml:"to,attr,omitempty"`
	Vars     []Field `xml:"var"`
}

// Field is one webform field.
type Field struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

// Action is one API action. Its element name (XMLName.Local) says which;
// the attributes used depend on it (see the package documentation).
type Action struct {
	XMLName  xml.Name
	Case     string `xml:"case,attr,omitempty"`
	Contact  string `xml:"contact,attr,omitempty"`
	Email    string `xml:"email,attr,omitempty"`
	Name     string `xml:"name,attr,omitempty"`
	Status   string `xml:"status,attr,omitempty"`
	Priority string `xml:"priority,attr,omitempty"`
	Queue    string `xml:"queue,attr,omitempty"`
	Owner    string `xml:"owner,attr,omitempty"`
	Public   bool   `xml:"public,attr,omitempty"`
	Subject  string `xml:"subject,omitempty"`
	Body     string `xml:"body,omitempty"`
	// RecordAttrs holds what the record actions use (see records.go).
	RecordAttrs
}

// Action names.
const (
	ActCreateContact = "createContact"
	ActCreateCase    = "createCase"
	ActAddNote       = "addNote"
	ActSetStatus     = "setStatus"
	ActSetPriority   = "setPriority"
	ActDispatch      = "dispatch"
	ActAssign        = "assign"
	ActClose         = "close"
)
