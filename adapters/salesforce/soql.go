package salesforce

import (
	"fmt"
	"strings"
	"unicode"
)

// QuoteSOQL returns s as a SOQL string literal, quotes included, escaped
// per Salesforce's documented rules ("Quoted String Escape Sequences"): a
// backslash escapes ' " and \ ; newline, carriage return, tab, backspace
// and form feed are written \n \r \t \b \f; any other control character is
// written \uXXXX. Every query this package builds takes its values through
// QuoteSOQL or QuoteSOQLLike.
func QuoteSOQL(s string) string { return "'" + escapeSOQL(s, false) + "'" }

// QuoteSOQLLike is QuoteSOQL for the pattern of a LIKE comparison: the
// wildcards _ and % are escaped too (\_ and \%), so s matches literally.
// Callers add their own unescaped wildcards around it, as in
// "Website LIKE '%" + EscapeSOQLLike(d) + "%'".
func QuoteSOQLLike(s string) string { return "'" + escapeSOQL(s, true) + "'" }

// EscapeSOQLLike returns the body of QuoteSOQLLike(s), without quotes.
func EscapeSOQLLike(s string) string { return escapeSOQL(s, true) }

func escapeSOQL(s string, like bool) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '_', '%':
			if like {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// soqlIn returns "('a','b')" for vals.
func soqlIn(vals []string) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(QuoteSOQL(v))
	}
	b.WriteByte(')')
	return b.String()
}

// A Template is a SOQL WHERE clause with {{variable}} placeholders, checked
// when it is compiled: every placeholder must sit inside a single-quoted
// string literal, where its value is inserted escaped (with the LIKE
// escapes when the literal follows the LIKE keyword). A template that puts a
// placeholder outside quotes, leaves a literal open or names an unknown
// variable is refused.
//
// Variables: {{sender}} (the sender's address), {{domain}} (the sender's
// domain), {{name}} (the sender's display name), {{subject}}, and
// {{header:Name}} (the first value of the mail header Name).
type Template struct {
	src   string
	parts []tplPart
}

type tplPart struct {
	text string // literal template text, when name == ""
	name string // variable name ("sender", "header:X-Customer")
	like bool   // the enclosing literal is a LIKE pattern
}

// CompileTemplate parses and checks src.
func CompileTemplate(src string) (*Template, error) {
	t := &Template{src: src}
	inQuote, like := false, false
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
				return nil, errInvalid(fmt.Sprintf("lookup template: unclosed {{ at offset %d", i))
			}
			name := strings.TrimSpace(src[i+2 : i+end])
			if !inQuote {
				return nil, errInvalid(fmt.Sprintf("lookup template: {{%s}} outside a quoted string literal (write '{{%s}}')", name, name))
			}
			if !knownVar(name) {
				return nil, errInvalid(fmt.Sprintf("lookup template: unknown variable {{%s}}", name))
			}
			flush()
			t.parts = append(t.parts, tplPart{name: name, like: like})
			i += end + 2
			continue
		case inQuote && c == '\\':
			if i+1 >= len(src) {
				return nil, errInvalid("lookup template: backslash at the end")
			}
			lit.WriteString(src[i : i+2])
			i += 2
			continue
		case c == '\'':
			if !inQuote {
				like = endsWithLike(lit.String())
			}
			inQuote = !inQuote
		case c == '"' && !inQuote:
			return nil, errInvalid("lookup template: SOQL string literals use single quotes")
		}
		lit.WriteByte(c)
		i++
	}
	if inQuote {
		return nil, errInvalid("lookup template: unterminated string literal")
	}
	flush()
	return t, nil
}

// endsWithLike reports whether the SOQL text before a literal ends with the
// LIKE keyword.
func endsWithLike(s string) bool {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	if len(s) < 4 || !strings.EqualFold(s[len(s)-4:], "like") {
		return false
	}
	if len(s) == 4 {
		return true
	}
	p := rune(s[len(s)-5])
	return unicode.IsSpace(p) || p == ')'
}

func knownVar(name string) bool {
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
		b.WriteString(escapeSOQL(vars(p.name), p.like))
	}
	return b.String()
}
