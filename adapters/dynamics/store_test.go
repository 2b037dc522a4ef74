package dynamics_test

import (
	"bytes"
	"context"
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

	"github.com/emailcrm/emailcrm/adapters/dynamics"
	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

var mailSeq atomic.Int64

// testMail returns a new inbound mail with n attachments of size bytes.
func testMail(n, size int) *driver.Email {
	i := mailSeq.Add(1)
	e := &driver.Email{
		IdempotencyKey: fmt.Sprintf("support\x00m%d@example.com", i), Mailbox: "support", Direction: driver.Inbound,
		MessageID: fmt.Sprintf("m%d@example.com", i), From: driver.Address{Name: "Ann", Email: "ann@example.com"},
		To: []driver.Address{{Email: "support@acme.example"}}, Subject: fmt.Sprintf("Printer %d", i),
		Text: "It is on fire.\n", Date: time.Unix(1700000000, 0).UTC(),
	}
	for j := range n {
		e.Attachments = append(e.Attachments, driver.Attachment{Filename: fmt.Sprintf("f%d.bin", j),
			ContentType: "application/octet-stream", Data: bytes.Repeat([]byte{byte(j)}, size), Size: int64(size)})
	}
	return e
}

func newCase(e *driver.Email) *driver.NewCase {
	return &driver.NewCase{Subject: e.Subject, Status: driver.StatusNew, Priority: driver.PriorityNormal, First: e}
}

// lastFilter returns the $filter of the last call the fake received.
func lastFilter(t *testing.T, srv *dynamicstest.Server) (raw, filter string) {
	t.Helper()
	log := srv.Log()
	require.NotEmpty(t, log)
	c := log[len(log)-1]
	q, err := url.ParseQuery(c.RawQuery)
	require.NoError(t, err)
	return c.RawQuery, q.Get("$filter")
}

func TestFilterEscaping(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	for _, tc := range []struct {
		name, in, lit string
	}{
		{name: "quote injection", in: "' or 1 eq 1 or emailaddress1 eq '", lit: "''' or 1 eq 1 or emailaddress1 eq '''"},
		{name: "percent-encoded quote", in: "a%27b@example.com", lit: "'a%27b@example.com'"},
		{name: "plus", in: "a+b@example.com", lit: "'a+b@example.com'"},
		{name: "unicode", in: "jöhn.ñ@exämple.com", lit: "'jöhn.ñ@exämple.com'"},
		{name: "newline", in: "a\nb@example.com", lit: "'a\nb@example.com'"},
		{name: "underscore", in: "a_b@example.com", lit: "'a_b@example.com'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.FindContacts(t.Context(), tc.in)
			require.NoError(t, err)
			assert.Empty(t, got)
			raw, f := lastFilter(t, srv)
			assert.Equal(t, "emailaddress1 eq "+tc.lit+" or emailaddress2 eq "+tc.lit+" or emailaddress3 eq "+tc.lit, f)
			assert.NotContains(t, raw, "+", "a '+' in the query would read as a space")
		})
	}
	// the same hostile address as a real contact is found exactly
	hostile := "o'brien+x_y%z@example.com"
	c, err := d.CreateContact(t.Context(), &driver.NewContact{Name: "O'Brien", Email: hostile})
	require.NoError(t, err)
	got, err := d.FindContacts(t.Context(), hostile)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, c.ID, got[0].ID)

	// LIKE wildcards are escaped inside contains()
	_, err = d.FindAccounts(t.Context(), "ex_a%mple[1].com")
	require.NoError(t, err)
	_, f := lastFilter(t, srv)
	assert.Equal(t, "contains(websiteurl,'ex[_]a[%]mple[[]1].com')", f)
	a, err := d.CreateAccount(t.Context(), &driver.NewAccount{Name: "Ex", Domains: []string{"ex_a.com"}})
	require.NoError(t, err)
	srv.Insert("accounts", map[string]any{"name": "Wild", "websiteurl": "exxa.com"})
	accs, err := d.FindAccounts(t.Context(), "ex_a.com")
	require.NoError(t, err)
	require.Len(t, accs, 1)
	assert.Equal(t, a.ID, accs[0].ID)
}

func TestTemplateEscaping(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, func(c *dynamics.Config) {
		c.Lookup = &dynamics.LookupConfig{EntitySet: "contacts", Select: []string{"contactid", "lastname"},
			Filter: "emailaddress1 eq '{{sender}}' or contains(lastname,'{{header:X-Customer}}')", Multiple: "all"}
	})
	q, err := d.LookupQuery(&dynamics.LookupInput{Sender: "x' or 1 eq 1", Header: map[string][]string{"X-Customer": {"50%_off"}}})
	require.NoError(t, err)
	u, err := url.Parse("http://h/" + q)
	require.NoError(t, err)
	assert.Equal(t, "emailaddress1 eq 'x'' or 1 eq 1' or contains(lastname,'50[%][_]off')", u.Query().Get("$filter"))
	_, err = dynamics.CompileTemplate("emailaddress1 eq {{sender}}")
	assert.Error(t, err)

	_, err = d.CreateContact(t.Context(), &driver.NewContact{Name: "Olga", Email: "o'brien@example.com"})
	require.NoError(t, err)
	res, err := d.Lookup(t.Context(), &dynamics.LookupInput{Sender: "o'brien@example.com"})
	require.NoError(t, err)
	assert.Equal(t, dynamics.LookupSingle, res.Outcome)
	res, err = d.Lookup(t.Context(), &dynamics.LookupInput{Sender: "nobody@example.com", Header: map[string][]string{"x-customer": {"zz"}}})
	require.NoError(t, err)
	assert.Equal(t, dynamics.LookupNone, res.Outcome)
}

func TestTokenExpiry(t *testing.T) {
	srv := newEnv(t, &dynamicstest.Options{TokenTTL: time.Hour})
	d := newDriver(t, srv, nil)
	_, err := d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.NoError(t, err)
	srv.ExpireTokens()
	_, err = d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.NoError(t, err, "a 401 refreshes the token and repeats the call once")
}

func TestWrongSecret(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, func(c *dynamics.Config) { c.ClientSecret = "wrong-secret-value" })
	_, err := d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.Error(t, err)
	assert.Equal(t, driver.PermissionDenied, d.ErrorCode(err))
	assert.NotContains(t, err.Error(), "wrong-secret-value")
}

func TestThrottleRetryAfter(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	srv.Throttle(1, time.Second)
	_, err := d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.Error(t, err)
	assert.Equal(t, driver.ResourceExhausted, d.ErrorCode(err))
	var ae *dynamics.APIError
	require.True(t, d.ErrorAs(err, &ae))
	assert.Equal(t, time.Second, ae.RetryAfter)
	start := time.Now()
	_, err = d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the next call waits out Retry-After")

	// through mailcase.Store, a 429 is retried
	s := mailcase.NewStore(newDriver(t, srv, nil), nil)
	srv.Throttle(1, time.Second)
	_, err = s.CreateCase(t.Context(), &mailcase.NewCase{First: testMail(0, 0)})
	require.NoError(t, err)
}

func TestServerErrorsRetried(t *testing.T) {
	srv := newEnv(t, nil)
	s := mailcase.NewStore(newDriver(t, srv, nil), nil)
	srv.FailNext(2, 503)
	e := testMail(1, 10)
	c, err := s.CreateCase(t.Context(), &mailcase.NewCase{First: e})
	require.NoError(t, err)
	assert.Len(t, srv.Records("incidents"), 1)
	assert.Len(t, srv.Records("emails"), 1)
	got, ok, err := s.LookupThread(t.Context(), e.MessageID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, c.ID, got.ID)

	d := newDriver(t, srv, nil)
	srv.FailNext(1, 500)
	_, err = d.GetCase(t.Context(), c.ID)
	assert.Equal(t, driver.Unavailable, d.ErrorCode(err))
}

func TestRetriedCreateDoesNotDuplicate(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	e := testMail(2, 100)
	c1, err := d.CreateCase(t.Context(), newCase(e))
	require.NoError(t, err)
	d2 := newDriver(t, srv, nil) // another process
	c2, err := d2.CreateCase(t.Context(), newCase(e))
	require.NoError(t, err)
	assert.Equal(t, c1.ID, c2.ID)
	assert.Equal(t, c1.Number, c2.Number)
	assert.Len(t, srv.Records("incidents"), 1)
	assert.Len(t, srv.Records("emails"), 1)
	assert.Len(t, srv.Records("activitymimeattachments"), 2)

	// concurrent creates of one key
	e = testMail(0, 0)
	var wg sync.WaitGroup
	ids := make([]driver.CaseID, 8)
	for i := range ids {
		wg.Go(func() {
			c, err := newDriver(t, srv, nil).CreateCase(context.Background(), newCase(e))
			assert.NoError(t, err)
			ids[i] = c.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
	assert.Len(t, srv.Records("incidents"), 2)
}

func TestBatchFailureRollsBack(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	e := testMail(3, 10)
	e.Attachments[2].ContentID = strings.Repeat("x", 600) // attachmentcontentid is 500
	_, err := d.CreateCase(t.Context(), newCase(e))
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	assert.Contains(t, err.Error(), "attachmentcontentid")
	assert.Empty(t, srv.Records("incidents"))
	assert.Empty(t, srv.Records("emails"))
	assert.Empty(t, srv.Records("activitymimeattachments"))
	_, err = d.LookupProcessed(t.Context(), e.IdempotencyKey)
	assert.Equal(t, driver.NotFound, d.ErrorCode(err))
}

func TestTwentyAttachments(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, func(c *dynamics.Config) {
		c.DefaultCustomer = srv.Insert("accounts", map[string]any{"name": "Unknown senders"})
	})
	srv.ResetCalls()
	_, err := d.CreateCase(t.Context(), newCase(testMail(20, 50<<10)))
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Calls())
	assert.Len(t, srv.Records("activitymimeattachments"), 20)
}

func TestAttachmentOverMaxUploadFileSize(t *testing.T) {
	srv := newEnv(t, &dynamicstest.Options{MaxUploadFileSize: 4000})
	d := newDriver(t, srv, func(c *dynamics.Config) { c.MaxUploadFileSize = 4000 })
	srv.ResetCalls()
	// Over the limit (4,004 base64 bytes): the mail is filed without the
	// attachment, which its problems name, with the size and the limit.
	e := testMail(2, 3001)
	e.Attachments[1].Data = e.Attachments[1].Data[:100]
	e.Attachments[1].Size = 100
	e.Problems = []string{"an earlier problem"}
	c, err := d.CreateCase(t.Context(), newCase(e))
	require.NoError(t, err)
	var batches int
	for _, c := range srv.Log() {
		if strings.HasSuffix(c.Path, "$batch") {
			batches++
		}
	}
	assert.Equal(t, 1, batches, "one $batch, as for any new mail")
	atts := srv.Records("activitymimeattachments")
	require.Len(t, atts, 1, "the attachment within the limit is filed")
	assert.Equal(t, "f1.bin", atts[0]["filename"])
	assert.Len(t, e.Attachments, 2, "the caller's mail is not changed")
	s := mailcase.NewStore(d, nil)
	got, err := s.ListInteractions(t.Context(), mailcase.CaseID(c.ID))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Email)
	assert.Equal(t, []string{"an earlier problem", `attachment "f0.bin" left out: 3001 bytes (4004 in base64) are ` +
		`over the environment's MaxUploadFileSize of 4000 base64 bytes`}, got[0].Email.Problems)
	require.Len(t, got[0].Email.Attachments, 1)
	assert.Equal(t, "f1.bin", got[0].Email.Attachments[0].Filename)

	// A reply over the limit too.
	r := testMail(1, 3001)
	require.NoError(t, d.AppendEmail(t.Context(), c.ID, r))
	got, err = s.ListInteractions(t.Context(), mailcase.CaseID(c.ID))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Len(t, srv.Records("activitymimeattachments"), 1)
	var problems []string
	for _, in := range got {
		if in.Email != nil && in.Email.MessageID == r.MessageID {
			problems = in.Email.Problems
		}
	}
	assert.Len(t, problems, 1)
	_, err = d.CreateCase(t.Context(), newCase(testMail(1, 2999)))
	require.NoError(t, err)
	assert.Len(t, srv.Records("activitymimeattachments"), 2, "within the limit: filed")

	// a server limit lower than the configured one: refused, rolled back
	d = newDriver(t, srv, nil)
	_, err = d.CreateCase(t.Context(), newCase(testMail(1, 3001)))
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	assert.Len(t, srv.Records("incidents"), 2)
}

func TestRoundTrips(t *testing.T) {
	srv := newEnv(t, nil)
	s := mailcase.NewStore(newDriver(t, srv, nil), nil)
	ctx := t.Context()
	ct, err := s.CreateContact(ctx, &mailcase.NewContact{Name: "Ann", Email: "ann@example.com"})
	require.NoError(t, err)
	srv.ResetCalls()
	e := testMail(2, 1000)
	c, err := s.CreateCase(ctx, &mailcase.NewCase{First: e, ContactID: ct.ID})
	require.NoError(t, err)
	create := srv.Calls()
	assert.Equal(t, 1, create, "new mail with 2 attachments")

	srv.ResetCalls()
	r := testMail(0, 0)
	r.InReplyTo = []string{e.MessageID}
	got, ok, err := s.LookupThread(ctx, e.MessageID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, c.ID, got.ID)
	lookup := srv.Calls()
	srv.ResetCalls()
	require.NoError(t, s.AppendEmail(ctx, c.ID, r))
	appendCalls := srv.Calls()
	assert.Equal(t, 1, appendCalls, "reply")
	t.Logf("round trips: new mail + 2 attachments %d; reply: thread lookup %d + append %d", create, lookup, appendCalls)
	got, _, err = s.GetCase(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"ann@example.com", "support@acme.example"}, got.Participants)
}

func TestLogsHoldNoSecrets(t *testing.T) {
	srv := newEnv(t, &dynamicstest.Options{ClientSecret: "hunter2-secret"})
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := newDriver(t, srv, func(c *dynamics.Config) { c.Logger = lg; c.ClientSecret = "hunter2-secret" })
	s := mailcase.NewStore(d, &mailcase.StoreOptions{Logger: lg})
	_, err := s.CreateCase(t.Context(), &mailcase.NewCase{First: testMail(1, 10)})
	require.NoError(t, err)
	srv.ExpireTokens()
	_, err = s.CreateCase(t.Context(), &mailcase.NewCase{First: testMail(1, 10)})
	require.NoError(t, err)
	assert.NotEmpty(t, logs.String())
	assert.NotContains(t, logs.String(), "hunter2-secret")
	assert.NotContains(t, logs.String(), "Bearer")
	assert.NotContains(t, logs.String(), "ann@example.com", "no addresses in logs")
}

func TestStatusLifecycle(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	c, err := d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.NoError(t, err)
	for _, tc := range []struct {
		st            driver.CaseStatus
		state, state2 float64
	}{
		{st: driver.StatusInProgress, state: 0, state2: 4},
		{st: driver.StatusClosed, state: 1, state2: 5},
		{st: driver.StatusOpen, state: 0, state2: 1},
		{st: driver.StatusCancelled, state: 2, state2: 6},
		{st: driver.StatusNew, state: 0, state2: 1},
	} {
		st := tc.st
		got, err := d.UpdateCase(t.Context(), c.ID, &driver.CaseUpdate{Status: &st})
		require.NoError(t, err, st)
		assert.Equal(t, st, got.Status)
		rec, ok := srv.Record("incidents", string(c.ID))
		require.True(t, ok)
		assert.EqualValues(t, tc.state, rec["statecode"], st)
		assert.EqualValues(t, tc.state2, rec["statuscode"], st)
	}
	assert.NotEmpty(t, srv.Records("incidentresolutions"), "closed through CloseIncident")
	u, err := d.CaseURL(t.Context(), c.ID)
	require.NoError(t, err)
	assert.Equal(t, srv.URL()+"/main.aspx?etn=incident&id="+string(c.ID)+"&pagetype=entityrecord", u)
	byNum, err := d.FindCaseByNumber(t.Context(), c.Number)
	require.NoError(t, err)
	assert.Equal(t, c.ID, byNum.ID)
}

// BenchmarkFile8Workers files mails (one new case with an attachment and
// one reply each) into the fake with 8 concurrent workers and reports
// mails/s and calls per mail.
func BenchmarkFile8Workers(b *testing.B) {
	srv := newEnv(b, &dynamicstest.Options{RequestLimit: 1 << 30})
	d := newDriver(b, srv, func(c *dynamics.Config) {
		c.DefaultCustomer = srv.Insert("accounts", map[string]any{"name": "Unknown senders"})
	})
	s := mailcase.NewStore(d, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	jobs := make(chan int)
	srv.ResetCalls()
	b.ResetTimer()
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for range jobs {
				c, err := s.CreateCase(ctx, &mailcase.NewCase{First: testMail(1, 2000)})
				if err != nil {
					b.Error(err)
					return
				}
				if err := s.AppendEmail(ctx, c.ID, testMail(0, 0)); err != nil {
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
	b.ReportMetric(float64(srv.Calls())/float64(2*b.N), "calls/mail")
}

func TestTrackingTokenThreads(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	c, err := d.CreateCase(t.Context(), newCase(testMail(0, 0)))
	require.NoError(t, err)
	// an agent's mail sent from Dynamics carries the token
	srv.Insert("emails", map[string]any{"subject": "Your printer CRM:0001234", "trackingtoken": "CRM:0001234",
		"directioncode": true, "_regardingobjectid_value": string(c.ID)})
	assert.Equal(t, []string{"CRM:0001234"}, d.TrackingTokens("Re: Your printer CRM:0001234"))
	r := d.TrackingResolver(nil)
	for _, tc := range []struct {
		name, from, subject string
		want                mailcase.ThreadAction
	}{
		{name: "participant", from: "ann@example.com", subject: "RE: Your printer CRM:0001234", want: mailcase.ThreadAppend},
		{name: "stranger", from: "mallory@evil.example", subject: "RE: Your printer CRM:0001234", want: mailcase.ThreadNew},
		{name: "unknown token", from: "ann@example.com", subject: "RE: CRM:0009999", want: mailcase.ThreadNew},
		{name: "no token", from: "ann@example.com", subject: "Hello", want: mailcase.ThreadNew},
		{name: "hostile token text", from: "ann@example.com", subject: "CRM:' or 1 eq 1", want: mailcase.ThreadNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := &mailcase.Delivery{Mailbox: &mailcase.Mailbox{Name: "support", Address: "support@acme.example"},
				Message: &mailcase.Message{From: mailcase.Address{Email: tc.from}, Subject: tc.subject}}
			got, err := r.ResolveThread(t.Context(), dl)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Action, got.Reason)
			if tc.want == mailcase.ThreadAppend {
				assert.Equal(t, c.ID, got.CaseID)
				assert.True(t, got.SenderOnCase)
			}
		})
	}
}

func TestURLOpener(t *testing.T) {
	op := &dynamics.URLOpener{Getenv: func(k string) string {
		return map[string]string{dynamics.EnvClientID: "id", dynamics.EnvClientSecret: "secret", dynamics.EnvTenant: "contoso.onmicrosoft.com"}[k]
	}}
	u, _ := url.Parse("dynamics://org.crm4.dynamics.com?cache=24h&no_notes=true&domain_field=emailcrm_domains")
	cfg, err := op.ConfigFromURL(u)
	require.NoError(t, err)
	assert.Equal(t, "https://org.crm4.dynamics.com", cfg.InstanceURL)
	assert.Equal(t, "contoso.onmicrosoft.com", cfg.Tenant)
	assert.Equal(t, 24*time.Hour, cfg.LookupCacheTTL)
	assert.True(t, cfg.NoNotes)
	_, err = dynamics.NewDriver(cfg)
	require.NoError(t, err)
	for _, bad := range []string{
		"dynamics://org.crm.dynamics.com?x=1",                // unknown parameter
		"dynamics://10.1.1.1?insecure_http=1",                // http off loopback
		"dynamics://user:pw@org.crm.dynamics.com",            // credentials in the URL
		"dynamics://org.crm.dynamics.com?no_summary=perhaps", // bad switch
	} {
		u, _ := url.Parse(bad)
		_, err := op.OpenStoreURL(t.Context(), u)
		assert.Error(t, err, bad)
		assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), bad)
	}
	assert.Contains(t, mailcase.DefaultURLMux().Schemes(), "dynamics")

	// against the fake over loopback http
	srv := newEnv(t, nil)
	fu, _ := url.Parse(srv.URL())
	u, _ = url.Parse("dynamics://" + fu.Host + "?insecure_http=1&token_url=" + url.QueryEscape(srv.TokenURL()))
	op.Getenv = func(k string) string {
		return map[string]string{dynamics.EnvClientID: "client-id", dynamics.EnvClientSecret: "client-secret"}[k]
	}
	s, err := op.OpenStoreURL(t.Context(), u)
	require.NoError(t, err)
	_, err = s.CreateCase(t.Context(), &mailcase.NewCase{First: testMail(0, 0)})
	require.NoError(t, err)
}

// TestPipelineTrackingToken files a mail through a mailcase.Pipeline, then
// a reply to an agent's mail sent from Dynamics (no In-Reply-To, only the
// tracking token in its subject): it threads onto the incident.
func TestPipelineTrackingToken(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, nil)
	s := mailcase.NewStore(d, nil)
	p, err := mailcase.NewPipeline(s, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@acme.example", DefaultQueue: "first-line"},
		Threads: d.TrackingResolver(nil),
	})
	require.NoError(t, err)
	raw := "From: Ann <ann@example.com>\r\nTo: support@acme.example\r\nSubject: Printer on fire\r\n" +
		"Message-ID: <first@example.com>\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\n\r\nHelp.\r\n"
	res, err := p.Process(t.Context(), []byte(raw), nil)
	require.NoError(t, err)
	id := res.Outcome.CaseID
	require.NotEmpty(t, id)
	srv.Insert("emails", map[string]any{"subject": "Printer on fire CRM:0001234", "trackingtoken": "CRM:0001234",
		"directioncode": true, "_regardingobjectid_value": string(id)})
	reply := "From: Ann <ann@example.com>\r\nTo: support@acme.example\r\nSubject: RE: Printer on fire CRM:0001234\r\n" +
		"Message-ID: <reply@example.com>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nStill burning.\r\n"
	srv.ResetCalls()
	res, err = p.Process(t.Context(), []byte(reply), nil)
	require.NoError(t, err)
	assert.Equal(t, id, res.Outcome.CaseID, "%+v", res.Outcome.Thread)
	t.Logf("reply through the pipeline: %d calls", srv.Calls())
	forged := strings.ReplaceAll(strings.ReplaceAll(reply, "ann@example.com", "mallory@evil.example"), "reply@", "forged@")
	res, err = p.Process(t.Context(), []byte(forged), nil)
	require.NoError(t, err)
	assert.NotEqual(t, id, res.Outcome.CaseID, "a stranger's token does not thread")
}

// TestSlowsDownBeforeThrottled: when the remaining burst budget falls
// under SlowDownAt, calls are delayed (up to SlowDownMax at 0), so the
// driver slows down before Dataverse answers 429.
func TestSlowsDownBeforeThrottled(t *testing.T) {
	srv := newEnv(t, &dynamicstest.Options{RequestLimit: 10})
	d := newDriver(t, srv, func(c *dynamics.Config) { c.SlowDownAt = 5; c.SlowDownMax = 200 * time.Millisecond })
	var last time.Duration
	for i := range 9 {
		start := time.Now()
		_, err := d.FindContacts(t.Context(), fmt.Sprintf("x%d@example.com", i))
		require.NoError(t, err)
		last = time.Since(start)
		if i < 5 {
			assert.Less(t, last, 100*time.Millisecond, "call %d with budget left", i)
		}
	}
	assert.GreaterOrEqual(t, last, 100*time.Millisecond, "the last calls wait")
}

func TestLookupSenderMatcher(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, func(c *dynamics.Config) {
		c.Lookup = &dynamics.LookupConfig{EntitySet: "contacts", Select: []string{"contactid", "lastname"},
			Filter: "emailaddress1 eq '{{sender}}'", Multiple: "all"}
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

func TestLookupCache(t *testing.T) {
	srv := newEnv(t, nil)
	now := time.Unix(1700000000, 0)
	d := newDriver(t, srv, func(c *dynamics.Config) { c.LookupCacheTTL = time.Hour; c.Now = func() time.Time { return now } })
	_, err := d.FindContacts(t.Context(), "a@example.com")
	require.NoError(t, err)
	n := srv.Calls()
	_, err = d.FindContacts(t.Context(), "a@example.com")
	require.NoError(t, err)
	assert.Equal(t, n, srv.Calls(), "cached")
	now = now.Add(2 * time.Hour)
	_, err = d.FindContacts(t.Context(), "a@example.com")
	require.NoError(t, err)
	assert.Equal(t, n+1, srv.Calls(), "stale after the freshness window")
}
