package mailcase_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus/*.golden from the current results")

// goldenAttachment is the stable rendering of one attachment.
type goldenAttachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// golden is the stable rendering of ParseMessage + DetectAuto + DetectBounce.
type golden struct {
	ID            string              `json:"id"`
	IDDerived     bool                `json:"id_derived,omitempty"`
	From          string              `json:"from"`
	Sender        string              `json:"sender,omitempty"`
	ReplyTo       []string            `json:"reply_to,omitempty"`
	To            []string            `json:"to,omitempty"`
	Cc            []string            `json:"cc,omitempty"`
	Subject       string              `json:"subject"`
	Date          string              `json:"date,omitempty"`
	InReplyTo     []string            `json:"in_reply_to,omitempty"`
	References    []string            `json:"references,omitempty"`
	HasReturnPath bool                `json:"has_return_path"`
	ReturnPath    string              `json:"return_path,omitempty"`
	TextFromHTML  bool                `json:"text_from_html,omitempty"`
	TextExcerpt   string              `json:"text_excerpt"`
	TextLen       int                 `json:"text_len"`
	TextSHA256    string              `json:"text_sha256"`
	HTML          bool                `json:"html"`
	Attachments   []goldenAttachment  `json:"attachments,omitempty"`
	Auto          mailcase.AutoInfo   `json:"auto"`
	Bounce        mailcase.BounceInfo `json:"bounce"`
	Warnings      []string            `json:"warnings,omitempty"`
}

func addr(a mailcase.Address) string {
	if a.Name == "" {
		return a.Email
	}
	return a.Name + " <" + a.Email + ">"
}

func addrs(l []mailcase.Address) []string {
	var out []string
	for _, a := range l {
		out = append(out, addr(a))
	}
	return out
}

func shortHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

func excerpt(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func renderGolden(t *testing.T, m *mailcase.Message) []byte {
	t.Helper()
	g := golden{
		ID: m.ID, IDDerived: m.IDDerived, From: addr(m.From), Subject: m.Subject,
		ReplyTo: addrs(m.ReplyTo), To: addrs(m.To), Cc: addrs(m.Cc),
		InReplyTo: m.InReplyTo, References: m.References,
		HasReturnPath: m.HasReturnPath, ReturnPath: m.ReturnPath,
		TextFromHTML: m.TextFromHTML, TextExcerpt: excerpt(m.Text, 300), TextLen: len(m.Text),
		TextSHA256: shortHash([]byte(m.Text)), HTML: m.HTML != "",
		Auto: mailcase.DetectAuto(m), Bounce: mailcase.DetectBounce(m), Warnings: m.Warnings(),
	}
	if m.Sender.Email != "" {
		g.Sender = addr(m.Sender)
	}
	if !m.Date.IsZero() {
		g.Date = m.Date.UTC().Format(time.RFC3339)
	}
	for _, a := range m.Attachments {
		g.Attachments = append(g.Attachments, goldenAttachment{
			Filename: a.Filename, ContentType: a.ContentType, ContentID: a.ContentID,
			Inline: a.Inline, Size: a.Size, SHA256: shortHash(a.Data),
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(g))
	return buf.Bytes()
}

// corpusFiles returns the tricky-mail corpus.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 30, "the tricky-mail corpus must hold at least 30 mails")
	return files
}

// TestCorpusGolden parses every mail of testdata/corpus and compares the
// rendering with its .golden file (go test -run TestCorpusGolden -update
// rewrites them; review the diff before committing).
func TestCorpusGolden(t *testing.T) {
	for _, f := range corpusFiles(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			m, err := mailcase.ParseMessage(raw, nil)
			require.NoError(t, err)
			require.Equal(t, raw, m.Raw, "raw mail kept")
			assert.True(t, utf8.ValidString(m.Text), "text is UTF-8")
			assert.True(t, utf8.ValidString(m.HTML), "html is UTF-8")
			assert.True(t, utf8.ValidString(m.Subject), "subject is UTF-8")
			got := renderGolden(t, m)
			gf := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(gf, got, 0o644))
				return
			}
			want, err := os.ReadFile(gf)
			require.NoError(t, err, "missing golden file; run with -update and review it")
			assert.Equal(t, string(want), string(got))
		})
	}
}
