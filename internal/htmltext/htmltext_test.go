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
		{"table cells", "<table><tr><td>a</td><td>b</td></tr></table>", "a\tb"},
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
