package crmhttp

import (
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

type countingSource struct{ n atomic.Int64 }

func (c *countingSource) Token() (*oauth2.Token, error) {
	n := c.n.Add(1)
	return &oauth2.Token{AccessToken: "tok-" + string(rune('0'+n)), Expiry: time.Now().Add(time.Hour)}, nil
}

func TestTokens_CachedAndRefreshedOnce(t *testing.T) {
	src := &countingSource{}
	ts := NewTokens(src)
	a, err := ts.Token()
	require.NoError(t, err)
	b, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, a.AccessToken, b.AccessToken, "cached")
	assert.EqualValues(t, 1, src.n.Load())

	ts.Invalidate(a)
	c, err := ts.Token()
	require.NoError(t, err)
	assert.NotEqual(t, a.AccessToken, c.AccessToken)
	assert.EqualValues(t, 2, src.n.Load())

	// A second goroutine invalidating the old token after the refresh
	// does not drop the new one.
	ts.Invalidate(a)
	d, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, c.AccessToken, d.AccessToken)
	assert.EqualValues(t, 2, src.n.Load())
}

func TestReadBody(t *testing.T) {
	b, err := ReadBody(strings.NewReader("12345"), 5)
	require.NoError(t, err)
	assert.Equal(t, "12345", string(b))
	_, err = ReadBody(strings.NewReader("123456"), 5)
	var tl *TooLongError
	require.ErrorAs(t, err, &tl)
	assert.EqualValues(t, 5, tl.Limit)
}

func TestScrubAndRedact(t *testing.T) {
	err := ScrubURLError(&url.Error{Op: "Post", URL: "https://u:p@x.example/a?token=secret", Err: errors.New("boom")})
	assert.NotContains(t, err.Error(), "secret")
	assert.NotContains(t, err.Error(), "u:p")
	assert.Contains(t, err.Error(), "boom")
	assert.Equal(t, "bad [access token] here", Redact("bad 00D!abc here", "00D!abc"))
	assert.Equal(t, "as is", Redact("as is", ""))
	assert.True(t, IsLoopback("127.0.0.1"))
	assert.True(t, IsLoopback("localhost"))
	assert.True(t, IsLoopback("::1"))
	assert.False(t, IsLoopback("example.com"))
}

func TestParseStoreURL(t *testing.T) {
	parse := func(s string) (*StoreURL, error) {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return ParseStoreURL(u, "X_ID and X_SECRET", "x://host.example")
	}
	got, err := parse("x://org.example/sub/?cache=10m")
	require.NoError(t, err)
	assert.Equal(t, &StoreURL{Base: "https://org.example/sub", Cache: 10 * time.Minute, HasCache: true}, got)
	got, err = parse("x://127.0.0.1:8080?insecure_http=1")
	require.NoError(t, err)
	assert.Equal(t, &StoreURL{Base: "http://127.0.0.1:8080", Insecure: true}, got)
	_, err = parse("x://user:pw@org.example")
	assert.ErrorContains(t, err, "carry no credentials; set X_ID and X_SECRET")
	assert.NotContains(t, err.Error(), "pw")
	_, err = parse("x:///path")
	assert.ErrorContains(t, err, "needs the host")
	_, err = parse("x://org.example?cache=soon")
	assert.ErrorContains(t, err, "cache=soon")
	_, err = parse("x://org.example?cache=-1m")
	assert.ErrorContains(t, err, "cache=-1m")
}
