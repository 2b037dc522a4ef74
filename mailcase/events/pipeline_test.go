package events_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

const (
	firstMail = "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n" +
		"Subject: Printer on fire\r\nMessage-ID: <1@customer.example>\r\n\r\nIt burns.\r\n"
	replyMail = "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n" +
		"Subject: Re: Printer on fire\r\nMessage-ID: <2@customer.example>\r\n" +
		"In-Reply-To: <1@customer.example>\r\n\r\nStill burning.\r\n"
)

// TestPipeline_RecordsMailEvents: a new case, a reply and a redelivery of
// the first mail record mail.received, case.created and case.routed, then
// mail.received and note.appended, and nothing for the duplicate: with the
// recorder as Options.Events (kept in the filing's transaction), as
// Options.OnEvent (one append per event), and as Options.Events on a
// store other than the pipeline's (one append per mail after the filing).
func TestPipeline_RecordsMailEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		onEvent bool // wire rec.OnEvent instead of rec
		other   bool // the recorder's log is another store's
	}{
		{name: "events with the filing"},
		{name: "OnEvent", onEvent: true},
		{name: "events after the filing", other: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := memStore(t)
			logStore := s
			if tc.other {
				logStore = memStore(t)
			}
			rc := newReceiver(t, nil)
			hook := rc.webhook("crm")
			rec, err := events.NewRecorder(logStore, &events.RecorderOptions{Sinks: []events.Sink{hook}})
			require.NoError(t, err)
			var seen []string
			done := make(chan struct{})
			stop := rec.Observe("test", 16, func(_ context.Context, e events.Event) {
				seen = append(seen, e.Kind)
				if len(seen) == 5 {
					close(done)
				}
			})
			defer stop()
			opts := &mailcase.Options{
				Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "first-line"},
				Logger:  slog.New(slog.DiscardHandler),
			}
			if tc.onEvent {
				opts.OnEvent = rec.OnEvent
			} else {
				opts.Events = rec
			}
			p, err := mailcase.NewPipeline(s, opts)
			require.NoError(t, err)
			defer p.Close()
			src := mailcasetest.NewSource([]byte(firstMail), []byte(replyMail), []byte(firstMail))
			require.NoError(t, p.Run(ctx, src))
			// The same mail processed again (its filing is idempotent)
			// records nothing new either.
			_, err = p.Process(ctx, []byte(replyMail), nil)
			require.NoError(t, err)

			log, err := logStore.ReadEvents(ctx, 0, 100)
			require.NoError(t, err)
			var kinds []string
			for _, e := range log {
				kinds = append(kinds, e.Kind)
			}
			// Order within one mail: the filing's events, then mail.received.
			want := []string{events.CaseCreated, events.CaseRouted, events.MailReceived, events.NoteAppended, events.MailReceived}
			assert.Equal(t, want, kinds)
			require.Len(t, log, len(want))
			if tc.other {
				own, err := s.ReadEvents(ctx, 0, 100)
				require.NoError(t, err)
				assert.Empty(t, own, "the pipeline's store keeps no event of a recorder logging elsewhere")
			}
			caseID := log[0].CaseID
			require.NotEmpty(t, caseID)
			for _, e := range log {
				assert.Equal(t, caseID, e.CaseID, e.Kind)
				var data map[string]any
				require.NoError(t, json.Unmarshal(e.Data, &data))
				assert.Equal(t, "support", data["mailbox"], e.Kind)
				assert.NotEmpty(t, data["message_id"], e.Kind)
				switch e.Kind {
				case events.CaseRouted:
					assert.Equal(t, "first-line", data["queue"])
				case events.MailReceived:
					assert.Equal(t, "customer.example", data["from_domain"])
					assert.NotContains(t, string(e.Data), "ann@", "no full address in a payload")
				}
				assert.NotContains(t, string(e.Data), "Printer", "no subject in a payload")
			}
			ds, err := logStore.ListDeliveries(ctx, &driver.DeliveryListOptions{Sink: hook.SinkName()})
			require.NoError(t, err)
			assert.Len(t, ds, len(log), "every event is queued for the webhook with its filing")
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the observer did not get the events")
			}
			stop()
			assert.Equal(t, want, seen[:5], "the observer hears each event once, in order")
			assert.Equal(t, uint64(len(want)), rec.Stats().Recorded)
		})
	}
}
