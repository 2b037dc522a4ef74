package routing_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/routing"
	"github.com/emailcrm/emailcrm/threading"
)

// TestPipeline routes through a real pipeline and store: the case is created
// in the routed queue with the routed priority and origin, and the outcome
// records the decision for explain.
func TestPipeline(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	r, err := routing.LoadFile("testdata/rules.yaml", &routing.Options{Cases: store})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(store, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "general"},
		Router:  r,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	raw := "From: Bob <bob@mail.importantcustomer.example>\r\nTo: billing@company.example\r\n" +
		"Subject: Refund for invoice 77\r\nMessage-ID: <p1@importantcustomer.example>\r\n\r\nPlease refund invoice 77.\r\n"
	res, err := p.Process(t.Context(), []byte(raw), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action)
	route := res.Outcome.Route
	require.NotNil(t, route)
	assert.Equal(t, "vip", route.Queue)
	assert.Equal(t, "domain:importantcustomer.example", route.Rule)
	assert.Equal(t, []string{"domain:importantcustomer.example", "keywords:billing", "address:billing@company.example", "address:support@company.example"}, route.Fired)
	assert.Equal(t, []mailcase.QueueScore{{Queue: "billing", Score: 6}}, route.Scores)

	c, ok, err := store.GetCase(t.Context(), res.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "vip", c.Queue)
	assert.Equal(t, mailcase.PriorityHigh, c.Priority)
	assert.Equal(t, "Email - Billing", c.Origin)

	raw = "From: zoe@example.org\r\nTo: support@company.example\r\nSubject: Hi\r\nMessage-ID: <p2@example.org>\r\n\r\nHello.\r\n"
	res, err = p.Process(t.Context(), []byte(raw), nil)
	require.NoError(t, err)
	assert.Equal(t, "general", res.Outcome.Route.Queue)
	assert.Equal(t, "default", res.Outcome.Route.Rule)
}

// TestPipeline_ThreadRouting: a reply to a closed case under the "new
// linked case" policy opens a new case that follows the old case's queue, whatever its own words say.
func TestPipeline_ThreadRouting(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	r, err := routing.LoadFile("testdata/rules.yaml", &routing.Options{Cases: store})
	require.NoError(t, err)
	threads, err := threading.NewResolver(store, &threading.Options{ClosedPolicy: threading.PolicyNewLinked})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(store, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "general"},
		Router:  r, Threads: threads,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	first := "From: ann@example.com\r\nTo: support@company.example\r\nSubject: Refund for invoice 9\r\n" +
		"Message-ID: <t1@example.com>\r\n\r\nPlease refund invoice 9.\r\n"
	res, err := p.Process(t.Context(), []byte(first), nil)
	require.NoError(t, err)
	require.Equal(t, "billing", res.Outcome.Route.Queue)
	closed := mailcase.StatusClosed
	_, err = store.UpdateCase(t.Context(), res.Outcome.CaseID, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)

	reply := "From: ann@example.com\r\nTo: support@company.example\r\nSubject: Re: your answer\r\n" +
		"Message-ID: <t2@example.com>\r\nIn-Reply-To: <t1@example.com>\r\nReferences: <t1@example.com>\r\n\r\n" +
		"Now the app shows an error and crashes.\r\n"
	res2, err := p.Process(t.Context(), []byte(reply), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionCreated, res2.Outcome.Action, "a new linked case")
	require.NotNil(t, res2.Outcome.Thread)
	require.Equal(t, mailcase.ThreadNewLinked, res2.Outcome.Thread.Action)
	route := res2.Outcome.Route
	assert.Equal(t, "billing", route.Queue)
	assert.Equal(t, "thread:"+res.Outcome.CaseNumber, route.Rule)
	assert.Contains(t, route.Fired, "keywords:technical", "the keywords matched but the thread decided")
}
