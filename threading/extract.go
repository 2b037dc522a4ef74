package threading

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emailcrm/emailcrm/mailcase"
)

// ExtractorOptions configures an Extractor. A nil *ExtractorOptions means
// defaults.
type ExtractorOptions struct {
	// KeepSignatures keeps "-- " and mobile signatures in the reply text.
	KeepSignatures bool
}

// Extractor extracts the new text of a reply. It implements
// mailcase.ReplyExtractor and is safe for concurrent use.
//
// # Rules
//
// A forward (the outermost subject marker is Fwd:, WG:, TR:, ... or the
// first boundary met is a "Forwarded message" marker) keeps its whole text.
// Otherwise the text is cut at the first of: an "-----Original Message-----"
// style separator (many languages), an Outlook header block (From: followed
// by at least two of Sent:/Date:, To:, Subject: in many languages), an
// attribution line ("On <date>, <name> wrote:" and its translations, also
// wrapped over two lines) followed by unquoted history, or an HTML history
// container (Outlook divRplyFwdMsg, border-top header blocks). Signatures
// ("-- " and mobile signatures) end the reply. Then '>' quoted lines after
// the last line of new text are dropped with their attribution; quoted
// lines between answers (inline replies) are kept with the answers.
//
// HTML mail whose HTML holds quote containers (Gmail gmail_quote, Apple
// Mail and Thunderbird blockquote type=cite and moz-cite-prefix, Yahoo
// yahoo_quoted, Outlook divRplyFwdMsg) is rendered to text with the
// containers marked, then the same rules apply; otherwise the text body is
// used.
//
// The output has trailing space removed from lines, runs of blank lines
// collapsed to one and no leading or trailing blank lines. When nothing new
// remains, the full text is returned. Extraction runs in time linear in the
// size of the mail.
type Extractor struct {
	opts ExtractorOptions
}

var _ mailcase.ReplyExtractor = (*Extractor)(nil)

// NewExtractor returns an Extractor.
func NewExtractor(opts *ExtractorOptions) *Extractor {
	var o ExtractorOptions
	if opts != nil {
		o = *opts
	}
	return &Extractor{opts: o}
}

// ExtractReply implements mailcase.ReplyExtractor.
func (e *Extractor) ExtractReply(m *mailcase.Message) string {
	if m == nil {
		return ""
	}
	if m.HTML != "" && (strings.TrimSpace(m.Text) == "" || m.TextFromHTML || htmlHasQuoteMarkers(m.HTML)) {
		return e.ExtractHTML(m.Subject, m.HTML)
	}
	return e.ExtractText(m.Subject, m.Text)
}

// ExtractText extracts the reply from a plain-text body.
func (e *Extractor) ExtractText(subject, text string) string {
	return e.extract(subject, splitText(text))
}

// ExtractHTML extracts the reply from an HTML body.
func (e *Extractor) ExtractHTML(subject, html string) string {
	return e.extract(subject, renderHTML(html))
}

// lineKind classifies a line of the body.
type lineKind uint8

const (
	kText   lineKind = iota
	kQuoted          // '>' quoting or an HTML quote container
	kAttrib          // an HTML attribution container (gmail_attr, moz-cite-prefix)
	kCut             // an HTML history container starts here (no text)
	kSig             // an HTML signature container starts here (no text)
	kMarker          // our token or context line: not text
)

type line struct {
	s    string
	kind lineKind
}

func (l line) blank() bool { return l.kind <= kAttrib && strings.TrimSpace(l.s) == "" }

func splitText(text string) []line {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	out := make([]line, 0, strings.Count(text, "\n")+1)
	for {
		i := strings.IndexByte(text, '\n')
		s := text
		if i >= 0 {
			s = text[:i]
		}
		k := kText
		if isQuotedLine(s) {
			k = kQuoted
		}
		out = append(out, line{s: strings.TrimRight(s, "\r"), kind: k})
		if i < 0 {
			return out
		}
		text = text[i+1:]
	}
}

func isQuotedLine(s string) bool {
	t := strings.TrimLeft(s, " \t")
	return strings.HasPrefix(t, ">") || strings.HasPrefix(t, "|>")
}

func (e *Extractor) extract(subject string, lines []line) string {
	full := func() string { return joinLines(lines, len(lines)) }
	if isForwardSubject(subject) {
		return full()
	}
	h, fwd := hardBoundary(lines)
	if fwd {
		return full()
	}
	body := dropMarkers(lines[:h])
	body = body[:listFooterStart(body)]
	if !e.opts.KeepSignatures {
		body = body[:signatureStart(body)]
	}
	last := lastContent(body)
	if last < 0 {
		return full()
	}
	body = body[bottomPosted(body[:last+1]) : last+1]
	return joinLines(body, len(body))
}

// listFooterStart returns the index where a mailing list's footer starts
// (a rule line, then a few lines naming the list: "riak-users mailing
// list", a listinfo or unsubscribe URL, a lists. address), or len(lines).
// A list appends it below everything, the quote included, so it is
// neither new text nor history.
func listFooterStart(lines []line) int {
	rule := -1
	n := 0
	for i := len(lines) - 1; i >= 0 && n <= 8; i-- {
		if lines[i].blank() {
			continue
		}
		if lines[i].kind != kText {
			break
		}
		t := normLine(lines[i].s)
		if isRule(t) || strings.HasPrefix(t, "___") {
			rule = i
			break
		}
		n++
	}
	if rule < 0 || n == 0 {
		return len(lines)
	}
	for _, l := range lines[rule+1:] {
		t := strings.ToLower(l.s)
		for _, m := range listFooterMarks {
			if strings.Contains(t, m) {
				return rule
			}
		}
	}
	return len(lines)
}

// listFooterMarks are what a list footer says of itself.
var listFooterMarks = []string{"mailing list", "listinfo", "unsubscribe", "@lists.", "@googlegroups.com", "/mailman/", "you received this message because"}

// bottomPosted returns where the new text of a bottom-posted reply starts:
// when the body opens with the attribution and the quote and no quoted
// line follows the first new text, the quote is history written first,
// not part of the answer; otherwise 0 (an interleaved answer keeps the
// questions it answers).
func bottomPosted(lines []line) int {
	first := -1
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l.blank() || l.kind == kQuoted || l.kind == kAttrib {
			continue
		}
		t := normLine(l.s)
		if n := attribution(lines, i); n > 0 {
			i += n - 1
			continue
		}
		if isWeakAttribution(t) {
			if next := nextNonBlank(lines, i+1); next < len(lines) && lines[next].kind == kQuoted {
				continue
			}
		}
		first = i
		break
	}
	if first <= 0 {
		return 0
	}
	quoted := false
	for _, l := range lines[:first] {
		quoted = quoted || l.kind == kQuoted
	}
	if !quoted {
		return 0
	}
	for _, l := range lines[first:] {
		if l.kind == kQuoted {
			return 0
		}
	}
	return first
}

// hardBoundary returns the index of the first line of unquoted history,
// or len(lines); fwd reports that a forward marker came first.
func hardBoundary(lines []line) (int, bool) {
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch l.kind {
		case kCut:
			return i, false
		case kQuoted, kSig:
			continue
		}
		t := normLine(l.s)
		if t == "" {
			continue
		}
		if isForwardMarker(t) {
			return i, true
		}
		if isSeparator(t) {
			return i, false
		}
		if isHeaderBlock(lines, i) {
			// Drop a rule line (Outlook's underscores) just above.
			return i, false
		}
		if n := attribution(lines, i); n > 0 {
			next := nextNonBlank(lines, i+n)
			if next < len(lines) && lines[next].kind == kText && strongAttribution(lines, i, n) {
				return i, false // history follows unquoted
			}
			i += n - 1
		}
	}
	return len(lines), false
}

// signatureStart returns the index of the first signature line.
func signatureStart(lines []line) int {
	for i, l := range lines {
		if l.kind == kSig {
			return i
		}
		if l.kind != kText {
			continue
		}
		if r := strings.TrimRight(l.s, " \t"); r == "--" || r == "-- " || r == "—" {
			if strings.HasPrefix(l.s, "--") || r == "—" {
				return i
			}
		}
		t := normLine(l.s)
		if len(t) < 120 && hasAnyPrefix(t, mobileSignatures) {
			return i
		}
	}
	return len(lines)
}

// lastContent returns the index of the last line of new text: not quoted,
// not blank, not an attribution or a rule line.
func lastContent(lines []line) int {
	last := -1
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l.kind != kText || l.blank() {
			continue
		}
		t := normLine(l.s)
		if isRule(t) {
			continue
		}
		if n := attribution(lines, i); n > 0 {
			i += n - 1
			continue
		}
		if isWeakAttribution(t) {
			if next := nextNonBlank(lines, i+1); next < len(lines) && lines[next].kind == kQuoted {
				continue // "John wrote:" right above a quote
			}
		}
		last = i
	}
	return last
}

// isWeakAttribution reports a line ending with an attribution verb and a
// colon, without the date that isAttribution asks for ("John wrote:").
// It only ever marks a line right above quoted text.
func isWeakAttribution(t string) bool {
	if len(t) > 200 || !strings.HasSuffix(t, ":") && !strings.HasSuffix(t, "：") {
		return false
	}
	tail := t
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	for _, v := range attribVerbs {
		if strings.Contains(tail, v) {
			return true
		}
	}
	return false
}

// nextNonBlank returns the index of the first non-blank line at or after i.
func nextNonBlank(lines []line, i int) int {
	for i < len(lines) && (lines[i].blank() || lines[i].kind >= kCut) {
		i++
	}
	return i
}

// joinLines joins lines[:n] with right-trimmed lines, runs of blank lines
// collapsed and no outer blank lines.
func joinLines(lines []line, n int) string {
	var b strings.Builder
	blank := false
	started := false
	for _, l := range lines[:n] {
		if l.kind >= kCut {
			continue
		}
		s := strings.TrimRightFunc(l.s, unicode.IsSpace)
		if s == "" {
			blank = started
			continue
		}
		if started {
			b.WriteByte('\n')
			if blank {
				b.WriteByte('\n')
			}
		}
		b.WriteString(s)
		started, blank = true, false
	}
	return b.String()
}

// normLine lower-cases and trims a line, with no-break spaces as spaces
// and leading bold markers removed.
func normLine(s string) string {
	if len(s) > 1000 {
		s = s[:1000]
	}
	s = strings.ReplaceAll(s, "\u00a0", " ")
	s = strings.TrimSpace(s)
	s = strings.TrimLeft(s, "*")
	return strings.ToLower(strings.TrimSpace(s))
}

// stripDecor removes the dashes, underscores and similar around a
// separator's words.
func stripDecor(t string) (string, int) {
	n := len(t)
	t = strings.Trim(t, "-_=*~ \t")
	return strings.TrimRight(t, ":： "), n - len(t)
}

func isSeparator(t string) bool {
	w, decor := stripDecor(t)
	if decor < 2 {
		return false
	}
	for _, s := range separatorTexts {
		if w == s {
			return true
		}
	}
	return false
}

func isForwardMarker(t string) bool {
	w, _ := stripDecor(t)
	if len(w) > 60 {
		return false
	}
	for _, s := range forwardTexts {
		if w == s {
			return true
		}
	}
	return false
}

// isRule reports a line made only of '-', '_', '=' or '*' (5 or more).
func isRule(t string) bool {
	if len(t) < 5 {
		return false
	}
	return strings.Trim(t, "-_=*—") == ""
}

// headerKey reports which header-block field t starts with.
func headerKey(t string) int {
	for k, list := range [][]string{hdrFrom, hdrDate, hdrTo, hdrSubject, hdrCc} {
		for _, key := range list {
			if !strings.HasPrefix(t, key) {
				continue
			}
			r := strings.TrimLeft(t[len(key):], " \u00a0*")
			if strings.HasPrefix(r, ":") || strings.HasPrefix(r, "：") {
				return k + 1
			}
		}
	}
	return 0
}

const (
	keyFrom = 1
	keyDate = 2
	keyTo   = 3
	keySubj = 4
)

// isHeaderBlock reports an Outlook-style header block starting at line i.
func isHeaderBlock(lines []line, i int) bool {
	if headerKey(normLine(lines[i].s)) != keyFrom {
		return false
	}
	var seen [6]bool
	count := 0
	for j := i + 1; j < len(lines) && j <= i+8; j++ {
		if lines[j].kind != kText {
			break
		}
		k := headerKey(normLine(lines[j].s))
		if k > keyFrom && k <= keySubj && !seen[k] {
			seen[k] = true
			count++
		}
	}
	return count >= 2
}

// attribution returns how many lines (1 or 2) form an attribution line at
// i, or 0. HTML attribution containers count as one.
func attribution(lines []line, i int) int {
	l := lines[i]
	if l.kind == kAttrib && !l.blank() {
		n := 1
		for i+n < len(lines) && lines[i+n].kind == kAttrib {
			n++
		}
		return n
	}
	if l.kind != kText {
		return 0
	}
	t := normLine(l.s)
	if t == "" || len(t) > 400 {
		return 0
	}
	if isAttribution(t) {
		return 1
	}
	if i+1 < len(lines) && lines[i+1].kind == kText && looksAttribStart(t) {
		n := normLine(lines[i+1].s)
		if n != "" && len(n) <= 120 && isAttribution(t+" "+n) {
			return 2
		}
	}
	return 0
}

func looksAttribStart(t string) bool {
	if hasAnyPrefix(t, attribOpeners) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(t)
	return unicode.IsDigit(r) || strings.IndexByte(t, '@') >= 0
}

// isAttribution reports an "On <date>, <name> wrote:" line in any of the
// known languages: it ends with a colon, names a date (a digit), starts
// like an attribution or carries an address, and has an attribution verb
// near its end (or, as Gmail writes in Japanese and Korean, starts with a
// date and ends with "<address>:").
func isAttribution(t string) bool {
	if !strings.HasSuffix(t, ":") && !strings.HasSuffix(t, "：") {
		return false
	}
	if strings.IndexFunc(t, unicode.IsDigit) < 0 {
		return false
	}
	r, _ := utf8.DecodeRuneInString(t)
	if unicode.IsDigit(r) && (strings.HasSuffix(t, ">:") || strings.HasSuffix(t, ">：")) {
		return true
	}
	if !looksAttribStart(t) {
		return false
	}
	tail := t
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	for _, v := range attribVerbs {
		if strings.Contains(tail, v) {
			return true
		}
	}
	// German, Dutch, Swedish, Polish and Portuguese Gmail put the verb
	// before the name: "Am ... schrieb Max <max@x.de>:".
	if strings.HasSuffix(t, ">:") {
		for _, v := range attribVerbs {
			if strings.Contains(t, " "+v+" ") {
				return true
			}
		}
	}
	return false
}

// strongAttribution reports whether the attribution at lines[i:i+n] names
// an address, a time or a year: enough to cut unquoted text after it.
func strongAttribution(lines []line, i, n int) bool {
	if lines[i].kind == kAttrib {
		return true
	}
	t := lines[i].s
	if n == 2 {
		t += " " + lines[i+1].s
	}
	if strings.IndexByte(t, '@') >= 0 {
		return true
	}
	digits := 0
	for j := 0; j < len(t); j++ {
		c := t[j]
		if c >= '0' && c <= '9' {
			digits++
			if digits == 4 {
				return true
			}
			continue
		}
		if c == ':' && digits > 0 && j+2 < len(t) && t[j+1] >= '0' && t[j+1] <= '9' && t[j+2] >= '0' && t[j+2] <= '9' {
			return true
		}
		digits = 0
	}
	return false
}

// dropMarkers marks the lines that hold only our thread markers (the token
// and the context line of outgoing mail): they are not new text and are
// left out of the output.
func dropMarkers(lines []line) []line {
	for i := range lines {
		if lines[i].kind == kText && isMarkerLine(normLine(lines[i].s)) {
			lines[i].kind = kMarker
		}
	}
	return lines
}

func isMarkerLine(t string) bool {
	if len(t) > 200 {
		return false
	}
	t = strings.TrimSpace(strings.TrimPrefix(t, "case reference:"))
	if strings.HasPrefix(t, "[ref:") && strings.HasSuffix(t, "]") {
		return strings.Trim(t[5:len(t)-1], "abcdefghijklmnopqrstuvwxyz234567:") == ""
	}
	if rest, ok := strings.CutPrefix(t, "ctx:"); ok {
		num, tag, ok := strings.Cut(rest, ".")
		return ok && validNumber(num) && len(tag) == 13 && strings.Trim(tag, "abcdefghijklmnopqrstuvwxyz234567") == ""
	}
	return false
}
