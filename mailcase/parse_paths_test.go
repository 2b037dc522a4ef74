package mailcase_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// TestParsePathsAgree checks that the fast splitter and the enmime fallback
// build the same Message for every mail of the generated corpus.
func TestParsePathsAgree(t *testing.T) {
	for i, raw := range mailcasetest.GenerateCorpus(300, 7) {
		fast, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err, "mail %d", i)
		slow, err := mailcase.ParseWithEnmime(raw, nil)
		require.NoError(t, err, "mail %d", i)
		name := fmt.Sprintf("mail %d", i)
		assert.Empty(t, fast.Problems, name)
		assert.Equal(t, fast.ID, slow.ID, name)
		assert.Equal(t, fast.From, slow.From, name)
		assert.Equal(t, fast.To, slow.To, name)
		assert.Equal(t, fast.Subject, slow.Subject, name)
		assert.Equal(t, fast.Date, slow.Date, name)
		assert.Equal(t, fast.References, slow.References, name)
		assert.Equal(t, fast.InReplyTo, slow.InReplyTo, name)
		assert.Equal(t, fast.Text, slow.Text, name)
		assert.Equal(t, fast.HTML, slow.HTML, name)
		assert.Equal(t, fast.TextFromHTML, slow.TextFromHTML, name)
		assert.Equal(t, fast.Attachments, slow.Attachments, name)
		assert.Equal(t, fast.Header, slow.Header, name)
		assert.Equal(t, mailcase.DetectAuto(fast), mailcase.DetectAuto(slow), name)
		assert.Equal(t, mailcase.DetectBounce(fast), mailcase.DetectBounce(slow), name)
		if t.Failed() {
			t.Logf("%s", raw)
			return
		}
	}
}

// TestParsePathsAgreeOnCorpus checks the same on the tricky-mail corpus:
// for every mail the fast path reads without a problem, the enmime path
// gives the same rendering (warnings aside).
func TestParsePathsAgreeOnCorpus(t *testing.T) {
	clean := 0
	for _, f := range corpusFiles(t) {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		fast, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err)
		if len(fast.Problems) > 0 {
			continue
		}
		clean++
		slow, err := mailcase.ParseWithEnmime(raw, nil)
		require.NoError(t, err)
		slow.Problems = nil
		assert.Equal(t, string(renderGolden(t, fast)), string(renderGolden(t, slow)), f)
	}
	assert.Greater(t, clean, 30)
}
