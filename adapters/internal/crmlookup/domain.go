package crmlookup

import "strings"

// NormDomain normalises a domain or URL from a CRM field: scheme, path,
// user, port, a trailing dot and "www." dropped, lower case.
func NormDomain(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	return strings.TrimPrefix(s, "www.")
}

// SplitDomains splits a domain field value (entries separated by commas,
// semicolons or white space) into normalised domains.
func SplitDomains(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		if d := NormDomain(p); d != "" {
			out = append(out, d)
		}
	}
	return out
}
