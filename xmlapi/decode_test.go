package xmlapi_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/xmlapi"
)

const full = `<?xml version="1.0"?>
<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <secret>s3cret</secret>
  <createContact email="ann@example.com" name="Ann"/>
  <createCase contact="ann@example.com" priority="high" queue="billing">
    <subject>Invoice 42 is wrong</subject>
    <body>Please check.</body>
  </createCase>
  <addNote><body>Called the customer.</body></addNote>
  <setStatus case="1042" status="in_progress"/>
  <setPriority case="1042" priority="urgent"/>
  <dispatch case="1042" queue="tier2"/>
  <assign case="1042" owner="agent-7"/>
  <close case="1042"/>
  <futureAction case="1"/>
</request>`

func TestDecode_Full(t *testing.T) {
	req, err := xmlapi.Decode(strings.NewReader(full), nil)
	require.NoError(t, err)
	assert.Equal(t, "1", req.Version)
	assert.Equal(t, "s3cret", req.Secret)
	var names []string
	for _, a := range req.Actions {
		names = append(names, a.XMLName.Local)
	}
	assert.Equal(t, []string{"createContact", "createCase", "addNote", "setStatus", "setPriority",
		"dispatch", "assign", "close", "futureAction"}, names)
	assert.Equal(t, "Invoice 42 is wrong", req.Actions[1].Subject)
	assert.Equal(t, "billing", req.Actions[1].Queue)
	assert.Equal(t, "agent-7", req.Actions[6].Owner)
}

func TestDecode_RoundTrip(t *testing.T) {
	req, err := xmlapi.Decode(strings.NewReader(full), nil)
	require.NoError(t, err)
	out, err := xml.Marshal(req)
	require.NoError(t, err)
	again, err := xmlapi.Decode(bytes.NewReader(out), nil)
	require.NoError(t, err)
	assert.Equal(t, req, again)
}

func TestDecode_Errors(t *testing.T) {
	ns := `xmlns="urn:emailcrm:mailcase:v1"`
	deep := "<request " + ns + ">" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</request>"
	many := "<request " + ns + ">" + strings.Repeat(`<close case="1"/>`, 101) + "</request>"
	tests := []struct {
		name    string
		doc     string
		lim     *xmlapi.Limits
		want    error
		contain string
	}{
		{name: "empty", doc: "", want: xmlapi.ErrMalformed, contain: "no root element"},
		{name: "not xml", doc: "hello", want: xmlapi.ErrMalformed},
		{name: "unclosed", doc: "<request " + ns + "><close case='1'/>", want: xmlapi.ErrMalformed},
		{name: "two roots", doc: "<request " + ns + "/><request " + ns + "/>", want: xmlapi.ErrMalformed, contain: "more than one root"},
		{name: "wrong namespace", doc: `<request xmlns="urn:other"/>`, want: xmlapi.ErrMalformed},
		{name: "wrong root", doc: "<order " + ns + "/>", want: xmlapi.ErrMalformed},
		{name: "billion laughs", doc: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><request ` + ns + `>&lol2;</request>`, want: xmlapi.ErrDoctype},
		{name: "external entity", doc: `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request ` + ns + `>&x;</request>`, want: xmlapi.ErrDoctype},
		{name: "undefined entity", doc: "<request " + ns + "><secret>&x;</secret></request>", want: xmlapi.ErrMalformed},
		{name: "too deep", doc: deep, want: xmlapi.ErrLimit, contain: "nested deeper than 16"},
		{name: "too large", doc: "<request " + ns + ">" + strings.Repeat(" ", 200) + "</request>", lim: &xmlapi.Limits{MaxBytes: 100}, want: xmlapi.ErrLimit, contain: "more than 100 bytes"},
		{name: "too many tokens", doc: "<request " + ns + ">" + strings.Repeat("<x/>", 50) + "</request>", lim: &xmlapi.Limits{MaxTokens: 20}, want: xmlapi.ErrLimit},
		{name: "too many actions", doc: many, want: xmlapi.ErrLimit, contain: "more than 100 actions"},
		{name: "bad version", doc: "<request " + ns + ` version="2"/>`, want: xmlapi.ErrMalformed, contain: `unsupported version "2"`},
		{name: "case without subject", doc: "<request " + ns + "><createCase/></request>", want: xmlapi.ErrMalformed, contain: "request/createCase[1]: missing subject"},
		{name: "note without case", doc: "<request " + ns + "><addNote><body>x</body></addNote></request>", want: xmlapi.ErrMalformed, contain: "request/addNote[1]: missing case attribute"},
		{name: "bad status", doc: "<request " + ns + `><setStatus case="1" status="done"/></request>`, want: xmlapi.ErrMalformed, contain: `unknown status "done"`},
		{name: "bad priority", doc: "<request " + ns + `><setPriority case="1" priority="p0"/></request>`, want: xmlapi.ErrMalformed, contain: `unknown priority "p0"`},
		{name: "dispatch without queue", doc: "<request " + ns + `><dispatch case="1"/></request>`, want: xmlapi.ErrMalformed, contain: "missing queue"},
		{name: "assign without owner", doc: "<request " + ns + `><assign case="1"/></request>`, want: xmlapi.ErrMalformed, contain: "missing owner"},
		{name: "contact without email", doc: "<request " + ns + `><createContact name="x"/></request>`, want: xmlapi.ErrMalformed, contain: "missing email"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := xmlapi.Decode(strings.NewReader(tc.doc), tc.lim)
			require.Error(t, err)
			assert.Nil(t, req)
			assert.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
			var de *xmlapi.DecodeError
			require.ErrorAs(t, err, &de)
			if tc.contain != "" {
				assert.Contains(t, err.Error(), tc.contain)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(`<request xmlns="urn:emailcrm:mailcase:v1"><close case="1"/></request>`))
	f.Add([]byte(`<!DOCTYPE x><request/>`))
	f.Add([]byte(`<request xmlns="urn:emailcrm:mailcase:v1"><field name="a">b</field></request>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := xmlapi.Decode(bytes.NewReader(data), nil)
		if (req == nil) == (err == nil) {
			t.Fatalf("Decode returned req=%v err=%v: exactly one must be set", req, err)
		}
		if err != nil {
			return
		}
		// A decoded request re-encodes and decodes to itself.
		out, merr := xml.Marshal(req)
		if merr != nil {
			t.Fatalf("Marshal of a decoded request: %v", merr)
		}
		if _, err := xmlapi.Decode(bytes.NewReader(out), &xmlapi.Limits{MaxBytes: int64(len(out)) + 1}); err != nil && !errors.Is(err, xmlapi.ErrLimit) {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
	})
}
