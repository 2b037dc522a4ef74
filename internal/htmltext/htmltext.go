// Package htmltext renders HTML mail bodies as text.
package htmltext

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Plain renders HTML as plain text: block elements become line breaks,
// list items get a "- " prefix, and the content of head, style, script,
// noscript and template elements is dropped. Entities are decoded. It never
// fails; broken HTML gives its best-effort text.
func Plain(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var out strings.Builder
	out.Grow(len(s) / 2)
	skip := 0 // depth inside elements whose text is dropped
	// head is true inside <head>. It ends at </head>, <body>, any start
	// tag that belongs to the body or text outside head elements, as in an
	// HTML5 parser: mail often omits </head>.
	head := false
	pre := 0
	space := false // a pending space
	newlines := 2  // trailing newlines written (start as if after a block)
	nl := func(n int) {
		space = false
		for newlines < n {
			out.WriteByte('\n')
			newlines++
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlankLines(out.String()))
		case html.TextToken:
			if head && skip == 0 && len(bytes.TrimSpace(z.Raw())) > 0 {
				head = false
			}
			if skip > 0 || head {
				continue
			}
			t := string(z.Text())
			if pre > 0 {
				out.WriteString(t)
				if strings.HasSuffix(t, "\n") {
					newlines = 1
				} else if t != "" {
					newlines = 0
				}
				continue
			}
			for i, w := range strings.Fields(t) {
				if (i > 0 || space || startsWithSpace(t)) && newlines == 0 {
					out.WriteByte(' ')
				}
				out.WriteString(w)
				newlines = 0
				space = false
			}
			if endsWithSpace(t) {
				space = true
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if a == atom.Head {
				head = tt == html.StartTagToken
				continue
			}
			if head && tt != html.EndTagToken && !headElement(a) {
				head = false
			}
			hidden := skip > 0 || head
			switch a {
			case atom.Style, atom.Script, atom.Noscript, atom.Template, atom.Title:
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case atom.Pre:
				if tt == html.StartTagToken {
					pre++
					nl(1)
				} else if tt == html.EndTagToken && pre > 0 {
					pre--
					nl(1)
				}
			case atom.Br:
				if !hidden {
					out.WriteByte('\n')
					newlines++
					space = false
				}
			case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Table, atom.Ul, atom.Ol, atom.Hr:
				if !hidden {
					nl(2)
				}
			case atom.Li:
				if !hidden {
					nl(1)
					if tt == html.StartTagToken {
						out.WriteString("- ")
						newlines = 0
					}
				}
			case atom.Div, atom.Tr, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Address, atom.Dd, atom.Dt, atom.Center, atom.Caption, atom.Form:
				if !hidden {
					nl(1)
				}
			case atom.Td, atom.Th:
				if !hidden && tt == html.StartTagToken && newlines == 0 {
					out.WriteByte('\t')
					space = false
				}
			}
		}
	}
}

// headElement reports whether a start tag may appear inside <head>.
func headElement(a atom.Atom) bool {
	switch a {
	case atom.Html, atom.Base, atom.Basefont, atom.Bgsound, atom.Link, atom.Meta,
		atom.Style, atom.Script, atom.Noscript, atom.Template, atom.Title:
		return true
	}
	return false
}

func startsWithSpace(s string) bool {
	return s != "" && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t' || s[0] == '\r')
}

func endsWithSpace(s string) bool {
	return s != "" && strings.IndexByte(" \n\t\r", s[len(s)-1]) >= 0
}

// collapseBlankLines trims trailing space on lines and keeps at most one
// empty line in a row.
func collapseBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\u00a0")
		if strings.TrimSpace(l) == "" {
			blank++
			if blank > 1 {
				continue
			}
			l = ""
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// ---------------------------------------------------------------------------
