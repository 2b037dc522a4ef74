package threading

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// SubjectFormat is a way of writing a case number in a subject: Prefix,
// then the number, then Suffix. Matching ignores letter case, and a space
// in Prefix or Suffix matches any run of white space (including none when
// the space is next to punctuation). A Prefix starting with a letter must
// start a word. When Suffix is empty the number must end at a non-digit.
type SubjectFormat struct {
	// Name identifies the format in decisions ("dovetail", "commit", ...).
	Name   string `json:"name" yaml:"name"`
	Prefix string `json:"prefix" yaml:"prefix"`
	Suffix string `json:"suffix,omitempty" yaml:"suffix,omitempty"`
	// Write is the format used for outgoing subjects, with %s for the
	// number and %t for the title; "" means Prefix + number + Suffix + " " + title.
	Write string `json:"write,omitempty" yaml:"write,omitempty"`
}

// FormatDovetail is "About Case 1234 :: title" (Clarify/Dovetail).
func FormatDovetail() SubjectFormat {
	return SubjectFormat{Name: "dovetail", Prefix: "About Case ", Write: "About Case %s :: %t"}
}

// FormatCommit is "[Ticket #1234] title" (Commit CRM).
func FormatCommit() SubjectFormat {
	return SubjectFormat{Name: "commit", Prefix: "[Ticket #", Suffix: "]"}
}

// FormatTrackingToken is "title CRM:0001234" (Dynamics 365 tracking token).
func FormatTrackingToken() SubjectFormat {
	return SubjectFormat{Name: "tracking-token", Prefix: "CRM:", Write: "%t CRM:%s"}
}

// FormatHash is "[#1234] title" (Zammad, Request Tracker, osTicket style).
func FormatHash() SubjectFormat { return SubjectFormat{Name: "hash", Prefix: "[#", Suffix: "]"} }

// DefaultSubjectFormats returns the four built-in formats.
func DefaultSubjectFormats() []SubjectFormat {
	return []SubjectFormat{FormatDovetail(), FormatCommit(), FormatTrackingToken(), FormatHash()}
}

// SubjectNumber is a case number found in a subject.
type SubjectNumber struct {
	Number string
	Format string
	// Offset is the byte offset of the match in the subject.
	Offset int
}

// maxSubject bounds the part of a subject that is examined.
const maxSubject = 4096

// FindSubjectNumbers returns the case numbers written in subject in any of
// formats, in order of appearance, without duplicates. It runs in time
// linear in len(subject) times the number of formats.
func FindSubjectNumbers(subject string, formats []SubjectFormat) []SubjectNumber {
	if len(subject) > maxSubject {
		subject = subject[:maxSubject]
	}
	var out []SubjectNumber
	for _, f := range formats {
		if f.Prefix == "" {
			continue
		}
		for i := 0; i < len(subject); i++ {
			if f.Prefix[0] != ' ' && lowerByte(subject[i]) != lowerByte(f.Prefix[0]) {
				continue
			}
			if isWordByte(f.Prefix[0]) && i > 0 && isWordByte(subject[i-1]) {
				continue
			}
			j, ok := matchLoose(subject, i, f.Prefix)
			if !ok {
				continue
			}
			k := j
			for k < len(subject) && subject[k] >= '0' && subject[k] <= '9' && k-j < 20 {
				k++
			}
			if k == j || k < len(subject) && subject[k] >= '0' && subject[k] <= '9' {
				continue
			}
			end := k
			if f.Suffix != "" {
				e, ok := matchLoose(subject, k, f.Suffix)
				if !ok {
					continue
				}
				end = e
			} else if k < len(subject) && isWordByte(subject[k]) {
				continue
			}
			out = append(out, SubjectNumber{Number: subject[j:k], Format: f.Name, Offset: i})
			i = end - 1
		}
	}
	// Order by offset (insertion sort: a subject holds few numbers) and
	// drop repeats of the same number.
	for a := 1; a < len(out); a++ {
		for b := a; b > 0 && out[b].Offset < out[b-1].Offset; b-- {
			out[b], out[b-1] = out[b-1], out[b]
		}
	}
	seen := map[string]bool{}
	w := 0
	for _, n := range out {
		key := strings.TrimLeft(n.Number, "0")
		if seen[key] {
			continue
		}
		seen[key] = true
		out[w] = n
		w++
	}
	return out[:w]
}

// matchLoose matches pat at s[i:], letter case ignored, a space in pat
// matching any run of white space. It returns the end offset.
func matchLoose(s string, i int, pat string) (int, bool) {
	for p := 0; p < len(pat); p++ {
		c := pat[p]
		if c == ' ' {
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == 0xa0) {
				i++
			}
			continue
		}
		if i >= len(s) || lowerByte(s[i]) != lowerByte(c) {
			return 0, false
		}
		i++
	}
	return i, true
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// replyPrefixes are the reply and forward markers removed by
// StripSubjectPrefixes, compared case-insensitively before a colon.
var replyPrefixes = []string{
	"re", "aw", "antw", "antwort", "sv", "vs", "ref", "rif", "r", "ris", "odp",
	"res", "resp", "atb", "ynt", "vá", "απ", "σχετ", "отв", "ответ",
	"回复", "回覆", "答复", "返信", "答覆", "حول", "תגובה",
}

var forwardPrefixes = []string{
	"fwd", "fw", "tr", "wg", "enc", "inoltro", "doorst", "vb", "vl",
	"rv", "pd", "pfw", "fwd.", "転送", "转发", "轉寄", "προώθ", "пересл",
}

// StripSubjectPrefixes removes leading reply and forward markers (Re:,
// AW:, SV:, "RE :", Fwd:, TR:, WG:, 回复:, Re[2]:, Re(2):, Re^2: ...) and
// surrounding white space. forwarded reports whether the outermost marker
// was a forward.
func StripSubjectPrefixes(subject string) (rest string, forwarded bool) {
	s := strings.TrimSpace(subject)
	first := true
	for n := 0; n < 50; n++ {
		p, fwd, ok := leadingPrefix(s)
		if !ok {
			break
		}
		if first {
			forwarded = fwd
			first = false
		}
		s = strings.TrimSpace(s[p:])
	}
	return s, forwarded
}

// leadingPrefix reports the length of one leading marker of s.
func leadingPrefix(s string) (n int, fwd, ok bool) {
	// A bracketed list tag like "[EXTERNAL]" before the marker is kept:
	// only markers followed by ':' (ASCII or full-width) are removed.
	end := -1
	colonLen := 0
	for i, r := range s {
		if i > 24 {
			break
		}
		if r == ':' || r == '：' {
			end, colonLen = i, utf8.RuneLen(r)
			break
		}
	}
	if end <= 0 {
		return 0, false, false
	}
	word := strings.TrimSpace(s[:end])
	// Counters: Re[2], Re(2), Re^2, RE*2.
	if k := strings.IndexAny(word, "[(^*"); k > 0 {
		tail := strings.Trim(word[k:], "[]()^* ")
		if tail != "" && strings.Trim(tail, "0123456789") == "" {
			word = word[:k]
		}
	}
	lw := strings.ToLower(word)
	for _, r := range lw {
		if unicode.IsSpace(r) {
			return 0, false, false
		}
	}
	for _, p := range replyPrefixes {
		if lw == p {
			return end + colonLen, false, true
		}
	}
	for _, p := range forwardPrefixes {
		if lw == p {
			return end + colonLen, true, true
		}
	}
	return 0, false, false
}

// isForwardSubject reports whether the outermost marker of subject is a
// forward marker.
func isForwardSubject(subject string) bool {
	_, fwd := StripSubjectPrefixes(subject)
	return fwd
}
