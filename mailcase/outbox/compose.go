// Package outbox composes, queues and delivers the mail the SDK sends
// about cases: acknowledgements, Log Email, confirmations, forwards and
// notifications.
//
// Compose turns a Message into RFC 5322 bytes; a Store with a driver.Outbox
// queues them durably (mailcase.Store.Enqueue); a Deliverer sends what is
// due through a Transport (adapters/smtpsender) with retries, and Bounces
// closes the loop when a sent message bounces. Acknowledger answers new
// cases, within per-address limits, never to automatic mail.
package outbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"github.com/emailcrm/emailcrm/threading"
)

// Message is an outgoing mail before composition.
type Message struct {
	// From is the author and envelope sender; Name may be any UTF-8.
	From mail.Address
	// ReplyTo, To, Cc and Bcc are the recipients' addresses. Bcc is never
	// written in the header: its addresses are only envelope recipients.
	ReplyTo, To, Cc, Bcc []mail.Address
	Subject              string
	// Date is written as the Date field; zero means ComposeOptions.Now.
	Date time.Time
	// MessageID is "<id@domain>"; "" makes Compose generate one at the
	// domain of From.
	MessageID string
	// InReplyTo and References are lists of "<id@domain>" separated by
	// spaces (the threading package formats them).
	InReplyTo, References string
	// Headers are extra fields, in order (Auto-Submitted, Precedence,
	// Thread-Index, the loop header...). A field Compose writes itself
	// (From, To, Subject, Message-ID, MIME-Version, Content-*...) is refused.
	Headers []Field
	// Text is the text/plain body and HTML the text/html one; both given
	// make a multipart/alternative.
	Text, HTML  string
	Attachments []Attachment
}

// Field is one header field.
type Field struct{ Name, Value string }

// Attachment is a file sent with a message.
type Attachment struct {
	// Filename is any UTF-8 (written with RFC 2231 encoding when it is not
	// ASCII); a path is reduced to its last element, and a name longer
	// than 120 bytes is shortened, its extension kept.
	Filename string
	// ContentType is the media type; "" means sniffed from Data. A text
	// type's charset other than UTF-8 or US-ASCII is left out (the bytes
	// are kept as they are).
	ContentType string
	// ContentID, when set, makes the attachment an inline part that the
	// HTML body refers to as cid:ContentID (it then sits with the HTML in
	// a multipart/related).
	ContentID string
	// Data is the content; an attachment without data is refused.
	Data []byte
}

// ComposeOptions configures Compose; nil means defaults.
type ComposeOptions struct {
	// Now is the clock of the Date field; nil means time.Now.
	Now func() time.Time
	// MaxRecipients bounds To, Cc and Bcc together (after removing
	// repeats); 0 means 1000.
	MaxRecipients int
	// MaxSize bounds the composed message in bytes; 0 means 25 MiB.
	MaxSize int
}

// Composed is a composed message and its envelope.
type Composed struct {
	Raw []byte
	// MessageID is the Message-ID written, with angle brackets.
	MessageID string
	// From is the envelope sender (From's address) and Recipients the
	// envelope recipients: To, Cc and Bcc, each once (compared without
	// regard to case), in order.
	From       string
	Recipients []string
	// NeedsSMTPUTF8 is true when an envelope address is not ASCII (an
	// internationalised domain or local part): the server must offer
	// SMTPUTF8.
	NeedsSMTPUTF8 bool
}

// Compose errors, matched with errors.Is.
var (
	ErrInvalidAddress    = errors.New("outbox: invalid address")
	ErrNoRecipients      = errors.New("outbox: no recipients")
	ErrTooManyRecipients = errors.New("outbox: too many recipients")
	ErrTooLarge          = errors.New("outbox: message too large")
	ErrInvalidHeader     = errors.New("outbox: invalid header field")
	ErrMissingAttachment = errors.New("outbox: attachment without data")
)

// ownFields are the fields Compose writes; Message.Headers cannot set them.
var ownFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true, "subject": true,
	"date": true, "message-id": true, "in-reply-to": true, "references": true, "mime-version": true,
	"content-type": true, "content-transfer-encoding": true, "content-disposition": true, "content-id": true,
}

var msgIDRe = regexp.MustCompile(`^<[!-;=?-~]+@[!-;=?-Z^-~]+>$`)

// Compose writes m as a MIME message. Every value that comes from input is
// made safe for a header: CR, LF and every other control character (C0,
// DEL, C1), U+2028 and U+2029 become spaces, invalid UTF-8 becomes U+FFFD,
// runs of spaces become one; names and the subject are written as RFC 2047
// encoded words when not ASCII, attachment file names with RFC 2231; lines
// are folded under 998 bytes. An address is refused (ErrInvalidAddress)
// rather than repaired, and so is a Message-ID or an ID list that is not
// made of "<id@domain>" (ErrInvalidHeader): a changed address or ID would
// send or thread the mail wrongly. Compose writes nothing anywhere: an
// error leaves nothing half-done.
func Compose(m *Message, opts *ComposeOptions) (*Composed, error) {
	var o ComposeOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 1000
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 25 << 20
	}
	if m == nil {
		return nil, ErrNoRecipients
	}
	from, err := checkAddress("From", 0, m.From)
	if err != nil {
		return nil, err
	}
	out := &Composed{From: from.Address}
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{from})
	seen := map[string]bool{}
	lists := []struct {
		name  string
		addrs []mail.Address
	}{{"Reply-To", m.ReplyTo}, {"To", m.To}, {"Cc", m.Cc}, {"Bcc", m.Bcc}}
	for _, l := range lists {
		var as []*gomail.Address
		for i, a := range l.addrs {
			ca, err := checkAddress(l.name, i, a)
			if err != nil {
				return nil, err
			}
			as = append(as, ca)
			if l.name == "Reply-To" {
				continue
			}
			if k := strings.ToLower(ca.Address); !seen[k] {
				seen[k] = true
				out.Recipients = append(out.Recipients, ca.Address)
			}
		}
		if l.name != "Bcc" {
			h.SetAddressList(l.name, as)
		}
	}
	switch {
	case len(out.Recipients) == 0:
		return nil, ErrNoRecipients
	case len(out.Recipients) > o.MaxRecipients:
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooManyRecipients, len(out.Recipients), o.MaxRecipients)
	}
	for _, a := range append([]string{out.From}, out.Recipients...) {
		if !isASCII(a) {
			out.NeedsSMTPUTF8 = true
		}
	}
	h.SetSubject(headerText(m.Subject))
	date := m.Date
	if date.IsZero() {
		date = o.Now()
	}
	h.SetDate(date)
	id := m.MessageID
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = "<" + hex.EncodeToString(b[:]) + "@" + domainOf(out.From) + ">"
	}
	if !msgIDRe.MatchString(id) || len(id) > 250 {
		return nil, fmt.Errorf("%w: Message-ID %q", ErrInvalidHeader, clipValue(id))
	}
	out.MessageID = id
	h.Set("Message-Id", id)
	for _, f := range []Field{{"In-Reply-To", m.InReplyTo}, {"References", m.References}} {
		ids := strings.Fields(f.Value)
		for _, x := range ids {
			if !msgIDRe.MatchString(x) || len(x) > 250 {
				return nil, fmt.Errorf("%w: %s holds %q, not an <id@domain>", ErrInvalidHeader, f.Name, clipValue(x))
			}
		}
		if len(ids) > 0 {
			h.Set(f.Name, strings.Join(ids, " "))
		}
	}
	for i, f := range m.Headers {
		if !validFieldName(f.Name) {
			return nil, fmt.Errorf("%w: Headers[%d]: name %q", ErrInvalidHeader, i, clipValue(f.Name))
		}
		if ownFields[strings.ToLower(f.Name)] {
			return nil, fmt.Errorf("%w: Headers[%d]: %s is written by Compose", ErrInvalidHeader, i, f.Name)
		}
		h.Add(f.Name, encodeText(headerText(f.Value)))
	}
	h.Set("MIME-Version", "1.0")

	var inline, files []Attachment
	for i, a := range m.Attachments {
		if len(a.Data) == 0 {
			return nil, fmt.Errorf("%w: attachment %d (%s)", ErrMissingAttachment, i, clipValue(headerText(a.Filename)))
		}
		if a.ContentID != "" {
			if m.HTML == "" {
				return nil, fmt.Errorf("%w: attachment %d is inline (Content-ID) but the message has no HTML body", ErrInvalidHeader, i)
			}
			inline = append(inline, a)
		} else {
			files = append(files, a)
		}
	}
	var buf bytes.Buffer
	if err := writeBody(&buf, h.Header, m, inline, files); err != nil {
		return nil, fmt.Errorf("outbox: compose: %w", err)
	}
	if buf.Len() > o.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, buf.Len(), o.MaxSize)
	}
	out.Raw = buf.Bytes()
	return out, nil
}

// writeBody writes the header h and the MIME tree of m.
func writeBody(buf *bytes.Buffer, h message.Header, m *Message, inline, files []Attachment) error {
	if len(files) > 0 {
		h.Set("Content-Type", "multipart/mixed")
		w, err := message.CreateWriter(buf, h)
		if err != nil {
			return err
		}
		if err := writeAlternative(w, m, inline); err != nil {
			return err
		}
		for _, a := range files {
			if err := writeAttachment(w, a, "attachment"); err != nil {
				return err
			}
		}
		return w.Close()
	}
	return writeAlternativeAt(buf, h, m, inline)
}

// writeAlternative writes the body (text, HTML and inline parts) as a part
// of w.
func writeAlternative(w *message.Writer, m *Message, inline []Attachment) error {
	var h message.Header
	pw, err := createPart(w, &h, m, inline)
	if err != nil {
		return err
	}
	return fillAlternative(pw, m, inline)
}

// writeAlternativeAt writes the body as the whole message with header h.
func writeAlternativeAt(buf *bytes.Buffer, h message.Header, m *Message, inline []Attachment) error {
	setBodyType(&h, m, inline)
	w, err := message.CreateWriter(buf, h)
	if err != nil {
		return err
	}
	if err := fillAlternative(w, m, inline); err != nil {
		return err
	}
	return w.Close()
}

func createPart(w *message.Writer, h *message.Header, m *Message, inline []Attachment) (*message.Writer, error) {
	setBodyType(h, m, inline)
	return w.CreatePart(*h)
}

// setBodyType sets the Content-Type (and encoding of a single text part)
// of the body.
func setBodyType(h *message.Header, m *Message, inline []Attachment) {
	switch {
	case m.HTML != "" && m.Text != "":
		h.Set("Content-Type", "multipart/alternative")
	case m.HTML != "" && len(inline) > 0:
		h.Set("Content-Type", "multipart/related")
	case m.HTML != "":
		h.SetContentType("text/html", map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
	default:
		h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
	}
}

// fillAlternative writes the content of a body created by setBodyType.
func fillAlternative(w *message.Writer, m *Message, inline []Attachment) error {
	switch {
	case m.HTML != "" && m.Text != "":
		if err := writeTextPart(w, "text/plain", m.Text); err != nil {
			return err
		}
		if len(inline) == 0 {
			if err := writeTextPart(w, "text/html", m.HTML); err != nil {
				return err
			}
			return w.Close()
		}
		var rh message.Header
		rh.Set("Content-Type", "multipart/related")
		rw, err := w.CreatePart(rh)
		if err != nil {
			return err
		}
		if err := fillRelated(rw, m.HTML, inline); err != nil {
			return err
		}
		return w.Close()
	case m.HTML != "" && len(inline) > 0:
		return fillRelated(w, m.HTML, inline)
	case m.HTML != "":
		_, err := w.Write([]byte(crlf(m.HTML)))
		return err
	default:
		_, err := w.Write([]byte(crlf(m.Text)))
		return err
	}
}

func fillRelated(w *message.Writer, html string, inline []Attachment) error {
	if err := writeTextPart(w, "text/html", html); err != nil {
		return err
	}
	for _, a := range inline {
		if err := writeAttachment(w, a, "inline"); err != nil {
			return err
		}
	}
	return w.Close()
}

func writeTextPart(w *message.Writer, typ, body string) error {
	var h message.Header
	h.SetContentType(typ, map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write([]byte(crlf(body))); err != nil {
		return err
	}
	return pw.Close()
}

func writeAttachment(w *message.Writer, a Attachment, disposition string) error {
	name := headerText(a.Filename)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = clipFilename(name)
	typ := headerText(a.ContentType)
	mt, params, err := mime.ParseMediaType(typ)
	if typ == "" || err != nil || strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		mt, params = sniff(a.Data), nil
	}
	// Only a charset parameter is kept (the file name is written in
	// Content-Disposition), and only UTF-8 or US-ASCII: go-message writes
	// text parts in those alone; other bytes are kept as they are.
	kept := map[string]string{}
	if cs := strings.ToLower(params["charset"]); cs == "utf-8" || cs == "us-ascii" {
		kept["charset"] = cs
	}
	params = kept
	var h message.Header
	h.SetContentType(mt, params)
	h.Set("Content-Transfer-Encoding", "base64")
	// mime.FormatMediaType writes a non-ASCII name with RFC 2231
	// (filename*=utf-8''...), which every current client reads.
	dp := map[string]string{}
	if name != "" {
		dp["filename"] = name
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, dp))
	if a.ContentID != "" {
		cid := headerText(a.ContentID)
		if !msgIDRe.MatchString("<" + strings.Trim(cid, "<>") + ">") {
			return fmt.Errorf("%w: Content-ID %q", ErrInvalidHeader, clipValue(cid))
		}
		h.Set("Content-Id", "<"+strings.Trim(cid, "<>")+">")
	}
	pw, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write(a.Data); err != nil {
		return err
	}
	return pw.Close()
}

func sniff(data []byte) string {
	mt, _, err := mime.ParseMediaType(http.DetectContentType(data))
	if err != nil || strings.HasPrefix(mt, "text/") {
		return "application/octet-stream"
	}
	return mt
}

// checkAddress validates one address: its address part must parse as an
// addr-spec (a quoted local part is kept), with no control character; its
// name is made safe.
func checkAddress(field string, i int, a mail.Address) (*gomail.Address, error) {
	where := field
	if field != "From" {
		where = fmt.Sprintf("%s[%d]", field, i)
	}
	if strings.IndexFunc(a.Address, unsafeRune) >= 0 || !utf8.ValidString(a.Address) {
		return nil, fmt.Errorf("%w: %s: control character or invalid UTF-8", ErrInvalidAddress, where)
	}
	p, err := mail.ParseAddress(strings.TrimSpace(a.Address))
	if err != nil || p.Name != "" || !strings.Contains(p.Address, "@") {
		return nil, fmt.Errorf("%w: %s: %q", ErrInvalidAddress, where, clipValue(a.Address))
	}
	// net/mail unquotes the local part; its String quotes it again where
	// needed ("john doe"@example.com), which is the form SMTP needs too.
	spec := strings.TrimSuffix(strings.TrimPrefix((&mail.Address{Address: p.Address}).String(), "<"), ">")
	return &gomail.Address{Name: headerText(a.Name), Address: spec}, nil
}

// unsafeRune reports the characters never allowed in a header value.
func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029'
}

// headerText makes s a safe one-line header value (the threading
// package's sanitiser, which its own outgoing fields use).
func headerText(s string) string { return threading.SanitizeHeader(s) }

// encodeText encodes a free-text value as RFC 2047 words when not ASCII.
func encodeText(s string) string {
	if isASCII(s) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

func validFieldName(n string) bool {
	if n == "" || len(n) > 64 { // go-message's folding cannot place a longer name
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func domainOf(addr string) string {
	d := addr[strings.LastIndexByte(addr, '@')+1:]
	if d == "" || !isASCII(d) || strings.ContainsAny(d, "<>[] ") {
		return "localhost"
	}
	return d
}

// crlf normalises line ends of a body to CRLF.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func clipValue(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 80 {
		for n := 80; n > 0; n-- {
			if utf8.RuneStart(s[n]) {
				return s[:n] + "..."
			}
		}
	}
	return s
}

// clipFilename shortens a file name to at most 120 bytes, keeping its
// extension: the RFC 2231 form of a longer name could need more than a
// line, and go-message would fold it inside a percent escape.
func clipFilename(name string) string {
	const max = 120
	if len(name) <= max {
		return name
	}
	ext := ""
	if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
		ext = name[i:]
		name = name[:i]
	}
	n := max - len(ext)
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return name[:n] + ext
}
