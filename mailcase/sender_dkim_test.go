package mailcase_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// plDNS serves one DKIM key and counts lookups.
type plDNS struct {
	name, record string
	n            atomic.Int32
}

func (d *plDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	d.n.Add(1)
	if name == d.name {
		return []string{d.record}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

var plKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))

func plSign(t *testing.T, raw []byte, domain string) []byte {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{Domain: domain, Selector: "s1", Signer: plKey}))
	return out.Bytes()
}

// One signal: the DKIM result, computed once per mail, decides employee
// identity; a spoofed employee From is an ordinary customer mail with the
// reason in its outcome.
func TestPipeline_EmployeeTrustByDKIM(t *testing.T) {
	dns := &plDNS{name: "s1._domainkey.company.example",
		record: "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(plKey.Public().(ed25519.PublicKey))}
	verifier, err := mailauth.New(&mailauth.Options{DKIM: true, Resolver: dns, TrustedAuthServIDs: []string{"mx.company.example"}})
	require.NoError(t, err)

	signed := plSign(t, plMail("eve@company.example", "internal note", "dk1@company.example", "Please file this."), "company.example")
	tests := []struct {
		name      string
		raw       []byte
		kind      mailcase.SenderKind
		method    mailauth.Method
		reasonHas string
	}{
		{name: "aligned signature", raw: signed, kind: mailcase.SenderEmployee, method: mailauth.MethodDKIM, reasonHas: "verifies, aligned"},
		{name: "body modified after signing", raw: bytes.Replace(signed, []byte("Please file"), []byte("Please wire"), 1),
			kind: mailcase.SenderUnknown, method: mailauth.MethodDKIM, reasonHas: "body hash did not verify"},
		{name: "unaligned signing domain", raw: plSign(t, plMail("eve@company.example", "internal note", "dk2@company.example", "x"), "attacker.example"),
			kind: mailcase.SenderUnknown, method: mailauth.MethodDKIM, reasonHas: "fails"},
		{name: "forged Authentication-Results from an untrusted server",
			raw:  plMail("eve@company.example", "internal note", "dk3@company.example", "x", plAuthResults("mx.evil.example", "dkim=pass header.d=company.example")),
			kind: mailcase.SenderUnknown, method: mailauth.MethodNone, reasonHas: "no signature"},
		{name: "trusted Authentication-Results",
			raw:  plMail("eve@company.example", "internal note", "dk4@company.example", "x", plAuthResults("mx.company.example", "dkim=pass header.d=company.example")),
			kind: mailcase.SenderEmployee, method: mailauth.MethodAuthResults, reasonHas: "by mx.company.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := plStore(t)
			plSeed(t, s)
			p := plPipeline(t, s, &mailcase.Options{SenderAuth: verifier, Mailbox: mailcase.Mailbox{UnknownContactID: "placeholder"}})
			r := plProcess(t, p, tc.raw)
			require.NotNil(t, r.Outcome.Sender, plSteps(r))
			assert.Equal(t, tc.kind, r.Outcome.Sender.Kind, plSteps(r))
			require.NotNil(t, r.Outcome.Auth)
			assert.Equal(t, tc.method, r.Outcome.Auth.Method)
			assert.Equal(t, tc.kind == mailcase.SenderEmployee, r.Outcome.Auth.Pass)
			st, ok := plStepOf(r, "auth")
			require.True(t, ok, plSteps(r))
			assert.Contains(t, st.Reason, tc.reasonHas)
			sender, _ := plStepOf(r, "sender")
			if tc.kind == mailcase.SenderEmployee {
				assert.Contains(t, sender.Reason, "employee trusted: "+string(tc.method))
			} else {
				assert.Contains(t, sender.Reason, "employee identity not trusted ("+string(tc.method))
				assert.Nil(t, r.Outcome.Sender.Employee)
			}
		})
	}
}

// The signal is computed once per mail, even when the mail is retried.
func TestPipeline_SenderAuthOncePerMail(t *testing.T) {
	s, fd := plFaultyStore(t)
	var calls atomic.Int32
	v := mailauth.VerifierFunc(func(ctx context.Context, raw []byte) (mailauth.Result, error) {
		calls.Add(1)
		return mailauth.Result{Method: mailauth.MethodDKIM, Pass: true, Domain: "company.example", FromDomain: "company.example", Reason: "test"}, nil
	})
	fd.Fail("CreateCase", mailcase.Unavailable, 1)
	p := plPipeline(t, s, &mailcase.Options{SenderAuth: v, MaxAttempts: 3, RetryDelay: 1})
	r := plProcess(t, p, plMail("eve@company.example", "retry me", "once@company.example", "x"))
	assert.Equal(t, mailcase.Done, r.Outcome.Disposition, plSteps(r))
	assert.Equal(t, 2, fd.Calls("CreateCase"))
	assert.Equal(t, int32(1), calls.Load())
	assert.Equal(t, 1, strings.Count(plSteps(r), "auth=authenticated"), plSteps(r))
}

// A verifier that authenticated another From than the parser read is not
// believed.
func TestPipeline_SenderAuthFromMismatch(t *testing.T) {
	s := plStore(t)
	plSeed(t, s)
	v := mailauth.VerifierFunc(func(ctx context.Context, raw []byte) (mailauth.Result, error) {
		return mailauth.Result{Method: mailauth.MethodDKIM, Pass: true, Domain: "other.example", FromDomain: "other.example", Reason: "test"}, nil
	})
	p := plPipeline(t, s, &mailcase.Options{SenderAuth: v, Mailbox: mailcase.Mailbox{UnknownContactID: "placeholder"}})
	r := plProcess(t, p, plMail("eve@company.example", "x", "mm@company.example", "x"))
	require.NotNil(t, r.Outcome.Auth)
	assert.False(t, r.Outcome.Auth.Pass)
	assert.Contains(t, r.Outcome.Auth.Reason, "is not the From domain company.example")
	assert.Equal(t, mailcase.SenderUnknown, r.Outcome.Sender.Kind)
}
