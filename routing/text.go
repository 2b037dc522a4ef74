package routing

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// TextOptions says how text and keywords are normalised before matching.
// The same normalisation is applied to keywords, mail text and classifier
// input, so a keyword matches whatever spelling normalises to the same form.
//
// Text is always converted to NFKC (full-width forms, ligatures and
// compatibility characters become their plain forms), case folded, and runs
// of white space become one space.
type TextOptions struct {
	// KeepAccents keeps diacritics significant: "café" then does not match
	// "cafe". By default accents are removed from both sides.
	KeepAccents bool `json:"keep_accents,omitempty" yaml:"keep_accents,omitempty"`
}

// normalizer normalises text. It is safe for concurrent use: the stateful
// x/text transformers are created per call.
type normalizer struct {
	keepAccents bool
}

// normalize returns s in the canonical form used for matching: valid UTF-8,
// NFKC, case folded, accents removed unless kept, white space collapsed to
// single spaces and trimmed.
func (n normalizer) normalize(s string) string {
	if isASCIIString(s) {
		return collapseASCII(s)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var t transform.Transformer
	if n.keepAccents {
		t = transform.Chain(norm.NFD, cases.Fold(), norm.NFKC)
	} else {
		t = transform.Chain(norm.NFD, runes.Remove(runes.Predicate(isDiacritic)), cases.Fold(), norm.NFKC)
	}
	out, _, err := transform.String(t, s)
	if err != nil {
		// The chain never fails on valid UTF-8; keep the input usable.
		out = strings.ToLower(s)
	}
	return collapseSpace(out)
}

// isDiacritic reports whether r is a combining diacritical mark of the
// Latin, Greek and Cyrillic scripts (removed when accents are not kept).
// Marks of other scripts, such as the Japanese voicing marks, are kept:
// removing them would change the letter, not an accent.
func isDiacritic(r rune) bool {
	return (r >= 0x0300 && r <= 0x036F) || (r >= 0x1AB0 && r <= 0x1AFF) ||
		(r >= 0x1DC0 && r <= 0x1DFF) || (r >= 0x20D0 && r <= 0x20FF) ||
		(r >= 0xFE20 && r <= 0xFE2F)
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// collapseASCII lower-cases ASCII s and collapses white space in one pass.
func collapseASCII(s string) string {
	out := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			space = true
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if space && len(out) > 0 {
			out = append(out, ' ')
		}
		space = false
		out = append(out, c)
	}
	return string(out)
}

// collapseSpace replaces runs of Unicode white space by one space and trims.
func collapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// isWordRune reports whether r is part of a word (letter, digit or mark).
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '_'
}

// isUnspacedRune reports whether r belongs to a script written without
// spaces between words (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar).
// Keywords in these scripts match as substrings, with no word-boundary
// check, and the classifier tokenises them by character n-grams.
func isUnspacedRune(r rune) bool {
	if r < 0x0E00 {
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r) ||
		unicode.Is(unicode.Thai, r) || unicode.Is(unicode.Lao, r) ||
		unicode.Is(unicode.Khmer, r) || unicode.Is(unicode.Myanmar, r) ||
		r == 'ー' // prolonged sound mark (Common script) inside katakana words
}

// boundaryBefore reports whether a match starting at byte i of text begins a
// word: the rune before it is no word rune, or either side is in an
// unspaced script.
func boundaryBefore(text string, i int, first rune) bool {
	if i == 0 || isUnspacedRune(first) {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	return !isWordRune(r) || isUnspacedRune(r)
}

// boundaryAfter reports whether a match ending at byte j (exclusive) of text
// ends a word.
func boundaryAfter(text string, j int, last rune) bool {
	if j >= len(text) || isUnspacedRune(last) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text[j:])
	return !isWordRune(r) || isUnspacedRune(r)
}

// tokens splits normalised text into classifier features: words of spaced
// scripts (letters and digits, at least two runes, or one digit-free rune
// kept when it is alone), adjacent word pairs, and for unspaced scripts the
// character unigrams and bigrams of each run. emit is called per token.
func tokens(text string, emit func(tok string)) {
	var prevWord string
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case isUnspacedRune(r):
			j := i
			var prev string
			for j < len(text) {
				r2, s2 := utf8.DecodeRuneInString(text[j:])
				if !isUnspacedRune(r2) {
					break
				}
				cur := text[j : j+s2]
				emit(cur)
				if prev != "" {
					emit(text[j-len(prev) : j+s2])
				}
				prev = cur
				j += s2
			}
			prevWord = ""
			i = j
		case isWordRune(r):
			j := i
			for j < len(text) {
				r2, s2 := utf8.DecodeRuneInString(text[j:])
				if !isWordRune(r2) || isUnspacedRune(r2) {
					break
				}
				j += s2
			}
			w := text[i:j]
			if utf8.RuneCountInString(w) >= 2 && len(w) <= 40 {
				emit(w)
				if prevWord != "" {
					emit(prevWord + " " + w)
				}
				prevWord = w
			}
			i = j
		default:
			if r != ' ' && r != '\'' && r != '-' {
				prevWord = "" // sentence punctuation breaks word pairs
			}
			i += size
		}
	}
}
