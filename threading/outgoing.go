package threading

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emailcrm/emailcrm/mailcase"
)

// OutgoingRequest describes an outgoing mail about a case (M-7.4).
type OutgoingRequest struct {
	// Case is the case the mail is about (ID and Number are used).
	Case mailcase.Case
	// Title is the subject's title; "" means Case.Subject.
	Title string
	// Parent is the mail being answered; nil starts a new conversation.
	Parent *mailcase.Message
	// Format writes the case number in the subject; the zero value means
	// FormatDovetail() ("About Case 1234 :: title").
	Format SubjectFormat
	// SubjectToken also puts the signed token in the subject.
	SubjectToken bool
}

// OutgoingHeaders are the threading fields of an outgoing mail. Header
// values never contain CR, LF or other control characters.
type OutgoingHeaders struct {
	// MessageID is the signed Message-ID, with angle brackets.
	MessageID string
	// InReplyTo and References are "" for a new conversation.
	InReplyTo  string
	References string
	Subject    string
	// ThreadIndex and ThreadTopic are Microsoft's conversation fields.
	ThreadIndex string
	ThreadTopic string
	// Token is the signed thread token; ContextLine is the body line
	// carrying the signed context ID (M-4.2), "" when the case number
	// cannot be encoded. Put both in the body's footer.
	Token       string
	ContextLine string
}

// maxReferences is how many Message-IDs an outgoing References keeps: the
// first and the most recent ones (RFC 5322 3.6.4 allows trimming).
const maxReferences = 20

// Outgoing returns the threading fields of an outgoing mail.
func (c *Codec) Outgoing(req *OutgoingRequest) (OutgoingHeaders, error) {
	var h OutgoingHeaders
	if req == nil || req.Case.ID == "" {
		return h, fmt.Errorf("threading: outgoing mail needs a case")
	}
	id, err := c.MessageID(req.Case.ID)
	if err != nil {
		return h, err
	}
	h.MessageID = "<" + id + ">"
	if h.Token, err = c.Token(req.Case.ID); err != nil {
		return h, err
	}
	if validNumber(req.Case.Number) {
		ctx, _ := c.ContextID(req.Case.Number)
		h.ContextLine = "Case reference: " + ctx
	}
	title := req.Title
	if title == "" {
		title = req.Case.Subject
	}
	title = cleanTitle(title, req.Case.Number)
	h.ThreadTopic = title
	h.Subject = formatSubject(req.Format, req.Case.Number, title)
	if req.SubjectToken {
		h.Subject += " " + h.Token
	}
	parentTI := ""
	if p := req.Parent; p != nil {
		if !p.IDDerived && mailcase.NormalizeMessageID(p.ID) != "" {
			h.InReplyTo = "<" + mailcase.NormalizeMessageID(p.ID) + ">"
		}
		refs := make([]string, 0, len(p.References)+1)
		for _, r := range p.ThreadIDs() {
			if n := mailcase.NormalizeMessageID(r); n != "" && validHeaderID(n) {
				refs = append(refs, n)
			}
		}
		if h.InReplyTo != "" {
			refs = append(refs, mailcase.NormalizeMessageID(p.ID))
		}
		if len(refs) > maxReferences {
			refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
		}
		if len(refs) > 0 {
			h.References = "<" + strings.Join(refs, "> <") + ">"
		}
		h.Subject = "Re: " + h.Subject
		if p.Header != nil {
			parentTI = p.Header.Get("Thread-Index")
		}
	}
	h.Subject = SanitizeHeader(h.Subject)
	h.ThreadIndex = c.ThreadIndex(req.Case.ID, parentTI)
	return h, nil
}

func validHeaderID(id string) bool {
	if len(id) > 250 || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == ',' {
			return false
		}
	}
	return true
}

// cleanTitle removes reply markers, case markers of the same case and our
// tokens from a title, and sanitises it.
func cleanTitle(title, number string) string {
	title = SanitizeHeader(title)
	title, _ = StripSubjectPrefixes(title)
	// Remove tokens: [ref:...].
	for {
		i := strings.Index(strings.ToLower(title), "[ref:")
		if i < 0 {
			break
		}
		j := strings.IndexByte(title[i:], ']')
		if j < 0 {
			break
		}
		title = title[:i] + title[i+j+1:]
	}
	if number != "" {
		for _, n := range FindSubjectNumbers(title, DefaultSubjectFormats()) {
			if strings.TrimLeft(n.Number, "0") != strings.TrimLeft(number, "0") {
				continue
			}
			title = removeMarker(title, n)
			break
		}
	}
	title = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(title), "::"))
	title, _ = StripSubjectPrefixes(title)
	if utf8.RuneCountInString(title) > 200 {
		r := []rune(title)
		title = string(r[:200])
	}
	return strings.Join(strings.Fields(title), " ")
}

// removeMarker removes a found case marker (prefix, number and suffix).
func removeMarker(title string, n SubjectNumber) string {
	for _, f := range DefaultSubjectFormats() {
		if f.Name != n.Format {
			continue
		}
		e, ok := matchLoose(title, n.Offset, f.Prefix)
		if !ok {
			return title
		}
		e += len(n.Number)
		if f.Suffix != "" {
			if e2, ok := matchLoose(title, e, f.Suffix); ok {
				e = e2
			}
		}
		return title[:n.Offset] + " " + title[e:]
	}
	return title
}

func formatSubject(f SubjectFormat, number, title string) string {
	if f.Prefix == "" {
		f = FormatDovetail()
	}
	if !validNumber(number) {
		return title
	}
	if f.Write == "" {
		s := f.Prefix + number + f.Suffix
		if title != "" {
			s += " " + title
		}
		return s
	}
	s := strings.ReplaceAll(f.Write, "%s", number)
	s = strings.ReplaceAll(s, "%t", title)
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "::"))
}

// SanitizeHeader makes s safe as a one-line header value: CR, LF and other
// control characters become spaces, runs of space are collapsed and
// invalid UTF-8 is replaced.
func SanitizeHeader(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return ' '
		}
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
