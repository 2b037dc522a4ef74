package sqlstore_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// countingTransport counts the sends of each Message-ID line.
type countingTransport struct {
	mu    sync.Mutex
	sends map[string]int
}

func (c *countingTransport) Send(_ context.Context, _ string, _ []string, raw []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends[string(raw)]++
	return nil
}

// Three senders, each with its own pool (as on three machines), deliver
// one outbox: every message is sent exactly once.
func TestOutbox_ThreeSendersNoDoubleSend(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			u := d.url(t)
			ctx := t.Context()
			queueStore := openURL(t, u, nil)
			const n = 60
			for i := range n {
				_, err := queueStore.Enqueue(ctx, &driver.OutboxMessage{Key: "k\x00" + strconv.Itoa(i), Mailbox: "support",
					From: "support@company.example", To: []string{"c" + strconv.Itoa(i) + "@customer.example"},
					MessageID: "m" + strconv.Itoa(i) + "@company.example", Raw: []byte("Message-ID: <m" + strconv.Itoa(i) + "@company.example>\r\n\r\nx\r\n")})
				require.NoError(t, err)
			}
			tr := &countingTransport{sends: map[string]int{}}
			var wg sync.WaitGroup
			stats := make([]outbox.Stats, 3)
			for w := range 3 {
				st := openURL(t, u, nil)
				dl, err := outbox.NewDeliverer(st, tr, &outbox.DelivererOptions{Holder: "sender-" + strconv.Itoa(w), Batch: 4})
				require.NoError(t, err)
				wg.Go(func() {
					var err error
					stats[w], err = dl.DeliverDue(ctx)
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			assert.Len(t, tr.sends, n, "every message sent")
			for raw, c := range tr.sends {
				assert.Equal(t, 1, c, "sent %d times: %q", c, raw)
			}
			assert.Equal(t, n, stats[0].Sent+stats[1].Sent+stats[2].Sent)
			sent, err := queueStore.ListOutbox(ctx, &driver.OutboxListOptions{Status: driver.OutboxSent})
			require.NoError(t, err)
			assert.Len(t, sent, n)
			t.Logf("%s: messages per sender %d, %d, %d", d.name, stats[0].Sent, stats[1].Sent, stats[2].Sent)
		})
	}
}
