package salesforce_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase/driver"

	"github.com/emailcrm/emailcrm/adapters/salesforce/salesforcetest"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
)

// sfOrg adapts salesforcetest.Server to org.
type sfOrg struct{ *salesforcetest.Server }

// newSFOrg starts the shared fake with the custom fields the package
// documentation asks the org admin to create.
func newSFOrg(t testing.TB) *salesforcetest.Server {
	t.Helper()
	s := salesforcetest.New(&salesforcetest.Options{ClientID: "client-id", ClientSecret: "client-secret"})
	t.Cleanup(s.Close)
	for _, f := range []struct {
		obj, name string
		n         int
		ext       bool
	}{
		// Case.ParentId (Parent Case) is standard; the fake lacks it.
		{"Case", "ParentId", 18, false},
		{"Case", "EmailcrmStatus__c", 40, false},
		{"Case", "EmailcrmQueue__c", 255, false},
		{"Case", "EmailcrmOwner__c", 255, false},
		{"Case", "EmailcrmData__c", 131072, false},
		{"EmailMessage", "EmailcrmData__c", 131072, false},
		{"Contact", "EmailcrmFlags__c", 255, false},
		{"Contact", "EmailcrmSupportLevel__c", 255, false},
		{"Account", "EmailcrmSupportLevel__c", 255, false},
		// Task is a standard object the fake lacks: its fields as text.
		{"Task", "Subject", 255, false},
		{"Task", "Status", 40, false},
		{"Task", "TaskSubtype", 40, false},
		{"Task", "ActivityDate", 40, false},
		{"Task", "Description", 32000, false},
		{"Task", "WhoId", 18, false},
		{"Task", "WhatId", 18, false},
		{"Task", "EmailcrmKey__c", 80, true},
		{"Task", "EmailcrmData__c", 131072, false},
	} {
		s.AddField(f.obj, f.name, f.n, f.ext)
	}
	return s
}

func TestConformanceSalesforcetest(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		return &harness{org: sfOrg{newSFOrg(t)}}, nil
	})
}

func (o sfOrg) URL() string { return o.Server.URL() }

func TestSalesforcetestRoundTripsAndFiles(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, nil)
	ctx := t.Context()
	_, _ = d.FindCaseByNumber(ctx, "warm-up")
	s.ResetCalls()
	e := testMail(2, 1000)
	c, err := d.CreateCase(ctx, newCaseReq(e))
	require.NoError(t, err)
	assert.LessOrEqual(t, s.Calls(), 2, "new mail with two attachments")
	t.Logf("salesforcetest: new mail with 2 attachments = %d API calls", s.Calls())
	s.ResetCalls()
	require.NoError(t, d.AppendEmail(ctx, c.ID, testMail(0, 0)))
	assert.Equal(t, 1, s.Calls(), "reply")
	t.Logf("salesforcetest: reply = %d API calls", s.Calls())
	rec, ok := s.Record("Case", string(c.ID))
	require.True(t, ok)
	assert.Equal(t, "FALSE", rec["_AutoAssign"], "Sforce-Auto-Assign sent explicitly")

	// 20 attachments, a 30 MB attachment, an over-long body.
	e20 := testMail(20, 20_000)
	_, err = d.CreateCase(ctx, newCaseReq(e20))
	require.NoError(t, err)
	big := testMail(0, 0)
	data := make([]byte, 30<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	big.Attachments = []driver.Attachment{{Filename: "big.bin", ContentType: "application/octet-stream", Size: int64(len(data)), Data: data}}
	big.Text = strings.Repeat("x", 200_000)
	bc, err := d.CreateCase(ctx, newCaseReq(big))
	require.NoError(t, err)
	tl, err := d.ListInteractions(ctx, bc.ID)
	require.NoError(t, err)
	require.Len(t, tl, 1)
	assert.Equal(t, big.Text, tl[0].Email.Text, "the whole body, read back from its file")
	require.Len(t, tl[0].Email.Attachments, 1)
	assert.True(t, bytes.Equal(data, tl[0].Email.Attachments[0].Data), "30 MB byte for byte")
	multipart := false
	for _, c := range s.Log() {
		if c.Method == "POST" && strings.HasSuffix(c.Path, "/sobjects/ContentVersion") && bytes.Contains(c.Body[:min(len(c.Body), 400)], []byte("entity_content")) {
			multipart = true
		}
	}
	assert.True(t, multipart, "the 30 MB file went as a multipart upload")
}

func TestSalesforcetestTokenExpiry(t *testing.T) {
	s := newSFOrg(t)
	var logs bytes.Buffer
	d := newDriver(t, sfOrg{s}, func(c *salesforce.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, err := d.CreateCase(t.Context(), newCaseReq(testMail(0, 0)))
	require.NoError(t, err)
	s.ExpireTokens()
	_, err = d.CreateCase(t.Context(), newCaseReq(testMail(0, 0)))
	require.NoError(t, err, "refreshed after 401 INVALID_SESSION_ID")
	assert.Contains(t, logs.String(), "refreshing the token")
	assert.NotContains(t, logs.String(), "client-secret")
	assert.NotContains(t, logs.String(), s.IssueToken()[:8])
}

func TestSalesforcetestLimitsAndOutages(t *testing.T) {
	s := salesforcetest.New(&salesforcetest.Options{DailyLimit: 3})
	t.Cleanup(s.Close)
	d := newDriver(t, sfOrg{s}, nil)
	var err error
	for range 4 {
		_, err = d.FindCaseByNumber(t.Context(), "1")
	}
	assert.Equal(t, driver.ResourceExhausted, d.ErrorCode(err), "%v", err)
	used, mx := d.Limits()
	assert.Equal(t, 3, mx)
	assert.Equal(t, 3, used)

	s2 := newSFOrg(t)
	d2 := newDriver(t, sfOrg{s2}, nil)
	s2.FailNext(1, 503)
	_, err = d2.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.Unavailable, d2.ErrorCode(err))
	s2.FailNext(1, 500)
	_, err = d2.CreateCase(t.Context(), newCaseReq(testMail(0, 0)))
	assert.Equal(t, driver.Unavailable, d2.ErrorCode(err))
	assert.Empty(t, s2.Records("Case"), "nothing filed by a failed request")
}

func TestSalesforcetestValidation(t *testing.T) {
	s := newSFOrg(t)
	s.AddValidation("Case", func(rec map[string]any) (string, string, bool) {
		if strings.Contains(fmt.Sprint(rec["Subject"]), "forbidden") {
			return "Subject", "Subject may not say forbidden", false
		}
		return "", "", true
	})
	d := newDriver(t, sfOrg{s}, nil)
	e := testMail(1, 10)
	e.Subject = "forbidden"
	_, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	assert.Contains(t, err.Error(), "Subject")
	assert.Empty(t, s.Records("Case"))
	assert.Empty(t, s.Records("ContentVersion"))
}

func TestSalesforcetestHostileSOQL(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, nil)
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			email := "x" + tc.in + "@example.com"
			c, err := d.CreateContact(t.Context(), &driver.NewContact{Name: "H", Email: cutTo(email, 80)})
			if err != nil {
				t.Skipf("the fake refuses the address as a value: %v", err)
			}
			got, err := d.FindContacts(t.Context(), cutTo(email, 80))
			require.NoError(t, err, "the fake parsed the literal")
			require.Len(t, got, 1, "exactly the contact, no injected match")
			assert.Equal(t, c.ID, got[0].ID)
			last := s.Log()[len(s.Log())-1]
			q, _ := url.ParseQuery(last.RawQuery)
			assert.Contains(t, q.Get("q"), "Email = "+salesforce.QuoteSOQL(cutTo(email, 80)))
		})
	}
}

func cutTo(s string, n int) string {
	r := []rune(s)
	return string(r[:min(len(r), n)])
}

// BenchmarkFile8WorkersSalesforcetest is BenchmarkFile8Workers against the
// shared fake (which enforces lengths, picklists and references).
func BenchmarkFile8WorkersSalesforcetest(b *testing.B) {
	s := newSFOrg(b)
	benchFile8(b, sfOrg{s})
}

func TestSalesforcetestJWTBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	s := salesforcetest.New(&salesforcetest.Options{ClientID: "consumer-key", JWTPublicKey: &key.PublicKey})
	t.Cleanup(s.Close)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	d, err := salesforce.NewDriver(&salesforce.Config{InstanceURL: s.URL(), ClientID: "consumer-key",
		Username: "integration@salesforcetest.invalid", PrivateKey: pemKey, Audience: "https://login.salesforce.com",
		AutoAssign: "FALSE", AllowInsecureHTTP: true})
	require.NoError(t, err)
	_, err = d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err), "%v", err)
	s.ExpireTokens()
	_, err = d.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.NotFound, d.ErrorCode(err), "a new assertion after expiry: %v", err)

	bad, err := salesforce.NewDriver(&salesforce.Config{InstanceURL: s.URL(), ClientID: "consumer-key",
		Username: "nobody@example.com", PrivateKey: key, AutoAssign: "FALSE", AllowInsecureHTTP: true})
	require.NoError(t, err)
	_, err = bad.FindCaseByNumber(t.Context(), "1")
	assert.Equal(t, driver.PermissionDenied, bad.ErrorCode(err), "%v", err)
}

func TestSalesforcetestManyMegabytesOfSmallFiles(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, nil)
	e := testMail(12, 3<<20) // 36 MB in files of 3 MB: more than one JSON body takes
	c, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.NoError(t, err)
	tl, err := d.ListInteractions(t.Context(), c.ID)
	require.NoError(t, err)
	require.Len(t, tl[0].Email.Attachments, 12)
	for i, a := range tl[0].Email.Attachments {
		assert.True(t, bytes.Equal(e.Attachments[i].Data, a.Data), "attachment %d", i)
	}
}

func TestSalesforcetestRetriedCreate(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, nil)
	e := testMail(2, 100)
	c1, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.NoError(t, err)
	status := driver.StatusInProgress
	_, err = d.UpdateCase(t.Context(), c1.ID, &driver.CaseUpdate{Status: &status}) // an agent works on it
	require.NoError(t, err)
	again := *e
	again.Subject = "redelivered"
	c2, err := d.CreateCase(t.Context(), newCaseReq(&again))
	require.NoError(t, err)
	assert.Equal(t, c1.ID, c2.ID)
	assert.Equal(t, driver.StatusInProgress, c2.Status, "the redelivery did not reset the case")
	assert.Len(t, s.Records("Case"), 1)
	assert.Len(t, s.Records("EmailMessage"), 1)
	assert.Len(t, s.Records("ContentVersion"), 2)
}

// Outgoing mail (an agent's Log Email, filed by outbox.Mailer with
// Direction Outbound) is an outgoing EmailMessage on the case: Incoming
// false, Status "3" (Sent), our Message-ID as MessageIdentifier, so a
// reply to it threads back to the case, in Salesforce and through
// LookupThread.
func TestSalesforcetestOutboundEmail(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, nil)
	ctx := t.Context()
	first := testMail(0, 0)
	c, err := d.CreateCase(ctx, newCaseReq(first))
	require.NoError(t, err)

	outID := "c.abc123.def456@support.example.com"
	out := &driver.Email{
		IdempotencyKey: "log-email\x00agent-1", Direction: driver.Outbound, MessageID: outID,
		From:    driver.Address{Name: "Our Support", Email: "support@support.example.com"},
		To:      []driver.Address{{Name: "Alice", Email: "alice@example.com"}},
		Cc:      []driver.Address{{Email: "boss@example.com"}},
		Subject: "Re: About Case " + c.Number + " :: " + first.Subject,
		Date:    time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC),
		Text:    "We replaced the drum.\n", ReplyText: "We replaced the drum.\n",
		InReplyTo: []string{first.MessageID}, References: []string{first.MessageID},
	}
	s.ResetCalls()
	require.NoError(t, d.AppendEmail(ctx, c.ID, out))
	assert.Equal(t, 1, s.Calls(), "an outgoing mail is one request")

	rec := emailMessageByID(t, s, outID)
	assert.Equal(t, string(c.ID), rec["ParentId"])
	assert.Equal(t, false, rec["Incoming"], "outgoing")
	assert.Equal(t, "3", rec["Status"], "Sent")
	assert.Equal(t, "<"+outID+">", rec["MessageIdentifier"])
	assert.Equal(t, "<"+first.MessageID+">", rec["ThreadIdentifier"], "the thread root")
	assert.Equal(t, "support@support.example.com", rec["FromAddress"])
	assert.Equal(t, "Our Support", rec["FromName"])
	assert.Equal(t, "alice@example.com", rec["ToAddress"])
	assert.Equal(t, "boss@example.com", rec["CcAddress"])
	assert.Equal(t, out.Subject, rec["Subject"])
	assert.Equal(t, out.Text, rec["TextBody"])
	assert.Equal(t, "2026-01-02T04:00:00.000+0000", rec["MessageDate"])
	assert.Contains(t, rec["Headers"], "In-Reply-To: <"+first.MessageID+">")

	// The customer's reply names our Message-ID only.
	got, err := d.LookupThread(ctx, []string{outID})
	require.NoError(t, err)
	assert.Equal(t, c.ID, got.ID, "a reply to our mail threads to its case")
	reply := testMail(0, 0)
	reply.InReplyTo, reply.References = []string{outID}, []string{first.MessageID, outID}
	require.NoError(t, d.AppendEmail(ctx, got.ID, reply))
	in := emailMessageByID(t, s, reply.MessageID)
	assert.Equal(t, true, in["Incoming"])
	assert.Equal(t, "0", in["Status"], "New")
	assert.Equal(t, "<"+first.MessageID+">", in["ThreadIdentifier"], "one thread")

	tl, err := d.ListInteractions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, tl, 3)
	require.NotNil(t, tl[1].Email)
	assert.Equal(t, driver.Outbound, tl[1].Email.Direction, "read back as outbound")
	assert.Equal(t, outID, tl[1].Email.MessageID)
	assert.Equal(t, driver.Inbound, tl[2].Email.Direction)
}

// emailMessageByID returns the fake's EmailMessage record whose
// MessageIdentifier is <id>.
func emailMessageByID(t *testing.T, s *salesforcetest.Server, id string) map[string]any {
	t.Helper()
	for _, r := range s.Records("EmailMessage") {
		if r["MessageIdentifier"] == "<"+id+">" {
			return r
		}
	}
	require.Failf(t, "no EmailMessage", "MessageIdentifier <%s>", id)
	return nil
}
