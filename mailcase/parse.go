package mailcase

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
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

// enmimeMaxBytes bounds the mails re-read by enmime: enmime copies every
// part while reading, so a larger broken mail keeps the splitter's tolerant
// result instead, which holds peak memory under 3x the mail's size.
const enmimeMaxBytes = 4 << 20

var errHeaderTooLarge = errors.New("header section exceeds the limit")

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
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &Error{Code: InvalidArgument, Op: "parse", Err: fmt.Errorf("empty mail: %w", ErrUnparseable)}
	}
	// src is what is split: raw, or a copy with bare CR line breaks made LF.
	src := raw
	sp := &splitter{opts: o, topBody: -1}
	if bareCRLines(raw) {
		src = crToLF(raw)
		sp.problem(ProblemBareCR, "lines end in a bare CR; read as line breaks")
	}
	root, err := sp.entity(src, 0, "text/plain")
	if err != nil {
		return nil, &Error{Code: InvalidArgument, Op: "parse", Err: fmt.Errorf("%w: %w", err, ErrUnparseable)}
	}
	if len(root.fields) == 0 {
		return nil, &Error{Code: InvalidArgument, Op: "parse", Err: fmt.Errorf("no header fields: %w", ErrUnparseable)}
	}
	b := &builder{m: &Message{Raw: raw, Size: int64(len(raw))}}
	b.dec = &mime.WordDecoder{CharsetReader: b.charsetReader}
	if (sp.anomalies > 0 || forceEnmime) && enmimeSafe(src, o) {
		esrc := src
		if sp.topBody >= 0 {
			// Give enmime the header end the splitter found, so both
			// paths keep the same body.
			esrc = make([]byte, 0, len(src)+1)
			esrc = append(append(append(esrc, src[:sp.topBody]...), '\n'), src[sp.topBody:]...)
		}
		if eroot, problems := readWithEnmime(esrc); eroot != nil {
			root = eroot
			b.m.Problems = append(b.m.Problems, problems...)
			// Keep what the splitter saw that enmime tolerated silently.
			for _, p := range sp.problems {
				if !hasProblem(problems, p.Name) {
					b.m.Problems = append(b.m.Problems, p)
				}
			}
		} else {
			b.m.Problems = append(b.m.Problems, sp.problems...)
			b.m.Problems = append(b.m.Problems, problems...)
		}
	} else {
		b.m.Problems = append(b.m.Problems, sp.problems...)
	}
	b.header(root)
	c := b.walk(root)
	m := b.m
	m.Text = strings.Join(c.texts, "\n")
	m.HTML = strings.Join(c.htmls, "\n")
	if strings.TrimSpace(m.Text) == "" && m.HTML != "" {
		m.Text = HTMLToText(m.HTML)
		m.TextFromHTML = true
	}
	m.ReplyText = m.Text
	m.Attachments = c.atts
	return m, nil
}

func hasProblem(ps []Problem, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// DerivedMessageID returns the stable Message-ID given to a mail that has
// none: a SHA-256 of its bytes, so the same bytes always get the same ID.
func DerivedMessageID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]) + "@derived.emailcrm.invalid"
}

// ---------------------------------------------------------------------------
// MIME structure

// entity is one node of the MIME tree, produced by either the splitter or
// the enmime fallback.
type entity struct {
	fields   []field // header fields in order, values unfolded, undecoded
	body     []byte  // transfer-encoded body (leaves only)
	children []*entity
	// multipart is true for a split multipart container.
	multipart bool
	// defaultType is the Content-Type to assume when the part has none.
	defaultType string
	// opaque marks a multipart kept whole (nesting or part limit).
	opaque bool
}

type field struct{ name, value string }

// get returns the first value of a header field (name in canonical form).
func (e *entity) get(name string) string {
	for _, f := range e.fields {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

func (e *entity) has(name string) bool {
	for _, f := range e.fields {
		if f.name == name {
			return true
		}
	}
	return false
}

// splitter is the fast MIME splitter over the raw bytes. It never copies
// bodies: entity.body slices raw. It counts structural anomalies, which make
// ParseMessage re-read the mail with enmime.
type splitter struct {
	opts      ParseOptions
	parts     int
	anomalies int
	problems  []Problem
	// topBody is the offset of the top-level body when the top-level
	// header ended without a blank line (ProblemMissingSeparator), else -1.
	topBody int
}

// bareCRLines reports whether raw's first line ends in a bare CR (no LF
// follows): an old Mac mail, with no LF to split lines at.
func bareCRLines(raw []byte) bool {
	i := bytes.IndexAny(raw, "\r\n")
	return i >= 0 && raw[i] == '\r' && (i+1 == len(raw) || raw[i+1] != '\n')
}

// crToLF returns a copy of raw where every CR not followed by LF is LF.
func crToLF(raw []byte) []byte {
	out := make([]byte, len(raw))
	copy(out, raw)
	for i, c := range out {
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			out[i] = '\n'
		}
	}
	return out
}

func (s *splitter) problem(name, detail string) {
	s.problems = append(s.problems, Problem{Name: name, Detail: detail})
}

// readHeader splits a header section off b. It returns the fields and the
// body. A line that is neither a field nor a continuation line starts the
// body (ProblemMissingSeparator), except at the top of the mail before any
// field, where it is skipped and counted as an anomaly.
// Folded values are unfolded in linear time; a value is cut at
// MaxFieldBytes and fields after the MaxHeaderFields-th are dropped, each
// with a Problem.
func (s *splitter) readHeader(b []byte, top bool) ([]field, []byte, error) {
	limit := s.opts.MaxHeaderBytes
	fields := make([]field, 0, 16)
	// The value of the last field while it is being unfolded: its pieces
	// are appended here and converted to a string once (flush).
	var unfold []byte
	unfolding, dropped := false, 0
	truncated := "" // name of the first field cut at MaxFieldBytes
	flush := func() {
		if unfolding {
			fields[len(fields)-1].value = string(unfold)
			unfolding = false
		}
	}
	done := func() {
		flush()
		if truncated != "" {
			s.problem(ProblemFieldTruncated, fmt.Sprintf("%s: value longer than %d bytes cut", clip(truncated, 60), MaxFieldBytes))
		}
		if dropped > 0 {
			s.problem(ProblemTooManyFields, fmt.Sprintf("more than %d header fields: %d dropped", MaxHeaderFields, dropped))
		}
	}
	// cont appends a continuation line to the last field's value.
	cont := func(line []byte) {
		if !unfolding {
			f := &fields[len(fields)-1]
			unfold = append(unfold[:0], f.value...)
			unfolding = true
		}
		if len(unfold) < MaxFieldBytes {
			unfold = append(unfold, ' ')
			unfold = append(unfold, bytes.TrimLeft(line, " \t")...)
			if len(unfold) > MaxFieldBytes {
				unfold = unfold[:cutPoint(unfold, MaxFieldBytes)]
				truncated = cmp.Or(truncated, fields[len(fields)-1].name)
			}
		} else {
			truncated = cmp.Or(truncated, fields[len(fields)-1].name)
		}
	}
	pos := 0
	skipping := false // continuation lines of a dropped field
	for pos < len(b) {
		if pos > limit {
			return nil, nil, errHeaderTooLarge
		}
		window := b[pos:]
		if len(window) > limit-pos+1 {
			window = window[:limit-pos+1]
		}
		e := bytes.IndexByte(window, '\n')
		var line []byte
		next := 0
		if e < 0 {
			if len(window) < len(b)-pos {
				return nil, nil, errHeaderTooLarge
			}
			line, next = b[pos:], len(b)
		} else {
			line, next = b[pos:pos+e], pos+e+1
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			done()
			return fields, b[next:], nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			switch {
			case skipping:
			case len(fields) > 0:
				// Unfold: the line break and the folding white space
				// become one space.
				cont(line)
			default:
				s.anomalies++
				s.problem(ProblemMalformedHeader, "continuation line before any field")
			}
			pos = next
			continue
		}
		colon := bytes.IndexByte(line, ':')
		name := []byte(nil)
		if colon > 0 {
			name = bytes.TrimRight(line[:colon], " \t")
		}
		valid := validFieldName(name)
		if valid || len(fields) == 0 || skipping {
			flush()
		}
		skipping = skipping && !valid
		if !valid {
			if (!top || len(fields) > 0) && !headerResumes(b[next:min(len(b), max(next, limit+1))]) {
				// Tolerant readers' rule: the header ended without its
				// blank line, and this line is the first of the body.
				done()
				s.problem(ProblemMissingSeparator, "no blank line after the header; the body starts at: "+clip(string(line), 60))
				if top {
					s.topBody = pos
				}
				return fields, b[pos:], nil
			}
			switch {
			case len(fields) > 0:
				// A broken line inside the header: kept in the previous
				// field's value, as enmime keeps it.
				s.anomalies++
				s.problem(ProblemMalformedHeader, "line is not a header field, kept as a continuation: "+clip(string(line), 60))
				if !skipping {
					cont(line)
				}
			case !(pos == 0 && bytes.HasPrefix(line, []byte("From "))): // not an mbox separator
				s.anomalies++
				s.problem(ProblemMalformedHeader, "line is not a header field: "+clip(string(line), 60))
			}
			pos = next
			continue
		}
		if len(fields) >= MaxHeaderFields {
			dropped++
			skipping = true
			pos = next
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		value := line[colon+1:]
		if len(value) > MaxFieldBytes {
			value = value[:cutPoint(value, MaxFieldBytes)]
			truncated = cmp.Or(truncated, key)
		}
		fields = append(fields, field{name: key, value: string(value)})
		pos = next
	}
	done()
	return fields, nil, nil
}

// headerResumes reports whether b, the rest of a header section after a line
// that is not a field, holds at least one more field and then the blank
// line ending the header, with nothing but fields and continuation lines in
// between: the odd line is then a broken line inside the header (kept as
// enmime keeps it), not the start of a body. The scan stops at the first
// line that is neither, so it reads each line at most once per odd line
// that precedes only fields.
func headerResumes(b []byte) bool {
	seen := false
	for len(b) > 0 {
		e := bytes.IndexByte(b, '\n')
		line := b
		if e >= 0 {
			line, b = b[:e], b[e+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case len(line) == 0:
			return seen
		case line[0] == ' ' || line[0] == '\t':
		default:
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 || !validFieldName(bytes.TrimRight(line[:colon], " \t")) {
				return false
			}
			seen = true
		}
	}
	return false
}

// cutPoint returns where to cut b to at most n bytes without splitting a
// UTF-8 sequence (raw 8-bit values in other charsets are cut at n).
func cutPoint(b []byte, n int) int {
	if n >= len(b) {
		return len(b)
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return n
}

func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

func trimValues(fields []field) {
	for i := range fields {
		fields[i].value = strings.TrimSpace(fields[i].value)
	}
}

// entity parses the entity in b at the given multipart depth.
func (s *splitter) entity(b []byte, depth int, defaultType string) (*entity, error) {
	fields, body, err := s.readHeader(b, depth == 0)
	if err != nil {
		return nil, err
	}
	trimValues(fields)
	e := &entity{fields: fields, body: body, defaultType: defaultType}
	ct := e.get("Content-Type")
	if !hasPrefixFold(strings.TrimSpace(ct), "multipart/") {
		return e, nil
	}
	mt, params := parseMediaType(ct)
	boundary := params["boundary"]
	if !strings.HasPrefix(mt, "multipart/") {
		return e, nil
	}
	if boundary == "" {
		s.anomalies++
		s.problem(ProblemMissingBoundary, "multipart entity without a boundary parameter")
		return e, nil
	}
	if depth+1 > s.opts.MaxDepth {
		s.problem(ProblemNestingTooDeep, fmt.Sprintf("multipart nested deeper than %d levels kept whole", s.opts.MaxDepth))
		e.opaque = true
		return e, nil
	}
	childType := "text/plain"
	if mt == "multipart/digest" {
		childType = "message/rfc822"
	}
	delim := []byte("--" + boundary)
	pos, closed := 0, false
	start := -1 // start of the current part
	for {
		i := indexDelimiter(body, pos, delim)
		if i < 0 {
			break
		}
		after := i + len(delim)
		isClose := bytes.HasPrefix(body[after:], []byte("--"))
		if isClose {
			after += 2
		}
		// The rest of the delimiter line must be white space.
		eol := bytes.IndexByte(body[after:], '\n')
		var rest []byte
		if eol < 0 {
			rest, eol = body[after:], len(body)
		} else {
			rest, eol = body[after:after+eol], after+eol+1
		}
		if len(bytes.Trim(rest, " \t\r")) != 0 {
			pos = i + len(delim) // a longer boundary that starts with ours
			continue
		}
		if start >= 0 {
			// An empty part: the delimiters are on consecutive lines.
			end := max(trimLineEnd(body, i), start)
			if err := s.child(e, body[start:end], depth, childType); err != nil {
				return nil, err
			}
		}
		if isClose {
			closed = true
			break
		}
		start, pos = eol, eol
		if s.parts >= s.opts.MaxParts {
			s.problem(ProblemTooManyParts, fmt.Sprintf("more than %d MIME parts; the rest is kept in the last part", s.opts.MaxParts))
			if err := s.child(e, body[start:], depth, childType); err != nil {
				return nil, err
			}
			start, closed = -1, true
			break
		}
	}
	if start < 0 && !closed {
		// No delimiter at all: keep the body as one text part.
		s.anomalies++
		s.problem(ProblemMissingBoundary, fmt.Sprintf("boundary %q not found", clip(boundary, 40)))
		return e, nil
	}
	if !closed {
		s.anomalies++
		s.problem(ProblemMissingBoundary, fmt.Sprintf("boundary %q was not closed", clip(boundary, 40)))
		if err := s.child(e, body[start:], depth, childType); err != nil {
			return nil, err
		}
	}
	e.multipart = true
	e.body = nil
	return e, nil
}

func (s *splitter) child(parent *entity, b []byte, depth int, defaultType string) error {
	s.parts++
	c, err := s.entity(b, depth+1, defaultType)
	if err != nil {
		return err
	}
	parent.children = append(parent.children, c)
	return nil
}

// indexDelimiter finds delim at the start of a line in b at or after pos.
func indexDelimiter(b []byte, pos int, delim []byte) int {
	for pos <= len(b) {
		i := bytes.Index(b[pos:], delim)
		if i < 0 {
			return -1
		}
		i += pos
		if i == 0 || b[i-1] == '\n' {
			return i
		}
		pos = i + 1
	}
	return -1
}

// trimLineEnd returns the end of the part before the delimiter at i: the
// line break preceding the delimiter belongs to the delimiter.
func trimLineEnd(b []byte, i int) int {
	if i > 0 && b[i-1] == '\n' {
		i--
		if i > 0 && b[i-1] == '\r' {
			i--
		}
	}
	return i
}

// enmimeSafe reports whether handing raw to enmime stays within the limits:
// enmime has no line, depth or part limits of its own.
func enmimeSafe(raw []byte, o ParseOptions) bool {
	if len(raw) > enmimeMaxBytes {
		return false
	}
	for b := raw; len(b) > 0; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b)
		}
		if i > o.MaxHeaderBytes {
			return false
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	if countFold(raw, "multipart/") > o.MaxDepth {
		return false
	}
	return countFold(raw, "content-type") <= o.MaxParts
}

// countFold counts ASCII case-insensitive occurrences of the lower-case
// word in b.
func countFold(b []byte, word string) int {
	n := 0
	first := word[0]
	upper := first - 'a' + 'A'
	for i := 0; i+len(word) <= len(b); i++ {
		c := b[i]
		if c != first && c != upper {
			continue
		}
		match := true
		for j := 1; j < len(word); j++ {
			c := b[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != word[j] {
				match = false
				break
			}
		}
		if match {
			n++
			i += len(word) - 1
		}
	}
	return n
}

// readWithEnmime reads the MIME structure of raw with enmime (raw content:
// decoding is shared with the fast path). It returns nil when enmime fails.
func readWithEnmime(raw []byte) (root *entity, problems []Problem) {
	defer func() {
		if r := recover(); r != nil {
			root = nil
			problems = append(problems, Problem{Name: ProblemParserPanic, Detail: fmt.Sprint(r), Severe: true})
		}
	}()
	p := enmime.NewParser(enmime.RawContent(true), enmime.SkipMalformedParts(true),
		enmime.MultipartWOBoundaryAsSinglePart(true), enmime.DisableTextConversion(true))
	part, err := p.ReadParts(bytes.NewReader(raw))
	if err != nil {
		return nil, []Problem{{Name: ProblemMalformedHeader, Detail: "enmime: " + err.Error(), Severe: true}}
	}
	var conv func(p *enmime.Part, top bool, def string) *entity
	conv = func(p *enmime.Part, top bool, def string) *entity {
		for _, e := range p.Errors {
			problems = append(problems, Problem{Name: e.Name, Detail: e.Detail, Severe: e.Severe})
		}
		e := &entity{defaultType: def, body: p.Content}
		for k, vs := range p.Header {
			for _, v := range vs {
				e.fields = append(e.fields, field{name: k, value: strings.TrimSpace(v)})
			}
		}
		if top {
			// Keep the order of top-level fields as in the mail (the map
			// loses it); values come from enmime when the splitter lost them.
			e.fields = orderFields(raw, e.fields)
		}
		e.fields, problems = capFields(e.fields, problems)
		childDef := "text/plain"
		if strings.EqualFold(p.ContentType, "multipart/digest") {
			childDef = "message/rfc822"
		}
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			e.children = append(e.children, conv(c, false, childDef))
		}
		if len(e.children) > 0 {
			e.multipart = true
			e.body = nil
		}
		return e
	}
	return conv(part, true, "text/plain"), problems
}

// orderFields sorts fields by first position of their name in raw's header,
// so that "first value" means the same for both parse paths. One scan of the
// header maps each field name to its first line; fields whose name is not
// found (enmime repaired the line) go last. The sort is stable, so the values
// of one name keep enmime's order.
func orderFields(raw []byte, fields []field) []field {
	first := make(map[string]int)
	for pos := 0; pos < len(raw); {
		e := bytes.IndexByte(raw[pos:], '\n')
		next := len(raw)
		if e >= 0 {
			next = pos + e + 1
		} else {
			e = len(raw) - pos
		}
		line := bytes.TrimSuffix(raw[pos:pos+e], []byte{'\r'})
		if len(line) == 0 {
			break // end of the header
		}
		if line[0] != ' ' && line[0] != '\t' {
			if colon := bytes.IndexByte(line, ':'); colon > 0 {
				if name := bytes.TrimRight(line[:colon], " \t"); validFieldName(name) {
					k := textproto.CanonicalMIMEHeaderKey(string(name))
					if _, ok := first[k]; !ok {
						first[k] = pos
					}
				}
			}
		}
		pos = next
	}
	out := make([]field, len(fields))
	copy(out, fields)
	rank := func(name string) int {
		if p, ok := first[name]; ok {
			return p
		}
		return len(raw)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].name) < rank(out[j].name) })
	return out
}

// capFields applies MaxHeaderFields and MaxFieldBytes to fields read by
// enmime, as the splitter does, recording a Problem for each cut.
func capFields(fields []field, problems []Problem) ([]field, []Problem) {
	if n := len(fields); n > MaxHeaderFields {
		fields = fields[:MaxHeaderFields]
		problems = append(problems, Problem{Name: ProblemTooManyFields,
			Detail: fmt.Sprintf("more than %d header fields: %d dropped", MaxHeaderFields, n-MaxHeaderFields)})
	}
	truncated := ""
	for i := range fields {
		if v := fields[i].value; len(v) > MaxFieldBytes {
			fields[i].value = v[:cutPoint([]byte(v[:MaxFieldBytes+1]), MaxFieldBytes)]
			truncated = cmp.Or(truncated, fields[i].name)
		}
	}
	if truncated != "" {
		problems = append(problems, Problem{Name: ProblemFieldTruncated,
			Detail: fmt.Sprintf("%s: value longer than %d bytes cut", clip(truncated, 60), MaxFieldBytes)})
	}
	return fields, problems
}

// ---------------------------------------------------------------------------
// Building the Message

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
	enc := lookupCharset(cs)
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
		enc := lookupCharset(b.rootCharset)
		if enc == nil || isUTF8Charset(b.rootCharset) {
			enc = charmap.Windows1252
		}
		if d, err := enc.NewDecoder().String(v); err == nil {
			v = d
		}
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return singleLine(v)
}

func (b *builder) header(root *entity) {
	m := b.m
	_, params := parseMediaType(root.get("Content-Type"))
	b.rootCharset = params["charset"]
	m.Header = make(Header, len(root.fields))
	for _, f := range root.fields {
		m.Header[f.name] = append(m.Header[f.name], b.decodeHeader(f.value))
	}
	m.ID = NormalizeMessageID(root.get("Message-Id"))
	if m.ID == "" {
		m.ID = DerivedMessageID(m.Raw)
		m.IDDerived = true
		b.problem(ProblemMissingMessageID, "Message-ID derived from the mail's bytes")
	}
	m.Subject = strings.TrimSpace(b.decodeHeader(root.get("Subject")))
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
	if v := root.get("Date"); v != "" {
		if d, ok := parseDate(v); ok {
			m.Date = d
		} else {
			b.problem(ProblemMalformedDate, clip(v, 80))
		}
	}
	m.InReplyTo = ParseMessageIDList(root.get("In-Reply-To"))
	m.References = ParseMessageIDList(root.get("References"))
	if root.has("Return-Path") {
		m.HasReturnPath = true
		m.ReturnPath = NormalizeAddress(root.get("Return-Path"))
	}
}

// addresses parses every field of the given name, tolerantly.
func (b *builder) addresses(e *entity, name string) []Address {
	var out []Address
	for _, f := range e.fields {
		if f.name != name || strings.TrimSpace(f.value) == "" {
			continue
		}
		if a, ok := simpleAddress(f.value); ok {
			out = append(out, a)
			continue
		}
		p := mail.AddressParser{WordDecoder: b.dec}
		list, err := p.ParseList(f.value)
		if err == nil {
			for _, a := range list {
				if email := NormalizeAddress(a.Address); email != "" {
					out = append(out, Address{Name: singleLine(strings.ToValidUTF8(a.Name, "\uFFFD")), Email: email})
				}
			}
			continue
		}
		b.problem(ProblemMalformedAddress, name+": "+err.Error())
		out = append(out, b.lenientAddresses(f.value)...)
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
			email = it[l+1 : l+r]
			name = strings.TrimSpace(it[:l])
		} else {
			for _, w := range strings.Fields(it) {
				w = strings.Trim(w, "()\"'")
				if strings.IndexByte(w, '@') > 0 {
					email = w
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

func (b *builder) walk(e *entity) collected {
	mt, params := parseMediaType(e.get("Content-Type"))
	if mt == "" {
		mt = e.defaultType
	}
	if e.multipart {
		var c collected
		if mt == "multipart/alternative" {
			// Text from the first alternative that has text, HTML from the
			// last that has HTML (the richest); attachments from all.
			var textDone bool
			var htmls []string
			for _, ch := range e.children {
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
		for _, ch := range e.children {
			c.add(b.walk(ch))
		}
		return c
	}
	disp, dparams := parseMediaType(e.get("Content-Disposition"))
	filename := b.filename(e, params, dparams)
	if strings.HasPrefix(mt, "multipart/") && !e.opaque {
		// A multipart that could not be split: read it as text.
		mt = "text/plain"
	}
	data, derr := b.transferDecode(e)
	if derr != "" {
		b.problem(derr, fmt.Sprintf("part %s", mt))
	}
	isBody := (mt == "text/plain" || mt == "text/html") && disp != "attachment" && filename == ""
	if isBody {
		s := b.toUTF8(data, params["charset"], mt)
		if mt == "text/html" {
			return collected{htmls: []string{s}}
		}
		return collected{texts: []string{s}}
	}
	cid := NormalizeMessageID(e.get("Content-Id"))
	if cid == "" {
		cid = strings.Trim(strings.TrimSpace(e.get("Content-Id")), "<>")
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
func (b *builder) filename(e *entity, ctParams, dParams map[string]string) string {
	name := dParams["filename"]
	if name == "" {
		name = rfc2231Param(e.get("Content-Disposition"), "filename", b)
	}
	if name == "" {
		name = ctParams["name"]
	}
	if name == "" {
		name = rfc2231Param(e.get("Content-Type"), "name", b)
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
	var charset string
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
			if cs, after, ok := strings.Cut(v, "'"); ok {
				charset = cs
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
	if charset != "" && !isUTF8Charset(charset) {
		if enc := lookupCharset(charset); enc != nil {
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
func parseMediaType(v string) (string, map[string]string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if mt, params, err := mime.ParseMediaType(v); err == nil {
		return mt, params
	}
	mt, params, _, err := mediatype.Parse(v)
	if err != nil {
		t, _, _ := strings.Cut(v, ";")
		t = strings.ToLower(strings.TrimSpace(t))
		if strings.Count(t, "/") != 1 && t != "inline" && t != "attachment" {
			return "", nil
		}
		return t, nil
	}
	return strings.ToLower(mt), params
}

// transferDecode decodes the Content-Transfer-Encoding of a leaf. The
// second result names a problem met, "" for none.
func (b *builder) transferDecode(e *entity) ([]byte, string) {
	cte := strings.ToLower(strings.TrimSpace(e.get("Content-Transfer-Encoding")))
	switch cte {
	case "base64":
		return decodeBase64(e.body)
	case "quoted-printable":
		return decodeQP(e.body)
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return e.body[:len(e.body):len(e.body)], ""
	}
	return e.body[:len(e.body):len(e.body)], ProblemContentEncoding
}

var b64Table = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	// URL-safe alphabet, seen from broken encoders.
	t['-'], t['_'] = 62, 63
	return t
}()

// decodeBase64 decodes base64 tolerantly: lines of a multiple of four
// characters go through the standard decoder; anything else (odd line
// lengths, stray characters, padding in the middle) through a forgiving
// slow path that skips invalid characters.
func decodeBase64(in []byte) ([]byte, string) {
	out := make([]byte, 0, len(in)/4*3+3)
	var quad [4]byte
	nq := 0
	bad := false
	slow := func(line []byte) {
		for _, c := range line {
			if c == '=' {
				// Padding: flush a partial quantum.
				if nq >= 2 {
					out = append(out, quad[0]<<2|quad[1]>>4)
					if nq == 3 {
						out = append(out, quad[1]<<4|quad[2]>>2)
					}
				} else if nq == 1 {
					bad = true
				}
				nq = 0
				continue
			}
			v := b64Table[c]
			if v == 0xff {
				if c != ' ' && c != '\t' && c != '\r' {
					bad = true
				}
				continue
			}
			quad[nq] = v
			nq++
			if nq == 4 {
				out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2, quad[2]<<6|quad[3])
				nq = 0
			}
		}
	}
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		var line []byte
		if i < 0 {
			line, in = in, nil
		} else {
			line, in = in[:i], in[i+1:]
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 {
			continue
		}
		if nq == 0 && len(line)%4 == 0 {
			n, err := base64.StdEncoding.Decode(out[len(out):cap(out)], line)
			if err == nil {
				out = out[:len(out)+n]
				continue
			}
		}
		slow(line)
	}
	if nq == 1 {
		bad = true
	} else if nq > 1 {
		slow([]byte{'='})
	}
	if bad {
		return out, ProblemMalformedBase64
	}
	return out, ""
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// decodeQP decodes quoted-printable tolerantly: an invalid escape is kept
// literally, trailing white space is removed, soft line breaks are joined.
func decodeQP(in []byte) ([]byte, string) {
	out := make([]byte, 0, len(in))
	bad := false
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		var line []byte
		hasNL := i >= 0
		if hasNL {
			line, in = in[:i], in[i+1:]
		} else {
			line, in = in, nil
		}
		line = bytes.TrimRight(line, " \t\r")
		soft := false
		if len(line) > 0 && line[len(line)-1] == '=' {
			soft = true
			line = line[:len(line)-1]
		}
		for len(line) > 0 {
			j := bytes.IndexByte(line, '=')
			if j < 0 {
				out = append(out, line...)
				break
			}
			out = append(out, line[:j]...)
			line = line[j:]
			if len(line) >= 3 {
				if h, ok1 := unhex(line[1]); ok1 {
					if l, ok2 := unhex(line[2]); ok2 {
						out = append(out, h<<4|l)
						line = line[3:]
						continue
					}
				}
			}
			bad = true
			out = append(out, '=')
			line = line[1:]
		}
		if hasNL && !soft {
			out = append(out, '\r', '\n')
		}
	}
	if bad {
		return out, ProblemMalformedQP
	}
	return out, ""
}

// ---------------------------------------------------------------------------
// Charsets

func isUTF8Charset(cs string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(cs), "\"'")) {
	case "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "us_ascii", "":
		return true
	}
	return false
}

// lookupCharset returns the decoder for a charset name (WHATWG and IANA
// names and common aliases), nil when unknown or UTF-8/ASCII.
func lookupCharset(cs string) encoding.Encoding {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), "\"'"))
	if cs == "" {
		return nil
	}
	switch cs {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return nil
	case "iso-2022-jp", "csiso2022jp", "iso2022jp", "iso-2022-jp-2", "iso-2022-jp-3":
		return japanese.ISO2022JP
	case "shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "cp932", "windows-31j", "ms932":
		return japanese.ShiftJIS
	case "euc-jp", "eucjp", "x-euc-jp":
		return japanese.EUCJP
	case "gb2312", "gbk", "cp936", "x-gbk", "euc-cn", "gb_2312-80", "chinese":
		return simplifiedchinese.GBK
	case "gb18030":
		return simplifiedchinese.GB18030
	case "hz-gb-2312":
		return simplifiedchinese.HZGB2312
	case "big5", "big5-hkscs", "cn-big5", "x-x-big5", "cp950":
		return traditionalchinese.Big5
	case "euc-kr", "ks_c_5601-1987", "cp949", "ks_c_5601", "korean":
		return korean.EUCKR
	case "utf-16":
		return unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	case "utf-16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	case "utf-16be":
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
	case "iso-8859-1", "latin1", "latin-1", "iso8859-1", "iso_8859-1", "l1", "cp819":
		// Mail labelled Latin-1 is Windows-1252 in practice (as in HTML).
		return charmap.Windows1252
	}
	if enc, err := htmlindex.Get(cs); err == nil {
		return enc
	}
	if enc, err := ianaindex.MIME.Encoding(cs); err == nil && enc != nil {
		return enc
	}
	if enc, err := ianaindex.IANA.Encoding(cs); err == nil && enc != nil {
		return enc
	}
	// "cp1252", "windows1252", "iso8859_15" and similar spellings.
	norm := strings.NewReplacer("_", "-", " ", "-").Replace(cs)
	switch {
	case strings.HasPrefix(norm, "cp125"):
		norm = "windows-125" + norm[5:]
	case strings.HasPrefix(norm, "windows125"):
		norm = "windows-125" + norm[10:]
	case strings.HasPrefix(norm, "iso8859-"):
		norm = "iso-8859-" + norm[8:]
	case strings.HasPrefix(norm, "iso-8859") && !strings.HasPrefix(norm, "iso-8859-"):
		norm = "iso-8859-" + strings.TrimLeft(norm[8:], "-")
	}
	if norm != cs {
		if enc, err := htmlindex.Get(norm); err == nil {
			return enc
		}
	}
	return nil
}

// statefulCharset reports charsets whose all-ASCII bytes are not ASCII text.
func statefulCharset(cs string) bool {
	cs = strings.ToLower(cs)
	return strings.Contains(cs, "2022") || strings.Contains(cs, "utf-16") || strings.Contains(cs, "utf-32") ||
		strings.Contains(cs, "utf-7") || strings.Contains(cs, "hz-gb")
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// toUTF8 converts a text body to UTF-8 with CRLF line ends made LF.
func (b *builder) toUTF8(data []byte, charset, mt string) string {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(charset), "\"'"))
	var s string
	switch {
	case isASCIIBytes(data) && !statefulCharset(cs):
		s = string(data)
	case isUTF8Charset(cs) && utf8.Valid(data):
		s = string(data)
	case cs == "utf-8" || cs == "utf8":
		b.problem(ProblemCharset, "invalid UTF-8 in a part declared UTF-8")
		s = strings.ToValidUTF8(string(data), "\uFFFD")
	default:
		enc := lookupCharset(cs)
		if enc == nil {
			if cs != "" && !isUTF8Charset(cs) {
				b.problem(ProblemCharset, fmt.Sprintf("unknown charset %q", clip(cs, 40)))
			}
			if utf8.Valid(data) {
				s = string(data)
				break
			}
			enc = detectCharset(data, mt)
			b.problem(ProblemCharsetDetected, fmt.Sprintf("declared %q, read as %s", clip(cs, 40), charsetName(enc)))
		}
		d, err := enc.NewDecoder().Bytes(data)
		if err != nil {
			b.problem(ProblemCharset, fmt.Sprintf("charset %q: %v", clip(cs, 40), err))
		}
		s = strings.ToValidUTF8(string(d), "\uFFFD")
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	return s
}

func charsetName(enc encoding.Encoding) string {
	if n, err := htmlindex.Name(enc); err == nil {
		return n
	}
	return fmt.Sprint(enc)
}

// detectCharset guesses the charset of non-UTF-8 text without a usable
// declaration; Windows-1252 when unsure.
func detectCharset(data []byte, mt string) encoding.Encoding {
	var d *chardet.Detector
	if mt == "text/html" {
		d = chardet.NewHtmlDetector()
	} else {
		d = chardet.NewTextDetector()
	}
	sample := data
	if len(sample) > 64<<10 {
		sample = sample[:64<<10]
	}
	if r, err := d.DetectBest(sample); err == nil && r.Confidence >= 50 {
		if enc := lookupCharset(r.Charset); enc != nil {
			return enc
		}
	}
	return charmap.Windows1252
}

// ---------------------------------------------------------------------------
// HTML to text

// HTMLToText renders HTML as plain text: block elements become line breaks,
// list items get a "- " prefix, and the content of head, style, script,
// noscript and template elements is dropped. Entities are decoded. It never
// fails; broken HTML gives its best-effort text.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var out strings.Builder
	out.Grow(len(s) / 2)
	skip := 0 // depth inside elements whose text is dropped
	// head is true inside <head>. It ends at </head>, <body>, any start
	// tag that belongs to the body or text outside head elements, as in an
	// HTML5 parser: mail often omits </head>.
	head := false
	pre := 0
	space := false // a pending space
	newlines := 2  // trailing newlines written (start as if after a block)
	nl := func(n int) {
		space = false
		for newlines < n {
			out.WriteByte('\n')
			newlines++
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlankLines(out.String()))
		case html.TextToken:
			if head && skip == 0 && len(bytes.TrimSpace(z.Raw())) > 0 {
				head = false
			}
			if skip > 0 || head {
				continue
			}
			t := string(z.Text())
			if pre > 0 {
				out.WriteString(t)
				if strings.HasSuffix(t, "\n") {
					newlines = 1
				} else if t != "" {
					newlines = 0
				}
				continue
			}
			for i, w := range strings.Fields(t) {
				if (i > 0 || space || startsWithSpace(t)) && newlines == 0 {
					out.WriteByte(' ')
				}
				out.WriteString(w)
				newlines = 0
				space = false
			}
			if endsWithSpace(t) {
				space = true
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if a == atom.Head {
				head = tt == html.StartTagToken
				continue
			}
			if head && tt != html.EndTagToken && !headElement(a) {
				head = false
			}
			hidden := skip > 0 || head
			switch a {
			case atom.Style, atom.Script, atom.Noscript, atom.Template, atom.Title:
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case atom.Pre:
				if tt == html.StartTagToken {
					pre++
					nl(1)
				} else if tt == html.EndTagToken && pre > 0 {
					pre--
					nl(1)
				}
			case atom.Br:
				if !hidden {
					out.WriteByte('\n')
					newlines++
					space = false
				}
			case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Table, atom.Ul, atom.Ol, atom.Hr:
				if !hidden {
					nl(2)
				}
			case atom.Li:
				if !hidden {
					nl(1)
					if tt == html.StartTagToken {
						out.WriteString("- ")
						newlines = 0
					}
				}
			case atom.Div, atom.Tr, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Address, atom.Dd, atom.Dt, atom.Center, atom.Caption, atom.Form:
				if !hidden {
					nl(1)
				}
			case atom.Td, atom.Th:
				if !hidden && tt == html.StartTagToken && newlines == 0 {
					out.WriteByte('\t')
					space = false
				}
			}
		}
	}
}

// headElement reports whether a start tag may appear inside <head>.
func headElement(a atom.Atom) bool {
	switch a {
	case atom.Html, atom.Base, atom.Basefont, atom.Bgsound, atom.Link, atom.Meta,
		atom.Style, atom.Script, atom.Noscript, atom.Template, atom.Title:
		return true
	}
	return false
}

func startsWithSpace(s string) bool {
	return s != "" && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t' || s[0] == '\r')
}

func endsWithSpace(s string) bool {
	return s != "" && strings.IndexByte(" \n\t\r", s[len(s)-1]) >= 0
}

// collapseBlankLines trims trailing space on lines and keeps at most one
// empty line in a row.
func collapseBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\u00a0")
		if strings.TrimSpace(l) == "" {
			blank++
			if blank > 1 {
				continue
			}
			l = ""
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// ---------------------------------------------------------------------------

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

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
