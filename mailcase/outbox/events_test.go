package outbox_test

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/events"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// TestDeliverer_RecordsReplyEvents: a sent message records reply.sent, its
// bounce reply.bounced, each once however often the bounce comes.
func TestDeliverer_RecordsReplyEvents(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	c, id := queue(t, s, 1)
	d, err := outbox.NewDeliverer(s, &scripted{}, &outbox.DelivererOptions{OnEvent: rec.OnEvent})
	require.NoError(t, err)
	_, err = d.DeliverDue(ctx)
	require.NoError(t, err)
	b := outbox.NewBounces(s, &outbox.BounceOptions{OnEvent: rec.OnEvent})
	bounce := &mailcase.Delivery{Bounce: mailcase.BounceInfo{IsBounce: true, Permanent: true,
		OriginalMessageID: "ack-1@company.example", Recipient: "ann@customer.example", Status: "5.1.1"}}
	require.NoError(t, b.HandleBounce(ctx, bounce))
	require.NoError(t, b.HandleBounce(ctx, bounce))

	log, err := s.ReadEvents(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, log, 2)
	assert.Equal(t, events.ReplySent, log[0].Kind)
	assert.Equal(t, events.ReplyBounced, log[1].Kind)
	for _, e := range log {
		assert.Equal(t, c.ID, e.CaseID)
		var data map[string]any
		require.NoError(t, json.Unmarshal(e.Data, &data))
		assert.Equal(t, id, data["outbox_id"])
		assert.Equal(t, "acknowledgement", data["kind"])
		assert.NotContains(t, string(e.Data), "ann@", "no recipient address in a payload")
	}
	var bounced map[string]any
	require.NoError(t, json.Unmarshal(log[1].Data, &bounced))
	assert.Equal(t, "5.1.1", bounced["status"])
}
