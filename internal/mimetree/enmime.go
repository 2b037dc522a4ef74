package mimetree

import (
	"bytes"
	"cmp"
	"fmt"
	"net/textproto"
	"sort"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// enmimeSafe reports whether handing raw to enmime stays within the limits:
// enmime has no line, depth or part limits of its own.
func enmimeSafe(raw []byte, o Limits) bool {
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
func readWithEnmime(raw []byte) (root *Entity, problems []Problem) {
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
	var conv func(p *enmime.Part, top bool, def string) *Entity
	conv = func(p *enmime.Part, top bool, def string) *Entity {
		for _, e := range p.Errors {
			problems = append(problems, Problem{Name: e.Name, Detail: e.Detail, Severe: e.Severe})
		}
		e := &Entity{DefaultType: def, Body: p.Content}
		for k, vs := range p.Header {
			for _, v := range vs {
				e.Fields = append(e.Fields, Field{Name: k, Value: strings.TrimSpace(v)})
			}
		}
		if top {
			// Keep the order of top-level fields as in the mail (the map
			// loses it); values come from enmime when the splitter lost them.
			e.Fields = orderFields(raw, e.Fields)
		}
		e.Fields, problems = capFields(e.Fields, problems)
		childDef := "text/plain"
		if strings.EqualFold(p.ContentType, "multipart/digest") {
			childDef = "message/rfc822"
		}
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			e.Children = append(e.Children, conv(c, false, childDef))
		}
		if len(e.Children) > 0 {
			e.Multipart = true
			e.Body = nil
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
func orderFields(raw []byte, fields []Field) []Field {
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
	out := make([]Field, len(fields))
	copy(out, fields)
	rank := func(name string) int {
		if p, ok := first[name]; ok {
			return p
		}
		return len(raw)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Name) < rank(out[j].Name) })
	return out
}

// capFields applies MaxHeaderFields and MaxFieldBytes to fields read by
// enmime, as the splitter does, recording a Problem for each cut.
func capFields(fields []Field, problems []Problem) ([]Field, []Problem) {
	if n := len(fields); n > MaxHeaderFields {
		fields = fields[:MaxHeaderFields]
		problems = append(problems, Problem{Name: ProblemTooManyFields,
			Detail: fmt.Sprintf("more than %d header fields: %d dropped", MaxHeaderFields, n-MaxHeaderFields)})
	}
	truncated := ""
	for i := range fields {
		if v := fields[i].Value; len(v) > MaxFieldBytes {
			fields[i].Value = v[:cutPoint([]byte(v[:MaxFieldBytes+1]), MaxFieldBytes)]
			truncated = cmp.Or(truncated, fields[i].Name)
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
