package lmtpsource_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/lmtpsource"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// BenchmarkDeliver delivers corpus mails over LMTP into memstore with 1 and
// 8 concurrent client connections; each op is one mail answered 250.
func BenchmarkDeliver(b *testing.B) {
	corpus := mailcasetest.GenerateCorpus(1000, 3)
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			st, err := memstore.OpenStore(nil)
			require.NoError(b, err)
			defer st.Close()
			p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, Logger: quiet})
			require.NoError(b, err)
			defer p.Close()
			srv, err := lmtpsource.New(map[string]lmtpsource.Processor{"support@example.com": p}, &lmtpsource.Options{Logger: quiet})
			require.NoError(b, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()

			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			per := (b.N + clients - 1) / clients
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					conn, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						b.Error(err)
						return
					}
					c := smtp.NewClientLMTP(conn)
					defer c.Close()
					if err := c.Hello("bench"); err != nil {
						b.Error(err)
						return
					}
					for range per {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						// A unique Message-ID per delivery: every one is filed.
						raw := bytes.Replace(corpus[i%int64(len(corpus))], []byte("Message-ID: <"), fmt.Appendf(nil, "Message-ID: <b%d.", i), 1)
						if err := c.Mail("c@customer.example", nil); err != nil {
							b.Error(err)
							return
						}
						if err := c.Rcpt("support@example.com", nil); err != nil {
							b.Error(err)
							return
						}
						w, err := c.Data()
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = w.Write(raw)
						if _, err := w.CloseWithLMTPResponse(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mails/s")
		})
	}
}
