package xmlapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailauth"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/xmlapi"
)

var authNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func secretReq(ts time.Time, nonce string) string {
	return `<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret><timestamp>` + ts.Format(time.RFC3339) +
		`</timestamp><nonce>` + nonce + `</nonce><createCase queue="ops"><subject>Disk full</subject></createCase></request>`
}

// rawDelivery is a delivery whose body is not stamped by delivery().
func rawDelivery(id, from, body string) *mailcase.Delivery {
	m := &mailcase.Message{ID: id, From: mailcase.Address{Email: from}, Subject: "api", Text: body, ReplyText: body, Header: mailcase.Header{}}
	return &mailcase.Delivery{Mailbox: &mailcase.Mailbox{Name: "support"}, Message: m, Key: "support/" + id}
}

// stateless hides the store's StateStore, so the handler remembers nonces
// in memory.
type stateless struct{ xmlapi.Store }

func TestHandler_SharedSecretReplay(t *testing.T) {
	stores := map[string]func(*mailcase.Store) xmlapi.Store{
		"state store": func(s *mailcase.Store) xmlapi.Store { return s },
		"memory":      func(s *mailcase.Store) xmlapi.Store { return stateless{s} },
	}
	for name, wrap := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t)
			h, err := xmlapi.NewHandler(wrap(s), &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}, Secret: "s3cret",
				ReplayWindow: 10 * time.Minute, Now: func() time.Time { return authNow }})
			require.NoError(t, err)
			doc := secretReq(authNow.Add(-time.Minute), "n-42")

			first := rawDelivery("a1@ops.example.com", "mon@ops.example.com", doc)
			res, err := h.HandleStructured(ctx, first)
			require.NoError(t, err)
			assert.Equal(t, "ran 1 actions", res.Action, res.Reason)
			require.NotNil(t, res.Auth)
			assert.Equal(t, mailauth.MethodSharedSecret, res.Auth.Method)

			// The same mail again (a retry, a redelivery) is not a replay.
			res, err = h.HandleStructured(ctx, first)
			require.NoError(t, err)
			assert.Equal(t, "ran 1 actions", res.Action, res.Reason)

			// The document replayed in another mail is refused.
			res, err = h.HandleStructured(ctx, rawDelivery("a2@ops.example.com", "mon@ops.example.com", doc))
			require.NoError(t, err)
			assert.Equal(t, "admin", res.Action)
			assert.Contains(t, res.Reason, "nonce already used by another mail")

			for _, tc := range []struct{ name, body, reason string }{
				{name: "stale timestamp", body: secretReq(authNow.Add(-11*time.Minute), "n-43"), reason: "outside the replay window"},
				{name: "future timestamp", body: secretReq(authNow.Add(11*time.Minute), "n-44"), reason: "outside the replay window"},
				{name: "no nonce", body: strings.Replace(secretReq(authNow, "x"), "<nonce>x</nonce>", "", 1), reason: "needs <timestamp> and <nonce>"},
				{name: "no timestamp", body: `<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret><nonce>n-45</nonce><close case="1"/></request>`,
					reason: "needs <timestamp> and <nonce>"},
				{name: "bad timestamp", body: strings.Replace(secretReq(authNow, "n-46"), authNow.Format(time.RFC3339), "yesterday", 1), reason: "not RFC 3339"},
			} {
				res, err := h.HandleStructured(ctx, rawDelivery("r-"+strings.ReplaceAll(tc.name, " ", "-")+"@ops.example.com", "mon@ops.example.com", tc.body))
				require.NoError(t, err)
				assert.Equal(t, "admin", res.Action, tc.name)
				assert.Contains(t, res.Reason, tc.reason, tc.name)
				assert.NotContains(t, res.Reason, "s3cret", "the secret never reaches the reason")
			}
			cases, err := s.ListCases(ctx, nil)
			require.NoError(t, err)
			n := 0
			for _, c := range cases {
				if c.Queue == "ops" {
					n++
				}
			}
			assert.Equal(t, 1, n, "only the first document ran")
		})
	}
}

func TestHandler_MemoryNonceBound(t *testing.T) {
	s := newStore(t)
	h, err := xmlapi.NewHandler(stateless{s}, &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}, Secret: "s3cret",
		MaxNonces: 1, Now: func() time.Time { return authNow }})
	require.NoError(t, err)
	res, err := h.HandleStructured(t.Context(), rawDelivery("b1@ops.example.com", "mon@ops.example.com", secretReq(authNow, "b-1")))
	require.NoError(t, err)
	assert.Equal(t, "ran 1 actions", res.Action)
	res, err = h.HandleStructured(t.Context(), rawDelivery("b2@ops.example.com", "mon@ops.example.com", secretReq(authNow, "b-2")))
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, "refused until some expire")

	_, err = xmlapi.NewHandler(s, &xmlapi.HandlerOptions{ReplayWindow: -time.Second})
	assert.Error(t, err)
}

// The trust check reads the pipeline's sender authentication.
func TestHandler_TrustsDeliveryAuth(t *testing.T) {
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}})
	require.NoError(t, err)
	body := `<request xmlns="urn:emailcrm:mailcase:v1"><createCase queue="ops"><subject>Disk full</subject></createCase></request>`

	d := rawDelivery("c1@ops.example.com", "mon@ops.example.com", body)
	d.Auth = mailauth.Result{Method: mailauth.MethodDKIM, Pass: true, Domain: "ops.example.com", Selector: "s1", FromDomain: "ops.example.com", Reason: "signature verifies"}
	res, err := h.HandleStructured(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "ran 1 actions", res.Action)
	require.NotNil(t, res.Auth)
	assert.Equal(t, mailauth.MethodDKIM, res.Auth.Method)

	d = rawDelivery("c2@ops.example.com", "mon@ops.example.com", body)
	d.Auth = mailauth.Result{Method: mailauth.MethodDKIM, Domain: "attacker.example", FromDomain: "ops.example.com", Reason: "signature d=attacker.example verifies but is not aligned"}
	res, err = h.HandleStructured(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, "not aligned")

	// A pass for another domain (a Delivery built by hand, or one reused
	// from another mail) authorises nothing for this From.
	d = rawDelivery("c3@ops.example.com", "mon@ops.example.com", body)
	d.Auth = mailauth.Result{Method: mailauth.MethodDKIM, Pass: true, Domain: "attacker.example", FromDomain: "attacker.example", Reason: "signature verifies"}
	res, err = h.HandleStructured(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, "not authenticated")
}

type keyDNS map[string]string

func (k keyDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	if r, ok := k[name]; ok {
		return []string{r}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// End to end: a DKIM-signed monitoring mail runs its actions through the
// pipeline; the same mail with its body changed after signing is refused
// and kept in the admin queue, with the reason in the outcome.
func TestPipeline_StructuredMailByDKIM(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	dns := keyDNS{"mon._domainkey.ops.example.com": "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
	v, err := mailauth.New(&mailauth.Options{DKIM: true, Resolver: dns})
	require.NoError(t, err)
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	h, err := xmlapi.NewHandler(store, &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(store, &mailcase.Options{SenderAuth: v, Structured: h, Mailbox: mailcase.Mailbox{Name: "support"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	raw := "From: Monitor <mon@ops.example.com>\r\nTo: support@crm.example\r\nSubject: alert\r\nMessage-ID: <e1@ops.example.com>\r\n" +
		"Date: Mon, 07 Dec 2026 11:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n" +
		`<request xmlns="urn:emailcrm:mailcase:v1"><createCase queue="ops" priority="high"><subject>Disk full on db1</subject></createCase></request>` + "\r\n"
	var signed bytes.Buffer
	require.NoError(t, dkim.Sign(&signed, strings.NewReader(raw), &dkim.SignOptions{Domain: "ops.example.com", Selector: "mon", Signer: key}))

	res, err := p.Process(t.Context(), signed.Bytes(), nil)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ActionStructured, res.Outcome.Action)
	require.NotNil(t, res.Outcome.Auth)
	assert.True(t, res.Outcome.Auth.Pass, res.Outcome.Auth.Reason)
	c, ok, err := store.GetCase(t.Context(), res.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "ops", c.Queue)

	tampered := bytes.Replace(signed.Bytes(), []byte("e1@ops"), []byte("e2@ops"), 1) // a replay with a new Message-ID
	tampered = bytes.Replace(tampered, []byte("Disk full on db1"), []byte("Drop database db1"), 1)
	res, err = p.Process(t.Context(), tampered, nil)
	require.NoError(t, err)
	require.NotNil(t, res.Outcome.Auth)
	assert.False(t, res.Outcome.Auth.Pass)
	c, ok, err = store.GetCase(t.Context(), res.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "admin", c.Queue)
	var authStep mailcase.Step
	for _, st := range res.Outcome.Steps {
		if st.Stage == "auth" {
			authStep = st
		}
	}
	assert.Equal(t, "not authenticated", authStep.Decision)
	assert.Contains(t, authStep.Reason, "dkim: signature d=ops.example.com s=mon fails")
}
