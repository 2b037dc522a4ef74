package threading

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/internal/htmltext"
	"github.com/emailcrm/emailcrm/mailcase"
)

var updateHTML = flag.Bool("update", false, "rewrite testdata/html/*.golden from the current renderings")

// markedText writes marked lines as the golden files show them: quoted
// lines keep their "> ", attribution lines get "A| ", and the history and
// signature marks are lines of their own.
func markedText(lines []line) string {
	var b strings.Builder
	for _, l := range lines {
		switch l.kind {
		case kCut:
			b.WriteString("[history]")
		case kSig:
			b.WriteString("[signature]")
		case kAttrib:
			b.WriteString("A| " + l.s)
		default:
			b.WriteString(l.s)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// unmarked removes the marks of threading's lines: what is left must be
// ParseMessage's plain text.
func unmarked(lines []line) string {
	plain := make([]htmltext.Line, 0, len(lines))
	for _, l := range lines {
		switch l.kind {
		case kCut, kSig:
			continue
		case kQuoted:
			plain = append(plain, htmltext.Line{Text: strings.TrimPrefix(l.s, "> ")})
		default:
			plain = append(plain, htmltext.Line{Text: l.s})
		}
	}
	return htmltext.PlainLines(plain)
}

// TestHTMLRenderGolden renders the HTML body of every mail of the corpora
// (mailcase/testdata/corpus, testdata/replies, testdata/conversation)
// through both callers of the one HTML renderer: mailcase.ParseMessage (the
// text of an HTML-only mail) and the reply extractor's marked rendering.
// Once the marks are removed both must give the same text; the marked
// rendering is compared with testdata/html/<corpus>-<name>.golden
// (go test -run TestHTMLRenderGolden -update rewrites them).
func TestHTMLRenderGolden(t *testing.T) {
	dirs := map[string]string{
		"mailcase":     filepath.Join("..", "mailcase", "testdata", "corpus"),
		"replies":      filepath.Join("testdata", "replies"),
		"conversation": filepath.Join("testdata", "conversation"),
	}
	seen := 0
	for corpus, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		for _, f := range files {
			name := corpus + "-" + strings.TrimSuffix(filepath.Base(f), ".eml")
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			m, err := mailcase.ParseMessage(raw, nil)
			if err != nil || strings.TrimSpace(m.HTML) == "" {
				continue
			}
			seen++
			t.Run(name, func(t *testing.T) {
				htmlOnly := "From: a@b.example\r\nMessage-ID: <html@b.example>\r\nMIME-Version: 1.0\r\n" +
					"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + m.HTML
				pm, err := mailcase.ParseMessage([]byte(htmlOnly), nil)
				require.NoError(t, err)
				lines := renderHTML(m.HTML)
				if strings.TrimSpace(pm.Text) != "" {
					require.True(t, pm.TextFromHTML)
				}
				assert.Equal(t, pm.Text, unmarked(lines), "ParseMessage's text and threading's rendering without marks")

				golden := filepath.Join("testdata", "html", name+".golden")
				got := markedText(lines)
				if *updateHTML {
					require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
					require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err, "missing golden file; run with -update and review it")
				assert.Equal(t, string(want), got)
			})
		}
	}
	assert.GreaterOrEqual(t, seen, 20, "HTML bodies in the corpora")
}
