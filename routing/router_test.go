package routing_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/routing"
)

// compile parses a YAML configuration and compiles it.
func compile(t *testing.T, yaml string, opts *routing.Options) *routing.Router {
	t.Helper()
	cfg, err := routing.ParseConfig("rules.yaml", []byte(yaml))
	require.NoError(t, err)
	r, err := routing.Compile(cfg, opts)
	require.NoError(t, err)
	return r
}

// mail is a delivery of a mail from from to to with subject and body.
type mail struct {
	from, subject, body string
	to, cc              []string
	mailbox             *mailcase.Mailbox
	sender              mailcase.SenderMatch
	thread              mailcase.ThreadDecision
}

func (m mail) delivery() *mailcase.Delivery {
	msg := &mailcase.Message{
		From:    mailcase.Address{Email: mailcase.NormalizeAddress(m.from)},
		Subject: m.subject, Text: m.body, ReplyText: m.body,
	}
	for _, a := range m.to {
		msg.To = append(msg.To, mailcase.Address{Email: mailcase.NormalizeAddress(a)})
	}
	for _, a := range m.cc {
		msg.Cc = append(msg.Cc, mailcase.Address{Email: mailcase.NormalizeAddress(a)})
	}
	mb := m.mailbox
	if mb == nil {
		mb = &mailcase.Mailbox{Name: "support", Address: "support@company.example"}
	}
	return &mailcase.Delivery{Mailbox: mb, Message: msg, Sender: m.sender, Thread: m.thread}
}

func route(t *testing.T, r *routing.Router, m mail) mailcase.Route {
	t.Helper()
	got, err := r.Route(t.Context(), m.delivery())
	require.NoError(t, err)
	return got
}

const queuesYAML = `
queues: [general, billing, technical, shipping, accounts, vip, escalations]
default_queue: general
`

func TestRoute_Default(t *testing.T) {
	r := compile(t, queuesYAML, nil)
	got := route(t, r, mail{from: "a@example.com", subject: "Hello"})
	assert.Equal(t, mailcase.Route{Queue: "general", Rule: "default",
		Reason: `queue "general" by default (no rule chose a queue: configuration default queue)`}, got)

	got = route(t, r, mail{from: "a@example.com", mailbox: &mailcase.Mailbox{Name: "sales", DefaultQueue: "sales-inbox"}})
	assert.Equal(t, "sales-inbox", got.Queue)
	assert.Equal(t, `queue "sales-inbox" by default (no rule chose a queue: default queue of mailbox sales)`, got.Reason)
}

func TestRoute_Bypass(t *testing.T) {
	r := compile(t, queuesYAML+`
senders:
  - domain: example.com
    queue: vip
keywords:
  sets:
    - queue: billing
      words: [invoice]
`, nil)
	mb := &mailcase.Mailbox{Name: "legal", DefaultQueue: "escalations", Bypass: true}
	got := route(t, r, mail{from: "a@example.com", subject: "invoice", mailbox: mb})
	assert.Equal(t, mailcase.Route{Queue: "escalations", Rule: "bypass", Fired: []string{"bypass"},
		Reason: "mailbox legal bypasses routing: queue escalations (default queue of mailbox legal)"}, got)
}

func TestRoute_RoutingAddress(t *testing.T) {
	r := compile(t, queuesYAML+`
addresses:
  - address: Billing@Company.example
    queue: billing
    origin: Email - Billing
    priority: normal
  - name: support-line
    address: support@company.example
    origin: Email - Support
    priority: low
  - address: vip@company.example
    queue: vip
    priority: high
`, nil)
	tests := []struct {
		name      string
		m         mail
		wantQueue string
		wantPrio  mailcase.Priority
		wantOrig  string
		wantFired []string
	}{
		{name: "mailbox address only", m: mail{from: "c@x.example", to: []string{"someone@else.example"}},
			wantQueue: "general", wantPrio: "low", wantOrig: "Email - Support", wantFired: []string{"address:support-line"}},
		{name: "recipient alias before mailbox address", m: mail{from: "c@x.example", to: []string{"billing@company.example"}},
			wantQueue: "billing", wantPrio: "normal", wantOrig: "Email - Billing",
			wantFired: []string{"address:billing@company.example", "address:support-line"}},
		{name: "to before cc", m: mail{from: "c@x.example", to: []string{"vip@company.example"}, cc: []string{"billing@company.example"}},
			wantQueue: "vip", wantPrio: "high", wantOrig: "Email - Billing",
			wantFired: []string{"address:vip@company.example", "address:billing@company.example", "address:support-line"}},
		{name: "no mailbox address", m: mail{from: "c@x.example", mailbox: &mailcase.Mailbox{Name: "m"}},
			wantQueue: "general"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := route(t, r, tc.m)
			assert.Equal(t, tc.wantQueue, got.Queue)
			assert.Equal(t, tc.wantPrio, got.Priority)
			assert.Equal(t, tc.wantOrig, got.Origin)
			assert.Equal(t, tc.wantFired, got.Fired)
		})
	}
}

func TestRoute_Senders(t *testing.T) {
	r := compile(t, queuesYAML+`
senders:
  - address: ceo@bigcorp.example
    priority: urgent
  - domain: bigcorp.example
    queue: vip
    category: key-account
  - domain: eu.bigcorp.example
    queue: escalations
  - name: importantcustomer
    domain: "@ImportantCustomer.com"
    queue: vip
`, nil)
	tests := []struct {
		name      string
		from      string
		wantQueue string
		wantPrio  mailcase.Priority
		wantRule  string
		wantFired []string
	}{
		{name: "address then domain", from: "CEO@bigcorp.example", wantQueue: "vip", wantPrio: "urgent", wantRule: "domain:bigcorp.example",
			wantFired: []string{"sender:ceo@bigcorp.example", "domain:bigcorp.example"}},
		{name: "subdomain most specific first", from: "x@eu.bigcorp.example", wantQueue: "escalations", wantRule: "domain:eu.bigcorp.example",
			wantFired: []string{"domain:eu.bigcorp.example", "domain:bigcorp.example"}},
		{name: "deep subdomain", from: "x@mail.importantcustomer.com", wantQueue: "vip", wantRule: "domain:importantcustomer",
			wantFired: []string{"domain:importantcustomer"}},
		{name: "look-alike domain does not match", from: "x@notbigcorp.example", wantQueue: "general", wantRule: "default"},
		{name: "no sender", from: "", wantQueue: "general", wantRule: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := route(t, r, mail{from: tc.from})
			assert.Equal(t, tc.wantQueue, got.Queue)
			assert.Equal(t, tc.wantPrio, got.Priority)
			assert.Equal(t, tc.wantRule, got.Rule)
			assert.Equal(t, tc.wantFired, got.Fired)
		})
	}
	got := route(t, r, mail{from: "ceo@bigcorp.example"})
	assert.Equal(t, `queue "vip" by domain:bigcorp.example (sender domain bigcorp.example is in bigcorp.example); `+
		`priority "urgent" by sender:ceo@bigcorp.example (sender ceo@bigcorp.example); `+
		`category "key-account" by domain:bigcorp.example (sender domain bigcorp.example is in bigcorp.example)`, got.Reason)
}

func TestRoute_Thread(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	old, err := store.CreateCase(t.Context(), &mailcase.NewCase{Subject: "Invoice", Queue: "billing",
		First: &mailcase.Email{IdempotencyKey: "k1", Mailbox: "support", Direction: mailcase.Inbound, MessageID: "m1@x",
			From: mailcase.Address{Email: "c@x.example"}, Subject: "Invoice", Text: "hi"}})
	require.NoError(t, err)
	gone, err := store.CreateCase(t.Context(), &mailcase.NewCase{Subject: "Old", Queue: "retired-queue",
		First: &mailcase.Email{IdempotencyKey: "k2", Mailbox: "support", Direction: mailcase.Inbound, MessageID: "m2@x",
			From: mailcase.Address{Email: "c@x.example"}, Subject: "Old", Text: "hi"}})
	require.NoError(t, err)

	cfg := queuesYAML + `
senders:
  - domain: x.example
    queue: vip
    priority: high
`
	r := compile(t, cfg, &routing.Options{Cases: store})
	linked := mailcase.ThreadDecision{Action: mailcase.ThreadNewLinked, CaseID: old.ID}
	got := route(t, r, mail{from: "c@x.example", thread: linked})
	assert.Equal(t, "billing", got.Queue, "the reply follows the old case's queue before sender rules")
	assert.Equal(t, mailcase.PriorityHigh, got.Priority)
	assert.Equal(t, "thread:"+old.Number, got.Rule)
	assert.Equal(t, []string{"thread:" + old.Number, "domain:x.example"}, got.Fired)
	assert.Contains(t, got.Reason, `queue "billing" by thread:`+old.Number+` (reply to case `+old.Number+`, which is in queue billing)`)

	got = route(t, r, mail{from: "c@x.example", thread: mailcase.ThreadDecision{Action: mailcase.ThreadNewLinked, CaseID: gone.ID}})
	assert.Equal(t, "vip", got.Queue)
	assert.Contains(t, got.Reason, `threaded case `+gone.Number+` is in undeclared queue "retired-queue", not followed`)

	got = route(t, r, mail{from: "c@x.example", thread: mailcase.ThreadDecision{Action: mailcase.ThreadNewLinked, CaseID: "nope"}})
	assert.Equal(t, "vip", got.Queue)
	assert.Contains(t, got.Reason, "threaded case nope not found")

	off := compile(t, cfg+"follow_thread: false\n", &routing.Options{Cases: store})
	got = route(t, off, mail{from: "c@x.example", thread: linked})
	assert.Equal(t, "vip", got.Queue)

	failing := compile(t, cfg, &routing.Options{Cases: caseGetterFunc(func(context.Context, mailcase.CaseID) (mailcase.Case, bool, error) {
		return mailcase.Case{}, false, errors.New("store down")
	})})
	_, err = failing.Route(t.Context(), mail{from: "c@x.example", thread: linked}.delivery())
	require.EqualError(t, err, "routing: look up threaded case "+string(old.ID)+": store down")
}

type caseGetterFunc func(context.Context, mailcase.CaseID) (mailcase.Case, bool, error)

func (f caseGetterFunc) GetCase(ctx context.Context, id mailcase.CaseID) (mailcase.Case, bool, error) {
	return f(ctx, id)
}

func TestRoute_Customer(t *testing.T) {
	cfg := queuesYAML + `
customers:
  - support_level: Gold
    priority: high
  - support_level: platinum
    queue: vip
    priority: urgent
`
	var seen []routing.Customer
	hook := func(_ context.Context, c routing.Customer) (routing.Effect, error) {
		seen = append(seen, c)
		switch {
		case c.Account != nil && c.Account.ID == "acc-tech":
			return routing.Effect{Queue: "technical", Category: "tech-account"}, nil
		case c.Account != nil && c.Account.ID == "acc-bad":
			return routing.Effect{Queue: "jane.doe", Priority: "whenever"}, nil
		case c.Account != nil && c.Account.ID == "acc-err":
			return routing.Effect{}, errors.New("crm unavailable")
		}
		return routing.Effect{}, nil
	}
	r := compile(t, cfg, &routing.Options{CustomerHook: hook})
	contact := func(level, account, accLevel string) mailcase.SenderMatch {
		m := mailcase.SenderMatch{Kind: mailcase.SenderContact, Contact: &mailcase.Contact{ID: "c1", SupportLevel: level, AccountID: account}}
		if account != "" {
			m.Account = &mailcase.Account{ID: account, SupportLevel: accLevel}
		}
		return m
	}
	tests := []struct {
		name      string
		sender    mailcase.SenderMatch
		wantQueue string
		wantPrio  mailcase.Priority
		wantFired []string
	}{
		{name: "contact level", sender: contact("gold", "", ""), wantQueue: "general", wantPrio: "high", wantFired: []string{"customer:gold"}},
		{name: "account level when contact has none", sender: contact("", "acc1", "PLATINUM"), wantQueue: "vip", wantPrio: "urgent", wantFired: []string{"customer:platinum"}},
		{name: "contact level wins over account", sender: contact("gold", "acc1", "platinum"), wantQueue: "general", wantPrio: "high", wantFired: []string{"customer:gold"}},
		{name: "account match", sender: mailcase.SenderMatch{Kind: mailcase.SenderAccount, Account: &mailcase.Account{ID: "a", SupportLevel: "gold"}},
			wantQueue: "general", wantPrio: "high", wantFired: []string{"customer:gold"}},
		{name: "hook before level rules", sender: contact("platinum", "acc-tech", ""), wantQueue: "technical", wantPrio: "urgent",
			wantFired: []string{"customer:hook", "customer:platinum"}},
		{name: "employee is no customer", sender: mailcase.SenderMatch{Kind: mailcase.SenderEmployee, Employee: &mailcase.Employee{ID: "e"}}, wantQueue: "general"},
		{name: "unknown sender", sender: mailcase.SenderMatch{Kind: mailcase.SenderUnknown}, wantQueue: "general"},
		{name: "unknown level", sender: contact("bronze", "", ""), wantQueue: "general"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := route(t, r, mail{from: "c@x.example", sender: tc.sender})
			assert.Equal(t, tc.wantQueue, got.Queue)
			assert.Equal(t, tc.wantPrio, got.Priority)
			assert.Equal(t, tc.wantFired, got.Fired)
		})
	}
	require.NotEmpty(t, seen)
	assert.Equal(t, "gold", seen[0].SupportLevel)

	got := route(t, r, mail{from: "c@x.example", sender: contact("", "acc-bad", "")})
	assert.Equal(t, "general", got.Queue, "a hook cannot route to an undeclared queue (a person)")
	assert.Empty(t, got.Priority)
	assert.Contains(t, got.Reason, `customer hook returned undeclared queue "jane.doe", ignored`)
	assert.Contains(t, got.Reason, `customer hook returned invalid priority "whenever", ignored`)

	_, err := r.Route(t.Context(), mail{from: "c@x.example", sender: contact("", "acc-err", "")}.delivery())
	require.EqualError(t, err, "routing: customer hook: crm unavailable")
}

func TestRoute_ClassifierActions(t *testing.T) {
	cfg := queuesYAML + `
classifier:
  actions:
    - name: refunds
      intent: billing
      min_confidence: 0.7
      rank: 5
      queue: billing
    - name: angry-billing
      intent: billing
      min_confidence: 0.9
      rank: 10
      priority: high
      queue: escalations
    - intent: technical
      min_confidence: 0.5
      queue: technical
      category: tech
`
	preds := []routing.Prediction{}
	var docs []routing.Document
	cl := routing.ClassifierFunc(func(_ context.Context, d routing.Document) ([]routing.Prediction, error) {
		docs = append(docs, d)
		return preds, nil
	})
	r := compile(t, cfg, &routing.Options{Classifier: cl})
	tests := []struct {
		name      string
		preds     []routing.Prediction
		wantQueue string
		wantPrio  mailcase.Priority
		wantCat   string
		wantFired []string
		reason    string
	}{
		{name: "highest rank eligible runs", preds: []routing.Prediction{{"billing", 0.95}, {"technical", 0.05}},
			wantQueue: "escalations", wantPrio: "high", wantCat: "billing", wantFired: []string{"classifier:angry-billing"},
			reason: "lower-ranked eligible actions not run: classifier:refunds"},
		{name: "below min confidence of the higher rank", preds: []routing.Prediction{{"billing", 0.8}, {"technical", 0.2}},
			wantQueue: "billing", wantCat: "billing", wantFired: []string{"classifier:refunds"},
			reason: "classifier predicts billing with confidence 0.80 (min 0.70, rank 5)"},
		{name: "second prediction eligible", preds: []routing.Prediction{{"shipping", 0.45}, {"technical", 0.55}},
			wantQueue: "technical", wantCat: "tech", wantFired: []string{"classifier:technical"}},
		{name: "nothing eligible", preds: []routing.Prediction{{"billing", 0.6}, {"technical", 0.4}},
			wantQueue: "general", reason: "classifier: billing 0.60, technical 0.40"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			preds = tc.preds
			got := route(t, r, mail{from: "c@x.example", subject: "S", body: "B"})
			assert.Equal(t, tc.wantQueue, got.Queue)
			assert.Equal(t, tc.wantPrio, got.Priority)
			assert.Equal(t, tc.wantCat, got.Category)
			assert.Equal(t, tc.wantFired, got.Fired)
			assert.Contains(t, got.Reason, tc.reason)
		})
	}
	assert.Equal(t, routing.Document{Subject: "S", Body: "B"}, docs[0])

	failing := compile(t, cfg, &routing.Options{Classifier: routing.ClassifierFunc(func(context.Context, routing.Document) ([]routing.Prediction, error) {
		return nil, errors.New("nlp timeout")
	})})
	_, err := failing.Route(t.Context(), mail{from: "c@x.example"}.delivery())
	require.EqualError(t, err, "routing: classifier: nlp timeout")
}

func TestRoute_TrainedClassifier(t *testing.T) {
	nb, err := routing.Train(labelled(200, 11), nil)
	require.NoError(t, err)
	r := compile(t, queuesYAML+`
classifier:
  actions:
    - {intent: billing, min_confidence: 0.6, queue: billing}
    - {intent: technical, min_confidence: 0.6, queue: technical}
    - {intent: shipping, min_confidence: 0.6, queue: shipping}
    - {intent: account, min_confidence: 0.6, queue: accounts}
`, &routing.Options{Classifier: nb})
	got := route(t, r, mail{from: "c@x.example", subject: "Where is my parcel?",
		body: "The tracking page has not updated since Monday and the courier does not answer."})
	assert.Equal(t, "shipping", got.Queue)
	assert.Equal(t, "classifier:shipping", got.Rule)
	got = route(t, r, mail{from: "c@x.example", subject: "Locked out",
		body: "I cannot log in since I changed my password, the reset link has expired."})
	assert.Equal(t, "accounts", got.Queue)
}

// TestRoute_Order checks the documented evaluation order with a mail that
// matches a rule of every stage.
func TestRoute_Order(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	old, err := store.CreateCase(t.Context(), &mailcase.NewCase{Subject: "x", Queue: "shipping",
		First: &mailcase.Email{IdempotencyKey: "k", Mailbox: "support", Direction: mailcase.Inbound, MessageID: "m@x",
			From: mailcase.Address{Email: "c@bigcorp.example"}, Subject: "x", Text: "x"}})
	require.NoError(t, err)
	cfg := queuesYAML + `
addresses:
  - address: billing@company.example
    queue: billing
    priority: low
    origin: Email - Billing
    category: from-address
senders:
  - address: c@bigcorp.example
    priority: urgent
  - domain: bigcorp.example
    queue: vip
customers:
  - support_level: gold
    priority: high
    category: gold-customer
classifier:
  actions:
    - intent: technical
      queue: technical
keywords:
  sets:
    - queue: accounts
      category: login
      words: [password]
`
	cl := routing.ClassifierFunc(func(context.Context, routing.Document) ([]routing.Prediction, error) {
		return []routing.Prediction{{Category: "technical", Confidence: 1}}, nil
	})
	m := mail{from: "c@bigcorp.example", to: []string{"billing@company.example"}, subject: "password",
		sender: mailcase.SenderMatch{Kind: mailcase.SenderContact, Contact: &mailcase.Contact{ID: "c", SupportLevel: "gold"}},
		thread: mailcase.ThreadDecision{Action: mailcase.ThreadNewLinked, CaseID: old.ID}}
	r := compile(t, cfg, &routing.Options{Cases: store, Classifier: cl})
	got := route(t, r, m)
	want := []string{"thread:" + old.Number, "sender:c@bigcorp.example", "domain:bigcorp.example", "customer:gold",
		"classifier:technical", "keywords:accounts", "address:billing@company.example"}
	assert.Equal(t, want, got.Fired)
	assert.Equal(t, "shipping", got.Queue)
	assert.Equal(t, mailcase.PriorityUrgent, got.Priority)
	assert.Equal(t, "gold-customer", got.Category)
	assert.Equal(t, "Email - Billing", got.Origin)
	assert.Equal(t, "thread:"+old.Number, got.Rule)
	assert.Contains(t, got.Reason, "also matched, overridden by earlier rules: domain:bigcorp.example, classifier:technical, keywords:accounts")

	// Without the thread and sender rules the next stages decide.
	m.thread, m.from = mailcase.ThreadDecision{Action: mailcase.ThreadNew}, "c@other.example"
	got = route(t, r, m)
	assert.Equal(t, []string{"customer:gold", "classifier:technical", "keywords:accounts", "address:billing@company.example"}, got.Fired)
	assert.Equal(t, "technical", got.Queue)
	assert.Equal(t, mailcase.PriorityHigh, got.Priority)
}

func TestRoute_NoMessage(t *testing.T) {
	r := compile(t, queuesYAML, nil)
	_, err := r.Route(t.Context(), &mailcase.Delivery{})
	require.EqualError(t, err, "routing: delivery without a message")
	_, err = r.Route(t.Context(), nil)
	require.Error(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = r.Route(ctx, mail{}.delivery())
	require.ErrorIs(t, err, context.Canceled)
}

func TestRoute_Concurrent(t *testing.T) {
	r := compile(t, queuesYAML+`
keywords:
  sets:
    - queue: billing
      words: [invoice, refund*]
    - queue: technical
      words: [error, crash]
`, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				m := mail{from: "c@x.example", subject: "invoice refunded", body: "error"}
				want := "billing"
				if i%2 == 1 {
					m.subject, want = "crash", "technical"
				}
				got, err := r.Route(t.Context(), m.delivery())
				if !assert.NoError(t, err) || !assert.Equal(t, want, got.Queue) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestRoute_Queues(t *testing.T) {
	r := compile(t, queuesYAML, nil)
	assert.Equal(t, []string{"general", "billing", "technical", "shipping", "accounts", "vip", "escalations"}, r.Queues())
}
