package sqlstore_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
)

// TestPipelineInjection sends mails whose every text field is shaped like
// SQL injection through the whole pipeline: each is stored literally and
// the tables stay intact.
func TestPipelineInjection(t *testing.T) {
	evil := []string{
		`'; DROP TABLE cases; --`,
		`Robert'); DELETE FROM processed; --`,
		`" OR ""="`,
		`\'; TRUNCATE interactions; -- \\`,
		`1; UPDATE cases SET status='closed' WHERE '1'='1`,
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := openURL(t, d.url(t), &sqlstore.Options{Logger: quietLogger()})
			p, err := mailcase.NewPipeline(s, &mailcase.Options{Logger: quietLogger(), Mailbox: mailcase.Mailbox{Name: `sup'port"; --`}})
			require.NoError(t, err)
			defer p.Close()
			for i, inj := range evil {
				msgID := strings.NewReplacer(" ", "", "\\", "").Replace(inj) + "." + string(rune('a'+i)) + "@evil.example"
				from := "o'brien" + string(rune('a'+i)) + "@example.com"
				raw := "From: \"" + strings.ReplaceAll(inj, `"`, `\"`) + "\" <" + from + ">\r\n" +
					"To: support@example.com\r\n" +
					"Subject: " + inj + "\r\n" +
					"Message-ID: <" + msgID + ">\r\n" +
					"Date: Mon, 2 Mar 2026 08:00:00 +0000\r\n" +
					"Content-Type: text/plain; charset=utf-8\r\n\r\n" + inj + "\r\n"
				res, err := p.Process(ctx, []byte(raw), nil)
				require.NoError(t, err, "mail %d", i)
				require.Equal(t, mailcase.Done, res.Outcome.Disposition, "mail %d: %s", i, res.Outcome.Error)
				require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, "mail %d", i)
				c, ok, err := s.GetCase(ctx, res.Outcome.CaseID)
				require.NoError(t, err)
				require.True(t, ok)
				assert.Equal(t, inj, c.Subject, "subject stored literally")
				ins, err := s.ListInteractions(ctx, c.ID)
				require.NoError(t, err)
				var mail *mailcase.Email
				for _, in := range ins {
					if in.Email != nil {
						mail = in.Email
					}
				}
				require.NotNil(t, mail)
				assert.Equal(t, inj, mail.Subject)
				assert.Equal(t, msgID, mail.MessageID)
				assert.Equal(t, from, mail.From.Email)
				assert.Contains(t, mail.Text, inj)
				// Redelivery is recognised (the key with its quotes matches).
				res, err = p.Process(ctx, []byte(raw), nil)
				require.NoError(t, err)
				assert.Equal(t, mailcase.ActionDuplicate, res.Outcome.Action)
				contacts, err := s.FindContacts(ctx, from)
				require.NoError(t, err)
				assert.LessOrEqual(t, len(contacts), 1)
			}
			cs, err := s.ListCases(ctx, nil)
			require.NoError(t, err)
			assert.Len(t, cs, len(evil), "every table intact, every case there")
			for _, c := range cs {
				assert.Equal(t, mailcase.StatusNew, c.Status)
			}
		})
	}
}
