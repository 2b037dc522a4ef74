package dynamicstest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
)

func TestCreateRetrieve(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	id := c.createIncident(map[string]any{
		"title": "Printer on fire", "caseorigincode": 2, "customerid_contact@odata.bind": "/contacts(" + contact + ")",
	})
	r := c.do("GET", "incidents("+id+")?$select=title,ticketnumber,_customerid_value,statecode,statuscode", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	m := r.json(t)
	assert.Equal(t, "Printer on fire", m["title"])
	assert.Equal(t, contact, m["_customerid_value"])
	assert.Regexp(t, `^CAS-01000-[A-Z0-9]{6}$`, m["ticketnumber"])
	assert.EqualValues(t, 0, m["statecode"])
	assert.EqualValues(t, 1, m["statuscode"])
	assert.NotEmpty(t, r.header.Get("x-ms-ratelimit-burst-remaining-xrm-requests"))
	assert.NotEmpty(t, r.header.Get("x-ms-ratelimit-time-remaining-xrm-requests"))

	r = c.do("POST", "incidents?$select=title", map[string]any{"title": "x", "customerid_contact@odata.bind": "/contacts(" + contact + ")"}, "Prefer: return=representation")
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Equal(t, "x", r.json(t)["title"])

	r = c.do("GET", "incidents(00000000-0000-0000-0000-000000000001)", nil)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "0x80040217", r.code(t))
}

func TestCreateValidation(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	bind := "/contacts(" + contact + ")"
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		msg    string
	}{
		{name: "title too long", body: map[string]any{"title": strings.Repeat("a", 201), "customerid_contact@odata.bind": bind},
			status: 400, code: "0x80044331", msg: "The length of the 'title' attribute of the 'incident' entity exceeded the maximum allowed length of '200'."},
		{name: "title missing", body: map[string]any{"customerid_contact@odata.bind": bind}, status: 400, code: "0x80040203"},
		{name: "customer missing", body: map[string]any{"title": "t"}, status: 400, code: "0x80040203"},
		{name: "bind to missing", body: map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(00000000-0000-0000-0000-000000000001)"},
			status: 400, code: "0x80040217", msg: "contact With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"},
		{name: "unknown nav", body: map[string]any{"title": "t", "customerid@odata.bind": bind}, status: 400, code: "0x80060888", msg: "An undeclared property 'customerid'"},
		{name: "unknown attr", body: map[string]any{"title": "t", "customerid_contact@odata.bind": bind, "nope": 1}, status: 400, code: "0x80060888"},
		{name: "option out of range", body: map[string]any{"title": "t", "customerid_contact@odata.bind": bind, "prioritycode": 9}, status: 400, code: "0x8004431a"},
		{name: "wrong type", body: map[string]any{"title": 5, "customerid_contact@odata.bind": bind}, status: 400, code: "0x80048d19"},
		{name: "resolve by create", body: map[string]any{"title": "t", "customerid_contact@odata.bind": bind, "statecode": 1, "statuscode": 5}, status: 400, code: "0x80040203"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", "incidents", tc.body)
			require.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, tc.code, r.code(t))
			if tc.msg != "" {
				assert.Contains(t, string(r.body), tc.msg)
			}
		})
	}
	assert.Empty(t, c.s.Records("incidents"))

	c.s.AddAttribute("incident", "emailcrm_thread", 10)
	r := c.do("POST", "incidents", map[string]any{"title": "t", "customerid_contact@odata.bind": bind, "emailcrm_thread": "01234567890"})
	assert.Equal(t, "0x80044331", r.code(t))
}

func TestAlternateKeyUpsert(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	body := map[string]any{"title": "first", "customerid_contact@odata.bind": "/contacts(" + contact + ")"}

	r := c.do("PATCH", "incidents(emailcrm_key='k1')", body, "If-Match: *")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "0x80040217", r.code(t))

	r = c.do("PATCH", "incidents(emailcrm_key='k1')", body, "If-None-Match: *")
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	assert.Equal(t, c.s.URL()+"/api/data/v9.2/incidents(emailcrm_key='k1')", r.header.Get("OData-EntityId"), "an upsert by key answers the key form")
	recs := c.s.Records("incidents")
	require.Len(t, recs, 1)
	id := recs[0]["incidentid"].(string)
	assert.Equal(t, "k1", recs[0]["emailcrm_key"])

	r = c.do("PATCH", "incidents(emailcrm_key='k1')", body, "If-None-Match: *")
	assert.Equal(t, http.StatusPreconditionFailed, r.status)
	assert.Equal(t, "0x80060892", r.code(t))

	r = c.do("PATCH", "incidents(emailcrm_key='K1')?$select=incidentid", map[string]any{"title": "second"}, "If-Match: *", "Prefer: return=representation")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, id, r.json(t)["incidentid"], "keys compare case-insensitively")

	r = c.do("PATCH", "incidents(emailcrm_key='a b/c''d')", body, "Prefer: return=representation") // no condition: upsert creates
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.NotEqual(t, id, r.json(t)["incidentid"])
	assert.Equal(t, c.s.URL()+"/api/data/v9.2/incidents(emailcrm_key='a%20b%2Fc''d')", r.header.Get("OData-EntityId"))
	r = c.do("PATCH", "incidents(emailcrm_key='a%20b%2Fc''d')", map[string]any{"title": "again"}, "Prefer: return=representation")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "again", r.json(t)["title"])
	assert.Equal(t, "a b/c'd", r.json(t)["emailcrm_key"])

	r = c.do("POST", "incidents", map[string]any{"title": "dup", "emailcrm_key": "k1", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})
	assert.Equal(t, http.StatusPreconditionFailed, r.status)
	assert.Equal(t, "0x80060892", r.code(t))
	assert.Contains(t, string(r.body), "A record with matching key values already exists.")

	r = c.do("GET", "incidents(emailcrm_key='k1')?$select=title", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "second", r.json(t)["title"])
	r = c.do("GET", "incidents(emailcrm_key='O''Brien')", nil)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Len(t, c.s.Records("incidents"), 2)
}

func TestETag(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	id := c.createIncident(map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})
	etag := c.do("GET", "incidents("+id+")", nil).json(t)["@odata.etag"].(string)
	r := c.do("PATCH", "incidents("+id+")", map[string]any{"title": "u"}, "If-Match: "+etag)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	r = c.do("PATCH", "incidents("+id+")", map[string]any{"title": "v"}, "If-Match: "+etag)
	assert.Equal(t, http.StatusPreconditionFailed, r.status)
	assert.Equal(t, "0x80060882", r.code(t))
}

func TestCloseAndReactivate(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	id := c.createIncident(map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})

	r := c.do("PATCH", "incidents("+id+")", map[string]any{"statecode": 1, "statuscode": 5})
	assert.Equal(t, "0x80040203", r.code(t))

	r = c.do("POST", "CloseIncident", map[string]any{
		"IncidentResolution": map[string]any{"subject": "done", "incidentid@odata.bind": "/incidents(" + id + ")"},
		"Status":             5,
	})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	rec, _ := c.s.Record("incidents", id)
	assert.EqualValues(t, 1, rec["statecode"])
	assert.EqualValues(t, 5, rec["statuscode"])
	res := c.s.Records("incidentresolutions")
	require.Len(t, res, 1)
	assert.Equal(t, id, res[0]["_incidentid_value"])

	r = c.do("PATCH", "incidents("+id+")", map[string]any{"title": "changed"})
	assert.Equal(t, "0x80040203", r.code(t))
	r = c.do("PATCH", "incidents("+id+")", map[string]any{"statecode": 0, "statuscode": 5})
	assert.Equal(t, "0x80040203", r.code(t))
	r = c.do("PATCH", "incidents("+id+")", map[string]any{"statecode": 0, "statuscode": 1})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	rec, _ = c.s.Record("incidents", id)
	assert.EqualValues(t, 0, rec["statecode"])
}

func TestEmailDeepInsertAndAttachment(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	inc := c.createIncident(map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})
	r := c.do("POST", "emails", map[string]any{
		"subject": "Hello", "description": "<p>hi</p>", "directioncode": false, "emailcrm_key": "m1",
		"regardingobjectid_incident_email@odata.bind": "/incidents(" + inc + ")",
		"email_activity_parties": []any{
			map[string]any{"participationtypemask": 1, "addressused": "ann@example.com", "partyid_contact@odata.bind": "/contacts(" + contact + ")"},
			map[string]any{"participationtypemask": 2, "addressused": "support@example.com"},
		},
	})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	email := entityID(t, r)
	parties := c.s.Records("activityparties")
	require.Len(t, parties, 2)
	assert.Equal(t, email, parties[0]["_activityid_value"])

	r = c.do("POST", "activitymimeattachments", map[string]any{
		"filename": "a.txt", "mimetype": "text/plain", "body": "aGVsbG8=",
		"objectid_activitypointer@odata.bind": "/emails(" + email + ")",
	})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	att := c.s.Records("activitymimeattachments")[0]
	assert.Equal(t, email, att["_objectid_value"])
	assert.EqualValues(t, 5, att["filesize"])

	r = c.do("POST", "activityparties", map[string]any{"participationtypemask": 1})
	assert.Equal(t, http.StatusBadRequest, r.status)

	r = c.do("GET", "emails(emailcrm_key='m1')?$select=subject,_regardingobjectid_value", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, inc, r.json(t)["_regardingobjectid_value"])
}

func TestUploadLimit(t *testing.T) {
	c := newClient(t, &dynamicstest.Options{MaxUploadFileSize: 8})
	contact := c.seedContact("ann@example.com")
	inc := c.createIncident(map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})
	note := map[string]any{"subject": "n", "filename": "f", "objectid_incident@odata.bind": "/incidents(" + inc + ")"}
	note["documentbody"] = "aGVsbG8h" // 8
	r := c.do("POST", "annotations", note)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	note["documentbody"] = "aGVsbG8hIQ=="
	r = c.do("POST", "annotations", note)
	assert.Equal(t, "0x80044a02", r.code(t))
	note["documentbody"] = "not base64!"
	assert.Equal(t, http.StatusBadRequest, c.do("POST", "annotations", note).status)
}

func TestThrottle(t *testing.T) {
	c := newClient(t, nil)
	c.s.Throttle(1, 1500*time.Millisecond)
	r := c.do("GET", "incidents", nil)
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "2", r.header.Get("Retry-After"))
	assert.Equal(t, "0x80072322", r.code(t))
	assert.Equal(t, http.StatusOK, c.do("GET", "incidents", nil).status)
}

func TestRequestLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newClient(t, &dynamicstest.Options{RequestLimit: 3, Now: func() time.Time { return now }})
	for i := 0; i < 3; i++ {
		r := c.do("GET", "incidents", nil)
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, []string{"2", "1", "0"}[i], r.header.Get("x-ms-ratelimit-burst-remaining-xrm-requests"))
	}
	now = now.Add(time.Minute)
	r := c.do("GET", "incidents", nil)
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "240", r.header.Get("Retry-After"))
	assert.JSONEq(t, `{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 3 over time window of 300 seconds."}}`, string(r.body))
	now = now.Add(4 * time.Minute)
	assert.Equal(t, http.StatusOK, c.do("GET", "incidents", nil).status)
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newClient(t, &dynamicstest.Options{Now: func() time.Time { return now }})
	assert.Equal(t, http.StatusOK, c.do("GET", "WhoAmI", nil).status)

	now = now.Add(time.Hour)
	r := c.do("GET", "incidents", nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	assert.NotEmpty(t, r.code(t))

	c.token = c.fetchToken("app", "secret")
	assert.Equal(t, http.StatusOK, c.do("GET", "incidents", nil).status)
	c.s.ExpireTokens()
	assert.Equal(t, http.StatusUnauthorized, c.do("GET", "incidents", nil).status)

	resp, err := http.PostForm(c.s.TokenURL(), map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"wrong"}, "scope": {c.s.URL() + "/.default"},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestFailNextAndCalls(t *testing.T) {
	c := newClient(t, nil)
	assert.Equal(t, 0, c.s.Calls(), "token requests are not API calls")
	c.s.FailNext(2, http.StatusServiceUnavailable)
	assert.Equal(t, http.StatusServiceUnavailable, c.do("GET", "incidents", nil).status)
	r := c.do("GET", "incidents", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.NotEmpty(t, r.code(t))
	assert.Equal(t, http.StatusOK, c.do("GET", "incidents?$top=1", nil).status)
	assert.Equal(t, 3, c.s.Calls())
	log := c.s.Log()
	require.Len(t, log, 3)
	assert.Equal(t, dynamicstest.Call{Method: "GET", Path: "/api/data/v9.2/incidents", RawQuery: "$top=1", Body: []byte{}, Status: 200}, log[2])
	c.s.ResetCalls()
	assert.Equal(t, 0, c.s.Calls())
	assert.Empty(t, c.s.Log())
}

func TestAddToQueue(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	q1 := c.s.Insert("queues", map[string]any{"name": "Support"})
	q2 := c.s.Insert("queues", map[string]any{"name": "Billing"})
	inc := c.createIncident(map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})
	target := map[string]any{"Target": map[string]any{"@odata.type": "Microsoft.Dynamics.CRM.incident", "incidentid": inc}}
	r := c.do("POST", "queues("+q1+")/Microsoft.Dynamics.CRM.AddToQueue", target)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	item := r.json(t)["QueueItemId"].(string)
	r = c.do("POST", "queues("+q2+")/Microsoft.Dynamics.CRM.AddToQueue", target)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, item, r.json(t)["QueueItemId"], "an item moves between queues")
	items := c.s.Records("queueitems")
	require.Len(t, items, 1)
	assert.Equal(t, q2, items[0]["_queueid_value"])
	assert.Equal(t, inc, items[0]["_objectid_value"])
	assert.Equal(t, "incident", items[0]["objecttypecode"])
}

func TestTokenRequests(t *testing.T) {
	c := newClient(t, nil)
	post := func(tokenURL string, form map[string][]string) (int, string) {
		t.Helper()
		resp, err := http.PostForm(tokenURL, form)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		code, _ := m["error"].(string)
		return resp.StatusCode, code
	}
	good := map[string][]string{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"secret"}, "scope": {c.s.URL() + "/.default"}}
	with := func(k, v string) map[string][]string {
		m := map[string][]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = []string{v}
		return m
	}
	tests := []struct {
		name   string
		url    string
		form   map[string][]string
		status int
		code   string
	}{
		{name: "ok", url: c.s.TokenURL(), form: good, status: 200},
		{name: "wrong secret", url: c.s.TokenURL(), form: with("client_secret", "x"), status: 401, code: "invalid_client"},
		{name: "wrong client", url: c.s.TokenURL(), form: with("client_id", "x"), status: 400, code: "unauthorized_client"},
		{name: "wrong scope", url: c.s.TokenURL(), form: with("scope", "https://other/.default"), status: 400, code: "invalid_scope"},
		{name: "wrong grant", url: c.s.TokenURL(), form: with("grant_type", "password"), status: 400, code: "unsupported_grant_type"},
		{name: "wrong tenant", url: c.s.URL() + "/other/oauth2/v2.0/token", form: good, status: 400, code: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code := post(tc.url, tc.form)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.code, code)
		})
	}

	c.token = ""
	r := c.do("GET", "incidents", nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.NotContains(t, r.header.Get("WWW-Authenticate"), "invalid_token")
	assert.Equal(t, 1, c.s.Calls())
}
