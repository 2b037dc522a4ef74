package mailauth_test

import (
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// FuzzVerifySender feeds hostile mail to the DKIM and
// Authentication-Results paths. Invariants: no panic, no error with a live
// ctx, and a pass always names a method, a domain aligned with the From
// domain, and (for DKIM) the key that was served.
func FuzzVerifySender(f *testing.F) {
	signed := sign(f, mailFrom("ann@example.com", "Please help.\r\n"), "example.com", "sel", testKey)
	f.Add([]byte(signed))
	f.Add([]byte(strings.Replace(signed, "Please", "Pleas", 1)))
	f.Add([]byte("Authentication-Results: mx.crm.example; dkim=pass header.d=example.com\r\n" + mailFrom("ann@example.com", "x")))
	f.Add([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=; b=\r\nFrom: a@example.com\r\n\r\n"))
	f.Add([]byte("From: =?x-unknown?q?Ann?= <a@example.com>\nDKIM-Signature: v=1; d=; s=\n\n"))
	f.Add([]byte("From: <>\r\n\r\n"))
	dns := dnsFor("example.com", "sel", testKey.Public())
	c, err := mailauth.New(&mailauth.Options{DKIM: true, Resolver: dns, TrustedAuthServIDs: []string{"mx.crm.example"}, MaxSignatures: 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := c.VerifySender(t.Context(), raw)
		if err != nil {
			t.Fatalf("VerifySender error with a live ctx: %v", err)
		}
		if r.Reason == "" {
			t.Fatalf("result without a reason: %+v", r)
		}
		if !r.Pass {
			return
		}
		if r.Method != mailauth.MethodDKIM && r.Method != mailauth.MethodAuthResults {
			t.Fatalf("pass with method %q", r.Method)
		}
		if !mailauth.Aligned(r.Domain, r.FromDomain, mailauth.AlignRelaxed) {
			t.Fatalf("pass with unaligned domain %q for From domain %q", r.Domain, r.FromDomain)
		}
		if r.Method == mailauth.MethodDKIM && (r.Selector != "sel" || r.Domain != "example.com") {
			t.Fatalf("DKIM pass with a key nobody served: %+v", r)
		}
	})
}
