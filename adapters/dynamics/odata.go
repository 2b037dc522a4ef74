package dynamics

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
)

// Quote returns s as an OData string literal, quotes included: single
// quotes are doubled, every other character is kept (the whole query
// option is then URL-encoded by Filter). Every filter this package builds
// takes its values through Quote or QuoteLike.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// QuoteLike is Quote for the argument of contains, startswith and
// endswith, where Dataverse treats %, _ and [...] as LIKE wildcards: they
// are escaped as [%], [_] and [[] so s matches literally.
func QuoteLike(s string) string { return "'" + escapeOData(s, true) + "'" }

func escapeOData(s string, like bool) string {
	s = strings.ReplaceAll(s, "'", "''")
	if like {
		s = likeEscaper.Replace(s)
	}
	return s
}

var likeEscaper = strings.NewReplacer("[", "[[]", "%", "[%]", "_", "[_]")

// queryEscape is url.QueryEscape without the '+' for spaces: %20, and a
// literal '+' is %2B, so no server reads a plus as a space.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// query builds "entityset?$select=...&$filter=..." with every option value
// URL-encoded.
func query(set string, opts ...string) string {
	var b strings.Builder
	b.WriteString(set)
	sep := "?"
	for i := 0; i+1 < len(opts); i += 2 {
		if opts[i+1] == "" {
			continue
		}
		b.WriteString(sep)
		b.WriteString(opts[i])
		b.WriteByte('=')
		b.WriteString(queryEscape(opts[i+1]))
		sep = "&"
	}
	return b.String()
}

// patternRE matches the text before the literal argument of contains,
// startswith or endswith.
var patternRE = regexp.MustCompile(`(?i)\b(contains|startswith|endswith)\(\s*[A-Za-z_][A-Za-z0-9_/]*\s*,\s*$`)

// odataDialect is OData's literal syntax for crmlookup templates.
var odataDialect = &crmlookup.Dialect{Name: "OData", Escape: escapeOData,
	Pattern: func(before string) bool { return patternRE.MatchString(before) }}

// A Template is an OData $filter with {{variable}} placeholders (the
// advanced lookup), checked when it is compiled: every placeholder must sit
// inside a single-quoted string literal, where its value is inserted with
// its quotes doubled (and the LIKE wildcards escaped inside contains,
// startswith and endswith). A template that puts a placeholder outside
// quotes, leaves a literal open or names an unknown variable is refused.
// The machinery is shared with the Salesforce adapter.
//
// Variables: {{sender}}, {{domain}}, {{name}}, {{subject}} and
// {{header:Name}}.
type Template = crmlookup.Template

// CompileTemplate parses and checks src.
func CompileTemplate(src string) (*Template, error) {
	t, err := crmlookup.Compile(src, odataDialect)
	if err != nil {
		return nil, errInvalid(err.Error())
	}
	return t, nil
}

// validName reports whether s is a Dataverse logical or set name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// validGUID reports whether s is a GUID (8-4-4-4-12 hex).
func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}
