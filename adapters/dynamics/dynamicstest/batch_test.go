package dynamicstest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type batchReq struct {
	method, url string
	body        any
	contentID   string
	headers     []string
}

func httpPart(r batchReq) string {
	var b strings.Builder
	b.WriteString("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n")
	if r.contentID != "" {
		b.WriteString("Content-ID: " + r.contentID + "\r\n")
	}
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", r.method, r.url)
	for _, h := range r.headers {
		b.WriteString(h + "\r\n")
	}
	if r.body != nil {
		j, _ := json.Marshal(r.body)
		b.WriteString("Content-Type: application/json; type=entry\r\n\r\n")
		b.Write(j)
	}
	b.WriteString("\r\n")
	return b.String()
}

// batchBody builds a $batch body; each element of items is a batchReq (a
// single request) or a []batchReq (a change set).
func batchBody(items ...any) string {
	var b strings.Builder
	for i, it := range items {
		b.WriteString("--batch_x\r\n")
		switch v := it.(type) {
		case batchReq:
			b.WriteString(httpPart(v))
		case []batchReq:
			cs := fmt.Sprintf("changeset_%d", i)
			b.WriteString("Content-Type: multipart/mixed; boundary=" + cs + "\r\n\r\n")
			for _, r := range v {
				b.WriteString("--" + cs + "\r\n" + httpPart(r))
			}
			b.WriteString("--" + cs + "--\r\n")
		}
	}
	b.WriteString("--batch_x--\r\n")
	return b.String()
}

type partResult struct {
	status    int
	contentID string
	entityID  string
	body      string
}

// parseBatchResponse flattens a multipart/mixed batch response.
func parseBatchResponse(t *testing.T, r result) []partResult {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	require.True(t, strings.HasPrefix(params["boundary"], "batchresponse_"))
	return readParts(t, bytes.NewReader(r.body), params["boundary"])
}

func readParts(t *testing.T, rd io.Reader, boundary string) []partResult {
	t.Helper()
	var out []partResult
	mr := multipart.NewReader(rd, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		mt, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if mt == "multipart/mixed" {
			require.True(t, strings.HasPrefix(params["boundary"], "changesetresponse_"))
			out = append(out, readParts(t, p, params["boundary"])...)
			continue
		}
		b, _ := io.ReadAll(p)
		head, body, _ := strings.Cut(string(b), "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		pr := partResult{contentID: p.Header.Get("Content-ID"), body: body}
		_, err = fmt.Sscanf(lines[0], "HTTP/1.1 %d", &pr.status)
		require.NoError(t, err, lines[0])
		for _, l := range lines[1:] {
			if v, ok := strings.CutPrefix(l, "OData-EntityId: "); ok {
				pr.entityID = v
			}
		}
		out = append(out, pr)
	}
}

func (c *client) batch(body string, hdr ...string) result {
	c.t.Helper()
	return c.do("POST", "$batch", body, append([]string{"Content-Type: multipart/mixed; boundary=batch_x"}, hdr...)...)
}

func TestBatchChangesetWithReferences(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	c.s.ResetCalls()
	r := c.batch(batchBody([]batchReq{
		{method: "POST", url: "/api/data/v9.2/incidents", contentID: "1", body: map[string]any{
			"title": "From mail", "emailcrm_key": "k1", "customerid_contact@odata.bind": "/contacts(" + contact + ")",
		}},
		{method: "POST", url: "/api/data/v9.2/emails", contentID: "2", body: map[string]any{
			"subject": "Help", "emailcrm_key": "m1", "regardingobjectid_incident_email@odata.bind": "$1",
			"email_activity_parties": []any{map[string]any{"participationtypemask": 1, "addressused": "ann@example.com"}},
		}},
		{method: "POST", url: "$2/email_activity_mime_attachment", contentID: "3", body: map[string]any{
			"filename": "a.txt", "mimetype": "text/plain", "body": "aGk=",
		}},
	}, batchReq{method: "GET", url: "incidents?$select=title"}))
	parts := parseBatchResponse(t, r)
	require.Len(t, parts, 4)
	for i, p := range parts[:3] {
		assert.Equal(t, http.StatusNoContent, p.status, p.body)
		assert.Equal(t, fmt.Sprint(i+1), p.contentID)
		assert.Contains(t, p.entityID, c.s.URL()+"/api/data/v9.2/")
	}
	assert.Equal(t, http.StatusOK, parts[3].status)
	assert.Contains(t, parts[3].body, "From mail")
	assert.Equal(t, 1, c.s.Calls(), "a $batch is one call")

	incs, emails, atts := c.s.Records("incidents"), c.s.Records("emails"), c.s.Records("activitymimeattachments")
	require.Len(t, incs, 1)
	require.Len(t, emails, 1)
	require.Len(t, atts, 1)
	assert.Equal(t, incs[0]["incidentid"], emails[0]["_regardingobjectid_value"])
	assert.Equal(t, emails[0]["activityid"], atts[0]["_objectid_value"])
	assert.Len(t, c.s.Records("activityparties"), 1)
}

func TestBatchChangesetRollback(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	r := c.batch(batchBody([]batchReq{
		{method: "POST", url: "incidents", contentID: "1", body: map[string]any{
			"title": "From mail", "customerid_contact@odata.bind": "/contacts(" + contact + ")",
		}},
		{method: "POST", url: "emails", contentID: "2", body: map[string]any{"subject": "Help", "regardingobjectid_incident_email@odata.bind": "$1"}},
		{method: "POST", url: "$2/email_activity_mime_attachment", contentID: "3", body: map[string]any{
			"filename": strings.Repeat("f", 256), "body": "aGk=",
		}},
	}, batchReq{method: "GET", url: "incidents"}))
	parts := parseBatchResponse(t, r)
	require.Len(t, parts, 1, "only the failing request's error; execution stops")
	assert.Equal(t, http.StatusBadRequest, parts[0].status)
	assert.Equal(t, "3", parts[0].contentID)
	assert.Contains(t, parts[0].body, "0x80044331")
	assert.Empty(t, c.s.Records("incidents"))
	assert.Empty(t, c.s.Records("emails"))
	assert.Empty(t, c.s.Records("activitymimeattachments"))

	// With continue-on-error the following parts run.
	r = c.batch(batchBody([]batchReq{{method: "POST", url: "incidents", contentID: "1", body: map[string]any{"title": "no customer"}}},
		batchReq{method: "GET", url: "incidents"}), "Prefer: odata.continue-on-error")
	parts = parseBatchResponse(t, r)
	require.Len(t, parts, 2)
	assert.Equal(t, http.StatusBadRequest, parts[0].status)
	assert.Equal(t, http.StatusOK, parts[1].status)
}

func TestBatchLimits(t *testing.T) {
	c := newClient(t, nil)
	var items []any
	for i := 0; i < 1001; i++ {
		items = append(items, batchReq{method: "GET", url: "WhoAmI"})
	}
	r := c.batch(batchBody(items...))
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "0x80040203", r.code(t))

	parts := parseBatchResponse(t, c.batch(batchBody(items[:1000]...)))
	assert.Len(t, parts, 1000)

	r = c.batch(batchBody([]batchReq{{method: "GET", url: "incidents", contentID: "1"}}))
	assert.Equal(t, http.StatusBadRequest, r.status, "GET inside a change set")
	r = c.do("POST", "$batch", "garbage", "Content-Type: application/json")
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = c.batch(batchBody([]batchReq{{method: "POST", url: "accounts", body: map[string]any{"name": "no content id"}}}))
	assert.Equal(t, http.StatusBadRequest, r.status, "a change set request needs a Content-ID")
	assert.Equal(t, "0x80060888", r.code(t))
	assert.Empty(t, c.s.Records("accounts"))
	assert.Equal(t, 5, c.s.Calls())
}

func TestBatchUpsertInChangeset(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	body := map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"}
	r := c.batch(batchBody([]batchReq{
		{method: "PATCH", url: "incidents(emailcrm_key='k''1')", contentID: "1", body: body, headers: []string{"If-None-Match: *"}},
		{method: "POST", url: "$1/Incident_Annotation", contentID: "2", body: map[string]any{"subject": "note", "notetext": "hello"}},
	}))
	parts := parseBatchResponse(t, r)
	require.Len(t, parts, 2)
	assert.Equal(t, http.StatusNoContent, parts[1].status, parts[1].body)
	incs := c.s.Records("incidents")
	require.Len(t, incs, 1)
	assert.Equal(t, "k'1", incs[0]["emailcrm_key"])
	notes := c.s.Records("annotations")
	require.Len(t, notes, 1)
	assert.Equal(t, incs[0]["incidentid"], notes[0]["_objectid_value"])
	assert.Equal(t, "incident", notes[0]["objecttypecode"])

	// Same key again with If-None-Match: the whole change set fails with 412.
	parts = parseBatchResponse(t, c.batch(batchBody([]batchReq{
		{method: "PATCH", url: "incidents(emailcrm_key='k''1')", contentID: "1", body: body, headers: []string{"If-None-Match: *"}},
	})))
	require.Len(t, parts, 1)
	assert.Equal(t, http.StatusPreconditionFailed, parts[0].status)
	assert.Contains(t, parts[0].body, "0x80060892")
}
