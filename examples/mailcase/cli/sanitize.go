package cli

// sanitize.go holds the one sanitiser for text printed for a person: mail
// is hostile input, and a Message-ID, subject, address or body line must
// not drive the terminal (retitle it, hide text, reorder it).

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// clean returns s with every terminal control rendered visibly: C0
// controls (ESC, BEL, CR, LF, TAB...), DEL, C1 controls, the Unicode
// bidirectional controls (overrides, embeddings, isolates and marks), the
// line and paragraph separators, and invalid UTF-8 become Go escapes
// ("\x1b", "\u202e"), and a backslash is doubled only where it would read
// as such an escape. For one-line fields.
func clean(s string) string { return sanitize(s, false) }

// cleanText is clean for multi-line text (a mail body): newlines and tabs
// are kept, everything else clean escapes is escaped.
func cleanText(s string) string { return sanitize(s, true) }

func sanitize(s string, multiline bool) string {
	if !needsSanitizing(s, multiline) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isUnsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r == '\\' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'u'):
			b.WriteString(`\\`) // so that a literal "\x1b" in a mail reads differently from an escaped ESC
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsSanitizing(s string, multiline bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return true
		case multiline && (r == '\n' || r == '\t'):
		case r < 0x20 || r == 0x7f || isUnsafeRune(r):
			return true
		case r == '\\' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'u'):
			return true
		}
		i += size
	}
	return false
}

// isUnsafeRune reports the non-ASCII runes a terminal acts on or that
// reorder what is shown: C1 controls, bidirectional controls, and the line
// and paragraph separators.
func isUnsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 (CSI is 0x9b)
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // Arabic letter mark, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}
