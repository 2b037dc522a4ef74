package salesforce

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
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
// variable is refused. The template machinery is shared with the Dynamics
// adapter (adapters/internal/crmlookup); only the quoting is SOQL's.
//
// Variables: {{sender}} (the sender's address), {{domain}} (the sender's
// domain), {{name}} (the sender's display name), {{subject}}, and
// {{header:Name}} (the first value of the mail header Name).
type Template = crmlookup.Template

// soqlDialect is SOQL's literal syntax for crmlookup templates.
var soqlDialect = &crmlookup.Dialect{Name: "SOQL", Escape: escapeSOQL, Pattern: endsWithLike, Backslash: true, NoDoubleQuotes: true}

// CompileTemplate parses and checks src.
func CompileTemplate(src string) (*Template, error) {
	t, err := crmlookup.Compile(src, soqlDialect)
	if err != nil {
		return nil, errInvalid(err.Error())
	}
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
