package outbox_test

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

type event struct {
	kind string
	id   mailcase.CaseID
	data map[string]any
}

type replyRig struct {
	s      *mailcase.Store
	mailer *outbox.Mailer
	c      mailcase.Case
	mu     sync.Mutex
	events []event
}

func newReplyRig(t *testing.T) *replyRig {
	t.Helper()
	ctx := t.Context()
	r := &replyRig{}
	s, err := memstore.OpenStore(&memstore.Options{Store: &mailcase.StoreOptions{Worklist: &mailcase.WorklistOptions{
		OnEvent: func(_ context.Context, kind string, id driver.CaseID, data map[string]any) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, event{kind, id, data})
		}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	r.s = s
	key, domain := []byte("reply-test-key-0123456789abcdef012"), "company.example"
	codec, err := threading.NewCodec(key, domain)
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "tier1"}})
	require.NoError(t, err)
	r.mailer, err = outbox.NewMailer(s, &outbox.MailerOptions{From: mail.Address{Name: "Support", Address: "support@company.example"}, Codec: codec})
	require.NoError(t, err)
	require.NoError(t, s.CreateQueue(ctx, &mailcase.GroupQueue{Name: "tier1", Members: []string{"bob@company.example", "amy@company.example"}}))
	res, err := p.Process(ctx, inbound("first@customer.example", "ann@customer.example", "Printer jams"), nil)
	require.NoError(t, err)
	var ok bool
	r.c, ok, err = s.GetCase(ctx, res.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "tier1", r.c.Queue, "the pipeline routes to the group queue")
	require.Empty(t, r.c.Owner, "the pipeline never gives a case to a person")
	return r
}

func (r *replyRig) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.kind)
	}
	return out
}

var bob = mailcase.Employee{Name: "Bob Agent", Email: "bob@company.example"}

func TestReplyFromItem_OnlyTheOwner(t *testing.T) {
	r := newReplyRig(t)
	ctx := t.Context()
	_, err := r.mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k1", Case: r.c.ID, Agent: bob, Body: "Hello"})
	require.Error(t, err, "an unowned item: nobody may reply")
	assert.Equal(t, mailcase.PermissionDenied, mailcase.Code(err))
	assert.True(t, errors.Is(err, mailcase.ErrNotOwner))
	_, err = r.s.AcceptWorkItem(ctx, r.c.ID, "amy@company.example")
	require.NoError(t, err)
	_, err = r.mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k1", Case: r.c.ID, Agent: bob, Body: "Hello"})
	assert.Equal(t, mailcase.PermissionDenied, mailcase.Code(err), "a member who is not the owner")
	queued, err := r.s.ListOutbox(ctx, &driver.OutboxListOptions{CaseID: r.c.ID})
	require.NoError(t, err)
	assert.Empty(t, queued, "a refused reply queues nothing")
	it, _, err := r.s.GetWorkItem(ctx, r.c.ID)
	require.NoError(t, err)
	assert.True(t, it.MailOpen)
	assert.NotContains(t, r.kinds(), mailcase.EventReplyQueued)
}

func TestReplyFromItem_FreeTextAndTemplate(t *testing.T) {
	r := newReplyRig(t)
	ctx := t.Context()
	_, err := r.s.AcceptWorkItem(ctx, r.c.ID, bob.Email)
	require.NoError(t, err)
	_, err = r.s.SetWorkItemStatus(ctx, r.c.ID, bob.Email, mailcase.StatusClosed)
	assert.Equal(t, mailcase.FailedPrecondition, mailcase.Code(err), "closing while the customer's mail is open")

	id, err := r.mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k1", Case: r.c.ID, Agent: bob, Body: "We replaced the drum."})
	require.NoError(t, err)
	m, ok, err := r.s.GetOutbox(ctx, id)
	require.NoError(t, err)
	require.True(t, ok)
	raw := string(m.Raw)
	assert.Contains(t, raw, "In-Reply-To: <first@customer.example>", "threaded like a Log Email")
	assert.Contains(t, raw, "We replaced the drum.")
	assert.Equal(t, []string{"ann@customer.example"}, m.To)
	again, err := r.mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k1", Case: r.c.ID, Agent: bob, Body: "We replaced the drum."})
	require.NoError(t, err)
	assert.Equal(t, id, again, "the same key queues once")

	tpl, err := outbox.ParseTemplate("drum", outbox.TemplateSource{Subject: "Drum for case {{.Case.Number}}",
		Text: "Dear customer,\n{{.Body}}\nRegards, {{.Agent.Name}} ({{.Queue}})"})
	require.NoError(t, err)
	id2, err := r.mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k2", Case: r.c.ID, Agent: bob, Template: tpl, Body: "It ships today."})
	require.NoError(t, err)
	m2, _, err := r.s.GetOutbox(ctx, id2)
	require.NoError(t, err)
	raw2 := strings.ReplaceAll(string(m2.Raw), "\r\n", "\n")
	assert.Contains(t, raw2, "Dear customer,\nIt ships today.\nRegards, Bob Agent (tier1)")
	assert.Contains(t, raw2, "Drum for case "+r.c.Number)

	_, err = r.s.SetWorkItemStatus(ctx, r.c.ID, bob.Email, mailcase.StatusClosed)
	require.NoError(t, err, "the reply closed the mail, so the item can close")
	assert.Equal(t, []string{mailcase.EventCaseAccepted, mailcase.EventCaseStatusChanged, mailcase.EventReplyQueued,
		mailcase.EventReplyQueued, mailcase.EventReplyQueued, mailcase.EventCaseStatusChanged}, r.kinds())
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, map[string]any{"kind": "worklist-reply", "outbox_id": id}, r.events[2].data)
	assert.Equal(t, map[string]any{"previous_status": "in_progress", "status": "closed"}, r.events[5].data)
}

// The owner is checked when the reply is queued, in one step with the
// queueing: an ownership change by someone else after the first check
// (here while the reply is composed) refuses the reply, and nothing is
// queued or filed.
func TestReplyFromItem_OwnerChangesWhileComposing(t *testing.T) {
	r := newReplyRig(t)
	ctx := t.Context()
	_, err := r.s.AcceptWorkItem(ctx, r.c.ID, bob.Email)
	require.NoError(t, err)
	key, domain := []byte("reply-test-key-0123456789abcdef012"), "company.example"
	codec, err := threading.NewCodec(key, domain)
	require.NoError(t, err)
	var once sync.Once
	mailer, err := outbox.NewMailer(r.s, &outbox.MailerOptions{From: mail.Address{Name: "Support", Address: "support@company.example"}, Codec: codec,
		Now: func() time.Time {
			once.Do(func() { // bob's item goes to amy while bob's reply is composed
				_, err := r.s.ReleaseWorkItem(ctx, r.c.ID, bob.Email)
				require.NoError(t, err)
				_, err = r.s.AcceptWorkItem(ctx, r.c.ID, "amy@company.example")
				require.NoError(t, err)
			})
			return time.Now()
		}})
	require.NoError(t, err)
	_, err = mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k1", Case: r.c.ID, Agent: bob, Body: "Hello"})
	require.Error(t, err, "bob no longer owns the item when his reply is queued")
	assert.Equal(t, mailcase.PermissionDenied, mailcase.Code(err))
	assert.True(t, errors.Is(err, mailcase.ErrNotOwner))
	queued, err := r.s.ListOutbox(ctx, &driver.OutboxListOptions{CaseID: r.c.ID})
	require.NoError(t, err)
	assert.Empty(t, queued, "the refused reply is not queued")
	it, _, err := r.s.GetWorkItem(ctx, r.c.ID)
	require.NoError(t, err)
	assert.True(t, it.MailOpen, "nor filed on the case")
	assert.Equal(t, "amy@company.example", it.Owner)
	assert.NotContains(t, r.kinds(), mailcase.EventReplyQueued)
	// Amy, the owner now, replies.
	id, err := mailer.ReplyFromItem(ctx, &outbox.ItemReply{Key: "k2", Case: r.c.ID, Agent: mailcase.Employee{Email: "amy@company.example"}, Body: "Hello"})
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	it, _, err = r.s.GetWorkItem(ctx, r.c.ID)
	require.NoError(t, err)
	assert.False(t, it.MailOpen, "amy's reply is filed")
}

// failingFile is the store's own driver whose AppendEmail fails while
// fail is positive: the reply is queued, then its filing fails.
type failingFile struct {
	driver.CaseStore
	driver.Lister
	driver.Outbox
	driver.Queues
	driver.Worklist
	driver.WorkItemOutbox
	fail int
}

func (f *failingFile) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("store unavailable")
	}
	return f.CaseStore.AppendEmail(ctx, id, e)
}

// A reply queued whose filing failed: the call repeated with its key files
// the mail that was queued (its Message-ID), and queues nothing more.
func TestReplyFromItem_RepeatAfterFailedFiling(t *testing.T) {
	r := newReplyRig(t)
	ctx := t.Context()
	_, err := r.s.AcceptWorkItem(ctx, r.c.ID, bob.Email)
	require.NoError(t, err)
	d := r.s.Driver()
	ff := &failingFile{CaseStore: d, Lister: d.(driver.Lister), Outbox: d.(driver.Outbox), Queues: d.(driver.Queues),
		Worklist: d.(driver.Worklist), WorkItemOutbox: d.(driver.WorkItemOutbox), fail: 1}
	s := mailcase.NewStore(ff, &mailcase.StoreOptions{MaxAttempts: -1})
	require.True(t, s.CanEnqueueAsOwner())
	codec, err := threading.NewCodec([]byte("reply-test-key-0123456789abcdef012"), "company.example")
	require.NoError(t, err)
	mailer, err := outbox.NewMailer(s, &outbox.MailerOptions{From: mail.Address{Address: "support@company.example"}, Codec: codec})
	require.NoError(t, err)
	reply := &outbox.ItemReply{Key: "k1", Case: r.c.ID, Agent: bob, Body: "Hello"}
	_, err = mailer.ReplyFromItem(ctx, reply)
	require.Error(t, err, "the filing failed")
	queued, err := r.s.ListOutbox(ctx, &driver.OutboxListOptions{CaseID: r.c.ID})
	require.NoError(t, err)
	require.Len(t, queued, 1, "queued before the filing")

	id, err := mailer.ReplyFromItem(ctx, reply)
	require.NoError(t, err)
	assert.Equal(t, queued[0].ID, id)
	again, err := r.s.ListOutbox(ctx, &driver.OutboxListOptions{CaseID: r.c.ID})
	require.NoError(t, err)
	assert.Len(t, again, 1, "queued once")
	ins, err := r.s.ListInteractions(ctx, r.c.ID)
	require.NoError(t, err)
	var filed []string
	for _, in := range ins {
		if in.Email != nil && in.Email.Direction == driver.Outbound {
			filed = append(filed, in.Email.MessageID)
		}
	}
	assert.Equal(t, []string{queued[0].MessageID}, filed, "the mail filed is the mail queued")
}
