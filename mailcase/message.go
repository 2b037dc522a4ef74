package mailcase

import (
	"log/slog"
	"net/textproto"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Address is a mail address. Email is normalised by NormalizeAddress.
type Address = driver.Address

// Attachment is a file carried by a mail (including inline parts and
// forwarded message/rfc822 parts).
type Attachment = driver.Attachment

// Header holds a mail's header fields, keyed by canonical MIME header key.
type Header = textproto.MIMEHeader

// Problem is a soft problem found while parsing: the mail was still usable.
type Problem struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
	Severe bool   `json:"severe,omitempty"`
}

func (p Problem) String() string {
	if p.Detail == "" {
		return p.Name
	}
	return p.Name + ": " + p.Detail
}

// Message is a parsed inbound mail. A Message is not safe for concurrent
// mutation; the pipeline owns it while processing.
type Message struct {
	// ID is the normalised Message-ID (no angle brackets). When the mail has
	// none, ID is derived from a hash of the raw bytes and IDDerived is true,
	// so the same bytes always get the same ID.
	ID        string
	IDDerived bool

	From       Address
	Sender     Address // the Sender: field, if any
	ReplyTo    []Address
	To         []Address
	Cc         []Address
	ReturnPath string // without angle brackets; "" for <> or absent
	// HasReturnPath reports whether a Return-Path field was present (an
	// empty Return-Path, <>, marks bounces).
	HasReturnPath bool
	Subject       string
	Date          time.Time
	InReplyTo     []string // normalised Message-IDs
	References    []string // normalised Message-IDs, oldest first

	// Header holds all top-level header fields, decoded to UTF-8 where they
	// were RFC 2047 encoded.
	Header Header

	// Text is the plain-text body in UTF-8. When the mail has only HTML,
	// Text is derived from it (without style or script content) and
	// TextFromHTML is true.
	Text         string
	TextFromHTML bool
	// HTML is the HTML body in UTF-8, "" when there is none.
	HTML string
	// ReplyText is the new text of a reply with quoted history removed; it
	// equals Text until a reply extractor sets it (see Options.Extractor).
	ReplyText string

	Attachments []Attachment

	// Problems lists soft problems met while parsing.
	Problems []Problem

	// Size is the length of the raw mail in bytes.
	Size int64
	// Raw is the mail as received. The pipeline keeps it for quarantine and
	// filing; it is never modified.
	Raw []byte
}

// Warnings returns the problems as strings, for explain output.
func (m *Message) Warnings() []string {
	out := make([]string, 0, len(m.Problems))
	for _, p := range m.Problems {
		out = append(out, p.String())
	}
	return out
}

// Recipients returns To and Cc in order.
func (m *Message) Recipients() []Address {
	out := make([]Address, 0, len(m.To)+len(m.Cc))
	out = append(out, m.To...)
	return append(out, m.Cc...)
}

// ThreadIDs returns the Message-IDs this mail refers to, most specific last:
// References followed by In-Reply-To entries that References lacks.
func (m *Message) ThreadIDs() []string {
	out := make([]string, 0, len(m.References)+len(m.InReplyTo))
	seen := make(map[string]bool, len(m.References)+len(m.InReplyTo))
	for _, id := range m.References {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range m.InReplyTo {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// redactedAddress is a log value that hides the local part.
type redactedAddress string

// LogValue implements slog.LogValuer: j***@example.com.
func (a redactedAddress) LogValue() slog.Value {
	s := string(a)
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return slog.StringValue("***")
	}
	return slog.StringValue(s[:1] + "***" + s[at:])
}

// RedactAddress returns a slog value for addr that hides its local part.
func RedactAddress(addr string) slog.LogValuer { return redactedAddress(addr) }
