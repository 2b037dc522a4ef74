// Package crmhttp holds the HTTP plumbing the CRM adapters (salesforce,
// dynamics) share because it is the same logic in both: the cached OAuth
// token refreshed once when the API refuses it, bounded reading of
// answers, scrubbing URLs and tokens out of error texts, and the parts of
// a store URL both openers read alike. What only looks alike (the error
// bodies, the API limit headers and how each slows down) stays in each
// adapter.
package crmhttp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Tokens caches the access token of a token source and fetches a new one
// when the API refuses the cached one (Invalidate): the "refresh once on
// 401" of both APIs. It is safe for concurrent use.
type Tokens struct {
	mu  sync.Mutex
	src oauth2.TokenSource // the unwrapped source
	ts  oauth2.TokenSource // oauth2.ReuseTokenSource over src
}

// NewTokens returns Tokens over src.
func NewTokens(src oauth2.TokenSource) *Tokens {
	return &Tokens{src: src, ts: oauth2.ReuseTokenSource(nil, src)}
}

// Token returns the cached token, fetching one when there is none or it
// expired. Its error is the token source's, for the adapter to classify.
func (t *Tokens) Token() (*oauth2.Token, error) {
	t.mu.Lock()
	ts := t.ts
	t.mu.Unlock()
	return ts.Token()
}

// Invalidate drops the cached token when it is still used (another
// goroutine may have replaced it already), so that the next Token fetches
// a new one.
func (t *Tokens) Invalidate(used *oauth2.Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, err := t.ts.Token(); err == nil && used != nil && cur.AccessToken != used.AccessToken {
		return
	}
	t.ts = oauth2.ReuseTokenSource(nil, t.src)
}

// TooLongError is the error of ReadBody for an answer over its limit.
type TooLongError struct{ Limit int64 }

func (e *TooLongError) Error() string {
	return fmt.Sprintf("the answer is longer than %d bytes; not read", e.Limit)
}

// ReadBody reads at most limit bytes of r: a longer answer is a
// *TooLongError, never read whole.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLongError{Limit: limit}
	}
	return data, nil
}

// ScrubURLError returns err with the query of the URL of a *url.Error
// dropped (no secret is put in a URL by the adapters, but a token could be
// added by a proxy or a redirect).
func ScrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			u.User = nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// Redact replaces secret (an access token) in s, for error texts: a
// gateway or proxy may echo the request's Authorization header in its
// error page.
func Redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[access token]")
}

// IsLoopback reports whether host (without port) is a loopback address or
// "localhost".
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StoreURL is what both CRM URL openers read alike from a store URL.
type StoreURL struct {
	// Base is the instance URL: https://HOST/PATH, or http:// with
	// insecure_http=1 or true (loopback hosts only; the adapter's
	// configuration checks).
	Base string
	// Insecure is set by insecure_http.
	Insecure bool
	// Cache is the cache parameter (a duration) and HasCache whether it is
	// given.
	Cache    time.Duration
	HasCache bool
}

// ParseStoreURL reads the host, insecure_http and cache of u. A URL with
// credentials is refused (they come from the environment: credHint names
// the variables), as is one without a host (hostHint is an example URL)
// or with a cache that is not a non-negative duration.
func ParseStoreURL(u *url.URL, credHint, hostHint string) (*StoreURL, error) {
	if u.User != nil {
		return nil, fmt.Errorf("%s URLs carry no credentials; set %s", u.Scheme, credHint)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s URL needs the host: %s", u.Scheme, hostHint)
	}
	q := u.Query()
	out := &StoreURL{}
	scheme := "https"
	if v := q.Get("insecure_http"); v == "1" || v == "true" {
		scheme, out.Insecure = "http", true
	}
	out.Base = scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	if v := q.Get("cache"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("cache=%s: want a duration such as 10m", v)
		}
		out.Cache, out.HasCache = d, true
	}
	return out, nil
}
