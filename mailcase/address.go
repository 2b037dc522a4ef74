package mailcase

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// NormalizeAddress returns the canonical form of a mail address used for
// every comparison and lookup: surrounding space and angle brackets removed,
// the domain lower-cased and converted to its ASCII (punycode) form, the
// local part lower-cased (mailbox local parts are case-insensitive in
// practice at every CRM this SDK targets). It returns "" for a string with no
// usable address, including local parts with characters that could split or
// inject header fields (space, control characters, quotes, commas,
// semicolons, brackets, a second '@') and invalid UTF-8: quoted local parts
// are not supported.
func NormalizeAddress(addr string) string {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimPrefix(addr, "<")
	addr = strings.TrimSuffix(addr, ">")
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return ""
	}
	local, domain := addr[:at], NormalizeDomain(addr[at+1:])
	if domain == "" || !validLocal(local) {
		return ""
	}
	return strings.ToLower(local) + "@" + domain
}

// NormalizeDomain returns domain lower-cased in its ASCII form (IDNA
// punycode for Unicode domains), without a trailing dot, or "" if invalid.
func NormalizeDomain(domain string) string {
	domain = strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if domain == "" || strings.ContainsAny(domain, " \t\r\n@<>") {
		return ""
	}
	if !isASCII(domain) {
		if !utf8.ValidString(domain) {
			return ""
		}
		a, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			a, err = idna.Punycode.ToASCII(strings.ToLower(domain))
			if err != nil {
				return ""
			}
		}
		domain = a
	}
	domain = strings.ToLower(domain)
	if lit, ok := strings.CutPrefix(domain, "["); ok {
		// Address literal: [192.0.2.1], [ipv6:2001:db8::1].
		if lit, ok = strings.CutSuffix(lit, "]"); !ok || lit == "" || !onlyBytes(lit, "0123456789abcdefipv:.") {
			return ""
		}
		return domain
	}
	if !onlyBytes(domain, "abcdefghijklmnopqrstuvwxyz0123456789-_.") {
		return "" // control characters, punctuation, mangled punycode
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 {
			return "" // "a..b", ".example", over-long label
		}
	}
	return domain
}

// validLocal reports whether local is a usable unquoted local part: valid
// UTF-8 without space, control characters or RFC 5322 specials.
func validLocal(local string) bool {
	if !utf8.ValidString(local) {
		return false
	}
	for _, r := range local {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`"(),:;<>@[\]`, r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// onlyBytes reports whether every byte of s is in set.
func onlyBytes(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// DomainOf returns the normalised domain of addr, or "".
func DomainOf(addr string) string {
	addr = NormalizeAddress(addr)
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[at+1:]
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// NormalizeMessageID returns a Message-ID without angle brackets, comments or
// surrounding space. It returns "" when nothing usable remains.
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	if i := strings.IndexByte(id, '<'); i >= 0 {
		if j := strings.IndexByte(id[i+1:], '>'); j >= 0 {
			id = id[i+1 : i+1+j]
		} else {
			id = id[i+1:]
		}
	}
	id = strings.TrimSpace(id)
	if id == "" || strings.ContainsAny(id, " \t\r\n<>") {
		return ""
	}
	return id
}

// ParseMessageIDList extracts every Message-ID from a References or
// In-Reply-To field value, in order, normalised, without duplicates. It
// accepts IDs without brackets separated by space (a common defect).
func ParseMessageIDList(v string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if id := NormalizeMessageID(s); id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	// bare adds the IDs of a stretch without brackets: words containing an
	// '@', separated by space or commas (no Message-ID contains either).
	bare := func(s string) {
		for _, f := range strings.FieldsFunc(dropMsgIDComments(s), func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if strings.IndexByte(f, '@') > 0 {
				add(f)
			}
		}
	}
	for len(v) > 0 {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			bare(v)
			break
		}
		bare(v[:i])
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			add(v[i+1:])
			break
		}
		add(v[i+1 : i+j])
		v = v[i+j+1:]
	}
	return out
}

// dropMsgIDComments removes RFC 5322 comments, "(...)" possibly nested, from s.
func dropMsgIDComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}
