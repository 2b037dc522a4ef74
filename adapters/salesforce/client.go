package salesforce

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/emailcrm/emailcrm/adapters/internal/crmhttp"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// APIError is an error answered by Salesforce: the HTTP status and the
// documented error body, a JSON array of {message, errorCode, fields}. It
// never holds an access token or a secret. Reach it with errors.As or
// mailcase.Store.ErrorAs.
type APIError struct {
	// Op is the request ("POST composite", "GET query").
	Op string
	// Status is the HTTP status of the request or composite subrequest.
	Status int
	// Errors are the error entries of the body, possibly none.
	Errors []FieldError
}

// FieldError is one entry of a Salesforce error body.
type FieldError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("salesforce: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Status))
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" ")
		b.WriteString(fe.ErrorCode)
		if fe.Message != "" {
			b.WriteString(": ")
			b.WriteString(fe.Message)
		}
		if len(fe.Fields) > 0 {
			b.WriteString(" (fields: ")
			b.WriteString(strings.Join(fe.Fields, ", "))
			b.WriteString(")")
		}
	}
	return b.String()
}

// Code returns the errorCode of the first entry, or "".
func (e *APIError) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].ErrorCode
}

// hasCode reports whether some entry has code.
func (e *APIError) hasCode(code string) bool {
	for _, fe := range e.Errors {
		if fe.ErrorCode == code {
			return true
		}
	}
	return false
}

// AuthError is a failed token request (client credentials or JWT bearer).
// Its text holds the OAuth error code and description, never the secret,
// the private key or a token.
type AuthError struct {
	Status      int
	ErrorCode   string // "invalid_grant", "invalid_client", ...
	Description string
	Err         error // transport error, when no answer came
}

func (e *AuthError) Error() string {
	if e.Err != nil {
		return "salesforce: token request: " + e.Err.Error()
	}
	return fmt.Sprintf("salesforce: token request: %d %s: %s", e.Status, e.ErrorCode, e.Description)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Errors the driver makes without asking Salesforce.
func errNotFound(what string) error { return local(driver.NotFound, what+" not found") }
func errInvalid(msg string) error   { return local(driver.InvalidArgument, msg) }
func errInternal(msg string) error  { return local(driver.Internal, msg) }
func errExists(msg string) error    { return local(driver.AlreadyExists, msg) }

func local(code driver.ErrorCode, msg string) error {
	return &crmhttp.LocalError{Prefix: "salesforce", Code: code, Msg: msg}
}

// limits is the last Sforce-Limit-Info seen.
type limits struct {
	used, max atomic.Int64
}

// Bounds of the answers read: a JSON answer (a query, a composite
// request of a case's whole timeline) and a file's bytes (VersionData;
// Salesforce stores files of up to 2 GB). A longer answer is an error,
// never read whole.
const (
	maxAnswer     = 256 << 20
	maxFileAnswer = 2<<30 + 1<<20
)

// client talks to one org: tokens, requests, errors and API limits.
type client struct {
	hc         *http.Client
	base       *url.URL // instance URL (scheme + host), from the config or the token
	apiVersion string
	log        *slog.Logger
	slowAt     float64
	slowMax    time.Duration
	lim        limits
	calls      atomic.Int64
	// maxAnswer and maxFile bound answers (0: the defaults above).
	maxAnswer, maxFile int64

	tokens *crmhttp.Tokens
}

// token returns the current access token and the instance URL to call.
func (c *client) token() (*oauth2.Token, error) {
	tok, err := c.tokens.Token()
	if err != nil {
		return nil, authError(err)
	}
	return tok, nil
}

// authError turns a token-source failure into an *AuthError without
// secrets.
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
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &AuthError{Err: err}
	}
	return &AuthError{Err: crmhttp.ScrubURLError(err)}
}

// instanceURL returns the base URL of API calls: the instance_url of the
// token when the token endpoint returned one, else the configured one.
func (c *client) instanceURL(tok *oauth2.Token) *url.URL {
	if s, ok := tok.Extra("instance_url").(string); ok && s != "" {
		if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == c.base.Scheme) {
			return u
		}
	}
	return c.base
}

// request is one REST call.
type request struct {
	method      string
	path        string // below /services/data/vXX.X/, e.g. "sobjects/Case"
	query       url.Values
	body        []byte
	contentType string
	header      http.Header
	// file marks a download of file bytes, bounded by maxFileAnswer
	// rather than maxAnswer.
	file bool
}

// do runs r once, refreshing the token and repeating the request once on
// 401 INVALID_SESSION_ID. It returns the response body of a 2xx answer; any
// other status is an *APIError. It does not retry anything else.
func (c *client) do(ctx context.Context, r *request) ([]byte, http.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := c.slowDown(ctx); err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.token()
		if err != nil {
			return nil, nil, err
		}
		body, hdr, st, err := c.send(ctx, tok, r)
		if err != nil {
			return nil, nil, err
		}
		if st >= 200 && st < 300 {
			return body, hdr, nil
		}
		ae := &APIError{Op: r.method + " " + r.path, Status: st, Errors: redactToken(parseErrors(body), tok.AccessToken)}
		if st == http.StatusUnauthorized && attempt == 0 && (ae.hasCode("INVALID_SESSION_ID") || len(ae.Errors) == 0) {
			c.log.LogAttrs(ctx, slog.LevelInfo, "salesforce: session expired; refreshing the token once")
			c.tokens.Invalidate(tok)
			continue
		}
		return nil, hdr, ae
	}
}

func (c *client) send(ctx context.Context, tok *oauth2.Token, r *request) ([]byte, http.Header, int, error) {
	base := c.instanceURL(tok)
	esc := strings.TrimSuffix(base.EscapedPath(), "/") + "/services/data/" + c.apiVersion + "/" + r.path
	p, err := url.PathUnescape(esc)
	if err != nil {
		return nil, nil, 0, errInvalid("bad request path")
	}
	u := *base
	u.Path, u.RawPath = p, esc
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, nil, 0, errInvalid("bad request: " + err.Error())
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	c.calls.Add(1)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, 0, ctx.Err()
		}
		return nil, nil, 0, crmhttp.ScrubURLError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	limit := c.limit(r.file)
	data, err := crmhttp.ReadBody(resp.Body, limit)
	c.noteLimits(resp.Header.Get("Sforce-Limit-Info"))
	if tl := (*crmhttp.TooLongError)(nil); errors.As(err, &tl) {
		return nil, nil, 0, errInternal(r.method + " " + r.path + ": " + tl.Error())
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, 0, ctx.Err()
		}
		return nil, nil, 0, err
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "salesforce: call",
		slog.String("method", r.method), slog.String("path", r.path),
		slog.Int("status", resp.StatusCode), slog.Duration("elapsed", time.Since(start)))
	return data, resp.Header, resp.StatusCode, nil
}

// limit is the longest answer read: of a file download or of JSON.
func (c *client) limit(file bool) int64 {
	switch {
	case file && c.maxFile > 0:
		return c.maxFile
	case file:
		return maxFileAnswer
	case c.maxAnswer > 0:
		return c.maxAnswer
	}
	return maxAnswer
}

// redactToken replaces the access token in error messages (a gateway or
// proxy may echo the request's Authorization header in its error page),
// so that it never reaches an error text or a log.
func redactToken(fes []FieldError, token string) []FieldError {
	if token == "" {
		return fes
	}
	for i := range fes {
		fes[i].Message = crmhttp.Redact(fes[i].Message, token)
	}
	return fes
}

// parseErrors decodes a Salesforce error body; bodies of other shapes
// (an HTML error page, a single object) give one entry with the text.
func parseErrors(body []byte) []FieldError {
	var fes []FieldError
	if err := json.Unmarshal(body, &fes); err == nil {
		return fes
	}
	var one FieldError
	if err := json.Unmarshal(body, &one); err == nil && one.ErrorCode != "" {
		return []FieldError{one}
	}
	txt := strings.TrimSpace(string(body))
	if len(txt) > 200 {
		txt = strings.ToValidUTF8(txt[:200], "")
	}
	if txt == "" {
		return nil
	}
	return []FieldError{{Message: txt}}
}

// noteLimits parses "api-usage=N/M" (other entries, such as
// per-app-api-usage, are ignored).
func (c *client) noteLimits(h string) {
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		v, ok := strings.CutPrefix(part, "api-usage=")
		if !ok {
			continue
		}
		n, m, ok := strings.Cut(v, "/")
		if !ok {
			continue
		}
		used, err1 := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		mx, err2 := strconv.ParseInt(strings.TrimSpace(m), 10, 64)
		if err1 == nil && err2 == nil && mx > 0 {
			c.lim.used.Store(used)
			c.lim.max.Store(mx)
		}
	}
}

// slowDown delays a call when the org's API usage has passed the
// configured fraction: the delay grows linearly from 0 at the threshold to
// slowMax at the limit.
func (c *client) slowDown(ctx context.Context) error {
	d := c.delay()
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

func (c *client) delay() time.Duration {
	used, mx := c.lim.used.Load(), c.lim.max.Load()
	if mx <= 0 || c.slowAt <= 0 || c.slowAt >= 1 {
		return 0
	}
	frac := float64(used) / float64(mx)
	if frac < c.slowAt {
		return 0
	}
	over := (frac - c.slowAt) / (1 - c.slowAt)
	over = min(over, 1)
	return time.Duration(over * float64(c.slowMax))
}

// doJSON runs r and decodes a JSON answer into out (when out is not nil).
func (c *client) doJSON(ctx context.Context, r *request, out any) error {
	body, _, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return errInternal(r.method + " " + r.path + ": decoding the answer: " + err.Error())
	}
	return nil
}

// ---- Composite ----

// subrequest is one entry of a /composite request.
type subrequest struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	ReferenceID string            `json:"referenceId"`
	Body        any               `json:"body,omitempty"`
	HTTPHeaders map[string]string `json:"httpHeaders,omitempty"`
}

// subresponse is one entry of a /composite answer.
type subresponse struct {
	Body           json.RawMessage   `json:"body"`
	HTTPHeaders    map[string]string `json:"httpHeaders"`
	HTTPStatusCode int               `json:"httpStatusCode"`
	ReferenceID    string            `json:"referenceId"`
}

// ok reports a 2xx subrequest.
func (r *subresponse) ok() bool { return r.HTTPStatusCode >= 200 && r.HTTPStatusCode < 300 }

// err returns the subrequest's error as an *APIError.
func (r *subresponse) err(op string) *APIError {
	return &APIError{Op: "composite " + op, Status: r.HTTPStatusCode, Errors: parseErrors(r.Body)}
}

// maxSubrequests is the documented limit of one /composite request.
const maxSubrequests = 25

// url returns the subrequest URL of path.
func (c *client) url(path string) string { return "/services/data/" + c.apiVersion + "/" + path }

// composite runs subs as one /composite call (one API request) and returns
// the subresponses by reference ID.
func (c *client) composite(ctx context.Context, allOrNone bool, subs []subrequest) (map[string]*subresponse, error) {
	if len(subs) > maxSubrequests {
		return nil, errInternal("composite request with more than 25 subrequests")
	}
	body, err := json.Marshal(map[string]any{"allOrNone": allOrNone, "compositeRequest": subs})
	if err != nil {
		return nil, errInternal("encoding composite request: " + err.Error())
	}
	var out struct {
		CompositeResponse []subresponse `json:"compositeResponse"`
	}
	if err := c.doJSON(ctx, &request{method: http.MethodPost, path: "composite", body: body}, &out); err != nil {
		return nil, err
	}
	m := make(map[string]*subresponse, len(out.CompositeResponse))
	for i := range out.CompositeResponse {
		r := &out.CompositeResponse[i]
		m[r.ReferenceID] = r
	}
	for _, s := range subs {
		if m[s.ReferenceID] == nil {
			return nil, errInternal("composite answer lacks subrequest " + s.ReferenceID)
		}
	}
	return m, nil
}

// firstFailure returns the error of the first subrequest (in subs order)
// that failed with something other than PROCESSING_HALTED (the entries
// Salesforce sets on subrequests rolled back by allOrNone), or nil.
func firstFailure(subs []subrequest, res map[string]*subresponse) (string, *APIError) {
	var halted *APIError
	var haltedRef string
	for _, s := range subs {
		r := res[s.ReferenceID]
		if r.ok() {
			continue
		}
		e := r.err(s.Method + " " + s.ReferenceID)
		if e.hasCode("PROCESSING_HALTED") {
			if halted == nil {
				halted, haltedRef = e, s.ReferenceID
			}
			continue
		}
		return s.ReferenceID, e
	}
	return haltedRef, halted
}

// ---- Auth ----

// tokenTimeout bounds one token request of either flow.
const tokenTimeout = 30 * time.Second

// jwtSource is an oauth2.TokenSource for the OAuth 2.0 JWT bearer flow:
// an RS256 assertion (iss = client id, sub = username, aud = login URL,
// exp = now + 3 minutes) posted as grant_type
// urn:ietf:params:oauth:grant-type:jwt-bearer.
type jwtSource struct {
	hc       *http.Client
	tokenURL string
	clientID string
	username string
	audience string
	key      *rsa.PrivateKey
	now      func() time.Time
}

func (j *jwtSource) Token() (*oauth2.Token, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]any{
		"iss": j.clientID, "sub": j.username, "aud": j.audience,
		"exp": j.now().Add(3 * time.Minute).Unix(),
	})
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	signing := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, j.key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	assertion := signing + "." + enc.EncodeToString(sig)
	form := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {assertion},
	}
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := j.hc.Do(req)
	if err != nil {
		return nil, &AuthError{Err: crmhttp.ScrubURLError(err)}
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
		TokenType   string `json:"token_type"`
		IssuedAt    string `json:"issued_at"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(data, &tr)
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		// The assertion is a credential for 3 minutes: never echoed.
		desc := strings.ReplaceAll(tr.Description, assertion, "[assertion]")
		return nil, &AuthError{Status: resp.StatusCode, ErrorCode: tr.Error, Description: desc}
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: "Bearer"}
	return tok.WithExtra(map[string]any{"instance_url": tr.InstanceURL}), nil
}

// parsePrivateKey accepts *rsa.PrivateKey, PEM bytes or a PEM string
// (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY").
func parsePrivateKey(k any) (*rsa.PrivateKey, error) {
	var pemBytes []byte
	switch v := k.(type) {
	case *rsa.PrivateKey:
		if v == nil {
			return nil, errInvalid("Config.PrivateKey is a nil *rsa.PrivateKey")
		}
		return v, nil
	case []byte:
		pemBytes = v
	case string:
		pemBytes = []byte(v)
	default:
		return nil, errInvalid(fmt.Sprintf("Config.PrivateKey of type %T: want *rsa.PrivateKey or PEM", k))
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errInvalid("Config.PrivateKey: no PEM block")
	}
	if key, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return key, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errInvalid("Config.PrivateKey: not an RSA private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errInvalid("Config.PrivateKey: not an RSA private key")
	}
	return rk, nil
}

// tokenSource builds the token source of cfg (already defaulted).
func tokenSource(cfg *Config, hc *http.Client) (oauth2.TokenSource, error) {
	if cfg.TokenSource != nil {
		return cfg.TokenSource, nil
	}
	tokenURL := strings.TrimSuffix(cfg.LoginURL, "/") + "/services/oauth2/token"
	if cfg.ClientID == "" {
		return nil, errInvalid("Config.ClientID (the connected app's consumer key) is required")
	}
	if cfg.PrivateKey != nil {
		if cfg.Username == "" {
			return nil, errInvalid("Config.Username is required for the JWT bearer flow")
		}
		key, err := parsePrivateKey(cfg.PrivateKey)
		if err != nil {
			return nil, err
		}
		aud := cfg.Audience
		if aud == "" {
			aud = cfg.LoginURL
		}
		return &jwtSource{hc: hc, tokenURL: tokenURL, clientID: cfg.ClientID, username: cfg.Username,
			audience: aud, key: key, now: cfg.Now}, nil
	}
	if cfg.ClientSecret == "" {
		return nil, errInvalid("Config.ClientSecret or Config.PrivateKey is required")
	}
	cc := &clientcredentials.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: tokenURL,
		AuthStyle: oauth2.AuthStyleInParams,
	}
	// The oauth2 package takes its HTTP client from a context that lives as
	// long as the source; each token request gets its own deadline, as the
	// JWT flow's does, so a token endpoint that never answers cannot hold
	// a caller forever (oauth2.TokenSource takes no context).
	base := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	// cc.TokenSource would cache tokens itself, where a 401 could not drop
	// them; the driver caches with its own ReuseTokenSource.
	return tokenFunc(func() (*oauth2.Token, error) {
		ctx, cancel := context.WithTimeout(base, tokenTimeout)
		defer cancel()
		return cc.Token(ctx)
	}), nil
}

// tokenFunc adapts a function to oauth2.TokenSource.
type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }
