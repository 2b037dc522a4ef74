package mailauth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// mapDNS serves TXT records from a map; it counts lookups.
type mapDNS struct {
	records map[string][]string
	n       atomic.Int32
}

func (m *mapDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	m.n.Add(1)
	if r, ok := m.records[name]; ok {
		return r, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// blockingDNS answers only when ctx is done.
type blockingDNS struct{}

func (blockingDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func keyRecord(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k)
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			panic(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	panic("unknown key type")
}

func mailFrom(from, body string) string {
	return "From: Ann <" + from + ">\r\nTo: support@crm.example\r\nSubject: hello\r\n" +
		"Message-ID: <m1@example.com>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\n" + body
}

// sign signs raw with key for domain d and selector s.
func sign(t testing.TB, raw, d, s string, key crypto.Signer) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, dkim.Sign(&out, strings.NewReader(raw), &dkim.SignOptions{Domain: d, Selector: s, Signer: key}))
	return out.String()
}

func newChecker(t *testing.T, o mailauth.Options) *mailauth.Checker {
	t.Helper()
	c, err := mailauth.New(&o)
	require.NoError(t, err)
	return c
}

func dnsFor(d, s string, pub crypto.PublicKey) *mapDNS {
	return &mapDNS{records: map[string][]string{s + "._domainkey." + d: {keyRecord(pub)}}}
}

func TestChecker_DKIM(t *testing.T) {
	dns := dnsFor("example.com", "sel", testKey.Public())
	dns.records["sel._domainkey.mail.example.com"] = dns.records["sel._domainkey.example.com"]
	dns.records["sel._domainkey.evil.example"] = dns.records["sel._domainkey.example.com"]
	signed := sign(t, mailFrom("ann@example.com", "Please help.\r\n"), "example.com", "sel", testKey)
	sub := sign(t, mailFrom("ann@example.com", "Please help.\r\n"), "mail.example.com", "sel", testKey)
	evil := sign(t, mailFrom("ceo@example.com", "Pay now.\r\n"), "evil.example", "sel", testKey)

	tests := []struct {
		name      string
		raw       string
		align     mailauth.Alignment
		pass      bool
		domain    string
		reasonHas string
	}{
		{name: "aligned signature", raw: signed, pass: true, domain: "example.com", reasonHas: "verifies, aligned"},
		{name: "body modified after signing", raw: strings.Replace(signed, "Please help.", "Please pay.", 1),
			domain: "example.com", reasonHas: "fails"},
		{name: "signed header modified", raw: strings.Replace(signed, "Subject: hello", "Subject: urgent", 1),
			domain: "example.com", reasonHas: "fails"},
		{name: "From replaced after signing", raw: strings.Replace(signed, "ann@example.com", "boss@example.com", 1),
			domain: "example.com", reasonHas: "fails"},
		{name: "unaligned signing domain", raw: evil, domain: "evil.example", reasonHas: "not aligned"},
		{name: "subdomain, relaxed", raw: sub, pass: true, domain: "mail.example.com"},
		{name: "subdomain, strict", raw: sub, align: mailauth.AlignStrict, domain: "mail.example.com", reasonHas: "not aligned (strict)"},
		{name: "unsigned", raw: mailFrom("ann@example.com", "hi\r\n"), reasonHas: "no signature"},
		{name: "unknown selector", raw: strings.Replace(signed, "s=sel", "s=gone", 1), domain: "example.com", reasonHas: "fails"},
		{name: "two From fields", raw: "From: ceo@example.com\r\n" + signed, reasonHas: "2 From fields"},
		{name: "two From addresses", raw: strings.Replace(signed, "From: Ann <ann@example.com>", "From: ann@example.com, ceo@other.example", 1),
			reasonHas: "2 addresses"},
		{name: "no From", raw: "Subject: x\r\n\r\nbody", reasonHas: "no From field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(t, mailauth.Options{DKIM: true, Resolver: dns, Alignment: tc.align})
			r, err := c.VerifySender(t.Context(), []byte(tc.raw))
			require.NoError(t, err)
			assert.Equal(t, tc.pass, r.Pass, "reason: %s", r.Reason)
			assert.Equal(t, tc.domain, r.Domain)
			assert.Contains(t, r.Reason, tc.reasonHas)
			if tc.pass {
				assert.Equal(t, mailauth.MethodDKIM, r.Method)
				assert.Equal(t, "sel", r.Selector)
				assert.Equal(t, "example.com", r.FromDomain)
			}
		})
	}
}

func TestChecker_RSASignature(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	c := newChecker(t, mailauth.Options{DKIM: true, Resolver: dnsFor("example.org", "rsa1", key.Public())})
	raw := sign(t, mailFrom("bob@example.org", "RSA signed.\r\n"), "example.org", "rsa1", key)
	r, err := c.VerifySender(t.Context(), []byte(raw))
	require.NoError(t, err)
	assert.True(t, r.Pass, r.Reason)
	assert.Equal(t, "rsa1", r.Selector)
}

// A real mail, its header exactly as it arrived, against the key its
// domain published (see testdata/README.md).
func TestChecker_RealWorldMail(t *testing.T) {
	raw, err := os.ReadFile("testdata/janestreet-2020.eml")
	require.NoError(t, err)
	key, err := os.ReadFile("testdata/google._domainkey.janestreet.com.txt")
	require.NoError(t, err)
	dns := &mapDNS{records: map[string][]string{"google._domainkey.janestreet.com": {strings.TrimSpace(string(key))}}}
	c := newChecker(t, mailauth.Options{DKIM: true, Resolver: dns})
	r, err := c.VerifySender(t.Context(), raw)
	require.NoError(t, err)
	assert.True(t, r.Pass, r.Reason)
	assert.Equal(t, mailauth.Result{Method: mailauth.MethodDKIM, Pass: true, Domain: "janestreet.com", Selector: "google",
		FromDomain: "janestreet.com", Reason: r.Reason}, r)

	// One changed byte in the body breaks it.
	bad := bytes.Replace(raw, []byte("Thanks,"), []byte("Thanks!"), 1)
	r, err = c.VerifySender(t.Context(), bad)
	require.NoError(t, err)
	assert.False(t, r.Pass)
	assert.Contains(t, r.Reason, "body hash did not verify")
}

func TestChecker_AuthenticationResults(t *testing.T) {
	body := mailFrom("ann@example.com", "hi\r\n")
	recv := "Received: from mx.example.com by inbound.crm.example; Mon, 07 Dec 2026 10:00:01 +0000\r\n"
	tests := []struct {
		name      string
		raw       string
		pass      bool
		method    mailauth.Method
		reasonHas string
	}{
		{name: "trusted pass", raw: "Authentication-Results: mx.crm.example; dkim=pass header.d=example.com\r\n" + recv + body,
			pass: true, method: mailauth.MethodAuthResults, reasonHas: "dkim=pass for example.com by mx.crm.example"},
		{name: "forged by an untrusted authserv-id", raw: "Authentication-Results: mx.evil.example; dkim=pass header.d=example.com\r\n" + recv + body,
			method: mailauth.MethodNone, reasonHas: "no field from a trusted server"},
		{name: "trusted id below the first Received is the sender's", raw: recv + "Authentication-Results: mx.crm.example; dmarc=pass header.from=example.com\r\n" + body,
			method: mailauth.MethodNone, reasonHas: "above the first Received"},
		{name: "trusted, unaligned pass", raw: "Authentication-Results: mx.crm.example; spf=pass smtp.mailfrom=bounce@mailer.example\r\n" + body,
			method: mailauth.MethodAuthResults, reasonHas: "no dkim, spf or dmarc pass aligned"},
		{name: "trusted fail", raw: "Authentication-Results: mx.crm.example; dkim=fail header.d=example.com\r\n" + body,
			method: mailauth.MethodAuthResults},
		{name: "only the topmost trusted field counts", raw: "Authentication-Results: mx.crm.example; dkim=fail header.d=example.com\r\n" +
			"Authentication-Results: mx.crm.example; dkim=pass header.d=example.com\r\n" + body, method: mailauth.MethodAuthResults},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(t, mailauth.Options{TrustedAuthServIDs: []string{"MX.crm.example"}})
			r, err := c.VerifySender(t.Context(), []byte(tc.raw))
			require.NoError(t, err)
			assert.Equal(t, tc.pass, r.Pass, r.Reason)
			assert.Equal(t, tc.method, r.Method)
			assert.Contains(t, r.Reason, tc.reasonHas)
		})
	}
}

// The documented rule when the methods disagree: a pass wins.
func TestChecker_MethodsDisagree(t *testing.T) {
	dns := dnsFor("example.com", "sel", testKey.Public())
	signed := sign(t, mailFrom("ann@example.com", "Original.\r\n"), "example.com", "sel", testKey)
	c := newChecker(t, mailauth.Options{DKIM: true, Resolver: dns, TrustedAuthServIDs: []string{"mx.crm.example"}})

	// Our border verified it; a filter changed the body afterwards.
	modified := "Authentication-Results: mx.crm.example; dkim=pass header.d=example.com\r\n" +
		strings.Replace(signed, "Original.", "Original.\r\n-- scanned by our filter", 1)
	r, err := c.VerifySender(t.Context(), []byte(modified))
	require.NoError(t, err)
	assert.True(t, r.Pass)
	assert.Equal(t, mailauth.MethodAuthResults, r.Method)

	// Our border could not verify (DNS failure there); the signature is valid.
	r, err = c.VerifySender(t.Context(), []byte("Authentication-Results: mx.crm.example; dkim=temperror header.d=example.com\r\n"+signed))
	require.NoError(t, err)
	assert.True(t, r.Pass)
	assert.Equal(t, mailauth.MethodDKIM, r.Method)

	// Both fail: DKIM is the reported method, both reasons are recorded.
	r, err = c.VerifySender(t.Context(), []byte(strings.Replace(signed, "Original.", "Forged.", 1)))
	require.NoError(t, err)
	assert.False(t, r.Pass)
	assert.Equal(t, mailauth.MethodDKIM, r.Method)
	assert.Contains(t, r.Reason, "dkim: signature d=example.com s=sel fails")
	assert.Contains(t, r.Reason, "authentication-results: no field")
}

func TestChecker_Limits(t *testing.T) {
	raw := mailFrom("ann@example.com", "hi\r\n")
	for _, s := range []string{"a", "b", "c", "d"} {
		raw = sign(t, raw, "example.com", s, testKey)
	}
	t.Run("signatures capped", func(t *testing.T) {
		dns := &mapDNS{records: map[string][]string{}} // no key: every signature fails
		c := newChecker(t, mailauth.Options{DKIM: true, Resolver: dns, MaxSignatures: 2})
		r, err := c.VerifySender(t.Context(), []byte(raw))
		require.NoError(t, err)
		assert.False(t, r.Pass)
		assert.LessOrEqual(t, dns.n.Load(), int32(2))
		assert.Contains(t, r.Reason, "only the first 2 signatures checked")
	})
	t.Run("DNS timeout is a failure, not an error", func(t *testing.T) {
		c := newChecker(t, mailauth.Options{DKIM: true, Resolver: blockingDNS{}, Timeout: time.Millisecond})
		r, err := c.VerifySender(t.Context(), []byte(raw))
		require.NoError(t, err)
		assert.False(t, r.Pass)
		assert.Contains(t, r.Reason, "DNS timeout")
	})
	t.Run("cancelled ctx is an error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := newChecker(t, mailauth.Options{DKIM: true, Resolver: blockingDNS{}})
		r, err := c.VerifySender(ctx, []byte(raw))
		require.ErrorIs(t, err, context.Canceled)
		assert.False(t, r.Pass)
	})
	t.Run("concurrent use", func(t *testing.T) {
		c := newChecker(t, mailauth.Options{DKIM: true, Resolver: dnsFor("example.com", "d", testKey.Public())})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				r, err := c.VerifySender(t.Context(), []byte(raw))
				assert.NoError(t, err)
				assert.True(t, r.Pass, r.Reason)
			})
		}
		wg.Wait()
	})
}

func TestAligned(t *testing.T) {
	tests := []struct {
		d, from string
		mode    mailauth.Alignment
		want    bool
	}{
		{d: "example.com", from: "example.com", want: true},
		{d: "Example.COM.", from: "example.com", mode: mailauth.AlignStrict, want: true},
		{d: "mail.example.com", from: "eu.example.com", want: true},
		{d: "mail.example.com", from: "example.com", mode: mailauth.AlignStrict},
		{d: "example.co.uk", from: "shop.example.co.uk", want: true},
		{d: "co.uk", from: "example.co.uk"},
		{d: "com", from: "example.com"},
		{d: "alice.github.io", from: "bob.github.io"},
		{d: "example.net", from: "example.com"},
		{d: "", from: "example.com"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, mailauth.Aligned(tc.d, tc.from, tc.mode), "Aligned(%q, %q, %q)", tc.d, tc.from, tc.mode)
	}
}

func TestNew_InvalidOptions(t *testing.T) {
	for _, o := range []mailauth.Options{
		{Alignment: "loose"},
		{Timeout: -time.Second},
		{MaxSignatures: -1},
		{TrustedAuthServIDs: []string{"mx example"}},
	} {
		_, err := mailauth.New(&o)
		assert.ErrorIs(t, err, mailauth.ErrOptions, "%+v", o)
	}
	c, err := mailauth.New(nil)
	require.NoError(t, err)
	r, err := c.VerifySender(t.Context(), []byte(mailFrom("ann@example.com", "x")))
	require.NoError(t, err)
	assert.False(t, r.Pass)
	assert.Equal(t, "no authentication method configured", r.Reason)
}

func BenchmarkVerifySender(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(b, err)
	body := strings.Repeat("A line of a customer's mail, long enough to be typical.\r\n", 60)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{name: "ed25519", key: testKey}, {name: "rsa2048", key: rsaKey}} {
		b.Run(tc.name, func(b *testing.B) {
			raw := []byte(sign(b, mailFrom("ann@example.com", body), "example.com", "sel", tc.key))
			c, err := mailauth.New(&mailauth.Options{DKIM: true, Resolver: dnsFor("example.com", "sel", tc.key.Public()),
				TrustedAuthServIDs: []string{"mx.crm.example"}})
			require.NoError(b, err)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.VerifySender(b.Context(), raw)
				if err != nil || !r.Pass {
					b.Fatal(err, r.Reason)
				}
			}
		})
	}
}
