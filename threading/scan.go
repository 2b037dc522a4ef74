package threading

import "crypto/subtle"

func constantEq(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// maxMarker bounds the bytes read for one marker, so scanning is linear in
// the size of the text.
const maxMarker = 200

func isB32(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '2' && c <= '7'
}

// isWrap reports bytes that line wrapping, quoting or quoted-printable
// leftovers may insert inside a marker.
func isWrap(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '>' }

// scanTokens calls fn with the inside ("<id>:<mac>") of each [ref:...]
// token in s, in order, until fn returns false. White space, line breaks
// and '>' quote marks inside a token are skipped, so a token wrapped over
// lines or quoted still reads.
func scanTokens(s string, fn func(body string) bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '[' {
			continue
		}
		j := i + 1
		for j < len(s) && j-i < 8 && isWrap(s[j]) {
			j++
		}
		e, ok := matchLoose(s, j, "ref:")
		if !ok {
			continue
		}
		buf := make([]byte, 0, 64)
		k := e
		closed := false
		for k < len(s) && k-i < maxMarker {
			c := s[k]
			if c == ']' {
				closed = true
				break
			}
			if isWrap(c) {
				k++
				continue
			}
			if !isB32(c) && c != ':' {
				break
			}
			buf = append(buf, c)
			k++
		}
		if !closed || len(buf) == 0 {
			continue
		}
		if !fn(string(buf)) {
			return
		}
		i = k
	}
}

// scanContextIDs calls fn with the number and tag of each ctx:<number>.<tag>
// context ID in s until fn returns false. A line break or quote mark may
// split the tag.
func scanContextIDs(s string, fn func(number, tag string) bool) {
	for i := 0; i+4 < len(s); i++ {
		if s[i] != 'c' && s[i] != 'C' {
			continue
		}
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		e, ok := matchLoose(s, i, "ctx:")
		if !ok {
			continue
		}
		k := e
		for k < len(s) && k-e < 41 && (isWordByte(s[k]) || s[k] == '-') {
			k++
		}
		if k == e || k >= len(s) || s[k] != '.' {
			continue
		}
		number := s[e:k]
		k++
		tag := make([]byte, 0, 16)
		for k < len(s) && len(tag) < 13 && k-i < maxMarker {
			if isWrap(s[k]) {
				k++
				continue
			}
			if !isB32(s[k]) {
				break
			}
			tag = append(tag, s[k])
			k++
		}
		if len(tag) != 13 || !validNumber(number) {
			continue
		}
		if !fn(number, string(tag)) {
			return
		}
		i = k - 1
	}
}
