package salesforce_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

var mailSeq atomic.Int64

func testMail(atts int, size int) *driver.Email {
	n := mailSeq.Add(1)
	id := fmt.Sprintf("m%d.%d@mail.example.com", n, time.Now().UnixNano())
	e := &driver.Email{
		IdempotencyKey: "support\x00" + id, Mailbox: "support", Direction: driver.Inbound, MessageID: id,
		From:    driver.Address{Name: "Alice", Email: "alice@example.com"},
		To:      []driver.Address{{Name: "Support", Email: "support@example.com"}},
		Subject: fmt.Sprintf("Printer on fire %d", n), Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Text: "It is on fire.\n", HTML: "<p>It is on fire.</p>",
	}
	for i := range atts {
		data := bytes.Repeat([]byte{byte(i + 1)}, size)
		e.Attachments = append(e.Attachments, driver.Attachment{Filename: fmt.Sprintf("file%d.bin", i),
			ContentType: "application/octet-stream", Size: int64(size), Data: data})
	}
	return e
}

func newCaseReq(e *driver.Email) *driver.NewCase {
	return &driver.NewCase{Subject: e.Subject, Status: driver.StatusNew, Priority: driver.PriorityNormal, Queue: "support", First: e}
}

func TestRoundTrips(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, nil)
	ctx := t.Context()
	_, _ = d.FindCaseByNumber(ctx, "warm-up") // fetches the token
	before := o.Calls()
	e := testMail(2, 1000)
	c, err := d.CreateCase(ctx, newCaseReq(e))
	require.NoError(t, err)
	newMail := o.Calls() - before
	assert.LessOrEqual(t, newMail, 2, "a new mail with two attachments")
	before = o.Calls()
	reply := testMail(0, 0)
	reply.InReplyTo = []string{e.MessageID}
	require.NoError(t, d.AppendEmail(ctx, c.ID, reply))
	replyCalls := o.Calls() - before
	assert.Equal(t, 1, replyCalls, "a reply")
	t.Logf("round trips: new mail with 2 attachments %d, reply %d", newMail, replyCalls)
	assert.Len(t, o.Records("ContentVersion"), 2)
	for _, cv := range o.Records("ContentVersion") {
		assert.Equal(t, string(c.ID), cv["FirstPublishLocationId"])
	}
	ems := o.Records("EmailMessage")
	require.Len(t, ems, 2)
	assert.Equal(t, "<"+e.MessageID+">", ems[0]["MessageIdentifier"])
	assert.Equal(t, "<"+e.MessageID+">", ems[1]["ThreadIdentifier"])
	assert.Equal(t, "0", ems[0]["Status"])
	assert.Equal(t, true, ems[0]["Incoming"])
}

func TestRetriedCreateDoesNotDuplicate(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, nil)
	e := testMail(1, 10)
	c1, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.NoError(t, err)
	again := *e
	again.Subject = "redelivered"
	c2, err := d.CreateCase(t.Context(), newCaseReq(&again))
	require.NoError(t, err)
	assert.Equal(t, c1.ID, c2.ID)
	assert.Equal(t, c1.Number, c2.Number)
	assert.Len(t, o.Records("Case"), 1)
	assert.Len(t, o.Records("EmailMessage"), 1)
	assert.Len(t, o.Records("ContentVersion"), 1)
	assert.Equal(t, e.Subject, o.Records("Case")[0]["Subject"], "the redelivery did not overwrite the case")
}

func TestTwentyAttachments(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, nil)
	_, _ = d.FindCaseByNumber(t.Context(), "warm-up")
	before := o.Calls()
	e := testMail(20, 50_000)
	c, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.NoError(t, err)
	cvs := o.Records("ContentVersion")
	require.Len(t, cvs, 20)
	for i, cv := range cvs {
		assert.Equal(t, string(c.ID), cv["FirstPublishLocationId"])
		data, err := base64.StdEncoding.DecodeString(cv["VersionData"].(string))
		require.NoError(t, err)
		assert.Equal(t, e.Attachments[i].Data, data)
	}
	t.Logf("a new mail with 20 attachments: %d round trips", o.Calls()-before)
	// 30 attachments need a second composite request.
	e2 := testMail(30, 1000)
	before = o.Calls()
	_, err = d.CreateCase(t.Context(), newCaseReq(e2))
	require.NoError(t, err)
	assert.Len(t, o.Records("ContentVersion"), 50)
	assert.Equal(t, 2, o.Calls()-before)
}

func TestThirtyMegabyteAttachment(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, nil)
	e := testMail(0, 0)
	big := make([]byte, 30<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	e.Attachments = []driver.Attachment{{Filename: "dump \"x\".bin", ContentType: "application/octet-stream", Size: int64(len(big)), Data: big}}
	c, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.NoError(t, err)
	cvs := o.Records("ContentVersion")
	require.Len(t, cvs, 1)
	assert.Equal(t, string(c.ID), cvs[0]["FirstPublishLocationId"])
	data, _ := base64.StdEncoding.DecodeString(cvs[0]["VersionData"].(string))
	assert.True(t, bytes.Equal(big, data), "30 MB kept byte for byte")
}

func TestLongBodyKeptAsFile(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, nil)
	e := testMail(0, 0)
	e.Text = strings.Repeat("Ω line of text\n", 20000) // 300,000 UTF-16 units
	e.HTML = "<pre>" + e.Text + "</pre>"
	_, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.NoError(t, err)
	em := o.Records("EmailMessage")[0]
	tb := em["TextBody"].(string)
	assert.LessOrEqual(t, len([]rune(tb)), 131072)
	assert.Contains(t, tb, "truncated; the whole body is the file email-body.txt")
	assert.Contains(t, em["HtmlBody"].(string), "email-body.html")
	files := map[string]string{}
	for _, cv := range o.Records("ContentVersion") {
		data, _ := base64.StdEncoding.DecodeString(cv["VersionData"].(string))
		files[cv["Title"].(string)] = string(data)
	}
	assert.Equal(t, e.Text, files["email-body.txt"])
	assert.Equal(t, e.HTML, files["email-body.html"])
}

// literals returns the string literals the fake's SOQL lexer sees in q.
func literals(t *testing.T, q string) []string {
	t.Helper()
	ts, err := lex(q)
	require.NoError(t, err, q)
	var out []string
	for _, tk := range ts {
		if tk.kind == "str" {
			out = append(out, unlike(tk.val))
		}
	}
	return out
}

func TestHostileSOQLReachesTheServerAsOneLiteral(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) {
		c.Lookup = &salesforce.LookupConfig{Object: "Contact", Fields: []string{"Id", "Email"},
			Where: "Email = '{{sender}}' AND LastName LIKE '%{{header:X-Customer}}%'", Multiple: "all"}
	})
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			n := len(o.Queries())
			_, err := d.FindContacts(t.Context(), tc.in)
			require.NoError(t, err)
			q := o.Queries()[n]
			assert.Equal(t, "SELECT Id, FirstName, LastName, Email, AccountId, EmailcrmFlags__c, EmailcrmSupportLevel__c FROM Contact WHERE Email = "+
				tc.quoted+" ORDER BY CreatedDate ASC, Id ASC", q)
			assert.Equal(t, []string{tc.in}, literals(t, q), "the fake reads one literal, the value itself")

			_, err = d.Lookup(t.Context(), &salesforce.LookupInput{Sender: tc.in, Header: map[string][]string{"X-Customer": {tc.in}}})
			require.NoError(t, err)
			q = o.Queries()[n+1]
			assert.Equal(t, "SELECT Id, Email FROM Contact WHERE Email = "+tc.quoted+" AND LastName LIKE '%"+
				strings.Trim(tc.like, "'")+"%' ORDER BY Id LIMIT 50", q)
			assert.Len(t, literals(t, q), 2)
		})
	}
	// A Message-ID full of quotes in LookupThread's IN list.
	n := len(o.Queries())
	_, err := d.LookupThread(t.Context(), []string{`a'b@x`, `c\'); DELETE@y`})
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
	assert.Equal(t, []string{`<a'b@x>`, `<c\'); DELETE@y>`}, literals(t, o.Queries()[n]))
}

func TestValidationErrorNamesFields(t *testing.T) {
	o := newMiniOrg(t)
	o.validate = func(obj string, f map[string]any) *resp {
		if obj == "Case" && strings.Contains(fmt.Sprint(f["Subject"]), "forbidden") {
			r := errs(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Subject may not say forbidden", "Subject")
			return &r
		}
		return nil
	}
	d := newDriver(t, miniAdapter{o}, nil)
	e := testMail(1, 10)
	e.Subject = "forbidden words"
	_, err := d.CreateCase(t.Context(), newCaseReq(e))
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	assert.Contains(t, err.Error(), "fields: Subject")
	assert.Empty(t, o.Records("Case"), "allOrNone rolled everything back")
	assert.Empty(t, o.Records("EmailMessage"))
	assert.Empty(t, o.Records("ContentVersion"))
}

func TestAdvancedLookupOutcomes(t *testing.T) {
	o := newMiniOrg(t)
	for _, multiple := range []string{"first", "all", "none"} {
		t.Run(multiple, func(t *testing.T) {
			d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) {
				c.Lookup = &salesforce.LookupConfig{Object: "Contact", Fields: []string{"Id", "LastName"},
					Where: "Email LIKE '%@{{domain}}'", Multiple: multiple}
			})
			dom := multiple + ".example"
			for i := range 2 {
				_, err := d.CreateContact(t.Context(), &driver.NewContact{Name: fmt.Sprint("C", i), Email: fmt.Sprintf("c%d@%s", i, dom)})
				require.NoError(t, err)
			}
			res, err := d.Lookup(t.Context(), &salesforce.LookupInput{Sender: "x@" + dom})
			require.NoError(t, err)
			assert.Equal(t, salesforce.LookupMultiple, res.Outcome)
			want := map[string]int{"first": 1, "all": 2, "none": 0}[multiple]
			assert.Len(t, res.Records, want)
			res, err = d.Lookup(t.Context(), &salesforce.LookupInput{Sender: "x@nobody.example"})
			require.NoError(t, err)
			assert.Equal(t, salesforce.LookupNone, res.Outcome)
		})
	}
}

func TestLookupCache(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) { c.LookupCacheTTL = time.Minute })
	fresh := newDriver(t, miniAdapter{o}, nil)
	ctx := t.Context()
	_, err := d.FindContacts(ctx, "bob@example.com")
	require.NoError(t, err)
	n := o.Calls()
	for range 3 {
		_, err = d.FindContacts(ctx, "bob@example.com")
		require.NoError(t, err)
	}
	assert.Equal(t, n, o.Calls(), "cached answers")
	_, err = d.CreateContact(ctx, &driver.NewContact{Name: "Bob", Email: "bob@example.com"})
	require.NoError(t, err)
	got, err := d.FindContacts(ctx, "bob@example.com")
	require.NoError(t, err)
	assert.Len(t, got, 1, "a contact created through the driver is seen at once")
	n = o.Calls()
	_, _ = fresh.FindContacts(ctx, "bob@example.com")
	_, _ = fresh.FindContacts(ctx, "bob@example.com")
	assert.Equal(t, n+2, o.Calls(), "TTL 0: a fresh lookup each call")
}

func TestAccountDomainNormalised(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) { c.AccountDomainField = "Website" })
	a, err := d.CreateAccount(t.Context(), &driver.NewAccount{Name: "Acme", Domains: []string{"https://www.acme.com/about"}})
	require.NoError(t, err)
	got, err := d.FindAccounts(t.Context(), "acme.com")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, a.ID, got[0].ID)
	none, err := d.FindAccounts(t.Context(), "cme.com")
	require.NoError(t, err)
	assert.Empty(t, none, "a LIKE hit on a longer domain is not a match")
}

func TestURLOpener(t *testing.T) {
	o := newMiniOrg(t)
	env := map[string]string{salesforce.EnvClientID: "id", salesforce.EnvClientSecret: "secret"}
	op := &salesforce.URLOpener{Getenv: func(k string) string { return env[k] }}
	u, _ := url.Parse(strings.Replace(o.URL, "http://", "salesforce://", 1) + "?auto_assign=FALSE&insecure_http=1&api=v62.0&cache=5m")
	s, err := op.OpenStoreURL(t.Context(), u)
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	_, ok, err := s.FindCaseByNumber(t.Context(), "1")
	require.NoError(t, err)
	assert.False(t, ok)
	for _, bad := range []string{
		"salesforce://acme.my.salesforce.com",                          // no auto_assign
		"salesforce://acme.my.salesforce.com?auto_assign=FALSE&x=1",    // unknown parameter
		"salesforce://10.1.1.1?auto_assign=FALSE&insecure_http=1",      // http off loopback
		"salesforce://user:pw@acme.my.salesforce.com?auto_assign=TRUE", // credentials in the URL
	} {
		u, _ := url.Parse(bad)
		_, err := op.OpenStoreURL(t.Context(), u)
		assert.Error(t, err, bad)
		assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), bad)
	}
	assert.Contains(t, mailcase.DefaultURLMux().Schemes(), "salesforce")
}

func TestLogsHoldNoSecrets(t *testing.T) {
	o := newMiniOrg(t)
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) { c.Logger = lg; c.ClientSecret = "hunter2-secret" })
	s := mailcase.NewStore(d, &mailcase.StoreOptions{Logger: lg})
	e := testMail(1, 10)
	_, err := s.CreateCase(t.Context(), &mailcase.NewCase{First: e})
	require.NoError(t, err)
	assert.NotEmpty(t, logs.String())
	assert.NotContains(t, logs.String(), "hunter2-secret")
	assert.NotContains(t, logs.String(), "Bearer")
	assert.NotContains(t, logs.String(), "tok ") // the mini org's access token
}

// BenchmarkFile8Workers files mails (one attachment each) into the fake
// org with 8 concurrent workers and reports mails/s.
func BenchmarkFile8Workers(b *testing.B) { benchFile8(b, miniAdapter{newMiniOrg(b)}) }

func benchFile8(b *testing.B, o org) {
	d := newDriver(b, o, nil)
	s := mailcase.NewStore(d, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	jobs := make(chan int)
	b.ResetTimer()
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for range jobs {
				e := testMail(1, 2000)
				c, err := s.CreateCase(ctx, &mailcase.NewCase{First: e})
				if err != nil {
					b.Error(err)
					return
				}
				r := testMail(0, 0)
				if err := s.AppendEmail(ctx, c.ID, r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range b.N {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "mails/s")
	b.ReportMetric(float64(o.Calls())/float64(2*b.N), "calls/mail")
}

func TestResolveOwners(t *testing.T) {
	o := newMiniOrg(t)
	o.mu.Lock()
	qr := o.insert("Group", map[string]any{"Name": "Billing", "Type": "Queue"})
	ur := o.insert("User", map[string]any{"Name": "Ann Agent", "Username": "ann@acme.example", "IsActive": true})
	o.mu.Unlock()
	qid := qr.body.(map[string]any)["id"]
	uid := ur.body.(map[string]any)["id"]
	d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) { c.ResolveOwners = true })
	e := testMail(0, 0)
	req := newCaseReq(e)
	req.Queue = "Billing"
	c, err := d.CreateCase(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, qid, o.Records("Case")[0]["OwnerId"])
	owner := "Ann Agent"
	got, err := d.UpdateCase(t.Context(), c.ID, &driver.CaseUpdate{Owner: &owner})
	require.NoError(t, err)
	assert.Equal(t, "Ann Agent", got.Owner)
	assert.Equal(t, uid, o.Records("Case")[0]["OwnerId"])
	assert.Equal(t, "Billing", got.Queue)
}

func TestLookupSenderMatcher(t *testing.T) {
	o := newMiniOrg(t)
	d := newDriver(t, miniAdapter{o}, func(c *salesforce.Config) {
		c.Lookup = &salesforce.LookupConfig{Object: "Contact", Fields: []string{"Id", "LastName", "AccountId"},
			Where: "Email = '{{sender}}'", Multiple: "all"}
	})
	m, err := d.SenderMatcher()
	require.NoError(t, err)
	ct, err := d.CreateContact(t.Context(), &driver.NewContact{Name: "Olga", Email: "o'brien@example.com"})
	require.NoError(t, err)
	got, err := m.MatchSender(t.Context(), mailcase.Address{Email: "o'brien@example.com"})
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderContact, got.Kind)
	require.NotNil(t, got.Contact)
	assert.Equal(t, ct.ID, got.Contact.ID)
	assert.Equal(t, "Olga", got.Contact.Name)
	_, err = d.CreateContact(t.Context(), &driver.NewContact{Name: "Olga 2", Email: "o'brien@example.com"})
	require.NoError(t, err)
	got, err = m.MatchSender(t.Context(), mailcase.Address{Email: "o'brien@example.com"})
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderAmbiguous, got.Kind)
	assert.Len(t, got.Candidates, 2)
	got, err = m.MatchSender(t.Context(), mailcase.Address{Email: "nobody@example.com"})
	require.NoError(t, err)
	assert.Equal(t, mailcase.SenderUnknown, got.Kind)
}
