package threading

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emailcrm/emailcrm/mailcase"
)

// OutgoingRequest describes an outgoing mail about a case.
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
// values are valid UTF-8 and never contain CR, LF or other control
// characters (C0, DEL, C1, U+2028, U+2029). Each fits RFC 5322's 998-byte
// line: Message-IDs written are at most 250 bytes (others are left out),
// References is a space-separated list that folds between IDs, the title
// is at most 200 runes and 600 bytes, and Thread-Index at most 896
// characters.
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
	// carrying the signed context ID, "" when the case number
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
		// Every ID placed in a header passes validHeaderID: no control
		// character, no space, no bracket, at most maxHeaderID bytes.
		parentID := headerID(p.ID)
		if !p.IDDerived && parentID != "" {
			h.InReplyTo = "<" + parentID + ">"
		}
		refs := make([]string, 0, len(p.References)+1)
		for _, r := range p.ThreadIDs() {
			if n := headerID(r); n != "" {
				refs = append(refs, n)
			}
		}
		if h.InReplyTo != "" {
			refs = append(refs, parentID)
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

// maxHeaderID is the longest Message-ID written in a header: with its
// brackets and the field name it fits well within RFC 5322's 998-byte
// line limit, and References (a space-separated list) folds between IDs.
const maxHeaderID = 250

// headerID normalises a Message-ID and returns it when it may be written
// in a header, else "".
func headerID(id string) string {
	n := mailcase.NormalizeMessageID(id)
	if n == "" || !validHeaderID(n) {
		return ""
	}
	return n
}

// validHeaderID reports whether a normalised Message-ID may be written in
// a header: valid UTF-8, at most maxHeaderID bytes, and no control
// character (C0, DEL, C1), line or paragraph separator, space, bracket or
// comma.
func validHeaderID(id string) bool {
	if id == "" || len(id) > maxHeaderID || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029' ||
			r == '<' || r == '>' || r == ',' || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// Title bounds: the title is clipped to maxTitleInput runes before any
// marker is removed (so cleaning is cheap on any input), and the cleaned
// title to maxTitleRunes runes and maxTitleBytes bytes, so that a subject
// made of it, a case number and a token stays within the 998-byte line
// limit.
const (
	maxTitleInput = 1000
	maxTitleRunes = 200
	maxTitleBytes = 600
)

// clipRunes returns s cut to at most n runes and maxBytes bytes, on a rune
// boundary.
func clipRunes(s string, n, maxBytes int) string {
	count := 0
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		if count == n || i+size > maxBytes {
			return s[:i]
		}
		i += size
		count++
	}
	return s
}

// removeTokens removes every [ref:...] token (prefix matched without
// regard to letter case) in one pass: it behaves like repeatedly removing
// the leftmost "[ref:" through the next ']', including tokens formed by a
// removal ("[re[ref:x]f:y]"), in time linear in len(s). The cut points are
// ASCII bytes, so valid UTF-8 stays valid.
func removeTokens(s string) string {
	if !containsFold(s, "[ref:") {
		return s
	}
	out := make([]byte, 0, len(s))
	open := -1 // offset in out of the leftmost unclosed "[ref:"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ']' && open >= 0 {
			out = out[:open]
			open = -1
			// A removal may join a '[' before with "ref:" after.
			if o := tokenStart(out); o >= 0 {
				open = o
			}
			continue
		}
		out = append(out, c)
		if open < 0 {
			if o := tokenStart(out); o >= 0 {
				open = o
			}
		}
	}
	return string(out)
}

// tokenStart returns the offset of "[ref:" when b ends with it (any
// letter case), else -1.
func tokenStart(b []byte) int {
	const pat = "[ref:"
	if len(b) < len(pat) {
		return -1
	}
	o := len(b) - len(pat)
	for k := 0; k < len(pat); k++ {
		if lowerByte(b[o+k]) != pat[k] {
			return -1
		}
	}
	return o
}

func containsFold(s, pat string) bool {
	for i := 0; i+len(pat) <= len(s); i++ {
		if _, ok := matchLoose(s[:i+len(pat)], i, pat); ok {
			return true
		}
	}
	return false
}

// cleanTitle removes reply markers, case markers of the same case and our
// tokens from a title, and sanitises it. The result is valid UTF-8 without
// control characters, at most maxTitleRunes runes and maxTitleBytes bytes.
func cleanTitle(title, number string) string {
	title = SanitizeHeader(clipRunes(title, maxTitleInput, 4*maxTitleInput))
	title, _ = StripSubjectPrefixes(title)
	title = removeTokens(title)
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
	title = strings.Join(strings.Fields(title), " ")
	return strings.TrimSpace(clipRunes(title, maxTitleRunes, maxTitleBytes))
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
		if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
