package dynamics

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// APIError is an error answered by Dataverse: the HTTP status and the
// documented OData error body {"error":{"code","message"}}. It never holds
// an access token or a secret. Reach it with errors.As or
// mailcase.Store.ErrorAs.
type APIError struct {
	// Op is the request ("POST incidents", "$batch PATCH incidents(...)").
	Op string
	// Status is the HTTP status of the request or batch part.
	Status int
	// Code is the error code ("0x80040217"); Message its text.
	Code    string
	Message string
	// RetryAfter is the Retry-After of a 429 (or 503) answer, 0 if none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("dynamics: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteString(")")
	}
	return b.String()
}

// AuthError is a failed token request (Entra ID client credentials). Its
// text holds the OAuth error code and description, never the secret or a
// token.
type AuthError struct {
	Status      int
	ErrorCode   string // "invalid_client", "unauthorized_client", ...
	Description string
	Err         error // transport error, when no answer came
}

func (e *AuthError) Error() string {
	if e.Err != nil {
		return "dynamics: token request: " + e.Err.Error()
	}
	return fmt.Sprintf("dynamics: token request: %d %s: %s", e.Status, e.ErrorCode, e.Description)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Errors the driver makes without asking Dataverse.
func errNotFound(what string) error { return local(driver.NotFound, what+" not found") }
func errInvalid(msg string) error   { return local(driver.InvalidArgument, msg) }
func errInternal(msg string) error  { return local(driver.Internal, msg) }
func errExists(msg string) error    { return local(driver.AlreadyExists, msg) }

func local(code driver.ErrorCode, msg string) error {
	return &crmhttp.LocalError{Prefix: "dynamics", Code: code, Msg: msg}
}

// client talks to one environment: tokens, requests, $batch, errors and
// service protection limits.
type client struct {
	hc      *http.Client
	base    string // instance URL without a trailing slash
	api     string // base + "/api/data/" + version + "/"
	log     *slog.Logger
	slowAt  int
	slowMax time.Duration
	calls   atomic.Int64

	// service protection: the remaining burst budget and a pause asked by
	// Retry-After
	remaining atomic.Int64 // -1 unknown
	pauseMu   sync.Mutex
	pauseTill time.Time

	tokens *crmhttp.Tokens
}

// maxAnswer bounds an answer read (a $batch of a case's timeline, a page
// of records); a longer one is an error, never read whole.
const maxAnswer = 256 << 20

func (c *client) token() (*oauth2.Token, error) {
	tok, err := c.tokens.Token()
	if err != nil {
		return nil, authError(err)
	}
	return tok, nil
}

func authError(err error) error {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		st := 0
		if re.Response != nil {
			st = re.Response.StatusCode
		}
		return &AuthError{Status: st, ErrorCode: re.ErrorCode, Description: re.ErrorDescription}
	}
	return &AuthError{Err: crmhttp.ScrubURLError(err)}
}

// request is one Web API call.
type request struct {
	method string
	path   string // below /api/data/v9.2/, escaped, with its query
	body   any    // JSON-encoded when not nil
	header http.Header
}

// response is one answer (of a call or a batch part).
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) ok() bool { return r.status >= 200 && r.status < 300 }

// apiError returns the answer as an *APIError.
func (r *response) apiError(op string) *APIError {
	e := &APIError{Op: op, Status: r.status}
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.body, &b) == nil {
		e.Code, e.Message = b.Error.Code, b.Error.Message
	} else if txt := strings.TrimSpace(string(r.body)); txt != "" {
		e.Message = txt[:min(len(txt), 200)]
	}
	if ra := r.header.Get("Retry-After"); ra != "" {
		e.RetryAfter = parseRetryAfter(ra)
	}
	return e
}

func parseRetryAfter(v string) time.Duration {
	if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// do runs r once (the token refreshed and the request repeated once on a
// 401) and returns the answer, whatever its status; errors are transport,
// token and context errors.
func (c *client) do(ctx context.Context, r *request) (*response, error) {
	var body []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, errInternal("encoding " + r.method + " " + r.path + ": " + err.Error())
		}
		body = b
	}
	return c.raw(ctx, r.method, r.path, body, "application/json", r.header)
}

func (c *client) raw(ctx context.Context, method, path string, body []byte, ctype string, hdr http.Header) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.token()
		if err != nil {
			return nil, err
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.api+path, rd)
		if err != nil {
			return nil, errInvalid("bad request " + method + " " + opPath(path))
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("OData-MaxVersion", "4.0")
		req.Header.Set("OData-Version", "4.0")
		if body != nil {
			req.Header.Set("Content-Type", ctype)
		}
		start := time.Now()
		resp, err := c.hc.Do(req)
		c.calls.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, crmhttp.ScrubURLError(err)
		}
		data, err := crmhttp.ReadBody(resp.Body, maxAnswer)
		_ = resp.Body.Close()
		if tl := (*crmhttp.TooLongError)(nil); errors.As(err, &tl) {
			return nil, errInternal(method + " " + opPath(path) + ": " + tl.Error())
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		c.noteLimits(resp)
		if resp.StatusCode >= 400 {
			// an error page echoing the Authorization header never puts
			// the token into an error text
			data = []byte(crmhttp.Redact(string(data), tok.AccessToken))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "dynamics: call",
			slog.String("method", method), slog.String("path", opPath(path)),
			slog.Int("status", resp.StatusCode), slog.Duration("elapsed", time.Since(start)))
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			c.log.LogAttrs(ctx, slog.LevelInfo, "dynamics: token refused; refreshing it once")
			c.tokens.Invalidate(tok)
			continue
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
}

// opPath is path without its query, for logs and error texts (queries
// carry mail addresses).
func opPath(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

// noteLimits keeps the remaining burst budget and the pause of a 429.
func (c *client) noteLimits(resp *http.Response) {
	if v := resp.Header.Get("x-ms-ratelimit-burst-remaining-xrm-requests"); v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			c.remaining.Store(n)
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d := parseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
			c.pauseMu.Lock()
			if t := time.Now().Add(d); t.After(c.pauseTill) {
				c.pauseTill = t
			}
			c.pauseMu.Unlock()
		}
	}
}

// wait delays a call while a Retry-After pause runs, and by up to slowMax
// when the remaining burst budget is under slowAt requests (linearly: 0 at
// slowAt, slowMax at 0).
func (c *client) wait(ctx context.Context) error {
	c.pauseMu.Lock()
	d := time.Until(c.pauseTill)
	c.pauseMu.Unlock()
	if rem := c.remaining.Load(); c.slowAt > 0 && rem >= 0 && rem < int64(c.slowAt) {
		d = max(d, time.Duration(float64(c.slowMax)*float64(int64(c.slowAt)-rem)/float64(c.slowAt)))
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call runs r and returns its answer when it is 2xx, else an *APIError.
func (c *client) call(ctx context.Context, r *request) (*response, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if !resp.ok() {
		return nil, resp.apiError(r.method + " " + opPath(r.path))
	}
	return resp, nil
}

// getJSON runs a GET and decodes the answer into out.
func (c *client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.call(ctx, &request{method: http.MethodGet, path: path,
		header: http.Header{"Prefer": {`odata.include-annotations="OData.Community.Display.V1.FormattedValue"`}}})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return errInternal("GET " + opPath(path) + ": decoding the answer: " + err.Error())
	}
	return nil
}

// entityID returns the GUID at the end of an OData-EntityId header
// ("https://org/api/data/v9.2/incidents(guid)").
func entityID(h http.Header) string {
	v := h.Get("OData-EntityId")
	i := strings.LastIndexByte(v, '(')
	j := strings.LastIndexByte(v, ')')
	if i < 0 || j < i {
		return ""
	}
	return strings.Trim(v[i+1:j], "'")
}

// ---- $batch ----

// part is one request of a $batch change set. Content-IDs are 1-based
// positions: a later part refers to part n's record as "$n".
type part struct {
	method string
	path   string // below /api/data/v9.2/, or "$n" references
	body   any
	header http.Header
}

// batch sends parts as one $batch request holding one change set (one
// transaction: all or nothing) and returns the answers in parts order.
// When the change set failed, Dataverse answers with the failing part
// alone: the result then has one entry with its Content-ID index in
// failed (0-based; -1 when unknown).
func (c *client) batch(ctx context.Context, parts []part) (resps []*response, failed int, err error) {
	var buf bytes.Buffer
	bw := multipart.NewWriter(&buf)
	cs := multipart.NewWriter(nil)
	csBoundary := "changeset_" + cs.Boundary()[:24]
	hdr := textproto.MIMEHeader{"Content-Type": {"multipart/mixed; boundary=" + csBoundary}}
	w, err := bw.CreatePart(hdr)
	if err != nil {
		return nil, 0, errInternal("batch: " + err.Error())
	}
	cw := multipart.NewWriter(w)
	if err := cw.SetBoundary(csBoundary); err != nil {
		return nil, 0, errInternal("batch: " + err.Error())
	}
	for i, p := range parts {
		pw, err := cw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {"application/http"},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {strconv.Itoa(i + 1)},
		})
		if err != nil {
			return nil, 0, errInternal("batch: " + err.Error())
		}
		target := p.path
		if !strings.HasPrefix(target, "$") {
			target = c.api + target
		}
		fmt.Fprintf(pw, "%s %s HTTP/1.1\r\n", p.method, target)
		for k, vs := range p.header {
			for _, v := range vs {
				fmt.Fprintf(pw, "%s: %s\r\n", k, v)
			}
		}
		if p.body != nil {
			b, err := json.Marshal(p.body)
			if err != nil {
				return nil, 0, errInternal("batch: encoding part: " + err.Error())
			}
			fmt.Fprintf(pw, "Content-Type: application/json;type=entry\r\n\r\n")
			pw.Write(b) //nolint:errcheck // a bytes.Buffer
		} else {
			fmt.Fprintf(pw, "\r\n")
		}
		fmt.Fprintf(pw, "\r\n")
	}
	if err := cw.Close(); err != nil {
		return nil, 0, errInternal("batch: " + err.Error())
	}
	if err := bw.Close(); err != nil {
		return nil, 0, errInternal("batch: " + err.Error())
	}
	resp, err := c.raw(ctx, http.MethodPost, "$batch", buf.Bytes(), "multipart/mixed; boundary="+bw.Boundary(),
		http.Header{"Prefer": {"odata.continue-on-error"}})
	if err != nil {
		return nil, 0, err
	}
	if !resp.ok() {
		return nil, 0, resp.apiError("POST $batch")
	}
	list, ids, err := parseBatch(resp.header.Get("Content-Type"), resp.body)
	if err != nil {
		return nil, 0, errInternal("batch answer: " + err.Error())
	}
	if len(list) == len(parts) {
		failed = -1
		for i, r := range list {
			if !r.ok() {
				return list, i, nil
			}
		}
		return list, -1, nil
	}
	if len(list) == 1 && !list[0].ok() {
		failed = -1
		if n, err := strconv.Atoi(ids[0]); err == nil && n >= 1 && n <= len(parts) {
			failed = n - 1
		}
		return list, failed, nil
	}
	return nil, 0, errInternal(fmt.Sprintf("batch answer has %d parts for %d requests", len(list), len(parts)))
}

// parseBatch reads a multipart/mixed batch answer, change sets flattened.
func parseBatch(ctype string, body []byte) ([]*response, []string, error) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return nil, nil, fmt.Errorf("content type %q", ctype)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []*response
	var ids []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out, ids, nil
		}
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, err
		}
		pt := p.Header.Get("Content-Type")
		if strings.HasPrefix(pt, "multipart/") {
			sub, subIDs, err := parseBatch(pt, data)
			if err != nil {
				return nil, nil, err
			}
			out, ids = append(out, sub...), append(ids, subIDs...)
			continue
		}
		hr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			return nil, nil, err
		}
		b, _ := io.ReadAll(hr.Body)
		_ = hr.Body.Close()
		out = append(out, &response{status: hr.StatusCode, header: hr.Header, body: b})
		ids = append(ids, p.Header.Get("Content-Id"))
	}
}

// ---- auth ----

// tokenSource builds the client-credentials token source of cfg.
func tokenSource(cfg *Config, hc *http.Client) oauth2.TokenSource {
	if cfg.TokenSource != nil {
		return cfg.TokenSource
	}
	cc := &clientcredentials.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.TokenURL,
		Scopes: []string{strings.TrimSuffix(cfg.InstanceURL, "/") + "/.default"}, AuthStyle: oauth2.AuthStyleInParams,
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	return tokenFunc(func() (*oauth2.Token, error) { return cc.Token(ctx) })
}

type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }
