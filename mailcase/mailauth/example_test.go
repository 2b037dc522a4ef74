package mailauth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// staticDNS serves fixed TXT records (a real program passes a
// *net.Resolver, or nothing for net.DefaultResolver).
type staticDNS map[string]string

func (s staticDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	if r, ok := s[name]; ok {
		return []string{r}, nil
	}
	return nil, fmt.Errorf("no TXT record for %s", name)
}

func ExampleChecker() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	raw := "From: Ann <ann@example.com>\r\nSubject: hi\r\n\r\nHello.\r\n"
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(raw), &dkim.SignOptions{Domain: "mail.example.com", Selector: "s1", Signer: key}); err != nil {
		log.Fatal(err)
	}
	c, err := mailauth.New(&mailauth.Options{
		DKIM:     true,
		Resolver: staticDNS{"s1._domainkey.mail.example.com": "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))},
	})
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.VerifySender(context.Background(), signed.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Method, r.Pass, r.Domain, r.Selector, r.FromDomain)
	fmt.Println(r.Reason)
	// Output:
	// dkim true mail.example.com s1 example.com
	// signature d=mail.example.com s=s1 verifies, aligned (relaxed) with From domain example.com
}
