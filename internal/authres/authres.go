// Package authres parses Authentication-Results header fields (RFC 8601).
package authres

import "strings"

// Result is one result of an Authentication-Results header field
// (RFC 8601 section 2.2), for example dkim=pass header.d=example.com.
type Result struct {
	// AuthServID identifies the server that wrote the field.
	AuthServID string
	// Method is the authentication method, lower-case: "dkim", "spf",
	// "dmarc", ...
	Method string
	// Result is the result, lower-case: "pass", "fail", "none", ...
	Result string
	// Props holds the properties ("header.d", "smtp.mailfrom", ...), keys
	// lower-case.
	Props map[string]string
}

// Parse parses the value of one Authentication-Results
// header field (RFC 8601). It is tolerant: comments are skipped, unknown
// syntax in one result does not spoil the others, and a value it cannot read
// at all gives no results. The authserv-id is returned lower-cased.
func Parse(v string) (authServID string, results []Result) {
	parts := splitResinfo(stripComments(v))
	if len(parts) == 0 {
		return "", nil
	}
	head := strings.Fields(parts[0])
	if len(head) == 0 {
		return "", nil
	}
	authServID = strings.ToLower(unquote(head[0]))
	for _, p := range parts[1:] {
		toks := strings.Fields(p)
		if len(toks) == 0 {
			continue
		}
		method, result, ok := strings.Cut(toks[0], "=")
		if !ok {
			continue // "none" or garbage
		}
		if i := strings.IndexByte(method, '/'); i >= 0 {
			method = method[:i] // method version
		}
		r := Result{AuthServID: authServID, Method: strings.ToLower(method),
			Result: strings.ToLower(unquote(result)), Props: map[string]string{}}
		for _, t := range toks[1:] {
			k, val, ok := strings.Cut(t, "=")
			if !ok || !strings.Contains(k, ".") {
				continue // reason=... or stray words
			}
			r.Props[strings.ToLower(k)] = unquote(val)
		}
		results = append(results, r)
	}
	return authServID, results
}

// stripComments removes RFC 5322 comments (nested parentheses), leaving
// quoted strings intact.
func stripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
			if depth == 0 {
				b.WriteRune(r)
			}
			continue
		case r == '\\':
			escaped = true
			if depth == 0 {
				b.WriteRune(r)
			}
			continue
		case quoted:
			if r == '"' {
				quoted = false
			}
			b.WriteRune(r)
			continue
		case r == '"' && depth == 0:
			quoted = true
		case r == '(':
			depth++
			b.WriteByte(' ')
			continue
		case r == ')' && depth > 0:
			depth--
			continue
		}
		if depth == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// splitResinfo splits at semicolons outside quoted strings.
func splitResinfo(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `\`, "")
	}
	return s
}
