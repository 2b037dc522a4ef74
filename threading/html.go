package threading

import (
	"strings"

	"github.com/emailcrm/emailcrm/internal/htmltext"
)

func htmlHasQuoteMarkers(h string) bool {
	for _, m := range []string{"gmail_quote", "divRplyFwdMsg", "type=\"cite\"", "type=cite",
		"moz-cite-prefix", "yahoo_quoted", "appendonsend", "border-top:solid", "border-top: solid",
		"mail-editor-reference-message-container", "stopSpelling", "<blockquote"} {
		if strings.Contains(h, m) {
			return true
		}
	}
	return false
}

// renderHTML renders h to marked lines with the module's one HTML
// renderer (internal/htmltext): quoted lines get a "> " prefix, as quoted
// lines of a text body have.
func renderHTML(h string) []line {
	rendered := htmltext.Render(h)
	out := make([]line, len(rendered))
	for i, l := range rendered {
		switch l.Kind {
		case htmltext.Quoted:
			out[i] = line{s: "> " + l.Text, kind: kQuoted}
		case htmltext.Attrib:
			out[i] = line{s: l.Text, kind: kAttrib}
		case htmltext.Cut:
			out[i] = line{kind: kCut}
		case htmltext.Sig:
			out[i] = line{kind: kSig}
		default:
			out[i] = line{s: l.Text, kind: kText}
		}
	}
	return out
}
