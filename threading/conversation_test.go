package threading_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/filesource"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/threading"
)

// conversationKey is the HMAC key the agent's reply in
// testdata/conversation was signed with (see its README).
var conversationKey = []byte("emailcrm-conversation-demo-key-0001")

const conversationDir = "testdata/conversation"

func conversationPipeline(t *testing.T, store *mailcase.Store, onResult func(context.Context, *mailcase.Result)) *mailcase.Pipeline {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	res, err := threading.NewResolver(store, &threading.Options{Key: conversationKey, Domain: "company.example", Logger: quiet})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(store, &mailcase.Options{
		Mailbox:   mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Threads:   res,
		Extractor: threading.NewExtractor(nil),
		Logger:    quiet,
		OnResult:  onResult,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestConversationReplay replays testdata/conversation in name order, as
// `mailcase import` does, and checks which mail landed on which case: the
// customer's mail opens a case; the agent's reply (threaded by the
// customer's Message-ID) carries our signed Message-ID; the customer's
// reply threads by that signed ID; a stranger quoting the case number in
// the subject opens a new case (anti-hijack); an auto-reply is filed on the
// case without reopening anything.
func TestConversationReplay(t *testing.T) {
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(conversationDir, "*.eml"))
	require.NoError(t, err)
	require.Len(t, files, 5)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600))
	}
	store, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	var mu sync.Mutex
	byID := map[string]*mailcase.Result{}
	var order []string
	p := conversationPipeline(t, store, func(_ context.Context, r *mailcase.Result) {
		mu.Lock()
		defer mu.Unlock()
		require.NotNil(t, r.Message)
		byID[r.Message.ID] = r
		order = append(order, r.Message.ID)
	})
	src, err := filesource.OpenDir(dir, &filesource.Options{Quiet: true, OnDone: filesource.Keep, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close() })
	require.NoError(t, p.Run(t.Context(), src))

	require.Equal(t, []string{"c1@customer.example", agentMessageID(t), "c2@customer.example", "h1@attacker.example", "ar1@customer.example"}, order, "name order")
	first := byID["c1@customer.example"]
	require.Equal(t, mailcase.ActionCreated, first.Outcome.Action)
	caseID := first.Outcome.CaseID
	require.NotEmpty(t, caseID)

	// The agent's Message-ID was signed for the case the first mail opened.
	codec, err := threading.NewCodec(conversationKey, "company.example")
	require.NoError(t, err)
	signedFor, ok := codec.ParseMessageID(agentMessageID(t))
	require.True(t, ok)
	require.Equal(t, caseID, signedFor, "testdata/conversation/02 was generated for another case ID; regenerate it (see README)")

	tests := []struct {
		id     string
		action mailcase.Action
		signal string
		onCase bool
		reply  string
	}{
		{id: agentMessageID(t), action: mailcase.ActionAppended, signal: threading.SignalMessageIDStore, onCase: true,
			reply: "Hello Alice,\n\na technician will come tomorrow morning. Is the printer in room 3?\n\nBest regards,\nAnna, Support"},
		{id: "c2@customer.example", action: mailcase.ActionAppended, signal: threading.SignalMessageIDSigned, onCase: true,
			reply: "Yes, room 3, second floor. Thank you!\n\nAlice"},
		{id: "h1@attacker.example", action: mailcase.ActionCreated},
		{id: "ar1@customer.example", signal: threading.SignalMessageIDSigned, onCase: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r := byID[tt.id]
			require.NotNil(t, r)
			require.NotNil(t, r.Outcome.Thread)
			if tt.action != "" {
				assert.Equal(t, tt.action, r.Outcome.Action)
			}
			if tt.signal != "" {
				assert.Equal(t, tt.signal, r.Outcome.Thread.Signal)
			}
			if tt.onCase {
				assert.Equal(t, caseID, r.Outcome.CaseID)
			} else {
				assert.NotEqual(t, caseID, r.Outcome.CaseID)
				assert.Contains(t, r.Outcome.Thread.Reason, "anti-hijack")
			}
			if tt.reply != "" {
				assert.Equal(t, tt.reply, r.Message.ReplyText)
			}
		})
	}
	ar := byID["ar1@customer.example"]
	assert.NotEqual(t, mailcase.ActionReopened, ar.Outcome.Action)
	assert.True(t, ar.Outcome.Auto.IsAuto)

	// What `mailcase cases` shows: which mails landed on which case.
	cases, err := store.ListCases(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, cases, 2)
	got := map[mailcase.CaseID][]string{}
	for _, c := range cases {
		ins, err := store.ListInteractions(t.Context(), c.ID)
		require.NoError(t, err)
		for _, in := range ins {
			if in.Email != nil {
				got[c.ID] = append(got[c.ID], in.Email.MessageID)
			}
		}
	}
	assert.Equal(t, []string{"c1@customer.example", agentMessageID(t), "c2@customer.example", "ar1@customer.example"}, got[caseID])
	assert.Equal(t, []string{"h1@attacker.example"}, got[byID["h1@attacker.example"].Outcome.CaseID])
}

func agentMessageID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(conversationDir, "02-agent-reply.eml"))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Message-ID:"); ok {
			return mailcase.NormalizeMessageID(v)
		}
	}
	t.Fatal("no Message-ID in 02-agent-reply.eml")
	return ""
}

// TestWriteConversation regenerates testdata/conversation/02 and 03, whose
// Message-IDs, token and context line come from the outgoing helpers for
// the case the first mail opens. It runs only with
// THREADING_WRITE_CONVERSATION=1.
func TestWriteConversation(t *testing.T) {
	if os.Getenv("THREADING_WRITE_CONVERSATION") != "1" {
		t.Skip("set THREADING_WRITE_CONVERSATION=1 to regenerate testdata/conversation")
	}
	store, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	p := conversationPipeline(t, store, nil)
	raw, err := os.ReadFile(filepath.Join(conversationDir, "01-customer.eml"))
	require.NoError(t, err)
	r, err := p.Process(t.Context(), raw, nil)
	require.NoError(t, err)
	c, ok, err := store.GetCase(t.Context(), r.Outcome.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	codec, err := threading.NewCodec(conversationKey, "company.example")
	require.NoError(t, err)
	h, err := codec.Outgoing(&threading.OutgoingRequest{Case: c, Parent: r.Message})
	require.NoError(t, err)
	agent := fmt.Sprintf("From: Anna Support <support@company.example>\r\nTo: Alice <alice@customer.example>\r\n"+
		"Subject: %s\r\nDate: Tue, 05 Mar 2024 10:15:00 +0100\r\nMessage-ID: %s\r\nIn-Reply-To: %s\r\nReferences: %s\r\n"+
		"Thread-Index: %s\r\nThread-Topic: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Hello Alice,\r\n\r\na technician will come tomorrow morning. Is the printer in room 3?\r\n\r\nBest regards,\r\nAnna, Support\r\n\r\n"+
		"%s\r\n%s\r\n\r\nOn Tue, Mar 5, 2024 at 9:02 AM Alice <alice@customer.example> wrote:\r\n> Hello,\r\n> the printer in our office is broken since this morning.\r\n",
		h.Subject, h.MessageID, h.InReplyTo, h.References, h.ThreadIndex, h.ThreadTopic, h.ContextLine, h.Token)
	require.NoError(t, os.WriteFile(filepath.Join(conversationDir, "02-agent-reply.eml"), []byte(agent), 0o644))
	reply := fmt.Sprintf("From: Alice <alice@customer.example>\r\nTo: Anna Support <support@company.example>\r\n"+
		"Subject: Re: %s\r\nDate: Tue, 05 Mar 2024 11:30:00 +0100\r\nMessage-ID: <c2@customer.example>\r\nIn-Reply-To: %s\r\nReferences: %s %s\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Yes, room 3, second floor. Thank you!\r\n\r\nAlice\r\n\r\nOn Tue, Mar 5, 2024 at 10:15 AM Anna Support <support@company.example> wrote:\r\n"+
		"> Hello Alice,\r\n>\r\n> a technician will come tomorrow morning. Is the printer in room 3?\r\n>\r\n> %s\r\n> %s\r\n",
		h.Subject, h.MessageID, h.References, h.MessageID, h.ContextLine, h.Token)
	require.NoError(t, os.WriteFile(filepath.Join(conversationDir, "03-customer-reply.eml"), []byte(reply), 0o644))
	auto := fmt.Sprintf("From: Alice <alice@customer.example>\r\nTo: Anna Support <support@company.example>\r\n"+
		"Subject: Automatic reply: %s\r\nDate: Tue, 05 Mar 2024 12:00:00 +0100\r\nMessage-ID: <ar1@customer.example>\r\n"+
		"In-Reply-To: %s\r\nAuto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nI am out of the office until 11 March.\r\n",
		h.Subject, h.MessageID)
	require.NoError(t, os.WriteFile(filepath.Join(conversationDir, "05-auto-reply.eml"), []byte(auto), 0o644))
}
