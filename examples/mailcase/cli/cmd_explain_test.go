package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// explainFields are the top-level field names of explain --json that the
// issue fixes; they must not change.
var explainFields = []string{
	"message_id", "from", "to", "cc", "subject", "date", "text", "reply_text", "html",
	"attachments", "auto", "bounce", "structured", "warnings", "outcome", "thread", "route",
}

// decodeExplain decodes explain --json output, checking it is exactly one
// JSON object.
func decodeExplain(t *testing.T, out []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(out))
	var obj map[string]any
	require.NoError(t, dec.Decode(&obj), "output:\n%s", out)
	assert.False(t, dec.More(), "more than one JSON value on stdout:\n%s", out)
	return obj
}

// checkExplainJSON asserts the fields and values of explain --json output
// for the testdata and demo mails; shared by the in-process and the binary
// tests.
func checkExplainJSON(t *testing.T, name string, obj map[string]any) {
	t.Helper()
	for _, f := range explainFields {
		assert.Contains(t, obj, f, "%s: field %q missing", name, f)
	}
	outcome, ok := obj["outcome"].(map[string]any)
	require.True(t, ok, "outcome is an object")
	for _, f := range []string{"action", "disposition", "mailbox", "steps"} {
		assert.Contains(t, outcome, f)
	}
	auto := obj["auto"].(map[string]any)
	assert.Contains(t, auto, "is_auto")
	assert.Contains(t, auto, "reason")
	bounce := obj["bounce"].(map[string]any)
	assert.Contains(t, bounce, "is_bounce")
	assert.Contains(t, bounce, "original_message_id")

	switch name {
	case "01-invoice-contact.eml":
		assert.Equal(t, "CAF1n0rth-20261116-0912.anna@northwind.example", obj["message_id"])
		assert.Equal(t, map[string]any{"name": "Anna Berg", "email": "anna.berg@northwind.example"}, obj["from"])
		assert.Equal(t, "Invoice 2026-117 charged twice", obj["subject"])
		assert.Equal(t, "2026-11-16T09:12:40+01:00", obj["date"])
		assert.Equal(t, false, obj["html"])
		assert.Equal(t, false, auto["is_auto"])
		assert.Equal(t, "created", outcome["action"])
		assert.Equal(t, "done", outcome["disposition"])
		assert.Empty(t, outcome["case_id"], "dry run: no case is created")
		thread := obj["thread"].(map[string]any)
		assert.Equal(t, "new", thread["action"])
		for _, f := range []string{"case", "signal", "detail"} {
			assert.Contains(t, thread, f)
		}
		route := obj["route"].(map[string]any)
		assert.Equal(t, "support", route["queue"])
		for _, f := range []string{"queue", "priority", "rule", "scores", "fired"} {
			assert.Contains(t, route, f)
		}
		sender := obj["sender"].(map[string]any)
		assert.Equal(t, "contact", sender["kind"])
	case "05-out-of-office.eml":
		assert.Equal(t, true, auto["is_auto"])
		assert.Equal(t, "auto-reply", auto["kind"])
		assert.NotEmpty(t, auto["reason"])
		assert.Equal(t, "recorded", outcome["action"])
		assert.Nil(t, obj["route"], "auto mail is not routed")
	case "06-bounce.eml":
		assert.Equal(t, true, bounce["is_bounce"])
		assert.Equal(t, "case-00042-reply-3@ourcompany.example", bounce["original_message_id"])
		assert.Equal(t, true, auto["is_auto"])
	case "09-html-attachment.eml":
		assert.Equal(t, true, obj["html"])
		assert.Contains(t, obj["text"], "error E-204")
		atts := obj["attachments"].([]any)
		require.Len(t, atts, 1)
		assert.Equal(t, map[string]any{
			"filename": "scanner-error-E204.pdf", "content_type": "application/pdf",
			"size": float64(193), "inline": false, "content_id": "",
		}, atts[0])
	case "inline-image.eml":
		assert.Equal(t, true, obj["message_id_derived"])
		assert.Contains(t, obj["message_id"], "@derived.emailcrm.invalid")
		assert.Len(t, obj["to"], 2)
		assert.Equal(t, []any{map[string]any{"email": "anna.berg@northwind.example"}}, obj["cc"])
		assert.Equal(t, true, obj["html"])
		atts := obj["attachments"].([]any)
		require.Len(t, atts, 2)
		var inline map[string]any
		for _, a := range atts {
			if a.(map[string]any)["inline"] == true {
				inline = a.(map[string]any)
			}
		}
		require.NotNil(t, inline, "the screenshot is inline: %v", atts)
		assert.Equal(t, "shot1@northwind.example", inline["content_id"])
		assert.Equal(t, "image/png", inline["content_type"])
		// A sender from the account's domain is matched by domain.
		assert.Equal(t, "account", obj["sender"].(map[string]any)["kind"])
	}
}

func TestExplain_JSON(t *testing.T) {
	for _, file := range []string{
		"demo/01-invoice-contact.eml", "demo/05-out-of-office.eml", "demo/06-bounce.eml",
		"demo/09-html-attachment.eml", "testdata/inline-image.eml",
	} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			stdout, stderr, code := runCLI(t, "explain", "--json", file)
			require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
			checkExplainJSON(t, filepath.Base(file), decodeExplain(t, []byte(stdout)))
		})
	}
}

func TestExplain_Text(t *testing.T) {
	stdout, stderr, code := runCLI(t, "explain", "demo/09-html-attachment.eml")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	for _, want := range []string{
		"message-id  html-20261118-0821.carlos@fabrikam.example",
		"body        HTML only (text derived from HTML)",
		`part        attachment "scanner-error-E204.pdf" application/pdf, 193 bytes`,
		"Decisions (dry run: nothing was written)",
		"sender      contact Carlos Mendes",
		"thread      new thread",
		"route       queue support",
		"result      would create a new case (dry run)",
		"Steps",
	} {
		assert.Contains(t, stdout, want)
	}
}

func TestExplain_Errors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantJSON  bool
		wantInErr string
	}{
		{name: "unparseable json", args: []string{"explain", "--json", "testdata/unparseable.eml"}, wantCode: exitFailure, wantJSON: true, wantInErr: "cannot be parsed"},
		{name: "unparseable text", args: []string{"explain", "testdata/unparseable.eml"}, wantCode: exitFailure, wantInErr: "cannot be parsed"},
		{name: "missing file json", args: []string{"explain", "testdata/no-such.eml", "--json"}, wantCode: exitFailure, wantJSON: true, wantInErr: "no such file"},
		{name: "two files", args: []string{"explain", "a.eml", "b.eml"}, wantCode: exitUsage, wantInErr: "exactly one mail file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			assert.Equal(t, tc.wantCode, code)
			assert.Contains(t, stderr, tc.wantInErr)
			if tc.wantJSON {
				obj := decodeExplain(t, []byte(stdout))
				assert.Len(t, obj, 1, "only the error field: %v", obj)
				assert.Contains(t, obj["error"], tc.wantInErr)
			} else {
				assert.Empty(t, stdout)
			}
		})
	}
}

// TestExplain_RouteExplained runs explain with a routing rules file: the
// queue, the scores and the fired rules appear in text and JSON.
func TestExplain_RouteExplained(t *testing.T) {
	cfg := rulesConfig(t, filepath.Join("testdata", "rules.yaml"))

	stdout, stderr, code := runCLI(t, "explain", "--config", cfg, "demo/01-invoice-contact.eml")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	assert.Contains(t, stdout, "route       queue billing")
	assert.Regexp(t, `scores      billing \d+\.\d\d`, stdout)
	assert.Contains(t, stdout, "fired       ")

	stdout, stderr, code = runCLI(t, "explain", "--json", "--config", cfg, "demo/01-invoice-contact.eml")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	route := decodeExplain(t, []byte(stdout))["route"].(map[string]any)
	assert.Equal(t, "billing", route["queue"])
	assert.NotEmpty(t, route["rule"])
	scores := route["scores"].([]any)
	require.NotEmpty(t, scores)
	assert.Equal(t, "billing", scores[0].(map[string]any)["queue"])
	assert.Positive(t, scores[0].(map[string]any)["score"])
	assert.NotEmpty(t, route["fired"])
}

// TestExplain_ThreadSignal explains a reply against a store holding the
// mail it answers: the thread decision names the case and the signal.
func TestExplain_ThreadSignal(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "thread.db")
	inbox := writeDemoDir(t, func(name string) string {
		if name == "01-invoice-contact.eml" {
			return name
		}
		return ""
	})
	_, stderr, code := runCLI(t, "import", "--quiet", "--store", url, inbox)
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)

	stdout, stderr, code := runCLI(t, "explain", "--json", "--store", url, "demo/04-reply-in-reply-to.eml")
	require.Equal(t, exitOK, code, "stderr:\n%s", stderr)
	obj := decodeExplain(t, []byte(stdout))
	thread := obj["thread"].(map[string]any)
	assert.Equal(t, "append", thread["action"])
	assert.NotEmpty(t, thread["case"])
	assert.NotEmpty(t, thread["signal"])
	assert.Equal(t, "appended", obj["outcome"].(map[string]any)["action"])
	assert.NotEqual(t, obj["text"], obj["reply_text"], "the quoted history is removed from reply_text")
	assert.NotContains(t, obj["reply_text"], "> our credit card")

	stdout, _, code = runCLI(t, "explain", "--store", url, "demo/04-reply-in-reply-to.eml")
	require.Equal(t, exitOK, code)
	assert.Regexp(t, `thread      continues case \S+ via \S+`, stdout)
	assert.Contains(t, stdout, "Reply text (quoted history removed)")
}

// explain names the unknown-sender policy it applied, and the default is
// a contact per sender.
func TestExplainSaysSenderPolicy(t *testing.T) {
	f := writeFile(t, t.TempDir(), "stranger.eml", "From: Zed <zed@nowhere.example>\nTo: support@example.com\nSubject: hi\nMessage-ID: <z1@nowhere.example>\n\nhello\n")
	stdout, stderr, code := runCLI(t, "explain", f)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "policy for an unknown sender: create: would create contact")
	stdout, stderr, code = runCLI(t, "explain", "--json", f)
	require.Equal(t, exitOK, code, stderr)
	var o struct {
		Outcome struct {
			SenderPolicy string `json:"sender_policy"`
		} `json:"outcome"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &o))
	assert.Equal(t, "unknown sender: create: would create contact (new)", o.Outcome.SenderPolicy)
}
