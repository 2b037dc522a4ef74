package htmltext

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// hostileHTML is maxDepth nested unclosed elements followed by n stray
// end tags (of a name with no open element, and of the outermost one).
func hostileHTML(n int) string {
	var b strings.Builder
	b.WriteString("<b>answer</b>")
	for range maxDepth {
		b.WriteString("<span>")
	}
	for i := range n {
		if i%2 == 0 {
			b.WriteString("</div>")
		} else {
			b.WriteString("</em>")
		}
	}
	return b.String()
}

// TestRenderEndTagsLinear: stray end tags cost O(1) each, and closing an
// element inspects only the elements it pops, so the stack work is
// bounded by the start tags, whatever the number of end tags.
func TestRenderEndTagsLinear(t *testing.T) {
	tests := []struct {
		name string
		html string
		max  int
	}{
		{name: "stray end tags under deep nesting", html: hostileHTML(100000), max: 2 * (maxDepth + 1)},
		{name: "end tag of the outermost element", html: "<div>" + strings.Repeat("<span>", 2000) + "x" + strings.Repeat("</div><div>", 1000), max: 4 * 2000},
		{name: "matched nesting", html: strings.Repeat("<div>", 2000) + "x" + strings.Repeat("</div>", 2000), max: 2 * 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(tt.html)
			assert.LessOrEqual(t, r.steps, tt.max)
			for name, n := range r.open {
				assert.GreaterOrEqual(t, n, 0, name)
			}
		})
	}
}
