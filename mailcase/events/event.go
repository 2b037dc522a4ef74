package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Event kinds. The payload of each is documented in the package comment.
const (
	MailReceived      = "mail.received"
	CaseCreated       = "case.created"
	NoteAppended      = "note.appended"
	CaseRouted        = "case.routed"
	CaseAssigned      = "case.assigned"
	CaseAccepted      = "case.accepted"
	CaseStatusChanged = "case.status_changed"
	ReplyQueued       = "reply.queued"
	ReplySent         = "reply.sent"
	ReplyBounced      = "reply.bounced"
	SLAWarning        = "sla.warning"
	SLABreach         = "sla.breach"
)

// versions is the payload version of each documented kind.
var versions = map[string]int{
	MailReceived: 1, CaseCreated: 1, NoteAppended: 1, CaseRouted: 1, CaseAssigned: 1, CaseAccepted: 1,
	CaseStatusChanged: 1, ReplyQueued: 1, ReplySent: 1, ReplyBounced: 1, SLAWarning: 1, SLABreach: 1,
}

// Kinds returns the documented event kinds.
func Kinds() []string {
	return []string{MailReceived, CaseCreated, NoteAppended, CaseRouted, CaseAssigned, CaseAccepted,
		CaseStatusChanged, ReplyQueued, ReplySent, ReplyBounced, SLAWarning, SLABreach}
}

// Version returns the current payload version of kind: 1 for the
// documented kinds and for any other kind.
func Version(kind string) int {
	if v, ok := versions[kind]; ok {
		return v
	}
	return 1
}

// Event is one lifecycle event; its JSON form is the envelope documented
// in the package comment.
type Event struct {
	ID      string          `json:"id"`
	Seq     int64           `json:"seq,omitempty"`
	Kind    string          `json:"kind"`
	Version int             `json:"version"`
	CaseID  driver.CaseID   `json:"case_id,omitempty"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// FromRecord converts a record of the store's log.
func FromRecord(r *driver.EventRecord) Event {
	return Event{ID: r.ID, Seq: r.Seq, Kind: r.Kind, Version: r.Version, CaseID: r.CaseID, Time: r.Time.UTC(), Data: json.RawMessage(r.Data)}
}

// Body returns the envelope as JSON.
func (e *Event) Body() ([]byte, error) {
	if len(e.Data) == 0 {
		c := *e
		c.Data = json.RawMessage(`{}`)
		return json.Marshal(&c)
	}
	return json.Marshal(e)
}

// validKind reports whether kind is usable as an event kind (and as a NATS
// subject token): 1 to 64 bytes of lower-case letters, digits, '.', '_'
// and '-', not starting or ending with '.'.
func validKind(kind string) bool {
	if kind == "" || len(kind) > 64 || kind[0] == '.' || kind[len(kind)-1] == '.' || strings.Contains(kind, "..") {
		return false
	}
	for _, c := range kind {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// eventID derives the ID of an event whose payload names a mail or an
// outgoing message (see the package comment), or returns a random one.
func eventID(kind string, caseID driver.CaseID, data map[string]any) string {
	var natural []string
	if m, ok := data["message_id"]; ok {
		natural = append(natural, "m", fmt.Sprint(data["mailbox"]), fmt.Sprint(m), fmt.Sprint(data["mail_fingerprint"]))
	} else if o, ok := data["outbox_id"]; ok {
		natural = append(natural, "o", fmt.Sprint(o))
	}
	if natural == nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return "ev_" + hex.EncodeToString(b[:])
	}
	h := sha256.New()
	for _, p := range append([]string{kind, string(caseID)}, natural...) {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "ev_" + hex.EncodeToString(h.Sum(nil)[:16])
}
