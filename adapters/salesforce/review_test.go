package salesforce_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// An answer longer than the bound is refused, not read whole: the driver
// reads at most one byte past it.
func TestAnswerBounded(t *testing.T) {
	var sent atomic.Int64
	body := `{"totalSize":0,"done":true,"records":[],"pad":"` + strings.Repeat("x", 4000) + `"}`
	es := newErrorServer(t, func(string) (int, string, http.Header) { return 200, body, nil })
	cb := &countingBodies{rt: http.DefaultTransport, read: &sent}
	d, err := salesforce.NewDriver(&salesforce.Config{
		InstanceURL: es.URL, ClientID: "client-id", ClientSecret: testSecret, AutoAssign: "FALSE",
		AllowInsecureHTTP: true, SlowDownAt: -1, HTTPClient: &http.Client{Transport: cb},
	})
	require.NoError(t, err)

	salesforce.SetAnswerLimits(d, int64(len(body)), 0)
	_, err = d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err), "an answer of exactly the bound is read: %v", err)

	salesforce.SetAnswerLimits(d, 1024, 0)
	sent.Store(0)
	_, err = d.FindCaseByNumber(t.Context(), "1")
	require.Error(t, err)
	assert.Equal(t, driver.Internal, d.ErrorCode(err))
	assert.Contains(t, err.Error(), "longer than 1024 bytes")
	assert.LessOrEqual(t, sent.Load(), int64(1025+512), "the body was not read whole")
	assert.Empty(t, cb.open(), "every body closed")
}

// A file download has its own, larger bound (files reach 2 GB); a JSON
// answer never gets it.
func TestFileAnswerBounded(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, nil)
	ctx := t.Context()
	e := testMail(1, 5000)
	c, err := d.CreateCase(ctx, newCaseReq(e))
	require.NoError(t, err)

	salesforce.SetAnswerLimits(d, 0, 4096)
	_, err = d.ListInteractions(ctx, c.ID)
	require.Error(t, err, "a 5000-byte file over a 4096-byte bound")
	assert.Contains(t, err.Error(), "VersionData: the answer is longer than 4096 bytes")

	salesforce.SetAnswerLimits(d, 0, 5000)
	tl, err := d.ListInteractions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, tl, 1)
	assert.Len(t, tl[0].Email.Attachments[0].Data, 5000)
}

// A gateway's error page that echoes the Authorization header never puts
// the token in the error text or the log.
func TestEchoedTokenRedacted(t *testing.T) {
	var logs bytes.Buffer
	es := newErrorServer(t, func(auth string) (int, string, http.Header) {
		return 502, "<html>Bad gateway for request with " + auth + "</html>", nil
	})
	d := newTestDriver(t, es.URL, &logs)
	_, err := d.FindCaseByNumber(t.Context(), "1")
	require.Error(t, err)
	assert.Equal(t, driver.Unavailable, d.ErrorCode(err))
	assert.NotContains(t, err.Error(), tokenPfx)
	assert.Contains(t, err.Error(), "Bearer [access token]")
	assert.NotContains(t, logs.String(), tokenPfx)

	// Same for an error entry of the JSON body.
	es2 := newErrorServer(t, func(auth string) (int, string, http.Header) {
		return 400, `[{"message":"bad header ` + auth + `","errorCode":"INVALID_HEADER_TYPE"}]`, nil
	})
	d2 := newTestDriver(t, es2.URL, nil)
	_, err = d2.FindCaseByNumber(t.Context(), "1")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), tokenPfx)
}

// Every response body is closed, on success, on errors and on the 401
// refresh, and the driver sends each request once (twice only for the
// refresh).
func TestBodiesClosedAndNoRetries(t *testing.T) {
	var n atomic.Int64
	es := newErrorServer(t, func(auth string) (int, string, http.Header) {
		switch n.Add(1) {
		case 1:
			return 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, nil
		case 3:
			return 503, `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`, nil
		case 4:
			return 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, nil
		}
		return 200, `{"totalSize":0,"done":true,"records":[]}`, nil
	})
	var read atomic.Int64
	cb := &countingBodies{rt: http.DefaultTransport, read: &read}
	d, err := salesforce.NewDriver(&salesforce.Config{
		InstanceURL: es.URL, ClientID: "client-id", ClientSecret: testSecret, AutoAssign: "FALSE",
		AllowInsecureHTTP: true, SlowDownAt: -1, HTTPClient: &http.Client{Transport: cb},
	})
	require.NoError(t, err)
	ctx := t.Context()
	_, err = d.FindCaseByNumber(ctx, "1") // 401, refresh, 200
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
	_, err = d.FindCaseByNumber(ctx, "1") // 503
	assert.Equal(t, driver.Unavailable, d.ErrorCode(err))
	_, err = d.FindCaseByNumber(ctx, "1") // 403 limit
	assert.Equal(t, driver.ResourceExhausted, d.ErrorCode(err))
	assert.Equal(t, int64(4), n.Load(), "one repeat, for the 401 refresh only")
	assert.Equal(t, int64(2), es.tokens.Load())
	assert.Empty(t, cb.open(), "every body closed")
	assert.Equal(t, 6, cb.count(), "4 API requests and 2 token requests")
}

// countingBodies records the response bodies of a transport and whether
// each was closed.
type countingBodies struct {
	rt     http.RoundTripper
	read   *atomic.Int64
	mu     sync.Mutex
	bodies []*trackedBody
}

func (c *countingBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	b := &trackedBody{rc: resp.Body, read: c.read, path: r.URL.Path}
	resp.Body = b
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	return resp, nil
}

func (c *countingBodies) open() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range c.bodies {
		if !b.closed.Load() {
			out = append(out, b.path)
		}
	}
	return out
}

func (c *countingBodies) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies)
}

type trackedBody struct {
	rc     io.ReadCloser
	read   *atomic.Int64
	path   string
	closed atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *trackedBody) Close() error {
	b.closed.Store(true)
	return b.rc.Close()
}

// Query paging follows nextRecordsUrl, and refuses a page it read
// already (no endless loop) and a next page outside the API.
func TestQueryPagingBounded(t *testing.T) {
	for _, tc := range []struct {
		name, next string
		wantErr    string
	}{
		{name: "loop", next: "/services/data/v62.0/query/01gX-2000", wantErr: "repeated"},
		{name: "elsewhere", next: "https://evil.example/services/data/v62.0/query/01gX-2000", wantErr: "unexpected nextRecordsUrl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			es := newErrorServer(t, func(string) (int, string, http.Header) {
				if n.Add(1) > 5 {
					return 200, `{"totalSize":1,"done":true,"records":[]}`, nil
				}
				return 200, `{"totalSize":9,"done":false,"nextRecordsUrl":"` + tc.next + `","records":[{"Id":"500000000000001AAA"}]}`, nil
			})
			d := newTestDriver(t, es.URL, nil)
			_, err := d.FindContacts(t.Context(), "a@example.com")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.LessOrEqual(t, n.Load(), int64(2))
		})
	}
}

// A client-credentials token request carries a deadline, so a token
// endpoint that never answers cannot hold a caller forever, even with an
// http.Client without Timeout.
func TestTokenRequestHasDeadline(t *testing.T) {
	es := newErrorServer(t, func(string) (int, string, http.Header) { return 200, `{"totalSize":0,"done":true,"records":[]}`, nil })
	var tokenDeadline atomic.Bool
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/services/oauth2/token") {
			_, ok := r.Context().Deadline()
			tokenDeadline.Store(ok)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	d, err := salesforce.NewDriver(&salesforce.Config{
		InstanceURL: es.URL, ClientID: "client-id", ClientSecret: testSecret, AutoAssign: "FALSE",
		AllowInsecureHTTP: true, SlowDownAt: -1, HTTPClient: &http.Client{Transport: rt},
	})
	require.NoError(t, err)
	_, err = d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
	assert.Equal(t, int64(1), es.tokens.Load())
	assert.True(t, tokenDeadline.Load(), "the token request has a deadline")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A composite query subresponse is the first page only: the driver reads
// the pages after it (Salesforce shrinks batches of records with long
// text fields), so a long timeline is never silently cut.
func TestCompositeQueryPages(t *testing.T) {
	const caseID = "500000000000001AAA"
	var pages atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/services/oauth2/token":
			_, _ = io.WriteString(w, `{"access_token":"`+tokenPfx+`X","token_type":"Bearer"}`)
		case r.URL.Path == "/services/data/v62.0/query/01gN-1":
			pages.Add(1)
			_, _ = io.WriteString(w, `{"totalSize":2,"done":true,"records":[{"Id":"00a000000000002AAA","CreatedDate":"2026-01-02T03:04:06.000+0000","CommentBody":"second","IsPublished":false}]}`)
		case r.URL.Path == "/services/data/v62.0/composite":
			q := func(ref, body string) string {
				return `{"referenceId":"` + ref + `","httpStatusCode":200,"httpHeaders":{},"body":` + body + `}`
			}
			empty := `{"totalSize":0,"done":true,"records":[]}`
			_, _ = io.WriteString(w, `{"compositeResponse":[`+
				q("case", `{"totalSize":1,"done":true,"records":[{"Id":"`+caseID+`"}]}`)+","+
				q("mails", empty)+","+
				q("notes", `{"totalSize":2,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gN-1","records":[{"Id":"00a000000000001AAA","CreatedDate":"2026-01-02T03:04:05.000+0000","CommentBody":"first","IsPublished":false}]}`)+","+
				q("files", empty)+`]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	d := newTestDriver(t, ts.URL, nil)
	tl, err := d.ListInteractions(t.Context(), caseID)
	require.NoError(t, err)
	assert.Equal(t, int64(1), pages.Load(), "the second page is read")
	require.Len(t, tl, 2)
	assert.Equal(t, "first", tl[0].Note.Body)
	assert.Equal(t, "second", tl[1].Note.Body)
}
