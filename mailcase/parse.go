package mailcase

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emailcrm/emailcrm/internal/charset"
	"github.com/emailcrm/emailcrm/internal/htmltext"
	"github.com/emailcrm/emailcrm/internal/mimetree"
)

// Default parse limits; see ParseOptions.
const (
	DefaultMaxHeaderBytes = 1 << 20
	DefaultMaxDepth       = 32
	DefaultMaxParts       = 1000
)

// ParseOptions configures ParseMessage. A nil *ParseOptions is equivalent to
// a zero value; every zero field means its default.
//
// The limits protect against hostile mail: they bound the memory and time
// one mail can take, whatever its content.
type ParseOptions struct {
	// MaxHeaderBytes bounds one header section (the top-level header or a
	// MIME part's header, folded lines included, so also any single header
	// line). A mail with a larger header section fails with ErrUnparseable
	// (code InvalidArgument); the scan stops at the limit, so a 100 MB
	// header line costs no more than the limit. 0 means
	// DefaultMaxHeaderBytes (1 MiB).
	MaxHeaderBytes int
	// MaxDepth bounds the nesting of multipart entities. A multipart nested
	// deeper is not split: it is kept whole as one attachment and a Problem
	// ("Nesting Too Deep") is recorded. 0 means DefaultMaxDepth (32).
	MaxDepth int
	// MaxParts bounds the number of MIME parts split out of a mail. The
	// rest of an entity that would exceed it stays in its last part and a
	// Problem ("Too Many Parts") is recorded. 0 means DefaultMaxParts (1000).
	MaxParts int
}

func (o *ParseOptions) withDefaults() ParseOptions {
	var r ParseOptions
	if o != nil {
		r = *o
	}
	if r.MaxHeaderBytes <= 0 {
		r.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if r.MaxDepth <= 0 {
		r.MaxDepth = DefaultMaxDepth
	}
	if r.MaxParts <= 0 {
		r.MaxParts = DefaultMaxParts
	}
	return r
}

// Problem names recorded by ParseMessage (Problem.Name). Structural problems
// found by enmime on broken mail use enmime's names ("Malformed Header",
// "Missing Boundary", ...).
const (
	ProblemMalformedHeader  = "Malformed Header"
	ProblemMissingBoundary  = "Missing Boundary"
	ProblemMalformedBase64  = "Malformed Base64"
	ProblemMalformedQP      = "Malformed Quoted-Printable"
	ProblemContentEncoding  = "Content Encoding"
	ProblemCharset          = "Character Set Conversion"
	ProblemCharsetDetected  = "Character Set Detected"
	ProblemMalformedAddress = "Malformed Address"
	ProblemMalformedDate    = "Malformed Date"
	ProblemMissingMessageID = "Missing Message-ID"
	ProblemMissingFrom      = "Missing From"
	ProblemNestingTooDeep   = "Nesting Too Deep"
	ProblemTooManyParts     = "Too Many Parts"
	ProblemParserPanic      = "Parser Failure"
	// ProblemFieldTruncated: a header field's unfolded value was longer
	// than MaxFieldBytes and was cut there.
	ProblemFieldTruncated = "Header Field Truncated"
	// ProblemTooManyFields: a header section had more than MaxHeaderFields
	// fields; the first ones are kept.
	ProblemTooManyFields = "Too Many Header Fields"
	// ProblemMissingSeparator: a header section ended at a line that is
	// neither a header field nor a continuation line, without the blank
	// line that should separate it from the body; that line and the rest
	// were read as the body, as tolerant readers do.
	ProblemMissingSeparator = "Missing Header Separator"
	// ProblemBareCR: the mail's lines end in a bare CR (old Mac line
	// endings); they were read as line breaks.
	ProblemBareCR = "Bare CR Line Endings"
)

// Limits on one header section that are not configurable: they bound the
// work done on each value downstream (decoding, address parsing, matching)
// whatever MaxHeaderBytes allows. Real mail stays far below them (a long
// References field of 1,000 Message-IDs is about 60 KB).
const (
	// MaxFieldBytes bounds one header field's unfolded value.
	MaxFieldBytes = 128 << 10
	// MaxHeaderFields bounds the number of fields kept from one header
	// section.
	MaxHeaderFields = 10_000
)

// ParseMessage parses a raw mail.
//
// Header sections are read as tolerant readers do: a line that is neither a
// header field nor a continuation line ends the header section even without
// the blank line the standard requires, and that line starts the body (the
// Problem "Missing Header Separator" is recorded); at the top of the mail,
// such lines before the first field are skipped (mbox "From " lines, junk).
// A mail whose first line ends in a bare CR is read with bare CRs as line
// breaks (Problem "Bare CR Line Endings"); Raw stays as received.
//
// It returns a hard error, an *Error with code InvalidArgument wrapping
// ErrUnparseable, only when nothing usable can be built: an empty mail, a
// mail without any header field (binary garbage), or a header section over
// ParseOptions.MaxHeaderBytes. Every other defect (broken MIME structure,
// bad base64 or quoted-printable, unknown charsets, malformed addresses or
// dates) is tolerated and recorded in Message.Problems; the readable body is
// kept. The returned Message keeps raw in Raw; raw is never modified, and
// Attachment.Data of parts that needed no decoding shares memory with raw
// (with a capped capacity), so it must not be modified either.
//
// Decoded header values (Message.Header, Subject, display names, file
// names) are single-line: control characters, including an encoded CR LF,
// DEL, C1 controls and U+2028/U+2029, are replaced by spaces, so they can
// be written into an outgoing header or a log line as they are. The raw
// header stays in Raw.
//
// Well-formed mail is parsed by a zero-copy MIME splitter over raw. Mail
// whose structure is broken (up to 4 MiB) is re-parsed by enmime, which is
// more tolerant, and enmime's soft errors become Problems; larger broken
// mail keeps the splitter's own tolerant reading, with Problems recorded
// too. Transfer decoding, charset conversion and body selection are shared
// by both paths, so a mail gives the same Message whichever path read it.
// Charsets are detected only for text parts that declare none (or an
// unknown one) and are not valid UTF-8.
//
// ParseMessage is safe for concurrent use.
func ParseMessage(raw []byte, opts *ParseOptions) (*Message, error) {
	return parseMessage(raw, opts.withDefaults(), false)
}

func parseMessage(raw []byte, o ParseOptions, forceEnmime bool) (*Message, error) {
	root, problems, err := mimetree.Read(raw, mimetree.Limits{MaxHeaderBytes: o.MaxHeaderBytes, MaxDepth: o.MaxDepth, MaxParts: o.MaxParts}, forceEnmime)
	if err != nil {
		return nil, &Error{Code: InvalidArgument, Op: "parse", Err: fmt.Errorf("%w: %w", err, ErrUnparseable)}
	}
	b := &builder{m: &Message{Raw: raw, Size: int64(len(raw))}}
	b.dec = &mime.WordDecoder{CharsetReader: b.charsetReader}
	for _, p := range problems {
		b.m.Problems = append(b.m.Problems, Problem{Name: p.Name, Detail: p.Detail, Severe: p.Severe})
	}
	b.header(root)
	c := b.walk(root)
	m := b.m
	m.Text = strings.Join(c.texts, "\n")
	m.HTML = strings.Join(c.htmls, "\n")
	if strings.TrimSpace(m.Text) == "" && m.HTML != "" {
		m.Text = htmltext.Plain(m.HTML)
		m.TextFromHTML = true
	}
	m.ReplyText = m.Text
	m.Attachments = c.atts
	return m, nil
}

// DerivedMessageID returns the stable Message-ID given to a mail that has
// none: a SHA-256 of its bytes, so the same bytes always get the same ID.
func DerivedMessageID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]) + "@derived.emailcrm.invalid"
}

type builder struct {
	m   *Message
	dec *mime.WordDecoder
	// rootCharset is the charset declared by the top-level entity, used for
	// raw 8-bit header values.
	rootCharset string
}

func (b *builder) problem(name, detail string) {
	b.m.Problems = append(b.m.Problems, Problem{Name: name, Detail: detail})
}

func (b *builder) charsetReader(cs string, r io.Reader) (io.Reader, error) {
	enc := charset.Lookup(cs)
	if enc == nil {
		return nil, fmt.Errorf("unknown charset %q", cs)
	}
	return enc.NewDecoder().Reader(r), nil
}

// decodeHeader decodes RFC 2047 encoded words and raw 8-bit text. The result
// is for single-line use: control characters, encoded or raw, become spaces
// (singleLine).
func (b *builder) decodeHeader(v string) string {
	if strings.Contains(v, "=?") {
		if d, err := b.dec.DecodeHeader(v); err == nil {
			v = d
		} else {
			b.problem(ProblemCharset, "header: "+err.Error())
		}
	}
	if !utf8.ValidString(v) {
		enc, detected := charset.HeaderEncoding([]byte(v), b.rootCharset)
		if detected {
			b.problem(ProblemCharsetDetected, fmt.Sprintf("raw 8-bit header read as %s, not as the declared %q", charset.Name(enc), clipName(b.rootCharset)))
		}
		if d, err := enc.NewDecoder().String(v); err == nil {
			v = d
		}
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return singleLine(v)
}

func (b *builder) header(root *mimetree.Entity) {
	m := b.m
	_, params := mimetree.ParseMediaType(root.Get("Content-Type"))
	b.rootCharset = params["charset"]
	m.Header = make(Header, len(root.Fields))
	for _, f := range root.Fields {
		m.Header[f.Name] = append(m.Header[f.Name], b.decodeHeader(f.Value))
	}
	m.ID = NormalizeMessageID(root.Get("Message-Id"))
	if m.ID == "" {
		m.ID = DerivedMessageID(m.Raw)
		m.IDDerived = true
		b.problem(ProblemMissingMessageID, "Message-ID derived from the mail's bytes")
	}
	m.Subject = strings.TrimSpace(b.decodeHeader(root.Get("Subject")))
	if l := b.addresses(root, "From"); len(l) > 0 {
		m.From = l[0]
	} else {
		b.problem(ProblemMissingFrom, "no usable From address")
	}
	if l := b.addresses(root, "Sender"); len(l) > 0 {
		m.Sender = l[0]
	}
	m.ReplyTo = b.addresses(root, "Reply-To")
	m.To = b.addresses(root, "To")
	m.Cc = b.addresses(root, "Cc")
	if v := root.Get("Date"); v != "" {
		if d, ok := parseDate(v); ok {
			m.Date = d
		} else {
			b.problem(ProblemMalformedDate, clip(v, 80))
		}
	}
	m.InReplyTo = ParseMessageIDList(root.Get("In-Reply-To"))
	m.References = ParseMessageIDList(root.Get("References"))
	if root.Has("Return-Path") {
		m.HasReturnPath = true
		m.ReturnPath = NormalizeAddress(root.Get("Return-Path"))
	}
}

// addresses parses every field of the given name, tolerantly.
func (b *builder) addresses(e *mimetree.Entity, name string) []Address {
	var out []Address
	for _, f := range e.Fields {
		if f.Name != name || strings.TrimSpace(f.Value) == "" {
			continue
		}
		if a, ok := simpleAddress(f.Value); ok {
			out = append(out, a)
			continue
		}
		p := mail.AddressParser{WordDecoder: b.dec}
		list, err := p.ParseList(f.Value)
		if err == nil {
			for _, a := range list {
				if email := NormalizeAddress(a.Address); email != "" {
					out = append(out, Address{Name: singleLine(strings.ToValidUTF8(a.Name, "\uFFFD")), Email: email})
				}
			}
			continue
		}
		b.problem(ProblemMalformedAddress, name+": "+err.Error())
		out = append(out, b.lenientAddresses(f.Value)...)
	}
	return out
}

// simpleAddress parses the most common single-address forms without
// net/mail: "local@domain" and "Display Name <local@domain>" where the name
// is plain ASCII words and the address plain dot-atoms. Anything else is
// left to net/mail.
func simpleAddress(v string) (Address, bool) {
	name, addr := "", v
	if l := strings.IndexByte(v, '<'); l >= 0 {
		if !strings.HasSuffix(v, ">") || strings.IndexByte(v[l+1:], '<') >= 0 {
			return Address{}, false
		}
		name, addr = strings.TrimSpace(v[:l]), v[l+1:len(v)-1]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '-' || c == '_' || c == '\'') {
			return Address{}, false
		}
	}
	at := strings.IndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || !dotAtom(addr[:at]) || !dotAtom(addr[at+1:]) {
		return Address{}, false
	}
	email := NormalizeAddress(addr)
	if email == "" {
		return Address{}, false
	}
	return Address{Name: strings.Join(strings.Fields(name), " "), Email: email}, true
}

// dotAtom reports whether s is a plain RFC 5322 dot-atom (letters, digits
// and the common specials; no leading, trailing or double dots).
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_+=", c) >= 0) {
			return false
		}
	}
	return true
}

// lenientAddresses extracts addresses from a list net/mail refused: it
// splits on commas outside quotes and angle brackets, and takes the <...>
// part or the first word with an @ of each item.
func (b *builder) lenientAddresses(v string) []Address {
	var out []Address
	var items []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted && depth > 0:
			depth--
		case (c == ',' || c == ';') && !quoted && depth == 0:
			items = append(items, v[start:i])
			start = i + 1
		}
	}
	items = append(items, v[start:])
	for _, it := range items {
		it = strings.TrimSpace(it)
		var email, name string
		if l := strings.LastIndexByte(it, '<'); l >= 0 {
			r := strings.IndexByte(it[l:], '>')
			if r < 0 {
				r = len(it) - l
			}
			email = repairAddrSpec(it[l+1 : l+r])
			name = strings.TrimSpace(it[:l])
		} else {
			words := strings.Fields(it)
			for k, w := range words {
				w = strings.Trim(w, "()\"'<>")
				if strings.IndexByte(w, '@') > 0 {
					email = w
					// "John Smith john@example.com": the words before
					// the address are the name.
					name = strings.Join(words[:k], " ")
					break
				}
			}
			if i := strings.IndexByte(it, '('); i >= 0 {
				if j := strings.LastIndexByte(it, ')'); j > i {
					name = it[i+1 : j]
				}
			}
		}
		email = NormalizeAddress(email)
		if email == "" {
			continue
		}
		name = strings.Trim(strings.TrimSpace(name), "\"'")
		name = strings.ReplaceAll(name, "\\\"", "\"")
		out = append(out, Address{Name: strings.TrimSpace(b.decodeHeader(name)), Email: email})
	}
	return out
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"Mon, 2 Jan 2006 15:04:05 -0700 MST",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon, Jan 2 2006 15:04:05 -0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02T15:04:05Z07:00",
	"Monday, January 2, 2006 3:04 PM",
	"2 Jan 2006 15:04:05",
	"Mon, 2 Jan 2006 15.04.05 -0700",
}

// parseDate parses a Date field tolerantly: net/mail first, then common
// defects (comments, missing or extra parts, odd layouts).
func parseDate(v string) (time.Time, bool) {
	// The common form first: net/mail tries many layouts and allocates an
	// error for each miss.
	if d, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", v); err == nil {
		return d, true
	}
	if d, err := mail.ParseDate(v); err == nil {
		return d, true
	}
	s := v
	for {
		i := strings.IndexByte(s, '(')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			s = s[:i]
			break
		}
		s = s[:i] + s[i+j+1:]
	}
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, ",", ", ")), " ")
	s = strings.ReplaceAll(s, " ,", ",")
	s = strings.TrimSuffix(strings.TrimSpace(s), ",")
	if d, err := mail.ParseDate(s); err == nil {
		return d, true
	}
	for _, l := range dateLayouts {
		if d, err := time.Parse(l, s); err == nil {
			return d, true
		}
	}
	// Drop a leading day name, which may be spelled out or misspelled.
	if f := strings.Fields(s); len(f) > 1 && strings.HasSuffix(f[0], ",") {
		rest := strings.Join(f[1:], " ")
		for _, l := range []string{"2 January 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700", "January 2 2006 15:04:05 -0700", "2 January 2006 15:04 -0700", "2 Jan 2006 15:04:05"} {
			if d, err := time.Parse(l, rest); err == nil {
				return d, true
			}
		}
		if d, err := mail.ParseDate(rest); err == nil {
			return d, true
		}
	}
	// Drop a trailing zone name after a numeric offset ("+0100 CET").
	if f := strings.Fields(s); len(f) > 1 {
		if d, err := mail.ParseDate(strings.Join(f[:len(f)-1], " ")); err == nil {
			return d, true
		}
	}
	return time.Time{}, false
}

// collected is what a subtree contributes to the Message.
type collected struct {
	texts, htmls []string
	atts         []Attachment
}

func (c *collected) add(o collected) {
	c.texts = append(c.texts, o.texts...)
	c.htmls = append(c.htmls, o.htmls...)
	c.atts = append(c.atts, o.atts...)
}

func (b *builder) walk(e *mimetree.Entity) collected {
	mt, params := mimetree.ParseMediaType(e.Get("Content-Type"))
	if mt == "" {
		mt = e.DefaultType
	}
	if e.Multipart {
		var c collected
		if mt == "multipart/alternative" {
			// Text from the first alternative that has text, HTML from the
			// last that has HTML (the richest); attachments from all.
			var textDone bool
			var htmls []string
			for _, ch := range e.Children {
				sub := b.walk(ch)
				if !textDone && len(sub.texts) > 0 {
					c.texts, textDone = sub.texts, true
				}
				if len(sub.htmls) > 0 {
					htmls = sub.htmls
				}
				c.atts = append(c.atts, sub.atts...)
			}
			c.htmls = htmls
			return c
		}
		for _, ch := range e.Children {
			c.add(b.walk(ch))
		}
		return c
	}
	disp, dparams := mimetree.ParseMediaType(e.Get("Content-Disposition"))
	filename := b.filename(e, params, dparams)
	if strings.HasPrefix(mt, "multipart/") && !e.Opaque {
		// A multipart that could not be split: read it as text.
		mt = "text/plain"
	}
	data, derr := mimetree.TransferDecode(e)
	if derr != "" {
		b.problem(derr, fmt.Sprintf("part %s", mt))
	}
	isBody := (mt == "text/plain" || mt == "text/html") && disp != "attachment" && filename == ""
	if isBody {
		s := charset.ToUTF8(data, params["charset"], mt, b.problem)
		if mt == "text/html" {
			return collected{htmls: []string{s}}
		}
		return collected{texts: []string{s}}
	}
	cid := NormalizeMessageID(e.Get("Content-Id"))
	if cid == "" {
		cid = strings.Trim(strings.TrimSpace(e.Get("Content-Id")), "<>")
	}
	inline := disp == "inline" || (disp == "" && cid != "" && !strings.HasPrefix(mt, "message/"))
	return collected{atts: []Attachment{{
		Filename:    filename,
		ContentType: mt,
		ContentID:   strings.ToValidUTF8(cid, ""),
		Inline:      inline,
		Size:        int64(len(data)),
		Data:        data,
	}}}
}

// filename returns an attachment's file name: Content-Disposition filename
// (RFC 2231 or encoded words), else Content-Type name.
func (b *builder) filename(e *mimetree.Entity, ctParams, dParams map[string]string) string {
	name := dParams["filename"]
	if name == "" {
		name = rfc2231Param(e.Get("Content-Disposition"), "filename", b)
	}
	if name == "" {
		name = ctParams["name"]
	}
	if name == "" {
		name = rfc2231Param(e.Get("Content-Type"), "name", b)
	}
	if name == "" {
		return ""
	}
	return safeFilename(b.decodeHeader(name))
}

// safeFilename reduces a sender's file name to a base name safe to store or
// write: control characters (C0, DEL, C1, U+2028, U+2029) are removed,
// trailing path separators and white space trimmed, and only the last
// element after a "/" or "\\" kept. A name left empty, "." or ".." gives
// "attachment"; an empty input gives "".
func safeFilename(name string) string {
	if name == "" {
		return ""
	}
	name = strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD"))
	name = strings.TrimRight(strings.TrimSpace(name), "/\\ ")
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		return "attachment"
	}
	return name
}

// isControl reports the characters that must not reach a single-line value:
// C0 controls, DEL, C1 controls (U+0085 NEL among them) and the Unicode
// line and paragraph separators.
func isControl(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029
}

// singleLine makes a decoded header value safe for single-line use: every
// control character (see isControl) becomes a space, so that an encoded
// CR LF cannot forge a header line when the value is written out again.
func singleLine(v string) string {
	if strings.IndexFunc(v, isControl) < 0 {
		return v
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, v)
}

// rfc2231Param extracts an RFC 2231 parameter with a charset mime does not
// decode (anything but UTF-8 and US-ASCII): name*=charset'lang'pct or
// continuations name*0*=...; name*1*=....
func rfc2231Param(header, name string, b *builder) string {
	lh := strings.ToLower(header)
	if !strings.Contains(lh, name+"*") {
		return ""
	}
	var parts []string
	var cs string
	for _, p := range strings.Split(header, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.Trim(strings.TrimSpace(v), "\"")
		if !strings.HasPrefix(k, name+"*") {
			continue
		}
		rest := strings.TrimPrefix(k, name+"*")
		encoded := strings.HasSuffix(rest, "*") || rest == ""
		idx := strings.TrimSuffix(rest, "*")
		n := 0
		if idx != "" {
			var err error
			if n, err = strconv.Atoi(idx); err != nil || n > 64 {
				continue
			}
		}
		if n == 0 && encoded {
			if c, after, ok := strings.Cut(v, "'"); ok {
				cs = c
				if _, after2, ok := strings.Cut(after, "'"); ok {
					v = after2
				}
			}
		}
		if encoded {
			if u, err := pctDecode(v); err == nil {
				v = u
			}
		}
		for len(parts) <= n {
			parts = append(parts, "")
		}
		parts[n] = v
	}
	s := strings.Join(parts, "")
	if s == "" {
		return ""
	}
	if cs != "" && !charset.IsUTF8(cs) {
		if enc := charset.Lookup(cs); enc != nil {
			if d, err := enc.NewDecoder().String(s); err == nil {
				s = d
			}
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func pctDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out), nil
}

// parseMediaType parses a Content-Type or Content-Disposition value
// tolerantly; the media type is lower-case, "" when absent or unusable.

// clip shortens s to n bytes (on a rune boundary) for problem details.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// repairAddrSpec makes the best-effort address of a broken addr-spec
// between angle brackets: white space around the "@" is dropped (the
// obsolete syntax allows it there), and so is white space inside the
// local part ("jo hn@example.com" is john@example.com: the store keeps no
// quoted local parts). The mail keeps its Malformed Address problem, so
// the repair is on record. Anything else is returned as it is.
func repairAddrSpec(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || NormalizeAddress(a) != "" {
		return a
	}
	local, domain := strings.TrimSpace(a[:at]), strings.TrimSpace(a[at+1:])
	if strings.ContainsAny(domain, " \t") || local == "" {
		return a
	}
	if !strings.ContainsAny(local, "\"\\") {
		local = strings.Join(strings.Fields(local), "")
	}
	return local + "@" + domain
}

// clipName shortens a declared charset name for a problem's detail.
func clipName(cs string) string {
	if len(cs) > 40 {
		cs = cs[:40]
	}
	return strings.ToValidUTF8(cs, "?")
}
