package threading_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

func TestExtractText(t *testing.T) {
	tests := []struct {
		name, subject, text, want string
		keepSig                   bool
	}{
		{name: "empty", text: "", want: ""},
		{name: "keep signatures", keepSig: true, text: "Done.\n\n-- \nTom\n\n> q", want: "Done.\n\n--\nTom"},
		{name: "mobile signature kept when asked", keepSig: true, text: "Ok\nSent from my iPhone\n", want: "Ok\nSent from my iPhone"},
		{name: "german gmail with a long name", text: "Ja.\n\nAm Di., 5. März 2024 um 10:15 Uhr schrieb Maximilian von Mustermann-Lüdenscheid <maximilian.mustermann@example.de>:\n> Frage?\n", want: "Ja."},
		{name: "japanese gmail date form", text: "はい。\n\n2024年3月5日(火) 10:15 山田 <taro@example.jp>:\n> 質問\n", want: "はい。"},
		{name: "attribution without date is kept", text: "Here is what John wrote:\nthe printer is broken.\n", want: "Here is what John wrote:\nthe printer is broken."},
		{name: "weak attribution followed by text is not a cut", text: "On Monday I wrote 3 times:\nno answer yet.\n", want: "On Monday I wrote 3 times:\nno answer yet."},
		{name: "forward marker first keeps all", subject: "Printer", text: "FYI\n-------- Weitergeleitete Nachricht --------\nVon: a\nBetreff: b\n\nbody\n", want: "FYI\n-------- Weitergeleitete Nachricht --------\nVon: a\nBetreff: b\n\nbody"},
		{name: "separator after the reply", text: "Yes\n----- Original Message -----\nold", want: "Yes"},
		{name: "separator words without dashes are text", text: "Original message\nsee attachment", want: "Original message\nsee attachment"},
		{name: "from line alone is text", text: "From: my point of view it is fine.\nThanks", want: "From: my point of view it is fine.\nThanks"},
		{name: "our markers are dropped", text: "Thanks\nCase reference: ctx:1000.g5jtbo477mble\n[ref:mnqxgzjngi:glv3ox4k6s6ds]\n", want: "Thanks"},
		{name: "crlf and trailing space", text: "Line one  \r\nLine two\t\r\n\r\n\r\n\r\nLine three\r\n", want: "Line one\nLine two\n\nLine three"},
		{name: "quote only falls back to the full text", text: "> q1\n> q2\n", want: "> q1\n> q2"},
		{name: "attribution without a date above a trailing quote", text: "Fine.\n\nJohn Smith wrote:\n> question\n", want: "Fine."},
		{name: "attribution without a date in an inline reply", text: "Hi\nJohn wrote:\n> q\nanswer\n", want: "Hi\nJohn wrote:\n> q\nanswer"},
		{name: "pipe quoting", text: "Answer\n|> old\n", want: "Answer"},
		{name: "em dash signature", text: "Answer\n—\nName\n", want: "Answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := threading.NewExtractor(&threading.ExtractorOptions{KeepSignatures: tt.keepSig})
			subject := tt.subject
			if subject == "" {
				subject = "Re: x"
			}
			assert.Equal(t, tt.want, ex.ExtractText(subject, tt.text))
		})
	}
}

func TestExtractHTML(t *testing.T) {
	tests := []struct{ name, html, want string }{
		{name: "pre keeps lines", html: "<pre>a  b\nc</pre><blockquote>q</blockquote>", want: "a  b\nc"},
		{name: "table cells", html: "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", want: "a b\nc"},
		{name: "stray end tags", html: "</div></blockquote>answer<br></span>", want: "answer"},
		{name: "unclosed quote", html: "answer<blockquote>old<div>older", want: "answer"},
		{name: "entities", html: "<p>a &lt;b&gt; &amp; &#8364;&nbsp;5</p>", want: "a <b> & € 5"},
		{name: "outlook signature div", html: "<div>answer</div><div id=\"Signature\"><p>John</p></div><div id=\"divRplyFwdMsg\">From: x</div>", want: "answer"},
		{name: "hotmail stopSpelling", html: "answer<hr id=\"stopSpelling\">From: x<br>old", want: "answer"},
		{name: "deep nesting", html: strings.Repeat("<div>", 2000) + "answer" + strings.Repeat("</div>", 2000) + "<blockquote>q</blockquote>", want: "answer"},
	}
	ex := threading.NewExtractor(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ex.ExtractHTML("Re: x", tt.html))
		})
	}
}

func TestExtractReplyChoosesBody(t *testing.T) {
	ex := threading.NewExtractor(nil)
	assert.Empty(t, ex.ExtractReply(nil))
	// Text and HTML without quote containers: the text wins.
	m := &mailcase.Message{Subject: "Re: x", Text: "from text\n> q", HTML: "<p>from html</p>"}
	assert.Equal(t, "from text", ex.ExtractReply(m))
	// HTML with a quote container wins over the text.
	m.HTML = "<p>from html</p><blockquote type=\"cite\">q</blockquote>"
	assert.Equal(t, "from html", ex.ExtractReply(m))
	// HTML only.
	m = &mailcase.Message{Subject: "Re: x", HTML: "<p>only html</p>", TextFromHTML: true, Text: "only html"}
	assert.Equal(t, "only html", ex.ExtractReply(m))
}
