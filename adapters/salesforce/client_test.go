package salesforce_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

const (
	testSecret = "s3cr3t-client-secret-value"
	tokenPfx   = "00Dtoken-"
)

// errorServer is a tiny stand-in for the error paths the fake cannot
// produce on demand: it issues tokens and answers GET query with what
// answer returns.
type errorServer struct {
	*httptest.Server
	tokens atomic.Int64
	mu     sync.Mutex
	answer func(auth string) (int, string, http.Header)
	seen   []string // Authorization headers of API calls
}

func newErrorServer(t *testing.T, answer func(auth string) (int, string, http.Header)) *errorServer {
	t.Helper()
	es := &errorServer{answer: answer}
	es.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			_ = r.ParseForm()
			if r.Form.Get("client_secret") != testSecret {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"invalid client credentials"}`))
				return
			}
			n := es.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tokenPfx + string(rune('A'+n)), "instance_url": es.URL, "token_type": "Bearer"})
			return
		}
		auth := r.Header.Get("Authorization")
		es.mu.Lock()
		es.seen = append(es.seen, auth)
		es.mu.Unlock()
		st, body, h := es.answer(auth)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(es.Close)
	return es
}

func newTestDriver(t *testing.T, url string, logs *bytes.Buffer) *salesforce.Store {
	t.Helper()
	var lg *slog.Logger
	if logs != nil {
		lg = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := salesforce.NewDriver(&salesforce.Config{
		InstanceURL: url, ClientID: "client-id", ClientSecret: testSecret, AutoAssign: "FALSE",
		AllowInsecureHTTP: true, Logger: lg, SlowDownAt: -1,
	})
	require.NoError(t, err)
	return d
}

func TestTokenRefreshedOnceOn401(t *testing.T) {
	var logs bytes.Buffer
	es := newErrorServer(t, func(auth string) (int, string, http.Header) {
		if strings.HasSuffix(auth, "B") { // the first token has expired
			return 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, nil
		}
		return 200, `{"totalSize":0,"done":true,"records":[]}`, http.Header{"Sforce-Limit-Info": {"api-usage=7/15000"}}
	})
	d := newTestDriver(t, es.URL, &logs)
	_, err := d.FindCaseByNumber(t.Context(), "00001000")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
	assert.Equal(t, int64(2), es.tokens.Load(), "one refresh")
	assert.Len(t, es.seen, 2, "the request is repeated once")
	used, mx := d.Limits()
	assert.Equal(t, 7, used)
	assert.Equal(t, 15000, mx)
	for _, secret := range []string{testSecret, tokenPfx} {
		assert.NotContains(t, logs.String(), secret)
	}
}

func TestTokenRefreshGivesUp(t *testing.T) {
	es := newErrorServer(t, func(string) (int, string, http.Header) {
		return 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, nil
	})
	d := newTestDriver(t, es.URL, nil)
	_, err := d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.PermissionDenied, d.ErrorCode(err))
	assert.Len(t, es.seen, 2, "one refresh, no loop")
	assert.NotContains(t, err.Error(), tokenPfx)
}

func TestBadSecretNeverShown(t *testing.T) {
	var logs bytes.Buffer
	es := newErrorServer(t, nil)
	d, err := salesforce.NewDriver(&salesforce.Config{InstanceURL: es.URL, ClientID: "id", ClientSecret: "wrong-" + testSecret,
		AutoAssign: "FALSE", AllowInsecureHTTP: true, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	_, err = d.GetCase(t.Context(), "500000000000001AAA")
	require.Error(t, err)
	assert.Equal(t, driver.PermissionDenied, d.ErrorCode(err))
	var ae *salesforce.AuthError
	require.True(t, d.ErrorAs(err, &ae))
	assert.Equal(t, "invalid_client", ae.ErrorCode)
	assert.NotContains(t, err.Error(), testSecret)
	assert.NotContains(t, logs.String(), testSecret)
}

func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   driver.ErrorCode
		fields string
	}{
		{name: "limit", status: 403, body: `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, want: driver.ResourceExhausted},
		{name: "5xx", status: 503, body: `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`, want: driver.Unavailable},
		{name: "500 html", status: 500, body: `<html>oops</html>`, want: driver.Unavailable},
		{name: "lock", status: 409, body: `[{"message":"unable to obtain exclusive access","errorCode":"UNABLE_TO_LOCK_ROW"}]`, want: driver.Unavailable},
		{name: "validation", status: 400, body: `[{"message":"Subject is bad","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":["Subject","Origin"]}]`, want: driver.InvalidArgument, fields: "Subject, Origin"},
		{name: "too long", status: 400, body: `[{"message":"data value too large","errorCode":"STRING_TOO_LONG","fields":["SuppliedName"]}]`, want: driver.InvalidArgument, fields: "SuppliedName"},
		{name: "required", status: 400, body: `[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`, want: driver.InvalidArgument, fields: "LastName"},
		{name: "invalid field", status: 400, body: `[{"message":"No such column","errorCode":"INVALID_FIELD"}]`, want: driver.InvalidArgument},
		{name: "duplicate", status: 400, body: `[{"message":"duplicate value found","errorCode":"DUPLICATE_VALUE"}]`, want: driver.AlreadyExists},
		{name: "not found", status: 404, body: `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`, want: driver.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := newErrorServer(t, func(string) (int, string, http.Header) { return tc.status, tc.body, nil })
			d := newTestDriver(t, es.URL, nil)
			_, err := d.FindCaseByNumber(t.Context(), "1")
			require.Error(t, err)
			assert.Equal(t, tc.want, d.ErrorCode(err), "%v", err)
			assert.Len(t, es.seen, 1, "the driver does not retry")
			if tc.fields != "" {
				assert.Contains(t, err.Error(), tc.fields)
			}
			var ae *salesforce.APIError
			require.True(t, d.ErrorAs(err, &ae))
			assert.Equal(t, tc.status, ae.Status)
		})
	}
}

func TestStoreRetriesUnavailableAndLimit(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{name: "5xx", status: 503, body: `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`},
		{name: "limit", status: 403, body: `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			es := newErrorServer(t, func(string) (int, string, http.Header) {
				if n.Add(1) <= 2 {
					return tc.status, tc.body, nil
				}
				return 200, `{"totalSize":0,"done":true,"records":[]}`, nil
			})
			d := newTestDriver(t, es.URL, nil)
			s := mailcase.NewStore(d, &mailcase.StoreOptions{RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
			_, ok, err := s.FindCaseByNumber(t.Context(), "1")
			require.NoError(t, err)
			assert.False(t, ok)
			assert.Equal(t, int64(3), n.Load(), "mailcase.Store retried twice")
		})
	}
}

func TestConnectionErrorIsUnavailable(t *testing.T) {
	es := newErrorServer(t, func(string) (int, string, http.Header) { return 200, "{}", nil })
	d := newTestDriver(t, es.URL, nil)
	es.Close()
	_, err := d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.Unavailable, d.ErrorCode(err), "%v", err)
}

func TestCanceledContext(t *testing.T) {
	es := newErrorServer(t, func(string) (int, string, http.Header) { return 200, "{}", nil })
	d := newTestDriver(t, es.URL, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := d.FindCaseByNumber(ctx, "1")
	assert.Equal(t, driver.Canceled, d.ErrorCode(err))
}

func TestSlowDownNearTheLimit(t *testing.T) {
	es := newErrorServer(t, func(string) (int, string, http.Header) {
		return 200, `{"totalSize":0,"done":true,"records":[]}`, http.Header{"Sforce-Limit-Info": {"api-usage=95/100"}}
	})
	d, err := salesforce.NewDriver(&salesforce.Config{InstanceURL: es.URL, ClientID: "id", ClientSecret: testSecret,
		AutoAssign: "FALSE", AllowInsecureHTTP: true, SlowDownAt: 0.9, SlowDownMax: 400 * time.Millisecond})
	require.NoError(t, err)
	_, _ = d.FindCaseByNumber(t.Context(), "1") // learns 95/100
	start := time.Now()
	_, _ = d.FindCaseByNumber(t.Context(), "1")
	// (0.95-0.9)/(1-0.9) = half of SlowDownMax.
	assert.GreaterOrEqual(t, time.Since(start), 180*time.Millisecond)
}

func TestJWTBearerAssertion(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			_ = r.ParseForm()
			assert.Equal(t, "urn:ietf:params:oauth:grant-type:jwt-bearer", r.Form.Get("grant_type"))
			parts := strings.Split(r.Form.Get("assertion"), ".")
			require.Len(t, parts, 3)
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			assert.NoError(t, rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig))
			claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(claims, &got)
			_, _ = w.Write([]byte(`{"access_token":"jwt-token","token_type":"Bearer"}`))
			return
		}
		assert.Equal(t, "Bearer jwt-token", r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"totalSize":0,"done":true,"records":[]}`))
	}))
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	d, err := salesforce.NewDriver(&salesforce.Config{InstanceURL: srv.URL, ClientID: "consumer-key", Username: "agent@example.com",
		PrivateKey: key, Audience: "https://test.salesforce.com", AutoAssign: "TRUE", AllowInsecureHTTP: true, Now: func() time.Time { return now }})
	require.NoError(t, err)
	_, err = d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
	assert.Equal(t, "consumer-key", got["iss"])
	assert.Equal(t, "agent@example.com", got["sub"])
	assert.Equal(t, "https://test.salesforce.com", got["aud"])
	assert.Equal(t, float64(now.Add(3*time.Minute).Unix()), got["exp"])
}

func TestConfigChecks(t *testing.T) {
	base := salesforce.Config{InstanceURL: "acme.my.salesforce.com", ClientID: "id", ClientSecret: "x", AutoAssign: "FALSE"}
	for _, tc := range []struct {
		name string
		mod  func(c *salesforce.Config)
	}{
		{name: "no auto assign", mod: func(c *salesforce.Config) { c.AutoAssign = "" }},
		{name: "bad auto assign", mod: func(c *salesforce.Config) { c.AutoAssign = "sometimes" }},
		{name: "http", mod: func(c *salesforce.Config) { c.InstanceURL = "http://acme.my.salesforce.com" }},
		{name: "http not loopback", mod: func(c *salesforce.Config) {
			c.InstanceURL, c.AllowInsecureHTTP = "http://10.0.0.1", true
		}},
		{name: "no secret", mod: func(c *salesforce.Config) { c.ClientSecret = "" }},
		{name: "bad version", mod: func(c *salesforce.Config) { c.APIVersion = "62" }},
		{name: "lookup outside quotes", mod: func(c *salesforce.Config) {
			c.Lookup = &salesforce.LookupConfig{Object: "Contact", Where: "Email = {{sender}}"}
		}},
		{name: "note object", mod: func(c *salesforce.Config) { c.NoteObject = "Note" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			d, err := salesforce.NewDriver(&c)
			require.Error(t, err)
			assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
		})
	}
	for _, aa := range []string{"TRUE", "false", "01Q5g000000abcdEAA"} {
		c := base
		c.AutoAssign = aa
		_, err := salesforce.NewDriver(&c)
		assert.NoError(t, err, aa)
	}
}
