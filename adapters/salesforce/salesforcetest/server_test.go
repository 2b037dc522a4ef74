package salesforcetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type client struct {
	t     *testing.T
	s     *Server
	token string
}

func newClient(t *testing.T, opts *Options) *client {
	t.Helper()
	s := New(opts)
	t.Cleanup(s.Close)
	return &client{t: t, s: s, token: s.IssueToken()}
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (c *client) do(method, path string, body any, hdr map[string]string) (int, http.Header, []byte) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(c.t, err)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.s.URL()+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, resp.Header, b
}

const v = "/services/data/v62.0/"

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var out any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return out
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	arr, ok := decode(t, b).([]any)
	require.True(t, ok, string(b))
	require.NotEmpty(t, arr)
	return arr[0].(map[string]any)["errorCode"].(string)
}

func (c *client) query(q string) (int, []byte) {
	c.t.Helper()
	st, _, b := c.do("GET", v+"query?q="+url.QueryEscape(q), nil, nil)
	return st, b
}

func TestCreateGetUpdateDelete(t *testing.T) {
	c := newClient(t, nil)
	st, hdr, b := c.do("POST", v+"sobjects/Case", map[string]any{"Subject": "Help", "SuppliedEmail": "a@example.com"}, map[string]string{"Sforce-Auto-Assign": "FALSE"})
	require.Equal(t, 201, st, string(b))
	assert.Equal(t, "api-usage=1/100000", hdr.Get("Sforce-Limit-Info"))
	res := decode(t, b).(map[string]any)
	id := res["id"].(string)
	assert.Len(t, id, 18)
	assert.True(t, strings.HasPrefix(id, "500"))
	assert.Equal(t, true, res["success"])
	assert.Equal(t, []any{}, res["errors"])

	rec, ok := c.s.Record("Case", id)
	require.True(t, ok)
	assert.Equal(t, "00001000", rec["CaseNumber"])
	assert.Equal(t, "FALSE", rec["_AutoAssign"])
	assert.Equal(t, "New", rec["Status"])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$`, rec["CreatedDate"])

	st, _, b = c.do("GET", v+"sobjects/Case/"+id+"?fields=Subject,CaseNumber", nil, nil)
	require.Equal(t, 200, st, string(b))
	got := decode(t, b).(map[string]any)
	assert.Equal(t, "Help", got["Subject"])
	assert.Equal(t, "Case", got["attributes"].(map[string]any)["type"])
	assert.NotContains(t, got, "Status")

	st, _, b = c.do("PATCH", v+"sobjects/Case/"+id, map[string]any{"Status": "Closed"}, nil)
	require.Equal(t, 204, st, string(b))
	rec, _ = c.s.Record("Case", id[:15])
	assert.Equal(t, true, rec["IsClosed"])
	assert.NotNil(t, rec["ClosedDate"])

	st, _, b = c.do("DELETE", v+"sobjects/Case/"+id, nil, nil)
	require.Equal(t, 204, st, string(b))
	st, _, b = c.do("GET", v+"sobjects/Case/"+id, nil, nil)
	assert.Equal(t, 404, st)
	assert.Equal(t, "NOT_FOUND", errorCode(t, b))
	assert.Equal(t, 5, c.s.Calls())
}

func TestWriteErrors(t *testing.T) {
	c := newClient(t, nil)
	caseID := c.s.Insert("Case", map[string]any{"Subject": "x"})
	contactID := c.s.Insert("Contact", map[string]any{"LastName": "Doe"})
	c.s.AddValidation("Case", func(rec map[string]any) (string, string, bool) {
		return "Subject", "no spam", rec["Subject"] != "spam"
	})
	tests := []struct {
		name   string
		path   string
		body   map[string]any
		code   string
		fields []any
	}{
		{name: "too long", path: "Case", body: map[string]any{"Subject": strings.Repeat("é", 256)}, code: "STRING_TOO_LONG", fields: []any{"Subject"}},
		{name: "required", path: "EmailMessage", body: map[string]any{"Subject": "x"}, code: "REQUIRED_FIELD_MISSING", fields: []any{"ParentId"}},
		{name: "unknown field", path: "Case", body: map[string]any{"Nope__c": "x"}, code: "INVALID_FIELD"},
		{name: "read only", path: "Case", body: map[string]any{"CaseNumber": "1"}, code: "INVALID_FIELD_FOR_INSERT_UPDATE", fields: []any{"CaseNumber"}},
		{name: "missing reference", path: "EmailMessage", body: map[string]any{"ParentId": "500Dn0000000099AAA"}, code: "INVALID_CROSS_REFERENCE_KEY", fields: []any{"ParentId"}},
		{name: "wrong reference type", path: "EmailMessage", body: map[string]any{"ParentId": contactID}, code: "FIELD_INTEGRITY_EXCEPTION", fields: []any{"ParentId"}},
		{name: "malformed id", path: "Case", body: map[string]any{"ContactId": "xyz"}, code: "MALFORMED_ID", fields: []any{"ContactId"}},
		{name: "picklist", path: "Case", body: map[string]any{"Status": "Bogus"}, code: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", fields: []any{"Status"}},
		{name: "validation", path: "Case", body: map[string]any{"Subject": "spam"}, code: "FIELD_CUSTOM_VALIDATION_EXCEPTION", fields: []any{"Subject"}},
		{name: "type", path: "EmailMessage", body: map[string]any{"ParentId": caseID, "Incoming": 3}, code: "JSON_PARSER_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _, b := c.do("POST", v+"sobjects/"+tc.path, tc.body, nil)
			require.Equal(t, 400, st, string(b))
			e := decode(t, b).([]any)[0].(map[string]any)
			assert.Equal(t, tc.code, e["errorCode"], string(b))
			if tc.fields != nil {
				assert.Equal(t, tc.fields, e["fields"])
			}
		})
	}
	// Exactly at the limit is fine; UTF-16 units are counted.
	st, _, b := c.do("POST", v+"sobjects/Case", map[string]any{"Subject": strings.Repeat("é", 255)}, nil)
	assert.Equal(t, 201, st, string(b))
	st, _, b = c.do("POST", v+"sobjects/Case", map[string]any{"Subject": strings.Repeat("😀", 128)}, nil)
	assert.Equal(t, 400, st, string(b))
}

func TestUpsert(t *testing.T) {
	c := newClient(t, nil)
	st, _, b := c.do("PATCH", v+"sobjects/Case/EmailcrmKey__c/k%2F1", map[string]any{"Subject": "first"}, nil)
	require.Equal(t, 201, st, string(b))
	res := decode(t, b).(map[string]any)
	assert.Equal(t, true, res["created"])
	id := res["id"].(string)

	st, _, b = c.do("PATCH", v+"sobjects/Case/EmailcrmKey__c/K%2F1", map[string]any{"Subject": "second"}, nil)
	require.Equal(t, 200, st, string(b))
	res = decode(t, b).(map[string]any)
	assert.Equal(t, false, res["created"])
	assert.Equal(t, id, res["id"])
	rec, _ := c.s.Record("Case", id)
	assert.Equal(t, "second", rec["Subject"])
	assert.Equal(t, "k/1", rec["EmailcrmKey__c"])
	assert.Len(t, c.s.Records("Case"), 1)

	// A plain create with the same key collides.
	st, _, b = c.do("POST", v+"sobjects/Case", map[string]any{"EmailcrmKey__c": "k/1"}, nil)
	require.Equal(t, 400, st)
	assert.Equal(t, "DUPLICATE_VALUE", errorCode(t, b))

	st, _, b = c.do("PATCH", v+"sobjects/Case/Subject/x", map[string]any{}, nil)
	assert.Equal(t, 404, st, string(b))
}

func TestAuth(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newClient(t, &Options{ClientID: "id", ClientSecret: "secret", TokenTTL: time.Hour, Now: func() time.Time { return now }})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}
	resp, err := http.PostForm(c.s.URL()+"/services/oauth2/token", form)
	require.NoError(t, err)
	var tok map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, c.s.URL(), tok["instance_url"])
	assert.Equal(t, "Bearer", tok["token_type"])
	c.token = tok["access_token"]
	st, _ := c.query("SELECT Id FROM Case")
	assert.Equal(t, 200, st)

	form.Set("client_secret", "bad")
	resp, err = http.PostForm(c.s.URL()+"/services/oauth2/token", form)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	assert.Contains(t, string(b), `"error":"invalid_client"`)

	now = now.Add(time.Hour)
	st, b = c.query("SELECT Id FROM Case")
	assert.Equal(t, 401, st)
	assert.Equal(t, "INVALID_SESSION_ID", errorCode(t, b))
	assert.Contains(t, string(b), "Session expired or invalid")

	c.token = c.s.IssueToken()
	c.s.ExpireTokens()
	st, _ = c.query("SELECT Id FROM Case")
	assert.Equal(t, 401, st)
	assert.Equal(t, 1, c.s.Calls())
}

func TestLimitAndFailNext(t *testing.T) {
	c := newClient(t, &Options{DailyLimit: 2})
	c.s.FailNext(1, 503)
	st, hdr, b := c.do("GET", v+"limits", nil, nil)
	assert.Equal(t, 503, st)
	assert.Equal(t, "SERVER_UNAVAILABLE", errorCode(t, b))
	assert.NotEmpty(t, hdr.Get("Sforce-Limit-Info"))
	st, _ = c.query("SELECT Id FROM Case")
	assert.Equal(t, 200, st)
	st, _ = c.query("SELECT Id FROM Case")
	assert.Equal(t, 200, st)
	st, b = c.query("SELECT Id FROM Case")
	assert.Equal(t, 403, st)
	assert.Equal(t, "REQUEST_LIMIT_EXCEEDED", errorCode(t, b))
	assert.Equal(t, 2, c.s.Calls())
	c.s.ResetCalls()
	st, _ = c.query("SELECT Id FROM Case")
	assert.Equal(t, 200, st)
	log := c.s.Log()
	require.Len(t, log, 5)
	assert.Equal(t, 403, log[3].Status)
	assert.Equal(t, "/services/data/v62.0/query", log[3].Path)
}

func TestContentVersion(t *testing.T) {
	c := newClient(t, nil)
	caseID := c.s.Insert("Case", map[string]any{"Subject": "x"})
	data := []byte("hello, file")
	st, _, b := c.do("POST", v+"sobjects/ContentVersion", map[string]any{
		"Title": "f", "PathOnClient": "f.TXT", "FirstPublishLocationId": caseID,
		"VersionData": base64.StdEncoding.EncodeToString(data),
	}, nil)
	require.Equal(t, 201, st, string(b))
	id := decode(t, b).(map[string]any)["id"].(string)
	st, _, b = c.do("GET", v+"sobjects/ContentVersion/"+id+"/VersionData", nil, nil)
	require.Equal(t, 200, st)
	assert.Equal(t, data, b)
	rec, _ := c.s.Record("ContentVersion", id)
	assert.Equal(t, "txt", rec["FileExtension"])
	links := c.s.Records("ContentDocumentLink")
	require.Len(t, links, 1)
	assert.Equal(t, caseID, links[0]["LinkedEntityId"])
	assert.Equal(t, rec["ContentDocumentId"], links[0]["ContentDocumentId"])

	// 30 MB multipart.
	big := bytes.Repeat([]byte{0xff, 0x00, 'a'}, 10<<20)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	pw, _ := mw.CreateFormField("entity_content")
	_, _ = pw.Write([]byte(`{"Title":"big","PathOnClient":"big.bin","FirstPublishLocationId":"` + caseID + `"}`))
	fw, _ := mw.CreateFormFile("VersionData", "big.bin")
	_, _ = fw.Write(big)
	require.NoError(t, mw.Close())
	st, _, b = c.do("POST", v+"sobjects/ContentVersion", body.Bytes(), map[string]string{"Content-Type": mw.FormDataContentType()})
	require.Equal(t, 201, st, string(b))
	id = decode(t, b).(map[string]any)["id"].(string)
	rec, _ = c.s.Record("ContentVersion", id)
	assert.Equal(t, big, rec["VersionData"])
	assert.Len(t, c.s.Records("ContentDocumentLink"), 2)

	// JSON blobs are limited.
	c2 := newClient(t, &Options{MaxJSONBlob: 1000})
	st, _, b = c2.do("POST", v+"sobjects/ContentVersion", map[string]any{
		"Title": "f", "PathOnClient": "f.bin", "VersionData": base64.StdEncoding.EncodeToString(make([]byte, 1001)),
	}, nil)
	assert.Equal(t, 400, st)
	assert.Equal(t, "STRING_TOO_LONG", errorCode(t, b))
	st, _, b = c2.do("POST", v+"sobjects/ContentVersion", map[string]any{
		"Title": "f", "PathOnClient": "f.bin", "VersionData": base64.StdEncoding.EncodeToString(make([]byte, 1<<20)),
	}, nil)
	assert.Equal(t, 400, st)
	assert.Equal(t, "JSON_PARSER_ERROR", errorCode(t, b))
}

func TestEmailMessageUpsertAndUpdateRules(t *testing.T) {
	c := newClient(t, nil)
	caseID := c.s.Insert("Case", map[string]any{"Subject": "x"})
	st, _, b := c.do("PATCH", v+"sobjects/EmailMessage/EmailcrmKey__c/m1", map[string]any{"ParentId": caseID, "Incoming": true, "Status": "0"}, nil)
	require.Equal(t, 201, st, string(b))
	// ParentId is createable but not updateable, as in Salesforce: a second
	// upsert that matches must leave it out.
	st, _, b = c.do("PATCH", v+"sobjects/EmailMessage/EmailcrmKey__c/m1", map[string]any{"ParentId": caseID}, nil)
	require.Equal(t, 400, st, string(b))
	assert.Equal(t, "INVALID_FIELD_FOR_INSERT_UPDATE", errorCode(t, b))
	st, _, b = c.do("PATCH", v+"sobjects/EmailMessage/EmailcrmKey__c/m1", map[string]any{"Status": "1"}, nil)
	require.Equal(t, 200, st, string(b))

	// Clearing a required field fails.
	contactID := c.s.Insert("Contact", map[string]any{"LastName": "Doe"})
	st, _, b = c.do("PATCH", v+"sobjects/Contact/"+contactID, map[string]any{"LastName": nil}, nil)
	require.Equal(t, 400, st, string(b))
	assert.Equal(t, "REQUIRED_FIELD_MISSING", errorCode(t, b))

	// Deleting a Case deletes its EmailMessages.
	st, _, _ = c.do("DELETE", v+"sobjects/Case/"+caseID, nil, nil)
	require.Equal(t, 204, st)
	assert.Empty(t, c.s.Records("EmailMessage"))
}

func TestAddField(t *testing.T) {
	c := newClient(t, nil)
	c.s.AddField("Contact", "Ext__c", 10, true)
	c.s.AddField("Thing__c", "Key__c", 5, true)
	st, _, b := c.do("PATCH", v+"sobjects/Contact/Ext__c/abc", map[string]any{"LastName": "x"}, nil)
	require.Equal(t, 201, st, string(b))
	st, _, b = c.do("PATCH", v+"sobjects/Contact/Ext__c/abcdefghijk", map[string]any{"LastName": "x"}, nil)
	require.Equal(t, 400, st, string(b))
	assert.Equal(t, "STRING_TOO_LONG", errorCode(t, b))
	st, _, b = c.do("POST", v+"sobjects/Thing__c", map[string]any{"Key__c": "k"}, nil)
	require.Equal(t, 201, st, string(b))
	st, b = c.query("SELECT Id, Key__c FROM Thing__c WHERE Key__c = 'K'")
	require.Equal(t, 200, st, string(b))
	assert.Len(t, records(t, b), 1)
}
