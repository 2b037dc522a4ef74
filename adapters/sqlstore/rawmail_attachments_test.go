package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// wrap returns the base64 of data in lines of n characters ended by eol.
func wrap(data []byte, n int, eol string) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for i := 0; i < len(enc); i += n {
		if i > 0 {
			b.WriteString(eol)
		}
		b.WriteString(enc[i:min(i+n, len(enc))])
	}
	return b.String()
}

// attachmentMail returns a mail with one base64 attachment per body, each
// body given as it appears in the mail, with eol line endings.
func attachmentMail(id int, eol string, bodies ...string) []byte {
	var b strings.Builder
	w := func(s string) { b.WriteString(s + eol) }
	w("From: Customer <customer@example.com>")
	w("To: support@example.com")
	w(fmt.Sprintf("Subject: invoice %d", id))
	w(fmt.Sprintf("Message-ID: <att-%d@example.com>", id))
	w("Date: Mon, 07 Dec 2026 10:00:00 +0000")
	w("MIME-Version: 1.0")
	w(`Content-Type: multipart/mixed; boundary="b0"`)
	w("")
	w("--b0")
	w("Content-Type: text/plain; charset=utf-8")
	w("")
	w("Please find the files attached.")
	for i, body := range bodies {
		w("--b0")
		w(fmt.Sprintf(`Content-Type: application/octet-stream; name="f%d.bin"`, i))
		w(fmt.Sprintf(`Content-Disposition: attachment; filename="f%d.bin"`, i))
		w("Content-Transfer-Encoding: base64")
		w("")
		w(body)
	}
	w("--b0--")
	return []byte(b.String())
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// The base64 bodies of stored attachments are left out of the kept raw
// mail when the raw mail holds them in a regular wrapping, and rebuilt
// byte for byte when it is read; other bodies stay in it. Replacing the
// parsed content (reparse) first stores the raw mail whole again, so the
// original mail survives attachments that change; raw mails kept without
// attachment references (the encodings "deflate" and "") still read.
func TestRawMail_AttachmentBodiesLeftOut(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b, c := randomBytes(r, 20000), randomBytes(r, 3001), randomBytes(r, 300)
	irregular := wrap(a[:5000], 76, "\r\n")
	irregular = irregular[:100] + "\r\n" + irregular[100:] // a short line in the middle
	type want struct {
		raw   []byte
		elide bool
	}
	mails := []want{
		{attachmentMail(1, "\r\n", wrap(a, 76, "\r\n")), true},
		{attachmentMail(2, "\n", wrap(a, 76, "\n")), true},
		{attachmentMail(3, "\r\n", wrap(b, 64, "\r\n"), wrap(c, 76, "\r\n"), wrap(b, 72, "\r\n")), true},
		{attachmentMail(4, "\r\n", strings.ReplaceAll(wrap(b, 76, "\r\n"), "\r\n", "\n")), true}, // LF inside a CRLF mail
		{attachmentMail(5, "\r\n", base64.StdEncoding.EncodeToString(b)), true},                  // one long line
		{attachmentMail(6, "\r\n", irregular), false},
		{attachmentMail(7, "\r\n", wrap(b, 40, "\r\n")), false}, // lines shorter than looked for
		{attachmentMail(8, "\r\n", wrap(c, 76, "\r\n")), false}, // too small to be worth it
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := openURL(t, d.url(t), nil)
			var db *sql.DB
			require.True(t, s.As(&db))
			ctx := context.Background()
			raws := make([][]byte, len(mails))
			for i, m := range mails {
				raws[i] = m.raw
			}
			require.EqualValues(t, len(raws), fileCorpus(t, s, raws, 1))

			keys := make([]string, len(mails))
			for i, m := range mails {
				msg, err := mailcase.ParseMessage(m.raw, nil)
				require.NoError(t, err)
				keys[i] = mailcase.IdempotencyKey("support", msg)
				got, ok, err := s.GetRaw(ctx, keys[i])
				require.NoError(t, err)
				require.True(t, ok)
				require.True(t, bytes.Equal(m.raw, got), "mail %d comes back byte for byte", i+1)

				var enc string
				var stored, size int64
				require.NoError(t, db.QueryRow(`SELECT encoding, LENGTH(data), size FROM raw_mail WHERE idem_key = `+
					placeholder(d.name), []byte(keys[i])).Scan(&enc, &stored, &size))
				assert.EqualValues(t, len(m.raw), size)
				if m.elide {
					assert.Equal(t, "attachments", enc, "mail %d", i+1)
					assert.Less(t, stored, size/4, "mail %d: the attachments are not kept twice", i+1)
				} else {
					assert.NotEqual(t, "attachments", enc, "mail %d", i+1)
				}
			}

			// Reparse replaces the attachments: the raw mail is kept whole first.
			e, ok, err := s.GetEmail(ctx, keys[0])
			require.NoError(t, err)
			require.True(t, ok)
			require.Len(t, e.Attachments, 1)
			require.NoError(t, s.UpdateParsed(ctx, keys[0], &mailcase.ParsedContent{Subject: "invoice 1", Text: "changed"}))
			got, ok, err := s.GetRaw(ctx, keys[0])
			require.NoError(t, err)
			require.True(t, ok)
			assert.True(t, bytes.Equal(mails[0].raw, got), "the raw mail outlives its attachments")
			var enc string
			require.NoError(t, db.QueryRow(`SELECT encoding FROM raw_mail WHERE idem_key = `+placeholder(d.name),
				[]byte(keys[0])).Scan(&enc))
			assert.Equal(t, "deflate", enc)
			e, ok, err = s.GetEmail(ctx, keys[0])
			require.NoError(t, err)
			require.True(t, ok)
			assert.Empty(t, e.Attachments)

			// Raw mail kept on its own (no attachments stored with it) uses the
			// encodings of earlier versions, which still read.
			for i, raw := range [][]byte{mails[1].raw, randomBytes(r, 4000)} {
				key := fmt.Sprintf("standalone-%d", i)
				require.NoError(t, s.PutRaw(ctx, key, raw))
				got, ok, err := s.GetRaw(ctx, key)
				require.NoError(t, err)
				require.True(t, ok)
				assert.True(t, bytes.Equal(raw, got))
				require.NoError(t, db.QueryRow(`SELECT encoding FROM raw_mail WHERE idem_key = `+placeholder(d.name),
					[]byte(key)).Scan(&enc))
				assert.Equal(t, []string{"deflate", ""}[i], enc)
			}
		})
	}
}

// placeholder returns the first bind parameter of the dialect.
func placeholder(dialect string) string {
	if dialect == "postgres" {
		return "$1"
	}
	return "?"
}
