// Package mimetree splits a raw mail into its tree of MIME entities: a
// zero-copy splitter over the raw bytes for well-formed mail, with enmime
// as the tolerant fallback for broken structure, and the tolerant base64
// and quoted-printable decoders. Soft problems are collected, never fatal.
//
// It is the format layer under mailcase.ParseMessage, which assembles the
// Message from the tree.
package mimetree

import (
	"bytes"
	"cmp"
	"fmt"
	"net/textproto"
	"strings"
	"unicode/utf8"
)

// ---------------------------------------------------------------------------
// MIME structure

// Entity is one node of the MIME tree, produced by either the splitter or
// the enmime fallback.
type Entity struct {
	Fields   []Field // header fields in order, values unfolded, undecoded
	Body     []byte  // transfer-encoded body (leaves only)
	Children []*Entity
	// Multipart is true for a split multipart container.
	Multipart bool
	// DefaultType is the Content-Type to assume when the part has none.
	DefaultType string
	// Opaque marks a multipart kept whole (nesting or part limit).
	Opaque bool
}

// Field is one header field: its name in canonical form, its value
// unfolded and undecoded.
type Field struct{ Name, Value string }

// Get returns the first value of a header field (name in canonical form).
func (e *Entity) Get(name string) string {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Has reports whether the entity has a header field of that name.
func (e *Entity) Has(name string) bool {
	for _, f := range e.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// splitter is the fast MIME splitter over the raw bytes. It never copies
// bodies: entity.Body slices raw. It counts structural anomalies, which make
// ParseMessage re-read the mail with enmime.
type splitter struct {
	opts      Limits
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
func (s *splitter) readHeader(b []byte, top bool) ([]Field, []byte, error) {
	limit := s.opts.MaxHeaderBytes
	fields := make([]Field, 0, 16)
	// The value of the last field while it is being unfolded: its pieces
	// are appended here and converted to a string once (flush).
	var unfold []byte
	unfolding, dropped := false, 0
	truncated := "" // name of the first field cut at MaxFieldBytes
	flush := func() {
		if unfolding {
			fields[len(fields)-1].Value = string(unfold)
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
			unfold = append(unfold[:0], f.Value...)
			unfolding = true
		}
		if len(unfold) < MaxFieldBytes {
			unfold = append(unfold, ' ')
			unfold = append(unfold, bytes.TrimLeft(line, " \t")...)
			if len(unfold) > MaxFieldBytes {
				unfold = unfold[:cutPoint(unfold, MaxFieldBytes)]
				truncated = cmp.Or(truncated, fields[len(fields)-1].Name)
			}
		} else {
			truncated = cmp.Or(truncated, fields[len(fields)-1].Name)
		}
	}
	pos := 0
	skipping := false // continuation lines of a dropped field
	for pos < len(b) {
		if pos > limit {
			return nil, nil, ErrHeaderTooLarge
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
				return nil, nil, ErrHeaderTooLarge
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
		fields = append(fields, Field{Name: key, Value: string(value)})
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

func trimValues(fields []Field) {
	for i := range fields {
		fields[i].Value = strings.TrimSpace(fields[i].Value)
	}
}

// entity parses the entity in b at the given multipart depth.
func (s *splitter) entity(b []byte, depth int, defaultType string) (*Entity, error) {
	fields, body, err := s.readHeader(b, depth == 0)
	if err != nil {
		return nil, err
	}
	trimValues(fields)
	e := &Entity{Fields: fields, Body: body, DefaultType: defaultType}
	ct := e.Get("Content-Type")
	if !hasPrefixFold(strings.TrimSpace(ct), "multipart/") {
		return e, nil
	}
	mt, params := ParseMediaType(ct)
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
		e.Opaque = true
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
	e.Multipart = true
	e.Body = nil
	return e, nil
}

func (s *splitter) child(parent *Entity, b []byte, depth int, defaultType string) error {
	s.parts++
	c, err := s.entity(b, depth+1, defaultType)
	if err != nil {
		return err
	}
	parent.Children = append(parent.Children, c)
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
