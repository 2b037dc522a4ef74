package mailcase

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// ParseOptions configures ParseMessage. A nil *ParseOptions is equivalent to
// a zero value.
type ParseOptions struct{}

// ParseMessage parses a raw mail. It returns a hard error (ErrUnparseable)
// only when nothing usable can be built; soft problems are recorded in
// Message.Problems. The returned Message keeps raw in Raw.
func ParseMessage(raw []byte, opts *ParseOptions) (*Message, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &Error{Code: InvalidArgument, Op: "parse", Err: ErrUnparseable}
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return nil, &Error{Code: InvalidArgument, Op: "parse", Err: err}
	}
	m := &Message{Raw: raw, Size: int64(len(raw)), Header: Header{}}
	for _, k := range env.GetHeaderKeys() {
		m.Header[k] = env.GetHeaderValues(k)
	}
	m.ID = NormalizeMessageID(env.GetHeader("Message-Id"))
	if m.ID == "" {
		m.ID = DerivedMessageID(raw)
		m.IDDerived = true
	}
	m.Subject = env.GetHeader("Subject")
	if a, err := mail.ParseAddress(env.GetHeader("From")); err == nil {
		m.From = Address{Name: a.Name, Email: NormalizeAddress(a.Address)}
	}
	if l, err := env.AddressList("To"); err == nil {
		for _, a := range l {
			m.To = append(m.To, Address{Name: a.Name, Email: NormalizeAddress(a.Address)})
		}
	}
	if l, err := env.AddressList("Cc"); err == nil {
		for _, a := range l {
			m.Cc = append(m.Cc, Address{Name: a.Name, Email: NormalizeAddress(a.Address)})
		}
	}
	if d, err := env.Date(); err == nil {
		m.Date = d
	}
	m.InReplyTo = ParseMessageIDList(env.Root.Header.Get("In-Reply-To"))
	m.References = ParseMessageIDList(env.Root.Header.Get("References"))
	if rp, ok := env.Root.Header["Return-Path"]; ok && len(rp) > 0 {
		m.HasReturnPath = true
		m.ReturnPath = NormalizeAddress(rp[0])
	}
	m.Text = env.Text
	m.HTML = env.HTML
	if strings.TrimSpace(m.Text) == "" && m.HTML != "" {
		m.TextFromHTML = true
	}
	m.ReplyText = m.Text
	for _, p := range append(append(env.Attachments, env.Inlines...), env.OtherParts...) {
		m.Attachments = append(m.Attachments, Attachment{
			Filename: p.FileName, ContentType: p.ContentType, ContentID: p.ContentID,
			Inline: p.Disposition == "inline", Size: int64(len(p.Content)), Data: p.Content,
		})
	}
	for _, e := range env.Errors {
		m.Problems = append(m.Problems, Problem{Name: e.Name, Detail: e.Detail, Severe: e.Severe})
	}
	return m, nil
}

// DerivedMessageID returns the stable Message-ID given to a mail that has
// none: a SHA-256 of its bytes, so the same bytes always get the same ID.
func DerivedMessageID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]) + "@derived.emailcrm.invalid"
}
