package outbox_test

import (
	"fmt"
	"net/mail"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// BenchmarkDeliver sends b.N queued 2 KiB messages to a local go-smtp
// server over reused connections, with 1 and 4 senders.
func BenchmarkDeliver(b *testing.B) {
	for _, senders := range []int{1, 4} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) {
			srv := smtptest.Start(b, &smtptest.Options{Security: "insecure", NoData: true})
			st, err := memstore.OpenStore(nil)
			require.NoError(b, err)
			defer st.Close()
			body := make([]byte, 2048)
			for i := range body {
				body[i] = 'a' + byte(i%26)
			}
			for i := range b.N {
				_, err := st.Enqueue(b.Context(), &driver.OutboxMessage{Key: "k" + strconv.Itoa(i), From: "support@company.example",
					To: []string{"c" + strconv.Itoa(i) + "@customer.example"}, MessageID: "m" + strconv.Itoa(i) + "@x", Raw: body})
				require.NoError(b, err)
			}
			var ds []*outbox.Deliverer
			for w := range senders {
				tr, err := smtpsender.New(srv.Addr, smtpsender.Login{}, &smtpsender.Options{Security: smtpsender.Insecure})
				require.NoError(b, err)
				defer tr.Close()
				d, err := outbox.NewDeliverer(st, tr, &outbox.DelivererOptions{Holder: "w" + strconv.Itoa(w), Batch: 20})
				require.NoError(b, err)
				ds = append(ds, d)
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for _, d := range ds {
				wg.Go(func() {
					_, err := d.DeliverDue(b.Context())
					if err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkFileWithAck files b.N new-case mails on SQLite with and
// without the acknowledgement queued beside each filing.
func BenchmarkFileWithAck(b *testing.B) {
	for _, ack := range []bool{false, true} {
		b.Run(fmt.Sprintf("ack=%v", ack), func(b *testing.B) {
			st, err := sqlstore.OpenURL(b.Context(), "sqlite://"+filepath.Join(b.TempDir(), "b.db"), nil)
			require.NoError(b, err)
			defer st.Close()
			opts := &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@company.example"}}
			if ack {
				a, err := outbox.NewAcknowledger(st, &outbox.AckOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "bench",
					Limits: []outbox.Limit{{Window: time.Minute, Max: 1 << 30}}})
				require.NoError(b, err)
				opts.Responders = []mailcase.Responder{a}
			}
			p, err := mailcase.NewPipeline(st, opts)
			require.NoError(b, err)
			mails := make([][]byte, b.N)
			for i := range mails {
				mails[i] = inbound("bench-"+strconv.Itoa(i)+"@customer.example", "c"+strconv.Itoa(i%500)+"@customer.example", "Order "+strconv.Itoa(i))
			}
			b.ResetTimer()
			start := time.Now()
			for _, raw := range mails {
				if _, err := p.Process(b.Context(), raw, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mails/s")
		})
	}
}
