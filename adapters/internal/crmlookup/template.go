package crmlookup

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// A Dialect is the string-literal syntax of a query language.
type Dialect struct {
	// Name is the language's name in error messages ("SOQL", "OData").
	Name string
	// Escape returns s escaped for the inside of a single-quoted literal;
	// pattern is true when the literal is a pattern (SOQL LIKE, OData
	// contains/startswith/endswith), whose wildcards must be escaped too.
	Escape func(s string, pattern bool) string
	// Pattern reports whether a literal opened after the text before is a
	// pattern; nil means never.
	Pattern func(before string) bool
	// Backslash says a backslash escapes the next character inside a
	// literal (SOQL); otherwise a quote is escaped by doubling it (OData).
	Backslash bool
	// NoDoubleQuotes refuses double-quoted literals (SOQL: they are not
	// string literals).
	NoDoubleQuotes bool
}

// A Template is a query filter with {{variable}} placeholders, checked when
// it is compiled: every placeholder must sit inside a single-quoted string
// literal, where its value is inserted escaped by the Dialect (with the
// pattern escapes when the literal is a pattern). A template that puts a
// placeholder outside quotes, leaves a literal open or names an unknown
// variable is refused.
//
// Variables: {{sender}} (the sender's address), {{domain}} (the sender's
// domain), {{name}} (the sender's display name), {{subject}}, and
// {{header:Name}} (the first value of the mail header Name).
type Template struct {
	src   string
	d     *Dialect
	parts []tplPart
}

type tplPart struct {
	text    string // literal template text, when name == ""
	name    string // variable name ("sender", "header:X-Customer")
	pattern bool   // the enclosing literal is a pattern
}

// Compile parses and checks src in dialect d.
func Compile(src string, d *Dialect) (*Template, error) {
	t := &Template{src: src, d: d}
	inQuote, pattern := false, false
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tplPart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case strings.HasPrefix(src[i:], "{{"):
			end := strings.Index(src[i:], "}}")
			if end < 0 {
				return nil, fmt.Errorf("lookup template: unclosed {{ at offset %d", i)
			}
			name := strings.TrimSpace(src[i+2 : i+end])
			if !inQuote {
				return nil, fmt.Errorf("lookup template: {{%s}} outside a quoted string literal (write '{{%s}}')", name, name)
			}
			if !KnownVar(name) {
				return nil, fmt.Errorf("lookup template: unknown variable {{%s}}", name)
			}
			flush()
			t.parts = append(t.parts, tplPart{name: name, pattern: pattern})
			i += end + 2
			continue
		case inQuote && d.Backslash && c == '\\':
			if i+1 >= len(src) {
				return nil, errors.New("lookup template: backslash at the end")
			}
			lit.WriteString(src[i : i+2])
			i += 2
			continue
		case inQuote && !d.Backslash && c == '\'' && i+1 < len(src) && src[i+1] == '\'':
			// a doubled quote inside a literal
			lit.WriteString("''")
			i += 2
			continue
		case c == '\'':
			if !inQuote {
				pattern = d.Pattern != nil && d.Pattern(lit.String())
			}
			inQuote = !inQuote
		case c == '"' && !inQuote && d.NoDoubleQuotes:
			return nil, fmt.Errorf("lookup template: %s string literals use single quotes", d.Name)
		}
		lit.WriteByte(c)
		i++
	}
	if inQuote {
		return nil, errors.New("lookup template: unterminated string literal")
	}
	flush()
	return t, nil
}

// KnownVar reports whether name is a template variable.
func KnownVar(name string) bool {
	switch name {
	case "sender", "domain", "name", "subject":
		return true
	}
	h, ok := strings.CutPrefix(name, "header:")
	return ok && h != "" && !strings.ContainsAny(h, " :\t")
}

// String returns the template source.
func (t *Template) String() string { return t.src }

// Render substitutes vars (escaped) into the template. A variable without a
// value renders as the empty string.
func (t *Template) Render(vars func(name string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.text)
			continue
		}
		b.WriteString(t.d.Escape(vars(p.name), p.pattern))
	}
	return b.String()
}

// Input is what a lookup knows of a mail.
type Input struct {
	Sender  string // normalised address
	Name    string // display name
	Subject string
	Header  map[string][]string // mail headers (canonical or any case keys)
}

// Var returns the value of template variable name for in.
func (in *Input) Var(name string) string {
	switch name {
	case "sender":
		return in.Sender
	case "domain":
		if i := strings.LastIndexByte(in.Sender, '@'); i >= 0 {
			return in.Sender[i+1:]
		}
		return ""
	case "name":
		return in.Name
	case "subject":
		return in.Subject
	}
	h, _ := strings.CutPrefix(name, "header:")
	if vs := in.Header[textproto.CanonicalMIMEHeaderKey(h)]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range in.Header {
		if strings.EqualFold(k, h) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}
