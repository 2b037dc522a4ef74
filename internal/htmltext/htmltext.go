// Package htmltext renders HTML mail bodies as text. It is the one HTML
// renderer of the module: mailcase.ParseMessage uses the plain form
// (Plain) for the text of HTML-only mail, and threading the marked form
// (Render), whose lines say which are quoted, attribution lines, and where
// history and signature containers start.
//
// # Rendering
//
// Block elements (p, div, li, tr, headings, ...) start a new line and <br>
// ends one; a paragraph (<p>, except Outlook's MsoNormal paragraphs, which
// have no margin) is followed by a blank line, and headings and lists have
// a blank line above and below, as their margins show in a mail client. A list item starts with
// "- ". Table cells are separated by a space. White space outside <pre> is
// collapsed; <pre> keeps its line breaks and spacing. Entities are decoded.
// The content of head, title, style, script, noscript, noframes and
// template is dropped (what a mail client displays); an unclosed <head>
// ends where HTML5 ends it (at a body element or text).
//
// Rendering is linear in the size of the input, whatever its nesting or
// stray end tags, and never fails: broken HTML gives its best-effort text.
package htmltext

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Kind classifies a rendered line.
type Kind uint8

const (
	// Text is a line of the body's own text.
	Text Kind = iota
	// Quoted is a line inside a quote container (<blockquote>, Yahoo's
	// yahoo_quoted).
	Quoted
	// Attrib is a line of an attribution container (Gmail gmail_attr,
	// Thunderbird moz-cite-prefix).
	Attrib
	// Cut marks where a history container starts (Outlook divRplyFwdMsg,
	// border-top header blocks, ...); the line has no text.
	Cut
	// Sig marks where a signature container starts (gmail_signature,
	// moz-signature, ...); the line has no text.
	Sig
)

// Line is one rendered line. Text has no quote prefix: the marks are in
// Kind.
type Line struct {
	Text string
	Kind Kind
}

// Render renders h as marked lines.
func Render(h string) []Line { return render(h).lines }

// Plain renders h as plain text: the lines of Render without marks (Cut
// and Sig lines dropped, no quote prefix), trailing white space removed
// from each line, runs of blank lines collapsed to one, and no leading or
// trailing blank lines.
func Plain(h string) string { return PlainLines(Render(h)) }

// PlainLines joins rendered lines as Plain does.
func PlainLines(lines []Line) string {
	var b strings.Builder
	blank := false
	for _, l := range lines {
		if l.Kind == Cut || l.Kind == Sig {
			continue
		}
		s := strings.TrimRight(l.Text, " \t\u00a0")
		if strings.TrimSpace(s) == "" {
			blank = b.Len() > 0
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			if blank {
				b.WriteByte('\n')
			}
		}
		if b.Len() == 0 {
			s = strings.TrimLeft(s, " \t\r\n")
		}
		b.WriteString(s)
		blank = false
	}
	return b.String()
}

// dropped reports the elements whose content is not rendered.
func dropped(a atom.Atom) bool {
	switch a {
	case atom.Head, atom.Title, atom.Style, atom.Script, atom.Noscript, atom.Noframes, atom.Template:
		return true
	}
	return false
}

// maxDepth bounds the element stack kept while rendering; deeper nesting
// is flattened (hostile HTML cannot make rendering quadratic).
const maxDepth = 512

// elem is an open element with what it marks.
type elem struct {
	a      atom.Atom
	name   string
	quote  bool
	attrib bool
	skip   bool
	pre    bool
	// para is a <p> with the default margins: a blank line follows it.
	para bool
}

// renderer turns HTML into lines, marking quote, attribution, history and
// signature containers. It uses the html tokenizer, which is linear.
type renderer struct {
	lines  []Line
	cur    strings.Builder
	stack  []elem
	quote  int
	attrib int
	skip   int
	pre    int
	space  bool // a space is pending before the next word
	// bullet: the current line holds only a list item's bullet.
	bullet bool
	// open counts the elements on the stack by name, so an end tag with no
	// open element of its name (a stray end tag) costs O(1).
	open map[string]int
	// steps counts the stack entries inspected by end tags (tests check
	// that it stays linear in the input).
	steps int
}

// render runs a renderer over h.
func render(h string) *renderer {
	r := &renderer{open: make(map[string]int)}
	z := html.NewTokenizer(strings.NewReader(h))
	z.SetMaxBuf(0)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			r.flush()
			return r
		case html.TextToken:
			t := z.Text()
			if r.inHeadProper() && len(bytes.TrimSpace(t)) > 0 {
				// Text directly in <head> implies </head> (HTML5: the
				// "in head" insertion mode's "anything else").
				r.end(atom.Head, "head")
			}
			if r.skip > 0 {
				continue
			}
			r.text(string(t))
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			var id, class, style string
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "id":
					id = string(v)
				case "class":
					class = string(v)
				case "style":
					style = string(v)
				}
			}
			r.start(atom.Lookup(name), string(name), id, class, style, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			r.end(atom.Lookup(name), string(name))
		}
	}
}

func isBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Li, atom.Ul, atom.Ol, atom.Tr, atom.Table, atom.H1, atom.H2,
		atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Pre, atom.Hr, atom.Section,
		atom.Article, atom.Header, atom.Footer, atom.Center, atom.Address, atom.Dd, atom.Dt,
		atom.Dl, atom.Tbody, atom.Thead, atom.Body, atom.Html:
		return true
	}
	return false
}

func isVoid(a atom.Atom) bool {
	switch a {
	case atom.Br, atom.Hr, atom.Img, atom.Meta, atom.Link, atom.Input, atom.Col, atom.Area,
		atom.Base, atom.Wbr, atom.Source, atom.Embed, atom.Param, atom.Track:
		return true
	}
	return false
}

// inHead reports elements allowed in <head>; any other start tag implies
// </head>, which HTML5 lets authors omit.
func inHead(a atom.Atom) bool {
	switch a {
	case atom.Base, atom.Basefont, atom.Bgsound, atom.Link, atom.Meta, atom.Noframes,
		atom.Noscript, atom.Script, atom.Style, atom.Template, atom.Title, atom.Head:
		return true
	}
	return false
}

// inHeadProper reports that the innermost open element is <head> itself
// (not a <title>, <style> or <script> inside it).
func (r *renderer) inHeadProper() bool {
	return r.open["head"] > 0 && len(r.stack) > 0 && r.stack[len(r.stack)-1].a == atom.Head
}

func (r *renderer) start(a atom.Atom, name, id, class, style string, selfClosing bool) {
	if r.open["head"] > 0 && r.open["template"] == 0 && !inHead(a) {
		// <body>, <p>, <div>... close an unclosed <head>.
		r.end(atom.Head, "head")
	}
	if r.skip > 0 {
		// Nothing inside a dropped element is rendered.
		if !isVoid(a) && !selfClosing {
			r.push(elem{a: a, name: name})
		}
		return
	}
	switch a {
	case atom.Br:
		r.newline()
		return
	case atom.Td, atom.Th:
		r.space = true
	}
	if isBlock(a) {
		r.flush()
	}
	if a == atom.Li && !selfClosing {
		// A list item starts a line with a bullet.
		r.cur.WriteString("- ")
		r.bullet = true
		r.space = false
	}
	lc := strings.ToLower(class)
	lid := strings.ToLower(id)
	st := strings.ToLower(strings.ReplaceAll(style, " ", ""))
	switch {
	case lid == "divrplyfwdmsg" || lid == "appendonsend" || lid == "stopspelling" ||
		lid == "mail-editor-reference-message-container" ||
		strings.Contains(lc, "outlookmessageheader") ||
		(a == atom.Div || a == atom.P) && strings.Contains(st, "border-top:solid") && strings.Contains(st, "border:none"):
		r.flush()
		r.lines = append(r.lines, Line{Kind: Cut})
	case strings.Contains(lc, "gmail_signature") || strings.Contains(lc, "moz-signature") ||
		lid == "signature" || strings.Contains(lid, "outlook-mobile-signature"):
		r.flush()
		r.lines = append(r.lines, Line{Kind: Sig})
	}
	if isVoid(a) || selfClosing {
		if a == atom.Hr {
			r.flush()
		}
		return
	}
	e := elem{a: a, name: name}
	switch {
	case dropped(a):
		e.skip = true
	case a == atom.Blockquote || strings.Contains(lc, "yahoo_quoted"):
		e.quote = true
	case strings.Contains(lc, "gmail_attr") || strings.Contains(lc, "moz-cite-prefix"):
		e.attrib = true
	case a == atom.Pre:
		e.pre = true
	case a == atom.P && !strings.Contains(lc, "msonormal"):
		e.para = true
	case isHeading(a) || (a == atom.Ul || a == atom.Ol) && r.open["li"] == 0:
		// Headings and (outermost) lists have margins above and below.
		e.para = true
		r.gap()
	}
	r.push(e)
}

func isHeading(a atom.Atom) bool {
	switch a {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

// gap ends the current line and adds a blank line after it, unless the
// rendering is empty or already ends in a blank line.
func (r *renderer) gap() {
	r.flush()
	if n := len(r.lines); n > 0 && r.lines[n-1].Kind <= Attrib && strings.TrimSpace(r.lines[n-1].Text) != "" {
		r.newline()
	}
}

func (r *renderer) push(e elem) {
	if len(r.stack) >= maxDepth {
		return
	}
	if e.quote || e.attrib {
		r.flush()
	}
	r.stack = append(r.stack, e)
	r.open[e.name]++
	r.count(e, 1)
}

func (r *renderer) count(e elem, d int) {
	if e.quote {
		r.quote += d
	}
	if e.attrib {
		r.attrib += d
	}
	if e.skip {
		r.skip += d
	}
	if e.pre {
		r.pre += d
	}
}

func (r *renderer) end(a atom.Atom, name string) {
	// Ignore stray end tags in O(1). Otherwise find the nearest open
	// element of that name: every element inspected on the way is popped
	// with it, so the work is bounded by the pushes (amortised linear).
	if r.open[name] == 0 {
		return
	}
	for i := len(r.stack) - 1; i >= 0; i-- {
		r.steps++
		if r.stack[i].name != name {
			continue
		}
		if r.skip == 0 && (isBlock(a) || r.stack[i].quote || r.stack[i].attrib) {
			r.flush()
			if r.stack[i].para {
				r.newline()
			}
		}
		for j := len(r.stack) - 1; j >= i; j-- {
			r.count(r.stack[j], -1)
			r.open[r.stack[j].name]--
		}
		r.stack = r.stack[:i]
		return
	}
}

// text adds character data, collapsing white space outside <pre>.
func (r *renderer) text(s string) {
	if r.pre > 0 {
		for {
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				r.cur.WriteString(s)
				return
			}
			r.cur.WriteString(strings.TrimRight(s[:i], "\r"))
			r.newline()
			s = s[i+1:]
		}
	}
	for len(s) > 0 {
		i := strings.IndexAny(s, " \t\r\n\f")
		w := s
		if i >= 0 {
			w = s[:i]
		}
		if w != "" {
			w = strings.ReplaceAll(w, "\u00a0", " ")
			if r.space && r.cur.Len() > 0 && !r.bullet {
				r.cur.WriteByte(' ')
			}
			r.cur.WriteString(w)
			r.space, r.bullet = false, false
		}
		if i < 0 {
			return
		}
		r.space = true
		s = s[i+1:]
	}
}

// newline ends the current line (an empty current line still ends, which
// makes <br><br> a blank line).
func (r *renderer) newline() {
	k := Text
	switch {
	case r.quote > 0:
		k = Quoted
	case r.attrib > 0:
		k = Attrib
	}
	s := r.cur.String()
	r.cur.Reset()
	r.space, r.bullet = false, false
	r.lines = append(r.lines, Line{Text: s, Kind: k})
}

// flush ends the current line if it holds text.
func (r *renderer) flush() {
	if r.cur.Len() > 0 {
		r.newline()
	}
}
