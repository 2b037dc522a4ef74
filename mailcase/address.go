package mailcase

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// NormalizeAddress returns the canonical form of a mail address used for
// every comparison and lookup: surrounding space and angle brackets removed,
// the domain lower-cased and converted to its ASCII (punycode) form, the
// local part lower-cased (mailbox local parts are case-insensitive in
// practice at every CRM this SDK targets). It returns "" for a string with no
// usable address.
func NormalizeAddress(addr string) string {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimPrefix(addr, "<")
	addr = strings.TrimSuffix(addr, ">")
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return ""
	}
	local, domain := addr[:at], NormalizeDomain(addr[at+1:])
	if domain == "" || strings.ContainsAny(local, " \t\r\n<>") {
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
	if isASCII(domain) {
		return strings.ToLower(domain)
	}
	a, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		a, err = idna.Punycode.ToASCII(strings.ToLower(domain))
		if err != nil {
			return ""
		}
	}
	return strings.ToLower(a)
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
	for len(v) > 0 {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			for _, f := range strings.Fields(v) {
				if strings.IndexByte(f, '@') > 0 {
					add(f)
				}
			}
			break
		}
		for _, f := range strings.Fields(v[:i]) {
			if strings.IndexByte(f, '@') > 0 {
				add(f)
			}
		}
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
