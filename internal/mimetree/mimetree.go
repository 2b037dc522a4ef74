package mimetree

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"
)

// Problem is a soft problem met while reading a mail. mailcase turns it
// into a mailcase.Problem.
type Problem struct {
	Name   string
	Detail string
	Severe bool
}

// Problem names recorded by Read and the decoders. mailcase exports the
// same names (mailcase.ProblemMalformedHeader, ...); a mailcase test checks
// that they agree. Structural problems found by enmime on broken mail use
// enmime's names.
const (
	ProblemMalformedHeader  = "Malformed Header"
	ProblemMissingBoundary  = "Missing Boundary"
	ProblemMalformedBase64  = "Malformed Base64"
	ProblemMalformedQP      = "Malformed Quoted-Printable"
	ProblemContentEncoding  = "Content Encoding"
	ProblemNestingTooDeep   = "Nesting Too Deep"
	ProblemTooManyParts     = "Too Many Parts"
	ProblemParserPanic      = "Parser Failure"
	ProblemFieldTruncated   = "Header Field Truncated"
	ProblemTooManyFields    = "Too Many Header Fields"
	ProblemMissingSeparator = "Missing Header Separator"
	ProblemBareCR           = "Bare CR Line Endings"
)

// Limits on one header section that are not configurable (mailcase
// documents them as mailcase.MaxFieldBytes and mailcase.MaxHeaderFields).
const (
	// MaxFieldBytes bounds one header field's unfolded value.
	MaxFieldBytes = 128 << 10
	// MaxHeaderFields bounds the number of fields kept from one header
	// section.
	MaxHeaderFields = 10_000
)

// Limits bounds the work Read does on one mail. Every field must be
// positive (mailcase.ParseOptions resolves the defaults).
type Limits struct {
	MaxHeaderBytes int
	MaxDepth       int
	MaxParts       int
}

// enmimeMaxBytes bounds the mails re-read by enmime: enmime copies every
// part while reading, so a larger broken mail keeps the splitter's tolerant
// result instead, which holds peak memory under 3x the mail's size.
const enmimeMaxBytes = 4 << 20

// Errors returned by Read when nothing usable can be built.
var (
	ErrEmpty          = errors.New("empty mail")
	ErrNoFields       = errors.New("no header fields")
	ErrHeaderTooLarge = errors.New("header section exceeds the limit")
)

// Read splits raw into its MIME tree. Well-formed mail is read by the
// zero-copy splitter: Entity.Body slices raw. Mail whose structure the
// splitter found broken (up to 4 MiB, and within l) is re-read by enmime,
// which is more tolerant; forceEnmime re-reads any mail so (tests check
// both paths agree). A mail whose first line ends in a bare CR is read
// with bare CRs as line breaks, from a copy.
//
// Read returns ErrEmpty, ErrNoFields or ErrHeaderTooLarge (possibly
// wrapped) when nothing usable can be built; every other defect is a
// Problem.
func Read(raw []byte, l Limits, forceEnmime bool) (*Entity, []Problem, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil, ErrEmpty
	}
	// src is what is split: raw, or a copy with bare CR line breaks made LF.
	src := raw
	sp := &splitter{opts: l, topBody: -1}
	if bareCRLines(raw) {
		src = crToLF(raw)
		sp.problem(ProblemBareCR, "lines end in a bare CR; read as line breaks")
	}
	root, err := sp.entity(src, 0, "text/plain")
	if err != nil {
		return nil, nil, err
	}
	if len(root.Fields) == 0 {
		return nil, nil, ErrNoFields
	}
	if !(sp.anomalies > 0 || forceEnmime) || !enmimeSafe(src, l) {
		return root, sp.problems, nil
	}
	esrc := src
	if sp.topBody >= 0 {
		// Give enmime the header end the splitter found, so both
		// paths keep the same body.
		esrc = make([]byte, 0, len(src)+1)
		esrc = append(append(append(esrc, src[:sp.topBody]...), '\n'), src[sp.topBody:]...)
	}
	var out []Problem
	eroot, problems := readWithEnmime(esrc)
	if eroot == nil {
		out = append(out, sp.problems...)
		return root, append(out, problems...), nil
	}
	out = append(out, problems...)
	// Keep what the splitter saw that enmime tolerated silently.
	for _, p := range sp.problems {
		if !hasProblem(problems, p.Name) {
			out = append(out, p)
		}
	}
	return eroot, out, nil
}

func hasProblem(ps []Problem, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// clip shortens s to n bytes (on a rune boundary) for problem details.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
