package dynamicstest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
)

type client struct {
	t     testing.TB
	s     *dynamicstest.Server
	token string
}

func newClient(t testing.TB, opts *dynamicstest.Options) *client {
	t.Helper()
	if opts == nil {
		opts = &dynamicstest.Options{}
	}
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = "app", "secret"
	}
	s := dynamicstest.New(opts)
	t.Cleanup(s.Close)
	c := &client{t: t, s: s}
	c.token = c.fetchToken("app", "secret")
	return c
}

func (c *client) fetchToken(id, secret string) string {
	c.t.Helper()
	resp, err := http.PostForm(c.s.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret},
		"scope": {c.s.URL() + "/.default"},
	})
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&tok))
	return tok.AccessToken
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (r result) code(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	require.NotNil(t, e, string(r.body))
	return e["code"].(string)
}

// do sends a request; path is relative to /api/data/v9.2/ and may carry a
// query string. hdr is "Name: value" pairs.
func (c *client) do(method, path string, body any, hdr ...string) result {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.s.URL()+"/api/data/v9.2/"+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// entityID extracts the GUID from an OData-EntityId header.
func entityID(t testing.TB, r result) string {
	t.Helper()
	loc := r.header.Get("OData-EntityId")
	i := strings.LastIndexByte(loc, '(')
	require.True(t, i > 0 && strings.HasSuffix(loc, ")"), "OData-EntityId %q (status %d, %s)", loc, r.status, r.body)
	return loc[i+1 : len(loc)-1]
}

func (c *client) seedContact(email string) string {
	c.t.Helper()
	return c.s.Insert("contacts", map[string]any{"firstname": "Ann", "lastname": "Lee", "emailaddress1": email})
}

func (c *client) createIncident(fields map[string]any) string {
	c.t.Helper()
	r := c.do("POST", "incidents", fields)
	require.Equal(c.t, http.StatusNoContent, r.status, string(r.body))
	return entityID(c.t, r)
}
