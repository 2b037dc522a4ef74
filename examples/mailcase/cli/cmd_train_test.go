package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/routing"
)

// writeLabelled writes a small labelled set: 12 mails in each of three
// categories, built from a few phrasings.
func writeLabelled(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	phr := map[string][]string{
		"billing":   {"I was charged twice for invoice %d, please refund.", "The invoice %d shows the wrong amount.", "Please refund the payment on order %d."},
		"technical": {"The app crashes with error %d on start.", "Since the update I get error %d when saving.", "The device restarts, code %d."},
		"shipping":  {"My parcel for order %d has not arrived.", "The tracking number of order %d does not work.", "The package %d arrived damaged."},
	}
	for cat, ps := range phr {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, cat), 0o755))
		for i := range 12 {
			body := fmt.Sprintf(ps[i%len(ps)], 1000+i)
			raw := fmt.Sprintf("From: c%d@example.com\r\nTo: support@ourcompany.example\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@example.com>\r\n\r\nHello,\r\n\r\n%s\r\n\r\nThanks\r\n",
				i, cat, i, cat, i, body)
			require.NoError(t, os.WriteFile(filepath.Join(dir, cat, fmt.Sprintf("%02d.eml", i)), []byte(raw), 0o644))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "billing", "bad.eml"), nil, 0o644))
	return dir
}

func TestTrainCommand(t *testing.T) {
	labels := writeLabelled(t)
	model := filepath.Join(t.TempDir(), "model.json")
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"train", "--labels", labels, "--eval", "--holdout", "0.25", "--out", model}, &out, &errb)
	require.Equal(t, exitOK, code, "stderr: %s", errb.String())
	text := out.String()
	assert.Contains(t, text, "36 mails in 3 categories from "+labels)
	assert.Contains(t, text, "held-out evaluation: trained on 27, tested on 9 (holdout 0.25, seed 1)")
	assert.Contains(t, text, "category             precision    recall        f1 support\n")
	assert.Regexp(t, `billing\s+1\.000\s+1\.000\s+1\.000\s+3\n`, text)
	assert.Contains(t, text, "accuracy 1.000 (9/9)")
	assert.Contains(t, text, "model trained on all 36 mails")
	assert.Contains(t, errb.String(), "skipped "+filepath.Join(labels, "billing", "bad.eml"))

	nb, err := routing.ReadModelFile(model)
	require.NoError(t, err)
	assert.Equal(t, []string{"billing", "shipping", "technical"}, nb.Categories())

	// The model drives classifier actions of a rules file.
	rules := filepath.Join(filepath.Dir(model), "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(`queues: [support, billing, technical, shipping]
classifier:
  model: model.json
  actions:
    - {intent: billing, min_confidence: 0.6, queue: billing}
    - {intent: shipping, min_confidence: 0.6, queue: shipping}
`), 0o644))
	out.Reset()
	code = run(t.Context(), []string{"route", "--rules", rules, "demo/01-invoice-contact.eml"}, &out, &errb)
	require.Equal(t, exitOK, code, "stderr: %s", errb.String())
	assert.Contains(t, out.String(), "queue       billing by classifier:billing\n")
}

func TestTrainCommand_Errors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "no labels", args: []string{"train"}, code: exitUsage, stderr: "train needs --labels DIR"},
		{name: "bad holdout", args: []string{"train", "--labels", t.TempDir(), "--holdout", "1.5"}, code: exitUsage, stderr: "--holdout must be between 0 and 1"},
		{name: "empty dir", args: []string{"train", "--labels", t.TempDir()}, code: exitFailure, stderr: "no labelled mail in"},
		{name: "missing dir", args: []string{"train", "--labels", "/nonexistent/labels"}, code: exitFailure, stderr: "read labelled mail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(t.Context(), tc.args, &out, &errb)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, errb.String(), tc.stderr)
		})
	}
}
