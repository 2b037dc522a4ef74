package salesforcetest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func compositeResults(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out struct {
		CompositeResponse []map[string]any `json:"compositeResponse"`
	}
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return out.CompositeResponse
}

func TestCompositeReferences(t *testing.T) {
	c := newClient(t, nil)
	c.s.Insert("Contact", map[string]any{"LastName": "Doe", "Email": "d@example.com"})
	body := map[string]any{
		"allOrNone": true,
		"compositeRequest": []map[string]any{
			{"method": "GET", "url": v + "query?q=" + url.QueryEscape("SELECT Id FROM Contact WHERE Email = 'd@example.com'"), "referenceId": "contact"},
			{"method": "POST", "url": v + "sobjects/Case", "referenceId": "newCase",
				"body":        map[string]any{"Subject": "Hi", "ContactId": "@{contact.records[0].Id}"},
				"httpHeaders": map[string]string{"Sforce-Auto-Assign": "TRUE"}},
			{"method": "POST", "url": v + "sobjects/EmailMessage", "referenceId": "email",
				"body": map[string]any{"ParentId": "@{newCase.id}", "Subject": "re: @{newCase.id}"}},
			{"method": "GET", "url": v + "sobjects/Case/@{newCase.id}?fields=CaseNumber", "referenceId": "readBack"},
		},
	}
	st, hdr, b := c.do("POST", v+"composite", body, nil)
	require.Equal(t, 200, st, string(b))
	assert.Equal(t, "api-usage=1/100000", hdr.Get("Sforce-Limit-Info"))
	res := compositeResults(t, b)
	require.Len(t, res, 4)
	for _, r := range res {
		assert.Less(t, r["httpStatusCode"].(float64), float64(300), r)
	}
	caseID := res[1]["body"].(map[string]any)["id"].(string)
	rec, _ := c.s.Record("Case", caseID)
	assert.Equal(t, c.s.Records("Contact")[0]["Id"], rec["ContactId"])
	assert.Equal(t, "TRUE", rec["_AutoAssign"])
	em := c.s.Records("EmailMessage")
	require.Len(t, em, 1)
	assert.Equal(t, "re: "+caseID, em[0]["Subject"])
	assert.Equal(t, "00001000", res[3]["body"].(map[string]any)["CaseNumber"])
	assert.Equal(t, 1, c.s.Calls())
}

func TestCompositeAllOrNoneRollback(t *testing.T) {
	c := newClient(t, nil)
	body := map[string]any{
		"allOrNone": true,
		"compositeRequest": []map[string]any{
			{"method": "POST", "url": v + "sobjects/Case", "referenceId": "a", "body": map[string]any{"Subject": "ok"}},
			{"method": "POST", "url": v + "sobjects/EmailMessage", "referenceId": "b", "body": map[string]any{"Subject": "no parent"}},
			{"method": "POST", "url": v + "sobjects/Case", "referenceId": "c", "body": map[string]any{"Subject": "later"}},
		},
	}
	st, _, b := c.do("POST", v+"composite", body, nil)
	require.Equal(t, 200, st, string(b))
	res := compositeResults(t, b)
	require.Len(t, res, 3)
	code := func(r map[string]any) string {
		return r["body"].([]any)[0].(map[string]any)["errorCode"].(string)
	}
	assert.Equal(t, float64(400), res[0]["httpStatusCode"])
	assert.Equal(t, "PROCESSING_HALTED", code(res[0]))
	assert.Equal(t, "REQUIRED_FIELD_MISSING", code(res[1]))
	assert.Equal(t, "PROCESSING_HALTED", code(res[2]))
	assert.Empty(t, c.s.Records("Case"))

	// Without allOrNone the successes stay.
	body["allOrNone"] = false
	st, _, b = c.do("POST", v+"composite", body, nil)
	require.Equal(t, 200, st, string(b))
	res = compositeResults(t, b)
	assert.Equal(t, float64(201), res[0]["httpStatusCode"])
	assert.Equal(t, float64(400), res[1]["httpStatusCode"])
	assert.Equal(t, float64(201), res[2]["httpStatusCode"])
	assert.Len(t, c.s.Records("Case"), 2)
}

func TestCompositeLimits(t *testing.T) {
	c := newClient(t, nil)
	many := func(n int, query bool) map[string]any {
		var subs []map[string]any
		for i := 0; i < n; i++ {
			sr := map[string]any{"method": "POST", "url": v + "sobjects/Account", "referenceId": fmt.Sprintf("r%d", i), "body": map[string]any{"Name": "a"}}
			if query {
				sr = map[string]any{"method": "GET", "url": v + "query?q=SELECT+Id+FROM+Account", "referenceId": fmt.Sprintf("r%d", i)}
			}
			subs = append(subs, sr)
		}
		return map[string]any{"compositeRequest": subs}
	}
	st, _, b := c.do("POST", v+"composite", many(26, false), nil)
	assert.Equal(t, 400, st, string(b))
	assert.Equal(t, "LIMIT_EXCEEDED", errorCode(t, b))
	st, _, b = c.do("POST", v+"composite", many(6, true), nil)
	assert.Equal(t, 400, st, string(b))
	assert.Equal(t, "LIMIT_EXCEEDED", errorCode(t, b))
	assert.Empty(t, c.s.Records("Account"))

	st, _, b = c.do("POST", v+"composite", many(25, false), nil)
	assert.Equal(t, 200, st, string(b))
	st, _, b = c.do("POST", v+"composite", many(5, true), nil)
	assert.Equal(t, 200, st, string(b))
	assert.Len(t, c.s.Records("Account"), 25)
}

func TestCollections(t *testing.T) {
	c := newClient(t, nil)
	recs := []map[string]any{
		{"attributes": map[string]any{"type": "Account"}, "Name": "A"},
		{"attributes": map[string]any{"type": "Contact"}},
	}
	st, _, b := c.do("POST", v+"composite/sobjects", map[string]any{"allOrNone": true, "records": recs}, nil)
	require.Equal(t, 200, st, string(b))
	var res []map[string]any
	require.NoError(t, json.Unmarshal(b, &res))
	require.Len(t, res, 2)
	assert.Equal(t, "ALL_OR_NONE_OPERATION_ROLLED_BACK", res[0]["errors"].([]any)[0].(map[string]any)["statusCode"])
	assert.Equal(t, "REQUIRED_FIELD_MISSING", res[1]["errors"].([]any)[0].(map[string]any)["statusCode"])
	assert.Empty(t, c.s.Records("Account"))

	st, _, b = c.do("POST", v+"composite/sobjects", map[string]any{"allOrNone": false, "records": recs}, nil)
	require.Equal(t, 200, st, string(b))
	require.NoError(t, json.Unmarshal(b, &res))
	assert.Equal(t, true, res[0]["success"])
	assert.Equal(t, false, res[1]["success"])
	assert.Len(t, c.s.Records("Account"), 1)

	var tooMany []map[string]any
	for i := 0; i < 201; i++ {
		tooMany = append(tooMany, recs[0])
	}
	st, _, b = c.do("POST", v+"composite/sobjects", map[string]any{"records": tooMany}, nil)
	assert.Equal(t, 400, st, string(b))
}

func TestJWTBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(&Options{ClientID: "cid", JWTPublicKey: &key.PublicKey, Now: func() time.Time { return now }})
	t.Cleanup(s.Close)
	s.Insert("User", map[string]any{"Username": "bot@example.com", "LastName": "Bot"})
	sign := func(k *rsa.PrivateKey, claims map[string]any) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`))
		cb, _ := json.Marshal(claims)
		p := base64.RawURLEncoding.EncodeToString(cb)
		sum := sha256.Sum256([]byte(h + "." + p))
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		require.NoError(t, err)
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	post := func(assertion string) (int, string) {
		resp, err := http.PostForm(s.URL()+"/services/oauth2/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}})
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := map[string]any{"iss": "cid", "sub": "bot@example.com", "aud": "https://login.salesforce.com", "exp": now.Add(2 * time.Minute).Unix()}
	st, b := post(sign(key, good))
	assert.Equal(t, 200, st, b)
	assert.Contains(t, b, "access_token")

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	st, _ = post(sign(other, good))
	assert.Equal(t, 400, st)
	for name, change := range map[string][2]any{
		"iss": {"iss", "other"}, "sub": {"sub", "nobody@example.com"}, "aud": {"aud", "https://evil.example"},
		"expired": {"exp", now.Add(-time.Second).Unix()}, "too far": {"exp", now.Add(4 * time.Minute).Unix()},
	} {
		claims := map[string]any{}
		for k, v := range good {
			claims[k] = v
		}
		claims[change[0].(string)] = change[1]
		st, b := post(sign(key, claims))
		assert.Equal(t, 400, st, name+": "+b)
	}
}
