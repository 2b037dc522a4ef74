package htmltext

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPlain(t *testing.T) {
	tests := []struct{ name, html, want string }{
		{"entities and breaks", "<p>a &lt; b</p><p>c<br/>d</p>", "a < b\n\nc\nd"},
		{"drops head, style, script", "<html><head><title>T</title><style>x{}</style></head><body>Hi<script>evil()</script> there<noscript>ns</noscript></body></html>", "Hi there"},
		{"lists", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
		{"pre keeps spacing", "<pre>a  b\n c</pre>", "a  b\n c"},
		// One renderer for mailcase and threading (issue 11): cells are
		// separated by a space (threading's behaviour, chosen over a tab).
		{"table cells", "<table><tr><td>a</td><td>b</td></tr></table>", "a b"},
		{"noframes dropped in head and body", "<html><head><noframes>nf1</noframes></head><body>Hi<noframes>nf2</noframes></body></html>", "Hi"},
		{"quote marks are not in the plain form", "<p>answer</p><blockquote><p>old</p></blockquote>", "answer\n\nold"},
		{"signature and history containers", "<div>hi</div><div class=gmail_signature>sig</div><div id=divRplyFwdMsg>From: x</div>", "hi\nsig\nFrom: x"},
		{"list item bullet with leading space", "<ul><li> one <b>bold</b></li><li>\n two</li></ul>", "- one bold\n- two"},
		{"broken html", "<p>open <b>bold <i>both", "open bold both"},
		{"collapses blank lines", "<div>a</div><p></p><p></p><div>b</div>", "a\n\nb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Plain(tt.html))
		})
	}
}

func TestPlain_HeadWithoutEnd(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{name: "no </head>, <body>", html: `<html><head><meta charset=utf-8><title>x</title><body><p>My printer is broken</p>`, want: "My printer is broken"},
		{name: "no </head>, no <body>", html: `<html><head><title>x</title><p>My printer is broken`, want: "My printer is broken"},
		{name: "no </head>, bare text", html: `<head><meta charset=utf-8>My printer is broken`, want: "My printer is broken"},
		{name: "style and script in head still dropped", html: `<head><style>p{}</style><script>x()</script><div>Hello</div>`, want: "Hello"},
		{name: "closed head", html: `<html><head><title>t</title></head><body>Hi</body></html>`, want: "Hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Plain(tt.html))
		})
	}
}

func TestRender_Marks(t *testing.T) {
	got := Render(`<div>new</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Bob wrote:</div><blockquote>old<br>older</blockquote></div><div class=gmail_signature>-- sig</div>`)
	assert.Equal(t, []Line{
		{Text: "new", Kind: Text},
		{Text: "On Mon, Bob wrote:", Kind: Attrib},
		{Text: "old", Kind: Quoted},
		{Text: "older", Kind: Quoted},
		{Kind: Sig},
		{Text: "-- sig", Kind: Text},
	}, got)
}
